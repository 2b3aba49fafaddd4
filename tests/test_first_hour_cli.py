"""A newcomer's first hour on the command line (issue 13, items 7 to 9): errors in the
command's words and exit codes as documented, per-column policies, one series and
column types as options, outputs that carry the time and the value each forecast is
for, reports that say what they plot, and a report that survives a crash."""

import glob
import json
import os
import pickle

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import streamrnn
from streamrnn import cli, report
from streamrnn.backfill import Job, job, run, runner

ROWS = 120


def raw_csv(path, rows=ROWS, gaps=True):
    """Hourly readings as an export writes them: a pm2.5 target with gaps written NA, a
    temperature, a text wind direction and a station code with leading zeros."""
    rng = np.random.default_rng(7)
    t = pd.date_range("2024-01-01", periods=rows, freq="h")
    pm = 60 + 40 * np.sin(np.arange(rows) / 6.0) + rng.normal(0, 3, rows)
    if gaps:
        pm[[5, 40, 41, 90]] = np.nan
    df = pd.DataFrame({"time": t, "pm2.5": pm, "TEMP": np.round(rng.normal(10, 5, rows), 2),
                       "cbwd": rng.choice(["NW", "SE", "cv"], rows)})  # fmt: skip
    df.to_csv(path, index=False, na_rep="NA")
    return df


def backfill(capsys, *args):
    """``(exit status, stdout, stderr)`` of ``streamrnn backfill ARGS``."""
    code = cli.main(["backfill", *map(str, args), "--progress", "none", "--hidden", "4"])
    out, err = capsys.readouterr()
    return code, out, err


def outputs(folder):
    parts = sorted(glob.glob(os.path.join(folder, "part-*.parquet")))
    return pa.concat_tables([pq.read_table(p) for p in parts])


# -- item 7: the command line speaks command-line words ---------------------------------------
def test_a_wrong_column_name_is_a_bad_option(tmp_path, capsys):
    raw_csv(tmp_path / "raw.csv")
    code, _, err = backfill(capsys, tmp_path / "raw.csv", "-o", tmp_path / "o", "--key", "cbwd",
                            "--targets", "pm25")  # fmt: skip
    assert code == 2, err
    assert "--targets names column 'pm25', which the input does not have (did you mean " \
           "'pm2.5'?)" in err  # fmt: skip
    code, _, err = backfill(capsys, tmp_path / "raw.csv", "-o", tmp_path / "o", "--key", "wind",
                            "--targets", "pm2.5")  # fmt: skip
    assert code == 2 and "--key names column 'wind'" in err
    assert not (tmp_path / "o").exists()


def test_an_input_that_does_not_exist(tmp_path, capsys):
    code, _, err = backfill(capsys, tmp_path / "nope", "-o", tmp_path / "o")
    assert code == 2
    assert f"INPUT '{tmp_path / 'nope'}' does not exist" in err
    assert "suffix" not in err


@pytest.mark.parametrize(
    "args, words, code",
    [
        # the key is not named and the text column is no key by its name
        (["--targets", "pm2.5", "--missing", "ffill"], ["--key", "--no-key"], 1),
        # a missing value under the default policy
        (["--key", "cbwd", "--targets", "pm2.5", "--features", "pm2.5,TEMP"], ["--missing"], 1),
        # a policy per column for a column that is not a feature
        (["--key", "cbwd", "--targets", "pm2.5", "--features", "pm2.5",
          "--missing", "TEMP=ffill"], ["--missing names column 'TEMP'"], 2),
        (["--missing", "pm2.5:mask"], ["--missing must be", "pm2.5=mask"], 2),
        (["--column-types", "TEMP=flot"], ["--column-types 'TEMP=flot' is not accepted",
                                            "'flot'"], 2),
    ],
)  # fmt: skip
def test_errors_name_options_not_python_arguments(tmp_path, capsys, args, words, code):
    raw_csv(tmp_path / "raw.csv")
    status, _, err = backfill(capsys, tmp_path / "raw.csv", "-o", tmp_path / "o", "--no-report",
                              *args)  # fmt: skip
    assert status == code, err
    for word in words:
        assert word in err
    for python in ("Schema(", "key=", "missing=", "format=", "column_types=", "=...", "={"):
        assert python not in err, err


def test_a_suffix_it_cannot_read_names_the_format_option(tmp_path, capsys):
    raw_csv(tmp_path / "raw.txt")
    code, _, err = backfill(capsys, tmp_path / "raw.txt", "-o", tmp_path / "o")
    assert code == 2 and "name it with --format ('parquet', 'csv' or 'ipc')" in err


@pytest.mark.parametrize(
    "python, words",
    [
        ("name it with Schema(key=...), or Schema(key=False) for one series",
         "name it with --key COLUMN, or --no-key for one series"),
        ("name it with Schema(time=...)", "name it with --time COLUMN"),
        ("name them with Schema(features=...) to ignore", "name them with --features COLUMN,... "
         "to ignore"),
        ("use missing={'pm2.5': ('ffill', value)} to fill", "use --missing pm2.5=ffill:VALUE to "
         "fill"),
        ("pass missing='mask', 'ffill' or a fill value", "pass --missing mask, ffill or a fill "
         "value"),
        ("pass late='drop' to drop", "pass --late drop to drop"),
        ("pass column_types= to read it", "pass --column-types to read it"),
        ("(iter_csv(..., column_types={'TEMP': pa.float64()}) refuses it", "(--column-types "
         "TEMP=float64 refuses it"),
        ("time=['year', 'month', 'day']", "--time year,month,day"),
        ("run again with resume (--resume) to continue", "run again with --resume to continue"),
        ("hidden must be an integer >= 1, got 0", "--hidden must be an integer >= 1, got 0"),
        ("relative and minimum apply to forecasts", "--relative and --minimum apply to forecasts"),
        ("reset_index(drop=True) or x=1", "reset_index(drop=True) or x=1"),  # not ours
    ],
)  # fmt: skip
def test_python_spellings_become_options(python, words):
    assert cli.cli_words(python) == words


def test_settings_from_a_job_file_are_named_as_its_keys(tmp_path, capsys):
    raw_csv(tmp_path / "raw.csv")
    toml = tmp_path / "job.toml"
    toml.write_text(f'input = "{tmp_path / "raw.csv"}"\noutput = "{tmp_path / "o"}"\n'
                    'key = "wind"\n')  # fmt: skip
    code, _, err = backfill(capsys, "--config", toml)
    assert code == 2 and f"key in {toml} names column 'wind'" in err
    code, _, err = backfill(capsys, "--config", toml, "--key", "gust")
    assert code == 2 and "--key names column 'gust'" in err


# -- per-column policies, one series, column types ------------------------------------------
def test_missing_per_column_with_a_default_on_the_command_line(tmp_path, capsys):
    df = raw_csv(tmp_path / "raw.csv")
    df.loc[[3, 60], "TEMP"] = np.nan
    df.to_csv(tmp_path / "raw.csv", index=False, na_rep="NA")
    code, _, err = backfill(capsys, tmp_path / "raw.csv", "-o", tmp_path / "o", "--key", "cbwd",
                            "--targets", "pm2.5", "--missing", "ffill:0,pm2.5=mask",
                            "--no-report", "--lags", "none")  # fmt: skip
    assert code == 0, err
    feed = streamrnn.backfill.load_checkpoint(tmp_path / "o" / "_checkpoint").feed
    assert feed.missing == {"*": ("ffill", 0.0), "pm2.5": "mask"}
    assert feed.columns == ("pm2.5", "TEMP", "pm2.5_missing")  # a mask for pm2.5 alone
    assert feed.counts["missing"] == {"pm2.5": 4, "TEMP": 2}  # filled, not refused


def test_missing_per_column_in_a_job_file_table(tmp_path, capsys):
    raw_csv(tmp_path / "raw.csv")
    toml = tmp_path / "job.toml"
    toml.write_text(f'input = "{tmp_path / "raw.csv"}"\noutput = "{tmp_path / "o"}"\n'
                    'key = "cbwd"\ntargets = ["pm2.5"]\nreport = false\n'
                    '[missing]\n"*" = "error"\n"pm2.5" = ["ffill", 50]\n')  # fmt: skip
    code, _, err = backfill(capsys, "--config", toml)
    assert code == 0, err
    feed = streamrnn.backfill.load_checkpoint(tmp_path / "o" / "_checkpoint").feed
    assert feed.missing == {"*": "error", "pm2.5": ("ffill", 50.0)}
    assert feed.counts["missing"] == {"pm2.5": 4}  # TEMP's policy is the default, error


def test_no_key_makes_one_series(tmp_path, capsys):
    rows = np.arange(ROWS)
    df = pd.DataFrame({"time": rows, "station": rows % 3, "level": np.sin(rows / 5.0)})
    df.to_parquet(tmp_path / "in.parquet")  # 'station' reads as a key by its name
    code, out, err = backfill(capsys, tmp_path / "in.parquet", "-o", tmp_path / "a", "--targets",
                              "level", "--no-key", "--no-report", "--json")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["series"] == 1
    assert outputs(tmp_path / "a").column_names[0] == "time"  # no key column


def test_column_types_reach_the_csv_reader(tmp_path, capsys):
    df = raw_csv(tmp_path / "raw.csv", gaps=False)
    df.insert(0, "site", np.where(np.arange(ROWS) % 2, "007", "010"))
    df.drop(columns="cbwd").to_csv(tmp_path / "raw.csv", index=False)
    code, _, err = backfill(capsys, tmp_path / "raw.csv", "-o", tmp_path / "o", "--key", "site",
                            "--targets", "pm2.5", "--column-types", "site=string,TEMP=float64",
                            "--no-report")  # fmt: skip
    assert code == 0, err
    assert set(outputs(tmp_path / "o").column("site").to_pylist()) == {"007", "010"}  # not 7, 10


def test_column_types_apply_to_csv_only(tmp_path):
    pd.DataFrame({"time": [1, 2], "x": [1.0, 2.0]}).to_parquet(tmp_path / "in.parquet")
    with pytest.raises(streamrnn.ConfigError, match="column_types applies to CSV input"):
        job.checked(Job(str(tmp_path / "in.parquet"), str(tmp_path / "o"), column_types="x=int64"))


def test_a_file_in_another_encoding_is_named_and_read_with_the_option(tmp_path, capsys):
    df = raw_csv(tmp_path / "raw.csv", gaps=False).drop(columns="cbwd")
    df.insert(0, "site", np.where(np.arange(ROWS) % 2, "Zürich0", "Zürich1"))
    df.to_csv(tmp_path / "raw.csv", index=False, encoding="latin-1")
    args = [tmp_path / "raw.csv", "--key", "site", "--targets", "pm2.5", "--no-report"]
    code, _, err = backfill(capsys, *args, "-o", tmp_path / "o")
    assert code == 1 and "line 2, column 'site'" in err and "--encoding latin-1" in err
    code, _, err = backfill(capsys, *args, "-o", tmp_path / "o2", "--encoding", "latin-1")
    assert code == 0, err
    assert set(outputs(tmp_path / "o2").column("site").to_pylist()) == {"Zürich0", "Zürich1"}
    code, _, err = backfill(capsys, *args, "-o", tmp_path / "o3", "--encoding", "klingon")
    assert code == 2 and "--encoding 'klingon' is not a text encoding" in err


# -- item 8: the output says what each forecast is for -----------------------------------------
def irregular(rows=90, seed=3):
    """Three series at irregular times, interleaved, one of them ending early."""
    rng = np.random.default_rng(seed)
    frames = []
    for k, n in enumerate((rows // 3, rows // 3, rows // 6)):
        t = np.cumsum(rng.integers(1, 5, n))
        frames.append(pd.DataFrame({"key": f"s{k}", "time": t, "y": rng.normal(size=n)}))
    df = pd.concat(frames).sort_values(["time", "key"], kind="stable").reset_index(drop=True)
    df.loc[[7, 30], "y"] = np.nan
    return df


def expected_targets(df, horizon, lookahead):
    """Per row: the time and value of the row ``horizon`` rows later in its series, when
    that row is at most ``lookahead`` rows later in the stream."""
    when = np.full(len(df), np.nan)
    actual = np.full(len(df), np.nan)
    for _, rows in df.groupby("key").indices.items():
        for a, b in zip(rows[:-horizon] if horizon else rows, rows[horizon:]):
            if b - a <= lookahead:
                when[a], actual[a] = df["time"].iloc[b], df["y"].iloc[b]
    return when, actual


@pytest.mark.parametrize("horizon, lookahead", [(1, 100_000), (2, 5), (0, 0)])
def test_each_forecast_has_its_target_time_and_actual(tmp_path, horizon, lookahead):
    df = irregular()
    df.to_parquet(tmp_path / "in.parquet")
    options = dict(key="key", time="time", targets=["y"], hidden=4, horizon=horizon,
                   lookahead=lookahead, missing=("ffill", 0.0), report=None, progress="none",
                   dtype="float64", scale="none")  # fmt: skip
    summary = run(Job(str(tmp_path / "in.parquet"), str(tmp_path / "one"), chunk_rows=1000,
                      **options))  # fmt: skip
    table = outputs(tmp_path / "one")
    assert table.column_names == ["key", "time", "target_time", "y_forecast", "y_actual"]
    assert table.column("key").to_pylist() == df["key"].tolist()  # the feed's order
    assert table.column("time").to_pylist() == df["time"].tolist()
    when, actual = expected_targets(df, horizon, lookahead)
    got = table.column("target_time").to_pandas().to_numpy(float)
    assert np.array_equal(got, when, equal_nan=True)
    assert np.array_equal(table.column("y_actual").to_pandas().to_numpy(float), actual,
                          equal_nan=True)  # fmt: skip
    assert table.column("y_actual").null_count == np.isnan(actual).sum()  # nulls, not NaN
    # the rows scored are those with an actual value: the same MAE
    diff = np.abs(table.column("y_forecast").to_numpy() - actual)
    if lookahead >= 100:
        assert np.nanmean(diff) == pytest.approx(summary["mae"], rel=1e-12)
    # cut into chunks of 7 rows, then stopped and resumed: the same bits
    out = tmp_path / "cut"
    step, seen = runner._Run.step, []

    def crash(self, chunk):
        if len(seen) == 6:
            raise KeyboardInterrupt
        seen.append(1)
        step(self, chunk)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(runner._Run, "step", crash)
        with pytest.raises(KeyboardInterrupt):
            run(Job(str(tmp_path / "in.parquet"), str(out), chunk_rows=7, checkpoint_rows=10,
                    **options))  # fmt: skip
    run(Job(str(tmp_path / "in.parquet"), str(out), chunk_rows=11, resume=True, **options))
    assert outputs(out).equals(table)


def test_with_a_grid_the_target_time_is_known_at_once(tmp_path):
    t = pd.date_range("2024-03-01", periods=40, freq="h", tz="Europe/Paris")
    df = pd.DataFrame({"time": t, "y": np.sin(np.arange(40) / 3.0)}).drop(index=[10, 11])
    df.to_parquet(tmp_path / "in.parquet")
    run(
        Job(
            str(tmp_path / "in.parquet"),
            str(tmp_path / "o"),
            targets=["y"],
            grid="1h",
            missing="ffill",
            horizon=3,
            hidden=4,
            report=None,
            progress="none",
        )
    )
    table = outputs(tmp_path / "o").to_pandas()
    assert table["target_time"].dt.tz is not None
    assert (table["target_time"] - table["time"] == pd.Timedelta("3h")).all()  # last rows too
    assert table["y_actual"].isna().sum() == 3 + 2  # the last three; the empty bins' targets


def test_the_learner_counts_are_explained(tmp_path, capsys):
    raw_csv(tmp_path / "raw.csv", gaps=False)
    code, out, err = backfill(capsys, tmp_path / "raw.csv", "-o", tmp_path / "o", "--key",
                              "cbwd", "--targets", "pm2.5", "--learn", "--no-report")  # fmt: skip
    assert code == 0, err
    assert "windows, " in out and " labels" in out
    with pytest.raises(SystemExit):
        cli.main(["backfill", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "windows closed" in text and "such a batch teaches nothing" in text
    assert "target_time (the time of the row the forecast is for" in text


def test_the_forecast_plot_says_what_it_shows(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    titles = []
    set_title = Axes.set_title
    monkeypatch.setattr(Axes, "set_title", lambda ax, text, *a, **kw: (
        titles.append(text), set_title(ax, text, *a, **kw))[1])  # fmt: skip
    t = pd.date_range("2024-01-01", periods=600, freq="h")
    pd.DataFrame({"time": t, "level": np.sin(np.arange(600) / 9.0)}).to_parquet(
        tmp_path / "in.parquet")  # fmt: skip
    summary = run(Job(str(tmp_path / "in.parquet"), str(tmp_path / "o"), targets=["level"],
                      hidden=4, progress="none"))  # fmt: skip
    assert titles == ["level: last 500 scored points"]  # one series: named by its target
    text = (tmp_path / "o" / "_report" / "report.md").read_text()
    assert (
        "Actual and forecast level of the series: at most the last 500 scored points of "
        "each, each forecast made 1 row before the value it is for."
    ) in text
    assert summary["report"].endswith("index.html")
    titles.clear()
    sample = pd.DataFrame({"time": [1, 2], "actual": [0.0, 1.0], "forecast": [0.0, 1.0]})
    report.write_report(
        tmp_path / "r",
        title="t",
        summary={},
        curve=pd.DataFrame(),
        samples={"s0": sample},
        target="y",
        key="station",
        points=500,
    )
    assert titles[0] == "station s0: all 2 scored points"


# -- item 9: a report lost to a crash ---------------------------------------------------------
def test_a_report_cut_short_by_a_crash_is_written_whole_on_resume(tmp_path, monkeypatch, capsys):
    raw_csv(tmp_path / "raw.csv", gaps=False)
    args = [tmp_path / "raw.csv", "--key", "cbwd", "--targets", "pm2.5", "--learn",
            "--chunk-rows", "50"]  # fmt: skip
    code, out, err = backfill(capsys, *args, "-o", tmp_path / "whole")
    assert code == 0, err
    save, calls = report._save_png, []

    def dying(fig, path):  # killed while writing the second image: a stray temporary file
        calls.append(path)
        if len(calls) == 2:
            (path.parent / f".tmp-abc-{path.name}").write_bytes(b"half a png")
            raise SystemExit(137)
        save(fig, path)

    with monkeypatch.context() as m:
        m.setattr(report, "_save_png", dying)
        with pytest.raises(SystemExit):
            backfill(capsys, *args, "-o", tmp_path / "cut")
    assert not (tmp_path / "cut" / "_report" / "index.html").exists()
    code, out, err = backfill(capsys, *args, "-o", tmp_path / "cut", "--resume")
    assert code == 0, err
    page = out.split("report: ")[1].strip()
    assert os.path.exists(page) and page == str(tmp_path / "cut" / "_report" / "index.html")
    whole, cut = tmp_path / "whole" / "_report", tmp_path / "cut" / "_report"
    assert sorted(os.listdir(cut)) == sorted(os.listdir(whole)) == sorted(report.FILES)
    for name in report.FILES:
        assert (cut / name).read_bytes() == (whole / name).read_bytes(), name
    assert outputs(tmp_path / "cut").equals(outputs(tmp_path / "whole"))


def test_time_from_parts_and_categorical_inputs_as_options(tmp_path, capsys):
    df = raw_csv(tmp_path / "raw.csv")
    t = df.pop("time")
    parts = pd.DataFrame({"year": t.dt.year, "month": t.dt.month, "day": t.dt.day,
                          "hour": t.dt.hour})  # fmt: skip
    pd.concat([parts, df], axis=1).to_csv(tmp_path / "raw.csv", index=False, na_rep="NA")
    code, _, err = backfill(capsys, tmp_path / "raw.csv", "-o", tmp_path / "o", "--no-key",
                            "--time", "year,month,day,hour", "--categorical", "cbwd=NW|SE|cv",
                            "--targets", "pm2.5", "--missing", "ffill:0", "--lags", "none",
                            "--no-report")  # fmt: skip
    assert code == 0, err
    feed = streamrnn.backfill.load_checkpoint(tmp_path / "o" / "_checkpoint").feed
    assert feed.columns == ("pm2.5", "TEMP", "cbwd=NW", "cbwd=SE", "cbwd=cv")
    table = outputs(tmp_path / "o")
    assert table.column_names[:2] == ["time", "target_time"]
    assert table.column("time").to_pandas().tolist() == t.tolist()
    toml = tmp_path / "job.toml"
    toml.write_text(f'input = "{tmp_path / "raw.csv"}"\noutput = "{tmp_path / "o"}"\n'
                    'time = ["year", "month", "day", "hour"]\nkey = false\n'
                    'targets = ["pm2.5"]\nmissing = "ffill:0"\nlags = "none"\nreport = false\n'
                    'overwrite = true\n[categorical]\ncbwd = 4\n')  # fmt: skip
    code, _, err = backfill(capsys, "--config", toml)
    assert code == 0, err
    feed = streamrnn.backfill.load_checkpoint(tmp_path / "o" / "_checkpoint").feed
    assert feed.columns[2:] == ("cbwd[0]", "cbwd[1]", "cbwd[2]", "cbwd[3]")


@pytest.mark.parametrize(
    "text, value",
    [("cbwd", ["cbwd"]), ("cbwd,wd", ["cbwd", "wd"]), ("cbwd=8", {"cbwd": 8}),
     ("cbwd=NE|cv,wd", {"cbwd": ["NE", "cv"], "wd": 16}), ("code=1|2", {"code": [1, 2]})],
)  # fmt: skip
def test_categorical_as_text(tmp_path, text, value):
    raw_csv(tmp_path / "raw.csv")
    assert job.checked(Job(str(tmp_path / "raw.csv"), "o", categorical=text)).categorical == value


@pytest.mark.parametrize("seed", range(6))
def test_pairing_whatever_the_cutting_matches_the_naive_pairs(seed):
    from streamrnn.backfill.pairing import Pairing

    rng = np.random.default_rng(seed)
    n, horizon, lookahead = 60, int(rng.integers(0, 4)), int(rng.integers(0, 30))
    keys = rng.integers(0, 4, n) if seed % 2 else rng.choice(["a", "b", "c"], n).astype(object)
    times, y = np.arange(n) * 10, rng.normal(size=(n, 2))
    df = pd.DataFrame({"key": keys, "time": times, "y": y[:, 0]})
    when, actual = expected_targets(df, horizon, lookahead)
    pairing = Pairing(horizon, lookahead)
    cuts = np.sort(rng.choice(np.arange(1, n), 5, replace=False))
    left = []
    for a, b in zip([0, *cuts], [*cuts, n]):
        piece = pairing.add(pa.table({"row": np.arange(a, b)}), keys[a:b], times[a:b], y[a:b])
        pairing = pickle.loads(pickle.dumps(pairing))  # as a checkpoint keeps it
        left += [piece] if piece is not None else []
    left += [pairing.close()]
    rows = np.concatenate([p.table.column("row").to_numpy() for p in left if p is not None])
    assert rows.tolist() == list(range(n))  # every row, in order
    got = np.concatenate([np.where(p.known, p.when, np.nan) for p in left if p is not None])
    assert np.array_equal(got, when, equal_nan=True)
    got = np.concatenate([p.actual[:, 0] for p in left if p is not None])
    assert np.array_equal(got, actual, equal_nan=True)


def test_first_run_troubles_are_said_in_the_commands_words(tmp_path, capsys):
    """A gap in a target names the target as an input and the per-column option; a
    series' key in a message is not taken for the option; the summary lists the model's
    inputs; an untrained model used for inference is said."""
    raw_csv(tmp_path / "raw.csv")
    base = [tmp_path / "raw.csv", "--key", "cbwd", "--targets", "pm2.5", "--no-report"]
    code, _, err = backfill(capsys, *base, "-o", tmp_path / "o1", "--learn")
    assert code == 1
    assert "column 'pm2.5' (a target, which is also an input) has no value" in err
    assert "--missing pm2.5=mask" in err
    code, out, err = backfill(capsys, *base, "-o", tmp_path / "o2", "--missing", "mask",
                              "--lags", "none")  # fmt: skip
    assert code == 0, err
    assert "model inputs (4): pm2.5, TEMP, pm2.5_missing, TEMP_missing" in out
    assert "untrained model" in err and "--learn" in err
    assert cli.cli_words("key 'NW': time 3 at row 10 is not after its previous time 4") \
        == "key 'NW': time 3 at row 10 is not after its previous time 4"  # fmt: skip


def test_resume_needs_only_the_output_folder(tmp_path, capsys):
    raw_csv(tmp_path / "raw.csv")
    code, first, err = backfill(capsys, tmp_path / "raw.csv", "-o", tmp_path / "o", "--key",
                                "cbwd", "--targets", "pm2.5", "--missing", "mask", "--learn",
                                "--quantiles", "0.1,0.5,0.9")  # fmt: skip
    assert code == 0, err
    code, again, err = backfill(capsys, "-o", tmp_path / "o", "--resume")
    assert code == 0, err  # the same job: its settings came from the folder
    assert "resumed at row 120" in again
    assert again.split("mae ")[1].split(",")[0] == first.split("mae ")[1].split(",")[0]
    code, _, err = backfill(capsys, "-o", tmp_path / "nothing", "--resume")
    assert code == 2 and "missing INPUT" in err


# -- a newcomer's own CSV: times as text, gap markers, no rows, option wording ----------------
def us_csv(path, rows=ROWS):
    """Hourly readings written as a US export: times as 01/31/2010 23:00, gaps as '-'
    and 'n/a'; returns the times and the pm2.5 values (NaN at the gaps)."""
    df = raw_csv(path, rows, gaps=False)
    pm = df["pm2.5"].round(2).astype(object)
    pm[[5, 40]], pm[90] = "-", "n/a"
    out = df.assign(time=df["time"].dt.strftime("%m/%d/%Y %H:%M"), **{"pm2.5": pm})
    out.to_csv(path, index=False)
    return df["time"], pd.to_numeric(pm, errors="coerce")


def test_time_format_and_na_values_as_options_and_job_file_keys(tmp_path, capsys):
    times, pm = us_csv(tmp_path / "us.csv")
    base = ["--no-key", "--targets", "pm2.5", "--missing", "mask", "--no-report"]
    code, _, err = backfill(capsys, tmp_path / "us.csv", "-o", tmp_path / "o", *base,
                            "--time-format", "%m/%d/%Y %H:%M", "--na-values", "-,n/a")  # fmt: skip
    assert code == 0, err
    table = outputs(tmp_path / "o")
    assert table.column("time").to_pandas().tolist() == times.tolist()
    actual = table.column("pm2.5_actual").to_numpy(zero_copy_only=False)
    np.testing.assert_allclose(actual[:-1], pm.to_numpy(float)[1:], rtol=1e-6)  # NaN at gaps
    toml = tmp_path / "job.toml"
    toml.write_text(f'input = "{tmp_path / "us.csv"}"\noutput = "{tmp_path / "t"}"\n'
                    'time_format = "%m/%d/%Y %H:%M"\nna_values = ["-", "n/a"]\nkey = false\n'
                    'targets = ["pm2.5"]\nmissing = "mask"\nreport = false\n')  # fmt: skip
    code, _, err = backfill(capsys, "--config", toml)
    assert code == 0, err
    assert outputs(tmp_path / "t").equals(table)


def test_text_times_and_gap_markers_suggest_the_options(tmp_path, capsys):
    us_csv(tmp_path / "us.csv")
    base = [tmp_path / "us.csv", "-o", tmp_path / "o", "--no-key", "--targets", "pm2.5"]
    for more in ([], ["--time", "time"], ["--column-types", "time=timestamp[s]"]):
        code, _, err = backfill(capsys, *base, "--na-values", "-,n/a", *more)
        assert code == 1, err
        assert "--time-format '%m/%d/%Y %H:%M'" in err, err
        assert "time_format" not in err and "column_types" not in err
    code, _, err = backfill(capsys, *base, "--time-format", "%m/%d/%Y %H:%M")
    assert code == 1 and "'-' is not a number" in err and "--na-values -" in err, err
    assert "na_values" not in err


def test_time_format_and_na_values_apply_to_csv_only(tmp_path, capsys):
    pd.DataFrame({"time": [1, 2], "y": [1.0, 2.0]}).to_parquet(tmp_path / "in.parquet")
    for option in ("--time-format", "--na-values"):
        code, _, err = backfill(capsys, tmp_path / "in.parquet", "-o", tmp_path / "o", option,
                                "%d/%m/%Y")  # fmt: skip
        assert code == 2 and f"{option} applies to CSV input" in err, err
    code, _, err = backfill(capsys, tmp_path / "in.parquet", "-o", tmp_path / "o",
                            "--time-format", "dd/mm/yyyy")  # fmt: skip
    assert code == 2 and "--time-format 'dd/mm/yyyy' is not a strptime format" in err, err


@pytest.mark.parametrize(
    "name, write",
    [("header.csv", lambda p: p.write_text("time,pm2.5,TEMP\n")),
     ("blank_lines.csv", lambda p: p.write_text("time,pm2.5,TEMP\r\n\r\n\n")),
     ("empty.parquet", lambda p: pd.DataFrame({"time": pd.to_datetime([]),
                                               "pm2.5": np.array([], float)}).to_parquet(p))],
)  # fmt: skip
def test_an_input_of_no_rows_is_an_error_before_anything_is_written(tmp_path, capsys, name,
                                                                      write):  # fmt: skip
    write(tmp_path / name)
    code, out, err = backfill(capsys, tmp_path / name, "-o", tmp_path / "o", "--no-key",
                              "--targets", "pm2.5")  # fmt: skip
    assert code == 1, (out, err)
    assert f"INPUT '{tmp_path / name}' holds no rows" in err and "done" not in out
    assert not (tmp_path / "o").exists()


def test_holds_rows_finds_a_line_of_values_whatever_the_line_ends_and_encoding(tmp_path):
    (tmp_path / "one.csv").write_text("time,v\r1,2")  # old Mac line ends, no final one
    (tmp_path / "wide.csv").write_text("time,v\n" + "1,2\n" * 200)
    (tmp_path / "utf16.csv").write_text("time,v\n\n", encoding="utf-16")
    (tmp_path / "utf16_row.csv").write_text("time,v\n\n1,2\n", encoding="utf-16")
    for name, encoding, holds in [("one.csv", None, True), ("wide.csv", None, True),
                                  ("utf16.csv", "utf-16", False),
                                  ("utf16_row.csv", "utf-16", True)]:  # fmt: skip
        path = str(tmp_path / name)
        assert runner.holds_rows(job.checked(Job(path, "o", encoding=encoding))) is holds, name


def test_option_errors_name_the_option_and_its_command_line_form(tmp_path, capsys):
    raw_csv(tmp_path / "raw.csv")
    base = [tmp_path / "raw.csv", "-o", tmp_path / "o", "--key", "cbwd", "--targets", "pm2.5"]
    code, _, err = backfill(capsys, *base, "--missing", "pm2.5=maks")
    assert code == 2 and "--missing gives column 'pm2.5' the policy 'maks'" in err, err
    code, _, err = backfill(capsys, *base, "--no-report", "--missing", "mask", "--column-types",
                            "TEMP=int64")  # fmt: skip
    assert code == 1, err
    assert "the type declared for the column with --column-types TEMP=int64" in err, err
    assert "in column_types" not in err


def test_time_parts_under_other_names_are_suggested_as_part_equals_column(tmp_path, capsys):
    df = raw_csv(tmp_path / "raw.csv")
    t = df.pop("time")
    parts = pd.DataFrame({"yr": t.dt.year, "mo": t.dt.month, "dy": t.dt.day, "hr": t.dt.hour})
    pd.concat([parts, df], axis=1).to_csv(tmp_path / "raw.csv", index=False, na_rep="NA")
    base = [tmp_path / "raw.csv", "-o", tmp_path / "o", "--no-key", "--targets", "pm2.5"]
    for more, code in (["--time", "yr,mo,dy,hr"], 2), ([], 1):
        status, _, err = backfill(capsys, *base, *more)
        assert status == code, err
        assert "--time year=yr,month=mo,day=dy,hour=hr" in err, err
        assert "--time year,month,day" not in err and "dict" not in err
    code, _, err = backfill(capsys, *base, "--time", "year=yr,month=mo,day=dy,hour=hr",
                            "--missing", "mask", "--no-report")  # fmt: skip
    assert code == 0, err


def test_repeated_list_options_add_up(tmp_path, capsys):
    df = raw_csv(tmp_path / "raw.csv")
    df.insert(1, "site", np.where(np.arange(ROWS) % 2, "007", "010"))
    df.loc[[3, 60], "TEMP"] = np.nan
    df.to_csv(tmp_path / "raw.csv", index=False, na_rep="NA")
    code, _, err = backfill(capsys, tmp_path / "raw.csv", "-o", tmp_path / "o", "--no-key",
                            "--targets", "pm2.5", "--missing", "ffill:0", "--missing",
                            "pm2.5=mask", "--column-types", "site=string", "--column-types",
                            "TEMP=float64", "--categorical", "cbwd=NW|SE|cv", "--categorical",
                            "site=2", "--no-report", "--lags", "none")  # fmt: skip
    assert code == 0, err
    feed = streamrnn.backfill.load_checkpoint(tmp_path / "o" / "_checkpoint").feed
    assert feed.missing == {"*": ("ffill", 0.0), "pm2.5": "mask"}
    assert {"cbwd=NW", "cbwd=SE", "cbwd=cv", "site[0]", "site[1]"} <= set(feed.columns)
    with open(tmp_path / "o" / "_job.json") as f:
        assert json.load(f)["identity"]["column_types"] == {"site": "string", "TEMP": "double"}
    for option, twice in (("--missing", ["pm2.5=mask", "pm2.5=ffill"]),
                          ("--column-types", ["TEMP=float64", "TEMP=string"]),
                          ("--categorical", ["cbwd=4", "cbwd=8"])):  # fmt: skip
        code, _, err = backfill(capsys, tmp_path / "raw.csv", "-o", tmp_path / "p", option,
                                twice[0], option, twice[1])  # fmt: skip
        assert code == 2 and f"{option} gives column" in err and "give" in err, err


def test_repeated_column_lists_add_up_and_a_column_named_twice_is_refused(tmp_path, capsys):
    raw_csv(tmp_path / "raw.csv")
    base = (tmp_path / "raw.csv", "--no-key", "--missing", "mask", "--no-report", "--lags", "none")
    code, _, err = backfill(capsys, *base, "-o", tmp_path / "o", "--targets", "pm2.5",
                            "--targets", "TEMP", "--features", "pm2.5", "--features", "TEMP",
                            "--quantiles", "0.1,0.5", "--quantiles", "0.9")  # fmt: skip
    assert code == 0, err
    with open(tmp_path / "o" / "_job.json") as f:
        identity = json.load(f)["identity"]
    assert identity["targets"] == ["pm2.5", "TEMP"] and identity["features"] == ["pm2.5", "TEMP"]
    assert identity["quantiles"] == [0.1, 0.5, 0.9]
    code, _, err = backfill(capsys, *base, "-o", tmp_path / "p", "--targets", "pm2.5",
                            "--targets", "pm2.5")  # fmt: skip
    assert code == 2 and "--targets must be distinct" in err, err


def test_a_job_without_the_new_csv_options_keeps_the_id_it_had(tmp_path):
    raw_csv(tmp_path / "raw.csv")
    plain = job.checked(Job(str(tmp_path / "raw.csv"), str(tmp_path / "o"), key="cbwd"))
    ident = job.identity(plain)
    assert "time_format" not in ident and "na_values" not in ident  # as before they were
    given = job.checked(Job(str(tmp_path / "raw.csv"), str(tmp_path / "o"), key="cbwd",
                            na_values="-"))  # fmt: skip
    assert job.identity(given)["na_values"] == ["-"]
    assert job.job_id(job.identity(given)) != job.job_id(ident)


@pytest.mark.parametrize(
    "step, season",
    [("10min", 144), ("20min", 72), ("2h", 12), ("1min", 1440), ("7h", None), ("1s", None)],
)
def test_a_day_of_rows_is_the_season_of_any_step_that_divides_one(step, season):
    assert runner._season_for(pd.Timedelta(step)) == season


def test_no_season_is_said(tmp_path, capsys):
    t = pd.date_range("2024-01-01", periods=80, freq="7h")
    pd.DataFrame({"time": t, "temp": np.sin(np.arange(80) / 3.0)}).to_parquet(tmp_path / "i.pq")
    args = ["--format", "parquet", "--targets", "temp", "--learn", "--no-report"]
    code, _, err = backfill(capsys, tmp_path / "i.pq", "-o", tmp_path / "o", *args)
    assert code == 0, err
    assert "no season for rows every 0 days 07:00:00" in err and "--season" in err
