"""The figures a backfill's report shows, kept so that they do not depend on how the
stream is cut: the same bits whether the rows come in one chunk or in many, and
after a resumption."""

import numpy as np
import pandas as pd

from .core.jit import exact_kernel

#: The baselines whose errors the book keeps beside the model's, in its columns' order.
BASELINES = ("persistence", "seasonal", "ar")
_SUMS = 2 * (1 + len(BASELINES))  # a sum and a count each: the model, then the baselines


@exact_kernel
def _fill(errors, first_row, width, acc):
    """Add each row's errors, one row after another, into its bucket's sums.

    ``errors[i]`` are scored row ``first_row + i``'s absolute errors (the model,
    then each baseline); ``acc[j, 2 c]`` and ``acc[j, 2 c + 1]`` are the sum and
    count of column ``c`` in bucket ``first_row // width + j``. NaN errors (no
    label, no baseline forecast) are not counted.
    """
    first = first_row // width
    for i in range(errors.shape[0]):
        j = (first_row + i) // width - first
        for c in range(errors.shape[1]):
            if not np.isnan(errors[i, c]):
                acc[j, 2 * c] += errors[i, c]
                acc[j, 2 * c + 1] += 1.0


class Book:
    """Running figures for the report.

    Scored rows go into buckets of ``width`` consecutive rows, each holding the
    sums of the absolute errors of the model and of each baseline in
    :data:`BASELINES` on the first target (added one row after another, in
    stream order, with their counts) and the time of its last row; when ``2 * BUCKETS``
    buckets are full, neighbours merge and the width doubles, so the book stays
    small however long the run. The first ``plot_series`` keys scored keep their
    last ``POINTS`` forecasts and actual values.

    Parameters
    ----------
    plot_series : int
    point : int
        The output column of the point forecast of the first target.
    band : (int, int) or None
        The output columns of its interval.
    """

    BUCKETS = 256
    POINTS = 500

    def __init__(self, plot_series, point, band):
        self.point, self.band = point, band
        self.width, self.rows = 64, 0
        self.closed = []  # [rows at its end, time of its last row, sums and counts]
        self.open = [0, 0, *[0.0] * _SUMS]
        self.plot_series = plot_series
        self.keys = []
        self.samples = {}
        self.time_kind = self.tz = None

    def __setstate__(self, state):
        # a book written before the seasonal and AR baselines were kept: none of theirs
        self.__dict__.update(state)
        pad = 2 + _SUMS - len(self.open)
        if pad:
            self.open = [*self.open, *[0.0] * pad]
            self.closed = [[*bucket, *[0.0] * pad] for bucket in self.closed]

    def take(self, chunk, rows, made, values):
        """Add the scored rows of ``chunk``: ``rows`` (in stream order), the outputs
        ``made`` for them and ``values``, a dict of their ``"target"`` values and
        the forecasts of the baselines scored (missing ones count nowhere)."""
        if not len(rows):
            return
        times = None
        if chunk.times is not None:
            self.time_kind, self.tz = chunk.times.dtype.kind, chunk.tz
            times = chunk.times[rows]
            if times.dtype.kind == "M":
                times = times.view(np.int64)
        y = values["target"][:, 0]
        errors = np.full((len(y), 1 + len(BASELINES)), np.nan)
        errors[:, 0] = np.abs(made[:, self.point] - y)
        for c, name in enumerate(BASELINES, 1):
            if name in values:
                errors[:, c] = np.abs(values[name][:, 0] - y)
        a = 0
        while a < len(rows):  # up to the next merge, if any
            first = self.rows // self.width
            room = 2 * self.BUCKETS - len(self.closed)
            b = min(len(rows), a + (first + room) * self.width - self.rows)
            last = (self.rows + b - a - 1) // self.width
            acc = np.zeros((last - first + 1, _SUMS))
            acc[0] = self.open[2:]
            _fill(errors[a:b], self.rows, self.width, acc)
            for j in range(len(acc)):
                end = min((first + j + 1) * self.width, self.rows + b - a)
                t = times[a + end - self.rows - 1] if times is not None else end
                bucket = [end, t, *acc[j].tolist()]
                if end == (first + j + 1) * self.width:
                    self.closed.append(bucket)
                else:
                    self.open = bucket
            self.rows += b - a
            a = b
            if self.rows % self.width == 0:
                self.open = [self.rows, 0, *[0.0] * _SUMS]
            if len(self.closed) == 2 * self.BUCKETS:
                pairs = zip(self.closed[::2], self.closed[1::2])
                self.closed = [[q[0], q[1], *(np.add(p[2:], q[2:]).tolist())] for p, q in pairs]
                self.width *= 2
        self._sample(chunk, rows, made, y, times)

    def _sample(self, chunk, rows, made, y, times):
        keys = chunk.keys
        if keys is None:
            codes, names = np.zeros(len(rows), np.int64), [0]
        elif isinstance(keys, pd.Categorical):
            codes, names = keys.codes[rows], keys.categories
        else:
            codes, names = pd.factorize(np.asarray(keys)[rows])
        if len(self.keys) < self.plot_series:
            for code in pd.unique(codes)[: self.plot_series]:
                if len(self.keys) < self.plot_series and names[code] not in self.keys:
                    self.keys.append(names[code])
        t = times if times is not None else np.arange(self.rows - len(rows), self.rows)
        where = pd.Index(names).get_indexer(self.keys)
        for k, code in zip(self.keys, where):
            mine = np.flatnonzero(codes == code) if code >= 0 else []
            if not len(mine):
                continue
            cols = [t[mine], y[mine], made[mine, self.point]]
            if self.band is not None:
                cols += [made[mine, self.band[0]], made[mine, self.band[1]]]
            old = self.samples.get(k)
            new = [np.asarray(c)[-self.POINTS :] for c in cols]
            if old is not None:
                new = [np.concatenate([o, c])[-self.POINTS :] for o, c in zip(old, new)]
            self.samples[k] = new

    def curve(self):
        """One row per bucket: ``rows``, ``time``, the bucket's ``mae`` and each
        baseline's (``persistence_mae``, ``seasonal_mae``, ``ar_mae``: NaN where it
        has no forecast), then the running ones up to its end (``running_mae``,
        ``running_persistence_mae``, ...)."""
        rows = [*self.closed, *([self.open] if any(self.open[3::2]) else [])]
        names = ["mae", *(f"{name}_mae" for name in BASELINES)]
        sums = [f"{s}{name}" for name in names for s in ("sum_", "n_")]
        frame = pd.DataFrame(rows, columns=["rows", "time", *sums])
        with np.errstate(invalid="ignore", divide="ignore"):
            for name in names:
                frame[name] = frame[f"sum_{name}"] / frame[f"n_{name}"]
            for name in names:
                running = frame[f"sum_{name}"].cumsum() / frame[f"n_{name}"].cumsum()
                frame[f"running_{name}"] = running
        frame["time"] = self._times(frame["time"].to_numpy())
        return frame.drop(columns=sums)

    def sample_frames(self):
        """``{key: DataFrame(time, actual, forecast[, lo, hi])}`` of the plotted keys."""
        frames = {}
        for k, cols in self.samples.items():
            names = ["time", "actual", "forecast", "lo", "hi"][: len(cols)]
            frame = pd.DataFrame(dict(zip(names, cols)))
            frame["time"] = self._times(frame["time"].to_numpy())
            frames[k] = frame
        return frames

    def _times(self, values):
        if self.time_kind != "M":
            return values
        times = pd.to_datetime(values.astype(np.int64), unit="ns")
        return times.tz_localize("UTC").tz_convert(self.tz) if self.tz else times
