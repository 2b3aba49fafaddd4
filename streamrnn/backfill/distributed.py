"""The backfill on a Dask cluster: the local job's output, split by key.

``streamrnn.backfill.run(job, client=client)`` (``streamrnn backfill ... --dask
ADDRESS`` or ``--dask local:N``) runs a job on the workers of a
``distributed.Client``. Nothing here is imported without it.

How it works
------------
1. **Settle** (driver). The job's ``auto`` settings are decided once, from the
   whole input's first rows or the given model, as the local job decides them
   (:func:`.runner.settled`); every shard runs with them spelled out.
2. **Route** (in parallel, one task per *piece*: consecutive row groups of one
   Parquet file, up to :data:`ROUTE_ROWS` rows). Each task reads its row groups
   one at a time (the columns the job reads, checked as a local job checks them)
   and writes their rows into one file per shard that has rows in it:
   ``output/_route/shard-KKKK/piece-PPPPPP.parquet``. A key's shard is its
   stable hash (``pandas.util.hash_array``, the same on every run and machine)
   modulo the number of shards. A piece's files are written atomically together,
   then a marker says the piece is done, so a task run again after a crash writes
   the same files and a finished piece is not read again.
3. **Run** (one task per shard). Each shard is a local backfill
   (:func:`.runner.run`) of its routed files, read in piece order (the input's
   order, restricted to the shard's keys), into ``output/shard-KKKK/``: its
   parts, its checkpoint and its lock, exactly as a local job's folder. A task
   always resumes: run again after its worker died, it goes on from the
   shard's last checkpoint and writes no row twice.
4. **Merge** (driver). The summary adds the shards' counts and merges their
   scores' exact sums (:meth:`streamrnn.evaluate.Scorer.merge`), so every
   figure is the one a single run over all keys gives.

The input is read once and written once (the routed files), and those files
are read once more by the shards: two reads and one write of the input's
bytes. Each task holds at most one row group (route) or one chunk (run).

What comes out is the local job's, bit for bit, for inference and for learning
with ``per_key=True``: every figure of a series depends only on its own rows,
in order, and on settings that are spelled out. Shared-weight learning
depends on the order of rows across keys and is refused, as is scaling over all
keys (``scale="global"``). Parquet files (not partitioned by folder), CSV and
Arrow IPC files; a CSV or IPC file is routed by one task, a block at a time.

``output/_dask.json`` records the number of shards: a run resumed after the
driver stopped (``resume``) must use the same.
"""

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import re
import shutil
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from feeds import FeedError
from feeds.schema import _row_text

from .. import checkpoint
from ..errors import ConfigError, StreamrnnError
from .folder import CHECKPOINT
from .job import checked

ROUTE = "_route"
MARKER = "_dask.json"


def shard_of(keys, shards):
    """Each key's shard: a stable hash of the key (of its text for text keys) modulo
    ``shards``. The same key gets the same shard on every run and machine.

    >>> shard_of(pd.Series(["a", "b", "a"]), 4).tolist() == shard_of(["a", "b", "a"], 4).tolist()
    True
    """
    values = pd.Series(keys)
    if values.dtype == object or isinstance(values.dtype, (pd.CategoricalDtype, pd.StringDtype)):
        values = values.astype(str).astype(object)
    hashed = pd.util.hash_array(values.to_numpy())
    return (hashed % np.uint64(shards)).astype(np.int64)


def _shards_of_column(column, shards):
    """:func:`shard_of` each value of an Arrow column: text keys are hashed once per
    distinct key (dictionary-encoded first), which is the same shard for each."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        encoded = pc.dictionary_encode(column)
        per_key = shard_of(encoded.dictionary.to_pandas(), shards)
        if not len(per_key):  # every key missing: the shard's feed says so
            return np.zeros(len(column), np.int64)
        indices = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False)
        return per_key[indices]  # a missing key goes with the first: its feed says so
    return shard_of(column.to_pandas(), shards)


def _refuse(job):
    if job.learn and not job.per_key:
        raise ConfigError(
            "learning with shared weights (learn=True without per_key=True) depends on the "
            "order of rows across keys, so it does not run on Dask; learn locally (without "
            "dask), or give each key its own weights (per_key=True), or learn first and "
            "then backfill inference on Dask with model= the saved learner"
        )
    if job.scale == "global":
        raise ConfigError(
            "scale='global' scales every key by statistics over all keys, in row order, so "
            "it does not run on Dask; use scale='per_key' (the default) or 'none'"
        )
    if not job.key:
        raise ConfigError(
            "a backfill on Dask splits the series by key, and this job has one series "
            "(key=False or none found); run it locally"
        )


def _inferred_key(job):
    """The key column the feed infers from the input's schema (None: one series)."""
    import warnings

    from feeds import KeyWarning

    from .runner import _schema

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the shards' feeds say the rest, as the local job's
        warnings.simplefilter("default", KeyWarning)  # the shards get the key it names
        if job.format == "parquet":
            return _schema(job).bind(ds.dataset(job.input, format="parquet").schema).key
        if job.format == "ipc":
            first = next(_ipc_tables(job.input), None)
            return None if first is None else _schema(job).bind(first.schema).key
        from .runner import _feed

        feed = _feed(job)
        tables = _csv_tables(job, feed)
        try:
            first = next(iter(tables), None)
        finally:
            tables.close()
        return None if first is None else _schema(job).bind(first.schema).key


def _columns_read(job):
    """The input columns a local job reads from Parquet (its schema's source columns)."""
    import warnings

    from .runner import _schema

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bound = _schema(job).bind(ds.dataset(job.input, format="parquet").schema)
    return list(bound.source_columns)


def _csv_tables(job, feed):
    """The Arrow tables of the job's CSV input, a block each, parsed as the local job
    parses them (the feed's roles decide what a column may become)."""
    from feeds.readers import _parse_column_types, _roles
    from feeds.tables import csv_tables, na_markers, text_encoding, time_formats

    return csv_tables(job.input, block_size=1 << 20, roles=lambda: _roles(feed),
                      types=_parse_column_types(job.column_types),
                      encoding=text_encoding(job.encoding),
                      formats=time_formats(job.time_format),
                      na_values=na_markers(job.na_values))  # fmt: skip


#: Rows a routing task reads: consecutive row groups of one file, up to this many (or
#: one larger row group). Fewer, larger tasks: fewer files and less for the scheduler.
ROUTE_ROWS = 1_000_000


def _pieces(path):
    """``(file, row groups, first row)`` of every routing task of the input (consecutive
    row groups of one file, up to :data:`ROUTE_ROWS` rows), in the order it is read."""
    hive = ds.dataset(path, format="parquet", partitioning=ds.HivePartitioning.discover())
    dataset = ds.dataset(path, format="parquet")
    if hive.schema.names != dataset.schema.names:
        raise ConfigError(
            f"input {path!r} is partitioned by folder ({', '.join(hive.partitioning.schema.names)}"
            "=...): a backfill on Dask reads plain Parquet files for now; run it locally"
        )
    out, first = [], 0
    for fragment in dataset.get_fragments():
        meta = fragment.metadata
        groups, rows = [], 0
        for rg in range(meta.num_row_groups):
            n = meta.row_group(rg).num_rows
            if groups and rows + n > ROUTE_ROWS:
                out.append((fragment.path, groups, first))
                first += rows
                groups, rows = [], 0
            groups.append(rg)
            rows += n
        if groups:
            out.append((fragment.path, groups, first))
            first += rows
    return out


def _row_group(file, row_group, columns):
    """The job's ``columns`` of one row group of a Parquet file, read as the local reader
    reads them: page checksums verified where the writer wrote them, and numbers checked
    against the ranges the row group's statistics record, so that a damaged file is the
    same error here as in a local job."""
    from feeds.errors import SchemaError
    from feeds.readers import _check_ranges, _recorded_ranges

    fragment = next(iter(ds.dataset(file, format="parquet").get_fragments()))
    piece = fragment.split_by_row_group()[row_group]
    scan = ds.ParquetFragmentScanOptions(pre_buffer=False, page_checksum_verification=True)
    try:
        batches = list(piece.to_batches(columns=columns, batch_readahead=0,
                                        fragment_scan_options=scan))  # fmt: skip
    except OSError as exc:  # Arrow's IOError: damaged pages, bad compression
        raise SchemaError(f"{fragment.path}: the file is damaged: {exc}") from None
    ranges = _recorded_ranges(piece, columns)
    for batch in batches:
        _check_ranges(batch, ranges, fragment.path)
    physical = piece.physical_schema
    return pa.Table.from_batches(batches, schema=pa.schema([physical.field(c) for c in columns]))


def route(piece, file, row_groups, columns, first, key, shards, folder):
    """Write the rows of some row groups of a Parquet file (whose first row is the
    input's row ``first``) into one file per shard that has rows in it (see
    :func:`_route_piece`); returns the number of rows. A piece already routed is not
    read again."""
    done = os.path.join(folder, f"piece-{piece:06d}.done")
    if os.path.exists(done):
        with open(done) as f:
            return json.load(f)["rows"]
    _allow_open_files()
    tables = (_row_group(file, rg, columns) for rg in row_groups)
    rows = _route_piece(tables, piece, first, key, shards, folder)
    checkpoint.write_atomic(done, lambda f: f.write(json.dumps({"rows": rows}).encode()))
    return rows


def _allow_open_files():
    """Let this process open as many files as the system allows it (the soft limit up to
    the hard one): a piece keeps a file open per shard until it is done, and a worker
    may route several pieces at once."""
    try:
        import resource
    except ImportError:  # not a POSIX system
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


_ROW = re.compile(r"\brow (\d+)(?: \(row (\d+) of the stream\))?")


def _route_piece(tables, piece, first, key, shards, folder):
    """The rows of one piece (``tables``, in order), by shard: a Parquet file per shard,
    ``shard-KKKK/piece-PPPPPP.parquet``, a row group per table, and the shard of each row
    (``_piece-PPPPPP-FIRST.shards.npy``, FIRST the input row of its first: for messages),
    all written atomically together. Only the key column is dictionary-encoded: numbers gain
    nothing from it (float32 features: files 30% smaller and written twice as fast
    without). Returns the number of rows."""
    scratch = os.path.join(folder, f".tmp-piece-{piece:06d}")
    shutil.rmtree(scratch, ignore_errors=True)  # a killed try's files
    writers, assigned = {}, []
    with checkpoint.atomic_files(scratch) as opened:
        try:
            for table in tables:
                shard = _shards_of_column(table.column(key), shards)
                assigned.append(shard)
                for k in np.unique(shard):
                    if k not in writers:
                        target = os.path.join(folder, f"shard-{k:04d}",
                                              f"piece-{piece:06d}.parquet")  # fmt: skip
                        os.makedirs(os.path.dirname(target), exist_ok=True)
                        writers[k] = pq.ParquetWriter(opened(target), table.schema,
                                                      use_dictionary=[key])  # fmt: skip
                    writers[k].write_table(table.filter(pa.array(shard == k)))
        finally:
            for writer in writers.values():
                writer.close()
        shard = np.concatenate(assigned) if assigned else np.zeros(0, np.int32)
        small = np.uint16 if shards <= np.iinfo(np.uint16).max + 1 else np.uint32
        with opened(os.path.join(folder, f"_piece-{piece:06d}-{first}.shards.npy")) as f:
            np.save(f, shard.astype(small))
    return len(shard)


_SHARDS_FILE = re.compile(r"_piece-\d+-(\d+)\.shards\.npy")


def _input_rows(route_dir, k):
    """The input rows of shard ``k``, in the order the shard reads them: the shards of
    each piece's rows, in piece order, after the input row of its first (in the name)."""
    parts = []
    for name in sorted(os.listdir(route_dir)):
        found = _SHARDS_FILE.fullmatch(name)
        if found:
            shard = np.load(os.path.join(route_dir, name))
            parts.append(int(found.group(1)) + np.flatnonzero(shard == k))
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def _ipc_tables(path):
    """The record batches of an Arrow IPC file (file or stream format), as tables."""
    with pa.memory_map(path) as source:
        try:
            reader = pa.ipc.open_file(source)
            batches = [reader.get_batch(i) for i in range(reader.num_record_batches)]
        except pa.ArrowInvalid:
            source.seek(0)
            batches = list(pa.ipc.open_stream(source))
    for batch in batches:
        yield pa.Table.from_batches([batch])


def route_file(job, shards, folder):
    """Route a CSV or Arrow IPC file: one task reads it a block (CSV, parsed exactly as
    the local job parses it: types, encoding, time formats, missing-value markers) or a
    record batch (IPC) at a time, and writes each one's rows by shard as Parquet.
    Returns the number of rows."""
    if job.format == "ipc":
        return _route_tables(job, _ipc_tables(job.input), None, shards, folder)
    from .runner import _feed

    feed = _feed(job)
    return _route_tables(job, _csv_tables(job, feed), feed, shards, folder)


def _route_tables(job, tables, feed, shards, folder):
    """Route ``tables`` (blocks of one file, in order) by shard; with the CSV reader's
    ``feed``, the value columns' integers as float64 (a block may widen them)."""
    done = os.path.join(folder, "file.done")
    if os.path.exists(done):
        with open(done) as f:
            return json.load(f)["rows"]
    first = 0
    try:
        for piece, table in enumerate(tables):
            if feed is not None and not feed.bound:
                feed.bind(table)
            for name in feed.schema.values if feed is not None else ():
                at = table.schema.get_field_index(name)
                if pa.types.is_integer(table.schema.field(at).type):
                    column = pc.cast(table.column(at), pa.float64(), safe=False)
                    table = table.set_column(at, name, column)
            first += _route_piece([table], piece, first, job.key, shards, folder)
    finally:
        close = getattr(tables, "close", None)
        if close is not None:
            close()
    checkpoint.write_atomic(done, lambda f: f.write(json.dumps({"rows": first}).encode()))
    return first


def run_shard(job):
    """Run (or resume) one shard's local backfill; returns its summary, and its scorer,
    report book and feed schema; or, when the job stops on an error of its data or
    settings, ``(None, error)``: the driver raises it (a worker would log it as a
    crash). An error about a row names the input's row, as the local job's would."""
    from .runner import run

    try:
        summary = run(job)
    except (StreamrnnError, FeedError) as exc:
        text = str(exc)
        if not _ROW.search(text):
            return None, exc
        route_dir, name = os.path.split(os.path.normpath(job.input))
        rows = _input_rows(route_dir, int(name[len("shard-") :]))

        def input_row(m):  # as the local job, reading chunk_rows input rows a chunk, says it
            at = int(m.group(2) or m.group(1))
            if at >= len(rows):
                return m.group(0)
            row = int(rows[at])
            return _row_text(row, row - row % job.chunk_rows, job.chunk_rows)

        return None, type(exc)(_ROW.sub(input_row, text))
    kept = {"scorer": None, "book": None, "schema": None}
    path = os.path.join(job.output, CHECKPOINT)
    if os.path.exists(path):
        payload = checkpoint.read(path)[1]
        kept.update(scorer=payload["scorer"], book=payload["book"], schema=payload["feed"].schema)
    return summary, kept


def _shard_job(job, relative, k, output):
    return dataclasses.replace(
        job,
        format="parquet",  # the routed files: a CSV's text already parsed as its job parses it
        column_types=None,
        encoding=None,
        time_format=None,
        na_values=None,
        input=os.path.join(output, ROUTE, f"shard-{k:04d}"),
        output=os.path.join(output, f"shard-{k:04d}"),
        relative=relative,
        resume=True,
        overwrite=False,
        report=None,
        progress="none",
    )


def _layout(job, pieces):
    """A digest of the input and how it is cut into pieces (its files, by their names
    under the input, sizes and times of change, and their row groups): a resumed job's
    routed pieces are only its own."""
    root = job.input if os.path.isdir(job.input) else os.path.dirname(job.input)
    files = sorted({file for file, _, _ in pieces} or {job.input})
    stats = [(os.path.relpath(f, root), os.path.getsize(f), os.stat(f).st_mtime_ns) for f in files]
    cut = [(os.path.relpath(file, root), groups, first) for file, groups, first in pieces]
    text = json.dumps([job.format, ROUTE_ROWS, stats, cut])
    return hashlib.sha256(text.encode()).hexdigest()


def _claim(job, shards, default, layout):
    """Check the output folder and record the shard count (``shards``, or ``default``
    for a new job) and the input's ``layout``; returns the shard count."""
    marker = os.path.join(job.output, MARKER)
    if os.path.exists(marker):
        with open(marker) as f:
            recorded = json.load(f)
        found = recorded["shards"]
        if job.resume and not job.overwrite and recorded.get("layout") != layout:
            raise ConfigError(
                f"output {job.output!r} was routed from input cut into other pieces (its "
                "files or row groups changed, or another version of streamrnn routed it), "
                "so its routed rows cannot be resumed; pass overwrite=True to start again"
            )
        if not job.resume and not job.overwrite:
            raise ConfigError(
                f"output {job.output!r} holds a backfill on Dask already; pass resume=True to "
                "go on with it, or overwrite=True to start again"
            )
        if job.overwrite:
            shutil.rmtree(job.output)
        elif shards is not None and shards != found:
            raise ConfigError(
                f"output {job.output!r} was split into {found} shards, not {shards}; resume "
                f"with shards={found}"
            )
        else:
            return found
    elif os.path.isdir(job.output) and os.listdir(job.output):
        raise ConfigError(
            f"output {job.output!r} is not empty and holds no backfill on Dask; choose an "
            "empty or new folder"
        )
    shards = default if shards is None else shards
    os.makedirs(job.output, exist_ok=True)
    record = json.dumps({"shards": shards, "layout": layout}).encode()
    checkpoint.write_atomic(marker, lambda f: f.write(record))
    return shards


def run(job, client, shards=None, out=None):
    """Run a backfill :class:`~streamrnn.backfill.Job` on the workers of a Dask
    ``client`` (see the module's text); returns the summary a local run gives.

    ``shards`` defaults to twice the cluster's worker threads.
    """
    from .runner import _report_folder, settled

    start = time.perf_counter()
    job = checked(job)
    if job.key is None:  # the key the local job would infer
        job = dataclasses.replace(job, key=_inferred_key(job) or None)
    _refuse(job)
    if shards is not None and (isinstance(shards, bool) or not isinstance(shards, int)
                               or shards < 1):  # fmt: skip
        raise ConfigError(f"shards must be a positive integer, got {shards!r}")
    job, model, relative = settled(job)
    report = _report_folder(job)  # checked before anything is written
    one_file = job.format in ("csv", "ipc")
    pieces = [] if one_file else _pieces(job.input)  # before anything is written: it may refuse
    layout = _layout(job, pieces)
    shards = _claim(job, shards, 2 * max(1, sum(client.nthreads().values())), layout)
    route_dir = os.path.join(job.output, ROUTE)
    running = []
    try:
        merged = _route_and_run(job, client, shards, relative, model, pieces, route_dir, out,
                                running)  # fmt: skip
    except BaseException:  # stop what waits to run for this job (a task running goes on)
        client.cancel(running)
        raise
    summary = _summary(job, merged, time.perf_counter() - start, shards)
    if report is not None and merged["books"]:
        summary["report"] = str(_report(job, merged, summary, report))
    return summary


def _route_and_run(job, client, shards, relative, model, pieces, route_dir, out, running):
    """The route and run stages of :func:`run` (``running`` collects their futures);
    returns the shards' results, merged."""
    from distributed import wait

    if job.format in ("csv", "ipc"):
        future = client.submit(route_file, job, shards, route_dir, pure=False)
        running.append(future)
        rows = future.result()
        _say(out, f"routed {rows:,} rows of {job.input} into {shards} shards")
    else:
        columns = _columns_read(job)
        routed = [
            client.submit(
                route, i, file, groups, columns, first, job.key, shards, route_dir, pure=False
            )  # fmt: skip
            for i, (file, groups, first) in enumerate(pieces)
        ]
        running.extend(routed)
        rows = sum(client.gather(routed))
        groups = sum(len(p[1]) for p in pieces)
        _say(out, f"routed {rows:,} rows of {groups} row groups ({len(pieces)} tasks) into "
                  f"{shards} shards")  # fmt: skip
    _warm(client, model.cell if model is not None else job.cell, job.dtype, job.learn)
    jobs = [_shard_job(job, relative, k, job.output) for k in range(shards)]
    jobs = [j for j in jobs if os.path.isdir(j.input)]  # shards that got keys
    futures = {client.submit(run_shard, j, pure=False): j for j in jobs}
    running.extend(futures)
    merged, left = _merge_start(), set(futures)
    shard_start = time.perf_counter()
    while left:
        try:
            finished = wait(left, timeout=PROGRESS_SECONDS, return_when="FIRST_COMPLETED").done
        except TimeoutError:  # none finished yet: say where they are
            finished = set()
        for future in finished:
            summary, kept = future.result()
            if summary is None:  # the shard's job stopped on an error: the job does
                raise kept
            _merge(merged, summary, kept)
        left -= finished
        now = merged["rows_in"] + sum(_checkpointed(futures[f].output) for f in left)
        rate = now / max(time.perf_counter() - shard_start, 1e-9)
        eta = f", ETA {(rows - now) / rate:,.0f} s" if left and rate > 0 else ""
        _say(out, f"shards {len(futures) - len(left)}/{len(futures)}, rows {now:,}/{rows:,} "
                  f"(as checkpointed), {rate:,.0f} rows/s{eta}")  # fmt: skip
    return merged


class _Books:
    """The shards' report books as one for the report: their sampled series (the first
    ``plot_series`` of the shards in shard order) and no learning curve, which has no
    row order across shards."""

    def __init__(self, books, plot_series):
        self.band = books[0].band
        self.books, self.plot_series = books, plot_series

    def curve(self):
        return pd.DataFrame()

    def sample_frames(self):
        frames = {}
        for book in self.books:
            for key, frame in book.sample_frames().items():
                if len(frames) < self.plot_series:
                    frames[key] = frame
        return frames


def _report(job, merged, summary, folder):
    from types import SimpleNamespace

    from .runner import _report as write

    books = _Books(merged["books"], job.plot_series)
    state = SimpleNamespace(book=books, feed=SimpleNamespace(schema=merged["schema"]))
    return write(job, state, summary, folder)


#: Seconds between two progress lines while shards run (the shards' rows are read from
#: their checkpoints: ``checkpoint_seconds`` sets how fresh they are).
PROGRESS_SECONDS = 10.0


def _checkpointed(folder):
    """Input rows a shard has checkpointed (0 before its first checkpoint)."""
    try:
        return checkpoint.read_header(os.path.join(folder, CHECKPOINT))["rows_in"]
    except (OSError, ValueError, KeyError, StreamrnnError):
        return 0


#: The kernels this process has compiled or loaded for shards: ``(cell, dtype, modes)``.
_WARM = set()


def _compile(cell, dtype, modes):
    """Compile (or load) the kernels a shard runs, on a worker, once a process; returns
    nothing."""
    import warnings

    from ..compiling import compile as compile_kernels

    if (cell, dtype, modes) in _WARM:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the compile notices: one per worker is noise
        compile_kernels(cells=(cell,), dtypes=(dtype,), modes=modes)
    _WARM.add((cell, dtype, modes))


def _warm(client, cell, dtype, learn):
    """Have the kernels compiled once per machine before the shards start: by one worker
    of each host first, then the others load them from the cache they share there (one
    Python environment, or one ``NUMBA_CACHE_DIR``). Compiling them in several
    processes of a machine at once would spend its cores on the same work."""
    from ..core.cells import CELLS

    family = CELLS[cell].family if cell in CELLS else cell
    modes = ("inference", "per_key") if learn else ("inference",)
    hosts = {}
    for address, info in client.scheduler_info()["workers"].items():
        hosts.setdefault(info.get("host"), []).append(address)
    first = [addresses[0] for addresses in hosts.values()]
    rest = [a for addresses in hosts.values() for a in addresses[1:]]
    for workers in (first, rest):
        if workers:
            client.run(_compile, family, dtype, modes, workers=workers)


def _say(out, text):
    if out is not None:
        out.write(text + "\n")
        out.flush()


def _merge_start():
    return {"rows_in": 0, "rows_out": 0, "series": 0, "parts": 0, "resumed_at": 0,
            "counts": {}, "scorer": None, "books": [], "schema": None}  # fmt: skip


_COUNTS = ("windows", "updates", "skipped", "labels")


def _merge(merged, summary, kept):
    scorer = kept["scorer"]
    if kept["book"] is not None:
        merged["books"].append(kept["book"])
        merged["schema"] = kept["schema"]
    for name in ("rows_in", "rows_out", "series", "parts", "resumed_at"):
        merged[name] += summary.get(name, 0)
    for name in _COUNTS:
        if name in summary:
            merged["counts"][name] = merged["counts"].get(name, 0) + summary[name]
    if scorer is not None:
        if merged["scorer"] is None:
            merged["scorer"] = scorer
        else:
            merged["scorer"].merge(scorer)
    for name in ("inputs", "log1p_targets"):  # the same in every shard
        with contextlib.suppress(KeyError):
            merged[name] = summary[name]


def _summary(job, merged, seconds, shards):
    summary = {name: merged[name] for name in ("rows_in", "rows_out", "series")}
    rows = merged["rows_in"] - merged["resumed_at"]
    summary.update(seconds=seconds, rows_per_s=rows / seconds if seconds > 0 else math.nan,
                   resumed_at=merged["resumed_at"], parts=merged["parts"])  # fmt: skip
    scorer = merged["scorer"]
    if scorer is not None and scorer._ready:
        summary.update(scorer.figures())
    summary.update(merged["counts"])
    summary["output"] = job.output
    summary["shards"] = shards
    for name in ("inputs", "log1p_targets"):
        if name in merged:
            summary[name] = merged[name]
    return summary
