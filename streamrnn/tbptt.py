"""Kernels of online learning: truncated backpropagation through time, TBPTT(k1, k2).

Each series counts its steps ``c`` since its history began. The output at step
``t`` is labeled by the targets of step ``t + h`` (``h`` the horizon), so at step
``c`` the label of step ``m = c - h`` arrives. Whenever ``m`` is a multiple of
``k1``, a *window* closes: the series backpropagates through steps
``a + 1 .. m`` (``a = max(0, m - k2)``), starting from its state at step ``a``,
with the loss of its last ``k1`` steps. Each series keeps, per step, its input,
its targets and its state after the step for the last ``k2 + h + 1`` steps (the
*ring*), so a window never depends on where chunks were cut.

Windows are counted over the whole stream in the order their closing rows
arrive. Their gradients go to ``LANES`` buffers, window ``i`` of a batch to
buffer ``i % LANES``, each buffer summing its windows in order; after every
``batch`` windows the buffers are summed in buffer order, the sum is divided by
the number of labeled entries, and the optimizer updates the weights. Rows
between two updates are predicted with the same weights. Nothing here depends
on chunk sizes, on thread count or on schedule, so the weights learned from a
stream are the same bit for bit however it is cut.
"""

import numpy as np
from numba import njit, prange

from . import config
from ._simd import ROW_BLOCK
from .bptt import refresh, scratch_size, window
from .kernels import advance_block, group_rows, readout_block
from .optim import apply_update, clip_scale, grad_norm

_FLAGS = config.JIT_FLAGS

#: Gradient buffers a batch of windows is spread over (fixed, so that sums do not
#: depend on the number of threads).
LANES = 8


@njit(**_FLAGS)
def plan(slot_rows, steps, h, k1, batch, pending):
    """Where windows close and updates happen in a chunk.

    ``steps`` are the series' step counts before the chunk (not changed).
    Returns ``(win_rows, win_index, update_rows)``: the row where each window
    closes, its position in its batch, and the rows after which the weights
    are updated.
    """
    c = steps.copy()
    N = slot_rows.shape[0]
    win_rows = np.empty(N, np.int64)
    win_index = np.empty(N, np.int64)
    upd = np.empty(N, np.int64)
    nw = 0
    nu = 0
    for r in range(N):
        s = slot_rows[r]
        c[s] += 1
        m = c[s] - h
        if m >= k1 and m % k1 == 0:
            win_rows[nw] = r
            win_index[nw] = pending
            nw += 1
            pending += 1
            if pending == batch:
                upd[nu] = r
                nu += 1
                pending = 0
    return win_rows[:nw].copy(), win_index[:nw].copy(), upd[:nu].copy()


@njit(inline="always")
def _record(s, x, y, state, ring, steps, h, k2, w, WS, WX, WY, Wlen):
    """Push one step of series ``s`` into its ring; copy out window ``w`` if it closes."""
    C = ring.shape[1]
    I = x.shape[0]
    Oy = y.shape[0]
    D = state.shape[0]
    steps[s] += 1
    c = steps[s]
    e = ring[s, c % C]
    for j in range(I):
        e[j] = x[j]
    for j in range(Oy):
        e[I + j] = y[j]
    for j in range(D):
        e[I + Oy + j] = state[j]
    if w < 0:
        return
    m = c - h
    a = max(0, m - k2)
    T = m - a
    Wlen[w] = T
    start = ring[s, a % C]
    for j in range(D):
        WS[w, j] = start[I + Oy + j]
    for t in range(T):
        src = ring[s, (a + 1 + t) % C]
        for j in range(I):
            WX[w, t * I + j] = src[j]
        lab = ring[s, (a + 1 + t + h) % C]
        for j in range(Oy):
            WY[w, t * Oy + j] = lab[I + j]


@njit(**_FLAGS)
def _forward_groups(spec, P, X, Yl, row0, order, starts, lens, slots, S, Ypred, ring, steps,
                    h, k2, win_at, WS, WX, WY, Wlen, first, stride):  # fmt: skip
    """Advance groups of series over their rows, predicting each row and recording
    it; like :func:`streamrnn.kernels._run_groups` with the ring added."""
    I = spec[1]
    O = spec[4]
    D = S.shape[1]
    GW = (3 if spec[0] == 2 else (4 if spec[0] == 3 else 1)) * spec[2]
    Sb = np.empty(ROW_BLOCK * D, P.dtype)
    Xb = np.empty(ROW_BLOCK * I, P.dtype)
    Yb = np.empty(ROW_BLOCK * O, P.dtype)
    GI = np.empty(ROW_BLOCK * GW, P.dtype)
    GH = np.empty(ROW_BLOCK * GW, P.dtype)
    n = slots.shape[0]
    for q0 in range(first * ROW_BLOCK, n, stride * ROW_BLOCK):
        m = min(ROW_BLOCK, n - q0)
        for i in range(m):
            s = S[slots[q0 + i]]
            for j in range(D):
                Sb[i * D + j] = s[j]
        active = m
        for t in range(lens[q0]):
            while lens[q0 + active - 1] <= t:
                active -= 1
            for i in range(active):
                x = X[row0 + order[starts[q0 + i] + t]]
                for j in range(I):
                    Xb[i * I + j] = x[j]
            advance_block(spec, P, Xb, Sb, active, GI, GH)
            readout_block(spec, P, Sb, active, Yb)
            for i in range(active):
                r = row0 + order[starts[q0 + i] + t]
                for j in range(O):
                    Ypred[r, j] = Yb[i * O + j]
                _record(slots[q0 + i], X[r], Yl[r], Sb[i * D : (i + 1) * D], ring, steps, h, k2,
                        win_at[r], WS, WX, WY, Wlen)  # fmt: skip
        for i in range(m):
            s = S[slots[q0 + i]]
            for j in range(D):
                s[j] = Sb[i * D + j]


@njit(parallel=True, **_FLAGS)
def _forward_parallel(spec, P, X, Yl, row0, order, starts, lens, slots, S, Ypred, ring, steps,
                      h, k2, win_at, WS, WX, WY, Wlen, workers):  # fmt: skip
    for w in prange(workers):
        _forward_groups(spec, P, X, Yl, row0, order, starts, lens, slots, S, Ypred, ring, steps,
                        h, k2, win_at, WS, WX, WY, Wlen, w, workers)  # fmt: skip


@njit(**_FLAGS)
def _lane_windows(net, work, w0, w1, lane, k1, loss, G, scratch, lane_loss, lane_count):
    """Windows ``w0 .. w1 - 1`` that belong to ``lane``, in order, into its buffer ``G``."""
    spec, P, bspec, PT = net
    WS, WX, WY, Wlen, wlane = work
    lkind, lpar, Oy = loss
    empty = np.zeros(0, P.dtype)
    for w in range(w0, w1):
        if wlane[w] != lane:
            continue
        T = Wlen[w]
        s, c = window(spec, P, bspec, PT, WS[w], WX[w], T, WY[w, : T * Oy], T - k1, lkind, lpar,
                      G, scratch, empty, empty, empty)  # fmt: skip
        lane_loss[lane] += s
        lane_count[lane] += c


@njit(parallel=True, **_FLAGS)
def _windows_parallel(net, work, w0, w1, lanes, k1, loss, LG, scratch, lane_loss, lane_count):
    for lane in prange(lanes):
        _lane_windows(net, work, w0, w1, lane, k1, loss, LG[lane], scratch[lane], lane_loss,
                      lane_count)  # fmt: skip


@njit(**_FLAGS)
def _update(net, opt, LG, lanes, lane_loss, lane_count, counts):
    """Sum the lanes in order, average, check, clip and step; empty the lanes.

    ``counts``: ``[updates, skipped, labels, windows]``; ``opt`` is
    ``(kind, hyper, lrs, M1, M2, segs, t)`` with ``t[0]`` the updates so far;
    ``lrs[j]`` is the learning rate of update number ``t[1] + j``.
    """
    spec, P, bspec, PT = net
    okind, hyper, lrs, M1, M2, segs, t = opt
    G = LG[0]
    total = lane_loss[0]
    count = lane_count[0]
    for lane in range(1, lanes):
        Gl = LG[lane]
        for j in range(G.shape[0]):
            G[j] += Gl[j]
        total += lane_loss[lane]
        count += lane_count[lane]
    if count > 0:
        inv = 1.0 / count
        for j in range(G.shape[0]):
            G[j] *= inv
        norm = grad_norm(G, segs)
        if np.isfinite(norm) and np.isfinite(total):
            t[0] += 1
            apply_update(okind, hyper, t[0], lrs[t[0] - t[1]], clip_scale(hyper, norm), P, G,
                         M1, M2, segs)  # fmt: skip
            refresh(spec, P, bspec, PT)
            counts[0] += 1
            counts[2] += count
        else:
            counts[1] += 1
    for lane in range(lanes):
        LG[lane][:] = 0.0
        lane_loss[lane] = 0.0
        lane_count[lane] = 0


@njit(**_FLAGS)
def learn_chunk(net, opt, loss, data, hist, plan_, lanes_, cfg, counts):
    """Predict every row of a chunk, learning as windows close (see the module doc).

    ``data = (X, Yl, slot_rows, Ypred, seg_of)``; ``hist = (S, ring, steps)``;
    ``plan_`` is :func:`plan`'s result; ``lanes_ = (LG, lane_loss, lane_count,
    scratch)``; ``cfg = [h, k1, k2, batch, threads]``.
    """
    spec, P, bspec, PT = net
    X, Yl, slot_rows, Ypred, seg_of = data
    S, ring, steps = hist
    win_rows, win_index, upd_rows = plan_
    LG, lane_loss, lane_count, scratch = lanes_
    h, k1, k2, batch, threads = cfg[0], cfg[1], cfg[2], cfg[3], cfg[4]
    N = X.shape[0]
    D = S.shape[1]
    I = X.shape[1]
    Oy = Yl.shape[1]
    lanes = min(LG.shape[0], batch)
    nw = win_rows.shape[0]
    win_at = np.full(N, -1, np.int64)
    # windows of one segment share the work buffers: size them for the largest
    most = 0
    w0 = 0
    r0 = 0
    for k in range(upd_rows.shape[0] + 1):
        end = upd_rows[k] if k < upd_rows.shape[0] else N - 1
        w1 = w0
        while w1 < nw and win_rows[w1] <= end:
            w1 += 1
        most = max(most, w1 - w0)
        w0 = w1
    WS = np.empty((most, D), P.dtype)
    WX = np.empty((most, k2 * I), P.dtype)
    WY = np.empty((most, k2 * Oy), P.dtype)
    Wlen = np.empty(most, np.int64)
    wlane = np.empty(most, np.int64)
    work = (WS, WX, WY, Wlen, wlane)
    w0 = 0
    for k in range(upd_rows.shape[0] + 1):
        end = upd_rows[k] if k < upd_rows.shape[0] else N - 1
        if end < r0:
            break
        w1 = w0
        while w1 < nw and win_rows[w1] <= end:
            win_at[win_rows[w1]] = w1 - w0
            wlane[w1 - w0] = win_index[w1] % LANES
            w1 += 1
        order, seg, slots = group_rows(slot_rows[r0 : end + 1], seg_of)
        lens = seg[1:] - seg[:-1]
        longest = np.argsort(-lens, kind="mergesort")
        starts = seg[:-1][longest]
        lens = lens[longest]
        slots = slots[longest]
        n_groups = (slots.shape[0] + ROW_BLOCK - 1) // ROW_BLOCK
        workers = min(threads, n_groups)
        if workers > 1:
            _forward_parallel(spec, P, X, Yl, r0, order, starts, lens, slots, S, Ypred, ring,
                              steps, h, k2, win_at, WS, WX, WY, Wlen, workers)  # fmt: skip
        else:
            _forward_groups(spec, P, X, Yl, r0, order, starts, lens, slots, S, Ypred, ring,
                            steps, h, k2, win_at, WS, WX, WY, Wlen, 0, 1)  # fmt: skip
        n = w1 - w0
        if n > 1 and threads > 1:
            _windows_parallel(net, work, 0, n, lanes, k1, loss, LG, scratch, lane_loss,
                              lane_count)  # fmt: skip
        elif n > 0:
            for lane in range(lanes):
                _lane_windows(net, work, 0, n, lane, k1, loss, LG[lane], scratch[lane],
                              lane_loss, lane_count)  # fmt: skip
        w0 = w1
        if k < upd_rows.shape[0]:
            _update(net, opt, LG, lanes, lane_loss, lane_count, counts)
        r0 = end + 1
    counts[3] += nw


@njit(**_FLAGS)
def lane_scratch(spec, k2, lanes, dtype_like):
    """Scratch of :func:`streamrnn.bptt.window` for ``lanes`` windows of ``k2`` steps."""
    return np.empty((lanes, scratch_size(spec, k2)), dtype_like.dtype)
