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

from .errors import ConfigError, SchemaError
from .feed import Feed, _span
from .schema import kind_of
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
    buffer, held = [], 0
    span = current = None
    for table in tables:
        if table.num_rows == 0:
            continue
        feed.schema = feed.schema.bind(table.schema)  # a clear error before concatenation
        if rows is not None:
            buffer.append(table)
            held += table.num_rows
            if held < rows:
                continue
            whole = pa.concat_tables(buffer, promote_options="permissive")
            stop = held - held % rows
            for a in range(0, stop, rows):
                yield whole.slice(a, rows)
            buffer, held = ([whole.slice(stop)], held - stop) if stop < held else ([], 0)
            continue
        if span is None:
            time_type = feed.schema._types[feed.schema.time]
            sort = "datetime" if kind_of(time_type) == "time" else kind_of(time_type)
            sort = "float" if pa.types.is_floating(time_type) else sort
            span = _span(every, "every", sort)
        bins = _bins(table.column(feed.schema.time), span)
        edges = np.flatnonzero(bins[1:] != bins[:-1]) + 1
        a = 0
        for e in [*edges.tolist(), len(bins)]:
            b = bins[a]
            if current is not None and b != current and buffer:
                yield pa.concat_tables(buffer, promote_options="permissive")
                buffer = []
            current = b
            if e > a:
                buffer.append(table.slice(a, e - a))
            a = e
    if buffer:
        yield pa.concat_tables(buffer, promote_options="permissive")


def _bins(col, span):
    if col.null_count:
        row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise SchemaError(f"time column is null at row {row}; every row needs a time")
    if pa.types.is_timestamp(col.type) or pa.types.is_date(col.type):
        col = pc.cast(col, pa.timestamp("ns", getattr(col.type, "tz", None)))
        t = col.to_numpy().view(np.int64)
    else:
        t = col.to_numpy()
    return np.floor_divide(t, span)


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
    and one column per series (see :func:`feeds.from_wide`). The frame is
    converted a slice at a time, so that memory stays bounded by the chunk size.

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
        try:
            reader = pa.ipc.open_file(source)
            batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
        except pa.ArrowInvalid:
            if hasattr(source, "seek"):
                source.seek(0)
            batches = pa.ipc.open_stream(source)
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
        expr = both(expr, pc.field(schema.key).isin(list(keys)))
    time_type = schema._types[schema.time]
    for bound, op in ((start, "ge"), (end, "lt")):
        if bound is None:
            continue
        if kind_of(time_type) == "time":
            ts = pd.Timestamp(bound)
            if ts.tz is None and getattr(time_type, "tz", None):
                raise ConfigError(
                    f"{'start' if op == 'ge' else 'end'}={bound!r} has no time zone but the "
                    f"time column is in {time_type.tz!r}"
                )
            value = pa.scalar(ts, type=pa.timestamp("ns", getattr(time_type, "tz", None)))
        else:
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
    feed = _feed_of(feed, options)
    dataset = ds.dataset(os.fspath(path), format="parquet")
    feed.schema = feed.schema.bind(dataset.schema)
    schema = feed.schema
    for fragment in dataset.get_fragments():  # footers only: each file against the schema
        try:
            schema.check(fragment.physical_schema)
        except SchemaError as exc:
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
    reader = pacsv.open_csv(os.fspath(path), read_options=read, convert_options=convert)
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
