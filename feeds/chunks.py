"""A chunk: rows of many series, ready for the engine."""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True, eq=False)
class Chunk:
    """Rows of many series, in arrival order, as the engine consumes them.

    Attributes
    ----------
    keys : pandas.Categorical, numpy.ndarray or None
        One key per row: a Categorical for string keys, int64 for integer
        keys, None for a single series.
    times : numpy.ndarray or None
        datetime64[ns] (UTC for time-zone aware columns, see ``tz``), int64 or
        float64.
    x : numpy.ndarray
        ``(N, len(columns))`` model inputs, C-contiguous float32 or float64.
    y : numpy.ndarray or None
        ``(N, len(targets))`` targets; missing targets are NaN.
    y_loc, y_scale : numpy.ndarray or None
        Per row and target, the standardisation applied to ``y``; outputs that
        stand for the targets come back in data units as ``out * y_scale + y_loc``.
    columns, targets : tuple of str
        Names of the columns of ``x`` and ``y``.
    tz : str or None
        Time zone of the source's time column.
    counts : dict
        Rows dropped, merged or filled while making this chunk, by reason.
    transforms : tuple
        Per target, the transform the feed applied to it before anything else
        (``"log1p"`` or None; see ``Feed(transform=...)``), or empty for none:
        ``y`` and everything made from it (scaling, lags) are in the
        transformed units, and :func:`feeds.untransform` turns them back.
    """

    keys: object
    times: object
    x: np.ndarray
    y: object = None
    y_loc: object = None
    y_scale: object = None
    columns: tuple = ()
    targets: tuple = ()
    tz: object = None
    counts: dict = field(default_factory=dict)
    transforms: tuple = ()

    def __len__(self):
        return self.x.shape[0]

    def __repr__(self):
        return (
            f"Chunk({len(self)} rows, columns={list(self.columns)}, "
            f"targets={list(self.targets)}, dtype={self.x.dtype})"
        )

    def equals(self, other):
        """Whether two chunks hold the same rows, bit for bit (NaN equals NaN)."""
        if not isinstance(other, Chunk):
            return False
        mine = (self.columns, self.targets, self.tz, self.transforms)
        if mine != (other.columns, other.targets, other.tz, other.transforms):
            return False
        return all(
            _same(getattr(self, name), getattr(other, name))
            for name in ("keys", "times", "x", "y", "y_loc", "y_scale")
        )

    def y_in_units(self):
        """The targets in the data's units (float64): unscaled, and turned back from
        the feed's transforms; None without targets."""
        if self.y is None:
            return None
        y = np.asarray(self.y, np.float64)
        if self.y_scale is not None:
            y = y * self.y_scale + self.y_loc
        if any(self.transforms):
            from .feed import untransform

            y = untransform(y, self.transforms)
        return y

    def to_pandas(self):
        """The chunk as a long-format DataFrame: key, time, input and target columns."""
        cols = {}
        if self.keys is not None:
            cols["key"] = self.keys
        if self.times is not None:
            times = self.times
            if self.tz is not None:
                times = pd.DatetimeIndex(times).tz_localize("UTC").tz_convert(self.tz)
            cols["time"] = times
        for j, name in enumerate(self.columns):
            cols[name] = self.x[:, j]
        for j, name in enumerate(self.targets):
            cols[f"target:{name}"] = self.y[:, j]
        return pd.DataFrame(cols)


def _same(a, b):
    if a is None or b is None:
        return a is None and b is None
    a = np.asarray(a)
    b = np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind == "f":
        return bool(((a == b) | (np.isnan(a) & np.isnan(b))).all())
    return bool((a == b).all())


def concat(chunks):
    """One chunk holding the rows of ``chunks`` in order (an empty list gives None)."""
    chunks = [c for c in chunks if c is not None]
    if not chunks:
        return None
    first = chunks[0]

    def cat(name):
        parts = [getattr(c, name) for c in chunks]
        if parts[0] is None:
            return None
        if isinstance(parts[0], pd.Categorical):
            return pd.Categorical(np.concatenate([np.asarray(p, dtype=object) for p in parts]))
        return np.concatenate(parts)

    counts = {}
    for c in chunks:
        for k, v in c.counts.items():
            if isinstance(v, dict):
                inner = counts.setdefault(k, {})
                for col, n in v.items():
                    inner[col] = inner.get(col, 0) + n
            else:
                counts[k] = counts.get(k, 0) + v
    return Chunk(
        cat("keys"),
        cat("times"),
        cat("x"),
        cat("y"),
        cat("y_loc"),
        cat("y_scale"),
        first.columns,
        first.targets,
        first.tz,
        counts,
        first.transforms,
    )
