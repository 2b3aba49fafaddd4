"""Which columns are the key, the time, the inputs and the targets; checked on every chunk.

A :class:`Schema` gives each column of a long-format table a role. Roles left
open are inferred from the first chunk, by rules that never guess between
readings of the data that would give different results:

* the time is the one timestamp or date column, else the one column named
  ``time`` or ``timestamp``, else a timestamp built from columns named
  ``year``, ``month`` and ``day`` (and ``hour``, ``minute``, ``second`` when
  there are such columns);
* the key is the column named like a key (``key``, ``id``, ``series``, ...);
  inferring it is announced with a :class:`KeyWarning`, and a table with text
  columns that no role claims and no column named like a key is refused, since
  such a column may be a key or an input;
* the features are the numeric columns that no other role claims.

Once bound, a schema also turns a chunk's time parts into timestamps
(:meth:`Schema.time_column`); the :class:`~feeds.feed.Feed` turns its
categorical columns into one-hot inputs.
"""

import numbers
import re
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ._warn import user_level
from .errors import ConfigError, MissingValueError, SchemaError

_KEY_NAMES = ("key", "id", "series", "symbol", "sensor", "station", "city", "ticker")
# the parts a time is built from, largest first; a part is found by its name or plural
TIME_PARTS = ("year", "month", "day", "hour", "minute", "second")
_PART_OF = {**{p: p for p in TIME_PARTS}, **{p + "s": p for p in TIME_PARTS}}
# short names of parts, only to suggest time={part: column} in a message (never inferred)
_PART_ALIAS = {"yr": "year", "yyyy": "year", "mo": "month", "mon": "month", "mth": "month",
               "dy": "day", "dd": "day", "hr": "hour", "hh": "hour", "mi": "minute",
               "min": "minute", "sec": "second", "ss": "second"}  # fmt: skip
# how a time written as text starts (01/31/2010, 2010-01-31, 31.01.2010), for a message
_DATE_TEXT = re.compile(r"\s*\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}")
# the range of each part that is a clock reading (days are checked against their month)
_PART_RANGE = {"month": (1, 12), "hour": (0, 23), "minute": (0, 59), "second": (0, 59)}
_NS = {"hour": 3_600 * 10**9, "minute": 60 * 10**9, "second": 10**9}
_DAY = 86_400 * 10**9
# days from 1970-01-01 that nanosecond timestamps hold whole (1677-09-22 to 2262-04-10)
_DAYS = 106_750
# the default width of a category list grown from the stream: categorical=["column"]
CATEGORIES = 16
# text that Arrow's CSV reader takes as missing in a numeric column
_NULL_TEXT = frozenset(
    ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
     "1.#QNAN", "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null")
)  # fmt: skip


class KeyWarning(UserWarning):
    """The key column was inferred from its name.

    Name it (``Schema(key="city")``) or say the table is one series
    (``Schema(key=False)``) to make the choice explicit and silence this.
    """


class CategoryWarning(UserWarning):
    """A category list grown from the stream is full: later new categories get no slot.

    Their rows get all-zero one-hot inputs (counted in the feed's
    ``counts["unknown_categories"]``); declare a wider list to give them slots.
    """


def kind_of(dtype):
    """The kind of an Arrow type as the schema sees it.

    ``"time"`` (timestamp or date), ``"string"`` (string or dictionary of
    strings), ``"integer"`` (or a dictionary of integers), ``"number"``
    (float, bool, decimal), ``"null"`` (a column of nulls only) or ``"other"``.
    """
    if pa.types.is_dictionary(dtype):
        inner = kind_of(dtype.value_type)
        return inner if inner in ("string", "integer") else "other"
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
        return "time"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "string"
    if getattr(pa.types, "is_string_view", lambda t: False)(dtype):
        return "string"
    if pa.types.is_integer(dtype):
        return "integer"
    if pa.types.is_floating(dtype) or pa.types.is_boolean(dtype) or pa.types.is_decimal(dtype):
        return "number"
    if pa.types.is_null(dtype):
        return "null"
    return "other"


def _names(cols):
    """A tuple of column names; one name (a str) is one column, not its letters."""
    if cols is None:
        return None
    return (cols,) if isinstance(cols, str) else tuple(cols)


def _row_text(row, row0, n):
    """Where stream row ``row`` is, for a message about a chunk whose first row is ``row0``."""
    if row0 <= row < row0 + n:
        return f"row {row - row0}" + (f" (row {row} of the stream)" if row0 else "")
    return f"row {row} of the stream (held back from an earlier chunk)"


def _describe(dtype):
    kind = kind_of(dtype)
    if pa.types.is_timestamp(dtype):
        return f"timestamp in time zone {dtype.tz!r}" if dtype.tz else "timestamp without time zone"
    return {"string": "string", "integer": "integer", "number": "number"}.get(kind, str(dtype))


def _time_sort(dtype):
    """What must stay the same about the time column from chunk to chunk."""
    kind = kind_of(dtype)
    if kind == "time":
        return ("datetime", getattr(dtype, "tz", None))
    if kind == "integer":
        return ("integer", None)
    if pa.types.is_floating(dtype):
        return ("float", None)
    return ("other", None)


def _time_spec(time):
    """``time`` checked: ``(time, parts)``, with ``time`` a column name (``parts`` None)
    or the tuple of part columns, largest part first (``parts``: {part: column})."""
    if time is None or isinstance(time, str):
        return time, None
    if isinstance(time, (list, tuple)) and len(time) == 1 and isinstance(time[0], str):
        return time[0], None
    accepted = (
        "a column name, or the columns of its parts: year, month and day, then hour, minute "
        "and second if wanted (time=['year', 'month', 'day', 'hour'], found by their names, "
        "or time={'year': 'yr', 'month': 'mo', 'day': 'd'})"
    )
    parts = {}
    if isinstance(time, Mapping):
        for part, column in time.items():
            if part not in TIME_PARTS:
                raise SchemaError(f"time names the part {part!r}; the parts are {list(TIME_PARTS)}")
            if not isinstance(column, str):
                raise SchemaError(f"time gives {column!r} for the {part}; expected a column name")
            parts[part] = column
    elif isinstance(time, (list, tuple)):
        for column in time:
            if not isinstance(column, str):
                raise SchemaError(f"time must be {accepted}; got {time!r}")
            part = _PART_OF.get(column.lower())
            if part is None:
                raise SchemaError(
                    f"time lists column {column!r}, whose name is no time part (year, month, "
                    f"day, hour, minute, second, or their plurals, in any case); say which "
                    f"part each column is: time={_parts_text(time)}"
                )
            if part in parts:
                raise SchemaError(
                    f"time lists two {part} columns, {parts[part]!r} and {column!r}; list one"
                )
            parts[part] = column
    else:
        raise SchemaError(f"time must be {accepted}; got {time!r}")
    lacking = [p for p in ("year", "month", "day") if p not in parts]
    if lacking:
        raise SchemaError(
            f"a time built from parts needs year, month and day columns; {list(time)} has no "
            f"{' or '.join(lacking)} column"
        )
    for small, large in (("minute", "hour"), ("second", "minute")):
        if small in parts and large not in parts:
            raise SchemaError(f"a time built from parts with a {small} needs an {large} too")
    columns = list(parts.values())
    dup = [c for c in columns if columns.count(c) > 1]
    if dup:
        raise SchemaError(f"time gives column {dup[0]!r} for two parts; each part is its own")
    parts = {p: parts[p] for p in TIME_PARTS if p in parts}
    return tuple(parts.values()), parts


def _categorical_spec(categorical):
    """``categorical`` checked: {column: width (int) or declared categories (tuple)}."""
    if categorical is None:
        return {}
    accepted = (
        "a column name, a list of them (each with a category list grown from the stream, "
        f"{CATEGORIES} slots), or a dict {{column: number of slots, or the list of categories}}"
    )
    if isinstance(categorical, str):
        categorical = [categorical]
    if isinstance(categorical, (list, tuple)):
        if any(not isinstance(c, str) for c in categorical):
            raise SchemaError(f"categorical must be {accepted}; got {categorical!r}")
        if len(set(categorical)) != len(categorical):
            raise SchemaError(f"categorical names a column twice: {list(categorical)}")
        return dict.fromkeys(categorical, CATEGORIES)
    if not isinstance(categorical, Mapping):
        raise SchemaError(f"categorical must be {accepted}; got {categorical!r}")
    spec = {}
    for column, value in categorical.items():
        if not isinstance(column, str):
            raise SchemaError(f"categorical must be {accepted}; got the key {column!r}")
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            if value < 1:
                raise SchemaError(
                    f"categorical gives column {column!r} {value} slots; give 1 or more"
                )
            spec[column] = int(value)
            continue
        if not isinstance(value, (list, tuple)) or not value:
            raise SchemaError(
                f"categorical gives column {column!r} {value!r}; expected a number of slots "
                "or a non-empty list of its categories"
            )
        strings = all(isinstance(v, str) for v in value)
        integers = all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)
        if not (strings or integers):
            raise SchemaError(
                f"the categories of column {column!r} must be all strings or all integers, "
                f"got {list(value)}"
            )
        value = tuple(value) if strings else tuple(int(v) for v in value)
        dup = [v for v in value if value.count(v) > 1]
        if dup:
            raise SchemaError(f"the categories of column {column!r} list {dup[0]!r} twice")
        spec[column] = value
    return spec


def _parts_text(columns):
    """``{part: column}`` as text for ``columns`` listed as a time's parts: each by its
    name or short name (``yr``), else in the order listed."""
    columns = [c for c in columns if isinstance(c, str)]
    guess = [_PART_OF.get(c.lower()) or _PART_ALIAS.get(c.lower()) for c in columns]
    if None in guess or len(set(guess)) != len(guess):
        guess = TIME_PARTS[: len(columns)]
    return "{" + ", ".join(f"{p!r}: {c!r}" for p, c in zip(guess, columns, strict=False)) + "}"


def _no_time_hint(names, kinds, table, claimed):
    """What to add when no column can be the time: a text column that looks like times
    written as text, and the columns that look like parts under short names."""
    hints = []
    for n in names:
        if kinds[n] != "string" or n in claimed:
            continue
        first = None
        if table is not None and n in table.column_names:
            col = table.column(n).drop_null()
            first = col[0].as_py() if len(col) else None
        named = any(w in n.lower() for w in ("date", "time"))
        if named or (isinstance(first, str) and _DATE_TEXT.match(first)):
            such = f" such as {first!r}" if isinstance(first, str) else ""
            hints.append(
                f"column {n!r} holds text{such}, not times: times written otherwise than in "
                "ISO 8601 are read as times with iter_csv(..., time_format='%m/%d/%Y %H:%M') "
                "(a strptime format)"
            )
            break
    found = {}
    for n in names:
        part = _PART_ALIAS.get(n.lower())
        if part and kinds[n] in ("integer", "number") and n not in claimed:
            found.setdefault(part, n)
    if all(p in found for p in ("year", "month", "day")):
        parts = {p: found[p] for p in TIME_PARTS if p in found}
        example = "{" + ", ".join(f"{p!r}: {c!r}" for p, c in parts.items()) + "}"
    else:
        example = "{'year': ..., 'month': ..., 'day': ..., 'hour': ...}"
    hints.append(
        f"name it with Schema(time=...), or its parts with Schema(time={example}) (columns "
        "named year, month, day, hour, ... are found by their names)"
    )
    return "; or ".join(hints)


def _infer_parts(names, kinds, taken):
    """{part: column} of columns named as time parts, when year, month and day are there."""
    found = {}
    for n in names:
        part = _PART_OF.get(n.lower())
        if part is None or n in taken or kinds[n] not in ("integer", "number"):
            continue
        if part in found:
            return None  # two columns for one part: no guess
        found[part] = n
    if not all(p in found for p in ("year", "month", "day")):
        return None
    for small, large in (("minute", "hour"), ("second", "minute")):
        if large not in found:
            found.pop(small, None)
    return {p: found[p] for p in TIME_PARTS if p in found}


def _numeric_text(table, name):
    """``(value, row)`` of the first text in column ``name`` that is no number, when most
    of its other values are numbers written as text (a numeric column with a stray
    string, which makes Arrow type it as text); otherwise None."""
    if table is None or name not in table.column_names or table.num_rows == 0:
        return None
    col = table.column(name)
    if pa.types.is_dictionary(col.type):
        col = pc.cast(col, col.type.value_type)
    if kind_of(col.type) != "string":
        return None
    text = pd.Series(col.to_numpy(zero_copy_only=False), dtype=object)
    present = text.notna() & ~text.str.strip().isin(_NULL_TEXT)
    numbers_ = pd.to_numeric(text.where(present), errors="coerce").notna()
    words = present & ~numbers_
    if not words.any() or numbers_.sum() <= words.sum():
        return None
    row = int(np.flatnonzero(words.to_numpy())[0])
    return text.iloc[row], row


def _numeric_hint(name, found):
    value, row = found
    return (
        f"column {name!r} holds text such as {value!r} at row {row}, though its other values "
        f"read as numbers: fix the value in the data, or, if it marks a missing value, read "
        f"it as one (iter_csv(..., na_values=[{value!r}]); pandas.to_numeric(errors='coerce') "
        f"makes every text missing), or read the column as numbers "
        f"(iter_csv(..., column_types={{{name!r}: pa.float64()}}) refuses the value with its "
        f"line)"
    )


def _unclaimed_text(names, kinds, table):
    """The message that refuses text columns no role claims, when no key is named."""
    hints = [_numeric_hint(n, f) for n in names if (f := _numeric_text(table, n))]
    if hints:
        return "; ".join(hints) + "; or name the features (features=[...]) to leave it out"
    binary = [n for n in names if kinds[n] == "other"]
    text = [n for n in names if kinds[n] != "other"]
    parts = []
    if text:
        one = text[0]
        what = f"column {one!r} holds" if len(text) == 1 else f"columns {text} hold"
        parts.append(
            f"{what} text, and no column is named as a key ({', '.join(_KEY_NAMES)}), so the "
            f"schema does not guess its role: pass key={one!r} for one series per value, "
            f"key=False for one series, categorical={text!r} to give the model one-hot inputs "
            f"of it, or name the features (features=[...]) to leave it out"
        )
    if binary:
        what = f"column {binary[0]!r} holds" if len(binary) == 1 else f"columns {binary} hold"
        parts.append(
            f"{what} data that is neither numbers nor text (bytes that are not UTF-8 text, as "
            "a CSV file in another encoding gives: re-encode the file as UTF-8); pass "
            "key=False for one series or name the features (features=[...]) to leave it out"
        )
    return "; ".join(parts)


class Schema:
    """Roles of a long-format table's columns.

    Any role left as None is inferred from the first chunk; after it the
    schema is bound and every later chunk is checked against it.

    Parameters
    ----------
    time : str, sequence of str or dict, optional
        The time column: timestamps of any unit (time-zone aware or not), dates,
        integers or floats. Inferred as the one timestamp or date column; when
        there is none, as the one column named ``time`` or ``timestamp`` (any
        case, of any type). Several candidates are an error: name it.

        Or the columns of its parts, as a list (``["year", "month", "day",
        "hour"]``, each part found by its column's name: ``year``, ``month``,
        ``day``, ``hour``, ``minute``, ``second`` or their plurals, in any case)
        or a dict ``{part: column}`` (``{"year": "yr", "month": "mo", "day":
        "d"}``). Year, month and day are needed; hour, minute and second are
        optional, each needing the one before. The parts are whole numbers
        (integers, or floats with whole values) and make a timestamp without
        time zone, in nanoseconds; a null part is a
        :class:`MissingValueError` and a part out of its range (month 13,
        February 30, hour 24) a :class:`SchemaError`, each naming the row and
        its parts. Part columns are not features. When no time column can be
        inferred and the table has one column named as a year, one as a month
        and one as a day (integers or floats), the time is built from them and
        from the hour, minute and second columns there are: unambiguous, so not
        announced. Outputs call this time ``"time"`` (:attr:`time_name`).
    key : str or False, optional
        The series id column (strings, categoricals, dictionary-encoded strings
        or integers); False means the table is one series. The key is never
        guessed from a column's content. When None, it is the one column named
        like a key (``key``, ``id``, ``series``, ``symbol``, ``sensor``,
        ``station``, ``city`` or ``ticker``, in any case) that holds strings or
        integers and no other role claims; this is announced with a
        :class:`KeyWarning` that names the column (name it, or pass False, to
        silence it). Several such columns are an error. With none the table is
        one series, except that text columns that no role claims make the
        schema refuse to guess, when the features are inferred: the error
        names them and the choices (``key=...`` for one series per value,
        ``key=False`` for one series, ``categorical=[...]`` for inputs, or
        ``features=[...]`` to leave them out). A text column whose values
        are mostly numbers is refused whatever the key, as long as the
        features are inferred: the message names a value that is no number and
        its row.
    features : str or sequence of str, optional
        Numeric model inputs, in order (a str is one column). Inferred as every
        numeric column that no other role claims, in table order (targets
        included). When named, other columns are ignored.
    targets : str or sequence of str, optional
        Columns the model's outputs stand for (a str is one column); none by
        default.
    categorical : str, sequence of str or dict, optional
        Text or integer columns given to the model as one-hot inputs, each in a
        fixed number of input columns (its slots):

        - ``{"cbwd": ["NE", "NW", "SE", "cv"]}`` declares the categories, one
          slot each, in that order; input columns ``"cbwd=NE"``, ...;
        - ``{"cbwd": 8}`` grows the list from the stream: each new category
          takes the next free slot in the order of its first row in the stream
          (whatever the chunks), up to 8; input columns ``"cbwd[0]"`` to
          ``"cbwd[7]"`` (:attr:`feeds.Feed.categories` says which category each
          slot holds);
        - a name or a list of names grows each list up to ``CATEGORIES`` (16)
          slots.

        A category with no slot (not declared, or new once the list is full)
        is an all-zero row, counted in the feed's
        ``counts["unknown_categories"]``; a grown list that fills up warns once
        (:class:`CategoryWarning`). A missing category (null) is an all-zero
        row too, counted in ``counts["missing"]``. On a grid, a bin's slots are
        aggregated as other columns (``"mean"``: the share of its rows in each
        category). The one-hot columns are not scaled. The categories are
        kept with the feed, so a pickled feed resumes with the same encoding.

    Attributes
    ----------
    time_parts : dict or None
        ``{part: column}`` when the time is built from parts.

    Examples
    --------
    >>> import pandas as pd, pyarrow as pa
    >>> from feeds import Schema
    >>> df = pd.DataFrame({"city": ["a", "b"], "time": pd.to_datetime(["2024-01-01"] * 2),
    ...                    "temp": [1.0, 2.0], "wind": [3.0, 4.0]})
    >>> schema = Schema(key="city", targets=["temp"]).bind(pa.Schema.from_pandas(df))
    >>> schema.key, schema.time, schema.features, schema.targets
    ('city', 'time', ('temp', 'wind'), ('temp',))

    The time from its parts, and a text column as one-hot inputs:

    >>> df = pd.DataFrame({"year": [2010, 2010], "month": [1, 1], "day": [1, 1],
    ...                    "hour": [0, 1], "pm2.5": [129.0, 148.0], "cbwd": ["SE", "cv"]})
    >>> schema = Schema(time=["year", "month", "day", "hour"], key=False,
    ...                 categorical={"cbwd": ["NE", "NW", "SE", "cv"]}).bind(pa.table(df))
    >>> schema.time, schema.features
    (('year', 'month', 'day', 'hour'), ('pm2.5',))
    >>> [str(t) for t in schema.time_column(pa.table(df)).to_pylist()]
    ['2010-01-01 00:00:00', '2010-01-01 01:00:00']

    A text column that no role claims is not taken as the key:

    >>> Schema(targets="pm2.5").bind(pa.table(df))
    Traceback (most recent call last):
    ...
    feeds.errors.SchemaError: column 'cbwd' holds text, and no column is named as a key ...
    """

    def __init__(self, time=None, key=None, features=None, targets=None, categorical=None):
        self.time, self._time_parts = _time_spec(time)
        self.key = key
        self.features = _names(features)
        self.targets = _names(targets)
        self.categorical = _categorical_spec(categorical)
        for name, cols in (("features", self.features), ("targets", self.targets)):
            if cols is not None and (
                any(not isinstance(c, str) for c in cols) or len(set(cols)) != len(cols)
            ):
                raise SchemaError(f"{name} must be distinct column names, got {list(cols)}")
        if key is not None and key is not False and not isinstance(key, str):
            raise SchemaError(f"key must be a column name or False (one series), got {key!r}")
        times = self._time_columns()
        if key is not None and key in times:
            raise ConfigError(f"column {key!r} cannot be both the time and the key")
        roles = [("the time", c) for c in times] + [("the key", key)]
        for role, c in roles:
            if c and c in self.categorical:
                raise ConfigError(f"column {c!r} cannot be both {role} and categorical")
        roles += [("categorical", c) for c in self.categorical]
        for name, cols in (("features", self.features), ("targets", self.targets)):
            for role, c in roles:
                if c and c in (cols or ()):
                    raise ConfigError(
                        f"column {c!r} is {role} and cannot be one of the {name}; "
                        f"{name} are other (numeric) columns"
                    )
        self._types = None
        self._inferred_features = features is None
        self._announced = None  # the key a KeyWarning announced

    def _time_columns(self):
        """The columns the time is read from (none while it is not known)."""
        if self.time is None:
            return ()
        return (self.time,) if self._time_parts is None else self.time

    @property
    def bound(self):
        """Whether the roles and column types are fixed (after the first chunk)."""
        return self._types is not None

    @property
    def values(self):
        """Feature and target columns, each once: the numeric columns a feed reads."""
        return tuple(dict.fromkeys(self.features + self.targets))

    @property
    def time_parts(self):
        """``{part: column}`` when the time is built from parts, else None."""
        return None if self._time_parts is None else dict(self._time_parts)

    @property
    def time_name(self):
        """The name of the time in outputs: the time column, or ``"time"`` for parts."""
        return "time" if self._time_parts is not None else self.time

    @property
    def time_type(self):
        """The Arrow type of the time (bound schemas): the time column's, or
        ``timestamp[ns]`` for a time built from parts."""
        self._require_bound()
        if self._time_parts is not None:
            return pa.timestamp("ns")
        return self._types[self.time]

    @property
    def source_columns(self):
        """Every column a feed reads (bound schemas): the time or its parts, the key,
        the features and targets, the categorical columns; what a reader must give."""
        self._require_bound()
        return tuple(self._types)

    def _require_bound(self):
        if not self.bound:
            raise SchemaError("this schema is not bound yet; its columns are not known")

    def __repr__(self):
        time = dict(self._time_parts) if self._time_parts is not None else self.time
        extra = f", categorical={self.categorical!r}" if self.categorical else ""
        return (
            f"Schema(time={time!r}, key={self.key!r}, features={self.features!r}, "
            f"targets={self.targets!r}{extra})"
        )

    def _state(self):
        return (self.time, self._time_parts, self.key, self.features, self.targets,
                self.categorical, self._types)  # fmt: skip

    def __eq__(self, other):
        return isinstance(other, Schema) and self._state() == other._state()

    __hash__ = None

    def __setstate__(self, state):
        # a schema pickled before time parts and categorical columns existed has neither
        state.setdefault("_time_parts", None)
        state.setdefault("categorical", {})
        state.setdefault("_announced", None)
        self.__dict__.update(state)

    def _unbound_copy(self):
        out = Schema.__new__(Schema)
        out.__dict__.update(self.__dict__)
        out.categorical = dict(self.categorical)
        out._types = None
        return out

    def bind(self, schema):
        """A bound copy: roles inferred from, and types fixed by, a table or its schema.

        Parameters
        ----------
        schema : pyarrow.Schema, pyarrow.Table or pyarrow.RecordBatch
            The first chunk, or its Arrow schema. With the rows, an error about
            a text column that holds numbers names a value and its row.

        Returns
        -------
        Schema
            Bound; ``self`` when it is bound already (after checking ``schema``).
        """
        table = None
        if isinstance(schema, pa.RecordBatch):
            schema = pa.Table.from_batches([schema])
        if isinstance(schema, pa.Table):
            table, schema = schema, schema.schema
        if self.bound:
            self.check(schema)
            return self
        names = list(schema.names)
        kinds = {f.name: kind_of(f.type) for f in schema}
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise SchemaError(f"column {dup!r} appears twice; column names must be distinct")
        out = self._unbound_copy()
        claimed = set(out.categorical) | set(out.features or ()) | set(out.targets or ())
        if out.key:
            claimed.add(out.key)
        if out.time is None:
            times = [n for n in names if kinds[n] == "time" and n not in claimed]
            if not times:
                times = [n for n in names if n.lower() in ("time", "timestamp")]
            parts = None if times else _infer_parts(names, kinds, claimed)
            if parts is not None:
                out.time, out._time_parts = tuple(parts.values()), parts
            elif len(times) != 1:
                hint = (
                    _no_time_hint(names, kinds, table, claimed)
                    if not times
                    else "name it with Schema(time=...)"
                )
                raise SchemaError(
                    f"cannot tell the time column: {len(times)} timestamp or date columns "
                    f"({times}) among {names}; {hint}"
                )
            else:
                out.time = times[0]
        taken = set(out._time_columns())
        for c in out._time_columns():
            if c not in kinds:
                what = "time column" if out._time_parts is None else "time part column"
                raise SchemaError(f"{what} {c!r} is missing; the table has columns {names}")
        claimed |= taken
        inferred_key = out.key is None
        if inferred_key:
            named = [
                n
                for n in names
                if n.lower() in _KEY_NAMES
                and n not in claimed
                and kinds[n] in ("string", "integer")
            ]
            if len(named) > 1:
                raise SchemaError(
                    f"cannot tell the key column: {named} are all named as keys; name it with "
                    "Schema(key=...), or pass Schema(key=False) for one series"
                )
            out.key = named[0] if named else False
        if out.key:
            taken.add(out.key)
            claimed.add(out.key)
        taken |= set(out.categorical)
        left_out = [n for n in names if n not in claimed and kinds[n] in ("string", "other")]
        if out._inferred_features:
            numeric = [(n, f) for n in left_out if (f := _numeric_text(table, n))]
            if numeric:
                raise SchemaError(
                    "; ".join(_numeric_hint(n, f) for n, f in numeric)
                    + "; or name the features (features=[...]) to leave it out"
                )
            if inferred_key and not out.key and left_out:
                raise SchemaError(_unclaimed_text(left_out, kinds, table))
        if out.targets is None:
            out.targets = ()
        if out.features is None:
            out.features = tuple(
                n for n in names if n not in taken and kinds[n] in ("number", "integer", "null")
            )
        if out.key and out.key not in kinds:
            raise SchemaError(f"key column {out.key!r} is missing; the table has columns {names}")
        if not out.features and not out.categorical:
            raise SchemaError(
                f"no feature columns: the table has {names}, with time {out.time!r} and key "
                f"{out.key!r}; features are numeric columns (name them with Schema(features=...)) "
                "or categorical ones (Schema(categorical=[...]))"
            )
        overlap = set(out.values) & taken
        if overlap:
            raise SchemaError(
                f"column {sorted(overlap)[0]!r} cannot be both a value and the key/time"
            )
        out._types = {}
        for c in (*out._time_columns(), *([out.key] if out.key else []), *out.values,
                  *out.categorical):  # fmt: skip
            if c not in kinds:
                raise SchemaError(f"column {c!r} is missing; the table has columns {names}")
            out._types[c] = schema.field(c).type
        self._check_kinds(out, kinds, table)
        if out._inferred_features:
            out._columns = frozenset(names)
        if inferred_key and out.key and self._announced != out.key:
            self._announced = out.key  # once per schema: readers and the feed both bind it
            ignored = [n for n in left_out if n != out.key]
            also = (
                f"; text columns {ignored} are left out (categorical={ignored!r} gives "
                "them to the model)"
                if ignored
                else ""
            )
            warnings.warn(
                f"the key column is {out.key!r}, inferred from its name: one series per value "
                f"of it; pass key={out.key!r} to say so, or key=False for one series{also}",
                KeyWarning,
                stacklevel=user_level(),
            )
        return out

    @staticmethod
    def _check_kinds(out, kinds, table=None):
        single_time = out.time if out._time_parts is None else None
        for role, c in (("time", single_time), ("key", out.key)):
            if c and kinds[c] == "null":
                raise MissingValueError(
                    f"{role} column {c!r} holds only missing values in the first chunk; "
                    f"every row needs a {role}"
                )
        if out.key and pa.types.is_floating(out._types[out.key]):
            raise SchemaError(
                f"key column {out.key!r} holds floats; expected strings or integers "
                "(pandas turns integer keys with a missing value into floats: every row "
                "needs a key)"
            )
        if out._time_parts is None:
            time_sort = _time_sort(out._types[out.time])[0]
            if time_sort == "other" and kinds[out.time] == "string":
                found = None if table is None else table.column(out.time).drop_null()
                such = f" such as {found[0].as_py()!r}" if found is not None and len(found) else ""
                raise SchemaError(
                    f"time column {out.time!r} holds text{such} ({out._types[out.time]}); "
                    "expected timestamps, dates, integers or floats: times written otherwise "
                    "than in ISO 8601 are read as times with iter_csv(..., "
                    "time_format='%m/%d/%Y %H:%M') (a strptime format); other inputs: convert "
                    "the column to timestamps first (pandas.to_datetime)"
                )
            if time_sort == "other":
                raise SchemaError(
                    f"time column {out.time!r} is {out._types[out.time]}; expected timestamps, "
                    "dates, integers or floats"
                )
        else:
            for part, c in out._time_parts.items():
                if kinds[c] == "null":
                    raise MissingValueError(
                        f"time part column {c!r} ({part}) holds only missing values in the "
                        "first chunk; every row needs a time"
                    )
                if kinds[c] not in ("integer", "number") or pa.types.is_boolean(out._types[c]):
                    raise SchemaError(
                        f"time part column {c!r} ({part}) is {out._types[c]}; time parts are "
                        "whole numbers (integers, or floats with whole values)"
                    )
        if out.key and kinds[out.key] not in ("string", "integer"):
            raise SchemaError(
                f"key column {out.key!r} is {out._types[out.key]}; expected strings, "
                "dictionary-encoded strings or integers"
            )
        for c in out.values:
            if kinds[c] not in ("number", "integer", "null"):
                found = _numeric_text(table, c)
                if found:
                    raise SchemaError(_numeric_hint(c, found))
                hint = (
                    f"; name it in categorical=[{c!r}] for one-hot inputs"
                    if kinds[c] == "string" and c not in out.targets
                    else ""
                )
                raise SchemaError(
                    f"column {c!r} is {out._types[c]}; features and targets must be numbers "
                    f"(float, integer or bool){hint}"
                )
        for c, spec in out.categorical.items():
            kind = kinds[c]
            if kind not in ("string", "integer", "null"):
                floats = (
                    " (pandas turns integers with a missing value into floats: use the "
                    "'Int64' dtype)"
                    if kind == "number"
                    else ""
                )
                raise SchemaError(
                    f"categorical column {c!r} is {out._types[c]}; categories are strings "
                    f"or integers{floats}"
                )
            if isinstance(spec, tuple) and kind != "null":
                if (kind == "string") != isinstance(spec[0], str):
                    raise SchemaError(
                        f"categorical column {c!r} holds {kind}s, but its declared categories "
                        f"are {'strings' if isinstance(spec[0], str) else 'integers'}: "
                        f"{list(spec)}"
                    )

    def check(self, schema):
        """Raise :class:`SchemaError` if an Arrow schema breaks this bound schema."""
        names = set(schema.names)
        parts = set(self._time_parts.values()) if self._time_parts is not None else set()
        for c, want in self._types.items():
            if c not in names:
                raise SchemaError(
                    f"column {c!r} is missing from this chunk; expected {_describe(want)} "
                    f"as in the first chunk (columns: {sorted(names)})"
                )
            got = schema.field(c).type
            if c == self.time:
                ok = _time_sort(got) == _time_sort(want)
            elif c == self.key:
                ok = kind_of(got) == kind_of(want)
            elif c in parts:
                ok = kind_of(got) in ("number", "integer", "null") and not pa.types.is_boolean(got)
            elif c in self.categorical:
                kind, first = kind_of(got), kind_of(want)
                ok = kind in ("string", "integer", "null") and (
                    kind == first or "null" in (kind, first)
                )
            else:
                ok = kind_of(got) in ("number", "integer", "null")
            if not ok:
                raise SchemaError(
                    f"column {c!r} is {_describe(got)} in this chunk; expected "
                    f"{_describe(want)} as in the first chunk"
                )
        if self._inferred_features:
            extra = sorted(names - self._columns)
            if extra:
                raise SchemaError(
                    f"column {extra[0]!r} was not in the first chunk; features were inferred "
                    f"from it as {list(self.features)} (name them with Schema(features=...) "
                    "to ignore other columns)"
                )

    def time_column(self, table, row0=0):
        """The time of each row of ``table`` (bound schemas): the time column as it is, or
        the timestamps (nanoseconds, no time zone) that its time parts make.

        ``row0`` is the stream row of the table's first row, for messages. A null
        part is a :class:`MissingValueError` and a part out of range (month 13,
        April 31, hour 24, a year beyond what nanoseconds since 1970 hold) a
        :class:`SchemaError`, naming the first such row and its parts.

        Examples
        --------
        >>> import pyarrow as pa
        >>> from feeds import Schema
        >>> table = pa.table({"Year": [2024, 2024], "Month": [2, 2], "Day": [28, 30],
        ...                   "load": [1.0, 2.0]})
        >>> schema = Schema(time=["Year", "Month", "Day"], key=False).bind(table)
        >>> schema.time_column(table)
        Traceback (most recent call last):
        ...
        feeds.errors.SchemaError: the time parts at row 1 make no time: day 30 is not a day \
of 2024-02 (1 to 29) (Year=2024, Month=2, Day=30)
        """
        self._require_bound()
        if self._time_parts is None:
            return table.column(self.time)
        n = table.num_rows
        values = {part: self._part(table, part, c, row0) for part, c in self._time_parts.items()}
        bad = np.zeros(n, np.bool_)
        why = {}  # the first bad row of each check, and what is wrong there

        def refuse(mask, text):
            rows = np.flatnonzero(mask & ~bad)
            if rows.size:
                why[int(rows[0])] = text
            bad[mask] = True

        year, month = values["year"], values["month"]
        refuse((year < 1) | (year > 9999), lambda r: f"year {year[r]} is not in 1 to 9999")
        lo, hi = _PART_RANGE["month"]
        refuse((month < lo) | (month > hi), lambda r: f"month {month[r]} is not in 1 to 12")
        ok_year = np.where(bad, 1970, year)
        ok_month = np.where(bad, 1, month)
        start = ((ok_year - 1970) * 12 + ok_month - 1).astype("datetime64[M]")
        first_day = start.astype("datetime64[D]").view(np.int64)
        length = (start + 1).astype("datetime64[D]").view(np.int64) - first_day
        day = values["day"]
        refuse(
            (day < 1) | (day > length),
            lambda r: f"day {day[r]} is not a day of {start[r]} (1 to {length[r]})",
        )
        for part in ("hour", "minute", "second"):
            if part in values:
                v, (lo, hi) = values[part], _PART_RANGE[part]
                refuse(
                    (v < lo) | (v > hi),
                    lambda r, v=v, part=part, lo=lo, hi=hi: f"{part} {v[r]} is not in {lo} to {hi}",
                )
        days = first_day + np.where(bad, 0, day - 1)
        refuse(
            np.abs(days) > _DAYS,
            lambda r: (
                f"year {year[r]} is outside the years 1678 to 2262 that timestamps in "
                "nanoseconds hold"
            ),
        )
        if bad.any():
            row = min(why)
            given = ", ".join(f"{c}={values[p][row]}" for p, c in self._time_parts.items())
            raise SchemaError(
                f"the time parts at {_row_text(row0 + row, row0, n)} make no time: "
                f"{why[row](row)} ({given})"
            )
        ns = days * _DAY
        for part in ("hour", "minute", "second"):
            if part in values:
                ns = ns + values[part] * _NS[part]
        return pa.array(ns.astype(np.int64, copy=False), pa.timestamp("ns"))

    @staticmethod
    def _part(table, part, name, row0):
        """Time part column ``name`` as int64, checked for nulls and whole values."""
        col = table.column(name)
        n = len(col)
        if col.null_count:
            row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise MissingValueError(
                f"time part column {name!r} ({part}) is null at {_row_text(row0 + row, row0, n)};"
                " every row needs a time"
            )
        if pa.types.is_dictionary(col.type):
            col = pc.cast(col, col.type.value_type)
        values = col.to_numpy()
        if values.dtype.kind in "iu":
            if values.dtype == np.uint64:
                values = np.minimum(values, np.uint64(10**6))  # beyond every year: refused
            return values.astype(np.int64, copy=False)
        values = values.astype(np.float64, copy=False)
        whole = np.isfinite(values) & (values == np.floor(values)) & (np.abs(values) < 1e15)
        if not whole.all():
            row = int(np.flatnonzero(~whole)[0])
            raise SchemaError(
                f"time part column {name!r} ({part}) holds {values[row]} at "
                f"{_row_text(row0 + row, row0, n)}; time parts are whole numbers"
            )
        return values.astype(np.int64)
