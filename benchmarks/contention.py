"""streamrnn's kernels on a quiet machine and beside a busy process; PyTorch beside streamrnn.

A kernel whose idle threads spin, or that waits at a barrier for a thread that has lost its
core, slows down far more than the work it loses when another process takes one core. This
script measures that: each workload runs on a quiet machine, then while a child Python process
spins a pure-Python loop on one core (the last core this process may use), in five rounds of
both so that drift in the machine's speed hits both alike; the slowdown is the ratio busy /
quiet, of the medians and of the means (``slowdown_by_round`` in the JSON shows the noise).
1 means unaffected; 2 is what a workload that kept both cores of a 2-core machine busy with
work would lose. The median is the usual call; the mean is what a stream of calls costs, and
shows a tail of slow calls that the median hides. "Cores used" is this process's CPU time
over wall time: near 2 for work that is serial shows threads spinning while they wait.

Workloads (float32, I=8):

- ``Stream.update`` of a 100-row chunk of 100 keys (GRU H=64), microseconds per call;
- ``Stream.update`` of a 10,000-row chunk of 10,000 keys, milliseconds per call;
- ``OnlineLearner.learn`` (shared weights, GRU H=32, ``tbptt=(8, 16)``, default options) over
  24 keys x 2,000 rows interleaved, in chunks of 24 rows and of 2,400 rows, seconds per pass
  (each pass a fresh learner);
- ``Series.step`` of one series (GRU H=64), microseconds per step. It runs on one thread, so
  its slowdown is the machine's own (shared caches, virtual CPUs) and noise, not threads
  waiting: read the others against it.

PyTorch's ``nn.GRU`` (H=64, batch 1,024 x 64 steps, 2 threads and 1 thread) is timed in this
process before streamrnn is imported (two passes: ``before_noise``, the second's median over
the first's, is the noise to read the other ratios against), after the workloads above, and
with each call straight after a 10,000-key ``Stream.update`` (the pattern of a side-by-side
benchmark). Unchanged within noise is the target: streamrnn's threads must not take PyTorch's
cores once its own call has returned.

Each line is printed as it is measured; the last output is one JSON document with the
figures, the CPU use of this process and of the rest of the machine during each measurement
(a "quiet" figure taken while something else was running says so; before each quiet
measurement the script waits for other processes to leave the CPUs idle, ``--wait-quiet``
seconds at most in all), the threading layer,
thread counts and versions. Only public API is used, so the script measures whichever
streamrnn is importable:

    python benchmarks/contention.py                  # about 2 minutes on 2 cores
    python benchmarks/contention.py --quick          # fewer repeats
    python benchmarks/contention.py --no-busy        # quiet figures only
    PYTHONPATH=/path/to/other/checkout python benchmarks/contention.py
"""

import argparse
import contextlib
import itertools
import json
import os
import platform
import signal
import subprocess
import sys
import time

import numpy as np
import torch
from suite.machine import busy_seconds

I = 8
LEARN_KEYS = 24
LEARN_STEPS = 2000  # rows per key in one learning pass
TORCH_H = 64
TORCH_SHAPE = (64, 1024, I)  # steps, batch, features
TORCH_THREADS = (2, 1)
ROUNDS = 5  # quiet/busy alternations per workload

#: Run by the busy child: spin until killed, or until this process is gone.
_SPIN = """
import os, sys
cpu = {cpu}
if cpu is not None and hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {{cpu}})
parent = os.getppid()
sys.stdout.write("ready\\n")
sys.stdout.flush()
while os.getppid() == parent:
    for _ in range(100_000):
        pass
"""


def busy_cpu():
    """The core the busy process is pinned to: the last this process may use (None: any)."""
    if hasattr(os, "sched_getaffinity"):
        return max(os.sched_getaffinity(0))
    return None


@contextlib.contextmanager
def busy_core(cpu):
    """A child Python process spinning on core ``cpu`` for the duration of the block.

    It is killed when the block ends, by error or interrupt too, and it quits by itself if
    this process dies first (it watches its parent)."""
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", _SPIN.format(cpu=cpu)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    try:
        if proc.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"the busy process did not start (exit status {proc.poll()})")
        time.sleep(0.1)  # let the scheduler settle it on its core
        yield proc
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


# Usage and wait_quiet do here what suite.common's CpuUse and wait_quiet do for the other
# benchmarks: this script keeps its own so that PyTorch is timed before streamrnn (which
# suite.common imports) is even imported; suite.machine imports nothing of streamrnn.


class Usage:
    """Cores used by this process, and by the rest of the machine, over the spans run in
    ``with usage:`` blocks (one or several)."""

    def __init__(self):
        self.wall = self.ours = 0.0
        self.system = 0.0  # None where the machine's use cannot be read

    def __enter__(self):
        self._start = (time.perf_counter(), time.process_time(), busy_seconds())
        return self

    def __exit__(self, *exc):
        wall, ours, system = self._start
        self.wall += time.perf_counter() - wall
        self.ours += time.process_time() - ours
        now = busy_seconds()
        if self.system is None or system is None or now is None:
            self.system = None
        else:
            self.system += now - system

    def cores(self):
        if not self.wall:
            return dict(cores_used=None, other_cores=None)
        ours = self.ours / self.wall
        other = None
        if self.system is not None:
            other = round(max(0.0, self.system / self.wall - ours), 2)
        return dict(cores_used=round(ours, 2), other_cores=other)


def wait_quiet(limit, threshold=0.3, interval=0.5):
    """Wait, at most ``limit`` seconds, until the rest of the machine uses under ``threshold``
    cores over ``interval`` seconds. Returns the seconds waited."""
    t0 = time.perf_counter()
    while limit > 0:
        with Usage() as use:
            time.sleep(interval)
        other = use.cores()["other_cores"]
        if other is None or other < threshold or time.perf_counter() - t0 >= limit:
            break
    return time.perf_counter() - t0


def timed(fn, n, usage, per=1, before=None):
    """Seconds per unit of ``n`` timed calls of ``fn`` (each does ``per`` units), their CPU
    use added to ``usage``; ``before`` runs ahead of each call, untimed."""
    times = []
    with usage:
        for _ in range(n):
            if before is not None:
                before()
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) / per)
    return times


def summary(times, scale=1.0):
    """Median, mean, 90th percentile, least and most of ``times``, times ``scale``."""
    t = np.asarray(times) * scale
    return dict(
        median=float(np.median(t)),
        mean=float(t.mean()),
        p90=float(np.percentile(t, 90)),
        min=float(t.min()),
        max=float(t.max()),
    )


# --- PyTorch ---------------------------------------------------------------------------


def torch_gru():
    torch.manual_seed(0)
    rnn = torch.nn.GRU(I, TORCH_H)
    x = torch.randn(*TORCH_SHAPE)

    def call():
        with torch.inference_mode():
            rnn(x)

    return call


def time_torch(call, repeats, settle, before=None):
    """{threads: (milliseconds of each call, CPU use)} of ``call`` at each of TORCH_THREADS;
    ``before`` runs ahead of each timed call, untimed."""
    saved = torch.get_num_threads()
    out = {}
    try:
        for n in TORCH_THREADS:
            torch.set_num_threads(n)
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < 1.0:  # the first calls in a process run slow
                call()
            settle()
            usage = Usage()
            times = timed(call, repeats, usage, before=before)
            out[n] = ([t * 1e3 for t in times], usage.cores())
    finally:
        torch.set_num_threads(saved)
    return out


# --- streamrnn workloads ---------------------------------------------------------------


def workloads(streamrnn, data, quick):
    """{name: (unit, scale, repeats, units per call, fn)}, each fn compiled and warmed up."""
    gru64 = streamrnn.GRU(I, 64, output_size=1, dtype="float32", seed=0)
    out = {}

    for n_keys, unit, scale, n in (
        (100, "us/call", 1e6, 300 if quick else 3000),
        (10_000, "ms/call", 1e3, 20 if quick else 200),
    ):
        stream = streamrnn.Stream(gru64)
        rng = np.random.default_rng(n_keys)
        cycle = itertools.cycle(
            [(rng.permutation(n_keys), data(n_keys, I, seed=c)) for c in range(8)]
        )

        def update(stream=stream, cycle=cycle):
            keys, x = next(cycle)
            stream.update(keys, None, x)

        update()
        out[f"Stream.update, {n_keys:,} rows of {n_keys:,} keys"] = (unit, scale, n, 1, update)

    rng = np.random.default_rng(24)
    rows = LEARN_KEYS * LEARN_STEPS
    keys = np.concatenate([rng.permutation(LEARN_KEYS) for _ in range(LEARN_STEPS)])
    x, y = data(rows, I, seed=1), data(rows, 1, seed=2)
    for chunk in (LEARN_KEYS, 100 * LEARN_KEYS):

        def learn(chunk=chunk, end=rows):
            model = streamrnn.GRU(I, 32, output_size=1, dtype="float32", seed=0)
            learner = streamrnn.OnlineLearner(model, tbptt=(8, 16))
            for a in range(0, end, chunk):
                learner.learn(keys[a : a + chunk], None, x[a : a + chunk], y[a : a + chunk])

        learn(end=max(2 * chunk, 48 * LEARN_KEYS))  # compiles the kernels a pass runs
        name = f"OnlineLearner.learn, {LEARN_KEYS} x {LEARN_STEPS:,} rows, chunks of {chunk:,}"
        out[name] = ("s/pass", 1.0, 1 if quick else 5, 1, learn)

    series = streamrnn.Series(gru64)
    xs = data(1000, I, seed=3)
    step = series.step

    def steps():
        for row in xs:
            step(row)

    steps()
    out["Series.step, one series"] = ("us/step", 1e6, 10 if quick else 100, len(xs), steps)
    return out


def streamrnn_revision(streamrnn):
    """``git log -1 --format=%h`` of the checkout streamrnn was imported from (with
    ``+changes`` when its streamrnn/ differs from that commit), or None outside git."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(streamrnn.__file__)))

    def git(*args):
        try:
            res = subprocess.run(["git", "-C", here, *args], capture_output=True, text=True)
        except OSError:
            return None
        return res.stdout.strip() if res.returncode == 0 else None

    commit = git("log", "-1", "--format=%h")
    if commit is None:
        return None
    changed = git("status", "--porcelain", "--", "streamrnn")
    return commit + ("+changes" if changed else "")


def _terminate(signum, frame):
    raise SystemExit(128 + signum)  # unwinds through busy_core, which kills its child


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--no-busy", action="store_true", help="quiet figures only")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="before each quiet measurement, wait for other processes to leave the CPUs "
        "idle, at most this long in all (default 120; 0: do not wait)",
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _terminate)
    warnings = []

    waited = [0.0]  # seconds spent waiting for a quiet machine, out of --wait-quiet

    def settle():
        waited[0] += wait_quiet(args.wait_quiet - waited[0])

    def check(what, use):
        if use["other_cores"] is not None and use["other_cores"] >= 0.3:
            warnings.append(
                f"{what}: other processes kept {use['other_cores']:.1f} cores busy meanwhile"
            )

    # PyTorch first, before streamrnn (or Numba) has started any thread in this process: two
    # passes, whose difference is the noise the after/before ratios are to be read against.
    torch_repeats = 3 if args.quick else 9
    gru = torch_gru()
    passes = [time_torch(gru, torch_repeats, settle) for _ in range(2)]
    before = {}
    for n in TORCH_THREADS:
        (first, use), (second, use2) = passes[0][n], passes[1][n]
        check(f"torch.nn.GRU {n} thread(s) before streamrnn", use)
        check(f"torch.nn.GRU {n} thread(s) before streamrnn, second pass", use2)
        before[n] = (first + second, use, [float(np.median(first)), float(np.median(second))])
        print(
            f"torch.nn.GRU {n} thread(s), before streamrnn: {np.median(first + second):.2f} "
            f"ms/call (two passes: {np.median(first):.2f}, {np.median(second):.2f})",
            flush=True,
        )

    import numba
    from suite.common import data

    import streamrnn

    t0 = time.perf_counter()
    work = workloads(streamrnn, data, args.quick)
    print(f"(streamrnn compiled and warmed up in {time.perf_counter() - t0:.1f} s)", flush=True)
    cpu = busy_cpu()
    results = []
    print(
        f"{'workload':50s} {'unit':7s} {'median: quiet':>14s} {'busy':>8s} {'ratio':>6s}"
        f"  {'mean: quiet':>12s} {'busy':>8s} {'ratio':>6s}  cores used q/b",
        flush=True,
    )
    for name, (unit, scale, n, per, fn) in work.items():
        # Rounds of quiet then busy, so that drift in the machine's speed hits both.
        rounds = min(ROUNDS, n)
        q_use, b_use = Usage(), Usage()
        quiet, busy, by_round = [], [], []
        for r in range(rounds):
            calls = n // rounds + (r < n % rounds)
            settle()
            q = timed(fn, calls, q_use, per)
            quiet += q
            if not args.no_busy:
                with busy_core(cpu):
                    b = timed(fn, calls, b_use, per)
                busy += b
                by_round.append(round(float(np.median(b) / np.median(q)), 2))
        check(f"{name}, quiet", q_use.cores())
        q = summary(quiet, scale)
        b = summary(busy, scale) if busy else None
        row = dict(workload=name, unit=unit, repeats=n, rounds=rounds)
        for phase, stats in (("quiet", q), ("busy", b)):  # quiet, quiet_mean, ...
            for stat, suffix in (("median", ""), ("mean", "_mean"), ("p90", "_p90")):
                row[phase + suffix] = None if stats is None else stats[stat]
        row["slowdown"] = None if b is None else round(b["median"] / q["median"], 2)
        row["slowdown_mean"] = None if b is None else round(b["mean"] / q["mean"], 2)
        row["slowdown_by_round"] = by_round or None
        row.update(quiet_cpu=q_use.cores(), busy_cpu=None if b is None else b_use.cores())
        results.append(row)

        def text(value, ratio=False):
            if value is None:
                return "-"
            return f"x{value:.2f}" if ratio else f"{value:.4g}"

        cores = f"{row['quiet_cpu']['cores_used']:.2f}"
        if b is not None:
            cores += f"/{row['busy_cpu']['cores_used']:.2f}"
        print(
            f"{name:50s} {unit:7s} {text(row['quiet']):>14s} {text(row['busy']):>8s} "
            f"{text(row['slowdown'], True):>6s}  {text(row['quiet_mean']):>12s} "
            f"{text(row['busy_mean']):>8s} {text(row['slowdown_mean'], True):>6s}  {cores}",
            flush=True,
        )

    # Numba starts its threading layer on the first parallel kernel and also on the first
    # numba.get_num_threads() or set_num_threads(), so a layer named here need not have run.
    try:
        layer, layer_from = numba.threading_layer(), "numba.threading_layer()"
    except ValueError:  # no Numba parallel kernel has run in this process
        layer, layer_from = numba.config.THREADING_LAYER, "numba.config.THREADING_LAYER"

    keyed = work["Stream.update, 10,000 rows of 10,000 keys"][-1]
    after = time_torch(gru, torch_repeats, settle)
    interleaved = time_torch(gru, torch_repeats, settle, before=keyed)
    pytorch = []
    rate = TORCH_SHAPE[0] * TORCH_SHAPE[1]
    for n in TORCH_THREADS:
        b, a, i = (summary(times) for times in (before[n][0], after[n][0], interleaved[n][0]))
        check(f"torch.nn.GRU {n} thread(s) after streamrnn", after[n][1])
        check(f"torch.nn.GRU {n} thread(s) straight after streamrnn calls", interleaved[n][1])
        first, second = before[n][2]
        pytorch.append(
            dict(
                threads=n,
                unit="ms/call",
                before=b["median"],
                after=a["median"],
                interleaved=i["median"],
                after_slowdown=round(a["median"] / b["median"], 2),
                interleaved_slowdown=round(i["median"] / b["median"], 2),
                before_passes=[first, second],
                before_noise=round(second / first, 2),
                series_steps_per_s=dict(
                    before=rate / b["median"] * 1e3,
                    after=rate / a["median"] * 1e3,
                    interleaved=rate / i["median"] * 1e3,
                ),
                spread=dict(
                    before=[b["min"], b["max"]],
                    after=[a["min"], a["max"]],
                    interleaved=[i["min"], i["max"]],
                ),
                cpu=dict(before=before[n][1], after=after[n][1], interleaved=interleaved[n][1]),
            )
        )
        print(
            f"torch.nn.GRU {n} thread(s): before streamrnn {b['median']:.2f} ms/call (second "
            f"pass / first x{second / first:.2f}), after {a['median']:.2f} "
            f"(x{a['median'] / b['median']:.2f}), each call straight after a 10,000-key update "
            f"{i['median']:.2f} (x{i['median'] / b['median']:.2f})",
            flush=True,
        )

    for w in warnings:
        print("warning:", w, flush=True)
    parallel = torch.__config__.parallel_info().splitlines()
    meta = dict(
        machine=platform.machine(),
        processor=platform.processor(),
        platform=platform.platform(),
        cpus=os.cpu_count(),
        affinity=sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        busy_process_cpu=None if args.no_busy else cpu,
        load_average=os.getloadavg() if hasattr(os, "getloadavg") else None,
        python=platform.python_version(),
        numpy=np.__version__,
        numba=numba.__version__,
        torch=torch.__version__,
        streamrnn=streamrnn.__version__,
        streamrnn_path=os.path.dirname(os.path.abspath(streamrnn.__file__)),
        streamrnn_revision=streamrnn_revision(streamrnn),
        numba_threading_layer=layer,
        numba_threading_layer_from=layer_from,
        numba_num_threads=numba.config.NUMBA_NUM_THREADS,
        numba_get_num_threads=numba.get_num_threads(),
        torch_num_threads=torch.get_num_threads(),
        process_threads=len(os.listdir("/proc/self/task")) if os.path.isdir("/proc") else None,
        torch_parallel_backend=next(
            (ln.split(":", 1)[1].strip() for ln in parallel if ln.startswith("ATen parallel")),
            None,
        ),
        environment={
            k: os.environ[k]
            for k in (
                "OMP_NUM_THREADS",
                "OMP_WAIT_POLICY",
                "GOMP_SPINCOUNT",
                "KMP_BLOCKTIME",
                "MKL_NUM_THREADS",
                "NUMBA_NUM_THREADS",
                "NUMBA_THREADING_LAYER",
                "PYTHONPATH",
            )
            if k in os.environ
        },
        quick=args.quick,
        wait_quiet_s=args.wait_quiet,
        waited_for_quiet_s=round(waited[0], 1),
        rounds=ROUNDS,
        input_size=I,
        dtype="float32",
        torch_gru=dict(hidden=TORCH_H, steps=TORCH_SHAPE[0], batch=TORCH_SHAPE[1]),
    )
    doc = dict(meta=meta, results=results, pytorch=pytorch, warnings=warnings)
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
