"""Prequential ("test-then-train") evaluation of an online learner over a stream.

:func:`progressive` feeds a stream to an :class:`~streamrnn.OnlineLearner` chunk
by chunk and scores every output before the learner learns from its label:
each figure is what the learner would have scored live.

Definitions
-----------
With ``h = learner.horizon``, the output of a series at its step ``t`` is a
forecast of the series' targets at step ``t + h``. It is scored when that row
arrives (``h = 0``: against the row's own targets), in the data units of the
targets (``y * y_scale + y_loc`` when the feed scales them, turned back from its
transforms, see ``Chunk.y_in_units``). A row is *scored*
when its output of ``h`` steps before exists and at least one of its targets is
labeled; a NaN target is no label and counts nowhere.

``mae``, ``rmse``
    Mean absolute and root mean squared error of the model over the labeled
    entries, per target and pooled over all targets. For a pinball learner the
    point forecast is the 0.5 quantile, or without one the middle quantile (the
    lower of the two middle ones for an even number).
``mase``
    Model MAE / MAE of the persistence forecast, on the same entries: those
    where persistence has a value. Persistence forecasts step ``t + h`` by the
    target at step ``t``, the last one known at the forecast's origin (for
    ``h = 0``, by the target at step ``t - 1``, since the row's own is what is
    forecast). ``persistence_mae`` and ``persistence_rmse`` come with it.
``mase_seasonal``
    Model MAE / MAE of the seasonal naive forecast with period ``season``
    steps, on the same entries: step ``t + h`` is forecast by the target one
    season before it (``season * ceil(h / season)`` steps before for
    ``h > season``, so that the value is known at the origin). Entries
    without a value that far back are skipped for this baseline only;
    ``Result.baseline_rows`` says how many rows it scored.
``mase_ar``
    Model MAE / MAE of an online linear autoregression AR(``p``), ``p =
    ar_order`` (7 by default), on the same entries: per key and per target, a
    recursive least squares fit (forgetting factor 1, weights starting at 0,
    ``P`` at ``1000 I``) of step ``t + h`` on an intercept and the forward-filled
    targets at steps ``t - p + 1 .. t`` (for ``h = 0``, of step ``t`` on those at
    ``t - p .. t - 1``, like persistence). Each forecast is made at its origin
    and scored before the fit learns from its target; a NaN target teaches
    nothing and is forward-filled over. An entry whose window reaches back
    before its key's first labeled target has no forecast and is skipped for
    this baseline only (``Result.baseline_rows``). ``ar_mae`` and ``ar_rmse``
    come with it.
``coverage`` (pinball losses)
    Fraction of labeled targets inside ``[lowest quantile, highest quantile]``,
    with ``coverage_nominal`` (``q_max - q_min``) and, per quantile ``q``,
    ``below_q``: the fraction of targets at or below it (calibration: close to
    ``q`` when the quantiles are right).
``accuracy`` (cross-entropy losses)
    Fraction of labeled rows whose largest output is the target class.

Sums are exact: every figure is the exact sum of its float64 terms, rounded
once when read, and the AR baseline runs through each key's rows one after
another, so the figures do not depend on how the stream is cut into chunks.

Examples
--------
A small GRU learns one-step forecasts of a sine wave, read in twelve chunks;
a snapshot every 400 scored rows shows it overtaking persistence. A sine wave
is an AR(2) process, though, which the AR baseline all but learns exactly; the
learner's forecasts lean on its own AR (``ar=7``), but its weight, learned from
few labels, stays short of the AR's:

>>> import numpy as np, pandas as pd, feeds, streamrnn
>>> from streamrnn.evaluate import progressive
>>> wave = pd.DataFrame({"time": np.arange(1200), "wave": np.sin(np.arange(1200) / 4.0)})
>>> learner = streamrnn.OnlineLearner(
...     streamrnn.GRU(1, 8, output_size=1, dtype="float64", seed=0),
...     tbptt=(8, 16), optimizer=streamrnn.optim.Adam(lr=0.03), horizon=1,
...     feed=feeds.Feed(feeds.Schema(targets="wave"), dtype="float64"))
>>> chunks = [wave.iloc[a : a + 100] for a in range(0, 1200, 100)]
>>> result = progressive(chunks, learner, season=25, every=400, report=lambda snap: None)
>>> result.rows, result.baseline_rows
(1199, {'persistence': 1199, 'seasonal': 1175, 'ar': 1193})
>>> [(snap["rows"], round(snap["mase"], 2)) for snap in result.history]
[(400, 0.17), (800, 0.09)]
>>> bool(result.metrics["mase_ar"] > 1), round(result.metrics["ar_mae"], 3)
(True, 0.001)
>>> list(result.metrics)  # doctest: +NORMALIZE_WHITESPACE
['mae', 'rmse', 'mase', 'persistence_mae', 'persistence_rmse',
 'mase_seasonal', 'seasonal_mae', 'seasonal_rmse', 'mase_ar', 'ar_mae', 'ar_rmse']
"""

import copy
import math
import time
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import pandas as pd
import pyarrow as pa

import feeds

from ._validate import positive_int
from .autoregression import fresh as _ar_fresh
from .autoregression import run as _ar_run
from .core.jit import exact_kernel
from .errors import ConfigError, InputError
from .losses import CrossEntropy, Pinball
from .stream import through_feed

__all__ = ["METRICS", "Result", "Running", "progressive"]

#: Metric names :func:`progressive` accepts.
METRICS = ("mae", "rmse", "mase", "mase_seasonal", "mase_ar", "coverage", "accuracy")

#: The baselines: the metric that brings each, and the prefix of its figures.
_BASELINES = (("mase", "persistence"), ("mase_seasonal", "seasonal"), ("mase_ar", "ar"))

_TABLES = (pd.DataFrame, pa.Table, pa.RecordBatch)

# frexp gives v = m * 2**e with 0.5 <= |m| < 1 and e in -1073 .. 1024 for finite
# float64 values; m * 2**53 is an integer. A value is kept as that integer, split in
# two halves of 26 and 27 bits, added into int64 counters per (column, e).
_EMIN = -1073
_BUCKETS = 1024 - _EMIN + 1
_HALF = 26


@exact_kernel
def _exact_add(values, mask, hi, lo, bad):
    """Add each ``values[i, c]`` where ``mask[i, c]`` into column ``c``'s counters."""
    N, C = values.shape
    half = (1 << _HALF) - 1
    for i in range(N):
        for c in range(C):
            if not mask[i, c]:
                continue
            v = values[i, c]
            if np.isnan(v):
                bad[0, c] += 1
            elif np.isinf(v):
                bad[1 if v > 0 else 2, c] += 1
            elif v != 0.0:
                m, e = math.frexp(v)
                mant = np.int64(math.ldexp(m, 53))  # exact: |m| < 1 has 53 bits
                b = c * _BUCKETS + (e - _EMIN)
                hi[b] += mant >> _HALF  # an arithmetic shift: floor, so hi * 2**26 + lo
                lo[b] += mant & half  # is mant for negative values too


class _ExactSum:
    """Exact sums of float64 values per column: nothing is rounded until read.

    Non-finite values are counted apart: any NaN makes the sum NaN, +inf and
    -inf make it inf, -inf, or NaN when both occur.
    """

    def __init__(self, columns):
        self.columns = columns
        self._hi = np.zeros(columns * _BUCKETS, np.int64)
        self._lo = np.zeros(columns * _BUCKETS, np.int64)
        self._bad = np.zeros((3, columns), np.int64)  # NaN, +inf, -inf

    def add(self, values, mask):
        """Add ``values[mask]`` (2-D, one column per sum)."""
        values = np.ascontiguousarray(values, np.float64)
        mask = np.ascontiguousarray(np.broadcast_to(mask, values.shape), np.bool_)
        _exact_add(values, mask, self._hi, self._lo, self._bad)

    def merge(self, other):
        """Add the sums of ``other`` (as many columns): still exact."""
        self._hi += other._hi
        self._lo += other._lo
        self._bad += other._bad

    def total(self, columns=None):
        """The sum over ``columns`` (a column, a list of them, or None for all),
        correctly rounded to float64."""
        cols = np.arange(self.columns) if columns is None else np.atleast_1d(columns)
        nan, pos, neg = self._bad[:, cols].sum(axis=1)
        if nan or (pos and neg):
            return math.nan
        if pos or neg:
            return math.inf if pos else -math.inf
        hi = self._hi.reshape(self.columns, _BUCKETS)[cols].sum(axis=0)
        lo = self._lo.reshape(self.columns, _BUCKETS)[cols].sum(axis=0)
        used = np.flatnonzero(hi | lo)
        if not used.size:
            return 0.0
        b0 = int(used[0])
        n = sum(((int(hi[b]) << _HALF) + int(lo[b])) << (int(b) - b0) for b in used)
        exp = b0 + _EMIN - 53
        exact = Fraction(n * 2**exp) if exp >= 0 else Fraction(n, 2**-exp)
        try:
            return float(exact)
        except OverflowError:
            return math.inf if n > 0 else -math.inf


def _ratio(a, b):
    if b == 0:
        return math.nan if a == 0 or math.isnan(a) else math.inf
    return a / b


class Running:
    """Running MAE and RMSE per column over labeled entries, summed exactly.

    Parameters
    ----------
    columns : int
        Columns of the forecasts and targets given to :meth:`update`.

    Examples
    --------
    >>> import numpy as np
    >>> from streamrnn.evaluate import Running
    >>> r = Running(columns=2)
    >>> _ = r.update([[1.0, 2.0], [3.0, 5.0]], [[2.0, np.nan], [3.0, 1.0]])
    >>> r.n(), r.rows, r.mae(), r.mae(0), r.rmse(1)
    (3, 2, 1.6666666666666667, 0.5, 4.0)
    """

    def __init__(self, columns=1):
        self.columns = positive_int(columns, "columns")
        self.rows = 0
        self._n = np.zeros(self.columns, np.int64)
        self._sums = _ExactSum(2 * self.columns)  # |error| columns, then error**2

    def update(self, pred, target):
        """Add the entries of ``(N, columns)`` forecasts and targets where the target is
        not NaN (a NaN or inf forecast there makes the figures NaN or inf). Returns self."""
        pred = np.asarray(pred, np.float64)
        target = np.asarray(target, np.float64)
        if pred.ndim == 1 and self.columns == 1:
            pred, target = pred[:, None], target.reshape(-1, 1)
        if pred.shape != target.shape or pred.ndim != 2 or pred.shape[1] != self.columns:
            raise InputError(
                f"pred and target must both have shape (N, {self.columns}), "
                f"got {pred.shape} and {target.shape}"
            )
        mask = ~np.isnan(target)
        with np.errstate(invalid="ignore", over="ignore"):
            err = np.abs(pred - target)
            self._sums.add(np.hstack([err, err * err]), np.hstack([mask, mask]))
        self._n += mask.sum(axis=0)
        self.rows += int(mask.any(axis=1).sum())
        return self

    def merge(self, other):
        """Add what ``other`` (as many columns) has seen: the figures are then those of
        both streams' entries together, exactly. Returns self."""
        self.rows += other.rows
        self._n += other._n
        self._sums.merge(other._sums)
        return self

    def n(self, column=None):
        """Labeled entries seen: in ``column``, or in all."""
        return int(self._n.sum() if column is None else self._n[column])

    def _columns(self, column):
        return np.arange(self.columns) if column is None else np.atleast_1d(column)

    def abs_sum(self, column=None):
        """Sum of absolute errors (in ``column``, or in all), exact then rounded once."""
        return self._sums.total(self._columns(column))

    def mae(self, column=None):
        """Mean absolute error (NaN before any entry)."""
        n = self.n(column)
        return self.abs_sum(column) / n if n else math.nan

    def rmse(self, column=None):
        """Root mean squared error (NaN before any entry)."""
        n = self.n(column)
        return (
            math.sqrt(self._sums.total(self._columns(column) + self.columns) / n) if n else math.nan
        )


def lagged(hist, groups, rows, lags):
    """Each row's value ``lag`` steps before it in its series, for every lag.

    ``hist`` (keys, L, C) holds each key's last ``L`` values, oldest first, and
    is updated in place; ``rows`` (N, C) are a chunk's values grouped by key
    (stable), ``groups = (slots, sizes, pos)`` the keys in order, their row
    counts and each row's position within its key. Every lag is at most ``L``;
    a value from before a key's first row is whatever ``hist`` held (NaN).
    """
    slots, sizes, pos = groups
    L = hist.shape[1]
    ext = sizes + L
    start = np.cumsum(ext) - ext
    buf = np.empty((int(ext.sum()), rows.shape[1]), np.float64)
    buf[start[:, None] + np.arange(L)] = hist[slots]
    at = np.repeat(start + L, sizes) + pos
    buf[at] = rows
    out = [buf[at - lag] for lag in lags]
    hist[slots] = buf[(start + sizes)[:, None] + np.arange(L)]
    return out


@dataclass(repr=False, eq=False)
class Result:
    """What :func:`progressive` measured.

    Attributes
    ----------
    metrics : dict
        Overall figures (floats), pooled over all targets.
    per_output : pandas.DataFrame
        The same figures per target (one row each), with ``n``: labeled entries.
    history : list of dict
        Running snapshots (``rows``, ``seconds`` and the figures), one every
        ``every`` scored rows.
    rows : int
        Rows scored.
    seconds : float
        Time taken, learning included.
    counts : dict
        The learner's ``counts`` at the end.
    baseline_rows : dict
        Rows each baseline scored (``persistence``, ``seasonal``, ``ar``).
    """

    metrics: dict
    per_output: pd.DataFrame
    history: list = field(default_factory=list)
    rows: int = 0
    seconds: float = 0.0
    counts: dict = field(default_factory=dict)
    baseline_rows: dict = field(default_factory=dict)

    def to_frame(self):
        """The history as a DataFrame, one row per snapshot."""
        return pd.DataFrame(self.history, columns=["rows", "seconds", *self.metrics])

    def summary(self):
        """A readable table, overall and per target, then how the model fares against each
        baseline: its MAE over the baseline's on the entries both scored, and the rows."""
        head = f"{self.rows:,} rows scored in {self.seconds:.2f} s"
        if self.counts:
            head += " (learner: " + ", ".join(f"{v:,} {k}" for k, v in self.counts.items()) + ")"
        overall = pd.DataFrame([{"n": self.per_output["n"].sum(), **self.metrics}],
                               index=["(all)"])  # fmt: skip
        table = pd.concat([overall, self.per_output]).to_string(float_format="{:.4g}".format)
        lines = [head, table]
        if self.baseline_rows:
            lines.append("against the baselines (model MAE / baseline MAE on the same entries):")
        for metric, name in _BASELINES:
            if name in self.baseline_rows:
                ratio = self.metrics.get(metric, math.nan)
                verdict = "better" if ratio < 1 else "worse" if ratio > 1 else "even"
                if math.isnan(ratio):
                    verdict = "n/a"
                rows = self.baseline_rows[name]
                lines.append(f"  {name:<12} {ratio:8.4g}  {verdict:<6}  ({rows:,} rows)")
        return "\n".join(lines)

    def __repr__(self):
        figures = ", ".join(f"{k}={v:.4g}" for k, v in self.metrics.items())
        return f"Result(rows={self.rows}, {figures})"


def wanted_scores(metrics, loss, season, ar_order=7):
    """The metric names to compute, checked against the loss, ``season`` and ``ar_order``."""
    classify = isinstance(loss, CrossEntropy)
    if metrics is None:
        if classify:
            return ("accuracy",)
        names = ["mae", "rmse", "mase"] + (["coverage"] if isinstance(loss, Pinball) else [])
    elif isinstance(metrics, str):
        names = [metrics]
    else:
        try:
            names = list(metrics)
        except TypeError:
            raise ConfigError(
                f"metrics must be a name or a sequence of names among {', '.join(METRICS)}, "
                f"got {metrics!r}"
            ) from None
    for name in names:
        if name not in METRICS:
            raise ConfigError(f"unknown metric {name!r}; accepted: {', '.join(METRICS)}")
    if season is not None and "mase" in names:
        names.append("mase_seasonal")
    if ar_order is not None and "mase" in names:
        names.append("mase_ar")
    if "mase_seasonal" in names and season is None:
        raise ConfigError("metric 'mase_seasonal' needs season=<period in steps>")
    if "mase_ar" in names and ar_order is None:
        raise ConfigError("metric 'mase_ar' needs ar_order=<number of lags>")
    if "coverage" in names and not isinstance(loss, Pinball):
        raise ConfigError(f"metric 'coverage' needs a Pinball (quantile) loss, not {loss!r}")
    if classify and set(names) - {"accuracy"}:
        raise ConfigError(
            f"a cross-entropy learner outputs class scores: its metric is 'accuracy', "
            f"not {sorted(set(names) - {'accuracy'})}"
        )
    if "accuracy" in names and not classify:
        raise ConfigError(f"metric 'accuracy' needs a CrossEntropy loss, not {loss!r}")
    return tuple(dict.fromkeys(names))


def _print(snapshot):
    rows, seconds = snapshot["rows"], snapshot["seconds"]
    rate = rows / seconds if seconds > 0 else math.inf
    figures = "  ".join(f"{k} {v:.4g}" for k, v in snapshot.items() if k not in ("rows", "seconds"))
    print(f"{rows:>10,} rows  {seconds:8.2f} s  {rate:10,.0f} rows/s  {figures}", flush=True)


class Scorer:
    """Pairs each series' outputs with the targets ``h`` steps later and keeps the sums.

    The baselines' forecasts of a row are lagged targets (persistence, seasonal
    naive) or come from the online AR's state, one packed row per key and target
    (``_ar``, see :func:`streamrnn.autoregression.layout`), carried from chunk to chunk.
    """

    _ar = None  # no AR state: the AR baseline is off (or not set up yet)

    def __init__(self, loss, horizon, names, season, every, report, start, ar_order=7):
        self.loss, self.h, self.names, self.season = loss, horizon, names, season
        self.every, self.report, self.start = every, report, start
        self.ar_order = ar_order if "mase_ar" in names else None
        self.rows = 0
        self.history = []
        self._ready = False
        self._index = pd.Index([], dtype=object)
        self._steps = np.zeros(0, np.int64)
        self._ylags = [0]
        if "mase" in names:
            self._ylags.append(max(horizon, 1))
        if "mase_seasonal" in names:
            self._ylags.append(season * max(1, -(-horizon // season)))

    def _setup(self, chunk, out):
        T, O = chunk.y.shape[1], out.shape[1]
        self.T, self._width = T, O
        self.targets = tuple(chunk.targets) or tuple(f"y{j}" for j in range(T))
        self._out_hist = np.full((0, self.h, O), np.nan)
        self._y_hist = np.full((0, max(self._ylags), T), np.nan)
        if isinstance(self.loss, Pinball):
            q = np.array(self.loss.quantiles)
            K = len(q)
            order = np.argsort(q)
            mid = np.flatnonzero(q == 0.5)
            self._k = (int(order[0]), int(order[-1]), int(mid[0]) if mid.size else
                       int(order[(K - 1) // 2]))  # fmt: skip
            self._q = q
            self._point = np.arange(T) * K + self._k[2]
            if O != T * K:
                raise InputError(f"the learner gave {O} outputs for {T} targets and {K} quantiles")
        else:
            self._point = np.arange(T)
        self._model = Running(T)
        self._base = {}  # in the order of _BASELINES, as the values take() gives _score
        for name, base in _BASELINES:
            if name in self.names:
                self._base[base] = (Running(T), Running(T))  # baseline, model on its entries
        if self.ar_order is not None:
            self._ar = _ar_fresh(0, T, self.ar_order, max(self.h, 1))
        if "coverage" in self.names:
            self._labeled = np.zeros(T, np.int64)
            self._inside = np.zeros(T, np.int64)
            self._below = np.zeros((T, len(self._q)), np.int64)
        self._right = np.zeros(T, np.int64)
        self._classed = np.zeros(T, np.int64)
        self._ready = True

    def _slots(self, keys, N):
        if keys is None:
            codes, uniques = np.zeros(N, np.intp), pd.Index([None], dtype=object)
        else:
            codes, uniques = pd.factorize(keys)
            uniques = pd.Index(np.asarray(uniques, dtype=object), dtype=object)
        found = self._index.get_indexer(uniques)
        new = found < 0
        if new.any():
            n0, n_new = len(self._index), int(new.sum())
            found[new] = np.arange(n0, n0 + n_new)
            self._index = self._index.append(uniques[new])
            self._steps = np.concatenate([self._steps, np.zeros(n_new, np.int64)])
            grow = ((0, n_new), (0, 0), (0, 0))
            self._out_hist = np.pad(self._out_hist, grow, constant_values=np.nan)
            self._y_hist = np.pad(self._y_hist, grow, constant_values=np.nan)
            if self._ar is not None:
                fresh = _ar_fresh(n_new, self.T, self.ar_order, max(self.h, 1))
                self._ar = np.concatenate([self._ar, fresh])
        return found[codes]

    def take(self, chunk, out, pairs=None):
        """Score the rows of ``chunk``, whose outputs are ``out``; ``pairs``, when
        given, is called with the scored rows (in arrival order), the outputs made
        for them and a dict of their values: ``"target"``, then each baseline's
        forecasts (``"persistence"``, ``"seasonal"``, ``"ar"``: those scored; NaN
        where a baseline has none)."""
        if chunk is None or not len(chunk):
            return
        N = len(chunk)
        out = np.asarray(out, np.float64)
        if not self._ready:
            self._setup(chunk, out)
        if out.shape != (N, self._width):
            raise InputError(
                f"the learner returned outputs of shape {out.shape} for a chunk of {N} rows; "
                f"expected {(N, self._width)}"
            )
        if isinstance(self.loss, CrossEntropy):  # classes, never scaled
            y = np.asarray(chunk.y, np.float64)
        else:
            y = chunk.y_in_units()
        slots = self._slots(chunk.keys, N)
        if len(self._index) <= 1 << 16:  # NumPy sorts 16-bit integers by radix, 10x faster
            order = np.argsort(slots.astype(np.uint16), kind="stable")
        else:
            order = np.argsort(slots, kind="stable")
        grouped = slots[order]
        first, starts, sizes = np.unique(grouped, return_index=True, return_counts=True)
        pos = np.arange(N) - np.repeat(starts, sizes)
        step = self._steps[grouped] + pos
        self._steps[first] += sizes
        groups = (first, sizes, pos)
        (made,) = lagged(self._out_hist, groups, out[order], [self.h])
        y = y[order]
        ys = lagged(self._y_hist, groups, y, self._ylags)
        if self._ar is not None:
            ys.append(np.empty_like(y))
            ahead = np.empty_like(y)
            _ar_run(grouped, step, y, self._ar, self.ar_order, max(self.h, 1), ys[-1], ahead)
        kept = np.zeros(N, np.bool_)  # scored rows, in arrival order
        kept[order[(step >= self.h) & ~np.isnan(ys[0]).all(axis=1)]] = True
        rank = np.empty(N, np.int64)
        rank[order] = np.arange(N)
        keep = rank[np.flatnonzero(kept)]
        made = made[keep]
        values = {name: v[keep] for name, v in zip(["target", *self._base], ys)}
        if pairs is not None:
            pairs(order[keep], made, values)
        a = 0
        while a < len(keep):
            b = len(keep)
            if self.every is not None:
                b = min(b, a + self.every - self.rows % self.every)
            self._score(made[a:b], {name: v[a:b] for name, v in values.items()})
            self.rows += b - a
            a = b
            if self.every is not None and self.rows % self.every == 0:
                snap = self.snapshot()
                self.history.append(snap)
                self.report(snap)

    def _score(self, out, values):
        y = values["target"]
        if isinstance(self.loss, CrossEntropy):
            labeled = ~np.isnan(y[:, 0])
            self._classed[0] += int(labeled.sum())
            self._right[0] += int((np.argmax(out[labeled], axis=1) == y[labeled, 0]).sum())
            return
        point = out[:, self._point]
        self._model.update(point, y)
        for name, (base, model) in self._base.items():
            target = np.where(np.isnan(values[name]), np.nan, y)
            base.update(values[name], target)
            model.update(point, target)
        if "coverage" in self.names:
            q = out.reshape(len(out), self.T, len(self._q))
            labeled = ~np.isnan(y)
            lo, hi = q[..., self._k[0]], q[..., self._k[1]]
            self._labeled += labeled.sum(axis=0)
            self._inside += (labeled & (y >= lo) & (y <= hi)).sum(axis=0)
            self._below += (labeled[..., None] & (y[..., None] <= q)).sum(axis=0)

    def merge(self, other):
        """Add the sums of ``other``, a scorer of other keys with the same settings (the
        keys of a distributed backfill's shards): the figures are then those of one
        scorer that saw both streams, exactly (the sums are exact). Returns self."""
        if not other._ready:
            return self
        if not self._ready:
            self.__dict__.update(copy.deepcopy(other.__dict__))
            return self
        self.rows += other.rows
        self._model.merge(other._model)
        for base, (b, mb) in self._base.items():
            b.merge(other._base[base][0])
            mb.merge(other._base[base][1])
        for name in ("_labeled", "_inside", "_below", "_right", "_classed"):
            if hasattr(self, name):
                setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    def figures(self, column=None):
        """The wanted figures, pooled (None) or for one target column."""
        f = {}
        if not self._ready:
            return dict.fromkeys(self._keys(), math.nan)
        if "accuracy" in self.names:
            f["accuracy"] = _count_ratio(self._right, self._classed, column)
            return f
        m = self._model
        if "mae" in self.names:
            f["mae"] = m.mae(column)
        if "rmse" in self.names:
            f["rmse"] = m.rmse(column)
        for name, base in _BASELINES:
            if name in self.names:
                b, mb = self._base[base]
                f[name] = _ratio(mb.abs_sum(column), b.abs_sum(column)) if b.n(column) else math.nan
                f[f"{base}_mae"] = b.mae(column)
                f[f"{base}_rmse"] = b.rmse(column)
        if "coverage" in self.names:
            f["coverage"] = _count_ratio(self._inside, self._labeled, column)
            f["coverage_nominal"] = float(self._q[self._k[1]] - self._q[self._k[0]])
            for k, q in enumerate(self._q):
                f[f"below_{q:g}"] = _count_ratio(self._below[:, k], self._labeled, column)
        return f

    def _keys(self):
        keys = []
        for name in self.names:
            keys += {
                "mase": ["mase", "persistence_mae", "persistence_rmse"],
                "mase_seasonal": ["mase_seasonal", "seasonal_mae", "seasonal_rmse"],
                "mase_ar": ["mase_ar", "ar_mae", "ar_rmse"],
                "coverage": ["coverage", "coverage_nominal"]
                + [f"below_{q:g}" for q in getattr(self.loss, "quantiles", ())],
            }.get(name, [name])
        return keys

    def snapshot(self):
        return {"rows": self.rows, "seconds": time.perf_counter() - self.start, **self.figures()}

    def per_output(self):
        if not self._ready:
            return pd.DataFrame(columns=["n", *self._keys()])
        if isinstance(self.loss, CrossEntropy):
            n = self._classed
        else:
            n = self._model._n
        rows = [{"n": int(n[j]), **self.figures(j)} for j in range(self.T)]
        return pd.DataFrame(rows, index=self.targets)

    def baseline_rows(self):
        names = [b for m, b in _BASELINES if m in self.names]
        return {b: self._base[b][0].rows if self._ready else 0 for b in names}


def _count_ratio(num, den, column):
    num = num.sum() if column is None else num[column]
    den = den.sum() if column is None else den[column]
    return float(num / den) if den else math.nan


def _check_learner(learner):
    missing = [a for a in ("predict_learn", "horizon", "loss", "model") if not hasattr(learner, a)]
    if missing:
        raise ConfigError(
            f"learner must be a streamrnn.OnlineLearner (it has no {', '.join(missing)}), "
            f"got {type(learner).__name__}"
        )


def _learn(learner, chunk):
    if chunk is None or not len(chunk):
        return chunk, None
    return chunk, learner.predict_learn(chunk)


def _step(learner, item):
    """The chunk of ``item`` and the learner's outputs for it."""
    if isinstance(item, feeds.Chunk):
        return _learn(learner, item)
    if not isinstance(item, _TABLES):
        raise InputError(
            "progressive takes chunks: feeds.Chunk, pandas DataFrame, Arrow Table or "
            f"RecordBatch; got an item of type {type(item).__name__}"
        )
    if learner.feed is None:
        learner.feed = feeds.Feed(dtype=learner.model.dtype)
    feed = learner.feed
    return through_feed(feed, lambda: feed(item), lambda chunk: _learn(learner, chunk))


def progressive(source, learner, metrics=None, every=None, season=None, report=None, ar_order=7):
    """Score an online learner prequentially: each row before it is learned from.

    Parameters
    ----------
    source : iterable of chunks, or one chunk
        :class:`feeds.Chunk`, pandas DataFrame, Arrow Table or RecordBatch items.
        Tables go through ``learner.feed`` (made as ``predict_learn`` would when
        None); after the last item, the rows the feed holds back are released,
        learned from and scored.
    learner : streamrnn.OnlineLearner
        Learns as the stream goes (in place).
    metrics : str or sequence of str, optional
        Among :data:`METRICS`. Default: ``("mae", "rmse", "mase")``, with
        ``"coverage"`` for a Pinball loss; ``("accuracy",)`` for CrossEntropy.
        ``"mase"`` brings ``"mase_seasonal"`` when ``season`` is given and
        ``"mase_ar"`` unless ``ar_order`` is None.
    every : int, optional
        Take a snapshot every ``every`` scored rows: appended to the history and
        given to ``report``.
    season : int, optional
        Period in steps of the seasonal naive baseline.
    report : callable, optional
        Called with each snapshot (a dict: ``rows``, ``seconds``, the figures);
        by default one line is printed.
    ar_order : int or None, default 7
        Lags ``p`` of the online linear AR baseline (``"mase_ar"``); None leaves
        it out. It keeps ``(p + 1) (p + 2) + p + 2 max(h, 1) - 1`` float64 numbers
        per key and target.

    Returns
    -------
    Result

    Raises
    ------
    ConfigError
        An unknown metric, one that does not fit the learner's loss, or
        ``every``, ``season`` or ``ar_order`` that is not a positive integer.

    Examples
    --------
    >>> import numpy as np, pandas as pd, feeds, streamrnn
    >>> from streamrnn.evaluate import progressive
    >>> df = pd.DataFrame({"key": np.repeat(["a", "b"], 50), "time": np.tile(np.arange(50), 2),
    ...                    "level": np.r_[np.sin(np.arange(50) / 3), np.cos(np.arange(50) / 3)]})
    >>> learner = streamrnn.OnlineLearner(streamrnn.GRU(1, 4, output_size=1, seed=0),
    ...                                   feed=feeds.Feed(feeds.Schema(key="key", targets="level")))
    >>> snaps = []
    >>> result = progressive([df.iloc[:40], df.iloc[40:]], learner, every=25, report=snaps.append)
    >>> result.rows, [s["rows"] for s in snaps], list(result.per_output.index)
    (98, [25, 50, 75], ['level'])
    """
    _check_learner(learner)
    if every is not None:
        every = positive_int(every, "every")
    if season is not None:
        season = positive_int(season, "season")
    if ar_order is not None:
        ar_order = positive_int(ar_order, "ar_order")
    if report is None:
        report = _print
    elif not callable(report):
        raise ConfigError(f"report must be a callable taking a snapshot dict, got {report!r}")
    horizon = positive_int(learner.horizon, "learner.horizon", 0)
    names = wanted_scores(metrics, learner.loss, season, ar_order)
    start = time.perf_counter()
    scorer = Scorer(learner.loss, horizon, names, season, every, report, start, ar_order)
    if isinstance(source, (feeds.Chunk, *_TABLES)):
        source = [source]
    try:
        items = iter(source)
    except TypeError:
        raise InputError(
            "source must be a chunk (feeds.Chunk, DataFrame, Arrow table) or an iterable "
            f"of them, got {type(source).__name__}"
        ) from None
    for item in items:
        scorer.take(*_step(learner, item))
    feed = getattr(learner, "feed", None)
    if feed is not None:
        scorer.take(*through_feed(feed, feed.flush, lambda chunk: _learn(learner, chunk)))
    counts = getattr(learner, "counts", {})
    return Result(
        metrics=scorer.figures(),
        per_output=scorer.per_output(),
        history=scorer.history,
        rows=scorer.rows,
        seconds=time.perf_counter() - start,
        counts=dict(counts) if counts else {},
        baseline_rows=scorer.baseline_rows(),
    )
