"""The README's "Your own data" command runs as written on the bundled raw CSV."""

import re
import shlex
from pathlib import Path

import pyarrow.dataset as ds

from streamrnn import cli

ROOT = Path(__file__).resolve().parent.parent


def _own_data_command():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Your own data") :]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return shlex.split(block.replace("\\\n", " "))


def test_the_quick_start_command_gives_forecasts_and_a_report(tmp_path, monkeypatch, capsys):
    words = _own_data_command()
    assert words[:2] == [".venv/bin/streamrnn", "backfill"]
    at = words.index("-o")
    words[at + 1] = str(tmp_path / "forecasts")
    monkeypatch.chdir(ROOT)  # the input path is the checkout's
    assert cli.main([*words[1:], "--progress", "none"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "1,461 rows in, 1,461 rows out, 1 series" in out
    assert "persistence_mae" in out and "ar_mae" in out
    table = ds.dataset(tmp_path / "forecasts", format="parquet").to_table()
    assert table.column_names == ["time", "target_time", "temp_max_forecast", "temp_max_actual"]
    assert table.num_rows == 1461
    assert (tmp_path / "forecasts" / "_report" / "index.html").is_file()
