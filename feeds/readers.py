"""Readers: generators of chunks from pandas, Arrow, Arrow IPC, Parquet and CSV.

Every reader takes a :class:`~feeds.feed.Feed` (or the options to make one),
cuts the source into chunks of ``rows`` rows or of one ``every`` time span,
yields :class:`~feeds.chunks.Chunk` objects, and at the end yields what the feed
held back (``flush``). Readers open files themselves only when given a path,
and close only what they opened.
"""

import os
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds

from .errors import ConfigError, MissingValueError, SchemaError
from .feed import Feed, _span
from .schema import Schema, kind_of
from .tables import as_table, from_wide

_DEFAULT_ROWS = 65_536


def _feed_of(feed, options):
    if feed is None:
        return Feed(**options)
    if options:
        raise ConfigError(f"pass feed options to the Feed, not beside it: {sorted(options)}")
    if not isinstance(feed, Feed):
        raise ConfigError(f"feed must be a feeds.Feed, got {type(feed).__name__}")
    return feed


def _check_rows(rows, every):
    if rows is not None and every is not None:
        raise ConfigError("cut by rows or by a time span (every), not both")
    if rows is not None and (
        isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 1
    ):
        raise ConfigError(f"rows must be a positive integer, got {rows!r}")


def _tables(source):
    """Arrow tables from one source or an iterable of sources, in order."""
    if isinstance(source, (pa.Table, pa.RecordBatch, pd.DataFrame)):
        yield as_table(source)
        return
    if isinstance(source, pa.RecordBatchReader):
        for batch in source:
            yield pa.Table.from_batches([batch])
        return
    if isinstance(source, (str, bytes, os.PathLike)) or not hasattr(source, "__iter__"):
        raise SchemaError(
            f"expected a DataFrame, Arrow table, record batch or reader, or an iterable of "
            f"them, got {type(source).__name__} (files: iter_parquet, iter_csv, iter_ipc)"
        )
    for item in source:
        if isinstance(item, pa.RecordBatchReader):
            yield from _tables(item)
        else:
            yield as_table(item)


def _cut(tables, feed, rows, every):
    """Re-cut a sequence of tables into tables of ``rows`` rows or one ``every`` span each."""
    if rows is None and every is None:
        yield from tables
        return
    buffer, held, seen = [], 0, 0
    span = current = None
    for table in tables:
        if table.num_rows == 0:
            continue
        schema = feed.schema.bind(table.schema)  # a clear error before concatenation
        if rows is not None:
            buffer.append(table)
            held += table.num_rows
            if held < rows:
                continue
            whole = _concat(buffer, schema)
            stop = held - held % rows
            for a in range(0, stop, rows):
                yield whole.slice(a, rows)
            buffer, held = ([whole.slice(stop)], held - stop) if stop < held else ([], 0)
            continue
        if span is None:
            time_type = schema._types[schema.time]
            sort = "datetime" if kind_of(time_type) == "time" else kind_of(time_type)
            sort = "float" if pa.types.is_floating(time_type) else sort
            span = _span(every, "every", sort)
        bins = _bins(table.column(schema.time), span, schema.time, seen)
        seen += table.num_rows
        edges = np.flatnonzero(bins[1:] != bins[:-1]) + 1
        a = 0
        for e in [*edges.tolist(), len(bins)]:
            b = bins[a]
            if current is not None and b != current and buffer:
                yield _concat(buffer, schema)
                buffer = []
            current = b
            if e > a:
                buffer.append(table.slice(a, e - a))
            a = e
    if buffer:
        yield _concat(buffer, schema)


def _concat(tables, schema):
    """One table of ``tables``; pieces of one kind but other Arrow types (a dictionary
    and a plain string key, dates and timestamps, float widths) are brought to one."""
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    common = []
    for table in tables:
        columns = {}
        for name in table.schema.names:
            col = table.column(name)
            if name == schema.key:
                if pa.types.is_dictionary(col.type):
                    col = pc.cast(col, col.type.value_type)
                col = pc.cast(col, pa.string() if kind_of(col.type) == "string" else pa.int64())
            elif name == schema.time and kind_of(col.type) == "time":
                col = pc.cast(col, pa.timestamp("ns", getattr(col.type, "tz", None)))
            elif name in schema.values:
                col = pc.cast(col, pa.float64())
            columns[name] = col
        common.append(pa.table(columns))
    return pa.concat_tables(common, promote_options="permissive")


def _bins(col, span, name, offset):
    """The ``every`` span of each row's time (rows counted from ``offset`` in messages)."""
    if col.null_count:
        row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise MissingValueError(
            f"time column {name!r} is null at row {offset + row}; every row needs a time"
        )
    if pa.types.is_timestamp(col.type) or pa.types.is_date(col.type):
        try:
            col = pc.cast(col, pa.timestamp("ns", getattr(col.type, "tz", None)))
        except pa.ArrowInvalid:
            raise SchemaError(
                f"time column {name!r} holds a time outside what nanoseconds since 1970 "
                "can hold (years 1678 to 2262)"
            ) from None
        return np.floor_divide(col.to_numpy().view(np.int64), span)
    t = col.to_numpy()
    if t.dtype.kind != "f":
        return np.floor_divide(t.astype(np.int64), span)
    bad = ~np.isfinite(t)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise MissingValueError(
            f"time column {name!r} has {t[row]} at row {offset + row}; times must be finite"
        )
    q = t / span
    k = np.round(q)
    on_edge = np.abs(q - k) <= 1e-9 * np.maximum(1.0, np.abs(q))  # as the feed's grid
    return np.where(on_edge, k, np.floor(q))


def _run(tables, feed, rows, every, flush):
    for table in _cut(tables, feed, rows, every):
        chunk = feed(table)
        if chunk is not None:
            yield chunk
    if flush:
        rest = feed.flush()
        if rest is not None and (len(rest) or rest.counts.get("duplicates_dropped")):
            yield rest


def iter_chunks(source, feed=None, *, rows=None, every=None, flush=True, **options):
    """Chunks from in-memory data or an iterable of it, such as a queue consumer.

    Parameters
    ----------
    source : DataFrame, pyarrow.Table, RecordBatch, RecordBatchReader, or an iterable of these
    feed : Feed, optional
        The feed that turns tables into chunks and keeps per-key state; made
        from ``options`` (see :class:`Feed`) when None.
    rows : int, optional
        Rows per chunk (the last may be shorter). Default: as the source comes.
    every : time span, optional
        Cut where a row's time falls in another span (multiples of ``every``
        from the epoch, or 0) than the previous row's. Rows are never reordered.
    flush : bool
        Yield the rows the feed held back after the last chunk.

    Examples
    --------
    >>> import pandas as pd
    >>> from feeds import Schema, iter_chunks
    >>> df = pd.DataFrame({"key": ["a", "b"] * 3, "time": [0, 0, 1, 1, 2, 2],
    ...                    "value": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    >>> [len(c) for c in iter_chunks(df, rows=4, schema=Schema(time="time"))]
    [4, 2]
    """
    _check_rows(rows, every)
    feed = _feed_of(feed, options)
    return _run(_tables(source), feed, rows, every, flush)


def iter_pandas(df, feed=None, *, wide=False, rows=None, every=None, flush=True, **options):
    """Chunks from a DataFrame, long format or (``wide=True``) one column per series.

    Long format has key, time and value columns; wide format has a time index
    and one column per series (see :func:`feeds.from_wide`; its columns are
    ``key``, ``time`` and ``value``). A long frame is converted a slice at a
    time, so that the Arrow copies stay bounded by the chunk size; a wide frame
    is first made long whole.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from feeds import iter_pandas
    >>> wide = pd.DataFrame({"north": [1.0, 2.0], "south": [3.0, np.nan]},
    ...                     index=pd.date_range("2024-01-01", periods=2, freq="h", name="time"))
    >>> chunk, = iter_pandas(wide, wide=True, missing="ffill")
    >>> list(chunk.keys), chunk.x[:, 0].tolist()
    (['north', 'south', 'north', 'south'], [1.0, 3.0, 2.0, 3.0])
    """
    if not isinstance(df, pd.DataFrame):
        raise SchemaError(f"iter_pandas expects a pandas DataFrame, got {type(df).__name__}")
    _check_rows(rows, every)
    feed = _feed_of(feed, options)
    if wide:
        df = from_wide(df)
        unbound = feed.schema
        if not unbound.bound and unbound.key is None and unbound.time is None:
            feed.schema = Schema(time="time", key="key", features=unbound.features,
                                 targets=unbound.targets)  # fmt: skip
    step = rows or _DEFAULT_ROWS
    slices = (df.iloc[a : a + step] for a in range(0, len(df), step))
    return _run((as_table(s) for s in slices), feed, rows, every, flush)


def iter_arrow(data, feed=None, *, rows=None, every=None, flush=True, **options):
    """Chunks from a pyarrow Table, RecordBatch, RecordBatchReader or iterable of them.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from feeds import Schema, iter_arrow
    >>> table = pa.table({"t": [1, 2, 3], "v": [0.5, 1.5, 2.5]})
    >>> [c.x[:, 0].tolist() for c in iter_arrow(table, rows=2, schema=Schema(time="t"))]
    [[0.5, 1.5], [2.5]]
    """
    if isinstance(data, pa.Table):
        data = data.to_batches()
    return iter_chunks(data, feed, rows=rows, every=every, flush=flush, **options)


def iter_ipc(source, feed=None, *, rows=None, every=None, flush=True, **options):
    """Chunks from Arrow IPC data, stream or file format: a path, buffer or open file.

    A path is opened (memory-mapped) and closed when the generator ends;
    an open file is left open.
    """
    _check_rows(rows, every)
    feed = _feed_of(feed, options)
    return _ipc(source, feed, rows, every, flush)


def _ipc(source, feed, rows, every, flush):
    opened = None
    if isinstance(source, (str, os.PathLike)):
        source = opened = pa.memory_map(os.fspath(source))
    try:
        batches = None
        seekable = getattr(source, "seekable", None)
        if seekable is None or seekable():  # the file format needs to seek; a pipe cannot
            try:
                reader = pa.ipc.open_file(source)
                batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
            except pa.ArrowInvalid:
                if hasattr(source, "seek"):
                    source.seek(0)
        try:
            if batches is None:
                batches = pa.ipc.open_stream(source)
        except (pa.ArrowInvalid, OSError) as exc:
            raise SchemaError(f"not Arrow IPC data (stream or file format): {exc}") from None
        yield from _run(_tables(batches), feed, rows, every, flush)
    finally:
        if opened is not None:
            opened.close()


def _filter(schema, keys, start, end):
    expr = None

    def both(a, b):
        return b if a is None else a & b

    if keys is not None:
        if not schema.key:
            raise ConfigError("keys= filters on the key column, but the data is one series")
        keys = [keys] if isinstance(keys, (str, int, np.integer)) else list(keys)
        strings = kind_of(schema._types[schema.key]) == "string"
        if strings:
            wrong = [k for k in keys if not isinstance(k, str)]
        else:
            wrong = [k for k in keys if isinstance(k, bool) or not isinstance(k, (int, np.integer))]
        if wrong:
            raise ConfigError(
                f"keys= holds {wrong[0]!r}, but the key column {schema.key!r} holds "
                f"{'strings' if strings else 'integers'}"
            )
        expr = both(expr, pc.field(schema.key).isin(keys))
    time_type = schema._types[schema.time]
    for bound, op in ((start, "ge"), (end, "lt")):
        if bound is None:
            continue
        name = "start" if op == "ge" else "end"
        if kind_of(time_type) == "time":
            try:
                ts = pd.Timestamp(bound)
            except (TypeError, ValueError):
                ts = None
            if ts is None or isinstance(bound, (int, float)) or ts is pd.NaT:
                raise ConfigError(f"{name}={bound!r} is not a timestamp; the time column is")
            zone = getattr(time_type, "tz", None)
            if (ts.tz is None) != (zone is None):
                raise ConfigError(
                    f"{name}={bound!r} is {'naive' if ts.tz is None else 'time-zone aware'} "
                    f"but the time column is {'in ' + repr(zone) if zone else 'naive'}"
                )
            value = pa.scalar(ts, type=pa.timestamp("ns", zone))
        else:
            if isinstance(bound, bool) or not isinstance(bound, (int, float, np.number)):
                raise ConfigError(f"{name}={bound!r} is not a number; the time column is")
            value = bound
        f = pc.field(schema.time)
        expr = both(expr, f >= value if op == "ge" else f < value)
    return expr


def iter_parquet(
    path,
    feed=None,
    *,
    rows=None,
    every=None,
    flush=True,
    keys=None,
    start=None,
    end=None,
    batch_rows=_DEFAULT_ROWS,
    threads=True,
    **options,
):
    """Chunks from a Parquet file or dataset directory, read in batches with bounded memory.

    Only the schema's columns are read (column projection; other columns never
    leave the file). ``keys`` keeps rows of those keys, ``start`` and ``end``
    rows with ``start <= time < end``; both filters are pushed into the scan.
    Files of a directory are read in the dataset's order (sorted paths).

    Parameters
    ----------
    path : str or path-like
    batch_rows : int
        Rows per batch read from disk. Files are read one row group at a time,
        so memory is bounded by the larger of a row group and a chunk.
    threads : bool
        Let Arrow decode columns in parallel.
    """
    _check_rows(rows, every)
    if (
        isinstance(batch_rows, bool)
        or not isinstance(batch_rows, (int, np.integer))
        or (batch_rows < 1)
    ):
        raise ConfigError(f"batch_rows must be a positive integer, got {batch_rows!r}")
    feed = _feed_of(feed, options)
    try:
        dataset = ds.dataset(os.fspath(path), format="parquet")
        fragments = list(dataset.get_fragments())
    except (pa.ArrowInvalid, OSError) as exc:
        raise SchemaError(f"{os.fspath(path)}: not Parquet data that can be read: {exc}") from None
    schema = feed.schema.bind(dataset.schema)  # the feed binds on its first rows
    for fragment in fragments:  # footers only: each file against the schema
        try:
            schema.check(fragment.physical_schema)
        except (SchemaError, pa.ArrowInvalid, OSError) as exc:
            raise SchemaError(f"{fragment.path}: {exc}") from None
    columns = [schema.time, *([schema.key] if schema.key else []), *schema.values]
    if schema.key and kind_of(schema._types[schema.key]) == "string":
        fmt = ds.ParquetFileFormat(
            read_options=ds.ParquetReadOptions(dictionary_columns=[schema.key])
        )
        dataset = ds.dataset(os.fspath(path), format=fmt)
    batches = _row_groups(dataset, columns, _filter(schema, keys, start, end), batch_rows, threads)
    return _run(_scanned(batches, path), feed, rows, every, flush)


def _row_groups(dataset, columns, expr, batch_rows, threads):
    """Record batches of a Parquet dataset, one row group at a time.

    Row groups whose statistics rule out the filter are skipped; each is read
    only when the previous one is used up and without pre-buffering, so that
    memory stays bounded by a row group and a batch, however large the data.
    """
    scan = ds.ParquetFragmentScanOptions(pre_buffer=False)
    for fragment in dataset.get_fragments(filter=expr):
        for piece in fragment.split_by_row_group(expr):
            yield from piece.to_batches(
                columns=columns,
                filter=expr,
                batch_size=batch_rows,
                batch_readahead=0,
                fragment_scan_options=scan,
                use_threads=threads,
            )


def _scanned(batches, path):
    try:
        yield from _tables(batches)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SchemaError(f"{os.fspath(path)}: {exc}") from None


def iter_csv(
    path,
    feed=None,
    *,
    rows=None,
    every=None,
    flush=True,
    block_size=1 << 20,
    column_types=None,
    **options,
):
    """Chunks from a CSV file, streamed a block at a time (never loaded whole).

    Column types are inferred from the first block and then held (a later
    value that does not fit raises :class:`SchemaError`); ``column_types``
    ({name: Arrow type}) fixes them up front. Timestamps in ISO 8601 are read
    as timestamps.
    """
    _check_rows(rows, every)
    feed = _feed_of(feed, options)
    return _csv(path, feed, rows, every, flush, block_size, column_types)


def _csv(path, feed, rows, every, flush, block_size, column_types):
    read = pacsv.ReadOptions(block_size=block_size)
    convert = pacsv.ConvertOptions(column_types=column_types or {}, strings_can_be_null=True)
    try:
        reader = pacsv.open_csv(os.fspath(path), read_options=read, convert_options=convert)
    except (pa.ArrowInvalid, OSError) as exc:  # empty, or a first block that cannot be read
        raise SchemaError(f"{os.fspath(path)}: cannot read it as CSV: {exc}") from None
    try:
        yield from _run(_csv_tables(reader, path), feed, rows, every, flush)
    finally:
        reader.close()


def _csv_tables(reader, path):
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as exc:
            text = str(exc)
            number = re.search(r"CSV column #(\d+)", text)
            if number and int(number.group(1)) < len(reader.schema.names):
                name = reader.schema.names[int(number.group(1))]
                text = text.replace(number.group(0), f"CSV column {name!r}")
            raise SchemaError(
                f"{os.fspath(path)}: {text}; the column's type was inferred from the first "
                "block: pass column_types= to read it as the wider type"
            ) from None
        yield pa.Table.from_batches([batch])
