"""Kernels of online learning: truncated backpropagation through time, TBPTT(k1, k2).

The rule
--------
Each series counts its steps ``c = 1, 2, ...`` since its history began. The
output at step ``t`` is labeled by the targets of step ``t + h`` (``h`` the
horizon), so at step ``c`` the label of step ``m = c - h`` arrives. Whenever
``m`` is a multiple of ``k1`` a *window* closes: starting from the series'
state after step ``a = max(0, m - k2)``, the network runs forward over steps
``a + 1 .. m`` with the current weights and backpropagates the summed loss of
the last ``k1`` of them. Each series keeps, for its last ``k2 + h + 1`` steps,
the input, the targets and the state after the step (its *ring*), so a window
never depends on where chunks were cut.

Windows are counted over the whole stream in the order their closing rows
arrive. After every ``batch`` windows, the gradients of those windows are
summed, divided by the number of labeled entries, and the optimizer updates
the weights. Every row is predicted with the weights current when it arrives.

The sum is deterministic: series ``s`` sends its windows to buffer
``s % LANES``, each buffer adds its windows in arrival order, and at an update
the buffers that received windows are added in buffer order. Nothing depends
on chunk sizes, on the thread count or on scheduling, so the weights learned
from a stream are the same bit for bit however it is cut.

How the work is done
--------------------
Rows are first only stored in the rings. A closing window computes the states
and outputs of its steps anyway; when those steps are still pending (not yet
run) or were run with the same weights from the same state, its results are
the online results, bit for bit, and are used as such. Whatever is still
pending when the weights are about to change, or when the chunk ends, is run
forward for many series at once. So in the common case (``k1 == k2``, the
series in step) every step is computed once forward and once backward.

Threads
-------
The rows between two updates (a *segment*) are independent across buffers: a
segment with enough work to be worth it (its rows plus ``k2`` for each window it
closes, at least ``config.PARALLEL_MIN_ROWS``) has its
buffers' passes, and then its pending steps, split over threads
(:mod:`streamrnn.core.threads`), while runs of short segments go through one serial
kernel call. Either way each buffer sees the same rows in the same order, so
the results are the same bit for bit.
"""

from functools import partial

import numpy as np

from .. import config
from ..optim import apply_update, clip_scale, grad_norm
from . import threads
from ._simd import ROW_BLOCK
from .bptt import refresh, run_window, scratch_size
from .cells import GRU, LSTM, RNN_TANH, named_for, per_family
from .jit import inline, kernel, not_inlined
from .kernels import advance_cell, group_buffers, load_states, readout_block, store_states
from .layout import INPUTS, KIND, OUTPUTS

#: Gradient buffers (series ``s`` uses buffer ``s % LANES``). Fixed, so that sums
#: never depend on the number of threads.
LANES = 8


@kernel
def plan(slot_rows, steps, h, k1, batch, pending):
    """Where windows close and updates happen in a chunk.

    ``steps`` are the series' step counts before the chunk (not changed);
    ``pending`` the windows already in the current batch. Returns
    ``(win_rows, update_rows)``: the rows where windows close, and the rows
    after which the weights are updated.
    """
    c = steps.copy()
    N = slot_rows.shape[0]
    win_rows = np.empty(N, np.int64)
    upd = np.empty(N, np.int64)
    nw = 0
    nu = 0
    for r in range(N):
        s = slot_rows[r]
        c[s] += 1
        m = c[s] - h
        if m >= k1 and m % k1 == 0:
            win_rows[nw] = r
            nw += 1
            pending += 1
            if pending == batch:
                upd[nu] = r
                nu += 1
                pending = 0
    return win_rows[:nw].copy(), upd[:nu].copy()


# -- the steps of the pipeline, written once for shared and per-key learning ----


@inline
def _store(ring, ring_row, steps, s, X, Yl, r):
    """Store row ``r`` (inputs and labels) as series ``s``'s next step in its ring;
    returns the step's number."""
    I = X.shape[1]
    C = ring.shape[1]
    steps[s] += 1
    c = steps[s]
    e = ring[s, c % C]
    for j in range(I):
        e[j] = X[r, j]
    for j in range(Yl.shape[1]):
        e[I + j] = Yl[r, j]
    ring_row[s, c % C] = r
    return c


@inline
def _gather(ring, s, a, T, h, I, Oy, D, WS, WX, WY, w):
    """Window ``w`` of the buffers: series ``s``'s state after step ``a``, the inputs of
    steps ``a + 1 .. a + T`` and the labels that arrived ``h`` steps after each."""
    C = ring.shape[1]
    at_state = ring.shape[2] - D
    start = ring[s, a % C]
    for j in range(D):
        WS[w * D + j] = start[at_state + j]
    for t in range(T):
        src = ring[s, (a + 1 + t) % C]
        for j in range(I):
            WX[(w * T + t) * I + j] = src[j]
        lab = ring[s, (a + 1 + t + h) % C]
        for j in range(Oy):
            WY[(w * T + t) * Oy + j] = lab[I + j]


@inline
def _record(hist, Ypred, s, k, states, at_s, outputs, at_o):
    """A step's results, the online ones: the state after it (``states[at_s:]``) into
    entry ``k`` of series ``s``'s ring, its output (``outputs[at_o:]``) into the row of
    ``Ypred`` that step came from."""
    S, ring, ring_row = hist[0], hist[1], hist[2]
    D = S.shape[1]
    at_state = ring.shape[2] - D
    e = ring[s, k]
    for u in range(D):
        e[at_state + u] = states[at_s + u]
    y = Ypred[ring_row[s, k]]
    for u in range(Ypred.shape[1]):
        y[u] = outputs[at_o + u]


@inline
def _place(hist, Ypred, SO, YO, w, T, s, m, version):
    """The states and outputs window ``w`` computed for series ``s``'s steps up to
    ``m`` are its online ones: store those not yet run, and mark them run."""
    S, ring, ring_row, steps, done, vsince, ssince = hist
    D = S.shape[1]
    O = Ypred.shape[1]
    C = ring.shape[1]
    a = m - T
    for j in range(done[s] + 1, m + 1):
        t = w * T + j - a - 1
        _record(hist, Ypred, s, j % C, SO, t * D, YO, t * O)
    for u in range(D):
        S[s, u] = SO[(w * T + T - 1) * D + u]
    if vsince[s] != version:
        vsince[s] = version
        ssince[s] = done[s] + 1
    done[s] = m


@inline
def _step_weights(spec, P, bspec, PT, G, M1, M2, okind, hyper, t, lr, segs, count, total,
                  counts):  # fmt: skip
    """Average the summed gradient over ``count`` labels, check it, clip and step the
    weights (and their back copy) with learning rate ``lr``; count the update, or the
    skip of a non-finite one. ``t[0]`` counts the updates made."""
    if count <= 0:
        return
    norm = _average(G, P.dtype.type(1.0 / count), segs)
    if np.isfinite(norm) and np.isfinite(total):
        t[0] += 1
        apply_update(okind, hyper, t[0], lr, clip_scale(hyper, norm), P, G, M1, M2, segs)
        refresh(spec, P, bspec, PT)
        counts[0] += 1
        counts[2] += np.int64(count)
    else:
        counts[1] += 1


def _run_pending_of(family):
    """The kernel that runs pending steps of the cells of ``family``, out of line: called
    from Python (a thread's part) and from the kernels below."""

    @kernel
    @named_for(family)
    def run_pending(spec, P, hist, Ypred, slots, lens, version, first, stride):
        """Run forward the pending steps of ``slots`` (``lens`` of them each, longest
        first), groups ``first, first + stride, ...`` of up to ``ROW_BLOCK`` series:
        their states go to the rings and ``S``, their outputs to ``Ypred``."""
        not_inlined()
        S, ring, ring_row, steps, done, vsince, ssince = hist
        I = spec[INPUTS]
        O = spec[OUTPUTS]
        D = S.shape[1]
        C = ring.shape[1]
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
                    s = slots[q0 + i]
                    e = ring[s, (done[s] + 1 + t) % C]
                    for j in range(I):
                        Xb[i * I + j] = e[j]
                advance_cell(family, spec, P, Xb, Sb, active, GI, GH)
                readout_block(spec, P, Sb, active, Yb)
                for i in range(active):
                    s = slots[q0 + i]
                    _record(hist, Ypred, s, (done[s] + 1 + t) % C, Sb, i * D, Yb, i * O)
            store_states(S, slots, q0, m, Sb)
            for i in range(m):
                s = slots[q0 + i]
                if vsince[s] != version:
                    vsince[s] = version
                    ssince[s] = done[s] + 1
                done[s] = done[s] + lens[q0 + i]

    return run_pending


@kernel
def pending(hist, seg_slots):
    """The series of ``seg_slots`` with pending steps, longest first (ties in the order
    of ``seg_slots``), and their counts."""
    steps, done = hist[3], hist[4]
    n = seg_slots.shape[0]
    lens = np.empty(n, np.int64)
    top = 0
    for i in range(n):
        s = seg_slots[i]
        lens[i] = steps[s] - done[s]
        top = max(top, lens[i])
    # a counting sort: where each length's series start, longest first
    at = np.zeros(top + 1, np.int64)
    for i in range(n):
        if lens[i] > 0:
            at[lens[i]] += 1
    total = 0
    for v in range(top, 0, -1):
        total, at[v] = total + at[v], total
    slots = np.empty(total, np.int64)
    counts = np.empty(total, np.int64)
    for i in range(n):
        v = lens[i]
        if v > 0:
            slots[at[v]] = seg_slots[i]
            counts[at[v]] = v
            at[v] += 1
    return slots, counts


#: The pending-steps kernel of each cell kind.
RUN_PENDING = per_family(_run_pending_of)
run_pending_gru, run_pending_lstm, run_pending_elman = (
    RUN_PENDING[GRU],
    RUN_PENDING[LSTM],
    RUN_PENDING[RNN_TANH],
)


@inline
def _run_pending(family, spec, P, hist, Ypred, slots, lens, version, first, stride):
    """The pending steps (:func:`_run_pending_of`) of ``family``, a constant, through its
    kernel."""
    if family == GRU:
        run_pending_gru(spec, P, hist, Ypred, slots, lens, version, first, stride)
    elif family == LSTM:
        run_pending_lstm(spec, P, hist, Ypred, slots, lens, version, first, stride)
    else:
        run_pending_elman(spec, P, hist, Ypred, slots, lens, version, first, stride)


@inline
def _flush(family, spec, P, hist, Ypred, seg_slots, version):
    """Run every pending step of the series in ``seg_slots``."""
    slots, lens = pending(hist, seg_slots)
    if slots.shape[0]:
        _run_pending(family, spec, P, hist, Ypred, slots, lens, version, 0, 1)


@inline
def _run_block(family, net, loss, hist, Ypred, blk, nb, T, k1, lane, version, lanes_):
    """Run the ``nb`` windows of ``T`` steps gathered in ``blk`` (see :func:`_lane_pass`)
    into the lane's buffer, then put the online results of those marked ``same``
    in place."""
    spec, P, bspec, PT = net
    lkind, lpar, _ = loss
    S, ring, ring_row, steps, done, vsince, ssince = hist
    LG, lane_loss, lane_count, lane_used, scratch = lanes_
    bslot, bm, bsame = blk[0][lane], blk[1][lane], blk[2][lane]
    WS, WX, WY, SO, YO, lossc = (
        blk[3][lane],
        blk[4][lane],
        blk[5][lane],
        blk[6][lane],
        blk[7][lane],
        blk[8][lane],
    )
    D = S.shape[1]
    O = Ypred.shape[1]
    at_state = ring.shape[2] - D
    I = spec[INPUTS]
    Oy = at_state - I
    empty = np.zeros(0, P.dtype)
    run_window(family, spec, P, bspec, PT, nb, WS[: nb * D], WX[: nb * T * I], T,
               WY[: nb * T * Oy], T - k1, lkind, lpar, LG[lane], scratch[lane], lossc, empty,
               empty, empty, SO[: nb * T * D], YO[: nb * T * O])  # fmt: skip
    lane_used[lane] = 1
    for w in range(nb):
        lane_loss[lane] += lossc[w, 0]
        lane_count[lane] += np.int64(lossc[w, 1])
        s = bslot[w]
        m = bm[w]
        if bsame[w] and done[s] < m:
            _place(hist, Ypred, SO, YO, w, T, s, m, version)


@inline
def _lane_pass(family, net, loss, data, hist, r0, end, is_win, lane, cfg, version, blk, lanes_):
    """Store the rows ``r0 .. end`` of the series of ``lane`` in their rings, and
    run the windows they close, in arrival order, into the lane's buffer.

    Windows of the same length are gathered and run up to ``ROW_BLOCK`` at a
    time (which changes no value: see :func:`streamrnn.core.bptt._window_of`); a
    series' window runs before its next row is stored.
    """
    spec, P = net[0], net[1]
    X, Yl, slot_rows, Ypred = data[0], data[1], data[2], data[3]
    S, ring, ring_row, steps, done, vsince, ssince = hist
    bslot, bm, bsame = blk[0][lane], blk[1][lane], blk[2][lane]
    WS, WX, WY = blk[3][lane], blk[4][lane], blk[5][lane]
    h, k1, k2 = cfg[0], cfg[1], cfg[2]
    I = X.shape[1]
    Oy = Yl.shape[1]
    D = S.shape[1]
    one = np.zeros(1, np.int64)
    nb = 0
    T_blk = 0
    for r in range(r0, end + 2):  # the last round only runs what is gathered
        # the gathered windows run first when this row's series has one among them (its
        # ring is about to change), or when its window cannot join them
        run = nb > 0 and r > end
        if r <= end:
            s = slot_rows[r]
            if s % LANES != lane:
                continue
            for w in range(nb):
                if bslot[w] == s:
                    run = True
            if nb and is_win[r] and not run:
                m = steps[s] + 1 - h
                run = m - max(0, m - k2) != T_blk or nb == ROW_BLOCK
        if run:
            _run_block(family, net, loss, hist, Ypred, blk, nb, T_blk, k1, lane, version, lanes_)
            nb = 0
        if r > end:
            break
        c = _store(ring, ring_row, steps, s, X, Yl, r)
        if not is_win[r]:
            continue
        m = c - h
        a = max(0, m - k2)
        T = m - a
        # the window's results are the online ones when its steps are pending, or
        # were run with these weights from the same state
        same = done[s] <= a or (vsince[s] == version and ssince[s] <= a + 1)
        if not same and done[s] < c:
            one[0] = s
            _run_pending(family, spec, P, hist, Ypred, one, steps[one] - done[one], version, 0, 1)
        T_blk = T
        _gather(ring, s, a, T, h, I, Oy, D, WS, WX, WY, nb)
        bslot[nb] = s
        bm[nb] = m
        bsame[nb] = same
        nb += 1


def block_buffers(k2, I, Oy, O, D, like):
    """Per lane: the windows being gathered (slot, last step, same) and their data."""
    NB = ROW_BLOCK
    dt = like.dtype
    return (
        np.empty((LANES, NB), np.int64),
        np.empty((LANES, NB), np.int64),
        np.empty((LANES, NB), np.bool_),
        np.empty((LANES, NB * D), dt),
        np.empty((LANES, NB * k2 * I), dt),
        np.empty((LANES, NB * k2 * Oy), dt),
        np.empty((LANES, NB * k2 * D), dt),
        np.empty((LANES, NB * k2 * O), dt),
        np.empty((LANES, NB, 2)),
    )


def _lanes_part_of(family):
    """The kernel of a thread's share of a segment's buffers, for ``family``."""

    @kernel
    @named_for(family)
    def lanes_part(net, loss, data, hist, r0, end, is_win, cfg, version, blk, lanes_, first,
                   stride):  # fmt: skip
        """:func:`_lane_pass` for buffers ``first, first + stride, ...``."""
        for lane in range(first, LANES, stride):
            _lane_pass(family, net, loss, data, hist, r0, end, is_win, lane, cfg, version, blk,
                       lanes_)  # fmt: skip

    return lanes_part


@kernel
def _average(G, inv, segs):
    """``G *= inv``, and the norm of the result over ``segs`` (as
    :func:`streamrnn.optim.grad_norm`), in one pass when ``segs`` is the whole
    buffer."""
    n = G.shape[0]
    if segs.shape[0] != 1 or segs[0, 0] != 0 or segs[0, 1] != n:
        for j in range(n):
            G[j] *= inv
        return grad_norm(G, segs)
    acc = np.zeros(16)
    full = n - n % 16
    for i in range(0, full, 16):
        for u in range(16):
            g = G[i + u] * inv
            G[i + u] = g
            x = np.float64(g)
            acc[u] += x * x
    for i in range(full, n):
        g = G[i] * inv
        G[i] = g
        x = np.float64(g)
        acc[i - full] += x * x
    total = 0.0
    for u in range(16):
        total += acc[u]
    if total < np.inf:
        return np.sqrt(total)
    return grad_norm(G, segs)  # non-finite, or an overflow it scales away


@kernel
def update(net, opt, lanes_, counts):
    """Sum the buffers that received windows, in buffer order; average, check,
    clip and step; empty the buffers.

    ``counts``: ``[updates, skipped, labels, windows]``; ``opt`` is
    ``(kind, hyper, lrs, M1, M2, segs, t)`` with ``t[0]`` the updates so far;
    ``lrs[j]`` is the learning rate of update number ``t[1] + j``.
    """
    spec, P, bspec, PT = net
    okind, hyper, lrs, M1, M2, segs, t = opt
    LG, lane_loss, lane_count, lane_used, _ = lanes_
    G = LG[0]
    total = 0.0
    count = 0
    first = True
    for lane in range(LANES):
        if not lane_used[lane]:
            continue
        if first:
            if lane:
                Gl = LG[lane]
                for j in range(G.shape[0]):
                    G[j] = Gl[j]
            first = False
        else:
            Gl = LG[lane]
            for j in range(G.shape[0]):
                G[j] += Gl[j]
        total += lane_loss[lane]
        count += lane_count[lane]
    lr = lrs[t[0] + 1 - t[1]]  # the rate of the next update (one per planned update)
    _step_weights(spec, P, bspec, PT, G, M1, M2, okind, hyper, t, lr, segs, count, total,
                  counts)  # fmt: skip
    if not lane_used[0]:
        G[:] = 0.0  # it held the sum
    for lane in range(LANES):
        if lane_used[lane]:
            LG[lane][:] = 0.0
        lane_loss[lane] = 0.0
        lane_count[lane] = 0
        lane_used[lane] = 0


@kernel
def segment_series(slot_rows, r0, end, seg_of):
    """The series of rows ``r0 .. end``, in order of first appearance (``seg_of`` is
    scratch over every slot, all -1 on entry and on return)."""
    n_seg = 0
    seg_slots = np.empty(end + 1 - r0, np.int64)
    for r in range(r0, end + 1):
        s = slot_rows[r]
        if seg_of[s] < 0:
            seg_of[s] = n_seg
            seg_slots[n_seg] = s
            n_seg += 1
    seg_slots = seg_slots[:n_seg]
    for q in range(n_seg):
        seg_of[seg_slots[q]] = -1
    return seg_slots


def _learn_segments_of(family):
    """The kernel of runs of segments on one thread, for ``family``."""

    @kernel
    @named_for(family)
    def learn_segments(net, opt, loss, data, hist, bounds, is_win, blk, lanes_, cfg, counts):
        """Segments ``bounds[k] = (first row, last row, update after it)`` in order, on
        this thread: store their rows, run the windows they close, run what is still
        pending, and update the weights where a segment ends with an update."""
        spec, P = net[0], net[1]
        X, Yl, slot_rows, Ypred, seg_of = data
        t = opt[6]
        for k in range(bounds.shape[0]):
            r0, end = bounds[k, 0], bounds[k, 1]
            seg_slots = segment_series(slot_rows, r0, end, seg_of)
            version = t[0]
            for lane in range(LANES):
                rows = (X, Yl, slot_rows, Ypred)
                _lane_pass(family, net, loss, rows, hist, r0, end, is_win, lane, cfg, version, blk,
                           lanes_)  # fmt: skip
            _flush(family, spec, P, hist, Ypred, seg_slots, version)
            if bounds[k, 2]:
                update(net, opt, lanes_, counts)

    return learn_segments


#: The entries of shared-weight learning by cell kind: runs of segments on one thread,
#: and a segment's buffers split over threads.
LEARN_SEGMENTS = per_family(_learn_segments_of)
LANES_PART = per_family(_lanes_part_of)


def learn_chunk(net, opt, loss, data, hist, plan_, lanes_, cfg, counts):
    """Predict every row of a chunk and learn as windows close (see the module doc).

    ``data = (X, Yl, slot_rows, Ypred, seg_of)``; ``hist = (S, ring, ring_row,
    steps, done, vsince, ssince)``; ``plan_`` is :func:`plan`'s result;
    ``lanes_ = (LG, lane_loss, lane_count, lane_used, scratch)``;
    ``cfg = [h, k1, k2, batch, threads]``.
    """
    spec, P = net[0], net[1]
    learn_segments = LEARN_SEGMENTS[spec[KIND]]
    X, Yl, slot_rows, Ypred, seg_of = data
    win_rows, upd_rows = plan_
    N = X.shape[0]
    is_win = np.zeros(N, np.bool_)
    is_win[win_rows] = True
    blk = block_buffers(cfg[2], X.shape[1], Yl.shape[1], Ypred.shape[1], hist[0].shape[1], P)
    # segments: the rows up to each update, then the rest
    ends = upd_rows if len(upd_rows) and upd_rows[-1] == N - 1 else np.append(upd_rows, N - 1)
    bounds = np.empty((len(ends), 3), np.int64)
    bounds[:, 0] = np.concatenate([[0], ends[:-1] + 1])
    bounds[:, 1] = ends
    bounds[:, 2] = np.arange(len(ends)) < len(upd_rows)
    workers = min(int(cfg[4]), LANES)
    # a segment's work: its rows, and the steps of the windows it closes (each runs
    # forward and backward over up to k2 steps)
    windows = np.searchsorted(win_rows, bounds[:, 1], "right") - np.searchsorted(
        win_rows, bounds[:, 0], "left"
    )
    work = bounds[:, 1] - bounds[:, 0] + 1 + windows * cfg[2]
    wide = work >= max(config.PARALLEL_MIN_ROWS, 2)
    if workers < 2 or not wide.any():
        learn_segments(net, opt, loss, data, hist, bounds, is_win, blk, lanes_, cfg, counts)
    else:
        k = 0
        while k < len(bounds):
            if not wide[k]:  # a run of short segments, in one call
                j = k + 1
                while j < len(bounds) and not wide[j]:
                    j += 1
                learn_segments(net, opt, loss, data, hist, bounds[k:j], is_win, blk, lanes_, cfg,
                               counts)  # fmt: skip
                k = j
                continue
            r0, end, then_update = (int(v) for v in bounds[k])
            seg_slots = segment_series(slot_rows, r0, end, seg_of)
            version = int(opt[6][0])
            rows = (X, Yl, slot_rows, Ypred)
            part = partial(LANES_PART[spec[KIND]], net, loss, rows, hist, r0, end, is_win, cfg,
                           version, blk, lanes_)  # fmt: skip
            threads.run(part, min(workers, len(seg_slots)))
            slots, lens = pending(hist, seg_slots)
            if len(slots):
                part = partial(RUN_PENDING[spec[KIND]], spec, P, hist, Ypred, slots, lens, version)
                threads.run(part, min(workers, -(-len(slots) // ROW_BLOCK)))
            if then_update:
                update(net, opt, lanes_, counts)
            k += 1
    counts[3] += win_rows.shape[0]


def lane_scratch(spec, k2, like):
    """Scratch of :func:`streamrnn.core.bptt._window_of` for each lane: up to ``ROW_BLOCK``
    windows of ``k2`` steps."""
    return np.empty((LANES, scratch_size(spec, ROW_BLOCK, k2)), like.dtype)


# -- independent weights per key ------------------------------------------------


@kernel
def _key_update(spec, P, bspec, PT, G, M1, M2, opt, t, lossc, counts):
    """Apply one key's batch of windows to its own weights (see :func:`update`)."""
    okind, hyper, lr_t, lr_v, segs = opt
    lr = lr_v[min(np.searchsorted(lr_t, t[0] + 1), lr_v.shape[0] - 1)]  # of the next update
    _step_weights(spec, P, bspec, PT, G, M1, M2, okind, hyper, t, lr, segs, lossc[1], lossc[0],
                  counts)  # fmt: skip
    G[:] = 0.0
    lossc[0] = 0.0
    lossc[1] = 0.0


@inline
def _key_pass(family, net, opt, loss, data, hist, keyed, q, cfg, W, buf):
    """Rows of one series, in order, learned with that series' own weights."""
    spec, Pk, bspec, PTk = net
    X, Yl, Ypred, order, seg, slots = data
    S, ring, ring_row, steps, done, vsince, ssince = hist
    Gk, M1k, M2k, tk, pendk, lossk, countk = keyed
    lkind, lpar, _ = loss
    h, k1, k2, batch = cfg[0], cfg[1], cfg[2], cfg[3]
    s = slots[q]
    P = Pk[s]
    PT = PTk[s]
    I = X.shape[1]
    Oy = Yl.shape[1]
    O = Ypred.shape[1]
    D = S.shape[1]
    one = np.full(1, s, np.int64)
    WS = buf[0, :D]
    WX = buf[1, : k2 * I]
    WY = buf[2, : k2 * Oy]
    SO = buf[3, : k2 * D]
    YO = buf[4, : k2 * O]
    lossc = np.zeros((1, 2))
    empty = np.zeros(0, P.dtype)
    for i in range(seg[q], seg[q + 1]):
        c = _store(ring, ring_row, steps, s, X, Yl, order[i])
        m = c - h
        if m < k1 or m % k1:
            continue
        a = max(0, m - k2)
        T = m - a
        version = tk[s, 0]
        same = done[s] <= a or (vsince[s] == version and ssince[s] <= a + 1)
        if not same and done[s] < c:
            _run_pending(family, spec, P, hist, Ypred, one, steps[one] - done[one], version, 0, 1)
        _gather(ring, s, a, T, h, I, Oy, D, WS, WX, WY, 0)
        run_window(family, spec, P, bspec, PT, 1, WS, WX[: T * I], T, WY[: T * Oy], T - k1, lkind,
                   lpar, Gk[s], W, lossc, empty, empty, empty, SO[: T * D],
                   YO[: T * O])  # fmt: skip
        lossk[s, 0] += lossc[0, 0]
        lossk[s, 1] += lossc[0, 1]
        countk[s, 3] += 1
        if same and done[s] < m:
            _place(hist, Ypred, SO, YO, 0, T, s, m, version)
        pendk[s] += 1
        if pendk[s] == batch:
            pendk[s] = 0
            if done[s] < c:  # rows before the update are predicted with the old weights
                _run_pending(family, spec, P, hist, Ypred, one, steps[one] - done[one], version, 0,
                             1)  # fmt: skip
            _key_update(spec, P, bspec, PT, Gk[s], M1k[s], M2k[s], opt, tk[s], lossk[s],
                        countk[s])  # fmt: skip
    if done[s] < steps[s]:
        _run_pending(family, spec, P, hist, Ypred, one, steps[one] - done[one], tk[s, 0], 0, 1)


def _per_key_part_of(family):
    """The kernel of a thread's share of the series learned per key, for ``family``."""

    @kernel
    @named_for(family)
    def per_key_part(net, opt, loss, data, hist, keyed, cfg, first, stride):
        """Series ``first, first + stride, ...`` of the chunk (see :func:`learn_per_key`)."""
        X, Yl, Ypred = data[0], data[1], data[2]
        k2 = cfg[2]
        D = hist[0].shape[1]
        width = max(D, k2 * max(X.shape[1], Yl.shape[1], D, Ypred.shape[1]))
        W = np.empty(scratch_size(net[0], 1, k2), X.dtype)
        buf = np.empty((5, width), X.dtype)
        for q in range(first, data[5].shape[0], stride):
            _key_pass(family, net, opt, loss, data, hist, keyed, q, cfg, W, buf)

    return per_key_part


#: The entry of per-key learning by cell kind: a thread's share of the series.
PER_KEY_PART = per_family(_per_key_part_of)


def learn_per_key(net, opt, loss, data, hist, keyed, cfg):
    """Each series of the chunk over its rows with its own weights, series on threads.

    ``net = (spec, Pk, bspec, PTk)`` with a row of weights per slot; ``opt =
    (kind, hyper, lr_t, lr_v, segs)`` (the rate of update ``lr_t[i]`` is
    ``lr_v[i]``); ``data = (X, Yl, Ypred, order, seg, slots)`` as from
    :func:`streamrnn.core.kernels.group_rows`; ``keyed = (Gk, M1k, M2k, tk, pendk,
    lossk, countk)``; ``cfg = [h, k1, k2, batch, threads]``.
    """
    n = data[5].shape[0]
    rows = data[0].shape[0]
    work = rows + rows // cfg[1] * cfg[2]  # rows, and the steps of the windows they close
    workers = min(int(cfg[4]), n) if work >= config.PARALLEL_MIN_ROWS else 1
    part = PER_KEY_PART[net[0][KIND]]
    threads.run(partial(part, net, opt, loss, data, hist, keyed, cfg), workers)
