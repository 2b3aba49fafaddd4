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

from .errors import ConfigError

#: The accepted values of ``relative``.
MODES = (None, "last")


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
    """``(slots, sizes, pos)`` of a chunk's rows grouped by series (see ``Stream._rows``)."""
    sizes = np.diff(rows.seg)
    pos = np.arange(len(rows.order)) - np.repeat(rows.seg[:-1], sizes)
    return rows.slots, sizes, pos


def forward_fill(seed, groups, values):
    """Each row's last non-NaN value at or before it within its series.

    ``values`` (N, C) are grouped by series (stable), ``seed`` (series, C) the
    value each series carries in (NaN for none). Returns ``(filled, last)``:
    the filled rows, and each series' value after its rows.
    """
    slots, sizes, pos = groups
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
    from .evaluate import _lags

    return _lags(hist, groups, values, [lag])[0]


def sort_quantiles(Y, order, K):
    """Rearrange each target's ``K`` quantile outputs (columns ``j*K .. j*K+K-1``, in
    the order of the levels whose ascending order is ``order``) to increase with
    the level; ``Y`` is (..., outputs), changed in place."""
    Q = Y.reshape(*Y.shape[:-1], -1, K)
    out = np.empty_like(Q)
    out[..., order] = np.sort(Q, axis=-1)
    return out.reshape(Y.shape)
