"""Cold start: import and the first call of each kind, from an empty kernel cache.

Each step runs in a fresh Python process whose ``NUMBA_CACHE_DIR`` is a new
empty folder, so that it pays every compilation it needs and nothing else; the
same step is then run again in a second fresh process on the cache the first
one filled (what every later start of a program costs). Times are measured
inside the child (``time.perf_counter``) and printed as JSON, in seconds::

    python benchmarks/cold_start.py            # every step
    python benchmarks/cold_start.py forward_gru learn_shared
    python benchmarks/cold_start.py --demo     # also `make demo` on a fresh clone
    python benchmarks/cold_start.py --baseline 38df211 --demo   # before and after

``--demo`` clones the checkout's committed HEAD into a temporary folder and
times ``make demo`` there (new ``.venv``, install, compile, run), which is what a
new user waits for on a fresh machine. ``--baseline REF`` measures a clone of
the commit ``REF`` the same way in the same run, each step of the baseline
right before the same step of HEAD, and prints both with their ratio.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Each step: the setup (untimed beyond import) and the timed first call.
SETUP = """
import numpy as np
import streamrnn
rng = np.random.default_rng(0)
keys = np.repeat(np.arange(4), 8)
x = rng.standard_normal((32, 8)).astype(np.float32)
y = rng.standard_normal((32, 1)).astype(np.float32)
"""

STEPS = {
    "import": ("", ""),
    "forward_gru": ("m = streamrnn.GRU(8, 64)", "m.forward(x[:4])"),
    "forward_lstm": ("m = streamrnn.LSTM(8, 64)", "m.forward(x[:4])"),
    "stream_update": (
        "s = streamrnn.Stream(streamrnn.GRU(8, 64, output_size=1))",
        "s.update(keys, None, x)",
    ),
    "learn_shared": (
        "lr = streamrnn.OnlineLearner(streamrnn.GRU(8, 32, output_size=1))",
        "lr.predict_learn(keys, None, x, y)",
    ),
    "learn_per_key": (
        "lr = streamrnn.OnlineLearner(streamrnn.GRU(8, 32, output_size=1), per_key=True)",
        "lr.predict_learn(keys, None, x, y)",
    ),
}

CHILD = """
import time, warnings
warnings.simplefilter("ignore")
t0 = time.perf_counter()
{setup}
t1 = time.perf_counter()
{prepare}
t2 = time.perf_counter()
{call}
t3 = time.perf_counter()
print("TIMES", t1 - t0, t3 - t2)
"""


def run_step(name, cache, source=None):
    """One step in a fresh process; ``source``: a checkout to import instead."""
    prepare, call = STEPS[name]
    code = CHILD.format(setup=SETUP, prepare=prepare, call=call)
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    if source is not None:
        env["PYTHONPATH"] = str(source)
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
    )
    if out.returncode != 0:
        raise SystemExit(f"step {name} failed:\n{out.stderr[-3000:]}")
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("TIMES")][-1]
    imp, first = map(float, line.split()[1:])
    return imp, first


def measure_one(name, source=None):
    with tempfile.TemporaryDirectory() as cache:
        imp, cold = run_step(name, cache, source)
        _, cached = run_step(name, cache, source)
    return {
        "import_s": round(imp, 3),
        "first_call_empty_cache_s": round(cold, 3),
        "first_call_filled_cache_s": round(cached, 3),
    }


def measure(names, baseline=None):
    results = {}
    for name in names:
        if baseline is not None:
            before = measure_one(name, baseline)
            after = measure_one(name, ROOT)
            ratio = before["first_call_empty_cache_s"] / max(
                after["first_call_empty_cache_s"], 1e-9
            )
            results[name] = {
                "before": before,
                "after": after,
                "empty_cache_speedup": round(ratio, 2),
            }
        else:
            results[name] = measure_one(name, ROOT)
        print(json.dumps({name: results[name]}), file=sys.stderr, flush=True)
    return results


def clone_at(ref, into):
    """A clone of this repository at commit ``ref`` in the folder ``into``."""
    subprocess.run(["git", "clone", "-q", str(ROOT), str(into)], check=True)
    subprocess.run(["git", "-C", str(into), "checkout", "-q", ref], check=True)
    return into


def demo_on_fresh_clone(ref="HEAD"):
    with tempfile.TemporaryDirectory() as tmp:
        clone = clone_at(ref, pathlib.Path(tmp) / "clone")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "NUMBA"))}
        t0 = time.perf_counter()
        out = subprocess.run(["make", "demo"], cwd=clone, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if out.returncode != 0:
            raise SystemExit(f"make demo failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return {"make_demo_fresh_clone_s": round(seconds, 1)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("steps", nargs="*", help=f"some of: {', '.join(STEPS)} (default all)")
    parser.add_argument("--demo", action="store_true", help="also time make demo on a fresh clone")
    parser.add_argument("--baseline", metavar="REF", help="also measure commit REF, step by step")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.steps) - set(STEPS))
    if unknown:
        parser.error(f"unknown steps {unknown}; choose from {', '.join(STEPS)}")
    steps = args.steps or list(STEPS)
    results = {"cpus": os.cpu_count(), "head": _rev("HEAD"), "baseline": args.baseline}
    with tempfile.TemporaryDirectory() as tmp:
        base = clone_at(args.baseline, pathlib.Path(tmp) / "base") if args.baseline else None
        results.update(measure(steps, base))
    if args.demo:
        if args.baseline:
            before = demo_on_fresh_clone(args.baseline)["make_demo_fresh_clone_s"]
            after = demo_on_fresh_clone()["make_demo_fresh_clone_s"]
            results["make_demo_fresh_clone_s"] = {"before": before, "after": after}
        else:
            results.update(demo_on_fresh_clone())
    print(json.dumps(results, indent=1))


def _rev(ref):
    out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", ref],
                         capture_output=True, text=True)  # fmt: skip
    return out.stdout.strip()


if __name__ == "__main__":
    main()
