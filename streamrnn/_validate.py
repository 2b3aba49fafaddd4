"""Checks shared by the public layer. Kernels never validate; these always do."""

import numbers

import numpy as np

from .errors import ConfigError, InputError

DTYPES = {"float32": np.float32, "float64": np.float64}


def dtype_of(dtype):
    """``np.float32`` or ``np.float64`` from a name or dtype-like."""
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in DTYPES:
        raise ConfigError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return DTYPES[name]


def positive_int(value, name, minimum=1):
    """``value`` as an int >= ``minimum`` (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def as_float_array(x, dtype, name):
    """``x`` as a C-contiguous array of ``dtype``; refuses what is not real numbers."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise InputError(
            f"{name} must hold real numbers (float or integer dtype), got dtype {arr.dtype}"
        )
    with np.errstate(over="ignore"):  # values that overflow become inf: said just below
        out = np.ascontiguousarray(arr, dtype=dtype)
    if out.dtype.itemsize < arr.dtype.itemsize and out.dtype.kind == "f" and np.isinf(out).any():
        grew = np.isinf(out) & np.isfinite(arr)
        if grew.any():
            where = tuple(int(i) for i in np.argwhere(grew)[0])
            at = (f"row {where[0]}, column {where[1]}" if len(where) == 2
                  else "index " + ", ".join(map(str, where)))  # fmt: skip
            raise InputError(
                f"{name} holds {plain(arr[where])!r} at {at}, beyond the range of "
                f"{out.dtype.name} (largest {np.finfo(out.dtype).max:.3g}): it would become "
                f"inf in this {out.dtype.name} model; rescale the data or use a float64 model"
            )
    return out


def plain(value):
    """A NumPy scalar as a plain Python value, for messages."""
    return value.item() if isinstance(value, np.generic) else value


def check_finite(x, name, labels=None, keys=None):
    """Raise :class:`InputError` naming the first non-finite entry of ``x``.

    ``labels`` names the axes (default: "row" and "column" for 2-D arrays);
    ``keys``, one per row, adds the offending row's key to the message.
    """
    ok = np.isfinite(x)
    if ok.all():
        return
    where = tuple(int(i) for i in np.argwhere(~ok)[0])
    if labels is None:
        labels = ("row", "column") if x.ndim == 2 else ("index",) * x.ndim
    detail = ", ".join(f"{label} {i}" for label, i in zip(labels, where))
    if keys is not None:
        detail += f" (key {plain(keys[where[0]])!r})"
    raise InputError(
        f"{name} has a non-finite value {x[where]} at {detail}; "
        "inputs must be finite (fill or drop missing values first)"
    )
