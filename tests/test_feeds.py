"""feeds: all sources give the same chunks, cuts change nothing, policies match a reference."""

import pickle

import naive
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import feeds
import streamrnn

OPTIONS = [
    {},
    {"missing": ("ffill", -1.0)},
    {"missing": "mask", "scale": "per_key"},
    {"missing": 0.5, "time_delta": True, "scale": "global", "freeze_after": 7},
    {"missing": {"a": "ffill", "b": ("ffill", 0.0)}, "duplicates": "last", "late": "drop"},
    {"missing": ("ffill", 0.0), "grid": "3min", "aggregate": "mean", "time_delta": True},
    {"missing": "mask", "grid": "2min", "aggregate": "last", "scale": "per_key"},
    {"missing": 0.0, "duplicates": "first", "late": "drop", "scale": "global"},
]


def frame(n=300, n_keys=4, seed=0, holes=0.0, disorder=False, tz="UTC"):
    """Long-format rows of ``n_keys`` sensors: key, time, features a and b, target a."""
    rng = np.random.default_rng(seed)
    keys = np.array([f"s{k}" for k in range(n_keys)], dtype=object)[rng.integers(0, n_keys, n)]
    minutes = np.cumsum(rng.integers(0 if disorder else 1, 3, n))
    if disorder:  # some late rows and duplicate times within keys
        minutes = minutes - rng.integers(0, 4, n) * (rng.random(n) < 0.1)
    time = pd.Timestamp("2024-03-01", tz=tz) + pd.to_timedelta(minutes, "min")
    a = 20 + 5 * rng.standard_normal(n)
    b = rng.standard_normal(n)
    a[rng.random(n) < holes] = np.nan
    b[rng.random(n) < holes] = np.nan
    return pd.DataFrame({"sensor": keys, "time": time, "a": a, "b": b})


SCHEMA = dict(time="time", key="sensor", features=["a", "b"], targets=["a"])


def chunks_of(source, reader=feeds.iter_chunks, **options):
    options = {"dtype": "float64", **options}
    return feeds.concat(list(reader(source, schema=feeds.Schema(**SCHEMA), **options)))


def slices(df, cuts):
    edges = [0, *sorted(set(c % (len(df) + 1) for c in cuts)), len(df)]
    return [df.iloc[a:b] for a, b in zip(edges[:-1], edges[1:])]


# -- sources -----------------------------------------------------------------------------------


def test_every_source_gives_identical_chunks(tmp_path):
    df = frame(holes=0.05)
    options = {"missing": "mask", "time_delta": True, "scale": "per_key"}
    want = chunks_of(df, feeds.iter_pandas, **options)
    table = pa.Table.from_pandas(df, preserve_index=False)
    batches = table.to_batches(max_chunksize=37)

    ipc_stream, ipc_file = tmp_path / "rows.arrows", tmp_path / "rows.arrow"
    with pa.OSFile(str(ipc_stream), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        for batch in batches:
            w.write_batch(batch)
    with pa.OSFile(str(ipc_file), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        for batch in batches:
            w.write_batch(batch)
    pq.write_table(table, tmp_path / "rows.parquet", row_group_size=50)
    part = tmp_path / "dataset"
    part.mkdir()
    for i, a in enumerate(range(0, len(df), 120)):
        pq.write_table(table.slice(a, 120), part / f"part-{i}.parquet")
    df.to_csv(tmp_path / "rows.csv", index=False, float_format="%.17g")

    got = {
        "arrow table": chunks_of(table, feeds.iter_arrow, **options),
        "record batches": chunks_of(batches, **options),
        "batch reader": chunks_of(
            pa.RecordBatchReader.from_batches(table.schema, batches), feeds.iter_arrow, **options
        ),  # fmt: skip
        "ipc stream": chunks_of(ipc_stream, feeds.iter_ipc, **options),
        "ipc file": chunks_of(str(ipc_file), feeds.iter_ipc, **options),
        "parquet file": chunks_of(tmp_path / "rows.parquet", feeds.iter_parquet, **options),
        "parquet dataset": chunks_of(part, feeds.iter_parquet, **options),
        "csv": chunks_of(tmp_path / "rows.csv", feeds.iter_csv, block_size=1 << 12, **options),
        "dataframes": chunks_of(slices(df, [10, 11, 200]), **options),
    }
    for name, chunk in got.items():
        assert chunk.equals(want), name
    assert len(want) == len(df)


def test_readers_close_only_what_they_opened(tmp_path):
    table = pa.Table.from_pandas(frame(50), preserve_index=False)
    path = tmp_path / "rows.arrows"
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    with pa.OSFile(str(path), "rb") as handle:
        n = sum(len(c) for c in feeds.iter_ipc(handle, schema=feeds.Schema(**SCHEMA)))
        assert not handle.closed
    assert n == 50
    reader = feeds.iter_csv(_csv(tmp_path, frame(50)), schema=feeds.Schema(**SCHEMA))
    next(reader)
    reader.close()  # an abandoned generator closes its file


def _csv(tmp_path, df):
    df.to_csv(tmp_path / "rows.csv", index=False, float_format="%.17g")
    return tmp_path / "rows.csv"


def test_wide_frames_are_long_rows_by_time_then_column():
    rng = np.random.default_rng(3)
    index = pd.date_range("2024-01-01", periods=40, freq="h", tz="Europe/Paris", name="time")
    wide = pd.DataFrame(rng.standard_normal((40, 3)), index=index, columns=["x", "y", "z"])
    wide.iloc[5, 1] = np.nan
    got = feeds.concat(list(feeds.iter_pandas(wide, wide=True, rows=7, missing="ffill")))
    assert list(got.keys[:3]) == ["x", "y", "z"] and len(got) == 120
    assert got.tz == "Europe/Paris"
    np.testing.assert_array_equal(got.times[::3], index.tz_convert("UTC").tz_localize(None))
    values = wide.ffill().to_numpy().reshape(-1)
    np.testing.assert_array_equal(got.x[:, 0], values.astype(np.float32))
    two = pd.concat({"x": wide[["x"]].rename(columns={"x": "v"}),
                     "y": wide[["y"]].rename(columns={"y": "v"})}, axis=1)  # fmt: skip
    long = feeds.from_wide(two)
    assert list(long.columns) == ["key", "time", "v"] and len(long) == 80
    assert list(long["key"][:4]) == ["x", "y", "x", "y"]


def test_parquet_filters_and_projection(tmp_path):
    df = frame(400)
    df["note"] = [["text"]] * len(df)  # a column no feed could read: never leaves the file
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "f.parquet")
    start, end = df["time"].iloc[100], df["time"].iloc[300]
    got = chunks_of(tmp_path / "f.parquet", feeds.iter_parquet, keys=["s1", "s3"],
                    start=start, end=end, rows=16)  # fmt: skip
    keep = df["sensor"].isin(["s1", "s3"]) & (df["time"] >= start) & (df["time"] < end)
    want = chunks_of(df[keep].drop(columns="note"), feeds.iter_pandas)
    assert got.equals(want) and 0 < len(got) < len(df)


# -- chunk invariance, end to end ----------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 400), max_size=12),
    which=st.sampled_from(range(len(OPTIONS))),
    seed=st.integers(0, 3),
)
def test_cutting_anywhere_changes_no_chunk_row_nor_engine_output(cuts, which, seed):
    options = OPTIONS[which]
    disorder = options.get("late") == "drop"
    df = frame(240, seed=seed, holes=0.08 if options else 0.0, disorder=disorder)
    model = streamrnn.GRU(2 + options.get("time_delta", False) +
                          2 * (options.get("missing") == "mask"), 6, output_size=1,
                          dtype="float64", seed=1)  # fmt: skip

    def run(parts):
        stream = streamrnn.Stream(model, feed=feeds.Feed(feeds.Schema(**SCHEMA),
                                                         dtype="float64", **options))  # fmt: skip
        chunks = list(feeds.iter_chunks(parts, stream.feed))
        ys = [stream.update(c) for c in chunks]
        forecast = stream.forecast(["s0", "s1"], 3) if options.get("late") != "drop" else None
        return feeds.concat(chunks), np.concatenate(ys), stream, forecast

    whole, y, stream, forecast = run([df])
    cut, y_cut, stream_cut, forecast_cut = run(slices(df, cuts))
    assert cut.equals(whole)
    np.testing.assert_array_equal(y_cut, y)
    for key in stream.keys():
        np.testing.assert_array_equal(stream_cut.get_state(key), stream.get_state(key))
    if forecast is not None:
        np.testing.assert_array_equal(forecast_cut, forecast)
    assert stream_cut.feed.counts == stream.feed.counts


@pytest.mark.parametrize("rows, every", [(1, None), (13, None), (None, "5min"), (None, "1h")])
def test_cutting_by_rows_or_time_gives_the_same_outputs(rows, every):
    df = frame(300, holes=0.05)
    options = {"missing": ("ffill", 0.0), "grid": "2min"} if rows == 13 else {"missing": 0.0}
    model = streamrnn.LSTM(2, 5, output_size=1, seed=2)

    def outputs(**cut):
        stream = streamrnn.Stream(model)
        feed = feeds.Feed(feeds.Schema(**SCHEMA), **options)
        return np.concatenate([stream.update(c) for c in feeds.iter_pandas(df, feed, **cut)])

    np.testing.assert_array_equal(outputs(rows=rows, every=every), outputs())


def test_time_span_chunks_hold_one_span_each():
    df = frame(300)
    span = pd.Timedelta("20min").value
    for chunk in feeds.iter_pandas(df, every="20min", schema=feeds.Schema(**SCHEMA)):
        bins = chunk.times.view(np.int64) // span
        assert (bins == bins[0]).all()


# -- policies against the naive reference -----------------------------------------------------


def _rows(df):
    utc = df["time"].dt.tz_convert("UTC").dt.tz_localize(None)
    t = utc.dt.as_unit("ns").to_numpy().view(np.int64)
    return [(k, int(ti), {"a": a, "b": b})
            for k, ti, a, b in zip(df["sensor"], t, df["a"], df["b"])]  # fmt: skip


@pytest.mark.parametrize("options", OPTIONS)
def test_feed_matches_the_naive_reference(options):
    df = frame(300, holes=0.1 if options else 0.0, disorder="late" in options)
    got = chunks_of(df, feeds.iter_pandas, rows=41, **options)
    ref = dict(options)
    if "grid" in ref:
        ref["grid"] = pd.Timedelta(ref["grid"]).value
    want = naive.feed_rows(_rows(df), ["a", "b"], ["a"], dt_scale=1e-9, **ref)
    assert list(got.keys) == [k for k, *_ in want]
    assert got.times.view(np.int64).tolist() == [t for _, t, *_ in want]
    x = np.array([r[2] for r in want])
    y = np.array([r[3] for r in want])
    exact = "scale" not in options and "aggregate" not in options
    tol = dict(rtol=0, atol=0) if exact else dict(rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got.x, x, **tol)
    np.testing.assert_allclose(got.y, y, equal_nan=True, **tol)
    c = got.counts
    assert len(df) == (len(got) - c["empty_bins"] + c["late_dropped"]
                       + c["duplicates_dropped"] + c["merged"])  # fmt: skip


def test_datetime_units_and_time_zones_become_utc_nanoseconds():
    base = pd.DataFrame({"k": ["a", "a"], "v": [1.0, 2.0]})
    for unit in ("s", "ms", "us", "ns"):
        df = base.assign(t=pd.to_datetime(["2024-01-01 00:00", "2024-01-01 01:00"]).as_unit(unit))
        chunk = feeds.Feed(feeds.Schema(time="t", key="k"))(df)
        assert chunk.times.tolist() == [1704067200 * 10**9, 1704070800 * 10**9]
    tokyo = base.assign(t=pd.to_datetime(["2024-01-01 09:00", "2024-01-01 10:00"]))
    tokyo["t"] = tokyo["t"].dt.tz_localize("Asia/Tokyo")
    chunk = feeds.Feed(feeds.Schema(time="t", key="k"))(tokyo)
    assert chunk.tz == "Asia/Tokyo"
    assert chunk.times.view(np.int64).tolist() == [1704067200 * 10**9, 1704070800 * 10**9]
    assert str(chunk.to_pandas()["time"].dt.tz) == "Asia/Tokyo"


def test_numeric_times_dt_and_integer_keys():
    df = pd.DataFrame({"id": [7, 9, 7, 7], "t": [0.5, 0.5, 2.0, 2.25], "v": [1.0, 2.0, 3.0, 4.0]})
    chunk = feeds.Feed(feeds.Schema(time="t", key="id"), time_delta=True)(df)
    assert chunk.keys.dtype == np.int64 and chunk.keys.tolist() == [7, 9, 7, 7]
    assert chunk.x[:, 1].tolist() == [0.0, 0.0, 1.5, 0.25]


def test_no_copy_of_float_columns_before_the_chunk():
    table = pa.table({"time": pa.array([1, 2, 3]), "v": pa.array([1.0, 2.0, 3.0], pa.float32())})
    feed = feeds.Feed(feeds.Schema(time="time"))
    feed(table)  # bind
    (view,) = feed._values(table)
    assert not view.flags.writeable and view.dtype == np.float32
    assert view.ctypes.data == table.column("v").chunk(0).buffers()[1].address


# -- the stream side ----------------------------------------------------------------------------


def test_scaled_targets_come_back_in_data_units():
    df = frame(200)
    model = streamrnn.GRU(2, 4, output_size=1, dtype="float64", seed=0)
    feed = feeds.Feed(feeds.Schema(**SCHEMA), dtype="float64", scale="global")
    stream = streamrnn.Stream(model, feed=feed)
    chunk = feed(df)
    got = stream.update(chunk)
    raw = streamrnn.Stream(model).update(chunk.keys, chunk.times, chunk.x)
    np.testing.assert_array_equal(got, raw * chunk.y_scale + chunk.y_loc)
    a = df["a"].to_numpy()
    np.testing.assert_allclose(chunk.y_loc[-1, 0], a.mean(), rtol=1e-12)
    np.testing.assert_allclose(chunk.y_scale[-1, 0], a.std(), rtol=1e-12)
    np.testing.assert_allclose(chunk.y[:, 0] * chunk.y_scale[:, 0] + chunk.y_loc[:, 0], a,
                               rtol=1e-12)  # fmt: skip
    later = feed(frame(20, seed=1).assign(time=lambda d: d["time"] + pd.Timedelta("30D")))
    keys, last = stream.update(later, outputs="last")
    plain = streamrnn.Stream(model)
    plain.update(chunk.keys, chunk.times, chunk.x)
    plain_keys, plain_last = plain.update(later.keys, later.times, later.x, outputs="last")
    assert keys == plain_keys
    rows = [int(np.flatnonzero(np.asarray(later.keys) == k)[-1]) for k in keys]
    np.testing.assert_array_equal(last, plain_last * later.y_scale[rows] + later.y_loc[rows])
    loc, scale = feed.target_scaling(["s0"])
    np.testing.assert_array_equal(
        stream.forecast(["s0"], 2), plain.forecast(["s0"], 2) * scale[:, None] + loc[:, None]
    )


def test_a_pickled_stream_resumes_with_its_feed():
    df = frame(300, holes=0.1)
    model = streamrnn.GRU(4, 4, output_size=1, seed=0)
    options = dict(missing="mask", scale="per_key")

    def fresh():
        return streamrnn.Stream(model, feed=feeds.Feed(feeds.Schema(**SCHEMA), **options))

    straight = fresh()
    want = np.concatenate([straight.update(p) for p in slices(df, [100, 200])])
    first = fresh()
    ys = [first.update(df.iloc[:100]), first.update(df.iloc[100:200])]
    resumed = pickle.loads(pickle.dumps(first))
    ys.append(resumed.update(df.iloc[200:]))
    np.testing.assert_array_equal(np.concatenate(ys), want)
    assert resumed.feed.counts == straight.feed.counts


def test_categorical_keys_map_like_plain_keys():
    model = streamrnn.GRU(1, 3, seed=0)
    keys = ["b", "a", "b", "c"]
    x = np.arange(4.0)[:, None]
    plain = streamrnn.Stream(model)
    cat = streamrnn.Stream(model)
    y1 = plain.update(keys, None, x)
    y2 = cat.update(pd.Categorical(keys, categories=["z", "c", "b", "a"]), None, x)
    np.testing.assert_array_equal(y1, y2)
    assert plain.keys() == cat.keys() == ["b", "a", "c"]
    assert "z" not in cat
    with pytest.raises(streamrnn.InputError, match="row 1"):
        cat.update(pd.Categorical(["a", None]), None, x[:2])


def test_string_categorical_and_dictionary_keys_give_the_same_chunks():
    df = frame(120)
    want = chunks_of(df, feeds.iter_pandas)
    as_category = df.assign(
        sensor=df["sensor"].astype(pd.CategoricalDtype(["s9", "s3", "s2", "s1", "s0"]))
    )
    table = pa.Table.from_pandas(df, preserve_index=False)
    encoded = table.set_column(0, "sensor", table.column("sensor").dictionary_encode())
    assert chunks_of(as_category, feeds.iter_pandas).equals(want)  # unused category "s9"
    assert chunks_of(encoded, feeds.iter_arrow, rows=11).equals(want)
    assert list(want.keys) == df["sensor"].tolist()
    assert "s9" not in feeds.Feed(feeds.Schema(**SCHEMA))(as_category).keys.categories


def test_a_series_runs_frames_of_one_series_in_data_units():
    from feeds.datasets import load_seattle_weather

    df = load_seattle_weather().iloc[:300]
    columns = ["precipitation", "temp_max", "temp_min", "wind"]
    model = streamrnn.GRU(4, 6, output_size=1, dtype="float64", seed=0)

    def series():
        schema = feeds.Schema(time="date", key=False, features=columns, targets=["temp_max"])
        return streamrnn.Series(model, feed=feeds.Feed(schema, dtype="float64", scale="global"))

    whole = series()
    y = whole.run(df)
    cut = series()
    y_cut = np.concatenate([cut.run(df.iloc[a : a + 37]) for a in range(0, len(df), 37)])
    np.testing.assert_array_equal(y_cut, y)
    np.testing.assert_array_equal(cut.forecast(4), whole.forecast(4))
    chunk = series().feed(df)
    raw = streamrnn.Series(model).run(chunk.x)
    np.testing.assert_array_equal(y, raw * chunk.y_scale + chunk.y_loc)
    two = pd.DataFrame({"k": ["a", "b"], "t": [0, 1], "v": [1.0, 2.0]})
    with pytest.raises(streamrnn.InputError, match="one series"):
        streamrnn.Series(streamrnn.GRU(1, 2, seed=0)).run(
            feeds.Feed(feeds.Schema(key="k", time="t"), dtype="float32")(two)
        )
