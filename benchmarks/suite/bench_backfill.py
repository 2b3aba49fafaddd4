"""The backfill job end to end (``streamrnn.backfill.run``): a Parquet file in, a
GRU (H=64) forecasting the next f0 of every series, a Parquet dataset out.

Data: sensors interleaved by time, 8 float32 features (``sensor_table``).
Inference, and prequential learning (Adam lr 1e-3, MSE, TBPTT (32, 32),
horizon 1). Inputs are written and the kernels loaded before the timing; every
call writes to a new output folder. ``benchmarks/backfill_compare.py`` runs
1,000 series x 10,000 rows against PyTorch and pandas.
"""

import itertools
import os
import shutil
import tempfile

import pyarrow.parquet as pq

from streamrnn.backfill import Job, run

from .common import sensor_table

FEATURES = [f"f{j}" for j in range(8)]


def write(path, series, steps, seed=0):
    table = sensor_table(series * steps, series, len(FEATURES), seed=seed)
    pq.write_table(table, path, row_group_size=100_000)
    return os.path.abspath(path)


def job(path, out, learn, chunk_rows):
    return Job(
        input=path, output=out, key="sensor", time="time", features=FEATURES, targets=["f0"],
        learn=learn, cell="gru", hidden=64, layers=1, dtype="float32", seed=0, lr=1e-3,
        tbptt=(32, 32), horizon=1, chunk_rows=chunk_rows, checkpoint_rows=None,
        checkpoint_seconds=None, report=None, progress="none",
    )  # fmt: skip


class _Folders:
    """A temporary folder, a fresh output folder inside it per call, and the
    kernels loaded on a tiny input."""

    def make_folders(self, learn_too):
        self.tmp = tempfile.mkdtemp(prefix="bench-backfill-")
        self.count = itertools.count()
        warm = write(os.path.join(self.tmp, "warm.parquet"), 4, 96, seed=1)
        for learn in (False, True) if learn_too else (False,):
            run(job(warm, self.out(), learn, 64))

    def out(self):
        return os.path.join(self.tmp, f"out-{next(self.count)}")

    def teardown(self, *params):
        shutil.rmtree(self.tmp, ignore_errors=True)


class Backfill(_Folders):
    """100 series x 1,000 rows (100,000 rows) in chunks of 20,000 rows."""

    number = 1
    timeout = 300
    chunk = 20_000

    def setup(self):
        self.make_folders(learn_too=True)
        self.path = write(os.path.join(self.tmp, "in.parquet"), 100, 1000)

    def time_inference(self):
        run(job(self.path, self.out(), False, self.chunk))

    def time_learning(self):
        run(job(self.path, self.out(), True, self.chunk))


class BackfillPeakMemory(_Folders):
    """Inference in chunks of 5,000 rows over 50 series x 1,000 rows (1x) and
    x 10,000 rows (10x): memory follows the chunk, so the peak should hardly
    grow. asv's figure is the whole process's peak RSS, imports included."""

    params = [1, 10]
    param_names = ["scale"]
    chunk = 5_000
    timeout = 300

    def setup_cache(self):
        return {s: write(f"backfill-{s}x.parquet", 50, s * 1000, seed=s) for s in (1, 10)}

    def setup(self, paths, scale):
        self.make_folders(learn_too=False)

    def peakmem_inference(self, paths, scale):
        summary = run(job(paths[scale], self.out(), False, self.chunk))
        assert summary["rows_out"] == scale * 50_000
