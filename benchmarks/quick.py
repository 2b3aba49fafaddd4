"""Run the asv suite once, quickly, in this environment; fail if any benchmark
errors or is not collected.

    python benchmarks/quick.py
"""

import importlib
import inspect
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
PREFIXES = ("time_", "timeraw_", "peakmem_", "mem_", "track_")


def defined_benchmarks():
    """``Class.method`` for every benchmark the suite defines (asv shortens the
    module part of long names in its log, never this part)."""
    sys.path.insert(0, str(HERE))
    names = []
    for path in sorted((HERE / "suite").glob("bench_*.py")):
        module = importlib.import_module(f"suite.{path.stem}")
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__:
                continue
            names += [f"{cls_name}.{m}" for m in dir(cls) if m.startswith(PREFIXES)]
    return names


def main():
    conf = str(HERE / "asv.conf.json")
    asv = [sys.executable, "-m", "asv"]
    subprocess.run(
        [*asv, "machine", "--yes", "--config", conf], check=True, stdout=subprocess.DEVNULL
    )
    run = subprocess.run(
        [*asv, "run", "--config", conf, "--python=same", "--quick", "--dry-run", "--show-stderr"],
        capture_output=True,
        text=True,
    )
    print(run.stdout[-20000:])
    print(run.stderr[-5000:], file=sys.stderr)
    expected = defined_benchmarks()
    missing = [name for name in expected if name not in run.stdout]
    failed = [line for line in run.stdout.splitlines() if "failed" in line.lower()]
    if run.returncode != 0 or missing or failed or not expected:
        print(
            f"asv quick run: exit {run.returncode}; not collected: {missing}; failed: {failed}",
            file=sys.stderr,
        )
        return 1
    print(f"asv quick run: {len(expected)} benchmarks collected and ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
