"""Readers: generators of chunks from pandas, Arrow, Arrow IPC, Parquet and CSV.

Every reader takes a :class:`~feeds.feed.Feed` (or the options to make one),
cuts the source into tables of ``rows`` input rows or of one ``every`` time
span, yields the :class:`~feeds.chunks.Chunk` the feed makes of each, and at
the end yields what the feed held back (``flush``). A chunk can have fewer or
more rows than its table: the feed holds rows back, drops late or duplicate
rows, and adds grid rows. Readers open files themselves only when given a
path, and close only what they opened.
"""

import os
from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from . import _kernels as K
from .errors import ConfigError, MissingValueError, SchemaError
from .feed import Feed, _float64, _span
from .schema import Schema, kind_of
from .tables import (
    as_table,
    column_types,
    csv_tables,
    from_wide,
    na_markers,
    text_encoding,
    time_formats,
)

_DEFAULT_ROWS = 65_536
_parse_column_types = column_types  # iter_csv's argument of that name hides it


def _feed_of(feed, options):
    if feed is None:
        return Feed(**options)
    if options:
        raise ConfigError(f"pass feed options to the Feed, not beside it: {sorted(options)}")
    if not isinstance(feed, Feed):
        raise ConfigError(f"feed must be a feeds.Feed, got {type(feed).__name__}")
    return feed


def _check_rows(rows, every, skip=0):
    if isinstance(skip, bool) or not isinstance(skip, (int, np.integer)) or skip < 0:
        raise ConfigError(f"skip must be a non-negative integer, got {skip!r}")
    if rows is not None and every is not None:
        raise ConfigError("cut by rows or by a time span (every), not both")
    if rows is not None and (
        isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 1
    ):
        raise ConfigError(f"rows must be a positive integer, got {rows!r}")


def _refuse(source, what):
    extra = " (a dict of columns: pass pandas.DataFrame(it))" if isinstance(source, Mapping) else ""
    raise SchemaError(
        f"expected a DataFrame, Arrow table, record batch or reader, or an iterable of "
        f"them, got {what} {type(source).__name__}{extra} (files: iter_parquet, iter_csv, "
        "iter_ipc)"
    )


def _tables(source):
    """Arrow tables from one source or an iterable of sources, in order."""
    if isinstance(source, (pa.Table, pa.RecordBatch, pd.DataFrame)):
        yield as_table(source)
        return
    if isinstance(source, pa.RecordBatchReader):
        for batch in source:
            yield pa.Table.from_batches([batch])
        return
    if isinstance(source, (str, bytes, os.PathLike, Mapping)) or not hasattr(source, "__iter__"):
        _refuse(source, "a source of type")
    for item in source:
        if isinstance(item, pa.RecordBatchReader):
            yield from _tables(item)
        elif isinstance(item, (pa.Table, pa.RecordBatch, pd.DataFrame)):
            yield as_table(item)
        else:
            _refuse(item, "an item of type")


def _cut(tables, feed, rows, every):
    """Re-cut a sequence of tables into tables of ``rows`` rows or one ``every`` span each."""
    if rows is None and every is None:
        yield from tables
        return
    buffer, held, seen = [], 0, 0
    span = current = schema = None
    for table in tables:
        if table.num_rows == 0:
            continue
        if schema is None:  # the feed binds on its first rows; the pieces are checked now,
            schema = feed.schema.bind(table)  # before they are joined (rows for messages)
        else:
            schema.check(table.schema)
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
            time_type = schema.time_type
            sort = "datetime" if kind_of(time_type) == "time" else kind_of(time_type)
            sort = "float" if pa.types.is_floating(time_type) else sort
            span = _span(every, "every", sort)
        bins = _bins(schema.time_column(table, seen), span, schema.time_name, seen)
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
    """One table of ``tables`` (checked against ``schema``); pieces of one kind but
    other Arrow types (a dictionary and a plain string key, dates and timestamps,
    integer and float values) are brought to one."""
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    common = [
        pa.table({n: _common(t.column(n), n, schema) for n in t.schema.names}) for t in tables
    ]
    try:
        return pa.concat_tables(common, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    for name in common[0].schema.names:  # a column the schema does not use
        types = {str(t.schema.field(name).type) for t in common if name in t.schema.names}
        if len(types) > 1:
            raise SchemaError(
                f"column {name!r} is {' in one table and '.join(sorted(types))} in another; "
                "a column keeps one type (or name the features with Schema(features=...))"
            )
    raise SchemaError("the tables cannot be joined into one chunk")  # not seen: a safeguard


def _common(col, name, schema):
    """A column in the one type that every piece of it can take."""
    if name == schema.key or name in schema.categorical:
        if pa.types.is_dictionary(col.type):
            col = pc.cast(col, col.type.value_type)
        if kind_of(col.type) == "string":
            return pc.cast(col, pa.string())
        role = "key" if name == schema.key else "categorical"
        return _int64_column(
            col, f"{role} column {name!r}", "keys" if role == "key" else "categories"
        )
    if name == schema.time and pa.types.is_integer(col.type):
        return _int64_column(col, f"time column {name!r}", "times")
    if name == schema.time and kind_of(col.type) == "time":
        try:
            return pc.cast(col, pa.timestamp("ns", getattr(col.type, "tz", None)))
        except pa.ArrowInvalid:
            raise SchemaError(
                f"time column {name!r} holds a time outside what nanoseconds since 1970 "
                "can hold (years 1678 to 2262)"
            ) from None
    if name in schema.values:
        return _float64(col)
    return col


def _int64_column(col, what, plural):
    try:
        return pc.cast(col, pa.int64())
    except pa.ArrowInvalid as exc:
        raise SchemaError(
            f"{what} holds an integer beyond int64 ({exc}); integer {plural} must fit in int64"
        ) from None


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
    on_edge = np.abs(q - k) <= K.EDGE * np.maximum(1.0, np.abs(q))  # as the feed's grid
    return np.where(on_edge, k, np.floor(q))


def _skip(tables, skip):
    """``tables`` (or batches) without their first ``skip`` rows; an integer among
    them counts rows already passed over."""
    for table in tables:
        n = table if isinstance(table, int) else table.num_rows
        if skip >= n:
            skip -= n
            continue
        yield table.slice(skip) if skip else table
        skip = 0
    if skip:
        raise SchemaError(f"the input ended {skip:,} rows short of the position to resume from")


def _run(tables, feed, rows, every, flush, skip=0):
    if skip:
        tables = _skip(tables, skip)
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
        Input rows per table given to the feed (the last may be shorter).
        Default: as the source comes. A chunk can have another length than
        its table: the feed holds rows back (``duplicates="last"``, a grid),
        drops late or duplicate rows and adds rows for empty grid bins.
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
    is first made long whole. ``rows`` counts input rows, as in
    :func:`iter_chunks` (a wide frame: rows of the long format).

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

    ``rows`` counts input rows, as in :func:`iter_chunks`.

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


def iter_ipc(source, feed=None, *, rows=None, every=None, flush=True, skip=0, **options):
    """Chunks from Arrow IPC data, stream or file format: a path, buffer or open file.

    A path is opened (memory-mapped) and closed when the generator ends;
    an open file is left open. ``rows`` counts input rows, as in
    :func:`iter_chunks`; ``skip`` as in :func:`iter_parquet`.
    """
    _check_rows(rows, every, skip)
    feed = _feed_of(feed, options)
    return _ipc(source, feed, rows, every, flush, skip)


def _ipc(source, feed, rows, every, flush, skip):
    opened = None
    if isinstance(source, (str, os.PathLike)):
        if os.path.isdir(source):
            raise SchemaError(
                f"{os.fspath(source)}: is a folder; iter_ipc reads one Arrow IPC file"
            )
        try:
            source = opened = pa.memory_map(os.fspath(source))
        except FileNotFoundError:
            raise SchemaError(f"{os.fspath(source)}: the file does not exist") from None
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
        yield from _run(_tables(batches), feed, rows, every, flush, skip)
    finally:
        if opened is not None:
            opened.close()


def _filter(schema, keys, start, end):
    """The scan filter as ``{column: expression}``, one condition per column."""
    parts = {}
    if keys is not None:
        if not schema.key:
            raise ConfigError("keys= filters on the key column, but the data is one series")
        keys = [keys] if isinstance(keys, (str, int, np.integer)) else list(keys)
        if not keys:
            raise ConfigError(
                "keys= is empty; pass a key or a list of one key or more, or None for all keys"
            )
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
        parts[schema.key] = pc.field(schema.key).isin(keys)
    if schema.time_parts is not None and (start is not None or end is not None):
        raise ConfigError(
            f"start= and end= filter the rows on a time column; this time is built from its "
            f"parts {list(schema.time)}, which a scan cannot filter on: read without them, "
            "or filter on a time column written with the data"
        )
    time_type = schema.time_type
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
            try:
                value = pa.scalar(ts, type=pa.timestamp("ns", zone))
            except (OverflowError, pa.ArrowInvalid):
                raise ConfigError(
                    f"{name}={bound!r} is outside the years 1678 to 2262 that a time bound "
                    "can hold (nanoseconds since 1970); leave it None for no bound"
                ) from None
        else:
            if isinstance(bound, bool) or not isinstance(bound, (int, float, np.number)):
                raise ConfigError(f"{name}={bound!r} is not a number; the time column is")
            if isinstance(bound, (float, np.floating)) and np.isnan(bound):
                raise ConfigError(
                    f"{name}={bound!r} is not a bound; pass a number (or None for no bound)"
                )
            value = bound
        f = pc.field(schema.time)
        cond = f >= value if op == "ge" else f < value
        parts[schema.time] = cond if schema.time not in parts else parts[schema.time] & cond
    return parts


def _all(parts, names=None):
    """The conjunction of the filter ``parts`` on ``names`` (all when None), or None."""
    expr = None
    for name, cond in parts.items():
        if names is None or name in names:
            expr = cond if expr is None else expr & cond
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
    skip=0,
    **options,
):
    """Chunks from a Parquet file or dataset directory, read in batches with bounded memory.

    Only the schema's columns are read (column projection; other columns never
    leave the file). ``keys`` keeps rows of those keys, ``start`` and ``end``
    rows with ``start <= time < end``; both filters are pushed into the scan.
    Files of a directory are read in the dataset's order (sorted paths), one
    file after another: each key's times must increase across files. A
    directory partitioned Hive-style (``sensor=a/...``, as written by
    ``pyarrow.parquet.write_to_dataset(..., partition_cols=["sensor"])``) has
    its partition column as an ordinary column (text values as strings).

    Parameters
    ----------
    path : str or path-like
    rows : int, optional
        Input rows per table given to the feed (the last may be shorter);
        a chunk can have other lengths, since the feed holds back, drops or
        adds rows. Default: as the batches come.
    batch_rows : int
        Rows per batch read from disk. Files are read one row group at a time,
        so memory is bounded by the larger of a row group and a chunk.
    threads : bool
        Let Arrow decode columns in parallel.
    skip : int
        Input rows (after the filters) to pass over before the first one given
        to the feed: a stream restored with its feed resumes at
        ``feed.counts["rows_in"]``. Row groups wholly before that point are not
        read when there is no filter.

    Raises
    ------
    SchemaError
        Naming the file or folder: a path that does not exist, a folder of no Parquet
        files, a file that is not Parquet, a column name twice in a file, or a damaged
        file: a page whose checksum (where the writer wrote checksums, as with
        ``pyarrow.parquet.write_table(..., write_page_checksum=True)``) does not match,
        that cannot be decoded, or that holds a number outside the range its row group's
        statistics record.
    """
    _check_rows(rows, every, skip)
    if (
        isinstance(batch_rows, bool)
        or not isinstance(batch_rows, (int, np.integer))
        or (batch_rows < 1)
    ):
        raise ConfigError(f"batch_rows must be a positive integer, got {batch_rows!r}")
    feed = _feed_of(feed, options)
    partitioning = ds.HivePartitioning.discover(infer_dictionary=True)
    try:
        dataset = ds.dataset(os.fspath(path), format="parquet", partitioning=partitioning)
        fragments = list(dataset.get_fragments())
    except FileNotFoundError:
        raise SchemaError(f"{os.fspath(path)}: the file or directory does not exist") from None
    except (pa.ArrowInvalid, OSError) as exc:
        twice = _twice(os.fspath(path)) if "duplicate" in str(exc) else None
        if twice:
            raise SchemaError(
                f"{twice[0]}: column {twice[1]!r} appears twice; column names must be distinct"
            ) from None
        raise SchemaError(f"{os.fspath(path)}: not Parquet data that can be read: {exc}") from None
    if not fragments:
        raise SchemaError(
            f"{os.fspath(path)}: the folder holds no Parquet files (names that start with "
            "'.' or '_' are not read)"
        )
    schema = feed.schema.bind(dataset.schema)  # the feed binds on its first rows
    for fragment in fragments:  # footers only: each file against the schema
        try:
            physical = fragment.physical_schema
            for name in ds.get_partition_keys(fragment.partition_expression):
                if name not in physical.names:  # a partition column, from the path
                    physical = physical.append(dataset.schema.field(name))
            schema.check(physical)
        except (SchemaError, pa.ArrowInvalid, OSError) as exc:
            raise SchemaError(f"{fragment.path}: {exc}") from None
    columns = list(schema.source_columns)  # the time or its parts, key, values, categories
    if schema.key and kind_of(schema._types[schema.key]) == "string":
        fmt = ds.ParquetFileFormat(
            read_options=ds.ParquetReadOptions(dictionary_columns=[schema.key])
        )
        dataset = ds.dataset(os.fspath(path), format=fmt, partitioning=partitioning)
    parts = _filter(schema, keys, start, end)
    batches = _row_groups(dataset, columns, parts, batch_rows, threads, skip)
    if skip:
        batches = _skip(batches, skip)
    return _run(_scanned(batches, path), feed, rows, every, flush)


def _twice(path):
    """``(file, column)`` of the first Parquet file at ``path`` (a file or folder) that has
    a column name twice, or None."""
    if os.path.isfile(path):
        files = [path]
    else:
        files = sorted(
            os.path.join(folder, name)
            for folder, _, names in os.walk(path)
            for name in names
            if not name.startswith((".", "_"))
        )
    for file in files:
        try:
            names = pq.read_schema(file).names
        except (pa.ArrowInvalid, OSError):
            continue
        twice = next((n for n in names if names.count(n) > 1), None)
        if twice is not None:
            return file, twice
    return None


def _row_groups(dataset, columns, parts, batch_rows, threads, skip):
    """Record batches of a Parquet dataset, one row group at a time.

    Files (partitions) and row groups whose statistics rule out the filter are
    skipped; each row group is read only when the previous one is used up and
    without pre-buffering, so that memory stays bounded by a row group and a
    batch, however large the data. A damaged file is an error naming it: a page
    whose checksum (where the writer wrote one) does not match, or that cannot be
    decoded, or a number outside the range the row group's statistics record
    (bytes written over values leave a page that decodes, to other numbers).
    """
    scan = ds.ParquetFragmentScanOptions(pre_buffer=False, page_checksum_verification=True)
    expr = _all(parts)
    passed = 0  # rows of the row groups passed over unread, counted for _skip
    for fragment in dataset.get_fragments(filter=expr):
        stored = _all(parts, fragment.physical_schema.names)  # not the partition columns
        for piece in fragment.split_by_row_group(stored):
            if expr is None and passed < skip:
                n = sum(g.num_rows for g in piece.row_groups)
                if passed + n <= skip:
                    passed += n
                    yield n
                    continue
            passed = skip
            batches = piece.to_batches(
                schema=dataset.schema,  # partition columns are filled in from the path
                columns=columns,
                filter=expr,
                batch_size=batch_rows,
                batch_readahead=0,
                fragment_scan_options=scan,
                use_threads=threads,
            )
            ranges = _recorded_ranges(piece, columns)
            try:
                for batch in batches:
                    _check_ranges(batch, ranges, fragment.path)
                    yield batch
            except OSError as exc:  # Arrow's IOError: damaged pages, bad compression
                raise SchemaError(f"{fragment.path}: the file is damaged: {exc}") from None


def _recorded_ranges(piece, columns):
    """``{column: (row group, least, greatest)}`` of the numeric ``columns`` whose range
    the statistics of ``piece`` (one row group) record."""
    groups = piece.row_groups or []
    if len(groups) != 1:
        return {}
    stats = groups[0].statistics or {}
    ranges = {}
    for name in columns:
        least, greatest = (stats.get(name) or {}).get("min"), (stats.get(name) or {}).get("max")
        numbers = all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in (least, greatest)
        )
        if numbers and least <= greatest:  # not NaN
            ranges[name] = (groups[0].id, least, greatest)
    return ranges


def _check_ranges(batch, ranges, path):
    for name, (group, least, greatest) in ranges.items():
        col = batch.column(name)
        if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
            continue  # a dictionary column, say: not checked
        found = pc.min_max(col)
        low, high = found["min"].as_py(), found["max"].as_py()
        if low is None or least <= low <= high <= greatest:
            continue
        value = low if low < least else high
        raise SchemaError(
            f"{path}: the file is damaged: column {name!r} holds {value!r} in row group "
            f"{group}, outside the range {least!r} to {greatest!r} that the file's statistics "
            "record for it; the file was changed after it was written"
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
    encoding=None,
    time_format=None,
    na_values=None,
    skip=0,
    **options,
):
    r"""Chunks from a CSV file, streamed a block at a time (never loaded whole).

    The first line holds the column names. Column types are inferred from the first block
    (``block_size`` bytes) and kept for the rest of the file, but for a column that turns out
    wider: an integer column (or one of missing values only in the first block) that later
    holds ``14.66666667`` or an integer beyond int64 is read as float64 from that block on,
    since features and targets become floats anyway, and a column the feed does not read is
    read as text when it must. No row is read twice or left out, and the chunks are the same
    whatever ``block_size``. The key, the time (or its parts) and categorical columns keep
    their first block's type: an integer key that later holds text is an error that says to
    declare its type.

    A row is a line: a quoted value cannot hold a line break (a quote left open would take
    the lines after it). Timestamps in ISO 8601 are read as timestamps, and those in the
    formats of ``time_format``. Text is read as written (a key ``"NA"`` is Namibia), except
    that an empty field is missing; in numeric and time columns Arrow's spellings of a
    missing value (empty, ``NA``, ``N/A``, ``null``, ``nan``, ...) and those of
    ``na_values`` are missing. A key whose first block holds only such spellings has no
    type to infer: declare it in ``column_types`` (``"string"``).

    Parameters
    ----------
    path : str or path-like
    rows : int, optional
        Input rows per table given to the feed, as in :func:`iter_chunks`.
    block_size : int
        Bytes read at a time (a block ends at its last line end).
    column_types : mapping or str, optional
        Declared column types, kept for the whole file: ``{name: type}`` where a type is an
        Arrow type or its name (``"float64"``, ``"int64"``, ``"string"``, ``"timestamp"``,
        ...), or the same as text, ``"TEMP=float64,cbwd=string"``; see
        :func:`feeds.tables.column_types`.
    encoding : str, optional
        The file's text encoding, such as ``"latin-1"`` or ``"cp1252"``; UTF-8 by default.
        Text that is not UTF-8 without it is an error naming the column and the line, never
        bytes read silently.
    time_format : str or list of str, optional
        strptime formats of times written otherwise than ISO 8601, tried in order after
        it: ``"%m/%d/%Y %H:%M"`` reads ``01/31/2010 23:00``. A text column whose values
        all read in one of them becomes timestamps (``timestamp[s]``), the time column
        among them.
    na_values : str or list of str, optional
        More texts read as missing in numeric and time columns: gap markers such as
        ``"-"``, ``"n/a"``, ``"--"`` or ``"?"``. Text columns (a key, a category) keep
        them as written.
    skip : int
        As in :func:`iter_parquet` (the skipped rows are still parsed).

    Raises
    ------
    SchemaError
        What cannot be read, naming the file, the line and the column: a row with another
        number of fields than the header, a quote left open, bytes that are not text, a
        value that does not fit its column's type, or a column of numbers with a stray text
        in the first block (read as text, it would silently not be a feature).
    ConfigError
        An unknown type name or encoding, a declared type for a column the file lacks, or
        a ``time_format`` that is no strptime format.

    Examples
    --------
    >>> import os, tempfile, feeds
    >>> path = os.path.join(tempfile.mkdtemp(), "raw.csv")
    >>> with open(path, "w") as f:
    ...     _ = f.write("hour,TEMP\n" + "".join(f"{h},{h % 5}\n" for h in range(300)))
    ...     _ = f.write("300,14.66666667\n")
    >>> chunks = feeds.iter_csv(path, block_size=512, schema=feeds.Schema(time="hour"),
    ...                         dtype="float64")
    >>> temp = feeds.concat(list(chunks)).x[:, 0]
    >>> len(temp), float(temp[-1])
    (301, 14.66666667)

    Times in another format, and gaps written ``-``:

    >>> with open(path, "w") as f:
    ...     _ = f.write("date,TEMP\n01/31/2010 23:00,4.5\n02/01/2010 00:00,-\n")
    >>> chunk, = feeds.iter_csv(path, time_format="%m/%d/%Y %H:%M", na_values=["-"],
    ...                         missing="ffill", schema=feeds.Schema(time="date"))
    >>> chunk.times.astype("datetime64[m]").astype(str).tolist(), chunk.x[:, 0].tolist()
    (['2010-01-31T23:00', '2010-02-01T00:00'], [4.5, 4.5])
    """
    _check_rows(rows, every, skip)
    if (
        isinstance(block_size, bool)
        or not isinstance(block_size, (int, np.integer))
        or block_size < 1
    ):
        raise ConfigError(f"block_size must be a positive integer, got {block_size!r}")
    text = {
        "types": _parse_column_types(column_types),
        "encoding": text_encoding(encoding),
        "formats": time_formats(time_format),
        "na_values": na_markers(na_values),
    }
    feed = _feed_of(feed, options)
    return _csv(path, feed, rows, every, flush, block_size, text, skip)


def _csv(path, feed, rows, every, flush, block_size, text, skip):
    tables = csv_tables(path, block_size=block_size, roles=lambda: _roles(feed), **text)
    try:
        yield from _run(tables, feed, rows, every, flush, skip)
    finally:
        tables.close()


def _roles(feed):
    """``(kept, values, read)`` of the feed's schema as known now (see ``csv_tables``)."""
    schema = feed.schema
    time = schema.time
    times = (time,) if isinstance(time, str) else tuple(time or ())
    role = "time part" if len(times) > 1 else "time"
    kept = {**dict.fromkeys(times, role), **dict.fromkeys(schema.categorical, "categorical")}
    if schema.key:
        kept[schema.key] = "key"
    if schema.bound:
        return kept, schema.values, set(schema.source_columns)
    if schema.features is None:
        return kept, None, None
    values = tuple(dict.fromkeys(schema.features + (schema.targets or ())))
    known = time is not None and schema.key is not None
    return kept, values, ({*kept, *values} if known else None)
