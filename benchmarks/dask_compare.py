"""The backfill on a Dask LocalCluster against the same job run locally, same machine.

The job: the input of ``backfill_compare.py`` (``--series x --steps`` rows, a string
key "sensor", a timestamp, 8 float32 features, row groups of 100,000 rows; 10 M
rows by default) through a GRU (H=64, a linear head) forecasting the next f0 of
every series, inference from a fresh model. The local job uses Numba's threads on
every core; the cluster has ``--workers`` worker processes of one thread each (and
one Numba thread each, so that they do not share cores twice). Kernels are
compiled on a tiny input first, by the driver and by every worker, so compiling
is not timed.

Figures: rows/s of each (median of ``--repeats``; a local run and a Dask run in
turn, so that the machine's slow spells fall on both), the median of each pair's
ratio (the target is 0.8: what splitting by key costs on this machine) and every
pair's, the bytes the routing wrote; and each worker's peak
memory (``ru_maxrss``) after a run at ``--mem-series x --mem-steps`` rows and
at ten times the steps, each on a fresh cluster. Prints progress and, last, one
JSON document.

    python benchmarks/dask_compare.py              # 1,000 series x 10,000 rows
    python benchmarks/dask_compare.py --quick      # seconds, a smoke test
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np
from backfill_compare import FEATURES, TARGET, write_input

from streamrnn.backfill import Job, run
from streamrnn.backfill.distributed import ROUTE


def job(path, out, chunk_rows):
    return Job(str(path), str(out), key="sensor", time="time", features=FEATURES,
               targets=[TARGET], hidden=64, chunk_rows=chunk_rows, report=None,
               progress="none", checkpoint_seconds=None, lags="none", scale="none")  # fmt: skip


def cluster(workers):
    import distributed

    made = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                    dashboard_address=None,
                                    env={"NUMBA_NUM_THREADS": "1"})  # fmt: skip
    return made, distributed.Client(made)


def folder_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, names in os.walk(path) for f in names)


def timed(fn, repeats, clean):
    times = []
    for _ in range(repeats):
        clean()
        start = time.perf_counter()
        summary = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), summary


def peak_per_worker(path, tmp, workers, chunk_rows):
    """Each worker's peak resident memory (MiB) after one distributed run on ``path``."""
    import resource

    made, client = cluster(workers)
    with made, client:
        run(job(path, tmp / "peak", chunk_rows), client=client)
        peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    shutil.rmtree(tmp / "peak", ignore_errors=True)
    return sorted(v / 1024 for v in peaks.values())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=1_000)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shards", type=int, default=None)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mem-series", type=int, default=200)
    parser.add_argument("--mem-steps", type=int, default=2_000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.series, args.steps, args.repeats = 50, 400, 1
        args.mem_series, args.mem_steps = 20, 100
    warnings.simplefilter("ignore")  # an untrained model's notice, compile notices
    tmp = __import__("pathlib").Path(tempfile.mkdtemp())
    try:
        tiny, data = tmp / "tiny.parquet", tmp / "input.parquet"
        write_input(tiny, 20, 50)
        rows = write_input(data, args.series, args.steps)
        print(f"input: {rows:,} rows", file=sys.stderr)
        run(job(tiny, tmp / "warm", args.chunk_rows))
        pairs = []  # (local seconds, Dask seconds), one run of each in turn
        made, client = cluster(args.workers)
        with made, client:
            run(job(tiny, tmp / "warm-dask", args.chunk_rows), client=client)
            for _ in range(args.repeats):
                local_s, _ = timed(
                    lambda: run(job(data, tmp / "local", args.chunk_rows)), 1,
                    lambda: shutil.rmtree(tmp / "local", ignore_errors=True),
                )  # fmt: skip
                dask_s, summary = timed(
                    lambda: run(job(data, tmp / "dask", args.chunk_rows), client=client,
                                shards=args.shards, out=sys.stderr),
                    1, lambda: shutil.rmtree(tmp / "dask", ignore_errors=True),
                )  # fmt: skip
                pairs.append((local_s, dask_s))
                print(f"local: {rows / local_s:,.0f} rows/s, dask: {rows / dask_s:,.0f} rows/s",
                      file=sys.stderr)  # fmt: skip
        routed = folder_bytes(tmp / "dask" / ROUTE)
        local_s = statistics.median(p[0] for p in pairs)
        dask_s = statistics.median(p[1] for p in pairs)
        small, large = tmp / "mem1.parquet", tmp / "mem10.parquet"
        write_input(small, args.mem_series, args.mem_steps)
        write_input(large, args.mem_series, 10 * args.mem_steps)
        peaks = {f"{n}x": peak_per_worker(p, tmp, args.workers, args.chunk_rows)
                 for n, p in ((1, small), (10, large))}  # fmt: skip
        out = {
            "rows": rows,
            "input_bytes": os.path.getsize(data),
            "routed_bytes": routed,
            "local_rows_per_s": rows / local_s,
            "dask_rows_per_s": rows / dask_s,
            "ratio": statistics.median(a / b for a, b in pairs),
            "ratios": [a / b for a, b in pairs],
            "target_ratio": 0.8,
            "shards": summary["shards"],
            "workers": args.workers,
            "worker_peak_mib": peaks,
            "mem_rows": {"1x": args.mem_series * args.mem_steps,
                         "10x": 10 * args.mem_series * args.mem_steps},  # fmt: skip
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "numpy": np.__version__},  # fmt: skip
            "repeats": args.repeats,
        }
        print(json.dumps(out, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
