"""Loop kernels: how steps are iterated, written once for every cell.

Arguments are packed so that calls stay cheap:

``spec`` (int64)
    ``[kind, I, H, L, O, has_head, head_w, head_b, then (w_ih, w_hh, b_ih, b_hh)
    offsets into P for each layer]``; built by :func:`streamrnn.layout.make_spec`.
``P``
    every parameter in one flat array of the model's dtype.
``S``
    hidden state, one row per series: for each layer ``h`` (and ``c`` for LSTM).
``X``, ``Y``
    inputs ``(N, I)`` and outputs ``(N, O)``, one row per input row.
``order``, ``seg``, ``slots``
    series ``q`` owns rows ``order[seg[q]:seg[q+1]]`` (in time order) and
    state row ``slots[q]``.

Kernels trust their arguments: the public layer validates them first.
"""

import numpy as np
from numba import njit, prange

from . import config
from .cells import GRU, LSTM, gru_step, lstm_step, rnn_step

_HEAD = 8  # spec entries before the per-layer offsets


@njit(inline="always")
def _state_width(spec):
    K = 2 if spec[0] == LSTM else 1
    return K * spec[2]


@njit(inline="always")
def _gate_width(spec):
    kind = spec[0]
    G = 3 if kind == GRU else (4 if kind == LSTM else 1)
    return G * spec[2]


@njit(inline="always")
def advance(spec, P, x, s, gi, gh):
    """Run one time step of every layer for one series; updates ``s`` in place."""
    kind = spec[0]
    I = spec[1]
    H = spec[2]
    L = spec[3]
    KH = _state_width(spec)
    for layer in range(L):
        off = spec[_HEAD + 4 * layer : _HEAD + 4 * layer + 4]
        base = layer * KH
        h = s[base : base + H]
        if layer == 0:
            inp = x
            n_in = I
        else:
            inp = s[base - KH : base - KH + H]
            n_in = H
        if kind == GRU:
            gru_step(P, off, inp, n_in, H, h, gi, gh)
        elif kind == LSTM:
            lstm_step(P, off, inp, n_in, H, h, s[base + H : base + 2 * H], gi)
        else:
            rnn_step(kind, P, off, inp, n_in, H, h, gi)


@njit(inline="always")
def readout(spec, P, s, y):
    """Write the model output for state ``s`` into ``y``: the head, or the top ``h``."""
    H = spec[2]
    L = spec[3]
    O = spec[4]
    top = (L - 1) * _state_width(spec)
    if spec[5]:
        w = spec[6]
        b = spec[7]
        for j in range(O):
            y[j] = P[b + j]
        for k in range(H):
            hk = s[top + k]
            row = w + k * O
            for j in range(O):
                y[j] += hk * P[row + j]
    else:
        for j in range(H):
            y[j] = s[top + j]


@njit(inline="always")
def _run_rows(spec, P, X, rows, s, Y, gi, gh):
    for r in rows:
        advance(spec, P, X[r], s, gi, gh)
        readout(spec, P, s, Y[r])


@njit(cache=config.CACHE, error_model="numpy")
def run_serial(spec, P, X, order, seg, slots, S, Y):
    """Advance each series over its rows, one series after another."""
    GH = _gate_width(spec)
    gi = np.empty(GH, P.dtype)
    gh = np.empty(GH, P.dtype)
    for q in range(slots.shape[0]):
        _run_rows(spec, P, X, order[seg[q] : seg[q + 1]], S[slots[q]], Y, gi, gh)


@njit(parallel=True, cache=config.CACHE, error_model="numpy")
def run_parallel(spec, P, X, order, seg, slots, S, Y):
    """As :func:`run_serial`, with series spread over threads.

    Each series is computed by one thread from start to end with its own
    buffers, so results do not depend on the thread count or the schedule.
    """
    GH = _gate_width(spec)
    for q in prange(slots.shape[0]):
        gi = np.empty(GH, P.dtype)
        gh = np.empty(GH, P.dtype)
        _run_rows(spec, P, X, order[seg[q] : seg[q + 1]], S[slots[q]], Y, gi, gh)


@njit(cache=config.CACHE, error_model="numpy")
def step_one(spec, P, x, buf):
    """One step of one series.

    ``buf`` holds the series' state, last input, output and scratch, in that
    order. Returns -1, or the index of a non-finite input (then ``buf`` is
    unchanged).
    """
    for i in range(x.shape[0]):
        if not np.isfinite(x[i]):
            return i
    D = spec[3] * _state_width(spec)
    I = spec[1]
    O = spec[4]
    GH = _gate_width(spec)
    s = buf[:D]
    buf[D : D + I] = x
    y = buf[D + I : D + I + O]
    work = buf[D + I + O : D + I + O + 2 * GH]
    advance(spec, P, x, s, work[:GH], work[GH:])
    readout(spec, P, s, y)
    return -1


@njit(inline="always")
def _rollout(spec, P, s, x, fb, future, Y):
    horizon = Y.shape[0]
    GH = _gate_width(spec)
    gi = np.empty(GH, P.dtype)
    gh = np.empty(GH, P.dtype)
    readout(spec, P, s, Y[0])
    for k in range(1, horizon):
        if future.shape[0] > 0:
            x[:] = future[k - 1]
        for m in range(fb.shape[0]):
            x[fb[m, 1]] = Y[k - 1, fb[m, 0]]
        advance(spec, P, x, s, gi, gh)
        readout(spec, P, s, Y[k])


@njit(parallel=True, cache=config.CACHE, error_model="numpy")
def forecast(spec, P, S, Xlast, fb, future, Y):
    """Autoregressive rollout of ``Y.shape[1]`` steps for each row of ``S``.

    ``S`` and ``Xlast`` are scratch copies (they are overwritten). ``fb`` holds
    ``(output, input)`` index pairs: each prediction is fed back into the input
    it stands for. Other inputs come from ``future[q, k - 1]`` when ``future``
    has rows, else they are held at ``Xlast[q]``.
    """
    n = S.shape[0]
    for q in prange(n):
        _rollout(spec, P, S[q], Xlast[q], fb, future[q], Y[q])
