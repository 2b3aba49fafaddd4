"""feeds: turn the data people have into the chunks streamrnn consumes.

Sources (pandas long or wide, Arrow tables, batches and readers, Arrow IPC,
Parquet files and datasets, CSV) become Arrow tables; a :class:`Feed` checks
them against a :class:`Schema`, applies the time, missing-value and scaling
policies with per-key state carried across chunks, and gives :class:`Chunk`
objects that ``streamrnn.Stream.update`` takes.

Examples
--------
>>> import pandas as pd, feeds
>>> df = pd.DataFrame({"sensor": ["a", "b", "a", "b"],
...                    "time": pd.date_range("2024-01-01", periods=4, freq="h"),
...                    "reading": [1.0, 2.0, 3.0, 4.0]})
>>> feed = feeds.Feed(feeds.Schema(key="sensor"))
>>> [len(chunk) for chunk in feeds.iter_pandas(df, feed, rows=3)]
[3, 1]
"""

from .chunks import Chunk, concat
from .errors import ConfigError, FeedError, MissingValueError, SchemaError, TimeOrderError
from .feed import Feed, calendar_for, untransform
from .readers import iter_arrow, iter_chunks, iter_csv, iter_ipc, iter_pandas, iter_parquet
from .schema import CategoryWarning, KeyWarning, Schema
from .tables import as_table, column_types, from_wide

__all__ = [
    "CategoryWarning",
    "Chunk",
    "ConfigError",
    "Feed",
    "FeedError",
    "KeyWarning",
    "MissingValueError",
    "Schema",
    "SchemaError",
    "TimeOrderError",
    "as_table",
    "calendar_for",
    "column_types",
    "concat",
    "from_wide",
    "iter_arrow",
    "iter_chunks",
    "iter_csv",
    "iter_ipc",
    "iter_pandas",
    "iter_parquet",
    "untransform",
]
