"""The CUDA backend: an NVIDIA GPU with numba.cuda.

Imported only by :func:`streamrnn.core.backend.get` for ``device="cuda"``. It
does what :class:`streamrnn.core.backend.CPU` does (forward passes over
sequences and keyed chunks, one step of one series, rollouts; gradients and
online learning with shared weights through :mod:`streamrnn.core.gpu_learn`),
with the same arguments and results, so that models, ``Series``, ``Stream`` and
``OnlineLearner`` run unchanged on either device.

How the work is laid out: one GPU thread per series. A thread walks its
series' rows in time order; each step multiplies the layer's input and state
by the weights (:func:`gates_of`, :func:`add_product`) and applies the cell's
update, the very functions the CPU kernels use (:mod:`streamrnn.core.cells`,
compiled here for the GPU). Every value of a series is computed by the same
operations in the same order whatever else a launch holds, so outputs and
states on the GPU do not depend on how a stream is cut into chunks or how keys
are batched. They may differ from the CPU's in the last bits (its matrix
products add in another order; the GPU's ``exp`` and ``tanh`` are CUDA's):
within 1e-10 (float64) and 1e-5 (float32, relative) of them.

A stream's states live on the device between chunks: they are sent once, then
advanced there, and a chunk sends only its rows (and one packed array of row
order and series) and brings back only its outputs. The stream's host array is
brought up to date when the stream reads or writes it (``get_state``,
``set_state``, ``reset``, ``remove``, forecasts, saving, a move of the model to
the CPU), through :data:`streamrnn.core.backend.resident`. A model's weights are
sent once and kept until it learns or loads others. The encoder-decoder learns on
the CPU for now: its methods raise :class:`~streamrnn.DeviceError`.

On the simulator (``NUMBA_ENABLE_CUDASIM=1``) the device functions here run as
plain Python (:func:`device`), so that tests compile nothing but the cells' own
functions, which the CPU's disk cache keeps.
"""

import numpy as np
from numba import config as numba_config
from numba import cuda

from ..errors import DeviceError
from . import bptt, tbptt
from .backend import resident
from .cells import GRU, LSTM, gru_step, lstm_step, rnn_update
from .jit import inline
from .kernels import gate_width, state_width
from .layout import (
    B_HH,
    B_IH,
    B_SUM,
    CELLS_BY_KIND_GATES,
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

#: Whether kernels run on Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``).
SIMULATED = bool(numba_config.ENABLE_CUDASIM)
#: Threads per block of every launch; few on the simulator, which starts a Python
#: thread for each (no kernel's results depend on it).
THREADS = 8 if SIMULATED else 128

if SIMULATED:

    def device(fn):
        """A device function, run as Python on the simulator (the compiled functions it
        calls, the cells' own, are compiled for the CPU and cached)."""
        return fn

    def plain(a):
        """The simulator's stand-in for a device array, as the NumPy array it wraps, so
        that the compiled device functions below run on it as they would on the GPU."""
        return a._item._ary

else:
    #: A device function, compiled into the kernels that call it.
    device = inline

    @cuda.jit(device=True, inline=True)
    def plain(a):
        """A device array, as it is."""
        return a


@device
def gates_of(P, w, ld, x, x0, n_in, bias, out, width):
    """``out[j] = P[bias + j] + sum_k x[x0 + k] * P[w + k * ld + j]`` for ``j <
    width``: a bias plus the product of ``x``'s ``n_in`` values with a transposed
    weight block of ``P``, summed in the order of ``k``."""
    for j in range(width):
        out[j] = P[bias + j]
    add_product(P, w, ld, x, x0, n_in, out, width)


@device
def add_product(P, w, ld, x, x0, n_in, out, width):
    """``out[j] += sum_k x[x0 + k] * P[w + k * ld + j]`` (see :func:`gates_of`)."""
    for k in range(n_in):
        xk = x[x0 + k]
        row = w + k * ld
        for j in range(width):
            out[j] += xk * P[row + j]


@device
def advance_one(spec, P, x, s, GI, GH):
    """One time step of every layer of one series: input ``x``, state ``s`` (``L``
    blocks of ``K * H``: ``h``, and ``c`` for LSTM; updated), scratch ``GI`` and
    ``GH`` of ``G * H``."""
    kind = spec[KIND]
    H = spec[HIDDEN]
    KH = state_width(spec)
    GW = gate_width(spec)
    ld = spec[LD_GATES]
    for layer in range(spec[LAYERS]):
        at = layer_at(layer)
        base = layer * KH
        bias = spec[at + B_IH] if kind == GRU else spec[at + B_SUM]
        if layer == 0:
            gates_of(P, spec[at + W_IH], ld, x, 0, spec[INPUTS], bias, GI, GW)
        else:
            gates_of(P, spec[at + W_IH], ld, s, base - KH, H, bias, GI, GW)
        h = s[base : base + H]
        if kind == GRU:
            gates_of(P, spec[at + W_HH], ld, s, base, H, spec[at + B_HH], GH, GW)
            gru_step(GI, GH, h, H)
        else:
            add_product(P, spec[at + W_HH], ld, s, base, H, GI, GW)
            if kind == LSTM:
                lstm_step(GI, h, s[base + H : base + 2 * H], H)
            else:
                rnn_update(kind, GI, h, H)


@device
def read_out(spec, P, s, y):
    """The outputs of state ``s`` into ``y``: the head, or the top layer's ``h``."""
    H = spec[HIDDEN]
    L = spec[LAYERS]
    KH = state_width(spec)
    top = (L - 1) * KH
    if spec[HAS_HEAD]:
        gates_of(P, spec[HEAD_W], spec[LD_HEAD], s, top, H, spec[HEAD_B], y, spec[OUTPUTS])
    else:
        for j in range(H):
            y[j] = s[top + j]


@cuda.jit
def run_series(spec, P, X, meta, S, Y, W):
    """Thread ``q`` advances series ``q`` over rows ``X[order[starts[q] + t]]``,
    ``t < lens[q]``, from state ``S[slots[q]]`` (updated), outputs into the same rows
    of ``Y``; ``W[q]`` is its scratch. ``meta`` packs ``order`` (one entry per row of
    ``X``), then ``starts``, ``lens`` and ``slots`` (one per series): one copy to the
    device."""
    q = cuda.grid(1)
    n = W.shape[0]
    if q >= n:
        return
    spec, P, X, S, Y, W = plain(spec), plain(P), plain(X), plain(S), plain(Y), plain(W)
    meta = plain(meta)
    N = X.shape[0]
    GW = W.shape[1] // 2
    s = S[meta[N + 2 * n + q]]
    GI = W[q, :GW]
    GH = W[q, GW:]
    start = meta[N + q]
    for t in range(meta[N + n + q]):
        r = meta[start + t]
        advance_one(spec, P, X[r], s, GI, GH)
        read_out(spec, P, s, Y[r])


@cuda.jit
def roll_out(spec, P, S, Xlast, fb, future, Y, W):
    """Thread ``q`` rolls series ``q`` out ``Y.shape[1]`` steps from state ``S[q]``
    and last input ``Xlast[q]`` (both scratch), as the CPU's rollouts do (see
    :class:`streamrnn.core.backend.CPU`)."""
    q = cuda.grid(1)
    if q >= S.shape[0]:
        return
    spec, P, S, Xlast, Y, W = plain(spec), plain(P), plain(S), plain(Xlast), plain(Y), plain(W)
    GW = W.shape[1] // 2
    s = S[q]
    x = Xlast[q]
    GI = W[q, :GW]
    GH = W[q, GW:]
    read_out(spec, P, s, Y[q, 0])
    for k in range(1, Y.shape[1]):
        if future.shape[1] > 0:
            for j in range(x.shape[0]):
                x[j] = future[q, k - 1, j]
        for m in range(fb.shape[0]):
            if fb[m, 2]:  # the output is a change: the input carries the level
                x[fb[m, 1]] += Y[q, k - 1, fb[m, 0]]
            else:
                x[fb[m, 1]] = Y[q, k - 1, fb[m, 0]]
        advance_one(spec, P, x, s, GI, GH)
        read_out(spec, P, s, Y[q, k])


def _blocks(n):
    return max(1, -(-n // THREADS))


def _scratch(spec, n, dtype):
    width = CELLS_BY_KIND_GATES[int(spec[KIND])] * int(spec[HIDDEN])
    return cuda.device_array((n, 2 * width), dtype)


class CUDA:
    """Inference kernels on the current CUDA device."""

    name = "cuda"

    def thread_count(self):
        """Host threads a call may use: one (the GPU holds the parallel work)."""
        return 1

    # -- what stays on the device ------------------------------------------------
    @staticmethod
    def _kept(host):
        """The device copy of a host array that the device only reads (a model's
        ``spec`` and weights): made once, dropped when the host array goes or the
        model learns (:data:`streamrnn.core.backend.resident`)."""
        entry = resident.get(host)
        if entry is None or entry[1] is None:
            device = cuda.to_device(host)
            resident.put(host, device)
            return device
        return entry[1]

    # -- inference -----------------------------------------------------------
    def forward(self, spec, P, X, order, starts, lens, slots, S, Y):
        """As :meth:`streamrnn.core.backend.CPU.forward`. The rows go to the device
        and the outputs come back. States kept by their stream
        (:meth:`streamrnn.core.backend.Resident.keep`) stay on the device, sent once
        and advanced there; others go over and back for the series of the call."""
        n = slots.shape[0]
        if n == 0:
            return
        entry = resident.get(S)
        if entry is None:  # not kept: the call's states, over and back
            gathered = np.ascontiguousarray(S[slots])
            d_S, device_slots = cuda.to_device(gathered), np.arange(n, dtype=np.int64)
        else:
            if entry[1] is None:
                entry[1] = cuda.to_device(S)
            d_S, device_slots = entry[1], slots
        d_Y = cuda.device_array(Y.shape, Y.dtype)
        meta = np.concatenate([order, starts, lens, device_slots]).astype(np.int64, copy=False)
        run_series[_blocks(n), THREADS](
            self._kept(spec), self._kept(P), cuda.to_device(np.ascontiguousarray(X)),
            cuda.to_device(meta), d_S, d_Y, _scratch(spec, n, P.dtype),
        )  # fmt: skip
        if entry is None:
            S[slots] = d_S.copy_to_host()
        else:
            resident.touched(S)
        d_Y.copy_to_host(Y)

    def stepper(self, spec, dtype):
        """As :meth:`streamrnn.core.backend.CPU.stepper`: ``step(spec, P, x, buf)``."""
        return self._step

    def _step(self, spec, P, x, buf):
        bad = ~np.isfinite(x)
        if bad.any():
            return int(np.flatnonzero(bad)[0])
        D = int(spec[LAYERS]) * int(state_width(spec))
        I, O = int(spec[INPUTS]), int(spec[OUTPUTS])
        S = buf[:D].reshape(1, D).copy()
        Y = np.empty((1, O), buf.dtype)
        one = np.zeros(1, np.int64)
        self.forward(spec, P, x.reshape(1, I), one, one, np.ones(1, np.int64), one, S, Y)
        buf[:D] = S[0]
        buf[D : D + I] = x
        buf[D + I : D + I + O] = Y[0]
        return -1

    def forecast(self, spec, P, S, Xlast, fb, future, Y):
        """As :meth:`streamrnn.core.backend.CPU.forecast`."""
        n = S.shape[0]
        if n == 0:
            return
        d_Y = cuda.device_array(Y.shape, Y.dtype)
        roll_out[_blocks(n), THREADS](
            self._kept(spec), self._kept(P), cuda.to_device(np.ascontiguousarray(S)),
            cuda.to_device(np.ascontiguousarray(Xlast)), cuda.to_device(np.ascontiguousarray(fb)),
            cuda.to_device(np.ascontiguousarray(future)), d_Y, _scratch(spec, n, P.dtype),
        )  # fmt: skip
        d_Y.copy_to_host(Y)

    def group_rows(self, slot_rows, seg_of):
        """Rows grouped by state slot, on the host (as the CPU backend)."""
        from .kernels import group_rows

        return group_rows(slot_rows, seg_of)

    # -- gradients and learning (streamrnn.core.gpu_learn) ------------------------
    def back_weights(self, spec, P):
        """As the CPU's: the host copy the learner keeps (the device kernels read ``P``)."""
        return bptt.window_args_of(spec, P)

    def refresh(self, spec, P, bspec, PT):
        """As the CPU's, on the host."""
        bptt.refresh(spec, P, bspec, PT)

    def gradients(self, spec, P, bspec, PT, n, S0, X, T, Y, lkind, lpar, G, lossc, s_end):
        """As :meth:`streamrnn.core.backend.CPU.gradients`: a thread per window."""
        from . import gpu_learn

        gpu_learn.gradients(self._kept, spec, P, n, S0, X, T, Y, lkind, lpar, G, lossc, s_end)

    def lane_scratch(self, spec, k2, P):
        """The CPU's (the device's launches make their own): the learner keeps it for
        when its model moves to the CPU."""
        return tbptt.lane_scratch(spec, k2, P)

    def plan(self, slot_rows, steps, h, k1, batch, pending):
        """As the CPU's (host bookkeeping)."""
        return tbptt.plan(slot_rows, steps, h, k1, batch, pending)

    def learn_chunk(self, net, opt, loss, data, hist, plan, lanes, cfg, counts):
        """As :meth:`streamrnn.core.backend.CPU.learn_chunk`
        (:func:`streamrnn.core.gpu_learn.learn_chunk`)."""
        from . import gpu_learn

        resident.take_back(hist[0])  # states a stream advanced here: the host's again
        gpu_learn.learn_chunk(self._kept, net, opt, loss, data, hist, plan, lanes, cfg, counts)

    def learn_per_key(self, net, opt, loss, data, hist, keyed, cfg):
        """As :meth:`streamrnn.core.backend.CPU.learn_per_key`
        (:func:`streamrnn.core.gpu_learn.learn_per_key`)."""
        from . import gpu_learn

        resident.take_back(hist[0])
        gpu_learn.learn_per_key(self._kept, net, opt, loss, data, hist, keyed, cfg)

    def _not_yet(self, *args, **kwargs):
        raise DeviceError(
            "the encoder-decoder learner (Seq2SeqLearner) learns on the CPU for now: learn "
            "with device='cpu', then .to('cuda') to run it"
        )

    encdec_chunk = decode = _not_yet
