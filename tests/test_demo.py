"""The demo runs end to end on a small feed and reports what it streamed."""

import re

import numpy as np

from streamrnn import demo


def test_demo_streams_every_row(capsys):
    demo.main(["--series", "12", "--hours", "30", "--chunk", "50"])
    out = capsys.readouterr().out
    assert "12 sensors x 30 hours = 360 rows" in out
    held = re.search(r"throughput: 360 rows in [\d.]+ s = [\d,]+ rows/s \((\d+) series held\)", out)
    assert held and held.group(1) == "12"


def test_sensor_feed_is_long_format_in_time_order():
    keys, times, x = demo.sensor_feed(3, 4)
    assert keys.tolist() == [0, 1, 2] * 4
    assert times.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert x.shape == (12, 1) and x.dtype == np.float32 and np.isfinite(x).all()
