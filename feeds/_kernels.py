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

# error codes (err[0]); err[1] = row of the stream (cfg[ROW0] + row of the chunk),
# err[2] = column, err[3] = slot, err[4] = released row (finish_rows)
OK, ERR_LATE, ERR_DUPLICATE, ERR_MISSING, ERR_INF, ERR_NO_FFILL, ERR_CAPACITY = range(7)
ERR_OVERFLOW, ERR_RELEASED, ERR_GAP, ERR_SCALE = range(7, 11)
# cfg entries of order_rows
LATE, DUPLICATES, HOLD, GRID, AGGREGATE, ROW0, MAX_EMPTY, EXACT = range(8)
LATE_ERROR, LATE_DROP = 0, 1
DUP_ERROR, DUP_FIRST, DUP_LAST = 0, 1, 2
AGG_MEAN, AGG_LAST = 0, 1
# per-column missing policies
MISS_ERROR, MISS_MASK, MISS_FFILL, MISS_FILL, MISS_FFILL_OR_FILL, MISS_KEEP = range(6)
# KB columns (int64 flags per slot) and KT columns (times per slot)
HAS_LAST, HAS_EMIT, HAS_PEND, PEND_BIN, PEND_ROW, HAS_REL, REL_BIN = range(7)
T_LAST, T_EMIT, T_PEND = range(3)
# KV planes (float64 per slot and column); MEAN: the bin's running mean, kept only once
# its SUM has overflowed (SUM is then inf)
FF, HAS_FF, SUM, COUNT, LAST, MEAN = range(6)
# a float time this close to a bin edge, relative to its distance from the origin in
# steps, is on the edge: a few ulps, whatever the magnitude of the times
EDGE = 8 * np.finfo(np.float64).eps
# counts
N_LATE, N_DUP, N_MERGED, N_EMPTY = range(4)
# rows per block of finish_rows: a block's outputs stay in the L1 cache
BLOCK = 256


@njit(**_FLAGS)
def _release(s, KT, KB, KV, grid, agg, origin, every, E, et, es, esrc, m):
    """Release slot ``s``'s pending row into ``E[:, m]``; returns the next free row, or
    -1 once ``E`` is full (``m`` of -1 stays -1: the key's state moves on regardless,
    so that the rows still needed can be counted)."""
    KB[s, HAS_PEND] = 0
    KB[s, HAS_REL] = 1
    KB[s, REL_BIN] = KB[s, PEND_BIN]
    if m < 0 or m >= E.shape[1]:
        return -1
    C = E.shape[0]
    for j in range(C):
        if grid and agg == AGG_MEAN:
            c = KV[s, j, COUNT]
            total = KV[s, j, SUM]
            E[j, m] = np.nan if c == 0 else total / c if np.isfinite(total) else KV[s, j, MEAN]
        else:
            E[j, m] = KV[s, j, LAST]
    et[m] = origin + KB[s, PEND_BIN] * every if grid else KT[s, T_PEND]
    es[m] = s
    esrc[m] = KB[s, PEND_ROW]
    return m + 1


@njit(**_FLAGS)
def _float_bin(q):
    """The grid bin of a float time ``q`` steps from the origin: ``floor(q)``, except
    that a time a few ulps short of a bin edge (0.3 / 0.1 = 2.9999999999999996)
    is on the edge."""
    k = np.round(q)
    if np.abs(q - k) <= EDGE * max(1.0, np.abs(q)):
        return np.int64(k)
    return np.int64(np.floor(q))


@njit(**_FLAGS)
def _pend(s, b, t, V, r, row, KT, KB, KV, grid, agg):
    """Open slot ``s``'s pending row (bin ``b``) with row ``r``, or merge ``r`` into it.

    ``row`` is the row's number in the stream; a pending row keeps the first
    (grid bin) or last (duplicate times) row's number for messages.
    """
    merge = KB[s, HAS_PEND] != 0
    if not merge or not grid:
        KB[s, PEND_ROW] = row
    for j in range(len(V)):
        v = V[j][r]
        if not merge:
            KV[s, j, SUM] = 0.0
            KV[s, j, COUNT] = 0.0
            KV[s, j, LAST] = np.nan
        if grid:
            if not np.isnan(v):
                c = KV[s, j, COUNT] + 1.0
                total = KV[s, j, SUM] + v
                if not np.isfinite(total):  # values finite but huge: a running mean from here
                    if np.isfinite(KV[s, j, SUM]):
                        KV[s, j, MEAN] = KV[s, j, SUM] / (c - 1.0)
                    KV[s, j, MEAN] += v / c - KV[s, j, MEAN] / c  # never beyond the values
                KV[s, j, SUM] = total
                KV[s, j, COUNT] = c
                KV[s, j, LAST] = v
        else:  # the last of duplicate times replaces the row, missing values too
            KV[s, j, LAST] = v
    KB[s, HAS_PEND] = 1
    KB[s, PEND_BIN] = b
    KT[s, T_PEND] = t


@njit(**_FLAGS)
def order_rows(
    slot, t, V, policy, cfg, origin, every, top, KT, KB, KV, flush, E, et, es, esrc, keep, counts,
    err,
):  # fmt: skip
    """Time policies and pending rows over ``V``, the value columns (a tuple of arrays).

    Without held rows (``cfg[HOLD] == 0``) sets ``keep[r]`` for each row that
    passes and returns how many do. With held rows, writes released rows to
    ``E`` (values), ``et`` (times), ``es`` (slots) and ``esrc`` (the stream row
    it came from: the first of a bin; for an empty bin, the row that closed it)
    and returns their number; when ``E`` is too small sets
    ``err[0] = ERR_CAPACITY`` and returns the rows needed so far.

    Each accepted row is checked as it arrives, held or not: inf anywhere,
    values beyond ``top`` (the largest of the chunks' dtype), and missing values
    in columns whose policy is ``MISS_ERROR``.
    """
    late, dups, hold, grid, agg = cfg[LATE], cfg[DUPLICATES], cfg[HOLD], cfg[GRID], cfg[AGGREGATE]
    row0, max_empty, exact = cfg[ROW0], cfg[MAX_EMPTY], cfg[EXACT]
    suspect = np.zeros(slot.shape[0], np.bool_)  # rows with a value not in [-top, top]
    for j in range(len(V)):
        col = V[j]
        for r in range(slot.shape[0]):
            suspect[r] |= not np.abs(col[r]) <= top
    n = 0
    m = 0
    need = 0
    for r in range(slot.shape[0]):
        s = slot[r]
        tr = t[r]
        if KB[s, HAS_LAST]:
            if tr < KT[s, T_LAST]:
                if late == LATE_ERROR:
                    err[0], err[1], err[3] = ERR_LATE, row0 + r, s
                    return 0
                counts[N_LATE] += 1
                continue
            if tr == KT[s, T_LAST]:
                if dups == DUP_ERROR:
                    err[0], err[1], err[3] = ERR_DUPLICATE, row0 + r, s
                    return 0
                if dups == DUP_FIRST:
                    counts[N_DUP] += 1
                    continue
        b = np.int64(0)
        if hold:
            if grid:
                q = (tr - origin) / every
                if not np.abs(q) < 4e18:
                    err[0], err[1], err[3] = ERR_GAP, row0 + r, s
                    return 0
                b = np.int64((tr - origin) // every) if exact else _float_bin(q)
            released = not KB[s, HAS_PEND] and KB[s, HAS_REL]  # after flush(): all out
            if released:
                if grid and b <= KB[s, REL_BIN]:
                    if late == LATE_ERROR:
                        err[0], err[1], err[3] = ERR_RELEASED, row0 + r, s
                        return 0
                    counts[N_LATE] += 1
                    continue
                if not grid and tr == KT[s, T_LAST]:  # cannot replace a released row
                    counts[N_DUP] += 1
                    continue
            if grid and (KB[s, HAS_PEND] or released):
                previous = KB[s, PEND_BIN] if KB[s, HAS_PEND] else KB[s, REL_BIN]
                if b - previous - 1 > max_empty:
                    err[0], err[1], err[3] = ERR_GAP, row0 + r, s
                    return 0
        if suspect[r]:
            for j in range(len(V)):
                v = V[j][r]
                code = OK
                if np.isinf(v):
                    code = ERR_INF
                elif np.isnan(v):
                    if policy[j] == MISS_ERROR:
                        code = ERR_MISSING
                elif np.abs(v) > top:
                    code = ERR_OVERFLOW
                if code != OK:
                    err[0], err[1], err[2], err[3], err[4] = code, row0 + r, j, s, -1
                    return 0
        KT[s, T_LAST] = tr
        KB[s, HAS_LAST] = 1
        if not hold:
            keep[r] = True
            n += 1
            continue
        if KB[s, HAS_PEND]:
            same = b == KB[s, PEND_BIN] if grid else tr == KT[s, T_PEND]
            if same:
                if grid:
                    counts[N_MERGED] += 1
                else:
                    counts[N_DUP] += 1
                _pend(s, b, tr, V, r, row0 + r, KT, KB, KV, grid, agg)
                continue
            need += 1
            m = _release(s, KT, KB, KV, grid, agg, origin, every, E, et, es, esrc, m)
        if grid and KB[s, HAS_REL]:  # empty bins since the key's last released one
            first_empty = KB[s, REL_BIN] + 1
            need += b - first_empty
            for k in range(first_empty, b):
                if m < 0 or m >= E.shape[1]:
                    m = -1
                    break
                E[:, m] = np.nan
                et[m] = origin + k * every
                es[m] = s
                esrc[m] = row0 + r
                m += 1
            counts[N_EMPTY] += b - first_empty
        KB[s, HAS_PEND] = 0
        _pend(s, b, tr, V, r, row0 + r, KT, KB, KV, grid, agg)
    if flush and hold:
        for s in range(KB.shape[0]):
            if KB[s, HAS_PEND]:
                need += 1
                m = _release(s, KT, KB, KV, grid, agg, origin, every, E, et, es, esrc, m)
    if not hold:
        return n
    if m < 0:
        err[0] = ERR_CAPACITY
        return need
    return m


@njit(**_FLAGS)
def finish_rows(
    A, idx, es, et, src, policy, fill, xpos, ypos, mpos, scols, scfg, dt_cfg,
    KT, KB, KV, SC, X, Y, YL, YS, counts, err,
):  # fmt: skip
    """Model inputs ``X`` and targets ``Y`` of rows ``idx`` of the value columns ``A``.

    Value column ``j`` goes to column ``xpos[j]`` of ``X`` when that is >= 0,
    its 0/1 missing indicator to column ``mpos[j]``, and to column ``ypos[j]``
    of ``Y`` (missing values left as NaN). With ``dt_cfg[0]`` set, column
    ``dt_cfg[3]`` of ``X`` gets the time since the key's previous row, times
    ``dt_cfg[1]`` (``dt_cfg[2]`` at a key's first row). Columns with ``scols[j]``
    set are standardised with Welford's running mean and variance (per key
    when ``scfg[0]``, frozen after ``scfg[1]`` values when that is >= 0);
    ``YL`` and ``YS`` get the location and scale used for each target so that
    outputs can be inverted.

    Columns are independent, so within a block of rows (small enough for its
    outputs to stay in cache) the loop runs column by column, each column's
    values contiguous; the error reported is the first in row order.
    """
    M = idx.shape[0]
    per_key, freeze = scfg[0], scfg[1]
    first_bad = M
    if dt_cfg[0] != 0.0:
        k = np.int64(dt_cfg[3])
        for m in range(M):
            s = es[m]
            if KB[s, HAS_EMIT]:
                gap = et[m] - KT[s, T_EMIT]
                if not gap > 0:  # integer times that far apart wrap: take them as floats
                    gap = np.float64(et[m]) - np.float64(KT[s, T_EMIT])
                X[m, k] = gap * dt_cfg[1]
                if np.isinf(X[m, k]):  # too large for X's dtype
                    err[0], err[1], err[2], err[3], err[4] = ERR_OVERFLOW, src[m], -1, s, m
                    first_bad = m
                    break
            else:
                X[m, k] = dt_cfg[2]
            KT[s, T_EMIT] = et[m]
            KB[s, HAS_EMIT] = 1
    for b0 in range(0, M, BLOCK):
        b1 = min(b0 + BLOCK, M)
        for j in range(len(A)):
            _finish_column(j, b0, b1, A[j], idx, es, src, policy[j], fill[j], xpos[j], ypos[j],
                           mpos[j], scols[j], per_key, freeze, KV, SC, X, Y, YL, YS, counts,
                           err, first_bad)  # fmt: skip
            if err[0] != OK:
                first_bad = min(first_bad, err[4])
        if first_bad < M:
            return
    if dt_cfg[0] == 0.0:
        for m in range(M):
            KT[es[m], T_EMIT] = et[m]
            KB[es[m], HAS_EMIT] = 1


@njit(**_FLAGS)
def _finish_column(
    j, b0, b1, col, idx, es, src, pol, fill, xq, yq, mq, scaled, per_key, freeze,
    KV, SC, X, Y, YL, YS, counts, err, first_bad,
):  # fmt: skip
    """Rows ``b0:b1`` of value column ``j`` (see :func:`finish_rows`).

    Stops at the column's first error, recorded in ``err`` when it comes
    before row ``first_bad``.
    """
    carry = pol == MISS_FFILL or pol == MISS_FFILL_OR_FILL
    start = b0
    if not scaled and not carry and mq < 0 and yq < 0 and xq >= 0:
        # a plain feature: copy until the first value that needs a policy
        top = np.finfo(X.dtype).max
        while start < b1:
            a = col[idx[start]]
            if not np.abs(a) <= top:  # NaN, inf, or too large for X's dtype
                break
            X[start, xq] = a
            start += 1
    for m in range(start, b1):
        s = es[m]
        g = s if per_key else 0
        raw = col[idx[m]]
        a = np.float64(raw)
        code = OK
        if np.isinf(a):
            code = ERR_INF
        elif not np.isnan(a):
            if carry:
                KV[s, j, FF] = a
                KV[s, j, HAS_FF] = 1.0
            if scaled and (freeze < 0 or SC[g, j, 0] < freeze):
                c = SC[g, j, 0] + 1.0
                d = a - SC[g, j, 1]
                SC[g, j, 0] = c
                SC[g, j, 1] += d / c
                SC[g, j, 2] += d * (a - SC[g, j, 1])
                if not (np.isfinite(SC[g, j, 1]) and np.isfinite(SC[g, j, 2])):
                    code = ERR_SCALE
        elif pol == MISS_ERROR:
            code = ERR_MISSING
        elif pol == MISS_FILL:
            a = fill
            counts[4 + j] += 1
        elif carry:
            if KV[s, j, HAS_FF] != 0.0:
                a = KV[s, j, FF]
            elif pol == MISS_FFILL_OR_FILL:
                a = fill
            else:
                code = ERR_NO_FFILL
            counts[4 + j] += 1
        elif pol == MISS_MASK:  # scaled value 0 (the running mean), and an indicator
            counts[4 + j] += 1
        # MISS_KEEP (targets only): stays NaN
        loc, scale = 0.0, 1.0
        if code == OK and scaled:
            c = SC[g, j, 0]
            loc = SC[g, j, 1]
            sd = np.sqrt(SC[g, j, 2] / c) if c > 0 else 0.0
            scale = sd if sd > 0.0 else 1.0
        if code == OK and xq >= 0:
            X[m, xq] = 0.0 if np.isnan(a) else (a - loc) / scale if scaled else a
            if np.isinf(X[m, xq]):  # finite in float64, too large for X's dtype
                code = ERR_OVERFLOW
        if code == OK and mq >= 0:
            X[m, mq] = 1.0 if np.isnan(raw) else 0.0
        if code == OK and yq >= 0:
            Y[m, yq] = (raw - loc) / scale if scaled else raw
            YL[m, yq] = loc
            YS[m, yq] = scale
            if np.isinf(Y[m, yq]):
                code = ERR_OVERFLOW
        if code != OK:
            if m < first_bad:
                err[0], err[1], err[2], err[3], err[4] = code, src[m], j, s, m
            return
