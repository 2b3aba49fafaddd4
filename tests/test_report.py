import pickle

import numpy as np
import pandas as pd
import pytest

import feeds
from streamrnn._book import Book
from streamrnn.errors import InputError
from streamrnn.evaluate import Scorer, wanted_scores
from streamrnn.losses import MSE
from streamrnn.report import write_report

image = pytest.importorskip("matplotlib.image")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMAGES = ["forecast.png", "error_over_time.png", "learning_curve.png"]
FILES = sorted([*IMAGES, "index.html", "report.md"])
SUMMARY = {
    "rows in": 17520,
    "seconds": 3.2,
    "rows/s": 5475.0,
    "mae": 0.213456,
    "big": 123456.7,
    "small": 1.234567e-5,
    "coverage (5%-95%)": float("nan"),
    "model": "gru",
    "note": None,
}


def make_curve(n=8, time=None, persistence=True, others=False):
    rows = np.arange(1, n + 1) * 100
    if time is None:
        time = pd.date_range("2020-01-01", periods=n, freq="D")
    mae = np.linspace(1.0, 0.2, n)
    pers = np.full(n, 0.9) if persistence else np.full(n, np.nan)
    curve = pd.DataFrame(
        {
            "rows": rows,
            "time": time,
            "mae": mae,
            "persistence_mae": pers,
            "running_mae": np.cumsum(mae) / np.arange(1, n + 1),
            "running_persistence_mae": pers,
            "updates": rows // 10,
        }
    )
    if others:  # the seasonal naive and the AR baselines, as a book gives them
        for name, level in (("seasonal", 0.6), ("ar", 0.4)):
            curve[f"{name}_mae"] = level
            curve[f"running_{name}_mae"] = level
    return curve


def make_sample(n=48, time=None, interval=True, seed=0):
    rng = np.random.default_rng(seed)
    if time is None:
        time = pd.date_range("2020-01-01", periods=n, freq="h")
    actual = np.sin(np.arange(n) / 5.0)
    forecast = actual + 0.1 * rng.standard_normal(n)
    frame = pd.DataFrame({"time": time, "actual": actual, "forecast": forecast})
    if interval:
        frame["lo"], frame["hi"] = forecast - 0.3, forecast + 0.3
    return frame


def write(folder, **kw):
    args = dict(
        title="backfill of data/weather.parquet",
        summary=SUMMARY,
        curve=make_curve(),
        samples={"SEA": make_sample(seed=1), 7: make_sample(seed=2)},
        target="temperature",
        interval="5%-95%",
    )
    return write_report(folder, **{**args, **kw})


def read_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    return image.imread(path)


def ink(pixels):
    """Fraction of pixels that are not near white."""
    return (pixels[..., :3] < 0.9).any(axis=-1).mean()


def test_writes_files_and_pngs(tmp_path):
    folder = tmp_path / "a" / "b"
    page = write(folder)
    assert page == folder / "index.html"
    assert sorted(p.name for p in folder.iterdir()) == FILES  # no temporary files left
    assert read_png(folder / "forecast.png").shape == (600, 1000, 4)  # one panel per series
    for name in IMAGES[1:]:
        pixels = read_png(folder / name)
        assert pixels.shape == (350, 1000, 4)
        assert ink(pixels) > 0.02  # lines, ticks and labels, not a "no data" image


def test_html_content(tmp_path):
    text = write(tmp_path).read_text()
    for name in IMAGES:
        assert f'<img src="{name}"' in text
    assert "<title>backfill of data/weather.parquet</title>" in text
    cells = {
        "rows in": "17,520",
        "seconds": "3.2",
        "rows/s": "5,475",
        "mae": "0.2135",
        "big": "123,500",
        "small": "1.235e-05",
        "coverage (5%-95%)": "n/a",
        "model": "gru",
        "note": "",
    }
    for name, value in cells.items():
        assert f'<tr><td>{name}</td><td class="value">{value}</td></tr>' in text
    assert "5%-95% prediction interval" in text
    assert "<script" not in text and "http" not in text


def test_html_escapes_text(tmp_path):
    page = write(
        tmp_path, title="a <i>&</i>", summary={"<b>": "x<y"}, samples={"<b>": make_sample()}
    )
    text = page.read_text()
    assert "<b>" not in text and "<i>" not in text
    assert "<h1>a &lt;i&gt;&amp;&lt;/i&gt;</h1>" in text
    assert '<td>&lt;b&gt;</td><td class="value">x&lt;y</td>' in text
    markdown = (tmp_path / "report.md").read_text()
    assert "<b>" not in markdown and "| &lt;b&gt; | x&lt;y |" in markdown


def test_markdown_content(tmp_path):
    write(tmp_path, summary={"rows in": 17520, "a|b": 0.5})
    lines = (tmp_path / "report.md").read_text().splitlines()
    assert lines[0] == "# backfill of data/weather.parquet"
    assert "| measure | value |" in lines
    assert "| rows in | 17,520 |" in lines
    assert "| a\\|b | 0.5 |" in lines
    for name in IMAGES:
        assert sum(line.startswith("![") and line.endswith(f"]({name})") for line in lines) == 1


def test_empty_curve_and_samples(tmp_path):
    write(tmp_path, curve=make_curve().iloc[:0], samples={}, summary={})
    write(tmp_path / "bare", curve=pd.DataFrame(), samples={}, summary={})
    for folder in (tmp_path, tmp_path / "bare"):
        pngs = [read_png(folder / name) for name in IMAGES]
        assert [pixels.shape for pixels in pngs] == [(300, 1000, 4), (350, 1000, 4), (350, 1000, 4)]
        assert all(0 < ink(pixels) < 0.005 for pixels in pngs)  # a "no data" text only
        text = (folder / "index.html").read_text()
        assert all(f'<img src="{name}"' in text for name in IMAGES)
        assert "<table>" not in text


def test_numeric_times_no_interval_nan_persistence(tmp_path):
    curve = make_curve(time=np.arange(8) * 10.0, persistence=False)
    samples = {1: make_sample(time=np.arange(48), interval=False)}
    write(tmp_path, curve=curve, samples=samples, interval=None)
    assert read_png(tmp_path / "forecast.png").shape == (300, 1000, 4)
    assert read_png(tmp_path / "learning_curve.png").shape == (350, 1000, 4)
    assert "prediction interval" not in (tmp_path / "index.html").read_text()


def test_tz_aware_times(tmp_path):
    curve = make_curve(time=pd.date_range("2020-03-28", periods=8, freq="6h", tz="Europe/Berlin"))
    time = pd.date_range("2020-03-28", periods=48, freq="h", tz="America/Los_Angeles")
    write(tmp_path, curve=curve, samples={"LA": make_sample(time=time)})
    assert read_png(tmp_path / "error_over_time.png").shape == (350, 1000, 4)
    assert read_png(tmp_path / "forecast.png").shape == (300, 1000, 4)


def test_deterministic_and_overwrites(tmp_path):
    write(tmp_path / "one")
    write(tmp_path / "two")
    for name in FILES:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    for name in IMAGES:  # no matplotlib version stamp: same bytes after an upgrade
        assert b"Software" not in (tmp_path / "one" / name).read_bytes()
    write(tmp_path / "one", title="second run", samples={"SEA": make_sample()})
    assert "<h1>second run</h1>" in (tmp_path / "one" / "index.html").read_text()
    assert read_png(tmp_path / "one" / "forecast.png").shape == (300, 1000, 4)
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == FILES


def test_many_series_are_capped(tmp_path):
    write(tmp_path, samples={i: make_sample(n=5) for i in range(9)})
    assert read_png(tmp_path / "forecast.png").shape == (1800, 1000, 4)
    assert "(the first 6 of 9)" in (tmp_path / "index.html").read_text()


def test_missing_columns_are_named(tmp_path):
    with pytest.raises(InputError, match="samples\\['SEA'\\] is missing the column 'forecast'"):
        write(tmp_path, samples={"SEA": make_sample().drop(columns="forecast")})
    with pytest.raises(InputError, match="curve is missing the column 'running_mae'"):
        write(tmp_path, curve=make_curve().drop(columns="running_mae"))
    with pytest.raises(InputError, match="curve column 'time' has dtype"):
        write(tmp_path, curve=make_curve(time=list("abcdefgh")))
    assert not any(tmp_path.iterdir())  # checked before anything is written


def test_all_baselines_are_drawn_and_named(tmp_path):
    write(tmp_path / "one", curve=make_curve())
    write(tmp_path / "all", curve=make_curve(others=True))
    for name in IMAGES[1:]:
        one, every = read_png(tmp_path / "one" / name), read_png(tmp_path / "all" / name)
        assert ink(every) > ink(one)  # two more lines
    text = (tmp_path / "all" / "index.html").read_text()
    assert "persistence (the last known value), the seasonal naive forecast" in text
    assert "and an online linear autoregression" in text
    assert "autoregression" not in (tmp_path / "one" / "index.html").read_text()
    nan_ar = make_curve(others=True).assign(ar_mae=np.nan, running_ar_mae=np.nan)
    write(tmp_path / "no_ar", curve=nan_ar)
    text = (tmp_path / "no_ar" / "index.html").read_text()
    assert "seasonal naive" in text and "autoregression" not in text


# -- the book: the figures a backfill keeps for its report --------------------------------------
def keyed_stream(seed=0, n=600, n_keys=3):
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, n_keys, n)
    y = 5.0 + np.cumsum(rng.standard_normal((n, 1)), axis=0)
    y[rng.random(n) < 0.1] = np.nan
    out = y + rng.standard_normal((n, 1))  # forecasts, whichever rows they are scored on
    return keys, out, y


def book_run(keys, out, y, cuts, buckets=4):
    """A scorer with every baseline feeding a small book, chunk by chunk; and the pairs."""
    loss = MSE()
    scorer = Scorer(loss, 1, wanted_scores(None, loss, 5), 5, None, None, 0.0, ar_order=3)
    book = Book(2, 0, None)
    book.BUCKETS = buckets  # merges happen within a few hundred rows
    seen = []
    edges = [0, *sorted(cuts), len(y)]
    for a, b in zip(edges[:-1], edges[1:]):
        chunk = feeds.Chunk(keys[a:b], None, out[a:b], y[a:b])

        def pairs(rows, made, values, chunk=chunk):
            seen.append(values)
            book.take(chunk, rows, made, values)

        scorer.take(chunk, chunk.x, pairs)
    return scorer, book, seen


def test_the_book_keeps_every_baseline_whatever_the_cutting():
    keys, out, y = keyed_stream()
    scorer, book, seen = book_run(keys, out, y, [])
    curve = book.curve()
    baselines = ("persistence", "seasonal", "ar")
    figures = ["mae", *(f"{b}_mae" for b in baselines)]
    assert list(curve.columns) == ["rows", "time", *figures, *(f"running_{f}" for f in figures)]
    assert book.width > 64 and len(curve) > 1  # buckets merged
    for cuts in ([1, 2, 3], [100, 101, 450], list(range(7, 600, 37))):
        _, other, _ = book_run(keys, out, y, cuts)
        pd.testing.assert_frame_equal(other.curve(), curve, check_exact=True)
    # the whole run's MAE of each baseline, from the book's sums, is the scorer's
    values = {k: np.concatenate([v[k] for v in seen]) for k in seen[0]}
    target = values["target"][:, 0]
    scores = scorer.figures()
    for b in baselines:
        error = np.abs(values[b][:, 0] - target)
        assert curve[f"running_{b}_mae"].iloc[-1] == pytest.approx(np.nanmean(error), rel=1e-12)
        assert curve[f"running_{b}_mae"].iloc[-1] == pytest.approx(scores[f"{b}_mae"], rel=1e-12)
    assert np.isfinite(curve["ar_mae"]).all()


def test_the_book_pickles_and_reads_an_older_one():
    keys, out, y = keyed_stream(seed=1)
    _, book, _ = book_run(keys[:300], out[:300], y[:300], [50])
    assert len(book.closed) == 4
    again = pickle.loads(pickle.dumps(book))
    pd.testing.assert_frame_equal(again.curve(), book.curve(), check_exact=True)
    # a book written when it kept the model's and persistence's sums only
    state = dict(book.__dict__)
    state["open"] = state["open"][:6]
    state["closed"] = [bucket[:6] for bucket in state["closed"]]
    old = Book.__new__(Book)
    old.__setstate__(state)
    curve = old.curve()
    same = ["rows", "time", "mae", "persistence_mae", "running_mae", "running_persistence_mae"]
    pd.testing.assert_frame_equal(curve[same], book.curve()[same], check_exact=True)
    assert curve["ar_mae"].isna().all() and curve["running_seasonal_mae"].isna().all()
