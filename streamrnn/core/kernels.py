"""Loop kernels: how steps are iterated, written once for every cell.

Arguments are packed so that calls stay cheap:

``spec`` (int64)
    the model's sizes and where each block of ``P`` starts, read by the names
    of :mod:`streamrnn.core.layout` (``spec[HIDDEN]``, ``spec[layer_at(l) + W_HH]``).
    Built by :func:`streamrnn.core.layout.make_spec`.
``P``
    every parameter in one flat array of the model's dtype.
``S``
    hidden state, one row of ``D = L * K * H`` per series: for each layer
    ``h`` (and ``c`` for LSTM).
``X``, ``Y``
    inputs ``(N, I)`` and outputs ``(N, O)``, one row per input row.
``order``, ``starts``, ``lens``, ``slots``
    series ``q`` owns rows ``order[starts[q]:starts[q] + lens[q]]`` (in time
    order) and state row ``slots[q]``. Callers list series longest first, so
    that series advanced together stay together.

Kernels are serial and release the GIL; a call that splits its series over
threads runs the part ``first, first + stride, ...`` of them on each
(:mod:`streamrnn.core.threads`).

Series are advanced in groups of up to :data:`streamrnn.core._simd.ROW_BLOCK`, one
time step at a time, so that each load of a weight serves the whole group.
Every value is computed by the same sequence of operations whatever group a
series lands in (see :mod:`streamrnn.core._simd`), so results do not depend on
grouping, chunking, thread count or schedule.

Kernels trust their arguments: the public layer validates them first.

Compiled kernels are cached on disk (``config.CACHE``), keyed to the contents
of all the package's compiled sources (see :mod:`streamrnn.core._cache`): an edit to
``cells.py``, ``_simd.py`` or ``_activations.py`` alone recompiles them too.
"""

import numpy as np

from ._simd import ROW_BLOCK
from .cells import GRU, LSTM, gru_step, lstm_step, named_for, per_family, rnn_update
from .jit import inline, kernel, short_kernel
from .layout import (
    B_HH,
    B_IH,
    B_SUM,
    HAS_HEAD,
    HEAD_B,
    HEAD_W,
    HIDDEN,
    INPUTS,
    KIND,
    LAYERS,
    LD_GATES,
    LD_HEAD,
    OUTPUTS,
    W_HH,
    W_IH,
    layer_at,
)
from .native import gemm, gemm_call  # noqa: F401  (gemm: for the learning kernels)


@inline
def state_width(spec):
    """Numbers of state per layer: ``K * H``."""
    return (2 if spec[KIND] == LSTM else 1) * spec[HIDDEN]


@inline
def gate_width(spec):
    """Gate pre-activations per layer: ``G * H``."""
    kind = spec[KIND]
    return (3 if kind == GRU else (4 if kind == LSTM else 1)) * spec[HIDDEN]


@inline
def advance_block(spec, P, Xb, Sb, n, GI, GH):
    """One time step of every layer for ``n`` series.

    ``Xb`` holds their inputs (``n`` rows of ``I``), ``Sb`` their states
    (``n`` rows of ``D``, updated in place); ``GI`` and ``GH`` are scratch of
    ``n`` rows of ``G * H``.
    """
    advance_cell(spec[KIND], spec, P, Xb, Sb, n, GI, GH)


@inline
def advance_cell(kind, spec, P, Xb, Sb, n, GI, GH):
    """:func:`advance_block` for cells of ``kind``: ``GRU``, ``LSTM``, or an Elman
    kind (``ELMAN`` for either). A constant ``kind`` leaves the other cells'
    code out of the compiled kernel."""
    I = spec[INPUTS]
    H = spec[HIDDEN]
    L = spec[LAYERS]
    KH = state_width(spec)
    D = L * KH
    GW = gate_width(spec)
    ld = spec[LD_GATES]
    for layer in range(L):
        at = layer_at(layer)
        w_ih = spec[at + W_IH]
        w_hh = spec[at + W_HH]
        base = layer * KH
        if kind == GRU:
            bias = spec[at + B_IH]  # gi = b_ih + W_ih x, gh = b_hh + W_hh h
        else:
            bias = spec[at + B_SUM]  # g = (b_ih + b_hh) + W_ih x + W_hh h
        if layer == 0:
            gemm_call(P, w_ih, ld, Xb, 0, I, n, I, GW, P, bias, 0, GI, 0, GW)
        else:
            gemm_call(P, w_ih, ld, Sb, base - KH, D, n, H, GW, P, bias, 0, GI, 0, GW)
        if kind == GRU:
            gemm_call(P, w_hh, ld, Sb, base, D, n, H, GW, P, spec[at + B_HH], 0, GH, 0, GW)
        else:
            gemm_call(P, w_hh, ld, Sb, base, D, n, H, GW, GI, 0, GW, GI, 0, GW)
        for r in range(n):
            gi = GI[r * GW : (r + 1) * GW]
            h = Sb[r * D + base : r * D + base + H]
            if kind == GRU:
                gru_step(gi, GH[r * GW : (r + 1) * GW], h, H)
            elif kind == LSTM:
                lstm_step(gi, h, Sb[r * D + base + H : r * D + base + 2 * H], H)
            else:
                rnn_update(spec[KIND], gi, h, H)


@inline
def readout_block(spec, P, Sb, n, Yb):
    """Outputs of ``n`` series into ``Yb`` (rows of ``O``): the head, or the top ``h``."""
    H = spec[HIDDEN]
    L = spec[LAYERS]
    O = spec[OUTPUTS]
    KH = state_width(spec)
    D = L * KH
    top = (L - 1) * KH
    if spec[HAS_HEAD]:
        gemm_call(P, spec[HEAD_W], spec[LD_HEAD], Sb, top, D, n, H, O, P, spec[HEAD_B], 0, Yb, 0, O)
    else:
        for r in range(n):
            for j in range(H):
                Yb[r * O + j] = Sb[r * D + top + j]


@inline
def group_buffers(spec, P, D):
    """Scratch for a group of up to ``ROW_BLOCK`` series with states of ``D`` numbers:
    ``(Sb, Xb, Yb, GI, GH)``, their states, inputs, outputs and gate pre-activations."""
    GW = gate_width(spec)
    return (
        np.empty(ROW_BLOCK * D, P.dtype),
        np.empty(ROW_BLOCK * spec[INPUTS], P.dtype),
        np.empty(ROW_BLOCK * spec[OUTPUTS], P.dtype),
        np.empty(ROW_BLOCK * GW, P.dtype),
        np.empty(ROW_BLOCK * GW, P.dtype),
    )


@inline
def load_states(S, slots, q0, m, Sb):
    """The states of series ``q0 .. q0 + m - 1`` (rows ``slots[q]`` of ``S``) into ``Sb``."""
    D = S.shape[1]
    for i in range(m):
        s = S[slots[q0 + i]]
        for j in range(D):
            Sb[i * D + j] = s[j]


@inline
def store_states(S, slots, q0, m, Sb):
    """The states in ``Sb`` back to their rows of ``S`` (see :func:`load_states`)."""
    D = S.shape[1]
    for i in range(m):
        s = S[slots[q0 + i]]
        for j in range(D):
            s[j] = Sb[i * D + j]


def _run_groups_of(family):
    """The kernel that advances series of the cells of ``family`` over their rows."""

    @kernel
    @named_for(family)
    def run_groups(spec, P, X, order, starts, lens, slots, S, Y, first, stride):
        """Advance every series over its rows: groups ``first, first + stride, ...`` of up
        to ``ROW_BLOCK`` series (listed longest first), with one set of buffers."""
        I = spec[INPUTS]
        O = spec[OUTPUTS]
        D = spec[LAYERS] * state_width(spec)
        has_head = spec[HAS_HEAD]
        top = D - state_width(spec)  # the top layer's h
        Sb, Xb, Yb, GI, GH = group_buffers(spec, P, D)
        n = slots.shape[0]
        for q0 in range(first * ROW_BLOCK, n, stride * ROW_BLOCK):
            m = min(ROW_BLOCK, n - q0)
            load_states(S, slots, q0, m, Sb)
            active = m
            for t in range(lens[q0]):
                while lens[q0 + active - 1] <= t:
                    active -= 1
                for i in range(active):
                    x = X[order[starts[q0 + i] + t]]
                    for j in range(I):
                        Xb[i * I + j] = x[j]
                advance_cell(family, spec, P, Xb, Sb, active, GI, GH)
                if has_head:
                    readout_block(spec, P, Sb, active, Yb)
                    for i in range(active):
                        y = Y[order[starts[q0 + i] + t]]
                        for j in range(O):
                            y[j] = Yb[i * O + j]
                else:
                    for i in range(active):
                        y = Y[order[starts[q0 + i] + t]]
                        for j in range(O):
                            y[j] = Sb[i * D + top + j]
            store_states(S, slots, q0, m, Sb)

    return run_groups


@kernel
def group_rows(slot_rows, seg_of):
    """Group rows by slot in one pass: ``(order, seg, slots)``.

    Series ``q`` (in order of first appearance) owns rows
    ``order[seg[q]:seg[q + 1]]``, in arrival order, and state row ``slots[q]``.
    ``seg_of`` is scratch covering every slot, all -1 on entry and on return.
    """
    N = slot_rows.shape[0]
    slots = np.empty(N, np.int64)
    counts = np.zeros(N, np.int64)
    n_seg = 0
    for r in range(N):
        s = slot_rows[r]
        if seg_of[s] < 0:
            seg_of[s] = n_seg
            slots[n_seg] = s
            n_seg += 1
        counts[seg_of[s]] += 1
    seg = np.empty(n_seg + 1, np.int64)
    seg[0] = 0
    for q in range(n_seg):
        seg[q + 1] = seg[q] + counts[q]
    fill = seg[:n_seg].copy()
    order = np.empty(N, np.int64)
    for r in range(N):
        q = seg_of[slot_rows[r]]
        order[fill[q]] = r
        fill[q] += 1
    for q in range(n_seg):
        seg_of[slots[q]] = -1
    return order, seg, slots[:n_seg].copy()


def _step_one_of(family):
    """The kernel of one step of one series of the cells of ``family``."""

    @short_kernel
    @named_for(family)
    def step_one(spec, P, x, buf):
        """One step of one series.

        ``buf`` holds the series' state, last input, output and scratch, in that
        order. Returns -1, or the index of a non-finite input (then ``buf`` is
        unchanged).
        """
        for i in range(x.shape[0]):
            if not np.isfinite(x[i]):
                return i
        D = spec[LAYERS] * state_width(spec)
        I = spec[INPUTS]
        O = spec[OUTPUTS]
        GW = gate_width(spec)
        for j in range(I):
            buf[D + j] = x[j]
        Sb = buf[:D]
        Xb = buf[D : D + I]
        Yb = buf[D + I : D + I + O]
        work = buf[D + I + O : D + I + O + 2 * GW]
        advance_cell(family, spec, P, Xb, Sb, 1, work[:GW], work[GW:])
        readout_block(spec, P, Sb, 1, Yb)
        return -1

    return step_one


def _forecast_of(family):
    """The kernel of rollouts of the cells of ``family``."""

    @kernel
    @named_for(family)
    def forecast(spec, P, S, Xlast, fb, future, Y, first, stride):
        """Autoregressive rollout of ``Y.shape[1]`` steps for rows ``first, first +
        stride, ...`` of ``S``.

        ``S`` and ``Xlast`` are scratch copies (they are overwritten). ``fb`` holds
        ``(output, input, change)`` rows: each prediction is fed back into the input
        it stands for, or added to it when ``change`` is 1 (the output is the change
        of the input's level). Other inputs come from ``future[q, k - 1]`` when
        ``future.shape[1]`` is not zero, else they are held at ``Xlast[q]``.
        """
        n = S.shape[0]
        horizon = Y.shape[1]
        GW = gate_width(spec)
        GI = np.empty(GW, P.dtype)
        GH = np.empty(GW, P.dtype)
        for q in range(first, n, stride):
            s = S[q]
            x = Xlast[q]
            readout_block(spec, P, s, 1, Y[q, 0])
            for k in range(1, horizon):
                if future.shape[1] > 0:
                    fx = future[q, k - 1]
                    for j in range(x.shape[0]):
                        x[j] = fx[j]
                for m in range(fb.shape[0]):
                    if fb[m, 2]:  # the output is a change: the input carries the level
                        x[fb[m, 1]] += Y[q, k - 1, fb[m, 0]]
                    else:
                        x[fb[m, 1]] = Y[q, k - 1, fb[m, 0]]
                advance_cell(family, spec, P, x, s, 1, GI, GH)
                readout_block(spec, P, s, 1, Y[q, k])

    return forecast


#: Kernels by cell kind (``spec[KIND]``): every series over its rows (see
#: :func:`_run_groups_of`), one step of one series (:func:`_step_one_of`: returns
#: -1, or the column of a non-finite input, leaving ``buf`` unchanged), rollouts
#: (:func:`_forecast_of`).
RUN_GROUPS = per_family(_run_groups_of)
STEP_ONE = per_family(_step_one_of)
FORECAST = per_family(_forecast_of)
