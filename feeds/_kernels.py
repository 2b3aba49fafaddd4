"""Compiled passes over a chunk's rows, in arrival order, carrying per-key state.

Two passes, each one loop over rows:

* :func:`order_rows` applies the time policies (late rows, duplicate times)
  and, when rows are held back (a regular grid, or keeping the last of
  duplicate times), aggregates each key's pending row and releases it when a
  later row of that key arrives.
* :func:`finish_rows` turns the released rows into model inputs: time since the
  previous row, the missing-value policy of each column, and online scaling.

Both work on copies of the state that the caller commits only on success, and
report the first error as codes in ``err`` instead of raising: the public layer
writes the message. Per-key state lives in a few arrays indexed by the key's
slot (see :class:`feeds.feed.Feed` for the layouts).
"""

import numpy as np
from numba import njit

_FLAGS = dict(cache=True, error_model="numpy")

# error codes (err[0]); err[1] = input row, err[2] = column, err[3] = slot
OK, ERR_LATE, ERR_DUPLICATE, ERR_MISSING, ERR_INF, ERR_NO_FFILL, ERR_CAPACITY = range(7)
# cfg entries of order_rows
LATE, DUPLICATES, HOLD, GRID, AGGREGATE = range(5)
LATE_ERROR, LATE_DROP = 0, 1
DUP_ERROR, DUP_FIRST, DUP_LAST = 0, 1, 2
AGG_MEAN, AGG_LAST = 0, 1
# per-column missing policies
MISS_ERROR, MISS_MASK, MISS_FFILL, MISS_FILL, MISS_FFILL_OR_FILL, MISS_KEEP = range(6)
# KB columns (int64 flags per slot) and KT columns (times per slot)
HAS_LAST, HAS_EMIT, HAS_PEND, PEND_BIN = range(4)
T_LAST, T_EMIT, T_PEND = range(3)
# KV planes (float64 per slot and column)
FF, HAS_FF, SUM, COUNT, LAST = range(5)
# counts
N_LATE, N_DUP, N_MERGED, N_EMPTY = range(4)


@njit(**_FLAGS)
def _release(s, KT, KB, KV, grid, agg, origin, every, E, et, es, esrc, m, src):
    """Write slot ``s``'s pending row to ``E[m]``; returns the next free row or -1."""
    if m >= E.shape[0]:
        return -1
    C = E.shape[1]
    for j in range(C):
        if grid and agg == AGG_MEAN:
            c = KV[s, j, COUNT]
            E[m, j] = KV[s, j, SUM] / c if c > 0 else np.nan
        else:
            E[m, j] = KV[s, j, LAST]
    et[m] = origin + KB[s, PEND_BIN] * every if grid else KT[s, T_PEND]
    es[m] = s
    esrc[m] = src
    KB[s, HAS_PEND] = 0
    return m + 1


@njit(**_FLAGS)
def _pend(s, b, t, V, r, KT, KB, KV, grid, agg):
    """Open slot ``s``'s pending row (bin ``b``) with row ``r``, or merge ``r`` into it."""
    merge = KB[s, HAS_PEND] != 0
    for j in range(V.shape[1]):
        v = V[r, j]
        if not merge:
            KV[s, j, SUM] = 0.0
            KV[s, j, COUNT] = 0.0
            KV[s, j, LAST] = np.nan
        if grid:
            if not np.isnan(v):
                KV[s, j, SUM] += v
                KV[s, j, COUNT] += 1.0
                KV[s, j, LAST] = v
        else:  # the last of duplicate times replaces the row, missing values too
            KV[s, j, LAST] = v
    KB[s, HAS_PEND] = 1
    KB[s, PEND_BIN] = b
    KT[s, T_PEND] = t


@njit(**_FLAGS)
def order_rows(
    slot, t, V, cfg, origin, every, KT, KB, KV, flush, E, et, es, esrc, keep, counts, err
):
    """Time policies and pending rows.

    Without held rows (``cfg[HOLD] == 0``) sets ``keep[r]`` for each row that
    passes and returns how many do. With held rows, writes released rows to
    ``E`` (values), ``et`` (times), ``es`` (slots) and ``esrc`` (the input row
    that released it, -1 at a flush) and returns their number; when ``E`` is too
    small sets ``err[0] = ERR_CAPACITY`` and returns the rows needed so far.
    """
    late, dups, hold, grid, agg = cfg[LATE], cfg[DUPLICATES], cfg[HOLD], cfg[GRID], cfg[AGGREGATE]
    n = 0
    m = 0
    need = 0
    for r in range(slot.shape[0]):
        s = slot[r]
        tr = t[r]
        if KB[s, HAS_LAST]:
            if tr < KT[s, T_LAST]:
                if late == LATE_ERROR:
                    err[0], err[1], err[3] = ERR_LATE, r, s
                    return 0
                counts[N_LATE] += 1
                continue
            if tr == KT[s, T_LAST]:
                if dups == DUP_ERROR:
                    err[0], err[1], err[3] = ERR_DUPLICATE, r, s
                    return 0
                if dups == DUP_FIRST:
                    counts[N_DUP] += 1
                    continue
        KT[s, T_LAST] = tr
        KB[s, HAS_LAST] = 1
        if not hold:
            keep[r] = True
            n += 1
            continue
        b = np.int64((tr - origin) // every) if grid else np.int64(0)
        if KB[s, HAS_PEND]:
            same = b == KB[s, PEND_BIN] if grid else tr == KT[s, T_PEND]
            if same:
                if grid:
                    counts[N_MERGED] += 1
                else:
                    counts[N_DUP] += 1
                _pend(s, b, tr, V, r, KT, KB, KV, grid, agg)
                continue
            first_empty = KB[s, PEND_BIN] + 1
            need += 1 + (b - first_empty if grid else 0)
            if m >= 0:
                m = _release(s, KT, KB, KV, grid, agg, origin, every, E, et, es, esrc, m, r)
            if grid:
                for k in range(first_empty, b):  # empty bins: missing values
                    if m < 0 or m >= E.shape[0]:
                        m = -1
                        break
                    E[m, :] = np.nan
                    et[m] = origin + k * every
                    es[m] = s
                    esrc[m] = r
                    m += 1
                counts[N_EMPTY] += b - first_empty
        KB[s, HAS_PEND] = 0
        _pend(s, b, tr, V, r, KT, KB, KV, grid, agg)
    if flush and hold:
        for s in range(KB.shape[0]):
            if KB[s, HAS_PEND]:
                need += 1
                if m >= 0:
                    m = _release(s, KT, KB, KV, grid, agg, origin, every, E, et, es, esrc, m, -1)
    if not hold:
        return n
    if m < 0:
        err[0] = ERR_CAPACITY
        return need
    return m


@njit(**_FLAGS)
def finish_rows(
    A, idx, es, et, src, policy, fill, xcols, ycols, mcols, scols, scfg, dt_cfg,
    KT, KB, KV, SC, X, Y, YL, YS, counts, err,
):  # fmt: skip
    """Model inputs ``X`` and targets ``Y`` of the released rows ``A[idx]``.

    ``X`` holds the feature columns ``xcols``, then the time since the key's
    previous row when ``dt_cfg[0]`` is set (times times ``dt_cfg[1]``; the
    first row of a key gets ``dt_cfg[2]``), then a 0/1 indicator for each
    masked column in ``mcols``. ``Y`` holds the target columns ``ycols``,
    missing values left as NaN. Columns with ``scols[j]`` set are standardised
    with Welford's running mean and variance (per key when ``scfg[0]``, frozen
    after ``scfg[1]`` rows when that is >= 0); ``YL`` and ``YS`` get the
    location and scale used for each target so that outputs can be inverted.
    """
    C = A.shape[1]
    nx = xcols.shape[0]
    use_dt = dt_cfg[0] != 0.0
    per_key, freeze = scfg[0], scfg[1]
    v = np.empty(C)
    z = np.empty(C)
    for m in range(idx.shape[0]):
        row = idx[m]
        s = es[m]
        te = et[m]
        g = s if per_key else 0
        for j in range(C):
            a = A[row, j]
            if np.isinf(a):
                err[0], err[1], err[2], err[3] = ERR_INF, src[m], j, s
                return
            missing = np.isnan(a)
            if not missing:
                KV[s, j, FF] = a
                KV[s, j, HAS_FF] = 1.0
                if scols[j] and (freeze < 0 or SC[g, j, 0] < freeze):
                    c = SC[g, j, 0] + 1.0
                    d = a - SC[g, j, 1]
                    SC[g, j, 0] = c
                    SC[g, j, 1] += d / c
                    SC[g, j, 2] += d * (a - SC[g, j, 1])
            elif policy[j] == MISS_ERROR:
                err[0], err[1], err[2], err[3] = ERR_MISSING, src[m], j, s
                return
            elif policy[j] == MISS_FILL:
                a = fill[j]
                counts[4 + j] += 1
            elif policy[j] == MISS_FFILL or policy[j] == MISS_FFILL_OR_FILL:
                if KV[s, j, HAS_FF] != 0.0:
                    a = KV[s, j, FF]
                elif policy[j] == MISS_FFILL_OR_FILL:
                    a = fill[j]
                else:
                    err[0], err[1], err[2], err[3] = ERR_NO_FFILL, src[m], j, s
                    return
                counts[4 + j] += 1
            elif policy[j] == MISS_MASK:  # scaled value 0 (the running mean), and an indicator
                counts[4 + j] += 1
            # MISS_KEEP (targets): stays NaN
            v[j] = a
            if scols[j]:
                c = SC[g, j, 0]
                loc = SC[g, j, 1]
                sd = np.sqrt(SC[g, j, 2] / c) if c > 0 else 0.0
                scale = sd if sd > 0.0 else 1.0
                z[j] = 0.0 if np.isnan(a) else (a - loc) / scale
            else:
                z[j] = 0.0 if np.isnan(a) else a
        for q in range(nx):
            X[m, q] = z[xcols[q]]
        k = nx
        if use_dt:
            if KB[s, HAS_EMIT]:
                X[m, k] = (te - KT[s, T_EMIT]) * dt_cfg[1]
            else:
                X[m, k] = dt_cfg[2]
            k += 1
        KT[s, T_EMIT] = te
        KB[s, HAS_EMIT] = 1
        for q in range(mcols.shape[0]):
            X[m, k + q] = 1.0 if np.isnan(A[row, mcols[q]]) else 0.0
        for q in range(ycols.shape[0]):
            j = ycols[q]
            a = A[row, j]
            if scols[j]:
                c = SC[g, j, 0]
                sd = np.sqrt(SC[g, j, 2] / c) if c > 0 else 0.0
                scale = sd if sd > 0.0 else 1.0
                YL[m, q] = SC[g, j, 1]
                YS[m, q] = scale
                Y[m, q] = (a - SC[g, j, 1]) / scale
            else:
                YL[m, q] = 0.0
                YS[m, q] = 1.0
                Y[m, q] = a
