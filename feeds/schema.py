"""Which column is the key, the time, the features and the targets; checked on every chunk."""

import pyarrow as pa

from .errors import ConfigError, MissingValueError, SchemaError

_KEY_NAMES = ("key", "id", "series", "symbol", "sensor", "station", "city", "ticker")


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


class Schema:
    """Roles of a long-format table's columns.

    Any role left as None is inferred from the first chunk; after it the
    schema is bound and every later chunk is checked against it.

    Parameters
    ----------
    time : str, optional
        The time column: timestamps of any unit (time-zone aware or not), dates,
        integers or floats. Inferred as the one timestamp or date column; when
        there is none, as the one column named ``time`` or ``timestamp`` (any
        case, of any type). Several candidates are an error: name it.
    key : str or False, optional
        The series id column (strings, categoricals, dictionary-encoded strings
        or integers). Inferred as the one string (or dictionary) column other
        than the time; among several, as the one named ``key``, ``id``,
        ``series``, ``symbol``, ``sensor``, ``station``, ``city`` or ``ticker``
        (any case). With no string column, an integer column with one of those
        names is the key (only one may have such a name). Otherwise the table is
        one series. False means the table is one series.
    features : str or sequence of str, optional
        Model inputs, in order (a str is one column). Inferred as every numeric
        column other than the key and the time, in table order (targets
        included).
    targets : str or sequence of str, optional
        Columns the model's outputs stand for (a str is one column); none by
        default.

    Examples
    --------
    >>> import pandas as pd, pyarrow as pa
    >>> from feeds import Schema
    >>> df = pd.DataFrame({"city": ["a", "b"], "time": pd.to_datetime(["2024-01-01"] * 2),
    ...                    "temp": [1.0, 2.0], "wind": [3.0, 4.0]})
    >>> schema = Schema(targets=["temp"]).bind(pa.Schema.from_pandas(df))
    >>> schema.key, schema.time, schema.features, schema.targets
    ('city', 'time', ('temp', 'wind'), ('temp',))
    """

    def __init__(self, time=None, key=None, features=None, targets=None):
        self.time = time
        self.key = key
        self.features = _names(features)
        self.targets = _names(targets)
        for name, cols in (("features", self.features), ("targets", self.targets)):
            if cols is not None and (
                any(not isinstance(c, str) for c in cols) or len(set(cols)) != len(cols)
            ):
                raise SchemaError(f"{name} must be distinct column names, got {list(cols)}")
        if time is not None and not isinstance(time, str):
            raise SchemaError(f"time must be a column name, got {time!r}")
        if key is not None and key is not False and not isinstance(key, str):
            raise SchemaError(f"key must be a column name or False (one series), got {key!r}")
        if key is not None and key == time:
            raise ConfigError(f"column {key!r} cannot be both the time and the key")
        for name, cols in (("features", self.features), ("targets", self.targets)):
            for role, c in (("time", time), ("key", key)):
                if c and c in (cols or ()):
                    raise ConfigError(
                        f"column {c!r} is the {role} and cannot be one of the {name}; "
                        f"{name} are other (numeric) columns"
                    )
        self._types = None
        self._inferred_features = features is None

    @property
    def bound(self):
        """Whether the roles and column types are fixed (after the first chunk)."""
        return self._types is not None

    @property
    def values(self):
        """Feature and target columns, each once: the numeric columns a feed reads."""
        return tuple(dict.fromkeys(self.features + self.targets))

    def __repr__(self):
        return (
            f"Schema(time={self.time!r}, key={self.key!r}, features={self.features!r}, "
            f"targets={self.targets!r})"
        )

    def __eq__(self, other):
        return isinstance(other, Schema) and (
            self.time,
            self.key,
            self.features,
            self.targets,
            self._types,
        ) == (other.time, other.key, other.features, other.targets, other._types)

    def bind(self, schema):
        """A bound copy: roles inferred from, and types fixed by, an Arrow schema."""
        if self.bound:
            self.check(schema)
            return self
        names = list(schema.names)
        kinds = {f.name: kind_of(f.type) for f in schema}
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise SchemaError(f"column {dup!r} appears twice; column names must be distinct")
        out = Schema(self.time, self.key, self.features, self.targets)
        out._inferred_features = self._inferred_features
        if out.time is None:
            times = [n for n in names if kinds[n] == "time"]
            if not times:
                times = [n for n in names if n.lower() in ("time", "timestamp")]
            if len(times) != 1:
                raise SchemaError(
                    f"cannot tell the time column: {len(times)} timestamp or date columns "
                    f"({times}) among {names}; name it with Schema(time=...)"
                )
            out.time = times[0]
        taken = {out.time}
        if out.key is None:
            strings = [n for n in names if kinds[n] == "string" and n not in taken]
            if len(strings) > 1:
                named = [n for n in strings if n.lower() in _KEY_NAMES]
                if len(named) != 1:
                    raise SchemaError(
                        f"cannot tell the key column among string columns {strings}; "
                        "name it with Schema(key=...)"
                    )
                strings = named
            if not strings:  # integer ids: a key only when named as one
                strings = [
                    n
                    for n in names
                    if kinds[n] == "integer" and n not in taken and n.lower() in _KEY_NAMES
                ]
                if len(strings) > 1:
                    raise SchemaError(
                        f"cannot tell the key column among integer columns {strings}; "
                        "name it with Schema(key=...), or Schema(key=False) for one series"
                    )
            out.key = strings[0] if strings else False
        if out.key:
            taken.add(out.key)
        if out.targets is None:
            out.targets = ()
        if out.features is None:
            out.features = tuple(
                n for n in names if n not in taken and kinds[n] in ("number", "integer", "null")
            )
        for role, cols in (("time", [out.time]), ("key", [out.key] if out.key else [])):
            for c in cols:
                if c not in kinds:
                    raise SchemaError(
                        f"{role} column {c!r} is missing; the table has columns {names}"
                    )
        if not out.features:
            raise SchemaError(
                f"no feature columns: the table has {names}, with time {out.time!r} and key "
                f"{out.key!r}; features are numeric columns (name them with Schema(features=...))"
            )
        overlap = set(out.values) & taken
        if overlap:
            raise SchemaError(
                f"column {sorted(overlap)[0]!r} cannot be both a value and the key/time"
            )
        out._types = {}
        for c in (out.time, *([out.key] if out.key else []), *out.values):
            if c not in kinds:
                raise SchemaError(f"column {c!r} is missing; the table has columns {names}")
            out._types[c] = schema.field(c).type
        self._check_kinds(out, kinds)
        if out._inferred_features:
            out._columns = frozenset(names)
        return out

    @staticmethod
    def _check_kinds(out, kinds):
        for role, c in (("time", out.time), ("key", out.key)):
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
        time_sort = _time_sort(out._types[out.time])[0]
        if time_sort == "other":
            raise SchemaError(
                f"time column {out.time!r} is {out._types[out.time]}; expected timestamps, "
                "dates, integers or floats"
            )
        if out.key and kinds[out.key] not in ("string", "integer"):
            raise SchemaError(
                f"key column {out.key!r} is {out._types[out.key]}; expected strings, "
                "dictionary-encoded strings or integers"
            )
        for c in out.values:
            if kinds[c] not in ("number", "integer", "null"):
                raise SchemaError(
                    f"column {c!r} is {out._types[c]}; features and targets must be numbers "
                    "(float, integer or bool)"
                )

    def check(self, schema):
        """Raise :class:`SchemaError` if an Arrow schema breaks this bound schema."""
        names = set(schema.names)
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
