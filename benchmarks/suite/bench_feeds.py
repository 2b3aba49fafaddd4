"""Feeding: rows per second from Arrow and Parquet into chunks, and peak memory
streaming Parquet against pandas reading the whole file.

Data: 1,000 string keys ("sensor-0000".."sensor-0999"), a timestamp column and
8 float32 features; at each time step every key reports once, in a fresh
random order. Files are written once per class by ``setup_cache`` (in a
separate process, into asv's temporary directory, removed after the run), so
that the memory benchmarks measure reading only. Arrow runs on one core.
"""

import os
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import feeds

from .common import sensor_table

KEYS = 1_000
FEATURES = 8


def table(n, keys=KEYS, seed=0):
    return sensor_table(n, keys, FEATURES, seed)


def write(n, path, row_group, seed=0):
    pq.write_table(table(n, seed=seed), path, row_group_size=row_group)
    return os.path.abspath(path)


def one_core():
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)


def warm():
    """Load the compiled kernels for these column types, outside the measurement."""
    for _ in feeds.iter_arrow(table(2 * KEYS, seed=1), rows=KEYS):
        pass


def consume(chunks):
    n = 0
    for chunk in chunks:
        n += len(chunk)
    return n


class FeedThroughput:
    """1,000,000 rows into chunks of 65,536 rows, from an Arrow table or a Parquet file.

    Target: 5,000,000 rows/s or more on one core (``track_rows_per_second``).
    """

    params = ["arrow", "parquet"]
    param_names = ["source"]
    rows = 1_000_000
    chunk = 65_536
    timeout = 120

    def setup_cache(self):
        return write(self.rows, "throughput.parquet", row_group=self.chunk)

    def setup(self, path, source):
        one_core()
        self.path = path
        self.table = pq.read_table(path) if source == "arrow" else None
        warm()

    def run(self, source):
        if source == "arrow":
            return consume(feeds.iter_arrow(self.table, rows=self.chunk))
        return consume(
            feeds.iter_parquet(self.path, rows=self.chunk, threads=False, batch_rows=self.chunk)
        )

    def time_chunks(self, path, source):
        self.run(source)

    def track_rows_per_second(self, path, source):
        seconds = []
        for _ in range(3):
            t0 = time.perf_counter()
            n = self.run(source)
            seconds.append(time.perf_counter() - t0)
        assert n == self.rows
        return n / float(np.median(seconds))

    track_rows_per_second.unit = "rows/s"


class FeedPeakMemory:
    """Streaming Parquet in chunks of 200,000 rows vs pandas.read_parquet of the
    whole file, for files of 1x and 10x the chunk (row groups of one chunk).

    asv's figure is the whole process's peak RSS, imports included.
    """

    params = [1, 10]
    param_names = ["scale"]
    chunk = 200_000
    timeout = 120

    def setup_cache(self):
        return {s: write(s * self.chunk, f"x{s}.parquet", row_group=self.chunk) for s in (1, 10)}

    def setup(self, paths, scale):
        one_core()
        self.path = paths[scale]
        warm()

    def peakmem_stream(self, paths, scale):
        chunks = feeds.iter_parquet(
            self.path, rows=self.chunk, threads=False, batch_rows=self.chunk
        )
        assert consume(chunks) == scale * self.chunk

    def peakmem_pandas(self, paths, scale):
        assert len(pd.read_parquet(self.path)) == scale * self.chunk
