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
"""

import numpy as np
from numba import njit, prange

from . import config
from ._simd import ROW_BLOCK
from .bptt import refresh, scratch_size, window
from .kernels import _gate_width, advance_block, readout_block
from .optim import apply_update, clip_scale, grad_norm

_FLAGS = config.JIT_FLAGS

#: Gradient buffers (series ``s`` uses buffer ``s % LANES``). Fixed, so that sums
#: never depend on the number of threads.
LANES = 8


@njit(**_FLAGS)
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


@njit(**_FLAGS)
def _run_pending(spec, P, hist, Ypred, slots, lens, version, first, stride):
    """Run forward the pending steps of ``slots`` (``lens`` of them each, longest
    first), groups ``first, first + stride, ...`` of up to ``ROW_BLOCK`` series:
    their states go to the rings and ``S``, their outputs to ``Ypred``."""
    S, ring, ring_row, steps, done, vsince, ssince = hist
    I = spec[1]
    O = spec[4]
    D = S.shape[1]
    C = ring.shape[1]
    GW = _gate_width(spec)
    at_state = ring.shape[2] - D
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
                s = slots[q0 + i]
                e = ring[s, (done[s] + 1 + t) % C]
                for j in range(I):
                    Xb[i * I + j] = e[j]
            advance_block(spec, P, Xb, Sb, active, GI, GH)
            readout_block(spec, P, Sb, active, Yb)
            for i in range(active):
                s = slots[q0 + i]
                k = (done[s] + 1 + t) % C
                e = ring[s, k]
                for j in range(D):
                    e[at_state + j] = Sb[i * D + j]
                y = Ypred[ring_row[s, k]]
                for j in range(O):
                    y[j] = Yb[i * O + j]
        for i in range(m):
            s = slots[q0 + i]
            for j in range(D):
                S[s, j] = Sb[i * D + j]
            if vsince[s] != version:
                vsince[s] = version
                ssince[s] = done[s] + 1
            done[s] = done[s] + lens[q0 + i]


@njit(parallel=True, **_FLAGS)
def _run_pending_parallel(spec, P, hist, Ypred, slots, lens, version, workers):
    for w in prange(workers):
        _run_pending(spec, P, hist, Ypred, slots, lens, version, w, workers)


@njit(**_FLAGS)
def _flush(spec, P, hist, Ypred, seg_slots, version, threads):
    """Run every pending step of the series in ``seg_slots``."""
    steps, done = hist[3], hist[4]
    lens = steps[seg_slots] - done[seg_slots]
    keep = lens > 0
    slots = seg_slots[keep]
    lens = lens[keep]
    if slots.shape[0] == 0:
        return
    longest = np.argsort(-lens, kind="mergesort")
    slots = slots[longest]
    lens = lens[longest]
    workers = min(threads, (slots.shape[0] + ROW_BLOCK - 1) // ROW_BLOCK)
    if workers > 1:
        _run_pending_parallel(spec, P, hist, Ypred, slots, lens, version, workers)
    else:
        _run_pending(spec, P, hist, Ypred, slots, lens, version, 0, 1)


@njit(**_FLAGS)
def _run_block(net, loss, hist, Ypred, blk, nb, T, k1, lane, version, lanes_):
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
    C = ring.shape[1]
    at_state = ring.shape[2] - D
    I = spec[1]
    Oy = at_state - I
    empty = np.zeros(0, P.dtype)
    window(spec, P, bspec, PT, nb, WS[: nb * D], WX[: nb * T * I], T, WY[: nb * T * Oy], T - k1,
           lkind, lpar, LG[lane], scratch[lane], lossc, empty, empty, empty, SO[: nb * T * D],
           YO[: nb * T * O])  # fmt: skip
    lane_used[lane] = 1
    for w in range(nb):
        lane_loss[lane] += lossc[w, 0]
        lane_count[lane] += np.int64(lossc[w, 1])
        s = bslot[w]
        m = bm[w]
        if not bsame[w] or done[s] >= m:
            continue
        a = m - T
        for j in range(done[s] + 1, m + 1):
            t = w * T + j - a - 1
            k = j % C
            e = ring[s, k]
            for u in range(D):
                e[at_state + u] = SO[t * D + u]
            y = Ypred[ring_row[s, k]]
            for u in range(O):
                y[u] = YO[t * O + u]
        for u in range(D):
            S[s, u] = SO[(w * T + T - 1) * D + u]
        if vsince[s] != version:
            vsince[s] = version
            ssince[s] = done[s] + 1
        done[s] = m


@njit(**_FLAGS)
def _lane_pass(net, loss, data, hist, r0, end, is_win, lane, cfg, version, blk, lanes_):
    """Store the rows ``r0 .. end`` of the series of ``lane`` in their rings, and
    run the windows they close, in arrival order, into the lane's buffer.

    Windows of the same length are gathered and run up to ``ROW_BLOCK`` at a
    time (which changes no value: see :func:`streamrnn.bptt.window`); a
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
    C = ring.shape[1]
    at_state = I + Oy
    one = np.zeros(1, np.int64)
    nb = 0
    T_blk = 0
    for r in range(r0, end + 1):
        s = slot_rows[r]
        if s % LANES != lane:
            continue
        for w in range(nb):
            if bslot[w] == s:
                _run_block(net, loss, hist, Ypred, blk, nb, T_blk, k1, lane, version, lanes_)
                nb = 0
                break
        steps[s] += 1
        c = steps[s]
        e = ring[s, c % C]
        for j in range(I):
            e[j] = X[r, j]
        for j in range(Oy):
            e[I + j] = Yl[r, j]
        ring_row[s, c % C] = r
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
            _run_pending(spec, P, hist, Ypred, one, steps[one] - done[one], version, 0, 1)
        if nb and (T != T_blk or nb == ROW_BLOCK):
            _run_block(net, loss, hist, Ypred, blk, nb, T_blk, k1, lane, version, lanes_)
            nb = 0
        T_blk = T
        start = ring[s, a % C]
        for j in range(D):
            WS[nb * D + j] = start[at_state + j]
        for t in range(T):
            src = ring[s, (a + 1 + t) % C]
            for j in range(I):
                WX[(nb * T + t) * I + j] = src[j]
            lab = ring[s, (a + 1 + t + h) % C]
            for j in range(Oy):
                WY[(nb * T + t) * Oy + j] = lab[I + j]
        bslot[nb] = s
        bm[nb] = m
        bsame[nb] = same
        nb += 1
    if nb:
        _run_block(net, loss, hist, Ypred, blk, nb, T_blk, k1, lane, version, lanes_)


@njit(**_FLAGS)
def _block_buffers(k2, I, Oy, O, D, like):
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


@njit(parallel=True, **_FLAGS)
def _lanes_parallel(net, loss, data, hist, r0, end, is_win, cfg, version, blk, lanes_):
    for lane in prange(LANES):
        _lane_pass(net, loss, data, hist, r0, end, is_win, lane, cfg, version, blk, lanes_)


@njit(**_FLAGS)
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


@njit(**_FLAGS)
def _update(net, opt, lanes_, counts):
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
                G[:] = LG[lane]
            first = False
        else:
            Gl = LG[lane]
            for j in range(G.shape[0]):
                G[j] += Gl[j]
        total += lane_loss[lane]
        count += lane_count[lane]
    if count > 0:
        norm = _average(G, P.dtype.type(1.0 / count), segs)
        if np.isfinite(norm) and np.isfinite(total):
            t[0] += 1
            apply_update(okind, hyper, t[0], lrs[t[0] - t[1]], clip_scale(hyper, norm), P, G,
                         M1, M2, segs)  # fmt: skip
            refresh(spec, P, bspec, PT)
            counts[0] += 1
            counts[2] += count
        else:
            counts[1] += 1
    if not lane_used[0]:
        G[:] = 0.0  # it held the sum
    for lane in range(LANES):
        if lane_used[lane]:
            LG[lane][:] = 0.0
        lane_loss[lane] = 0.0
        lane_count[lane] = 0
        lane_used[lane] = 0


@njit(**_FLAGS)
def learn_chunk(net, opt, loss, data, hist, plan_, lanes_, cfg, counts):
    """Predict every row of a chunk and learn as windows close (see the module doc).

    ``data = (X, Yl, slot_rows, Ypred, seg_of)``; ``hist = (S, ring, ring_row,
    steps, done, vsince, ssince)``; ``plan_`` is :func:`plan`'s result;
    ``lanes_ = (LG, lane_loss, lane_count, lane_used, scratch)``;
    ``cfg = [h, k1, k2, batch, threads]``.
    """
    spec, P = net[0], net[1]
    X, Yl, slot_rows, Ypred, seg_of = data
    win_rows, upd_rows = plan_
    k2, threads = cfg[2], cfg[4]
    N = X.shape[0]
    D = hist[0].shape[1]
    t = opt[6]
    is_win = np.zeros(N, np.bool_)
    for w in range(win_rows.shape[0]):
        is_win[win_rows[w]] = True
    blk = _block_buffers(k2, X.shape[1], Yl.shape[1], Ypred.shape[1], D, P)
    r0 = 0
    for k in range(upd_rows.shape[0] + 1):
        end = upd_rows[k] if k < upd_rows.shape[0] else N - 1
        if end < r0:
            break
        # the segment's series, for the flush at its end
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
        version = t[0]
        if threads > 1 and n_seg > 1:
            _lanes_parallel(net, loss, (X, Yl, slot_rows, Ypred), hist, r0, end, is_win, cfg,
                            version, blk, lanes_)  # fmt: skip
        else:
            for lane in range(LANES):
                _lane_pass(net, loss, (X, Yl, slot_rows, Ypred), hist, r0, end, is_win, lane,
                           cfg, version, blk, lanes_)  # fmt: skip
        _flush(spec, P, hist, Ypred, seg_slots, version, threads)
        if k < upd_rows.shape[0]:
            _update(net, opt, lanes_, counts)
        r0 = end + 1
    counts[3] += win_rows.shape[0]


@njit(**_FLAGS)
def lane_scratch(spec, k2, like):
    """Scratch of :func:`streamrnn.bptt.window` for each lane: up to ``ROW_BLOCK``
    windows of ``k2`` steps."""
    return np.empty((LANES, scratch_size(spec, ROW_BLOCK, k2)), like.dtype)


# -- independent weights per key ------------------------------------------------


@njit(**_FLAGS)
def _key_update(spec, P, bspec, PT, G, M1, M2, opt, t, lossc, counts):
    """Apply one key's batch of windows to its own weights (see :func:`_update`)."""
    okind, hyper, lr_t, lr_v, segs = opt
    count = lossc[1]
    if count > 0:
        inv = P.dtype.type(1.0 / count)
        for j in range(G.shape[0]):
            G[j] *= inv
        norm = grad_norm(G, segs)
        if np.isfinite(norm) and np.isfinite(lossc[0]):
            t[0] += 1
            lr = lr_v[np.searchsorted(lr_t, t[0])]
            apply_update(okind, hyper, t[0], lr, clip_scale(hyper, norm), P, G, M1, M2, segs)
            refresh(spec, P, bspec, PT)
            counts[0] += 1
            counts[2] += np.int64(count)
        else:
            counts[1] += 1
    G[:] = 0.0
    lossc[0] = 0.0
    lossc[1] = 0.0


@njit(**_FLAGS)
def _key_pass(net, opt, loss, data, hist, keyed, q, cfg, W, buf):
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
    C = ring.shape[1]
    at_state = I + Oy
    one = np.full(1, s, np.int64)
    WS = buf[0, :D]
    WX = buf[1, : k2 * I]
    WY = buf[2, : k2 * Oy]
    SO = buf[3, : k2 * D]
    YO = buf[4, : k2 * O]
    lossc = np.zeros((1, 2))
    empty = np.zeros(0, P.dtype)
    for i in range(seg[q], seg[q + 1]):
        r = order[i]
        steps[s] += 1
        c = steps[s]
        e = ring[s, c % C]
        for j in range(I):
            e[j] = X[r, j]
        for j in range(Oy):
            e[I + j] = Yl[r, j]
        ring_row[s, c % C] = r
        m = c - h
        if m < k1 or m % k1:
            continue
        a = max(0, m - k2)
        T = m - a
        version = tk[s, 0]
        same = done[s] <= a or (vsince[s] == version and ssince[s] <= a + 1)
        if not same and done[s] < c:
            _run_pending(spec, P, hist, Ypred, one, steps[one] - done[one], version, 0, 1)
        start = ring[s, a % C]
        for j in range(D):
            WS[j] = start[at_state + j]
        for t in range(T):
            src = ring[s, (a + 1 + t) % C]
            for j in range(I):
                WX[t * I + j] = src[j]
            lab = ring[s, (a + 1 + t + h) % C]
            for j in range(Oy):
                WY[t * Oy + j] = lab[I + j]
        window(spec, P, bspec, PT, 1, WS, WX[: T * I], T, WY[: T * Oy], T - k1, lkind, lpar,
               Gk[s], W, lossc, empty, empty, empty, SO[: T * D], YO[: T * O])  # fmt: skip
        lossk[s, 0] += lossc[0, 0]
        lossk[s, 1] += lossc[0, 1]
        countk[s, 3] += 1
        if same and done[s] < m:
            for j in range(done[s] + 1, m + 1):
                t = j - a - 1
                k = j % C
                for u in range(D):
                    ring[s, k, at_state + u] = SO[t * D + u]
                y = Ypred[ring_row[s, k]]
                for u in range(O):
                    y[u] = YO[t * O + u]
            for u in range(D):
                S[s, u] = SO[(T - 1) * D + u]
            if vsince[s] != version:
                vsince[s] = version
                ssince[s] = done[s] + 1
            done[s] = m
        pendk[s] += 1
        if pendk[s] == batch:
            pendk[s] = 0
            if done[s] < c:  # rows before the update are predicted with the old weights
                _run_pending(spec, P, hist, Ypred, one, steps[one] - done[one], version, 0, 1)
            _key_update(spec, P, bspec, PT, Gk[s], M1k[s], M2k[s], opt, tk[s], lossk[s],
                        countk[s])  # fmt: skip
    if done[s] < steps[s]:
        _run_pending(spec, P, hist, Ypred, one, steps[one] - done[one], tk[s, 0], 0, 1)


@njit(parallel=True, **_FLAGS)
def learn_per_key(net, opt, loss, data, hist, keyed, cfg):
    """Each series of the chunk over its rows with its own weights, series in parallel.

    ``net = (spec, Pk, bspec, PTk)`` with a row of weights per slot; ``opt =
    (kind, hyper, lr_t, lr_v, segs)`` (the rate of update ``lr_t[i]`` is
    ``lr_v[i]``); ``data = (X, Yl, Ypred, order, seg, slots)`` as from
    :func:`streamrnn.kernels.group_rows`; ``keyed = (Gk, M1k, M2k, tk, pendk,
    lossk, countk)``; ``cfg = [h, k1, k2, batch, threads]``.
    """
    spec = net[0]
    X, Yl, Ypred = data[0], data[1], data[2]
    slots = data[5]
    k2 = cfg[2]
    D = hist[0].shape[1]
    n = slots.shape[0]
    workers = max(1, min(cfg[4], n))
    width = max(D, k2 * max(X.shape[1], Yl.shape[1], D, Ypred.shape[1]))
    size = scratch_size(spec, 1, k2)
    for w in prange(workers):
        W = np.empty(size, X.dtype)
        buf = np.empty((5, width), X.dtype)
        for q in range(w, n, workers):
            _key_pass(net, opt, loss, data, hist, keyed, q, cfg, W, buf)
