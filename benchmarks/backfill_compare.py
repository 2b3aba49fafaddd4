"""The backfill job end to end, against the same job written the obvious way with
PyTorch and pandas.

The job: a Parquet file of ``series x steps`` rows (a string key "sensor", a
timestamp "time", 8 float32 features f0..f7, interleaved by time like
``suite.common.sensor_table``, row groups of about 100,000 rows) goes through a
GRU (H=64, one layer, a linear head) that forecasts the next f0 of every
series, each series carrying its state; the forecasts are written as Parquet
(sensor, time, f0_forecast). Inference, and prequential learning (every row
forecast before it is learned from: Adam lr 1e-3, MSE, TBPTT (32, 32), horizon 1).

* streamrnn: ``streamrnn.backfill.run(Job(...))``, Parquet in to Parquet out,
  chunks of ``--chunk-rows`` rows, numba's default threads (``--numba-threads``
  sets them); the kernels are loaded on a tiny input first, so compiling them
  is not timed.
* PyTorch and pandas: ``pd.read_parquet``, ``groupby("sensor")``, and for each
  series a loop carrying its hidden state: inference runs ``torch.nn.GRU`` and
  ``torch.nn.Linear`` under ``no_grad`` over pieces of ``--chunk-rows`` rows;
  learning takes 32 steps from the detached state, the MSE against the next f0,
  ``backward()`` and one Adam step of the one shared model, keeping the
  forecasts made before the update; then a DataFrame and ``to_parquet``. Both
  start from the same weights (the inference outputs are compared). PyTorch
  gets the faster of 1 thread and every core (timed on a small piece first;
  ``--torch-threads`` sets it): on a busy machine its threads can spend more
  waiting on each other than computing. It is too slow for the whole input,
  so it runs end to end on a file of the first ``--torch-series`` (inference)
  and ``--torch-learn-series`` (learning) series, all rows of each; its rows/s
  is that file's rows over its time.

Ratios are ``streamrnn rows/s / PyTorch rows/s`` from medians (``--repeats``
for streamrnn, ``--torch-repeats`` for PyTorch); the target is 10x.

Peak memory: the backfill (inference) in a fresh process on inputs of 1x and
10x the rows (``--mem-series`` series of ``--mem-steps`` and ten times as many
steps), same chunk size; each child prints its own ``ru_maxrss`` after the
imports and a warm-up on a tiny input, and after the job. For contrast, the
same for ``pandas.read_parquet`` of the whole input. The job is bounded when
its 10x peak (above the warm-up) is at most ``BOUND`` times its 1x peak.

Prints progress and, last, one JSON document with every figure.

    python benchmarks/backfill_compare.py               # 1,000 series x 10,000 rows
    python benchmarks/backfill_compare.py --quick       # seconds, a smoke test
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

import numba
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from suite.common import median_times, sensor_table

import streamrnn

FEATURES = [f"f{j}" for j in range(8)]
TARGET = "f0"
FORECAST = f"{TARGET}_forecast"  # the output column, named as streamrnn.backfill names it
H = 64
K = 32
LR = 1e-3
SPEEDUP = 10  # target: streamrnn rows/s over PyTorch rows/s, inference and learning
BOUND = 2.0  # backfill: peak at 10x the input at most this many times the peak at 1x


# -- input -------------------------------------------------------------------
def write_input(path, series, steps, row_group=100_000, seed=0):
    """``series x steps`` rows, interleaved by time, as Parquet; returns rows written.

    Written a row group at a time, so that a large input never sits in memory.
    """
    block = max(1, row_group // series)
    writer = None
    try:
        for start in range(0, steps, block):
            n = min(block, steps - start)
            table = sensor_table(n * series, series, len(FEATURES), seed=seed + start)
            step = np.repeat(np.arange(start, start + n, dtype=np.int64), series)
            times = np.datetime64("2024-01-01T00:00:00", "ns") + step.astype("timedelta64[s]")
            table = table.set_column(table.schema.get_field_index("time"), "time", pa.array(times))
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=row_group)
    finally:
        if writer is not None:
            writer.close()
    return series * steps


def first_series(path, out, n, row_group=100_000):
    """The rows of the first ``n`` series of ``path``, in the same order, as Parquet."""
    names = [f"sensor-{k:04d}" for k in range(n)]
    table = pq.read_table(path, filters=[("sensor", "in", names)])
    pq.write_table(table, out, row_group_size=row_group)
    return table.num_rows


class Outputs:
    """A fresh, not yet existing output folder for every call."""

    def __init__(self, root, name):
        self.root, self.name, self.count, self.last = root, name, 0, None

    def __call__(self):
        self.count += 1
        self.last = os.path.join(self.root, f"{self.name}-{self.count}")
        return self.last


# -- streamrnn ---------------------------------------------------------------
def job_kwargs(path, out, learn, chunk_rows):
    """The arguments of ``streamrnn.backfill.Job`` for this benchmark's job."""
    return dict(
        input=path, output=out, key="sensor", time="time", features=FEATURES,
        targets=[TARGET], learn=learn, cell="gru", hidden=H, layers=1, dtype="float32",
        seed=0, lr=LR, tbptt=(K, K), horizon=1, chunk_rows=chunk_rows,
        checkpoint_rows=None, checkpoint_seconds=None, report=None, progress="none",
    )  # fmt: skip


def backfill():
    """``(Job, run)`` from ``streamrnn.backfill``, or None where it is missing."""
    try:
        from streamrnn.backfill import Job, run
    except ImportError as exc:
        print(f"  streamrnn.backfill unavailable ({exc}): timing PyTorch only", flush=True)
        return None
    return Job, run


def run_ours(api, path, out, learn, chunk_rows):
    Job, run = api
    return run(Job(**job_kwargs(path, out, learn, chunk_rows)))


def warm_ours(api, tmp):
    """Load (or compile, the first time) the kernels both jobs use, on a tiny input."""
    path = os.path.join(tmp, "warm.parquet")
    write_input(path, 4, 3 * K, seed=99)
    for learn in (False, True):
        run_ours(api, path, os.path.join(tmp, f"warm-{learn}"), learn, 64)


# -- PyTorch and pandas --------------------------------------------------------
def torch_model():
    """The initial network of the job (seed 0) as PyTorch modules, and Adam over them."""
    rnn, head = streamrnn.GRU(len(FEATURES), H, output_size=1, dtype="float32", seed=0).to_torch()
    opt = torch.optim.Adam(list(rnn.parameters()) + list(head.parameters()), lr=LR)
    return rnn, head, opt


def torch_job(path, out, learn, chunk_rows, threads):
    """The job written the obvious way, on ``threads`` threads; returns the rows written."""
    rnn, head, opt = torch_model()
    torch.set_num_threads(threads)  # numba's OpenMP layer resets the count PyTorch reads
    df = pd.read_parquet(path)
    frames = []
    for key, group in df.groupby("sensor", sort=False):
        x = torch.tensor(group[FEATURES].to_numpy(np.float32))
        if learn:
            forecast = torch_learn_series(rnn, head, opt, x)
        else:
            forecast = torch_infer_series(rnn, head, x, chunk_rows)
        frames.append(
            pd.DataFrame(
                {"sensor": key, "time": group["time"].to_numpy(), FORECAST: forecast.numpy()}
            )
        )
    result = pd.concat(frames, ignore_index=True)
    os.makedirs(out)
    result.to_parquet(os.path.join(out, "part-0.parquet"), index=False)
    return len(result)


def torch_infer_series(rnn, head, x, chunk_rows):
    h = None
    pieces = []
    with torch.no_grad():
        for start in range(0, len(x), chunk_rows):
            y, h = rnn(x[start : start + chunk_rows], h)
            pieces.append(head(y)[:, 0])
    return torch.cat(pieces)


def torch_learn_series(rnn, head, opt, x):
    """TBPTT(32, 32) over one series: each row forecast before the update that
    learns from it; the last row has no label."""
    col = FEATURES.index(TARGET)
    label = x[1:, col]  # horizon 1: row t is labeled by the target of row t + 1
    h = None
    pieces = []
    for start in range(0, len(x), K):
        y, h = rnn(x[start : start + K], h)
        forecast = head(y)[:, 0]
        pieces.append(forecast.detach())
        target = label[start : start + K]
        if len(target):
            loss = torch.nn.functional.mse_loss(forecast[: len(target)], target)
            opt.zero_grad()
            loss.backward()
            opt.step()
        h = h.detach()
    return torch.cat(pieces)


def torch_threads(cores):
    """The faster of 1 and ``cores`` PyTorch threads for this job's work (one
    series' inference and 16 learning windows), and the seconds of each.

    A GRU over one series multiplies tiny matrices; on a busy machine, threads
    waiting on each other can cost PyTorch more than they give."""
    x = torch.from_numpy(np.random.default_rng(5).standard_normal((16 * K, 8), np.float32))
    seconds = {n: _thread_trial(n, x) for n in sorted({1, cores})}
    return min(seconds, key=seconds.get), seconds


def _thread_trial(n, x):
    rnn, head, opt = torch_model()
    torch.set_num_threads(n)
    torch_infer_series(rnn, head, x[:K], K)

    def work():
        torch_infer_series(rnn, head, x, len(x))
        torch_learn_series(rnn, head, opt, x)

    return median_times([work], 3)[0]


def forecast_gap(ours_out, peer_out, n_series):
    """Largest absolute difference between the two inference outputs on the
    series both ran (same initial weights: they should agree to float32
    rounding); None, with the reason, where they cannot be lined up."""
    try:
        names = [f"sensor-{k:04d}" for k in range(n_series)]
        ours = pd.read_parquet(ours_out, filters=[("sensor", "in", names)])
        peer = pd.read_parquet(peer_out)
        ours = ours.sort_values(["sensor", "time"], kind="stable")
        peer = peer.sort_values(["sensor", "time"], kind="stable")
        if len(ours) != len(peer):
            return None, f"rows differ: streamrnn {len(ours)}, pytorch {len(peer)}"
        a = ours[FORECAST].to_numpy(np.float64)
        b = peer[FORECAST].to_numpy(np.float64)
        return float(np.max(np.abs(a - b))), None
    except Exception as exc:  # a report, not a test: say why and go on
        return None, f"{type(exc).__name__}: {exc}"


# -- speed ---------------------------------------------------------------------
def speed(api, args, tmp, threads):
    path = os.path.join(tmp, "input.parquet")
    rows = write_input(path, args.series, args.steps, args.row_group)
    print(
        f"input: {args.series:,} series x {args.steps:,} rows = {rows:,} rows, "
        f"{os.path.getsize(path) / 2**20:.0f} MiB Parquet",
        flush=True,
    )
    if api is not None:
        warm_ours(api, tmp)
    return [
        workload(api, args, tmp, path, rows, False, args.torch_series, threads),
        workload(api, args, tmp, path, rows, True, args.torch_learn_series, threads),
    ]


def workload(api, args, tmp, path, rows, learn, n_peer, threads):
    """Inference or learning: streamrnn on the whole input, PyTorch on its first
    ``n_peer`` series; one JSON row."""
    name = "learning" if learn else "inference"
    n_peer = min(n_peer, args.series)
    peer_path = os.path.join(tmp, f"first-{n_peer}.parquet")
    peer_rows = first_series(path, peer_path, n_peer, args.row_group)
    ours_dirs = Outputs(tmp, f"ours-{name}")
    peer_dirs = Outputs(tmp, f"torch-{name}")
    summaries, used = [], set()

    def ours():
        summaries.append(run_ours(api, path, ours_dirs(), learn, args.chunk_rows))

    def peer():
        assert torch_job(peer_path, peer_dirs(), learn, args.chunk_rows, threads) == peer_rows
        used.add(torch.get_num_threads())

    row = dict(workload=name, rows=rows, series=args.series, steps=args.steps)
    if api is not None:
        (t_ours,) = median_times([ours], args.repeats)
        last = summaries[-1]
        assert last["rows_in"] == rows and last["rows_out"] == rows, last
        row.update(
            streamrnn_seconds=t_ours,
            streamrnn_rows_per_s=rows / t_ours,
            streamrnn_repeats=args.repeats,
            streamrnn_summary={k: last[k] for k in ("rows_in", "rows_out", "series",
                                                    "seconds", "rows_per_s")},
        )  # fmt: skip
        print(f"  streamrnn {name:9s} {rows / t_ours:12,.0f} rows/s", flush=True)
    (t_peer,) = median_times([peer], args.torch_repeats)
    row.update(
        pytorch_seconds=t_peer,
        pytorch_rows_per_s=peer_rows / t_peer,
        pytorch_repeats=args.torch_repeats,
        pytorch_threads=sorted(used),
        torch_series_timed=n_peer,
        torch_rows_timed=peer_rows,
    )
    print(
        f"  pytorch   {name:9s} {peer_rows / t_peer:12,.0f} rows/s "
        f"(first {n_peer:,} series, {peer_rows:,} rows)",
        flush=True,
    )
    if api is None:
        return row
    ratio = row["streamrnn_rows_per_s"] / row["pytorch_rows_per_s"]
    row.update(speedup=round(ratio, 2), target=SPEEDUP, met=bool(ratio >= SPEEDUP))
    mark = "ok" if ratio >= SPEEDUP else "MISSED"
    print(f"  {name:9s} x{ratio:7.2f}  (target x{SPEEDUP} {mark})", flush=True)
    if not learn:
        gap, why = forecast_gap(ours_dirs.last, peer_dirs.last, n_peer)
        row.update(forecast_max_abs_diff=gap, forecast_diff_note=why)
    return row


# -- memory --------------------------------------------------------------------
CHILD = r"""
import json, resource, sys


def maxrss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


mode, path, warm, out, job = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
if mode == "backfill":
    from streamrnn.backfill import Job, run

    kwargs = json.loads(job)
    kwargs["tbptt"] = tuple(kwargs["tbptt"])
    run(Job(**dict(kwargs, input=warm, output=out + "-warm")))
    base = maxrss()
    rows = run(Job(**dict(kwargs, input=path, output=out)))["rows_out"]
else:
    import pandas as pd

    pd.read_parquet(warm)
    base = maxrss()
    rows = len(pd.read_parquet(path))
print(json.dumps(dict(rows=rows, base_mib=base, peak_mib=maxrss())))
"""


def child(mode, path, warm, out, chunk_rows):
    # Started from a shell, so that its ru_maxrss counts only its own pages: a
    # process exec'd straight from this one starts with this one's peak.
    job = json.dumps(job_kwargs(path, out, False, chunk_rows))
    cmd = [sys.executable, "-c", CHILD, mode, path, warm, out, job]
    done = subprocess.run(["sh", "-c", '"$@"; exit $?', "sh", *cmd], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{mode} {path}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory(api, args, tmp):
    warm = os.path.join(tmp, "mem-warm.parquet")
    write_input(warm, 4, 3 * K, seed=99)
    paths, rows = {}, {}
    for scale in (1, 10):
        paths[scale] = os.path.join(tmp, f"mem-{scale}x.parquet")
        rows[scale] = write_input(
            paths[scale], args.mem_series, scale * args.mem_steps, args.row_group, seed=scale
        )
    modes = ("backfill", "pandas") if api is not None else ("pandas",)
    outs = Outputs(tmp, "mem")
    runs = {}
    for _ in range(args.mem_repeats):  # interleaved, a fresh process each
        for mode in modes:
            for scale in (1, 10):
                r = child(mode, paths[scale], warm, outs(), args.chunk_rows)
                assert r["rows"] == rows[scale], r
                runs.setdefault((mode, scale), []).append(r)
    results = []
    for mode in modes:
        peak = {s: float(np.median([r["peak_mib"] for r in runs[mode, s]])) for s in (1, 10)}
        base = {s: float(np.median([r["base_mib"] for r in runs[mode, s]])) for s in (1, 10)}
        above = {s: peak[s] - base[s] for s in (1, 10)}
        ratio = above[10] / above[1] if above[1] > 0 else None
        results.append(
            dict(
                case="streamrnn.backfill" if mode == "backfill" else "pandas.read_parquet",
                chunk_rows=args.chunk_rows if mode == "backfill" else None,
                rows_1x=rows[1],
                rows_10x=rows[10],
                series=args.mem_series,
                peak_1x_mib=round(peak[1], 1),
                peak_10x_mib=round(peak[10], 1),
                above_warm_1x_mib=round(above[1], 1),
                above_warm_10x_mib=round(above[10], 1),
                ratio_10x_1x=None if ratio is None else round(ratio, 2),
                ratio_10x_1x_total=round(peak[10] / peak[1], 2),
                warm_mib=round(float(np.median(list(base.values()))), 1),
                bounded=bool(ratio is not None and ratio <= BOUND) if mode == "backfill" else None,
                file_mib_1x=round(os.path.getsize(paths[1]) / 2**20, 1),
                file_mib_10x=round(os.path.getsize(paths[10]) / 2**20, 1),
            )
        )
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=10_000, help="rows per series")
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--row-group", type=int, default=100_000, help="Parquet row group rows")
    parser.add_argument("--repeats", type=int, default=3, help="streamrnn timings")
    parser.add_argument("--torch-repeats", type=int, default=1, help="PyTorch timings")
    parser.add_argument(
        "--torch-series", type=int, default=200, help="series PyTorch runs, inference"
    )
    parser.add_argument(
        "--torch-learn-series", type=int, default=50, help="series PyTorch runs, learning"
    )
    parser.add_argument(
        "--torch-threads", type=int, default=0, help="PyTorch threads (0: the faster of 1, all)"
    )
    parser.add_argument(
        "--numba-threads", type=int, default=0, help="streamrnn threads (0: numba's default)"
    )
    parser.add_argument("--mem-series", type=int, default=100)
    parser.add_argument("--mem-steps", type=int, default=10_000, help="rows per series at 1x")
    parser.add_argument("--mem-repeats", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    args = parser.parse_args()
    if args.quick:
        args.series, args.steps, args.chunk_rows, args.repeats = 50, 2000, 20_000, 2
        args.torch_series, args.torch_learn_series = 20, 10
        args.mem_series, args.mem_steps = 20, 5000
    cores = os.cpu_count()
    if args.numba_threads:
        numba.set_num_threads(args.numba_threads)
    if args.torch_threads:
        threads, calibration = args.torch_threads, None
    else:
        threads, calibration = torch_threads(cores)
        print(
            f"pytorch threads: {threads} ("
            + ", ".join(f"{n}: {t * 1e3:.0f} ms" for n, t in calibration.items())
            + ")",
            flush=True,
        )
    api = backfill()
    with tempfile.TemporaryDirectory() as tmp:
        results = speed(api, args, tmp, threads)
        print(
            f"peak memory, a fresh process each: {args.mem_series:,} series x "
            f"{args.mem_steps:,} and {10 * args.mem_steps:,} rows, chunks of "
            f"{args.chunk_rows:,} rows",
            flush=True,
        )
        mem = memory(api, args, tmp)
        for r in mem:
            ratio = "-" if r["ratio_10x_1x"] is None else f"{r['ratio_10x_1x']:.2f}"
            mark = {None: "", True: "  bounded", False: "  NOT bounded"}[r["bounded"]]
            print(
                f"  {r['case']:20s} 1x {r['peak_1x_mib']:7.1f}  10x {r['peak_10x_mib']:7.1f} "
                f"MiB; above the warm-up 1x {r['above_warm_1x_mib']:7.1f}  10x "
                f"{r['above_warm_10x_mib']:7.1f}  10x/1x {ratio}{mark}",
                flush=True,
            )
    meta = dict(
        machine=platform.machine(), processor=platform.processor(), cpus=cores,
        python=platform.python_version(), torch=torch.__version__, numba=numba.__version__,
        numpy=np.__version__, pandas=pd.__version__, pyarrow=pa.__version__,
        streamrnn=streamrnn.__version__, streamrnn_backfill=api is not None,
        series=args.series, steps=args.steps, rows=args.series * args.steps,
        features=len(FEATURES), target=TARGET, horizon=1, cell="gru", hidden=H, layers=1,
        dtype="float32", chunk_rows=args.chunk_rows, row_group=args.row_group,
        tbptt=[K, K], optimizer=f"Adam(lr={LR})", loss="mse",
        numba_threads=numba.get_num_threads(), torch_threads=threads,
        torch_threads_seconds=calibration,
        pytorch_subset="PyTorch runs end to end on a file of the first torch_series_timed "
        "series (all their rows); its rows/s is that file's rows over its time",
        speedup_target=SPEEDUP, bound_10x_over_1x=BOUND, quick=args.quick,
    )  # fmt: skip
    print(json.dumps(dict(meta=meta, results=results, memory=mem), indent=1))


if __name__ == "__main__":
    main()
