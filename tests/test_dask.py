"""The backfill on a Dask cluster of worker processes on this machine: the local job's
output bit for bit, the same figures, workers and the driver killed mid-run, refusals."""

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from streamrnn import ConfigError, cli
from streamrnn.backfill import Job, run
from streamrnn.backfill.distributed import ROUTE, shard_of

distributed = pytest.importorskip("distributed")

KEYS, STEPS = 7, 120


def history(seed=0, keys=KEYS, steps=STEPS):
    """Hourly readings of several sensors, interleaved by time: a feature and a flow."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    frames = [
        pd.DataFrame({
            "sensor": f"s{k}",
            "time": pd.Timestamp("2024-01-01") + pd.to_timedelta(t, "h"),
            "x0": rng.standard_normal(steps),
            "y": np.exp(np.sin(t / (5.0 + k)) + 0.1 * rng.standard_normal(steps)),
        })
        for k in range(keys)
    ]  # fmt: skip
    df = pd.concat(frames).sort_values(["time", "sensor"], kind="stable")
    return df.reset_index(drop=True)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)  # fmt: skip
    with cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("history")
    path = folder / "history.parquet"
    pq.write_table(pa.Table.from_pandas(history(), preserve_index=False), path, row_group_size=100)
    return str(path)


COMMON = dict(key="sensor", time="time", targets=["y"], hidden=4, report=None, progress="none",
              checkpoint_seconds=None, chunk_rows=53)  # fmt: skip


def rows_of(folder):
    """The output rows, by series and time (a shard's rows come in its own order)."""
    table = ds.dataset(str(folder), format="parquet").to_table().to_pandas()
    return table.sort_values(["sensor", "time"], kind="stable").reset_index(drop=True)


def assert_same_rows(a, b):
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for name in a.columns:
        assert a[name].equals(b[name]), name


def same_as_local(tmp_path, client, input, shards, **options):
    local = run(Job(input, str(tmp_path / "local"), **COMMON, **options))
    spread = run(Job(input, str(tmp_path / "dask"), **COMMON, **options), client=client,
                 shards=shards)  # fmt: skip
    assert_same_rows(rows_of(tmp_path / "dask"), rows_of(tmp_path / "local"))
    for name, value in local.items():
        if name in ("seconds", "rows_per_s", "output", "checkpoint", "parts", "resumed_at"):
            continue
        assert spread[name] == value or (value != value and spread[name] != spread[name]), name
    return spread


@pytest.mark.parametrize("shards", [1, 5])
def test_per_key_learning_with_quantiles_is_the_local_jobs(tmp_path, client, data, shards,
                                                           monkeypatch):  # fmt: skip
    from streamrnn.backfill import distributed as on_dask

    monkeypatch.setattr(on_dask, "PROGRESS_SECONDS", 0.001)  # progress lines between shards
    monkeypatch.setattr(on_dask, "ROUTE_ROWS", 200)  # pieces of two row groups of 100 rows
    summary = same_as_local(tmp_path, client, data, shards, learn=True, per_key=True,
                            quantiles=[0.1, 0.5, 0.9], minimum=0.0)  # fmt: skip
    assert summary["shards"] == shards and summary["updates"] > 0
    routed = os.listdir(tmp_path / "dask" / ROUTE)
    assert sum(n.endswith(".done") for n in routed) == 5  # the input's 9 row groups, by two
    assert 1 <= sum(n.startswith("shard-") for n in routed) <= shards


def test_inference_from_a_saved_learner_on_a_grid_is_the_local_jobs(tmp_path, client, data):
    grid = dict(grid="2h", missing="mask")
    run(Job(data, str(tmp_path / "learned"), **COMMON, learn=True, **grid))
    model = str(tmp_path / "learned" / "_checkpoint")
    same_as_local(tmp_path, client, data, 3, model=model, **grid)


def test_a_folder_of_files_is_the_local_jobs(tmp_path, client):
    df = history(seed=1)
    folder = tmp_path / "in"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(df)), 3)):
        df.iloc[part].to_parquet(folder / f"part-{i}.parquet", row_group_size=64)
    same_as_local(tmp_path, client, str(folder), 4, learn=True, per_key=True)


def test_a_key_goes_to_the_same_shard_on_every_run():
    keys = pd.Series(["s1", "s2", "s1", "a much longer key"])
    first = shard_of(keys, 7)
    assert first.tolist() == shard_of(keys.astype("category"), 7).tolist()
    assert first[0] == first[2]
    assert (shard_of(pd.Series([3, 4, 3]), 5) == shard_of(np.array([3, 4, 3]), 5)).all()


class KillOnce(distributed.WorkerPlugin):
    """Kills its worker's process (SIGKILL) as it writes the ``after``-th part file of
    shard ``shard``, once: a file under ``flag`` says it happened."""

    def __init__(self, shard, after, flag):
        self.shard, self.after, self.flag = shard, after, flag

    def setup(self, worker):
        from streamrnn import checkpoint

        write, seen = checkpoint.write_atomic, []
        shard, after, flag = f"shard-{self.shard:04d}", self.after, self.flag

        def dying_write(path, writer, *args, **kwargs):
            name = os.path.basename(path)
            if shard in path and name.startswith("part-") and not os.path.exists(flag):
                seen.append(name)
                if len(seen) == after:
                    with open(flag, "w") as f:
                        f.write(path)
                    os.kill(os.getpid(), signal.SIGKILL)
            return write(path, writer, *args, **kwargs)

        checkpoint.write_atomic = dying_write


@pytest.mark.parametrize("seed", [0, 1])
def test_a_worker_killed_mid_shard_changes_nothing(tmp_path, client, data, seed):
    rng = np.random.default_rng(seed)
    flag = str(tmp_path / "killed")
    shard, after = int(rng.integers(0, 3)), int(rng.integers(1, 4))
    client.register_plugin(KillOnce(shard, after, flag), name=f"kill-{seed}")
    try:
        same_as_local(tmp_path, client, data, 3, learn=True, per_key=True, checkpoint_rows=40)
    finally:
        client.unregister_worker_plugin(f"kill-{seed}")
    assert os.path.exists(flag)  # it did die
    stray = [f for _, _, names in os.walk(tmp_path / "dask") for f in names if ".tmp" in f]
    assert stray == []


def test_the_driver_killed_then_resumed_gives_the_same_output(tmp_path, client, data):
    script = textwrap.dedent(f"""
        import sys
        import distributed
        from streamrnn.backfill import Job, run
        common = {COMMON!r}
        with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None) \\
                as cluster, distributed.Client(cluster) as client:
            run(Job({data!r}, {str(tmp_path / "dask")!r}, learn=True, per_key=True,
                    checkpoint_rows=40, **common), client=client, shards=4, out=sys.stdout)
    """)  # fmt: skip
    driver = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    for line in driver.stdout:
        if line.startswith("shards 1/"):  # one shard done, the others on their way
            driver.send_signal(signal.SIGKILL)
            break
    driver.wait()
    assert driver.returncode == -signal.SIGKILL
    local = run(Job(data, str(tmp_path / "local"), learn=True, per_key=True, **COMMON))
    resumed = run(Job(data, str(tmp_path / "dask"), learn=True, per_key=True, resume=True,
                      checkpoint_rows=40, **COMMON), client=client)  # fmt: skip
    assert_same_rows(rows_of(tmp_path / "dask"), rows_of(tmp_path / "local"))
    assert (resumed["mae"], resumed["rows_in"]) == (local["mae"], local["rows_in"])


def test_a_bad_row_fails_the_job_as_the_local_one_does(tmp_path, client, capsys):
    df = history()
    df.loc[300, "x0"] = np.nan  # missing="error": a missing feature stops the job
    path = tmp_path / "bad.parquet"
    df.to_parquet(path, row_group_size=100)
    args = ["backfill", str(path), "--key", "sensor", "--time", "time", "--targets", "y",
            "--learn", "--per-key", "--hidden", "4", "--no-report", "--progress",
            "none"]  # fmt: skip
    assert cli.main([*args, "-o", str(tmp_path / "local")]) == 1
    local = capsys.readouterr().err.strip().splitlines()[-1]
    code = cli.main([*args, "-o", str(tmp_path / "dask"), "--dask", "local:1"])
    spread = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1
    assert "at row 300 (key 's6')" in local
    assert spread == local
    small = ["--chunk-rows", "128"]  # the row named within its chunk, as the local job does
    assert cli.main([*args, *small, "-o", str(tmp_path / "local2")]) == 1
    local = capsys.readouterr().err.strip().splitlines()[-1]
    assert cli.main([*args, *small, "-o", str(tmp_path / "dask2"), "--dask", "local:1"]) == 1
    assert "at row 44 (row 300 of the stream) (key 's6')" in local
    assert capsys.readouterr().err.strip().splitlines()[-1] == local


@pytest.mark.parametrize(
    "options, match",
    [
        (dict(learn=True), r"learning with shared weights \(learn=True without per_key=True\)"),
        (dict(learn=True, per_key=True, scale="global"), r"scale='global' scales every key"),
        (dict(key=False), r"splits the series by key, and this job has one series"),
        (
            dict(targets=None, learn=True, per_key=True),
            r"a new model needs targets to size its "
            r"outputs; name them \(targets=\.\.\.\)",
        ),  # the local job's words, before routing
    ],
)
def test_what_cannot_be_split_by_key_is_refused(tmp_path, client, data, options, match):
    job = Job(data, str(tmp_path / "out"), **{**COMMON, **options})
    with pytest.raises(ConfigError, match=match):
        run(job, client=client)
    assert not os.path.exists(tmp_path / "out")


def test_csv_input_is_the_local_jobs(tmp_path, client):
    df = history(seed=2)
    df["time"] = df["time"].dt.strftime("%m/%d/%Y %H:%M")  # text times in a format of theirs
    df["x0"] = (10 * df["x0"]).round().astype(int)  # integers, read as numbers
    df.loc[df.index % 37 == 3, "y"] = None
    path = tmp_path / "in.csv"
    df.to_csv(path, index=False, na_rep="-")
    same_as_local(tmp_path, client, str(path), 3, learn=True, per_key=True,
                  time_format="%m/%d/%Y %H:%M", na_values=["-"], missing="mask")  # fmt: skip


def test_arrow_ipc_input_is_the_local_jobs(tmp_path, client):
    table = pa.Table.from_pandas(history(seed=3), preserve_index=False)
    path = tmp_path / "in.arrow"
    with pa.ipc.new_file(path, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=150):
            writer.write_batch(batch)
    same_as_local(tmp_path, client, str(path), 3, learn=True, per_key=True)


def test_a_folder_partitioned_by_key_is_refused_before_anything_is_written(tmp_path, client):
    df = history()
    pq.write_to_dataset(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "in",
                        partition_cols=["sensor"])  # fmt: skip
    with pytest.raises(ConfigError, match=r"is partitioned by folder \(sensor=...\)"):
        run(Job(str(tmp_path / "in"), str(tmp_path / "out"), **COMMON, learn=True,
                per_key=True), client=client)  # fmt: skip
    assert not os.path.exists(tmp_path / "out")


def test_overwrite_starts_again_and_a_resume_keeps_the_shard_count(tmp_path, client, data):
    job = Job(data, str(tmp_path / "dask"), **COMMON, learn=True, per_key=True)
    first = run(job, client=client, shards=3)
    with pytest.raises(ConfigError, match="holds a backfill on Dask already; pass resume=True"):
        run(job, client=client)
    with pytest.raises(ConfigError, match="was split into 3 shards, not 2; resume with shards=3"):
        run(Job(data, str(tmp_path / "dask"), **COMMON, learn=True, per_key=True, resume=True),
            client=client, shards=2)  # fmt: skip
    again = run(Job(data, str(tmp_path / "dask"), **COMMON, learn=True, per_key=True,
                    overwrite=True), client=client)  # fmt: skip
    assert again["shards"] == 4 and again["mae"] == first["mae"]  # twice the 2 workers' threads


def test_a_resume_over_input_cut_otherwise_is_refused(tmp_path, client):
    path = tmp_path / "in.parquet"
    table = pa.Table.from_pandas(history(), preserve_index=False)
    pq.write_table(table, path, row_group_size=100)
    job = Job(str(path), str(tmp_path / "dask"), **COMMON, learn=True, per_key=True)
    run(job, client=client, shards=2)
    pq.write_table(table, path, row_group_size=70)  # the same rows, other row groups
    with pytest.raises(ConfigError, match=r"was routed from input cut into other pieces .* pass "
                       r"overwrite=True to start again"):  # fmt: skip
        run(dataclasses.replace(job, resume=True), client=client)


def test_the_report_has_the_local_reports_figures(tmp_path, client, data):
    options = dict(COMMON, report="auto", learn=True, per_key=True, quantiles=[0.1, 0.5, 0.9])
    run(Job(data, str(tmp_path / "local"), **options))
    summary = run(Job(data, str(tmp_path / "dask"), **options), client=client, shards=3)
    assert summary["report"] == str(tmp_path / "dask" / "_report" / "index.html")

    def table(folder):
        text = (folder / "_report" / "report.md").read_text()
        return [line for line in text.splitlines() if line.startswith("| ")]

    assert table(tmp_path / "dask") == table(tmp_path / "local") != []
    assert (tmp_path / "dask" / "_report" / "forecast.png").stat().st_size > 0


def test_a_damaged_input_file_is_the_local_jobs_error(tmp_path, client):
    import feeds

    table = pa.Table.from_pandas(history(seed=4), preserve_index=False)
    path = tmp_path / "in.parquet"
    pq.write_table(table, path, row_group_size=300, write_page_checksum=True)
    good = path.read_bytes()
    path.write_bytes(good[:100] + b"\0" * 50 + good[150:])
    errors = []
    for folder, client_ in (("local", None), ("dask", client)):
        with pytest.raises(feeds.SchemaError) as caught:
            run(Job(str(path), str(tmp_path / folder), **COMMON, learn=True, per_key=True),
                client=client_)  # fmt: skip
        errors.append(str(caught.value))
    assert errors[0] == errors[1] and "in.parquet: the file is damaged" in errors[0]
