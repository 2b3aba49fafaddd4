"""The backfill job and command: outputs against the streaming library, exact resume
after interruptions and kill -9 at random points, faults, the job file and the report."""

import errno
import glob
import json
import os
import pickle
import random
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import feeds
import streamrnn
from streamrnn import backfill, checkpoint, cli
from streamrnn.backfill import Job, folder, run, runner
from streamrnn.errors import ConfigError, StateError, StorageError

KEYS, STEPS = 3, 240


def history(steps=STEPS, seed=0):
    """Three sensors, hourly, interleaved by time: two inputs and a target ``y``."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    frames = []
    for k in range(KEYS):
        level = np.sin(t / (5.0 + k)) + 0.1 * rng.standard_normal(steps)
        frames.append(pd.DataFrame({
            "key": f"s{k}",
            "time": pd.Timestamp("2024-01-01") + pd.to_timedelta(t, "h"),
            "x0": rng.standard_normal(steps),
            "x1": np.cos(t / 7.0),
            "y": level,
        }))  # fmt: skip
    return pd.concat(frames).sort_values(["time", "key"], kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("history")
    df = history()
    path = folder / "history.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=100)
    return df, str(path)


def make_job(path, out, **kw):
    options = dict(key="key", time="time", features=["x0", "x1", "y"], targets=["y"],
                   hidden=6, tbptt=(4, 8), lr=0.01, learn=True, chunk_rows=97,
                   checkpoint_rows=None, checkpoint_seconds=None, report=None,
                   progress="none")  # fmt: skip
    options.update(kw)
    return Job(str(path), str(out), **options)


def outputs(folder):
    """The output dataset, part files in order."""
    parts = sorted(glob.glob(os.path.join(folder, "part-*.parquet")))
    return pa.concat_tables([pq.read_table(p) for p in parts])


def assert_same(a, b):
    assert a.column_names == b.column_names
    assert a.num_rows == b.num_rows
    for name in a.column_names:
        assert a.column(name).is_null().equals(b.column(name).is_null()), name
        x, y = a.column(name).to_numpy(), b.column(name).to_numpy()
        assert x.dtype == y.dtype
        if x.dtype.kind == "f":
            assert np.array_equal(x.view(np.uint8), y.view(np.uint8)), name  # bit for bit
        elif x.dtype.kind == "M":  # NaT where null
            assert np.array_equal(x.view(np.int64), y.view(np.int64)), name
        else:
            assert (x == y).all(), name


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory):
    """An uninterrupted learning run, in chunks of 97 rows."""
    _, path = data
    out = tmp_path_factory.mktemp("reference") / "out"
    summary = run(make_job(path, out))
    return outputs(out), summary


# -- what the job computes -------------------------------------------------------------
def test_learning_outputs_are_the_learners(data, reference):
    df, path = data
    table, summary = reference
    # the command's defaults are the library's: per-key scaling, the seasonal naive's value
    # as an input, a Huber loss, forecasts relative to the last value, Adam warmed up
    job = runner.resolved(backfill.job.checked(make_job(path, "unused")))
    assert job.lags == [job.season - 1] and job.scale == "per_key"
    model = streamrnn.GRU(4, 6, output_size=1, seed=0)
    schema = feeds.Schema(key="key", time="time", features=["x0", "x1", "y"], targets=["y"])
    optimizer = streamrnn.optim.Adam(lr=0.01, schedule=streamrnn.optim.WarmUp(100))
    feed = feeds.Feed(schema, dtype="float32", scale="per_key", lags=job.lags)
    # ... and the seasonal naive forecast blended in, from that input (x0, x1, y, y_lag)
    learner = streamrnn.OnlineLearner(model, tbptt=(4, 8), optimizer=optimizer, feed=feed,
                                      seasonal=[3])  # fmt: skip
    assert (learner.loss.name, learner.relative) == ("huber", "last")
    expected = learner.predict_learn(df)
    assert table.column_names == ["key", "time", "target_time", "y_forecast", "y_actual"]
    assert table.num_rows == len(df) == summary["rows_out"] == summary["rows_in"]
    assert table.column("key").to_pylist() == df["key"].tolist()
    assert (table.column("time").to_numpy() == df["time"].to_numpy()).all()
    assert np.array_equal(table.column("y_forecast").to_numpy(), expected[:, 0])
    assert summary["updates"] == learner.counts["updates"] > 0
    assert summary["series"] == KEYS


def test_inference_with_a_pytorch_model(data, tmp_path):
    import torch

    df, path = data
    torch.manual_seed(0)
    net = {"rnn": torch.nn.LSTM(3, 5), "head": torch.nn.Linear(5, 1)}
    torch.save(net, tmp_path / "model.pt")
    summary = run(make_job(path, tmp_path / "out", learn=False, model=str(tmp_path / "model.pt")))
    got = outputs(tmp_path / "out").column("y_forecast").to_numpy()
    # the same weights in the streaming library, and PyTorch itself, series by series
    stream = streamrnn.Stream(streamrnn.from_torch(net["rnn"], net["head"]))
    schema = feeds.Schema(key="key", time="time", features=["x0", "x1", "y"], targets=["y"])
    stream.feed = feeds.Feed(schema, dtype="float32")
    assert np.array_equal(got, stream.update(df)[:, 0])
    for rows in df.groupby("key").groups.values():
        x = torch.tensor(df.loc[rows, ["x0", "x1", "y"]].to_numpy(np.float32))
        with torch.no_grad():
            ref = net["head"](net["rnn"](x)[0])[:, 0].numpy()
        np.testing.assert_allclose(got[rows], ref, atol=1e-5)
    assert "updates" not in summary and summary["mae"] > 0


def test_chunk_size_does_not_change_the_output(data, reference, tmp_path):
    _, path = data
    run(make_job(path, tmp_path / "out", chunk_rows=1000))
    assert_same(outputs(tmp_path / "out"), reference[0])


@pytest.mark.parametrize("kind", ["csv", "ipc"])
def test_every_input_format_gives_the_same_output(data, reference, tmp_path, kind):
    df, _ = data
    table = pa.Table.from_pandas(df, preserve_index=False)
    path = tmp_path / f"history.{'csv' if kind == 'csv' else 'arrow'}"
    if kind == "csv":
        pacsv.write_csv(table, path)
    else:
        with pa.ipc.new_file(path, table.schema) as writer:
            writer.write_table(table)
    run(make_job(path, tmp_path / "out"))
    assert_same(outputs(tmp_path / "out"), reference[0])


def test_quantiles_are_written_and_scored(data, tmp_path):
    _, path = data
    summary = run(make_job(path, tmp_path / "out", quantiles=[0.9, 0.1, 0.5, 0.7]))
    table = outputs(tmp_path / "out")
    assert table.column_names == [
        "key",
        "time",
        "target_time",
        "y_forecast",
        "y_q0.9",
        "y_q0.1",
        "y_q0.5",
        "y_q0.7",
        "y_actual",
    ]
    assert np.array_equal(table.column("y_forecast"), table.column("y_q0.5"))
    assert 0 <= summary["coverage"] <= 1 and summary["coverage_nominal"] == pytest.approx(0.8)


# -- checkpoints and exact resume -------------------------------------------------------
class Crash(Exception):
    pass


def crash_after(monkeypatch, chunks):
    """Make the run fail after ``chunks`` chunks, as a crash would stop it."""
    step = runner._Run.step
    seen = []

    def failing(self, chunk):
        if len(seen) == chunks:
            raise Crash
        seen.append(1)
        step(self, chunk)

    monkeypatch.setattr(runner._Run, "step", failing)


@pytest.mark.parametrize("chunks", [0, 1, 5])
def test_resume_after_a_crash_gives_the_same_output(data, reference, tmp_path, monkeypatch,
                                                    chunks):  # fmt: skip
    _, path = data
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        crash_after(m, chunks)
        with pytest.raises(Crash):
            run(make_job(path, out, checkpoint_rows=200))
    parts = len(glob.glob(str(out / "part-*.parquet")))
    assert parts == chunks  # parts after the last checkpoint are on disk, uncommitted
    summary = run(make_job(path, out, resume=True, chunk_rows=61))
    assert summary["resumed_at"] == (0 if chunks < 3 else 291)  # a checkpoint after 3 chunks
    assert_same(outputs(out), reference[0])
    assert summary["rows_out"] == reference[1]["rows_out"]
    assert summary["mae"] == reference[1]["mae"]


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    first=st.integers(1, 400),
    then=st.integers(1, 400),
    every=st.integers(1, 500),
    crash=st.integers(0, 12),
    quantiles=st.booleans(),
)
def test_any_cutting_and_crash_point_gives_the_same_output(data, tmp_path_factory, monkeypatch,
                                                           first, then, every, crash,
                                                           quantiles):  # fmt: skip
    _, path = data
    q = [0.2, 0.5, 0.8] if quantiles else None
    folder = tmp_path_factory.mktemp("cut")
    whole = folder / "whole"
    run(make_job(path, whole, chunk_rows=720, quantiles=q))
    out = folder / "out"
    with monkeypatch.context() as m:
        crash_after(m, crash)
        try:
            run(make_job(path, out, chunk_rows=first, checkpoint_rows=every, quantiles=q))
        except Crash:
            pass
    run(make_job(path, out, chunk_rows=then, quantiles=q, resume=True))
    assert_same(outputs(out), outputs(whole))


def test_interrupt_takes_a_checkpoint_then_resume_continues(data, reference, tmp_path,
                                                            monkeypatch):  # fmt: skip
    _, path = data
    out = tmp_path / "out"
    step = runner._Run.step
    calls = []

    def signalled(self, chunk):
        step(self, chunk)
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    with monkeypatch.context() as m:
        m.setattr(runner._Run, "step", signalled)
        with pytest.raises(backfill.Interrupted, match="SIGTERM: stopped after a checkpoint at "
                                                       "input row 194"):  # fmt: skip
            run(make_job(path, out))
    header = checkpoint.read_header(out / "_checkpoint")
    assert (header["rows_in"], header["parts"], header["done"]) == (194, 2, False)
    run(make_job(path, out, resume=True))
    assert_same(outputs(out), reference[0])


def test_sigint_through_the_command_exits_130(data, tmp_path, monkeypatch, capsys):
    _, path = data
    step = runner._Run.step

    def signalled(self, chunk):
        step(self, chunk)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(runner._Run, "step", signalled)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # ignored in background jobs
    try:
        code = cli.main(["backfill", path, "-o", str(tmp_path / "out"), "--targets", "y",
                         "--hidden", "4", "--progress", "none", "--chunk-rows", "100"])  # fmt: skip
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    finally:
        signal.signal(signal.SIGINT, before)
    assert code == 130
    assert "SIGINT: stopped after a checkpoint at input row 100" in capsys.readouterr().err


def command(path, out, *extra):
    return [sys.executable, "-m", "streamrnn", "backfill", str(path), "-o", str(out),
            "--key", "key", "--time", "time", "--features", "x0,x1,y", "--targets", "y",
            "--hidden", "6", "--tbptt", "4,8", "--lr", "0.01", "--learn", "--chunk-rows", "97",
            "--checkpoint-rows", "1", "--checkpoint-seconds", "0", "--no-report",
            "--progress", "none", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    """A history long enough to take a few seconds, and its uninterrupted output."""
    folder = tmp_path_factory.mktemp("long")
    path = folder / "history.parquet"
    pq.write_table(pa.Table.from_pandas(history(steps=1500), preserve_index=False), path)
    run(make_job(path, folder / "out", checkpoint_rows=1))
    return path, outputs(folder / "out")


def test_kill_9_at_random_points_then_resume(long_run, tmp_path):
    """A real process killed with SIGKILL at random instants, again and again (during
    start-up, a chunk, a part file's or the checkpoint's write), resumed each time."""
    path, expected = long_run
    out = tmp_path / "out"
    rng = random.Random(20261203)
    kills, longest, position = 0, 1.2, -1
    for _ in range(60):
        proc = subprocess.Popen(command(path, out, "--resume"), stderr=subprocess.PIPE)
        try:
            proc.wait(timeout=rng.uniform(0.2, longest))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            kills += 1
            moved = position
            if os.path.exists(out / "_checkpoint"):
                moved = checkpoint.read_header(out / "_checkpoint")["rows_in"]
            if moved == position:  # killed before any progress: allow longer runs
                longest += 0.3
            position = moved
            continue
        assert proc.returncode == 0, proc.stderr.read().decode()
        break
    else:
        pytest.fail("the job did not finish in 60 attempts")
    assert kills >= 5, "too few kills landed: the job finished too fast to test"
    assert_same(outputs(out), expected)
    assert not glob.glob(str(out / ".tmp-*"))


KILL_DURING_WRITE = """
import os, sys
from streamrnn import checkpoint, cli
fsync, calls = os.fsync, []
def dying(fd):
    calls.append(fd)
    if len(calls) == int(sys.argv[1]):
        os._exit(9)   # as kill -9: after the temporary file is written, before its rename
    fsync(fd)
checkpoint.os.fsync = dying
sys.exit(cli.main(sys.argv[2:]))
"""


@pytest.mark.parametrize("at", [1, 3, 5, 6, 9])
def test_death_in_the_middle_of_a_write_then_resume(data, reference, tmp_path, at):
    """Die at the ``at``-th fsync: 1 the job file, 3 the first part, 5 the first
    checkpoint (before its rename), 6 the same after it (each write syncs the file,
    then the folder), 9 the second checkpoint."""
    _, path = data
    out = tmp_path / "out"
    args = command(path, out, "--resume")[3:]
    died = subprocess.run([sys.executable, "-c", KILL_DURING_WRITE, str(at), *args])
    assert died.returncode == 9
    done = subprocess.run(command(path, out, "--resume"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert_same(outputs(out), reference[0])


def test_checkpoint_loads_into_the_streaming_library(data, tmp_path):
    """A backfill over the first half, then the learner goes on live: the same as a
    backfill over all of it."""
    df, _ = data
    half = len(df) // 2
    first = tmp_path / "first.parquet"
    pq.write_table(pa.Table.from_pandas(df.iloc[:half], preserve_index=False), first)
    run(make_job(first, tmp_path / "a"))
    learner = backfill.load_checkpoint(tmp_path / "a" / "_checkpoint")
    assert isinstance(learner, streamrnn.OnlineLearner)
    again = streamrnn.OnlineLearner.load(tmp_path / "a" / "_checkpoint")
    assert again.counts == learner.counts
    live = learner.predict_learn(df.iloc[half:])
    whole = tmp_path / "whole.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), whole)
    run(make_job(whole, tmp_path / "b"))
    expected = outputs(tmp_path / "b").column("y_forecast").to_numpy()[half:]
    assert np.array_equal(live[:, 0], expected)


def test_checkpoint_format_is_checked(data, tmp_path, reference):
    _, path = data
    run(make_job(path, tmp_path / "out"))
    ckpt = tmp_path / "out" / "_checkpoint"
    header = checkpoint.read_header(ckpt)
    assert header["format"] == checkpoint.FORMAT and header["done"]
    raw = ckpt.read_bytes()
    (tmp_path / "cut").write_bytes(raw[:-10])
    with pytest.raises(StateError, match="truncated or damaged"):
        backfill.load_checkpoint(tmp_path / "cut")
    newer = raw.replace(f'"format":{checkpoint.FORMAT}'.encode(), b'"format":99', 1)
    (tmp_path / "newer").write_bytes(newer)
    with pytest.raises(StateError, match="in format 99 .* this streamrnn reads formats 2, 3"):
        backfill.load_checkpoint(tmp_path / "newer")
    (tmp_path / "other").write_bytes(pickle.dumps({"not": "a checkpoint"}))
    with pytest.raises(StateError, match="is not a streamrnn checkpoint"):
        backfill.load_checkpoint(tmp_path / "other")
    # a damaged checkpoint stops a resume with the same error, touching nothing
    ckpt.write_bytes(raw[:-10])
    before = sorted(os.listdir(tmp_path / "out"))
    with pytest.raises(StateError, match="truncated or damaged"):
        run(make_job(path, tmp_path / "out", resume=True))
    assert sorted(os.listdir(tmp_path / "out")) == before


# -- faults and bad input ------------------------------------------------------------------
def test_full_disk_is_a_clear_error_and_loses_nothing(data, reference, tmp_path, monkeypatch):
    _, path = data
    out = tmp_path / "out"
    write = pq.write_table
    calls = []

    def full(table, where, **kw):
        calls.append(1)
        if len(calls) == 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        write(table, where, **kw)

    with monkeypatch.context() as m:
        m.setattr(runner.pq, "write_table", full)
        with pytest.raises(StorageError, match="cannot write .*part-000004.parquet: the disk is"):
            run(make_job(path, out, checkpoint_rows=150))
    assert sorted(os.listdir(out)) == ["_checkpoint", "_job.json", "_lock", *(
        f"part-{i:06d}.parquet" for i in range(4))]  # fmt: skip
    assert checkpoint.read_header(out / "_checkpoint")["parts"] == 4
    run(make_job(path, out, resume=True))
    assert_same(outputs(out), reference[0])


def test_files_written_together_appear_together_or_not_at_all(tmp_path):
    (tmp_path / "a").mkdir()
    with checkpoint.atomic_files(tmp_path / "scratch") as opened:
        for name in ("a/one", "two"):
            with opened(tmp_path / name) as f:
                f.write(name.encode())
        assert [p.parent.name for p in tmp_path.rglob("*") if p.is_file()] == ["scratch"] * 2
    assert (tmp_path / "a" / "one").read_bytes() == b"a/one"
    assert (tmp_path / "two").read_bytes() == b"two"
    with pytest.raises(StorageError, match=r"cannot write .*three: the disk is full"):
        with checkpoint.atomic_files() as opened:
            with opened(tmp_path / "a" / "one") as f:
                f.write(b"new")
            opened(tmp_path / "three")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "a", "a/one", "two"]  # fmt: skip
    assert (tmp_path / "a" / "one").read_bytes() == b"a/one"  # unchanged
    with pytest.raises(FileNotFoundError, match="the input"):  # not a write's error: as it is
        with checkpoint.atomic_files() as opened:
            opened(tmp_path / "four").write(b"4")
            raise FileNotFoundError("the input is gone")
    assert not (tmp_path / "four").exists() and len(list(tmp_path.rglob("*"))) == 3


def test_output_folder_of_another_job_is_refused(data, tmp_path):
    _, path = data
    out = tmp_path / "out"
    run(make_job(path, out, hidden=4, chunk_rows=500))
    before = {p: os.path.getmtime(p) for p in glob.glob(str(out / "*"))}
    with pytest.raises(ConfigError, match=r"another job's results \(it differs in: hidden 4 -> 5"):
        run(make_job(path, out, hidden=5, resume=True))
    with pytest.raises(ConfigError, match="holds the finished results of this job; pass resume"):
        run(make_job(path, out, hidden=4))
    assert {p: os.path.getmtime(p) for p in glob.glob(str(out / "*"))} == before
    assert run(make_job(path, out, hidden=4, resume=True))["rows_out"] == KEYS * STEPS
    run(make_job(path, out, hidden=5, chunk_rows=500, overwrite=True))
    assert json.loads((out / "_job.json").read_text())["identity"]["hidden"] == 5


def test_other_files_in_the_output_folder_are_never_touched(data, tmp_path):
    _, path = data
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"holds files that are not a backfill's .*notes.txt"):
        run(make_job(path, out, overwrite=True))
    assert os.listdir(out) == ["notes.txt"]


def test_changed_input_is_refused_on_resume(data, tmp_path):
    df, _ = data
    path = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
    with pytest.MonkeyPatch.context() as m:
        crash_after(m, 2)
        with pytest.raises(Crash):
            run(make_job(path, tmp_path / "out", checkpoint_rows=1))
    renamed = df.rename(columns={"x1": "x2"})
    pq.write_table(pa.Table.from_pandas(renamed, preserve_index=False), path)
    with pytest.raises(ConfigError, match=r"differs in: input files \(changed: in.parquet\)"):
        run(make_job(path, tmp_path / "out", resume=True))


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda p: None, ConfigError, "input '.*in.parquet' does not exist"),
        (lambda p: p.write_bytes(b"PAR1 not really parquet"), feeds.SchemaError,
         "not Parquet data that can be read"),
        (lambda p: p.write_bytes(b""), feeds.SchemaError, "not Parquet data"),
    ],
)  # fmt: skip
def test_missing_or_corrupt_input(tmp_path, make, error, match):
    path = tmp_path / "in.parquet"
    make(path)
    with pytest.raises(error, match=match):
        run(make_job(path, tmp_path / "out"))


def test_damaged_file_in_a_dataset_folder(data, tmp_path):
    df, _ = data
    folder = tmp_path / "in"
    folder.mkdir()
    pq.write_table(pa.Table.from_pandas(df.iloc[:300], preserve_index=False), folder / "a.parquet")
    good = (folder / "a.parquet").read_bytes()
    (folder / "b.parquet").write_bytes(good[:100] + b"\0" * 50 + good[150:])
    with pytest.raises(feeds.SchemaError, match="b.parquet"):
        run(make_job(folder, tmp_path / "out"))


def test_command_exit_codes_and_messages(data, tmp_path, capsys):
    _, path = data
    assert cli.main(["backfill", str(tmp_path / "nope.parquet"), "-o", str(tmp_path / "o")]) == 2
    assert f"INPUT '{tmp_path / 'nope.parquet'}' does not exist" in capsys.readouterr().err
    assert cli.main(["backfill", path, "-o", str(tmp_path / "o"), "--hidden", "0"]) == 2
    assert "--hidden must be an integer >= 1, got 0" in capsys.readouterr().err
    assert cli.main(["backfill", path]) == 2
    assert "missing OUTPUT" in capsys.readouterr().err


def test_job_file_and_flags(data, reference, tmp_path, capsys):
    _, path = data
    toml = tmp_path / "job.toml"
    toml.write_text(f"""
[backfill]
input = "{path}"
output = "{tmp_path / "out"}"
key = "key"
time = "time"
features = ["x0", "x1", "y"]
targets = ["y"]
hidden = 6
tbptt = [4, 8]
lr = 0.01
learn = true
chunk-rows = 500
progress = "none"
""")
    assert cli.main(["backfill", "--config", str(toml), "--chunk-rows", "97", "--no-report"]) == 0
    assert_same(outputs(tmp_path / "out"), reference[0])
    assert "backfill done: 720 rows in, 720 rows out, 3 series" in capsys.readouterr().out
    toml.write_text('input = "x"\nhiden = 3\n')
    assert cli.main(["backfill", "--config", str(toml)]) == 2
    assert "unknown key 'hiden'; known keys: input, output" in capsys.readouterr().err


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["backfill", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for name in backfill.job_fields():
        if name not in ("input", "output"):
            assert "--" + name.replace("_", "-") in text
    assert "--resume" in text and "bit for bit" in " ".join(text.split())


# -- progress, summary and report -------------------------------------------------------------
def test_progress_on_a_terminal_and_in_a_log(data, tmp_path):
    _, path = data

    class Terminal:
        def __init__(self):
            self.text = ""

        def write(self, s):
            self.text += s

        def flush(self):
            pass

        def isatty(self):
            return True

    tty = Terminal()
    run(make_job(path, tmp_path / "a", progress="auto"), out=tty)
    assert tty.text.startswith("\r") and "720 rows of 720 (100%)" in tty.text
    assert "rows/s" in tty.text and "MAE" in tty.text
    log = Terminal()
    log.isatty = lambda: False
    run(make_job(path, tmp_path / "b", progress="auto"), out=log)
    assert log.text.startswith("backfill: 720 rows of 720 (100%)") and "\r" not in log.text


def test_report_and_states(data, tmp_path):
    _, path = data
    summary = run(make_job(path, tmp_path / "out", report="auto", states=True,
                           quantiles=[0.1, 0.5, 0.9]))  # fmt: skip
    folder = tmp_path / "out" / "_report"
    assert summary["report"] == str(folder / "index.html")
    for name in ("forecast.png", "error_over_time.png", "learning_curve.png", "report.md"):
        assert (folder / name).read_bytes()[:4] in (b"\x89PNG", b"# ba")
    page = (folder / "index.html").read_text()
    assert "10%-90%" in page and "persistence" in page
    states = pq.read_table(tmp_path / "out" / "_states.parquet")
    learner = backfill.load_checkpoint(tmp_path / "out" / "_checkpoint")
    assert states.column("key").to_pylist() == ["s0", "s1", "s2"]
    assert states.column_names == ["key", *(f"h0_{j}" for j in range(6))]
    h = [learner.get_state(k)[0, 3] for k in ["s0", "s1", "s2"]]
    assert np.array_equal(states.column("h0_3").to_numpy(), h)


def test_report_figures_do_not_depend_on_cutting(data, tmp_path):
    _, path = data
    books = []
    for rows in (97, 13):
        out = tmp_path / f"out{rows}"
        run(make_job(path, out, chunk_rows=rows, checkpoint_rows=1))
        books.append(checkpoint.read(out / "_checkpoint")[1]["book"])
    a, b = (book.curve() for book in books)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert len(a) == -(-(KEYS * STEPS - KEYS) // 64)
    assert books[0].samples.keys() == books[1].samples.keys() == {"s0", "s1", "s2"}


def test_a_committed_part_that_went_missing_is_an_error(data, tmp_path):
    _, path = data
    out = tmp_path / "out"
    run(make_job(path, out, chunk_rows=300, checkpoint_rows=1))
    os.unlink(out / "part-000001.parquet")
    with pytest.raises(StateError, match="lacks 1 part file.*part-000001.parquet"):
        run(make_job(path, out, chunk_rows=300, resume=True))


def test_lstm_states_hold_h_and_c(data, tmp_path):
    _, path = data
    run(make_job(path, tmp_path / "out", cell="lstm", layers=2, hidden=3, states=True,
                 chunk_rows=500))  # fmt: skip
    states = pq.read_table(tmp_path / "out" / "_states.parquet")
    learner = backfill.load_checkpoint(tmp_path / "out" / "_checkpoint")
    h, c = learner.get_state("s2")
    assert states.num_rows == KEYS and len(states.column_names) == 1 + 2 * 2 * 3
    assert states.column("h1_2")[2].as_py() == h[1, 2]
    assert states.column("c0_1")[2].as_py() == c[0, 1]


def test_a_second_run_on_the_same_folder_is_refused(data, tmp_path):
    _, path = data
    out = tmp_path / "out"
    out.mkdir()
    holder = folder._lock(str(out))
    try:
        with pytest.raises(StateError, match="is in use by another backfill run"):
            run(make_job(path, out))
    finally:
        os.close(holder)
    assert os.listdir(out) == ["_lock"]
    run(make_job(path, out, chunk_rows=500))  # the lock is free again


def test_an_interrupted_overwrite_can_be_overwritten(data, tmp_path):
    _, path = data
    out = tmp_path / "out"
    run(make_job(path, out, chunk_rows=300))
    (out / "_job.json").unlink()  # as a stop in the middle of clearing the folder leaves it
    with pytest.raises(ConfigError, match="no _job.json .*overwrite"):
        run(make_job(path, out, chunk_rows=300, resume=True))
    assert run(make_job(path, out, chunk_rows=300, overwrite=True))["rows_out"] == KEYS * STEPS


def test_output_path_spelling_and_run_only_settings_do_not_change_the_job(data, tmp_path,
                                                                          monkeypatch):  # fmt: skip
    _, path = data
    monkeypatch.chdir(tmp_path)
    with monkeypatch.context() as m:
        crash_after(m, 2)
        with pytest.raises(Crash):
            run(make_job(path, "out", checkpoint_rows=1))
    summary = run(make_job(path, str(tmp_path / "out") + "/", resume=True, states=True,
                           chunk_rows=33, report="auto"))  # fmt: skip
    assert summary["resumed_at"] == 194


def test_an_unstarted_folder_is_taken_without_overwrite(data, tmp_path):
    """A run that failed before its first checkpoint left nothing worth keeping."""
    import torch

    _, path = data
    out = tmp_path / "out"
    torch.save(torch.nn.GRU(3, 4), tmp_path / "m.pt")
    with pytest.raises(ConfigError, match="the model takes 3 inputs, but the feed gives 2"):
        run(make_job(path, out, features=["x0", "x1"], learn=False, model=str(tmp_path / "m.pt")))
    run(make_job(path, out, chunk_rows=500))


@pytest.mark.parametrize(
    "options, match",
    [
        ({"quantiles": [0.1, 0.9]}, "0.5 among them"),
        ({"tbptt": [4.5, 8]}, "tbptt must be two integers"),
        ({"grid": [1]}, "grid must be a time span"),
        ({"checkpoint_seconds": False}, "checkpoint_seconds must be a positive number"),
        ({"report": str(Path(__file__))}, "is a file"),
        ({"report": ""}, "report must be a folder"),
        ({"key": ""}, "key must be a column name, or false for one series"),
        ({"late": "skip"}, "late must be one of 'error', 'drop'"),
        ({"loss": "pinball"}, "give quantiles"),
        ({"loss": "cross_entropy"}, "does not fit a backfill of forecasts"),
        ({"missing": "guess"}, "missing"),
        ({"scale": "robust"}, "scale must be 'auto', 'per_key', 'global' or 'none'"),
        ({"lags": "week"}, "lags must be 'auto', 'none' or positive integers"),
        ({"lags": [0]}, "lags must be 'auto', 'none' or distinct positive integers"),
        ({"minimum": "zero"}, "minimum must be a number"),
        ({"minimum": float("inf")}, "minimum must be a finite number"),
        ({"season": "daily"}, "season must be a number of steps, 'auto' or 'none'"),
        ({"decay": 1.5}, r"decay must be a number in \(0, 1\]"),
        ({"schedule": "cosine"}, "schedule must be one of 'warmup', 'constant', 'exponential'"),
        ({"relative": "seasonal"}, "relative must be one of 'auto', 'last', 'none'"),
        ({"calendar": ["hour"]}, "hour"),
    ],
)  # fmt: skip
def test_bad_settings_are_refused_before_anything_is_written(data, tmp_path, options, match):
    _, path = data
    with pytest.raises(ConfigError, match=match):
        run(make_job(path, tmp_path / "out", **options))
    assert not (tmp_path / "out").exists()


def test_report_folder_with_other_files_or_inside_the_output_is_refused(data, tmp_path):
    _, path = data
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "index.html").write_text("keep")
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(ConfigError, match=r"holds other files \(notes.txt\)"):
        run(make_job(path, tmp_path / "out", report=str(tmp_path / "mine")))
    with pytest.raises(ConfigError, match="is inside the output folder"):
        run(make_job(path, tmp_path / "out", report=str(tmp_path / "out" / "plots")))
    assert (tmp_path / "mine" / "index.html").read_text() == "keep"


def test_job_file_keys_outside_the_backfill_table_and_unreadable_files(tmp_path, capsys):
    toml = tmp_path / "job.toml"
    toml.write_text('hidden = 4\n[backfill]\ninput = "x.parquet"\n')
    assert cli.main(["backfill", "--config", str(toml)]) == 2
    assert "every key belongs in it; found hidden outside" in capsys.readouterr().err
    assert cli.main(["backfill", "--config", str(tmp_path)]) == 2
    assert "cannot read the job file" in capsys.readouterr().err


def test_garbage_model_file(data, tmp_path, capsys):
    _, path = data
    (tmp_path / "g.bin").write_text("I am garbage\n")
    code = cli.main(["backfill", path, "-o", str(tmp_path / "o"), "--model",
                     str(tmp_path / "g.bin")])  # fmt: skip
    assert code == 1
    assert "g.bin: not a model file" in capsys.readouterr().err


def test_files_are_readable_as_the_umask_allows(data, tmp_path, monkeypatch):
    _, path = data
    monkeypatch.setattr(checkpoint, "_MODE", 0o640)
    run(make_job(path, tmp_path / "out", chunk_rows=500))
    for name in ("part-000000.parquet", "_checkpoint", "_job.json"):
        assert os.stat(tmp_path / "out" / name).st_mode & 0o777 == 0o640


def test_empty_input_finishes_with_a_checkpoint(tmp_path):
    path = tmp_path / "empty.parquet"
    pq.write_table(pa.Table.from_pandas(history().iloc[:0], preserve_index=False), path)
    summary = run(make_job(path, tmp_path / "out"))
    assert summary["rows_out"] == 0 and os.path.exists(summary["checkpoint"])
    assert run(make_job(path, tmp_path / "out", resume=True))["rows_out"] == 0


def test_output_inside_the_input_folder_is_refused(data, tmp_path):
    df, _ = data
    folder = tmp_path / "in"
    folder.mkdir()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), folder / "a.parquet")
    with pytest.raises(ConfigError, match="is inside the input folder"):
        run(make_job(folder, folder / "forecasts"))
    with pytest.raises(ConfigError, match="report folder .* is inside the output folder"):
        run(make_job(folder, tmp_path / "out", report=str(tmp_path / "out" / ".." / "out" / "r")))
    assert sorted(os.listdir(folder)) == ["a.parquet"]


def test_a_damaged_job_file_is_overwritten_on_request(data, tmp_path):
    _, path = data
    out = tmp_path / "out"
    run(make_job(path, out, chunk_rows=500))
    (out / "_job.json").write_text('{"job": ')
    with pytest.raises(StateError, match="_job.json is damaged"):
        run(make_job(path, out, chunk_rows=500, resume=True))
    run(make_job(path, out, chunk_rows=500, overwrite=True))
    run(make_job(path, out, chunk_rows=500, resume=True))


def test_job_file_can_turn_off_time_checkpoints_and_the_report(data, tmp_path):
    _, path = data
    job = backfill.checked(make_job(path, tmp_path / "o", checkpoint_seconds=0, report=False))
    assert job.checkpoint_seconds is None and job.report is None


def test_late_rows_can_be_dropped(tmp_path):
    df = history(steps=20)
    df = pd.concat([df, df.iloc[[4]]])  # an old row again, at the end
    path = tmp_path / "late.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
    with pytest.raises(feeds.TimeOrderError, match="late='drop'"):
        run(make_job(path, tmp_path / "a"))
    summary = run(make_job(path, tmp_path / "b", late="drop"))
    assert summary["rows_in"] == len(df) and summary["rows_out"] == len(df) - 1


def test_json_summary_is_strict_json(data, tmp_path, capsys):
    _, path = data
    code = cli.main(["backfill", path, "-o", str(tmp_path / "o"), "--targets", "y",
                     "--hidden", "4", "--horizon", "500", "--no-report", "--json",
                     "--progress", "none"])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)  # no NaN in it
    assert summary["mae"] is None and summary["rows_out"] == KEYS * STEPS


def test_resuming_a_finished_job_keeps_its_report(data, tmp_path):
    _, path = data
    out = tmp_path / "out"
    first = run(make_job(path, out, chunk_rows=500, report="auto"))
    page = out / "_report" / "index.html"
    before = page.read_bytes()
    again = run(make_job(path, out, chunk_rows=500, report="auto", resume=True))
    assert page.read_bytes() == before and again["report"] == first["report"]


def test_each_rows_hidden_state_in_inference(data, tmp_path, monkeypatch):
    df, path = data
    whole = tmp_path / "whole"
    raw = dict(scale="none", lags="none")  # the model sees the columns as they are
    run(make_job(path, whole, learn=False, hidden_states=True, layers=2, chunk_rows=1000, **raw))
    table = outputs(whole)
    assert table.column_names[-6:] == [f"h_{j}" for j in range(6)]
    h = np.stack([table.column(f"h_{j}").to_numpy() for j in range(6)], axis=1)
    model = streamrnn.GRU(3, 6, 2, output_size=None, seed=0)  # the job's model, headless
    head = streamrnn.GRU(3, 6, 2, output_size=1, seed=0)
    model.load_state_dict({k: v for k, v in head.state_dict().items() if "head" not in k})
    for rows in df.groupby("key").groups.values():
        x = df.loc[rows, ["x0", "x1", "y"]].to_numpy(np.float32)
        assert np.array_equal(h[rows], model.forward(x)[0])  # the top layer's h after each row
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        crash_after(m, 4)
        with pytest.raises(Crash):
            run(make_job(path, out, learn=False, hidden_states=True, layers=2,
                         checkpoint_rows=150, **raw))  # fmt: skip
    run(make_job(path, out, learn=False, hidden_states=True, layers=2, chunk_rows=77,
                 resume=True, **raw))  # fmt: skip
    assert_same(outputs(out), table)
    with pytest.raises(ConfigError, match="hidden_states writes each row's state in inference"):
        run(make_job(path, tmp_path / "x", hidden_states=True))


# -- forecasting defaults ----------------------------------------------------------------------
def test_auto_settings_come_from_the_sampling_step(tmp_path):
    from streamrnn.backfill.job import checked
    from streamrnn.backfill.runner import _season_for, resolved

    assert [_season_for(pd.Timedelta(s)) for s in ("5min", "1h", "1D", "7D", "31D", "365D")] == [
        288, 24, 7, 52, 12, None]  # fmt: skip
    times = pd.date_range("2024-01-01", periods=60, freq="1h")
    df = pd.DataFrame({"time": times, "level": np.sin(np.arange(60) / 3.0)})
    df.to_parquet(tmp_path / "h.parquet")
    job = resolved(checked(Job(str(tmp_path / "h.parquet"), str(tmp_path / "out"),
                               targets=["level"], learn=True, calendar="auto")))  # fmt: skip
    assert (job.season, job.lags, job.scale) == (24, [23], "per_key")
    assert job.calendar == ["hour_of_day", "day_of_week", "day_of_year"]
    job = resolved(checked(Job(str(tmp_path / "h.parquet"), str(tmp_path / "out"),
                               targets=["level"], horizon=3, season=4, lags="none")))  # fmt: skip
    assert (job.season, job.lags, job.calendar) == (4, None, None)
    days = pd.bdate_range("2024-01-01", periods=60)  # trading days: a week is five rows
    pd.DataFrame({"time": days, "level": np.arange(60.0)}).to_parquet(tmp_path / "d.parquet")
    job = resolved(checked(Job(str(tmp_path / "d.parquet"), str(tmp_path / "out"),
                               targets=["level"])))  # fmt: skip
    assert (job.season, job.lags) == (5, [4])


def test_quantiles_never_cross_and_the_minimum_holds(data, tmp_path):
    _, path = data
    summary = run(make_job(path, tmp_path / "out", quantiles=[0.5, 0.05, 0.95], minimum=-0.25,
                           lr=0.05))  # fmt: skip
    table = outputs(tmp_path / "out")
    q = np.stack([table.column(f"y_q{v}").to_numpy() for v in ("0.05", "0.5", "0.95")], axis=1)
    assert (np.diff(q, axis=1) >= 0).all() and (q >= -0.25).all()
    assert (table.column("y_forecast").to_numpy() == q[:, 1]).all()
    assert summary["ar_mae"] > 0 and summary["seasonal_mae"] > 0


def test_command_line_forecasting_options(data, tmp_path):
    _, path = data
    code = cli.main(["backfill", path, "-o", str(tmp_path / "out"), "--key", "key",
                     "--time", "time", "--targets", "y", "--learn", "--hidden", "4", "--min",
                     "0", "--transform", "none", "--scale", "none", "--lags", "2", "--schedule",
                     "exponential",
                     "--warmup", "5", "--decay", "0.99", "--relative", "none", "--loss",
                     "mae", "--no-report", "--progress", "none", "--json"])  # fmt: skip
    assert code == 0
    table = outputs(tmp_path / "out")
    assert (table.column("y_forecast").to_numpy() >= 0).all()
    engine = streamrnn.backfill.load_checkpoint(tmp_path / "out" / "_checkpoint")
    assert (engine.relative, engine.minimum, engine.loss.name) == (None, 0.0, "mae")
    assert engine.feed.scale is None and engine.feed.columns[-1] == "y_lag2"
    assert engine.feed.transform is None
    assert engine.optimizer.lr_at(7) == pytest.approx(streamrnn.learner.DEFAULT_LR * 0.99)


@pytest.fixture(scope="module")
def flows(tmp_path_factory):
    """``history`` with a target that cannot be negative: ``y`` as a flow, exp of it."""
    df = history()
    df["y"] = np.exp(2.0 * df["y"])
    path = tmp_path_factory.mktemp("flows") / "flows.parquet"
    df.to_parquet(path)
    return df, str(path)


@pytest.mark.parametrize("flags, read_as", [(["--min", "0"], "log1p"), (["--min", "0.5"], "log1p"),
                                            (["--min", "0", "--transform", "none"], None),
                                            (["--transform", "log1p"], "log1p"),
                                            (["--min", "-1"], None), ([], None)])  # fmt: skip
def test_a_target_that_cannot_be_negative_is_learned_on_log1p(
    flows, tmp_path, capsys, flags, read_as
):
    df, _ = flows
    engine = learned_from_the_command_line(flows, tmp_path, [*flags, "--lags", "2"])
    assert engine.feed.transform == read_as
    assert engine._transforms == (() if read_as is None else (read_as,))
    said = capsys.readouterr().out
    assert ("read as log1p(value): y (forecasts turned back" in said) == (read_as is not None)
    table = outputs(tmp_path / "out")
    forecast = table.column("y_forecast").to_numpy()
    assert np.isfinite(forecast).all() and (forecast > -1).all()
    if read_as:  # the forecasts and the actual values in the data's units
        assert (forecast >= 0).all() and np.median(forecast) > 1.0
    actual = table.column("y_actual").to_numpy(zero_copy_only=False)
    known = ~np.isnan(actual)
    np.testing.assert_allclose(np.sort(actual[known]), np.sort(df["y"].to_numpy()[3:]),
                               rtol=1e-5)  # fmt: skip


def test_a_negative_target_read_as_log1p_is_an_error_in_the_commands_words(data, tmp_path, capsys):
    _, path = data
    code = cli.main(["backfill", path, "-o", str(tmp_path / "out"), "--key", "key", "--time",
                     "time", "--targets", "y", "--learn", "--min", "0"])  # fmt: skip
    assert code == 1  # an error in the data, as for any other bad value
    err = capsys.readouterr().err
    assert re.search(r"target column 'y' is -0\.\d+ at row \d+; --transform log1p takes "
                     r"values >= 0 \(a target that cannot be negative\); a target that can be "
                     r"takes --transform none", err), err  # fmt: skip


def test_inference_with_a_saved_learner_reads_the_data_as_it_learned(flows, tmp_path, capsys):
    _, path = flows
    learned = learned_from_the_command_line(
        flows, tmp_path, ["--min", "0", "--quantiles", "0.05,0.5,0.95", "--lags", "2"]
    )
    model = str(tmp_path / "out" / "_checkpoint")
    base = ["backfill", path, "--key", "key", "--time", "time", "--targets", "y", "--model",
            model, "--no-report", "--progress", "none"]  # fmt: skip
    assert cli.main([*base, "-o", str(tmp_path / "again")]) == 0
    engine = backfill.load_checkpoint(tmp_path / "again" / "_checkpoint")
    assert engine.feed.transform == "log1p" and engine._transforms == ("log1p",)
    assert (engine.feed.scale, engine.feed.lags) == (learned.feed.scale, learned.feed.lags)
    assert engine.quantiles == (0.05, 0.5, 0.95)
    table = outputs(tmp_path / "again")
    q = np.stack([table.column(f"y_q{v}").to_numpy() for v in ("0.05", "0.5", "0.95")], axis=1)
    assert (q >= 0).all() and (np.diff(q, axis=1) >= 0).all()
    capsys.readouterr()
    code = cli.main([*base, "-o", str(tmp_path / "other"), "--transform", "none"])
    assert code == 2
    assert ("learned its targets on log1p (--transform log1p), but --transform none reads "
            "them otherwise") in capsys.readouterr().err  # fmt: skip


def test_auto_transform_needs_targets_and_no_given_model(tmp_path):
    plain = dict(season=None, calendar=None, lags=None, minimum=0.0)  # nothing read from data

    def transform(**kw):
        return runner.resolved(Job("in.parquet", str(tmp_path / "out"), **plain, **kw)).transform

    assert transform(targets=["y"], model="m.pt") == "none"
    assert transform(targets=["y"]) == "log1p"
    assert transform() == "none"  # no targets: the error that follows asks for them


def learned_from_the_command_line(data, tmp_path, flags):
    """The learner a small learning backfill with ``flags`` ends with (its checkpoint)."""
    _, path = data
    code = cli.main(["backfill", path, "-o", str(tmp_path / "out"), "--key", "key",
                     "--time", "time", "--targets", "y", "--learn", "--hidden", "4",
                     "--no-report", "--progress", "none", *flags])  # fmt: skip
    assert code == 0
    return streamrnn.backfill.load_checkpoint(tmp_path / "out" / "_checkpoint")


@pytest.mark.parametrize("flags, ar", [([], streamrnn.learner.DEFAULT_AR), (["--ar", "3"], 3),
                                       (["--ar", "0"], None)])  # fmt: skip
def test_command_line_ar_blend(data, tmp_path, flags, ar):
    assert learned_from_the_command_line(data, tmp_path, flags).ar == ar


def test_command_line_ar_must_be_a_count(data, tmp_path, capsys):
    _, path = data
    code = cli.main(["backfill", path, "-o", str(tmp_path / "out"), "--key", "key",
                     "--time", "time", "--targets", "y", "--learn", "--ar", "-1"])  # fmt: skip
    assert code == 2
    assert "--ar must be an integer >= 0, got -1" in capsys.readouterr().err


@pytest.mark.parametrize("flags, seasonal", [(["--season", "3", "--lags", "2"], True),
                                             (["--season", "3", "--lags", "1"], False),
                                             (["--lags", "none"], False)])  # fmt: skip
def test_the_seasonal_naive_forecast_of_the_lag_input_is_blended(data, tmp_path, flags, seasonal):
    engine = learned_from_the_command_line(data, tmp_path, flags)
    columns = list(engine.feed.columns)
    if seasonal:  # the lag of season - horizon rows is the seasonal naive forecast
        assert engine.seasonal == (columns.index("y_lag2"),)
    else:
        assert engine.seasonal is None
