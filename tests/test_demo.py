"""The demo streams the bundled weather data end to end and reports what it did."""

import re

from streamrnn import demo


def test_demo_streams_every_row_of_the_bundled_weather(capsys, tmp_path):
    demo.main(["--chunk", "5000", "--hidden", "4", "--horizon", "3", "--output", str(tmp_path)])
    out = capsys.readouterr().out
    assert "data: 17,518 hourly temperatures (F) of 2 cities, 2010-01-01 to 2010-12-31" in out
    # the source lacks 2010-03-14 03:00 for both cities: one empty bin each
    assert "17,520 rows on the hourly grid, 2 empty bins forward-filled" in out
    assert "same outputs with chunks of 715 rows: True" in out
    forecasts = re.findall(r"forecast (\w+), next 3 hours: ([-\d. ]+)", out)
    assert [city for city, _ in forecasts] == ["san_francisco", "seattle"]
    assert all(len(values.split()) == 3 for _, values in forecasts)
    backfill = re.search(r"backfill: 17,520 forecasts in .* next-hour MAE ([\d.]+) F against "
                         r"persistence ([\d.]+) F", out)  # fmt: skip
    assert backfill and float(backfill.group(1)) < float(backfill.group(2))
    assert f"report: {tmp_path}/forecasts/_report/index.html" in out
    assert (tmp_path / "forecasts" / "_report" / "forecast.png").exists()
