"""Series keys and times as arrays, checked without a Python loop per row."""

import numpy as np
import pandas as pd

from .errors import InputError, KeyTypeError


def as_keys(keys, n_rows):
    """Keys as an int64 array, an object array of str or a Categorical, with their kind.

    A pandas Categorical (or categorical Series) stays one: its categories are
    checked, and rows map to state through them without hashing every row.
    """
    if isinstance(keys, pd.Series) and isinstance(keys.dtype, pd.CategoricalDtype):
        keys = keys.array
    if isinstance(keys, pd.Categorical):
        if len(keys) != n_rows:
            raise InputError(f"keys has {len(keys)} entries but x has {n_rows} rows")
        if n_rows and (keys.codes < 0).any():
            row = int(np.flatnonzero(keys.codes < 0)[0])
            raise InputError(f"keys is missing at row {row}; every row needs a key")
        cats = keys.categories
        cats, kind = as_keys(
            cats.to_numpy(dtype=object if cats.dtype.kind != "i" else None), len(cats)
        )
        if kind is None or (n_rows == 0 and not len(cats)):
            return np.empty(0, object), None
        return pd.Categorical.from_codes(keys.codes, pd.Index(cats), validate=False), kind
    if isinstance(keys, (list, tuple)):
        arr = np.empty(len(keys), dtype=object)
        arr[:] = list(keys)
    else:
        arr = np.asarray(keys)
    if arr.ndim != 1:
        raise InputError(f"keys must be one-dimensional, got shape {arr.shape}")
    if arr.shape[0] != n_rows:
        raise InputError(f"keys has {arr.shape[0]} entries but x has {n_rows} rows")
    kind = arr.dtype.kind
    if kind in "iu":
        if arr.dtype == np.uint64 and arr.size and arr.max() > np.iinfo(np.int64).max:
            raise KeyTypeError(
                f"keys must fit in int64; got {arr.max()} (use strings for larger ids)"
            )
        return arr.astype(np.int64, copy=False), "int"
    if kind == "U":
        return arr.astype(object), "str"
    if kind == "O":
        inferred = pd.api.types.infer_dtype(arr, skipna=False)
        if inferred == "string":
            return arr, "str"
        if inferred == "integer":
            try:
                return arr.astype(np.int64), "int"
            except OverflowError:
                raise KeyTypeError("keys must fit in int64 (use strings for larger ids)") from None
        if inferred == "empty":
            return arr, None
    raise KeyTypeError(f"keys must be all integers or all strings, got {_describe(arr)}")


def _describe(arr):
    if arr.dtype.kind != "O":
        return f"dtype {arr.dtype}"
    kinds = sorted({type(v).__name__ for v in arr[:1000]})
    bad = next(
        (
            i
            for i, v in enumerate(arr)
            if not isinstance(v, (str, int, np.integer)) or isinstance(v, bool)
        ),
        None,
    )
    where = "" if bad is None else f" (row {bad}: {arr[bad]!r})"
    return f"values of types {kinds}{where}"


def as_times(times, n_rows):
    """Times as int64 (integers; datetimes in ns since the epoch, UTC) or float64.

    Returns ``(array, kind)`` with kind ``"int"``, ``"float"``, ``"datetime"``
    or ``"datetime-tz"``.
    """
    if isinstance(times, (pd.Series, pd.Index)) or isinstance(
        getattr(times, "dtype", None), pd.DatetimeTZDtype
    ):
        dtype = times.dtype
        if isinstance(dtype, pd.DatetimeTZDtype):
            index = pd.DatetimeIndex(times)
            _checked(index, n_rows)
            if index.isna().any():
                row = int(np.flatnonzero(index.isna())[0])
                raise InputError(f"times has NaT at row {row}; every row needs a time")
            return index.tz_convert("UTC").as_unit("ns").asi8, "datetime-tz"
        times = np.asarray(times)
    arr = np.asarray(times)
    if arr.ndim != 1:
        raise InputError(f"times must be a one-dimensional sequence, got {times!r:.80}")
    _checked(arr, n_rows)
    kind = arr.dtype.kind
    if kind == "M":
        if np.isnat(arr).any():
            row = int(np.flatnonzero(np.isnat(arr))[0])
            raise InputError(f"times has NaT at row {row}; every row needs a time")
        ns = arr.astype("datetime64[ns]")
        if arr.dtype != ns.dtype and not (ns.astype(arr.dtype) == arr).all():
            row = int(np.flatnonzero(ns.astype(arr.dtype) != arr)[0])
            raise InputError(
                f"times has {arr[row]} at row {row}, outside what nanoseconds since 1970 "
                "can hold (years 1678 to 2262)"
            )
        return ns.view(np.int64), "datetime"
    if kind in "iu":
        return arr.astype(np.int64, copy=False), "int"
    if kind == "f":
        bad = ~np.isfinite(arr)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(f"times has {arr[row]} at row {row}; times must be finite")
        return arr.astype(np.float64, copy=False), "float"
    if kind == "O" and n_rows and isinstance(arr[0], (pd.Timestamp, np.datetime64)):
        try:
            index = pd.DatetimeIndex(arr)
        except (TypeError, ValueError) as exc:  # mixed zones, unparseable entries
            raise InputError(
                f"times must all be timestamps in one time zone (or all naive): {exc}"
            ) from None
        return as_times(index, n_rows)
    raise InputError(f"times must be integers, floats or datetimes, got dtype {arr.dtype}")


def _checked(arr, n_rows):
    if arr.shape[0] != n_rows:
        raise InputError(f"times has {arr.shape[0]} entries but x has {n_rows} rows")
    return arr
