"""A feed: the stateful step from a table of rows to a :class:`~feeds.chunks.Chunk`.

A feed remembers, per key, what chunk edges must not cut: the last time (for
the order check), the last value of each column (forward fill), the time of the
previous row (time since previous row), a pending row (regular grid, last of
duplicate times) and the running mean and variance (scaling). Feeding a stream
in one piece or cut anywhere gives the same rows, bit for bit.

Calendar features (the sine and cosine of the hour of the day, the day of the
week, ...) need no state: each is a function of its row's time in the local
clock of the time column, computed with a few array operations per chunk.

Lagged targets (each target's value some rows earlier) carry, per key, the
last few values of the target's forward-filled history; each chunk groups its
rows by key, puts that history before them and takes the lags by index.
"""

import numbers
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import _kernels as K
from ._warn import user_level
from .chunks import Chunk
from .errors import ConfigError, MissingValueError, SchemaError, TimeOrderError
from .schema import CategoryWarning, Schema, _row_text, kind_of
from .tables import as_table

_DTYPES = {"float32": np.float32, "float64": np.float64}
_POLICIES = {"error": K.MISS_ERROR, "mask": K.MISS_MASK, "ffill": K.MISS_FFILL}
# value columns travel to the kernels as a tuple of arrays (no copy), but a tuple type
# is compiled once per length: past this many columns they go as one 2-D array
_TUPLE_MAX = 8
#: The target transforms a feed applies (see ``Feed(transform=...)``).
TRANSFORMS = ("log1p",)


def _float64(col):
    """An Arrow value column as float64; integers past 2**53 round to the nearest
    float, as in NumPy and pandas (Arrow's safe cast would refuse them)."""
    if pa.types.is_dictionary(col.type):
        col = pc.cast(col, col.type.value_type)
    return pc.cast(col, pa.float64(), safe=not pa.types.is_integer(col.type))


def _packed(values):
    """A 2-D array of value columns as the kernels take it (read-only)."""
    values.flags.writeable = False
    return tuple(values) if values.shape[0] <= _TUPLE_MAX else values


def _policy(value, column):
    """(code, fill value) of a missing-value policy."""
    if isinstance(value, str) and value in _POLICIES:
        return _POLICIES[value], np.nan
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value):
        return K.MISS_FILL, float(value)
    if (
        isinstance(value, tuple)
        and len(value) == 2
        and value[0] == "ffill"
        and isinstance(value[1], numbers.Real)
        and np.isfinite(value[1])
    ):
        return K.MISS_FFILL_OR_FILL, float(value[1])
    which = (
        "missing"
        if column is None
        else "the default missing-value policy ('*')"
        if column == "*"
        else f"the missing-value policy of column {column!r}"
    )
    raise ConfigError(
        f"{which} must be 'error', 'mask', 'ffill', a finite fill value or "
        f"('ffill', fill value){'' if column else ', or a dict of these per column'}; "
        f"got {value!r}"
    )


def _refuse_nulls(col, role, name, row0):
    """Raise :class:`MissingValueError` at the first null of a key or time column."""
    if col.null_count:
        row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise MissingValueError(
            f"{role} column {name!r} is null at {_row_text(row0 + row, row0, len(col))}; "
            f"every row needs a {role}"
        )


def _int64(values, what):
    """Integers as int64; unsigned ones past int64's range are refused, not wrapped."""
    if values.dtype == np.uint64 and values.size and values.max() > np.iinfo(np.int64).max:
        row = int(np.argmax(values > np.iinfo(np.int64).max))
        raise SchemaError(f"{what} holds {values[row]} at row {row}, beyond int64")
    return values.astype(np.int64, copy=False)


def _span(value, name, time_sort):
    """A positive time span in the time column's units (ns for timestamps)."""
    if time_sort == "datetime":
        if isinstance(value, numbers.Number):
            raise ConfigError(
                f"{name} for a timestamp column must be a time span such as '1h' or "
                f"pd.Timedelta, not a bare number ({value!r})"
            )
        try:
            ns = pd.Timedelta(value).value
        except (TypeError, ValueError):
            raise ConfigError(
                f"{name} must be a time span such as '1h' or pd.Timedelta, got {value!r}"
            ) from None
        if ns <= 0:
            raise ConfigError(f"{name} must be positive, got {value!r}")
        return ns
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and value > 0
    if time_sort == "integer":
        ok = ok and float(value).is_integer()
    if not ok or not np.isfinite(value):
        raise ConfigError(
            f"{name} must be a positive number in the time column's units, got {value!r}"
        )
    return int(value) if time_sort == "integer" else float(value)


# -- calendar features ------------------------------------------------------------------------
_DAY = 86_400 * 10**9  # nanoseconds
_HOUR = 3_600 * 10**9
# each feature's cycle; the position in it (the phase, in [0, 1)) gives two columns
CALENDAR = ("minute_of_hour", "hour_of_day", "day_of_week", "day_of_year")
# what "auto" picks: the features of the first row whose step bound exceeds the step
_AUTO = (
    (_DAY, ("hour_of_day", "day_of_week", "day_of_year")),
    (7 * _DAY, ("day_of_week", "day_of_year")),
    (365 * _DAY, ("day_of_year",)),
)


def calendar_for(step):
    """The calendar features that ``calendar="auto"`` picks for a sampling step.

    A feature is picked when the step is shorter than its cycle, so that rows
    fall at different places in it: ``"hour_of_day"`` below one day,
    ``"day_of_week"`` below 7 days and ``"day_of_year"`` below 365 days (a
    yearly step would see about the same day every time). ``"minute_of_hour"``
    is never picked; name it to have it.

    Parameters
    ----------
    step : str, pandas.Timedelta, datetime.timedelta or numpy.timedelta64
        A positive time span, such as a grid step or the typical time between
        two rows of a key.

    Returns
    -------
    tuple of str
        Names for :class:`Feed`'s ``calendar`` (possibly empty).

    Examples
    --------
    >>> from feeds import calendar_for
    >>> calendar_for("1h"), calendar_for("1D"), calendar_for("30D"), calendar_for("365D")
    (('hour_of_day', 'day_of_week', 'day_of_year'), ('day_of_week', 'day_of_year'), \
('day_of_year',), ())
    """
    if isinstance(step, numbers.Number) and not isinstance(step, np.timedelta64):
        raise ConfigError(
            f"step must be a time span such as '1h' or pd.Timedelta, not a bare number "
            f"({step!r}): calendar features need timestamps; numeric times have none"
        )
    try:
        span = pd.Timedelta(step) if step is not None else pd.NaT
    except (TypeError, ValueError):
        span = pd.NaT
    if span is pd.NaT or span.value <= 0:
        raise ConfigError(
            f"step must be a positive time span such as '1h' or pd.Timedelta, got {step!r}"
        )
    ns = span.value
    for bound, names in _AUTO:
        if ns < bound:
            return names
    return ()


def _calendar_names(calendar):
    """``calendar`` checked: None, "auto" or a tuple of distinct feature names."""
    if calendar is None or (isinstance(calendar, str) and calendar == "auto"):
        return calendar
    names = (calendar,) if isinstance(calendar, str) else calendar
    accepted = f"accepted names are {list(CALENDAR)}, or calendar='auto' or None"
    if not isinstance(names, (list, tuple)):
        raise ConfigError(
            f"calendar must be a list of feature names, 'auto' or None, got {calendar!r}; "
            f"{accepted}"
        )
    for name in names:
        if not isinstance(name, str) or name not in CALENDAR:
            raise ConfigError(f"calendar names {name!r}, which is no calendar feature; {accepted}")
    dup = [name for name in names if names.count(name) > 1]
    if dup:
        raise ConfigError(f"calendar names {dup[0]!r} twice; name each feature once ({accepted})")
    return tuple(names)


def _local_clock(t, tz):
    """Days since 1970-01-01 and nanoseconds since midnight of UTC nanoseconds ``t``,
    on the wall clock of time zone ``tz`` (``t`` as it is when None).

    The offset from UTC is looked up at times kept a day inside the nanosecond
    range, and carried into the day without forming the local time, so that no
    time overflows.
    """
    day = t // _DAY
    clock = t - day * _DAY
    if tz is not None:
        inside = np.clip(t, np.iinfo(np.int64).min + _DAY, np.iinfo(np.int64).max - _DAY)
        utc = pd.DatetimeIndex(inside.view("datetime64[ns]")).tz_localize("UTC")
        clock = clock + (utc.tz_convert(tz).tz_localize(None).asi8 - inside)
        carry = clock // _DAY  # -1, 0 or 1: the offset is under a day
        day, clock = day + carry, clock - carry * _DAY
    return day, clock


def _calendar_columns(t, tz, names, out):
    """Write the sine and cosine of each calendar feature's phase, in float64, into
    the columns of ``out`` (two per name, in order) for UTC nanosecond times ``t``."""
    day, clock = _local_clock(t, tz)
    for q, name in enumerate(names):
        if name == "minute_of_hour":
            phase = (clock % _HOUR) / _HOUR
        elif name == "hour_of_day":
            phase = clock / _DAY
        elif name == "day_of_week":  # 1970-01-01 was a Thursday: Monday is 3 days before
            phase = (((day + 3) % 7) * _DAY + clock) / (7 * _DAY)
        else:  # day_of_year: the fraction of the local year gone, over its own length
            year = day.view("datetime64[D]").astype("datetime64[Y]")
            since = day - year.astype("datetime64[D]").view(np.int64)
            y = year.view(np.int64) + 1970
            length = 365 + ((y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0)))
            phase = (since * _DAY + clock) / (length * _DAY)
        angle = 2.0 * np.pi * phase
        out[:, 2 * q] = np.sin(angle)
        out[:, 2 * q + 1] = np.cos(angle)


# -- lagged targets --------------------------------------------------------------------------
def _lag_list(value, what):
    """``value`` checked as a positive lag or a list of distinct ones: a tuple of ints."""
    accepted = "an int >= 1 or a list of distinct ints >= 1"
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{what} must be {accepted}, got {value!r}")
    for k in value:
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise ConfigError(f"{what} holds {k!r}, which is no lag; lags are {accepted}")
    lags = tuple(int(k) for k in value)
    dup = [k for k in lags if lags.count(k) > 1]
    if dup:
        raise ConfigError(f"{what} names lag {dup[0]} twice; {accepted}")
    return lags


def _lag_spec(lags, targets):
    """``lags`` checked against the targets: None or a dict {target: tuple of lags}, in
    the order of the targets (targets without lags left out)."""
    if lags is None:
        return None
    if isinstance(lags, dict):
        given = {name: _lag_list(value, f"the lags of {name!r}") for name, value in lags.items()}
    else:
        given, every = None, _lag_list(lags, "lags")
    targets = tuple(targets or ())
    if not targets and (given if given is not None else every):
        raise ConfigError(
            "lags are lagged values of the targets, and the schema names none; name them "
            "with Schema(targets=[...])"
        )
    if given is None:
        spec = {name: every for name in targets}
    else:
        unknown = [name for name in given if name not in targets]
        if unknown:
            raise ConfigError(
                f"lags names column {unknown[0]!r}, which is not a target; lags apply to "
                f"the targets: {list(targets)}"
            )
        spec = {name: given[name] for name in targets if name in given}
    spec = {name: ks for name, ks in spec.items() if ks}
    return spec or None


def _transform_spec(transform, targets):
    """``transform`` checked: the transform of each target (``"log1p"`` or None) once
    ``targets`` are known, else an empty tuple."""
    if transform is None:
        return tuple(None for _ in targets or ())
    if isinstance(transform, dict):
        for name, value in transform.items():
            if value not in TRANSFORMS:
                raise ConfigError(
                    f"transform of {name!r} must be one of {TRANSFORMS}, got {value!r}"
                )
            if targets is not None and name not in targets:
                raise ConfigError(
                    f"transform names {name!r}, which is not a target; targets are {list(targets)}"
                )
        if targets is not None and not targets and transform:
            raise ConfigError("transform applies to targets: name them in Schema(targets=[...])")
        return tuple(transform.get(c) for c in targets or ())
    if transform not in TRANSFORMS:
        raise ConfigError(f"transform must be one of {TRANSFORMS} or a dict of them per target, "
                          f"got {transform!r}")  # fmt: skip
    if targets is not None and not targets:
        raise ConfigError("transform applies to targets: name them in Schema(targets=[...])")
    return tuple(transform for _ in targets or ())


def untransform(values, transforms):
    """Values in a feed's transformed units of the targets (the last axis: one column
    per target, ``transforms`` one entry per column, as
    :attr:`Feed.target_transforms`) back in the data's units."""
    out = np.array(values, dtype=np.result_type(values, np.float32), copy=True)
    for j, t in enumerate(transforms):
        if t == "log1p":
            out[..., j] = np.expm1(out[..., j])
    return out


def _ffill_by_key(es, values, history):
    """Each key's forward-filled values, over its history then its rows in this chunk.

    ``es`` gives each row's slot, ``values`` (rows, targets) their values (NaN:
    missing) and ``history`` (keys, targets, L) each slot's last L forward-filled
    values before this chunk (NaN before its first observed value). Returns
    ``(ff, pos, uniq, ends)``: the forward-filled buffer (keys in this chunk x (L
    + their rows), laid end to end, by targets), the place in it of each row, the
    slots in the chunk and where each one's part of the buffer ends.
    """
    M, O = values.shape
    L = history.shape[2]
    order = np.argsort(es, kind="stable")
    uniq, starts = np.unique(es[order], return_index=True)
    U = len(uniq)
    seg = np.repeat(np.arange(U), np.diff(np.append(starts, M)))  # each sorted row's key
    pos = np.empty(M, np.int64)
    pos[order] = np.arange(M) + (seg + 1) * L  # after its key's history and earlier rows
    first = starts + np.arange(U) * L  # where each key's part begins
    ends = np.append(first[1:], U * L + M)
    buf = np.empty((U * L + M, O))
    hist = (first[:, None] + np.arange(L)).ravel()
    buf[hist] = history[uniq].transpose(0, 2, 1).reshape(U * L, O)
    buf[pos] = values
    at = np.where(np.isnan(buf), 0, np.arange(len(buf))[:, None])
    at[first] = first[:, None]  # a key's part never reaches into the one before
    np.maximum.accumulate(at, axis=0, out=at)
    ff = np.take_along_axis(buf, at, axis=0)
    return ff, pos, uniq, ends


class Feed:
    """Turns tables of long-format rows into chunks, carrying per-key state across them.

    Parameters
    ----------
    schema : Schema, optional
        Column roles; inferred from the first chunk when None.
    dtype : {"float32", "float64"}
        dtype of the chunks' inputs and targets.
    late : {"error", "drop"}
        A row whose time is before its key's previous time: raise
        :class:`TimeOrderError`, or drop it and count it.
    duplicates : {"error", "first", "last"}
        A row whose time equals its key's previous time: raise, keep the first
        (drop later ones, counted), or keep the last (counted). ``"last"`` holds
        each key's newest row back until a later row of the key arrives or
        :meth:`flush` is called, since a duplicate may still come.
    missing : str, number, tuple or dict
        What a missing input (null or NaN) becomes: one policy for every
        feature, or a dict ``{column: policy}`` of features, where the key
        ``"*"`` gives the policy of every feature the dict does not name
        (without it, ``"error"``):
        ``"error"`` raises :class:`MissingValueError`; ``"ffill"`` takes the
        key's last value of the column, across chunks (an error if there is
        none yet); ``("ffill", v)`` does the same with ``v`` until there is one;
        a number fills that value; ``"mask"`` feeds 0 (the running mean when
        scaling) and appends a 0/1 column ``"<column>_missing"`` that tells the
        model the value was missing, so that the recurrent update sees the gap
        rather than a made-up value. Missing targets stay NaN: losses and
        metrics skip them. inf is an error everywhere. The width of ``x`` is
        fixed before any data is seen, so ``missing="mask"`` adds a mask for
        every feature, even one that is never missing; to mask only some,
        name them and give the others a default:
        ``missing={"pm2.5": "mask", "*": "ffill"}``. Categorical columns
        (``Schema(categorical=...)``) take no policy: a missing category is an
        all-zero one-hot row.
    time_delta : bool
        Append a column ``"dt"``: time since the key's previous row (seconds for
        timestamps, time units otherwise; 0 at a key's first row).
    calendar : None, "auto", str or sequence of str
        Calendar features of each emitted row's time (grid bins and rows
        released by :meth:`flush` included), read on the local clock of the
        time column's time zone (naive times as they are). Each name appends
        two columns, ``"<name>_sin"`` and ``"<name>_cos"``: the sine and cosine
        of 2π times the row's place in the cycle, computed in float64:
        ``"minute_of_hour"`` (seconds since the hour / 3600),
        ``"hour_of_day"`` (seconds since midnight / 86400), ``"day_of_week"``
        (days since Monday 00:00, fractional, / 7) and ``"day_of_year"``
        (days since January 1 00:00, fractional, / the length of that year:
        365 or 366 days, so that every year runs once around the circle).
        They are not standardised (they lie in [-1, 1]).
        Timestamp and date time columns only: numeric times are a
        :class:`ConfigError`. ``"auto"`` picks :func:`calendar_for` of the grid
        step when there is a grid, and otherwise of the median time between
        consecutive distinct times of a key in the first chunk (an error if it
        has no key with two); it gives none for numeric times. Without a grid,
        ``"auto"`` thus depends on where the stream's first chunk ends: name
        the features for a choice that no cut can change.
        :attr:`calendar_features` tells what was picked.
    lags : None, int, sequence of int or dict
        Give the model each target's value some rows earlier, as a forecaster
        gives it the seasonal naive forecast (the value 23 rows before, say, for
        a next-hour forecast of hourly data with a daily cycle). An int ``k`` or
        a list of distinct ints >= 1 applies to every target; a dict
        ``{target: lags}`` to the targets it names. Lags apply to targets only
        (``Schema(targets=...)``). Each target and lag appends a column
        ``"<target>_lag<k>"`` (targets in order, each with its lags in the
        order given). Rows are the rows the feed emits for the key (grid bins
        included, empty ones too): at a key's row t the column holds the last
        observed (not missing) value of the target at or before row t - k of
        that key, that is the key's forward-filled target history lagged by k
        rows. When there is none (fewer than k earlier rows, or nothing
        observed by then) it holds the key's last observed value at or before
        row t, so that the lag less the current value is 0 and tells nothing;
        when the key has observed nothing yet, 0 (the running mean when
        scaling). The value is scaled as the target is at row t, ``(value -
        y_loc) / y_scale`` with that row's ``y_loc`` and ``y_scale`` (computed
        in float64, then cast to ``dtype``), and left in data units when the
        feed does not scale. Each key's last ``max(k)`` forward-filled values
        are carried across chunks, so the columns do not depend on where a
        stream is cut.
    transform : None, "log1p" or dict
        Take the targets (all of them, or those a dict ``{target: "log1p"}``
        names) as ``log1p(value)`` from the moment they are read, before
        anything else: grid bins, scaling, lags and the rows' ``y`` all see
        the transformed values, as does the target's own input column when it
        is also a feature. For a target that cannot be negative and whose
        changes grow with its level (river flow, counts, prices): a model then
        learns relative changes, and its forecasts, turned back with
        :func:`untransform` (``expm1``), never fall below 0. A negative value
        is an error. :attr:`target_transforms` gives each target's, and each
        chunk carries them (``Chunk.transforms``).
    grid : str, pandas.Timedelta or number, optional
        Regularise each key onto a grid of this step (bins start at multiples
        of the step from 1970-01-01 UTC, or from 0 for numeric times):
        rows are aggregated per bin, a bin is emitted at its start time once a
        row of a later bin arrives, and empty bins become rows of missing
        values (handled by ``missing``). Rows at the same time are still
        duplicates (``duplicates``), and under ``missing="error"`` a missing
        value raises as it arrives, even in a bin with other values.
    aggregate : {"mean", "last"}
        How a grid bin combines its rows, per column, ignoring missing values
        (a bin whose values are all missing is missing).
    scale : {None, "global", "per_key"}
        Online standardisation of every feature and target (Welford): each
        value is scaled by the running mean and standard deviation of its
        column, updated with it first, over all keys or per key.
    freeze_after : int, optional
        Stop updating the scaling statistics after this many values (per
        statistic: per key and column, or per column).
    max_empty_bins : int
        On a grid, the most empty bins one row may open after its key's
        previous row; a longer gap (a wrong timestamp, say) is a
        :class:`TimeOrderError` rather than millions of missing rows.

    Notes
    -----
    The columns of ``x`` (``columns``, also :attr:`input_names`) are the
    features in order, then ``"dt"``, then the calendar columns (two per
    feature, sine first, in the order named), then the lagged targets
    (``"<target>_lag<k>"``, target by target, each with its lags in order),
    then the one-hot slots of each categorical column of the schema
    (``"<column>=<category>"`` for declared categories, ``"<column>[<slot>]"``
    for a list grown from the stream), then a ``"<column>_missing"`` mask per
    masked feature. The columns of ``y`` are the targets (:attr:`output_names`).

    All of them are fixed when the feed binds, on its first chunk or on
    :meth:`bind`, which takes a first table (or only its Arrow schema) without
    consuming it: a model can be sized from :attr:`input_size` and
    :attr:`output_size` before any row goes through.

    Examples
    --------
    >>> import pandas as pd
    >>> from feeds import Feed
    >>> from feeds import Schema
    >>> feed = Feed(Schema(key="key"), missing="ffill", time_delta=True)
    >>> chunk = feed(pd.DataFrame({"key": ["a", "b", "a"], "time": [0.0, 0.0, 2.5],
    ...                            "temp": [20.0, 15.0, None]}))
    >>> chunk.columns, chunk.x.tolist()
    (('temp', 'dt'), [[20.0, 0.0], [15.0, 0.0], [20.0, 2.5]])
    >>> feed.counts["missing"]
    {'temp': 1}

    Calendar features of rows six hours apart in New York, on its local clock:

    >>> feed = Feed(calendar="auto")
    >>> chunk = feed(pd.DataFrame({
    ...     "time": pd.date_range("2024-03-04 06:00", periods=3, freq="6h", tz="America/New_York"),
    ...     "load": [1.0, 2.0, 3.0]}))
    >>> feed.calendar_features
    ('hour_of_day', 'day_of_week', 'day_of_year')
    >>> chunk.columns[:3]
    ('load', 'hour_of_day_sin', 'hour_of_day_cos')
    >>> chunk.x[:, 1].round(6).tolist()  # sine of the hour of the day at 06:00, 12:00, 18:00
    [1.0, 0.0, -1.0]

    The load two rows earlier, beside the load (the first two rows have none:
    they get the current value; a missing one is carried from before):

    >>> feed = Feed(Schema(time="time", targets=["load"]), missing="ffill", lags=2)
    >>> chunk = feed(pd.DataFrame({"time": [0, 1, 2, 3, 4],
    ...                            "load": [1.0, 2.0, 3.0, None, 5.0]}))
    >>> chunk.columns
    ('load', 'load_lag2')
    >>> chunk.x[:, 1].tolist()
    [1.0, 2.0, 1.0, 2.0, 3.0]
    """

    def __init__(
        self,
        schema=None,
        *,
        dtype="float32",
        late="error",
        duplicates="error",
        missing="error",
        time_delta=False,
        grid=None,
        aggregate="mean",
        scale=None,
        freeze_after=None,
        max_empty_bins=1_000_000,
        calendar=None,
        lags=None,
        transform=None,
    ):
        if schema is None:
            schema = Schema()
        if not isinstance(schema, Schema):
            raise ConfigError(f"schema must be a feeds.Schema, got {schema!r}")
        name = np.dtype(dtype).name if isinstance(dtype, (type, np.dtype)) else dtype
        if name not in _DTYPES:
            raise ConfigError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        options = (
            ("late", late, ("error", "drop")),
            ("duplicates", duplicates, ("error", "first", "last")),
            ("aggregate", aggregate, ("mean", "last")),
            ("scale", scale, (None, "global", "per_key")),
        )
        for opt, value, accepted in options:
            if value not in accepted:
                raise ConfigError(f"{opt} must be one of {accepted}, got {value!r}")
        if grid is not None:  # checked now against its kind, again once the time is known
            _span(grid, "grid", "float" if isinstance(grid, numbers.Number) else "datetime")
        if grid is not None and duplicates == "last":
            raise ConfigError(
                "duplicates='last' does not combine with a grid; use aggregate='last' "
                "to keep the last value of each bin"
            )
        if (
            isinstance(max_empty_bins, bool)
            or not isinstance(max_empty_bins, numbers.Integral)
            or max_empty_bins < 0
        ):
            raise ConfigError(f"max_empty_bins must be an integer >= 0, got {max_empty_bins!r}")
        if freeze_after is not None and (
            isinstance(freeze_after, bool)
            or not isinstance(freeze_after, numbers.Integral)
            or freeze_after < 1
        ):
            raise ConfigError(f"freeze_after must be a positive integer, got {freeze_after!r}")
        if freeze_after is not None and scale is None:
            raise ConfigError("freeze_after applies to scaling: pass scale='global' or 'per_key'")
        if isinstance(missing, dict):
            for column, value in missing.items():
                _policy(value, column)
        else:
            _policy(missing, None)
        calendar = _calendar_names(calendar)
        if lags is not None:
            _lag_spec(lags, schema.targets)  # checked now; kept as given
            lags = dict(lags) if isinstance(lags, dict) else lags
        _transform_spec(transform, schema.targets)  # checked now; kept as given
        transform = dict(transform) if isinstance(transform, dict) else transform
        self.schema = schema
        self.dtype = _DTYPES[name]
        self.late = late
        self.duplicates = duplicates
        self.missing = missing
        self.time_delta = bool(time_delta)
        self.grid = grid
        self.aggregate = aggregate
        self.scale = scale
        self.freeze_after = freeze_after
        self.max_empty_bins = int(max_empty_bins)
        self.calendar = calendar
        self.lags = lags
        self.transform = transform
        self.counts = {"rows_in": 0, "rows_out": 0}
        self._ready = False

    # -- setup on the first chunk ---------------------------------------------------
    def _setup(self, schema, table):
        self.schema = schema
        time_type = schema.time_type
        sort = "datetime" if kind_of(time_type) == "time" else kind_of(time_type)
        self._time_sort = "float" if pa.types.is_floating(time_type) else sort
        self._tz = getattr(time_type, "tz", None)
        self._calendar = self._resolve_calendar(table)
        values = schema.values
        # value columns: the features and targets, then the one-hot slots of the
        # categorical columns (0 or 1; NaN for a missing category, filled with 0)
        self._setup_categorical(schema.categorical)
        V0 = len(values)
        C = V0 + len(self._onehot_names)
        col = {c: j for j, c in enumerate(values)}
        policy = np.full(C, K.MISS_KEEP, np.int64)
        fill = np.full(C, np.nan)
        policy[V0:], fill[V0:] = K.MISS_FILL, 0.0
        given = dict(self.missing) if isinstance(self.missing, dict) else {}
        default = given.pop("*", "error")
        unknown = sorted(set(given) - set(schema.features))
        if unknown:
            what = "a categorical column, whose missing values are all-zero one-hot rows" if (
                unknown[0] in schema.categorical) else "not a feature"  # fmt: skip
            raise ConfigError(
                f"missing names column {unknown[0]!r}, which is {what}; "
                f"features are {list(schema.features)}"
            )
        for c in schema.features:
            value = given.get(c, default) if isinstance(self.missing, dict) else self.missing
            policy[col[c]], fill[col[c]] = _policy(value, c)
        self._policy, self._fill = policy, fill
        self._top = top = float(np.finfo(self.dtype).max)
        for c in schema.features:
            if abs(fill[col[c]]) > top:
                raise ConfigError(
                    f"the fill value {fill[col[c]]} of column {c!r} is too large for "
                    f"{np.dtype(self.dtype)}"
                )
        self._ycols = np.array([col[c] for c in schema.targets], np.int64)
        self.target_transforms = _transform_spec(self.transform, schema.targets)
        self._tcols = [col[c] for c, t in zip(schema.targets, self.target_transforms) if t]
        masked = [c for c in schema.features if policy[col[c]] == K.MISS_MASK]
        spec = _lag_spec(self.lags, schema.targets) or {}
        self._lag_names = tuple(f"{c}_lag{k}" for c, ks in spec.items() for k in ks)
        # per lag column: the target (its column of y) and the lag
        self._lag_at = np.array(
            [(schema.targets.index(c), k) for c, ks in spec.items() for k in ks], np.int64
        ).reshape(-1, 2)
        self._lag0 = len(schema.features) + int(self.time_delta) + 2 * len(self._calendar)
        onehot0 = self._lag0 + len(self._lag_names)
        nx = onehot0 + len(self._onehot_names)
        self._xpos = np.full(C, -1, np.int64)
        self._ypos = np.full(C, -1, np.int64)
        self._mpos = np.full(C, -1, np.int64)
        for q, c in enumerate(schema.features):
            self._xpos[col[c]] = q
        self._xpos[V0:] = np.arange(onehot0, nx)
        for q, c in enumerate(schema.targets):
            self._ypos[col[c]] = q
        for q, c in enumerate(masked):
            self._mpos[col[c]] = nx + q
        self._scols = np.full(C, self.scale is not None, np.bool_)
        self._scols[V0:] = False  # one-hot slots are not scaled

        tdtype = np.float64 if self._time_sort == "float" else np.int64
        every = 1 if self.grid is None else _span(self.grid, "grid", self._time_sort)
        self._tparams = np.array([0, every], tdtype)
        self._cfg = np.array(
            [
                ("error", "drop").index(self.late),
                ("error", "first", "last").index(self.duplicates),
                int(self.grid is not None or self.duplicates == "last"),
                int(self.grid is not None),
                ("mean", "last").index(self.aggregate),
                0,  # the stream row of the chunk's first row, set per chunk
                self.max_empty_bins,
                int(self._time_sort != "float"),  # integer times: exact bins
            ],
            np.int64,
        )
        self._scfg = np.array(
            [int(self.scale == "per_key"), -1 if self.freeze_after is None else self.freeze_after],
            np.int64,
        )
        seconds = 1e-9 if self._time_sort == "datetime" else 1.0
        self._dt = np.array([float(self.time_delta), seconds, 0.0, len(schema.features)])
        self.columns = (
            *schema.features,
            *(("dt",) if self.time_delta else ()),
            *(f"{name}_{f}" for name in self._calendar for f in ("sin", "cos")),
            *self._lag_names,
            *self._onehot_names,
            *(f"{c}_missing" for c in masked),
        )
        taken = set(schema._types)
        clash = [c for c in self.columns[len(schema.features) :] if c in taken]
        if clash:
            raise SchemaError(f"column {clash[0]!r} exists already; the feed would add it")
        self.targets = schema.targets
        self.counts.update(
            late_dropped=0, duplicates_dropped=0, merged=0, empty_bins=0,
            missing={c: 0 for c in schema.features if policy[col[c]] != K.MISS_ERROR},
        )  # fmt: skip
        if schema.categorical:
            self.counts["missing"].update(dict.fromkeys(schema.categorical, 0))
            self.counts["unknown_categories"] = dict.fromkeys(schema.categorical, 0)
        self._key_kind = kind_of(schema._types[schema.key]) if schema.key else None
        self._index = pd.Index([], dtype=object if self._key_kind == "string" else np.int64)
        self._key_dtype = None
        self._n = 0
        self._KT = np.zeros((0, 3), tdtype)
        self._KB = np.zeros((0, 7), np.int64)
        self._KV = np.zeros((0, C, 6))
        self._SC = np.zeros((1, C, 3))
        # per key, target and lag: the last max(lag) forward-filled values, oldest first
        self._LH = np.full((0, len(schema.targets), int(self._lag_at[:, 1].max(initial=0))), np.nan)
        self._ready = True

    def _setup_categorical(self, categorical):
        """The one-hot slots of the categorical columns: ``_cat`` holds per column
        its name, its number of slots and whether its categories are declared;
        ``_cats`` the categories in its slots so far (a grown list starts empty)."""
        self._cat = tuple(
            (c, len(spec) if isinstance(spec, tuple) else spec, isinstance(spec, tuple))
            for c, spec in categorical.items()
        )
        self._cats = tuple(spec if isinstance(spec, tuple) else () for spec in categorical.values())
        self._cat_full = (False,) * len(self._cat)  # warned that a grown list is full
        self._onehot_names = tuple(
            name
            for (c, width, declared), cats in zip(self._cat, self._cats)
            for name in (
                [f"{c}={v}" for v in cats] if declared else [f"{c}[{k}]" for k in range(width)]
            )
        )

    def _resolve_calendar(self, table):
        """The calendar features to compute, with ``"auto"`` resolved on the first chunk."""
        if not self.calendar:
            return ()
        name = self.schema.time
        if self._time_sort != "datetime":
            if self.calendar == "auto":
                return ()
            raise ConfigError(
                f"calendar features need a timestamp or date time column; time column "
                f"{name!r} holds {self.schema._types[name]} values, which have no calendar: "
                "pass calendar=None (or 'auto', which picks none for numeric times)"
            )
        if self.calendar != "auto":
            return self.calendar
        if self.grid is not None:
            return calendar_for(pd.Timedelta(_span(self.grid, "grid", "datetime")))
        row0 = self.counts["rows_in"]
        t = self._times(table, row0)
        key = self.schema.key
        if key:
            col = table.column(key)
            _refuse_nulls(col, "key", key, row0)
            codes = pd.factorize(col.to_pandas())[0]
        else:
            codes = np.zeros(len(t), np.int64)
        order = np.lexsort((t, codes))
        t, codes = t[order], codes[order]
        gap = np.diff(t)
        gap = gap[(codes[1:] == codes[:-1]) & (gap > 0)]
        if not gap.size:
            raise ConfigError(
                "calendar='auto' takes the sampling step from the first chunk, and it has no "
                f"key with rows at two different times; name the features (calendar=[...], "
                f"from {list(CALENDAR)}), give a grid, or start with a longer chunk"
            )
        return calendar_for(pd.Timedelta(int(np.median(gap)), "ns"))

    @property
    def calendar_features(self):
        """The calendar features in ``x``, with ``"auto"`` resolved (after the first chunk)."""
        self._require()
        return self._calendar

    @property
    def input_size(self):
        """Width of the chunks' ``x`` (known once the feed is bound)."""
        self._require()
        return len(self.columns)

    @property
    def input_names(self):
        """Names of the columns of the chunks' ``x``, the model's inputs, in order (known
        once the feed is bound: after its first chunk, or :meth:`bind`)."""
        self._require()
        return self.columns

    @property
    def output_size(self):
        """Number of targets: the width of the chunks' ``y`` (known once bound)."""
        self._require()
        return len(self.targets)

    @property
    def output_names(self):
        """Names of the columns of the chunks' ``y``, the targets that a model's outputs
        stand for, in order (known once the feed is bound)."""
        self._require()
        return self.targets

    @property
    def categories(self):
        """``{column: categories}`` of the categorical columns, in slot order: the
        declared lists, or the categories a grown list has met so far (known once bound).

        Examples
        --------
        >>> import pandas as pd
        >>> from feeds import Feed, Schema
        >>> feed = Feed(Schema(time="t", key=False, categorical={"wind": 3}))
        >>> chunk = feed(pd.DataFrame({"t": [0, 1, 2, 3], "speed": [1.0, 2.0, 3.0, 4.0],
        ...                            "wind": ["NW", "cv", "NW", "SE"]}))
        >>> feed.categories
        {'wind': ('NW', 'cv', 'SE')}
        >>> chunk.columns
        ('speed', 'wind[0]', 'wind[1]', 'wind[2]')
        >>> chunk.x[:, 1:].tolist()
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
        """
        self._require()
        return {c: cats for (c, _, _), cats in zip(self._cat, self._cats)}

    @property
    def bound(self):
        """Whether the schema and the columns of ``x`` and ``y`` are fixed."""
        return self._ready

    def bind(self, data):
        """Fix the schema and the columns from a first table, without consuming it.

        What the first chunk would fix: the roles and types of the columns,
        :attr:`input_names`, :attr:`output_names` and their sizes. No row is
        read as data: no per-key state, counts or category is taken from
        ``data``, so the same rows can be fed next (a reader's first chunk,
        say). ``calendar="auto"`` without a grid takes its step from the rows
        of ``data``, as it would from the first chunk; with an Arrow schema (no
        rows) it is a :class:`ConfigError`. Binding a bound feed checks
        ``data`` against its schema.

        Parameters
        ----------
        data : DataFrame, pyarrow.Table, RecordBatch or pyarrow.Schema
            A first table (a peek at the stream), or only its Arrow schema
            (a Parquet dataset's, say).

        Returns
        -------
        Feed
            ``self``.

        Examples
        --------
        >>> import pandas as pd
        >>> from feeds import Feed, Schema
        >>> df = pd.DataFrame({"time": [0, 1], "temp": [20.0, None], "wind": [3.0, 4.0]})
        >>> feed = Feed(Schema(time="time", targets="temp"),
        ...             missing={"temp": "mask", "*": "ffill"}).bind(df)
        >>> feed.input_names, feed.output_names
        (('temp', 'wind', 'temp_missing'), ('temp',))
        >>> feed.counts["rows_in"], len(feed(df))
        (0, 2)
        """
        if isinstance(data, pa.Schema):
            table, schema = None, data
        else:
            table = as_table(data)
            schema = table
        if self._ready:
            self.schema.check(table.schema if table is not None else schema)
            return self
        if table is None and self.calendar == "auto" and self.grid is None:
            raise ConfigError(
                "calendar='auto' takes the sampling step from rows, and an Arrow schema has "
                "none: bind from a first table, name the features (calendar=[...]) or give a "
                "grid"
            )
        unbound = self.schema
        try:
            self._setup(self.schema.bind(schema), table)
        except Exception:
            self.schema = unbound
            self._ready = False
            self.counts = {"rows_in": 0, "rows_out": 0}
            raise
        return self

    def _require(self):
        if not self._ready:
            raise SchemaError(
                "this feed has seen no rows yet; its columns are not known (feed it a first "
                "chunk, or bind it with feed.bind(first_table))"
            )

    # -- keys -------------------------------------------------------------------------
    def _slots(self, table, N, row0):
        """Slot per row (new keys get slots from ``self._n`` on) and the new keys."""
        key = self.schema.key
        if not key:
            return np.zeros(N, np.int64), ([] if self._n else [0])
        col = table.column(key)
        _refuse_nulls(col, "key", key, row0)
        if self._key_kind == "string":
            arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
            if not pa.types.is_dictionary(arr.type):
                arr = pc.dictionary_encode(arr)
            codes = arr.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
            names = arr.dictionary.to_numpy(zero_copy_only=False).astype(object)
            if arr.dictionary.null_count or len(set(names)) != len(names):
                # a dictionary with repeated or null entries: one code per distinct name
                name_codes, names = pd.factorize(names, use_na_sentinel=True)
                codes = name_codes[codes]
                names = np.asarray(names, dtype=object)
                if (codes < 0).any():
                    row = int(np.flatnonzero(codes < 0)[0])
                    raise MissingValueError(
                        f"key column {key!r} is null at {_row_text(row0 + row, row0, N)}; "
                        "every row needs a key"
                    )
            cat_slot = self._index.get_indexer(names) if self._n else np.full(len(names), -1)
            slot = cat_slot[codes]
            new = slot < 0
            if not new.any():
                return slot, []
            first, uniq = pd.factorize(codes[new])
            slot = slot.copy()
            slot[new] = self._n + first
            return slot, list(names[uniq])
        if pa.types.is_dictionary(col.type):
            col = pc.cast(col, col.type.value_type)
        keys = _int64(col.to_numpy(), f"key column {key!r}")
        slot = self._index.get_indexer(keys) if self._n else np.full(N, -1)
        slot = slot.astype(np.int64, copy=False)
        new = slot < 0
        if not new.any():
            return slot, []
        first, uniq = pd.factorize(keys[new])
        slot = slot.copy()
        slot[new] = self._n + first
        return slot, list(uniq)

    def _key_name(self, slot, new_keys):
        if not self.schema.key:
            return "(one series)"
        value = self._index[slot] if slot < self._n else new_keys[slot - self._n]
        return value.item() if isinstance(value, np.generic) else value

    # -- columns ------------------------------------------------------------------------
    def _times(self, table, row0):
        name = self.schema.time_name
        col = self.schema.time_column(table, row0)  # built from its parts, when it has them
        _refuse_nulls(col, "time", name, row0)
        if self._time_sort == "datetime":
            try:
                col = pc.cast(
                    col,
                    pa.timestamp("ns", col.type.tz if pa.types.is_timestamp(col.type) else None),
                )
            except pa.ArrowInvalid as exc:
                raise SchemaError(
                    f"time column {name!r} holds a time outside what nanoseconds since 1970 "
                    f"can hold (years 1678 to 2262): {exc}"
                ) from None
            t = col.to_numpy().view(np.int64)
            nat = t == np.iinfo(np.int64).min  # the one value NumPy and pandas read as NaT
            if nat.any():
                row = int(np.flatnonzero(nat)[0])
                raise MissingValueError(
                    f"time column {name!r} holds the smallest int64 nanosecond value at "
                    f"{_row_text(row0 + row, row0, len(t))}, which reads as NaT (no time); "
                    "every row needs a time"
                )
            return t
        if self._time_sort == "integer":
            return _int64(col.to_numpy(), f"time column {name!r}")
        t = col.to_numpy().astype(np.float64, copy=False)
        bad = ~np.isfinite(t)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise MissingValueError(
                f"time column {name!r} has {t[row]} at {_row_text(row0 + row, row0, len(t))}; "
                "times must be finite"
            )
        return t

    def _values(self, table, onehot=None):
        """The value columns as a tuple of float arrays of one dtype (or a 2-D array),
        the one-hot slots ``onehot`` (float64, one row per slot) after them.

        When every column is float32, or every one float64, in one Arrow chunk
        and without nulls, the arrays are views of Arrow's buffers: the values
        are copied once, into the chunk's ``x``.
        """
        cols = [table.column(c) for c in self.schema.values]
        types = {col.type for col in cols}
        same = types == {pa.float32()} or types == {pa.float64()}
        if onehot is not None and len(onehot):
            same = types == {pa.float64()}
        dtype = np.float32 if same and types == {pa.float32()} else np.float64
        out = []
        for col in cols:
            if not same:
                col = _float64(col)
            if col.num_chunks == 1 and not col.null_count:
                arr = col.chunk(0).to_numpy(zero_copy_only=True)
            else:
                arr = col.to_numpy()
            out.append(arr)
        if onehot is not None:
            out.extend(onehot)
        if len(out) > _TUPLE_MAX:
            return _packed(np.stack(out, dtype=dtype))  # one copy, into the 2-D array
        for q, arr in enumerate(out):
            out[q] = arr = np.ascontiguousarray(arr, dtype=dtype)
            arr.flags.writeable = False  # one array type, whether a view or a copy
        return tuple(out)

    def _onehot(self, table):
        """The one-hot slots of the categorical columns of ``table``.

        Returns ``(slots, categories, unknown, full)``: the slots as a
        ``(slots, rows)`` float64 array (all NaN for a missing category, all 0
        for one with no slot); each column's categories once the chunk's new
        ones have taken free slots, in the order of their first row; per
        column, the number of rows whose category has no slot, and whether a
        new category found a grown list full.
        """
        N = table.num_rows
        out = np.zeros((len(self._onehot_names), N))
        cats, unknown, full = [], [], []
        s0 = 0
        for (c, width, declared), known in zip(self._cat, self._cats):
            col = table.column(c)
            if pa.types.is_dictionary(col.type):
                col = pc.cast(col, col.type.value_type)
            if kind_of(col.type) == "string" and not pa.types.is_string(col.type):
                col = pc.cast(col, pa.string())
            encoded = pc.dictionary_encode(col.combine_chunks())
            codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
            codes = codes.astype(np.int64, copy=False)
            met = encoded.dictionary.to_pylist()  # in the order of their first row
            slot_of = {v: k for k, v in enumerate(known)}
            slots = np.empty(len(met) + 1, np.int64)  # the last: a missing category
            slots[-1] = -2
            grown = list(known)
            lost = False
            for q, value in enumerate(met):
                if value is None:  # a column of nulls only: its dictionary is [None]
                    slots[q] = -2
                    continue
                k = slot_of.get(value)
                if k is None and not declared and len(grown) < width:
                    k = slot_of[value] = len(grown)
                    grown.append(value)
                elif k is None:
                    lost = not declared
                slots[q] = -1 if k is None else k
            slot = slots[codes]
            rows = np.flatnonzero(slot >= 0)
            out[s0 + slot[rows], rows] = 1.0
            out[s0 : s0 + width, slot == -2] = np.nan
            cats.append(tuple(grown))
            unknown.append(int(np.count_nonzero(slot == -1)))
            full.append(lost)
            s0 += width
        return out, tuple(cats), unknown, full

    def _warn_full(self, full, table):
        """Warn once per grown category list that a new category found it full."""
        flags = list(self._cat_full)
        for i, lost in enumerate(full):
            if lost and not flags[i]:
                flags[i] = True
                c, width, _ = self._cat[i]
                warnings.warn(
                    f"categorical column {c!r} meets more than its {width} slots of "
                    f"categories ({list(self._cats[i])} took them); rows of a later new "
                    f"category get all-zero inputs, counted in "
                    f"counts['unknown_categories']: declare more slots "
                    f"(categorical={{{c!r}: {2 * width}}}) or the list of categories",
                    CategoryWarning,
                    stacklevel=user_level(),
                )
        self._cat_full = tuple(flags)

    # -- the step ---------------------------------------------------------------------------
    def __call__(self, data):
        """The chunk of model rows for a DataFrame, Arrow table or record batch of rows."""
        table = as_table(data)
        if table.num_rows == 0:
            return self._empty(table)
        if self._ready:
            self.schema.check(table.schema)
            return self._step(table, flush=False)
        unbound = self.schema
        try:  # the first chunk fixes the schema only if it goes through
            self._setup(self.schema.bind(table), table)
            return self._step(table, flush=False)
        except Exception:
            self.schema = unbound
            self._ready = False
            self.counts = {"rows_in": 0, "rows_out": 0}
            raise

    def flush(self):
        """Release the rows held back (pending grid bins, last of duplicate times).

        Call it at the end of a stream; the readers do so after their last chunk.
        The stream may go on after it: a later row in a grid bin already emitted
        is late, and a later row at the time of a released row is a duplicate
        (dropped and counted: the emitted row cannot be replaced).
        """
        if not self._ready:
            return None
        return self._step(None, flush=True)

    def _empty(self, table):
        if self.schema.bound:
            missing = [c for c in self.schema._types if c not in table.schema.names]
            if missing:
                raise SchemaError(f"column {missing[0]!r} is missing from this (empty) chunk")
        if not self._ready:
            return None
        return self._chunk(np.zeros(0, np.int64), np.zeros(0, self._KT.dtype),
                           *self._outputs(0), {})  # fmt: skip

    def _outputs(self, M):
        X = np.empty((M, len(self.columns)), self.dtype)
        Y = np.empty((M, len(self.targets)), self.dtype)
        YL = np.empty_like(Y)
        YS = np.empty_like(Y)
        return X, Y, YL, YS

    def _step(self, table, flush):
        N = 0 if table is None else table.num_rows
        row0 = self.counts["rows_in"]
        cats, unknown, full = self._cats, [], []
        if table is None:
            slot, new_keys = np.zeros(0, np.int64), []
            t = np.zeros(0, self._KT.dtype)
            V = _packed(np.zeros((len(self.schema.values) + len(self._onehot_names), 0)))
        else:
            slot, new_keys = self._slots(table, N, row0)
            t = self._times(table, row0)
            onehot = None
            if self._cat:
                onehot, cats, unknown, full = self._onehot(table)
            V = self._values(table, onehot)
            if self._tcols:
                V = self._transformed(V, row0, N)
        C = len(V)
        n = self._n + len(new_keys)
        KT, KB, KV = (self._grown(a, n) for a in (self._KT, self._KB, self._KV))
        SC = self._grown(self._SC, n) if self.scale == "per_key" else self._SC.copy()
        counts = np.zeros(4 + C, np.int64)
        err = np.zeros(5, np.int64)
        cfg = self._cfg.copy()
        cfg[K.ROW0] = row0
        hold = bool(cfg[K.HOLD])
        origin, every = self._tparams[0], self._tparams[1]
        keep = np.zeros(N, np.bool_)
        cap = N + 16 if hold else 0
        while True:
            E = np.empty((C, cap))
            et = np.empty(cap, t.dtype)
            es = np.empty(cap, np.int64)
            esrc = np.empty(cap, np.int64)
            trial = (KT.copy(), KB.copy(), KV.copy(), counts.copy())
            m = K.order_rows(slot, t, V, self._policy, cfg, origin, every, self._top, trial[0],
                             trial[1], trial[2], flush, E, et, es, esrc, keep, trial[3],
                             err)  # fmt: skip
            if err[0] != K.ERR_CAPACITY:
                break
            err[:] = 0
            cap = m + 16
        KT, KB, KV, counts = trial
        if err[0]:
            self._raise_first(table, err, row0, slot, t, new_keys, et)
        if hold:
            E.flags.writeable = False
            A, idx, es, et, src = _packed(E), np.arange(m), es[:m], et[:m], esrc[:m]
        else:
            idx = np.flatnonzero(keep) if m < N else np.arange(N)
            A, es, et, src = V, slot[idx], t[idx], idx + row0
        X, Y, YL, YS = self._outputs(len(idx))
        K.finish_rows(A, idx, es, et, src, self._policy, self._fill, self._xpos, self._ypos,
                      self._mpos, self._scols, self._scfg, self._dt, KT, KB, KV, SC,
                      X, Y, YL, YS, counts, err)  # fmt: skip
        if err[0]:
            self._raise(err, row0, slot, t, new_keys, et)
        if self._calendar:
            c0 = len(self.schema.features) + int(self.time_delta)
            c1 = c0 + 2 * len(self._calendar)
            _calendar_columns(et, self._tz, self._calendar, X[:, c0:c1])
        LH = self._LH
        if self._lag_names:
            LH = self._lag_columns(A, idx, es, src, n, X, YL, YS, row0, slot, new_keys)
        # success: commit
        if new_keys:
            self._index = self._index.append(pd.Index(new_keys, dtype=self._index.dtype))
            self._key_dtype = None
        self._n = n
        self._KT, self._KB, self._KV, self._SC, self._LH = KT, KB, KV, SC, LH
        self._cats = cats
        chunk_counts = {
            "late_dropped": int(counts[K.N_LATE]),
            "duplicates_dropped": int(counts[K.N_DUP]),
            "merged": int(counts[K.N_MERGED]),
            "empty_bins": int(counts[K.N_EMPTY]),
        }
        values = self.schema.values
        filled = {values[j]: int(counts[4 + j]) for j in range(len(values)) if counts[4 + j]}
        j = len(values)  # a category is missing in all its slots: count it at the first
        for c, width, _ in self._cat:
            if counts[4 + j]:
                filled[c] = int(counts[4 + j])
            j += width
        for name, v in chunk_counts.items():
            self.counts[name] += v
        for name, v in filled.items():
            self.counts["missing"][name] += v
        self.counts["rows_in"] += N
        self.counts["rows_out"] += len(idx)
        chunk_counts["missing"] = filled
        if self._cat:
            lost = {c: n for (c, _, _), n in zip(self._cat, unknown) if n}
            total = dict(self.counts["unknown_categories"])  # a new dict: see _snapshot
            for c, v in lost.items():
                total[c] += v
            self.counts["unknown_categories"] = total
            chunk_counts["unknown_categories"] = lost
            if any(full):
                self._warn_full(full, table)
        return self._chunk(es, et, X, Y, YL, YS, chunk_counts)

    def _transformed(self, V, row0, N):
        """The value columns ``V`` with each transformed target's values replaced by
        ``log1p`` of them (a new array; missing values stay missing); a negative
        value is an error."""
        cols = list(V)
        for j in self._tcols:
            values = np.asarray(cols[j])
            bad = values < 0
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise MissingValueError(
                    f"target column {self.schema.values[j]!r} is {values[row]:g} at "
                    f"{_row_text(row0 + row, row0, N)}; transform='log1p' takes values >= 0 "
                    "(a target that cannot be negative); a target that can be takes "
                    "transform=None"
                )
            cols[j] = np.log1p(values)
            cols[j].flags.writeable = False
        return tuple(cols) if isinstance(V, tuple) else _packed(np.stack(cols))

    @staticmethod
    def _grown(a, n, fill=0):
        if a.shape[0] >= n:
            return a.copy()
        out = np.full((max(n, 2 * a.shape[0], 16), *a.shape[1:]), fill, a.dtype)
        out[: a.shape[0]] = a
        return out

    def _lag_columns(self, A, idx, es, src, n, X, YL, YS, row0, slot, new_keys):
        """Write the lagged targets of the emitted rows into ``X``; the keys' new histories.

        ``A[j][idx]`` are the rows' raw values of value column ``j``, ``es`` their
        slots, ``src`` their stream rows (for messages) and ``n`` the number of slots.
        """
        LH = self._grown(self._LH, n, np.nan)
        M = len(idx)
        if not M:
            return LH
        values = np.empty((M, len(self.targets)))
        for q, j in enumerate(self._ycols):
            values[:, q] = np.asarray(A[j])[idx]
        ff, pos, uniq, ends = _ffill_by_key(es, values, LH)
        L = LH.shape[2]
        LH[uniq] = ff[ends[:, None] - L + np.arange(L)].transpose(0, 2, 1)
        q, k = self._lag_at[:, 0], self._lag_at[:, 1]
        now = ff[pos][:, q]  # the last observed value at or before each row
        lagged = ff[pos[:, None] - k, q]
        value = np.where(np.isnan(lagged), now, lagged)
        if self.scale is not None:
            with np.errstate(over="ignore"):
                value = (value - YL[:, q].astype(np.float64)) / YS[:, q]
        out = X[:, self._lag0 : self._lag0 + len(k)]
        with np.errstate(over="ignore"):
            out[...] = np.where(np.isnan(value), 0.0, value)
        bad = ~np.isfinite(out)
        if bad.any():
            m, c = (int(v[0]) for v in np.nonzero(bad))
            N = len(slot)
            where = f"key {self._key_name(es[m], new_keys)!r}" if self.schema.key else "the series"
            fix = "use dtype='float64' or " if self.dtype == np.float32 else ""
            raise MissingValueError(
                f"column {self._lag_names[c]!r} at {_row_text(int(src[m]), row0, N)} ({where}) "
                f"is too large for {np.dtype(self.dtype)} once standardised; {fix}rescale "
                f"the column {self.targets[q[c]]!r}"
            )
        return LH

    def _chunk(self, es, et, X, Y, YL, YS, counts):
        schema = self.schema
        if not schema.key:
            keys = None
        elif self._key_kind == "string":
            if self._key_dtype is None:
                self._key_dtype = pd.CategoricalDtype(self._index)
            keys = pd.Categorical.from_codes(es, dtype=self._key_dtype, validate=False)
        else:
            keys = self._index.to_numpy()[es]
        times = et.view("datetime64[ns]") if self._time_sort == "datetime" else et
        scaled = self.scale is not None
        return Chunk(
            keys, times, X,
            Y if schema.targets else None,
            YL if scaled and schema.targets else None,
            YS if scaled and schema.targets else None,
            self.columns, self.targets, self._tz, counts,
            self.target_transforms if any(self.target_transforms) else (),
        )  # fmt: skip

    def __setstate__(self, state):
        # a feed pickled before calendar features existed has none
        state.setdefault("calendar", None)
        state.setdefault("lags", None)  # nor lagged targets
        state.setdefault("transform", None)  # nor transformed ones
        if state.get("_ready"):
            state.setdefault("target_transforms", tuple(None for _ in state["schema"].targets))
            state.setdefault("_tcols", [])
        if state.get("_ready"):
            state.setdefault("_calendar", ())
            state.setdefault("_lag_names", ())
            state.setdefault("_lag_at", np.zeros((0, 2), np.int64))
            state.setdefault("_lag0", 0)
            n_targets = len(state["schema"].targets or ())
            state.setdefault("_LH", np.full((0, n_targets, 0), np.nan))
            for name, value in (("_cat", ()), ("_cats", ()), ("_cat_full", ()),
                                ("_onehot_names", ())):  # fmt: skip
                state.setdefault(name, value)  # nor categorical columns
        self.__dict__.update(state)

    def _snapshot(self):
        """What :meth:`_restore` needs to undo the next call (state arrays are never
        written in place: each call makes new ones)."""
        state = dict(self.__dict__)
        counts, missing = self.counts, self.counts.get("missing")
        state["_counts_then"] = (counts, dict(counts), missing, dict(missing or {}))
        return state

    def _restore(self, state):
        """Undo back to a snapshot; ``counts`` stays the same dict, with its values back."""
        state = dict(state)
        counts, values, missing, missing_values = state.pop("_counts_then")
        counts.clear()
        counts.update(values)
        if missing is not None:
            missing.clear()
            missing.update(missing_values)
        self.__dict__.clear()
        self.__dict__.update(state)

    # -- errors -------------------------------------------------------------------------------
    def _time_text(self, value):
        if self._time_sort == "datetime":
            return str(np.datetime64(int(value), "ns"))
        return repr(value.item() if isinstance(value, np.generic) else value)

    def _raise_first(self, table, err, row0, slot, t, new_keys, et):
        """Raise the first error in row order: an error found as rows arrive (time
        order, inf) at row r comes after any error the rows before r would give
        once released (nothing to forward-fill, overflow)."""
        r = int(err[1]) - row0
        if table is not None and r > 0:
            before = self._snapshot()
            try:
                self._step(table.slice(0, r), flush=False)
            finally:
                self._restore(before)
        self._raise(err, row0, slot, t, new_keys, et)

    def _raise(self, err, row0, slot, t, new_keys, et):
        code, row, j, s, m = (int(v) for v in err)
        N = len(slot)
        key = self._key_name(s, new_keys)
        where = f"key {key!r}" if self.schema.key else "the series"
        at = _row_text(row, row0, N)
        if code in (K.ERR_LATE, K.ERR_DUPLICATE):
            r = row - row0
            prev = self._KT[s, K.T_LAST] if s < self._n and self._KB[s, K.HAS_LAST] else None
            earlier = np.flatnonzero(slot[:r] == s)  # the previous time may be in this chunk
            if earlier.size:
                prev = t[earlier].max()
            what = "before" if code == K.ERR_LATE else "equal to"
            fix = "late='drop'" if code == K.ERR_LATE else "duplicates='first' or 'last'"
            raise TimeOrderError(
                f"{where}: time {self._time_text(t[r])} at {at} is {what} its previous "
                f"time {self._time_text(prev)}; times must increase within a key "
                f"(or pass {fix} to count and drop such rows)"
            )
        if code == K.ERR_RELEASED:
            r = row - row0
            raise TimeOrderError(
                f"{where}: time {self._time_text(t[r])} at {at} falls in a grid bin that "
                "flush() has already emitted; pass late='drop' to count and drop such rows"
            )
        if code == K.ERR_GAP:
            r = row - row0
            raise TimeOrderError(
                f"{where}: time {self._time_text(t[r])} at {at} is more than "
                f"max_empty_bins={self.max_empty_bins} grid steps after the key's previous "
                "row (or too far from the epoch for the grid); check the timestamp, or raise "
                "max_empty_bins"
            )
        if j < 0:  # the time since the previous row
            raise MissingValueError(
                f"the time since the key's previous row (column 'dt') at {at} ({where}) is "
                f"too large for {np.dtype(self.dtype)}; use dtype='float64' or check the times"
            )
        column = (*self.schema.values, *self._onehot_names)[j]
        if code == K.ERR_SCALE:
            raise MissingValueError(
                f"column {column!r} at {at} ({where}): its running mean or variance overflows "
                "float64, so it cannot be standardised; rescale the column first"
            )
        if code == K.ERR_INF:
            raise MissingValueError(
                f"column {column!r} is infinite at {at} ({where}); values must be finite"
            )
        if code == K.ERR_OVERFLOW:
            what = "" if m < 0 else " once standardised"  # m < 0: found as the row arrived
            fix = "use dtype='float64' or " if self.dtype == np.float32 else ""
            raise MissingValueError(
                f"column {column!r} at {at} ({where}) is too large for {np.dtype(self.dtype)}"
                f"{what}; {fix}rescale the column"
            )
        if self.grid is not None and m >= 0 and code in (K.ERR_MISSING, K.ERR_NO_FFILL):
            at = f"the grid bin at {self._time_text(et[m])}"
            where += " (a bin with no value: no rows, or only missing ones)"
        if code == K.ERR_NO_FFILL:
            raise MissingValueError(
                f"column {column!r} is missing at {at} ({where}) with no earlier value to "
                f"carry forward; use missing={{{column!r}: ('ffill', value)}} to fill until "
                "there is one"
            )
        role = "a target, which is also an input" if column in self.schema.targets else "an input"
        raise MissingValueError(
            f"column {column!r} ({role}) has no value at {at} ({where}), and its missing-value "
            f"policy is 'error'; choose one for it: missing={{{column!r}: 'mask'}} (0 and a "
            f"{column}_missing input; a missing target is not learned from), 'ffill' or a fill "
            "value; or missing='mask' for every input"
        )

    # -- scaling ---------------------------------------------------------------------------------
    def target_scaling(self, keys=None):
        """``(loc, scale)`` of the targets now, ``(len(keys), n_targets)`` each.

        What turns a model output standing for the targets back into data units
        (``out * scale + loc``); ones and zeros when the feed does not scale.
        """
        self._require()
        n_keys = 1 if keys is None else len(keys)
        O = len(self.targets)
        if self.scale is None or not O:
            return np.zeros((n_keys, O)), np.ones((n_keys, O))
        if self.scale == "per_key" and self.schema.key:
            if keys is None:
                raise ConfigError("per-key scaling needs the keys")
            slots = self._index.get_indexer(pd.Index(list(keys), dtype=self._index.dtype))
            if (slots < 0).any():
                raise SchemaError(
                    f"key {list(keys)[int(np.flatnonzero(slots < 0)[0])]!r} was never fed"
                )
        else:
            slots = np.zeros(n_keys, np.int64)
        stats = self._SC[slots][:, self._ycols]
        count = stats[..., 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            sd = np.where(count > 0, np.sqrt(stats[..., 2] / count), 0.0)
        return stats[..., 1], np.where(sd > 0, sd, 1.0)
