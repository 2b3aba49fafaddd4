"""feeds against pandas: rows per second into chunks, and peak memory streaming Parquet.

Throughput, in this process, on one core (Arrow's pools at one thread,
``threads=False``): median of interleaved repeats of

* ``feeds.iter_parquet`` -> chunks (the file read as it streams),
* ``feeds.iter_arrow`` -> chunks (an Arrow table in memory),
* the pandas peers: ``pandas.read_parquet`` of the whole file (and
  ``Table.to_pandas`` for the in-memory table), then the same float32
  ``(N, 8)`` matrix, key codes and times, the obvious pandas way.

Each is given in rows/s, as a ratio to the 5 M rows/s target, to its peer and
to ``pandas.read_parquet``.

Peak memory: each case in a fresh process, ``ru_maxrss`` after the work minus
``ru_maxrss`` after the imports and a warm-up, for datasets of 1x and 10x the
chunk (row groups of one chunk): ``iter_parquet(rows=chunk, batch_rows=chunk,
threads=False)`` against ``pandas.read_parquet`` of the whole file. Streaming
is bounded when the 10x peak is at most ``BOUND`` times the 1x peak.

Prints tables and, last, one JSON document with every figure.

    python benchmarks/feeds_compare.py
    python benchmarks/feeds_compare.py --quick
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from suite.common import median_times, sensor_table

import feeds

TARGET = 5_000_000  # rows/s on one core
BOUND = 2.0  # streaming: peak at 10x the chunk at most this many times the peak at 1x
FEATURES = [f"f{j}" for j in range(8)]


def one_core():
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)


def consume(chunks):
    n = 0
    for chunk in chunks:
        n += len(chunk)
    return n


def from_pandas(df):
    """What a chunk holds, from a DataFrame: float32 (N, 8) inputs, key codes, times."""
    x = np.ascontiguousarray(df[FEATURES].to_numpy(dtype=np.float32))
    keys = df["sensor"].astype("category").cat.codes.to_numpy()
    times = df["time"].to_numpy()
    assert len(keys) == len(times) == len(x)
    return len(x)


def throughput(rows, keys, chunk, repeats, tmp):
    one_core()
    table = sensor_table(rows, keys)
    path = os.path.join(tmp, "throughput.parquet")
    pq.write_table(table, path, row_group_size=chunk)
    cases = {
        "iter_parquet": lambda: consume(
            feeds.iter_parquet(path, rows=chunk, threads=False, batch_rows=chunk)
        ),
        "iter_arrow": lambda: consume(feeds.iter_arrow(table, rows=chunk)),
        "pandas.read_parquet": lambda: from_pandas(pd.read_parquet(path)),
        "Table.to_pandas": lambda: from_pandas(table.to_pandas()),
    }
    for name, fn in cases.items():  # compiled kernels loaded, files cached
        n = fn()
        assert n == rows, (name, n)
    seconds = dict(zip(cases, median_times(list(cases.values()), repeats)))
    peers = {"iter_parquet": "pandas.read_parquet", "iter_arrow": "Table.to_pandas"}
    results = []
    for name, t in seconds.items():
        rate = rows / t
        peer = peers.get(name)
        results.append(
            dict(
                case=name,
                source="parquet" if "parquet" in name else "arrow",
                seconds=t,
                rows_per_s=rate,
                vs_target=round(rate / TARGET, 2),
                peer=peer,
                vs_peer=None if peer is None else round(seconds[peer] / t, 2),
                vs_read_parquet=round(seconds["pandas.read_parquet"] / t, 2) if peer else None,
                met=bool(rate >= TARGET) if peer else None,
            )
        )
    return results


CHILD = r"""
import json, resource, sys
import numpy as np, pandas as pd, pyarrow as pa
import feeds

pa.set_cpu_count(1)
pa.set_io_thread_count(1)
mode, path, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3])


def maxrss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


warm = pa.table({"sensor": ["a", "b"], "time": pa.array(np.zeros(2, "datetime64[ns]")),
                 **{f"f{j}": pa.array(np.zeros(2, np.float32)) for j in range(8)}})
for _ in feeds.iter_arrow(warm):
    pass
base, now = maxrss(), rss()
pool = pa.default_memory_pool()
pool_base = pool.max_memory()
if mode == "stream":
    n = 0
    for c in feeds.iter_parquet(path, rows=chunk, batch_rows=chunk, threads=False):
        n += len(c)
else:
    n = len(pd.read_parquet(path))
print(json.dumps(dict(rows=n, base_mib=base, rss_at_base_mib=now, peak_mib=maxrss() - base,
                      arrow_pool_mib=(pool.max_memory() - pool_base) / 2**20,
                      pool=pool.backend_name)))
"""


def child(mode, path, chunk):
    # A process exec'd straight from this one starts with this one's peak RSS
    # in its ru_maxrss (Linux keeps the high-water mark across exec); started
    # from a shell, it counts only its own.
    out = subprocess.run(
        ["sh", "-c", '"$@"; exit $?', "sh", sys.executable, "-c", CHILD, mode, path, str(chunk)],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise RuntimeError(f"{mode} {path}: exit {out.returncode}\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def memory(keys, chunk, repeats, tmp):
    paths = {}
    for scale in (1, 10):
        paths[scale] = os.path.join(tmp, f"memory-{scale}x.parquet")
        pq.write_table(
            sensor_table(scale * chunk, keys, seed=scale), paths[scale], row_group_size=chunk
        )
    runs = {}
    for _ in range(repeats):  # interleaved, a fresh process each
        for mode in ("stream", "pandas"):
            for scale in (1, 10):
                r = child(mode, paths[scale], chunk)
                assert r["rows"] == scale * chunk, r
                runs.setdefault((mode, scale), []).append(r)
    gap = max(r["base_mib"] - r["rss_at_base_mib"] for rs in runs.values() for r in rs)
    if gap > 8:
        print(f"  warning: a child's peak RSS before the work exceeded its RSS by {gap:.0f} MiB")
    results = []
    for mode in ("stream", "pandas"):
        peak = {s: float(np.median([r["peak_mib"] for r in runs[mode, s]])) for s in (1, 10)}
        pool = {s: float(np.median([r["arrow_pool_mib"] for r in runs[mode, s]])) for s in (1, 10)}
        base = float(np.median([r["base_mib"] for r in runs[mode, 1] + runs[mode, 10]]))
        ratio = peak[10] / peak[1] if peak[1] > 0 else None
        results.append(
            dict(
                case="iter_parquet" if mode == "stream" else "pandas.read_parquet",
                chunk_rows=chunk,
                rows_1x=chunk,
                rows_10x=10 * chunk,
                peak_1x_mib=round(peak[1], 1),
                peak_10x_mib=round(peak[10], 1),
                ratio_10x_1x=None if ratio is None else round(ratio, 2),
                arrow_pool_1x_mib=round(pool[1], 1),
                arrow_pool_10x_mib=round(pool[10], 1),
                baseline_mib=round(base, 1),
                bounded=bool(ratio is not None and ratio <= BOUND) if mode == "stream" else None,
                file_mib_10x=round(os.path.getsize(paths[10]) / 2**20, 1),
            )
        )
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows for throughput")
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=65_536, help="chunk rows for throughput")
    parser.add_argument(
        "--mem-chunk", type=int, default=100_000, help="chunk rows for memory (1x dataset)"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer repeats")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.mem_chunk, args.repeats = 200_000, 20_000, 3
    with tempfile.TemporaryDirectory() as tmp:
        speed = throughput(args.rows, args.keys, args.chunk, args.repeats, tmp)
        print(
            f"throughput: {args.rows:,} rows, {args.keys:,} keys, 8 float32 features, "
            f"chunks of {args.chunk:,} rows, one core, median of {args.repeats}"
        )
        for r in speed:
            rate = r["rows_per_s"] / 1e6
            line = f"  {r['case']:20s} {rate:7.2f} M rows/s  x{r['vs_target']:5.2f} target"
            if r["peer"]:
                mark = "ok" if r["met"] else "MISSED"
                line += f"  x{r['vs_peer']:5.2f} vs {r['peer']}  ({mark})"
                if r["peer"] != "pandas.read_parquet":
                    line += f"; x{r['vs_read_parquet']:.2f} vs pandas.read_parquet"
            print(line, flush=True)
        mem_repeats = 1 if args.quick else 3
        mem = memory(args.keys, args.mem_chunk, mem_repeats, tmp)
        print(
            f"peak memory above the imports (MiB): chunks of {args.mem_chunk:,} rows, row "
            f"groups of one chunk, a fresh process each, median of {mem_repeats}; "
            f"bounded: 10x/1x <= {BOUND}"
        )
        for r in mem:
            ratio = "-" if r["ratio_10x_1x"] is None else f"{r['ratio_10x_1x']:.2f}"
            mark = {None: "", True: "  bounded", False: "  NOT bounded"}[r["bounded"]]
            print(
                f"  {r['case']:20s} 1x {r['peak_1x_mib']:7.1f}  10x {r['peak_10x_mib']:7.1f}  "
                f"10x/1x {ratio:>5s}  (Arrow pool 1x {r['arrow_pool_1x_mib']:.1f}, "
                f"10x {r['arrow_pool_10x_mib']:.1f}){mark}",
                flush=True,
            )
    meta = dict(
        machine=platform.machine(),
        processor=platform.processor(),
        cpus=os.cpu_count(),
        python=platform.python_version(),
        pyarrow=pa.__version__,
        pandas=pd.__version__,
        numpy=np.__version__,
        rows=args.rows,
        keys=args.keys,
        chunk=args.chunk,
        mem_chunk=args.mem_chunk,
        features=len(FEATURES),
        dtype="float32",
        target_rows_per_s=TARGET,
        bound_10x_over_1x=BOUND,
    )
    print(json.dumps(dict(meta=meta, throughput=speed, memory=mem), indent=1))


if __name__ == "__main__":
    main()
