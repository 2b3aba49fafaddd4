"""A newcomer's first hour on the command line (issue 13): a report that survives a crash."""

import glob
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from streamrnn import cli, report

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
