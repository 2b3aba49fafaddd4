"""Chunks of long-format rows: keys, times and a feature matrix."""

from typing import NamedTuple

import numpy as np

from .errors import SchemaError


class Chunk(NamedTuple):
    """Rows of many series: ``keys`` (N,), ``times`` (N,) or None, ``x`` (N, I)."""

    keys: np.ndarray
    times: object
    x: np.ndarray


def iter_arrays(keys, times, x, rows):
    """Cut long-format arrays into consecutive chunks of at most ``rows`` rows.

    Examples
    --------
    >>> import numpy as np
    >>> from feeds import iter_arrays
    >>> keys = np.array([1, 2, 1, 2, 1])
    >>> [len(c.keys) for c in iter_arrays(keys, None, np.zeros((5, 3)), rows=2)]
    [2, 2, 1]
    """
    x = np.asarray(x)
    keys = np.asarray(keys)
    if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 1:
        raise SchemaError(f"rows must be a positive integer, got {rows!r}")
    if x.ndim != 2:
        raise SchemaError(f"x must be two-dimensional (rows, features), got shape {x.shape}")
    n = x.shape[0]
    for name, arr in (("keys", keys), ("times", times)):
        if arr is not None and len(arr) != n:
            raise SchemaError(f"column {name!r} has {len(arr)} rows, x has {n}")
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        yield Chunk(
            keys[start:stop],
            None if times is None else np.asarray(times)[start:stop],
            x[start:stop],
        )
