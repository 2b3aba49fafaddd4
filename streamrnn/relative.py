"""Forecasts relative to a naive forecast, and the rules every forecast obeys.

With ``relative="last"`` the network does not forecast the level of a target
but its change from the last observed value: the forecast made at a series'
row ``t`` is ``anchor_t + scale_t * output_t``, where ``anchor_t`` is the last
observed value of the target at or before row ``t`` (before it, for
``horizon=0``, where the row's own target is what is forecast) and ``scale_t``
is the feed's scale of the target at row ``t`` (1 without scaling). A learner
labels the output of row ``t`` with ``(y_{t+h} - anchor_t) / scale_t``. An
untrained network (outputs near 0) thus starts at persistence ("same as last
time") and learns what persistence misses, which is what the forecasting
literature calls a skip connection to the naive forecast. Until a series has
an observed target, the anchor is the feed's running mean of the target (0
without scaling): the output is then a level, as without ``relative``.

Rollouts (``forecast(keys, horizon)``) add each step's change to the level of
the step before: fed-back inputs carry the level, and step ``k``'s forecast is
the level path of the point forecast up to ``k - 1`` plus ``scale * output``.

A learner also **shrinks** the network's changes towards persistence when they
do not earn their keep (``shrink=True``, its default with ``relative="last"``):
the forecast is ``anchor + scale * gain * output``, where each key's ``gain``
in [0, 1] is the least-squares gain of the realised changes (the labels) on
the changes the network forecast, over the key's labels before the row, with
older ones forgotten by a factor :data:`SHRINK_FORGET` per label, and taken
down by the factor ``max(0, 1 - 2/t**2)``, ``t`` being the gain over its
standard error: 0 while ``t**2 <= 2``, where Akaike's criterion would leave
the network's change out of a regression of the labels (:data:`KEEP_T2`), and
close to 1 when ``t`` is large. A gain that the labels cannot tell from 0
counts for nothing. A network whose changes are noise (a
price that moves as a random walk) gets a gain near 0 and forecasts close to
persistence; one whose changes are right gets a gain near 1. Quantiles move
with their median: each is shifted by the amount the point forecast was
shrunk (and blended, below), so the interval keeps its width.

A learner also **blends in an online linear autoregression** (``ar``, 7 lags
by default with ``relative="last"``): each key's targets are fitted by
recursive least squares on an intercept and their last ``ar`` observed values
(:mod:`streamrnn.autoregression`), and its forecast change ``a`` (the AR's
forecast less the anchor, in the same scale) pulls the shrunk change ``c``
towards it: the change returned is ``c + weight * (a - c)``. The weight is
each key's gain of the same kind as the shrinkage gain, fitted to the errors
``label - c`` on the differences ``a - c`` over the key's past labels: in [0,
1], 0 while the AR's departures from the network tell nothing, near 1 where the
AR forecasts better. The network learns as it would alone, and forecasts while
the AR has fewer than ``ar`` values are the network's. A rollout blends the
AR's forecasts fed the rollout's own levels, for learners of ``horizon=1``.

Given the input columns that hold each target's **seasonal naive forecast**
(``seasonal``: a feed's lag of ``season - horizon`` rows, which the backfill
adds and names by default), the change then moves towards that forecast's in
the same way, by a second weight fitted to the errors left after the AR. A
series that repeats its last season (monthly orders, hourly temperatures)
thus leans on it even before the network has learned to read the lag.
Rollouts do not blend it.

A learner with quantiles **calibrates** its intervals online
(``calibrate=True``, its default with ``relative="last"`` and a pinball loss):
each key's quantiles are spread around their median by a factor ``m``, and
after each label ``log m`` grows by :data:`CALIBRATION_STEP` times (1 - the
nominal share outside the outer quantiles) when the label fell outside the
interval issued for it, and shrinks by the step times that share when it fell
inside. The step is larger while a series is young (:data:`CALIBRATION_START`
``/ sqrt(n + 1)`` after its ``n``-th row, until that falls to the step), so
that a short series settles within its first hundred rows. The share of labels outside then
tends to the nominal one whatever the network learned (adaptive conformal
inference, Gibbs and Candes, 2021, in a multiplicative form). The median is
unchanged.

Every returned forecast also obeys two rules, whatever the mode:

- **Quantiles never cross**: the outputs of a target's quantiles are sorted
  (rearranged) in each row, so that they increase with the quantile level.
  The rearranged quantiles score no worse under the pinball loss than the
  raw ones (Chernozhukov, Fernandez-Val and Galichon, 2010).
- **A lower bound** (``minimum``), when given, is applied to every forecast
  and quantile after that (a target that cannot be negative: ``minimum=0``).

Everything here is a function of each series' rows in order, so it is the
same bit for bit however the stream is cut.
"""

import numpy as np

from .core.jit import exact_kernel
from .errors import ConfigError

#: The accepted values of ``relative``.
MODES = (None, "last")
#: The weight kept by an older label in a key's shrinkage gain, per later label.
SHRINK_FORGET = 0.995
#: A gain is taken down by ``max(0, 1 - KEEP_T2 / t**2)``: 0 up to ``t**2 = 2``, the
#: value below which Akaike's criterion drops a regressor.
KEEP_T2 = 2.0


@exact_kernel
def gain_of(sums):
    """The shrinkage gain from one series' forgotten sums ``(label * made, made ** 2,
    label ** 2, count)``: the least-squares gain ``b`` clipped to [0, 1], times
    ``max(0, 1 - KEEP_T2 / t ** 2)`` where ``t`` is ``b`` over its standard error. A gain
    that cannot be told from noise is thus taken down towards 0 (persistence)."""
    sxy, sxx, syy, n = sums[0], sums[1], sums[2], sums[3]
    if sxx <= 0.0 or sxy <= 0.0 or n <= 1.0:
        return 0.0
    b = sxy / sxx
    resid = syy - b * sxy  # residual sum of squares of the fit
    if resid <= 0.0:
        return min(b, 1.0)
    t2 = b * sxy * (n - 1.0) / resid  # b ** 2 / (resid / (n - 1) / sxx)
    return min(b, 1.0) * max(0.0, 1.0 - KEEP_T2 / t2)


@exact_kernel
def shrink_gains(seg, labels, made, state, forget, gain):
    """Each row's shrinkage gain, then the gain's sums updated with the row's label.

    Rows are grouped by series (``seg``: group boundaries); ``labels`` (N, T) are the
    realised changes, ``made`` (N, T) the changes the network forecast for them (NaN
    where either is missing); ``state`` (groups, T, 4) holds each series' sums (see
    :func:`gain_of`), each older term forgotten by ``forget`` per label, and is
    updated; ``gain`` (N, T) gets :func:`gain_of` of the sums of the rows before.
    """
    for g in range(seg.shape[0] - 1):
        for r in range(seg[g], seg[g + 1]):
            for j in range(labels.shape[1]):
                gain[r, j] = gain_of(state[g, j])
                d, c = labels[r, j], made[r, j]
                if not (np.isnan(d) or np.isnan(c)):
                    state[g, j, 0] = forget * state[g, j, 0] + d * c
                    state[g, j, 1] = forget * state[g, j, 1] + c * c
                    state[g, j, 2] = forget * state[g, j, 2] + d * d
                    state[g, j, 3] = forget * state[g, j, 3] + 1.0


#: How fast an interval's width follows its misses (see ``calibrate``).
CALIBRATION_STEP = 0.05
#: ... and how fast while a series is young: this over sqrt(rows + 1), while larger.
CALIBRATION_START = 0.5
_LOG_WIDTH_MAX = 5.0  # widths stay within e**-5 .. e**5 of the network's


@exact_kernel
def calibrate(seg, labels, C, point, outer, nominal, step, width, ring, seen):
    """Spread each row's quantile changes around their median, then learn from its label.

    Rows are grouped by series (``seg``); ``C`` (N, T, K) holds the changes each
    quantile forecasts (changed in place), ``labels`` (N, T) the realised changes
    (NaN where missing), ``point`` the median's index and ``outer`` the indices of
    the lowest and highest quantiles; ``nominal`` is the share meant to fall
    outside them; after each label the log spread moves by ``max(step,
    CALIBRATION_START / sqrt(rows + 1))`` times (miss - nominal), ``rows`` being the
    series' rows before. Each series ``g`` carries ``width[g, t]`` (log of the spread),
    ``ring[g]`` (the outer quantiles issued for its last ``ring.shape[1]`` rows,
    oldest at ``seen[g] % len``) and ``seen[g]`` (its rows so far).
    """
    h = ring.shape[1]
    lo, hi = outer[0], outer[1]
    for g in range(seg.shape[0] - 1):
        for r in range(seg[g], seg[g + 1]):
            at = seen[g] % h if h else 0
            now = max(step, CALIBRATION_START / np.sqrt(seen[g] + 1.0))
            for j in range(C.shape[1]):
                m = np.exp(width[g, j])
                mid = C[r, j, point]
                for k in range(C.shape[2]):
                    C[r, j, k] = mid + m * (C[r, j, k] - mid)
                if h:  # the interval issued `h` rows before, then this row's
                    a, b = ring[g, at, j, 0], ring[g, at, j, 1]
                    ring[g, at, j, 0], ring[g, at, j, 1] = C[r, j, lo], C[r, j, hi]
                else:
                    a, b = C[r, j, lo], C[r, j, hi]
                d = labels[r, j]
                if not (np.isnan(d) or np.isnan(a)):
                    miss = 1.0 if (d < a or d > b) else 0.0
                    w = width[g, j] + now * (miss - nominal)
                    width[g, j] = min(max(w, -_LOG_WIDTH_MAX), _LOG_WIDTH_MAX)
            seen[g] += 1


@exact_kernel
def current_gains(state):
    """The gain a series' next forecast gets, from its sums (series, T, 4)."""
    out = np.empty(state.shape[:2])
    for g in range(state.shape[0]):
        for j in range(state.shape[1]):
            out[g, j] = gain_of(state[g, j])
    return out


def check_mode(value):
    """``relative`` checked: None or ``"last"``."""
    if value not in MODES:
        raise ConfigError(
            f"relative must be None (forecast levels) or 'last' (forecast the change from the "
            f"last observed value), got {value!r}"
        )
    return value


def check_minimum(value):
    """``minimum`` checked: None or a finite number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ConfigError(f"minimum must be a number or None, got {value!r}")
    if not np.isfinite(value):
        raise ConfigError(f"minimum must be finite, got {value!r}")
    return float(value)


def groups_of(rows):
    """``(sizes, pos)`` of a chunk's rows grouped by series (see ``Stream._rows``): each
    series' row count and each row's position within its series."""
    sizes = np.diff(rows.seg)
    pos = np.arange(len(rows.order)) - np.repeat(rows.seg[:-1], sizes)
    return sizes, pos


def forward_fill(seed, groups, values):
    """Each row's last non-NaN value at or before it within its series.

    ``values`` (N, C) are grouped by series (stable), ``seed`` (series, C) the
    value each series carries in (NaN for none). Returns ``(filled, last)``:
    the filled rows, and each series' value after its rows.
    """
    sizes, pos = groups
    N, C = values.shape
    ext = sizes + 1
    start = np.cumsum(ext) - ext
    buf = np.empty((int(ext.sum()), C), np.float64)
    buf[start] = seed
    at = np.repeat(start + 1, sizes) + pos
    buf[at] = values
    idx = np.where(np.isnan(buf), 0, np.arange(len(buf))[:, None])
    idx[start] = start[:, None]  # a series never reaches into the one before it
    np.maximum.accumulate(idx, axis=0, out=idx)
    filled = np.take_along_axis(buf, idx, axis=0)
    return filled[at], filled[start + sizes]


def lagged(hist, groups, values, lag):
    """Each row's value ``lag`` rows before it in its series; ``hist`` (series, L, C),
    each series' last ``L >= lag`` values, oldest first, is updated in place."""
    from . import evaluate

    sizes, pos = groups
    return evaluate.lagged(hist, (np.arange(len(sizes)), sizes, pos), values, [lag])[0]


def sort_quantiles(Y, order, K):
    """Rearrange each target's ``K`` quantile outputs (columns ``j*K .. j*K+K-1``, in
    the order of the levels whose ascending order is ``order``) to increase with
    the level; ``Y`` is (..., outputs). Returns a new array."""
    Q = Y.reshape(*Y.shape[:-1], -1, K)
    out = np.empty_like(Q)
    out[..., order] = np.sort(Q, axis=-1)
    return out.reshape(Y.shape)
