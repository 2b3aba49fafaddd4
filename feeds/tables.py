"""pandas and Arrow inputs as Arrow tables."""

import numpy as np
import pandas as pd
import pyarrow as pa

from .errors import SchemaError


def as_table(data):
    """A ``pyarrow.Table`` for a DataFrame, Table or RecordBatch (long format).

    A DataFrame's index becomes a column when it is named (a time index,
    say); an unnamed index, or an unnamed level of a MultiIndex, holds row
    labels and is left out. Column types are Arrow's reading of pandas'.
    """
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pd.DataFrame):
        return _from_pandas(data)
    raise SchemaError(
        f"expected a pandas DataFrame, pyarrow Table or RecordBatch, got {type(data).__name__}"
    )


def _from_pandas(df):
    if not all(isinstance(c, str) for c in df.columns):
        bad = next(c for c in df.columns if not isinstance(c, str))
        raise SchemaError(
            f"column names must be strings, got {bad!r}; for one column per series "
            "(wide format) use feeds.from_wide"
        )
    if df.columns.has_duplicates:
        dup = df.columns[df.columns.duplicated()][0]
        raise SchemaError(f"column {dup!r} appears twice; column names must be distinct")
    df = _named_index(df)
    for name in df.columns:  # Arrow would put timestamps of several zones in one, silently
        col = df[name]
        if col.dtype == object and pd.api.types.infer_dtype(col, skipna=True) == "datetime":
            zones = {}
            for i, v in enumerate(col.to_numpy()):
                if isinstance(v, pd.Timestamp | np.datetime64):
                    zones.setdefault(str(getattr(v, "tz", None)), i)
            if len(zones) > 1:
                listed = ", ".join(f"{z} (first at row {i})" for z, i in zones.items())
                raise SchemaError(
                    f"column {name!r} holds timestamps of several time zones: {listed}; "
                    "a time column holds one zone, or none"
                )
    named = any(name is not None for name in df.index.names)
    try:  # a named index is a column (a time index, say); row labels are not data
        return pa.Table.from_pandas(df, preserve_index=named)
    except _REFUSED:
        pass
    for name in df.columns:  # find the column Arrow refuses, and say what is in it
        try:
            pa.array(df[name], from_pandas=True)
        except _REFUSED as exc:
            raise SchemaError(f"column {name!r} {_mixed(df[name], exc)}") from None
    index = df.index.to_frame(index=False)
    for name in index.columns:
        try:
            pa.array(index[name], from_pandas=True)
        except _REFUSED as exc:
            raise SchemaError(f"the index {name!r} {_mixed(index[name], exc)}") from None
    raise SchemaError("Arrow cannot convert this DataFrame")


_REFUSED = (
    pa.ArrowInvalid,
    pa.ArrowTypeError,
    pa.ArrowNotImplementedError,
    ValueError,
    TypeError,  # Decimal("Infinity"), say
    OverflowError,  # a Python int beyond 64 bits
)


def _named_index(df):
    """``df`` without its unnamed index levels; an index named like a column is refused."""
    names = list(df.index.names)
    for name in names:
        if name is not None and name in df.columns:
            raise SchemaError(
                f"the index {name!r} has the name of a column; drop the index with "
                "df.reset_index(drop=True) or rename it with df.rename_axis(...)"
            )
    unnamed = [i for i, name in enumerate(names) if name is None]
    if 0 < len(unnamed) < len(names):
        df = df.droplevel(unnamed)
    return df


def _mixed(series, exc):
    values = series.to_numpy(dtype=object)
    kinds = {}
    for i, v in enumerate(values[:100_000]):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        kind = type(v).__name__
        if isinstance(v, pd.Timestamp):
            kind = f"Timestamp[{v.tz}]"
        kinds.setdefault(kind, i)
    if len(kinds) <= 1:
        return (
            f"holds {', '.join(kinds) or 'values'} that Arrow cannot convert ({exc}); a column "
            "holds numbers (within 64-bit integers or floats), strings or timestamps"
        )
    listed = ", ".join(f"{k} (first at row {i})" for k, i in kinds.items())
    return (
        f"mixes values of several types: {listed}; a column holds one type "
        "(all numbers, all strings, or timestamps in one time zone)"
    )


def from_wide(df, key="key", time="time", value="value"):
    """Long-format rows from a wide DataFrame: a time index and one column per series.

    Rows come out ordered by time, then by column; with plain columns each
    series has one feature named ``value``; with two-level columns
    ``(series, feature)`` each feature keeps its name.

    Examples
    --------
    >>> import pandas as pd
    >>> from feeds import from_wide
    >>> wide = pd.DataFrame({"north": [1.0, 2.0], "south": [3.0, 4.0]},
    ...                     index=pd.to_datetime(["2024-01-01", "2024-01-02"]))
    >>> from_wide(wide).to_dict("list")["key"]
    ['north', 'south', 'north', 'south']
    """
    if not isinstance(df, pd.DataFrame):
        raise SchemaError(f"from_wide expects a pandas DataFrame, got {type(df).__name__}")
    if df.index.has_duplicates:
        at = df.index[df.index.duplicated()][0]
        raise SchemaError(f"the time index holds {at} twice; a wide frame has one row per time")
    if df.columns.nlevels == 1:
        values = df.to_numpy()
        long = pd.DataFrame(
            {
                key: np.tile(np.asarray(df.columns, dtype=object), len(df)),
                time: df.index.repeat(df.shape[1]),
                value: values.reshape(-1) if values.size else values.reshape(0),
            }
        )
        return long
    if df.columns.nlevels != 2:
        raise SchemaError("wide columns must be series names or (series, feature) pairs")
    stacked = df.stack(level=0, future_stack=True)
    stacked.index.names = [time, key]
    out = stacked.reset_index()[[key, time, *stacked.columns]]
    out.columns.name = None
    return out
