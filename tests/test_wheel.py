"""The package as a user installs it: from its wheel, not the checkout."""

import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(args, cwd, **kwargs):
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{args[0]} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh virtual environment with the wheel installed (dependencies are this one's)."""
    tmp = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
          "-w", str(tmp / "dist"), str(ROOT)], cwd=tmp)  # fmt: skip
    (wheel,) = (tmp / "dist").glob("streamrnn-*.whl")
    env = tmp / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", str(env)], cwd=tmp)
    python = env / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                   cwd=tmp).strip()  # fmt: skip
    # The dependencies come from this environment's site-packages, added as a plain path:
    # its .pth files (among them the checkout's editable install) are not read.
    Path(purelib, "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
          "--no-index", str(wheel)], cwd=tmp)  # fmt: skip
    return env, Path(purelib)


def test_the_wheel_holds_every_subpackage_and_runs_from_outside_the_checkout(
    installed, tmp_path
):
    env, purelib = installed
    where = _run(
        [str(env / "bin" / "python"), "-c",
         "import streamrnn, feeds, feeds.datasets, streamrnn.backfill;"
         "print(streamrnn.__file__, feeds.__file__);"
         "print(len(feeds.datasets.load_weather()))"],
        cwd=tmp_path,
    ).split()  # fmt: skip
    assert all(Path(p).is_relative_to(purelib) for p in where[:2]), where
    assert int(where[2]) > 0  # the bundled data came along
    cli = str(env / "bin" / "streamrnn")
    assert "--targets" in _run([cli, "backfill", "--help"], cwd=tmp_path)

    times = pd.date_range("2024-01-01", periods=48, freq="h")
    temp = np.sin(np.arange(48) / 4.0)
    pd.DataFrame({"time": times, "temp": temp}).to_parquet(tmp_path / "in.parquet")
    out = _run([cli, "backfill", "in.parquet", "-o", "out", "--targets", "temp",
                "--hidden", "4", "--no-report"], cwd=tmp_path)  # fmt: skip
    assert "48 rows in, 48 rows out, 1 series" in out
    assert len(pd.read_parquet(tmp_path / "out")) == 48
