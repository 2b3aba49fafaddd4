"""feeds: calendar features match a row-by-row reference on any clock, however a stream is cut."""

import datetime
import pickle
import re

import naive
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import feeds
import streamrnn

ALL = ("minute_of_hour", "hour_of_day", "day_of_week", "day_of_year")
SCHEMA = dict(time="time", key="sensor", features=["a", "b"], targets=["a"])


def frame(n=200, n_keys=3, seed=0, tz="America/New_York", start="2024-03-09 20:00", step="17min"):
    """Rows of ``n_keys`` sensors at irregular times (with odd seconds and nanoseconds) from
    ``start``: across New York's change to summer time by default."""
    rng = np.random.default_rng(seed)
    keys = np.array([f"s{k}" for k in range(n_keys)], dtype=object)[rng.integers(0, n_keys, n)]
    ticks = np.cumsum(rng.integers(1, 4, n)) * pd.Timedelta(step).value
    ticks += rng.integers(0, 10**9, n) * (rng.random(n) < 0.3)
    time = pd.Timestamp(start, tz=tz) + pd.to_timedelta(ticks, "ns")
    a = 20 + 5 * rng.standard_normal(n)
    b = rng.standard_normal(n)
    b[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame({"sensor": keys, "time": time, "a": a, "b": b})


def calendar_part(chunk, feed):
    """The calendar columns of a chunk's ``x``."""
    names = [f"{name}_{f}" for name in feed.calendar_features for f in ("sin", "cos")]
    return chunk.x[:, [chunk.columns.index(c) for c in names]]


def slices(df, cuts):
    edges = [0, *sorted(set(c % (len(df) + 1) for c in cuts)), len(df)]
    return [df.iloc[a:b] for a, b in zip(edges[:-1], edges[1:])]


# -- values against the reference ---------------------------------------------------------------


@pytest.mark.parametrize("tz", [None, "UTC", "America/New_York", "Asia/Kathmandu", "+05:45"])
def test_values_match_the_reference_on_the_local_clock(tz):
    df = frame(400, start="2023-12-30 22:00", step="7h")  # a new year and a change of clock
    if tz is None:
        df["time"] = df["time"].dt.tz_localize(None)
    elif tz.startswith("+"):
        utc = df["time"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().view(np.int64)
        df["time"] = pa.array(utc, pa.timestamp("ns", tz)).to_pandas()
    else:
        df["time"] = df["time"].dt.tz_convert(tz)
    feed = feeds.Feed(feeds.Schema(**SCHEMA), dtype="float64", missing=0.0, calendar=ALL)
    chunk = feed(df)
    assert chunk.tz == tz and feed.calendar_features == ALL
    want = naive.calendar_features(chunk.times, ALL, tz)
    np.testing.assert_allclose(calendar_part(chunk, feed), want, rtol=0, atol=1e-12)
    float32 = feeds.Feed(feeds.Schema(**SCHEMA), missing=0.0, calendar=ALL)(df)
    assert float32.x.dtype == np.float32
    np.testing.assert_allclose(float32.x[:, 2:], want, rtol=0, atol=1e-7)


def test_the_local_clock_turns_with_summer_time():
    local = pd.to_datetime(["2024-03-10 01:30", "2024-03-10 03:30", "2024-11-03 01:30"])
    times = local.tz_localize("America/New_York", ambiguous=[True, True, False])
    df = pd.DataFrame({"time": times, "v": 1.0})  # one hour apart, then the hour repeated
    chunk = feeds.Feed(dtype="float64", calendar=["hour_of_day"])(df)
    phase = np.arctan2(chunk.x[:, 1], chunk.x[:, 2]) / (2 * np.pi) * 24
    np.testing.assert_allclose(phase, [1.5, 3.5, 1.5], atol=1e-12)


def test_known_values():
    # 2024-01-01 was a Monday, 2024 has 366 days, 2023 has 365
    times = pd.to_datetime(["2024-01-01 00:00", "2024-01-03 18:00", "2024-07-02 00:00",
                            "2023-12-31 12:00", "2024-01-01 00:45"])  # fmt: skip
    df = pd.DataFrame({"key": list("abcde"), "time": times, "v": 1.0})  # a key per row
    chunk = feeds.Feed(dtype="float64", calendar=ALL)(df)
    x = chunk.x[:, 1:]
    phase = np.mod(np.arctan2(x[:, 0::2], x[:, 1::2]) / (2 * np.pi), 1.0)
    want = [
        [0.0, 0.0, 0.0, 0.0],
        [0.0, 0.75, 2.75 / 7, 2.75 / 366],
        [0.0, 0.0, 1 / 7, 183 / 366],
        [0.0, 0.5, 6.5 / 7, 364.5 / 365],
        [0.75, 0.75 / 24, 0.75 / 24 / 7, 0.75 / 24 / 366],
    ]
    np.testing.assert_allclose(phase, want, atol=1e-12)
    assert x[0].tolist() == [0.0, 1.0] * 4  # exact at the start of every cycle


def test_date_time_columns_are_midnights():
    days = pd.date_range("2024-02-25", periods=10, freq="D")
    table = pa.table({"day": pa.array(days.date, pa.date32()), "v": np.arange(10.0)})
    feed = feeds.Feed(dtype="float64", calendar="auto")
    chunk = feed(table)
    assert feed.calendar_features == ("day_of_week", "day_of_year")
    want = naive.calendar_features(chunk.times, feed.calendar_features, None)
    np.testing.assert_allclose(chunk.x[:, 1:], want, rtol=0, atol=1e-12)
    hours = feeds.Feed(dtype="float64", calendar=["hour_of_day"])(table)
    assert hours.x[:, 1:].tolist() == [[0.0, 1.0]] * 10


def test_grid_bins_and_flushed_rows_get_their_own_times():
    df = frame(60, step="40min")
    df = df[(df.index < 20) | (df.index > 35)]  # empty bins in the gap
    feed = feeds.Feed(feeds.Schema(**SCHEMA), dtype="float64", missing="mask", grid="30min",
                      time_delta=True, calendar="auto")  # fmt: skip
    chunks = [feed(part) for part in slices(df, [13, 30])] + [feed.flush()]
    assert feed.calendar_features == ("hour_of_day", "day_of_week", "day_of_year")
    assert chunks[-1] is not None and len(chunks[-1]) == 3  # one pending bin per key
    got = feeds.concat(chunks)
    assert got.counts["empty_bins"] > 10
    want = naive.calendar_features(got.times, feed.calendar_features, "America/New_York")
    np.testing.assert_allclose(calendar_part(got, feed), want, rtol=0, atol=1e-12)


def test_columns_go_after_dt_and_before_the_masks_and_leave_the_rest_alone():
    df = frame(150)
    options = dict(missing="mask", time_delta=True, scale="per_key", dtype="float64")
    plain = feeds.Feed(feeds.Schema(**SCHEMA), **options)
    feed = feeds.Feed(feeds.Schema(**SCHEMA), calendar=["day_of_year", "hour_of_day"], **options)
    want, got = plain(df), feed(df)
    cal = ("day_of_year_sin", "day_of_year_cos", "hour_of_day_sin", "hour_of_day_cos")
    names = ("a", "b", "dt", *cal, "a_missing", "b_missing")
    assert got.columns == feed.columns == names and feed.input_size == len(names)
    assert feed.calendar_features == ("day_of_year", "hour_of_day")
    others = [names.index(c) for c in names if c not in cal]
    np.testing.assert_array_equal(got.x[:, others], want.x)
    for name in ("keys", "times", "y", "y_loc", "y_scale"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
    empty = feed(df.iloc[:0])
    assert empty.columns == names and empty.x.shape == (0, len(names))
    assert feed.flush().x.shape == (0, len(names))


def test_no_calendar_is_the_feed_as_before():
    df = frame(100)
    for calendar in (None, (), "auto"):
        numeric = df.assign(time=np.arange(len(df), dtype=np.float64))
        feed = feeds.Feed(feeds.Schema(**SCHEMA), missing=0.0, calendar=calendar)
        chunk = feed(numeric if calendar == "auto" else df)
        assert feed.calendar_features == () and chunk.columns == ("a", "b")


def test_calendar_features_flow_through_a_stream():
    df = frame(120)
    feed = feeds.Feed(feeds.Schema(**SCHEMA), missing=0.0, calendar="auto")
    stream = streamrnn.Stream(streamrnn.GRU(8, 4, output_size=1, seed=0), feed=feed)
    assert stream.update(df).shape == (120, 1)
    assert feed.input_size == 8


# -- "auto" ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "freq, want",
    [
        ("10min", ("hour_of_day", "day_of_week", "day_of_year")),
        ("h", ("hour_of_day", "day_of_week", "day_of_year")),
        ("D", ("day_of_week", "day_of_year")),
        ("W-MON", ("day_of_year",)),
        ("MS", ("day_of_year",)),
        ("QS", ("day_of_year",)),
        ("YS", ()),
    ],
)
def test_auto_follows_the_sampling_step(freq, want):
    times = pd.date_range("2001-01-01", periods=12, freq=freq, tz="Europe/Paris")
    feed = feeds.Feed(calendar="auto")
    chunk = feed(pd.DataFrame({"time": times, "v": 1.0}))
    assert feed.calendar_features == want
    assert chunk.columns == ("v", *(f"{n}_{f}" for n in want for f in ("sin", "cos")))


def test_auto_takes_the_step_within_each_key():
    # each key daily, the keys twelve hours apart: rows of the table come every 12 hours
    times = pd.date_range("2024-01-01", periods=20, freq="12h")
    df = pd.DataFrame({"sensor": ["a", "b"] * 10, "time": times, "v": 1.0})
    feed = feeds.Feed(calendar="auto")
    feed(df)
    assert feed.calendar_features == ("day_of_week", "day_of_year")
    one = feeds.Feed(feeds.Schema(key=False), calendar="auto")
    one(df.drop(columns="sensor"))
    assert one.calendar_features == ("hour_of_day", "day_of_week", "day_of_year")


def test_auto_takes_the_grid_step_when_there_is_a_grid():
    df = frame(30, step="1min")
    feed = feeds.Feed(feeds.Schema(**SCHEMA), missing=0.0, grid="1D", calendar="auto")
    feed(df.iloc[:1])  # one row is enough: the grid says the step
    assert feed.calendar_features == ("day_of_week", "day_of_year")
    assert feeds.Feed(feeds.Schema(time="t"), grid=2.0, calendar="auto")(
        pd.DataFrame({"t": [0.0, 1.0], "v": 1.0})
    ).columns == ("v",)


def test_auto_without_a_step_in_the_first_chunk_is_an_error_that_leaves_the_feed_unbound():
    df = frame(40)
    feed = feeds.Feed(feeds.Schema(**SCHEMA), missing=0.0, calendar="auto")
    with pytest.raises(feeds.ConfigError, match="name the features"):
        feed(df.iloc[:3].assign(sensor=["s0", "s1", "s2"]))
    with pytest.raises(feeds.SchemaError, match="no rows yet"):
        _ = feed.calendar_features
    whole = feeds.Feed(feeds.Schema(**SCHEMA), missing=0.0, calendar="auto")(df)
    assert feed(df).equals(whole)
    duplicates = pd.DataFrame({"time": pd.to_datetime(["2024-01-01"] * 2), "v": 1.0})
    with pytest.raises(feeds.ConfigError, match="two different times"):
        feeds.Feed(calendar="auto", duplicates="first")(duplicates)


def test_calendar_for():
    three = ("hour_of_day", "day_of_week", "day_of_year")
    assert feeds.calendar_for("1h") == feeds.calendar_for("23h59min") == three
    assert feeds.calendar_for(pd.Timedelta("1D")) == ("day_of_week", "day_of_year")
    assert feeds.calendar_for(datetime.timedelta(days=6, hours=23)) == (
        "day_of_week",
        "day_of_year",
    )
    assert feeds.calendar_for(np.timedelta64(7, "D")) == ("day_of_year",)
    assert feeds.calendar_for("364D") == ("day_of_year",)
    assert feeds.calendar_for("365D") == feeds.calendar_for("3650D") == ()
    for bad in ("0s", "-1h", "soon", None, pd.NaT):
        with pytest.raises(feeds.ConfigError, match="positive time span"):
            feeds.calendar_for(bad)
    with pytest.raises(feeds.ConfigError, match="numeric times have none"):
        feeds.calendar_for(3600)


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "calendar, match",
    [
        (["hour_of_day", "week"], "'week', which is no calendar feature"),
        (["day_of_week", "day_of_week"], "'day_of_week' twice"),
        ("daily", "'daily', which is no calendar feature"),
        ([1], "1, which is no calendar feature"),
        (True, "got True"),
        (24, "got 24"),
        ({"hour_of_day"}, "got {'hour_of_day'}"),
        (np.array(["hour_of_day"]), "got array(['hour_of_day']"),
    ],
)
def test_wrong_names_are_refused_with_the_accepted_ones(calendar, match):
    with pytest.raises(feeds.ConfigError, match=re.escape(match)) as info:
        feeds.Feed(calendar=calendar)
    assert "'minute_of_hour', 'hour_of_day', 'day_of_week', 'day_of_year'" in str(info.value)


def test_numeric_times_have_no_calendar():
    df = pd.DataFrame({"t": [1, 2, 3], "v": [1.0, 2.0, 3.0]})
    feed = feeds.Feed(feeds.Schema(time="t"), calendar=["hour_of_day"])
    with pytest.raises(feeds.ConfigError, match="time column 't' holds int64 values"):
        feed(df)
    assert not feed.schema.bound


def test_a_column_of_the_same_name_is_a_schema_error():
    df = frame(20).assign(day_of_week_cos=1.0)  # a feature, as every numeric column
    feed = feeds.Feed(
        feeds.Schema(time="time", key="sensor"), missing=0.0, calendar=["day_of_week"]
    )
    with pytest.raises(feeds.SchemaError, match="'day_of_week_cos' exists already"):
        feed(df)


# -- cuts, pickles --------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 200), max_size=10),
    grid=st.sampled_from([None, "25min", "2h"]),
    tz=st.sampled_from([None, "America/New_York", "Australia/Lord_Howe"]),
    calendar=st.sampled_from([ALL, ("day_of_year", "minute_of_hour"), "auto"]),
    seed=st.integers(0, 3),
)
def test_cutting_anywhere_changes_no_calendar_value(cuts, grid, tz, calendar, seed):
    df = frame(200, seed=seed, start="2024-04-05")  # Lord Howe turns its clock back 30 min
    df["time"] = df["time"].dt.tz_localize(None) if tz is None else df["time"].dt.tz_convert(tz)
    if calendar == "auto" and grid is None:  # from a first chunk of 30 rows or more
        cuts = [c for c in cuts if c % 201 >= 30]
    options = dict(missing="mask", grid=grid, calendar=calendar, time_delta=True)
    if grid is None:
        options["duplicates"] = "last"  # rows held back and released by flush

    def run(parts):
        feed = feeds.Feed(feeds.Schema(**SCHEMA), dtype="float64", **options)
        return feeds.concat([feed(p) for p in parts] + [feed.flush()]), feed

    whole, feed = run([df])
    cut, feed_cut = run(slices(df, cuts))
    assert cut.equals(whole)
    assert feed_cut.calendar_features == feed.calendar_features
    want = naive.calendar_features(whole.times, feed.calendar_features, tz)
    np.testing.assert_allclose(calendar_part(whole, feed), want, rtol=0, atol=1e-12)


def test_a_pickled_feed_resumes_with_its_calendar():
    df = frame(300)
    options = dict(missing=("ffill", 0.0), grid="20min", calendar="auto", dtype="float64")
    straight = feeds.Feed(feeds.Schema(**SCHEMA), **options)
    want = feeds.concat([straight(df), straight.flush()])
    first = feeds.Feed(feeds.Schema(**SCHEMA), **options)
    fresh = pickle.loads(pickle.dumps(first))  # before the first chunk too
    parts = [first(df.iloc[:100])]
    resumed = pickle.loads(pickle.dumps(first))
    parts += [resumed(df.iloc[100:]), resumed.flush()]
    assert feeds.concat(parts).equals(want)
    assert resumed.calendar_features == straight.calendar_features
    assert feeds.concat([fresh(df), fresh.flush()]).equals(want)


def test_an_error_leaves_the_feed_as_it_was():
    df = frame(100)
    feed = feeds.Feed(feeds.Schema(**SCHEMA), missing=0.0, calendar=ALL)
    straight = feeds.Feed(feeds.Schema(**SCHEMA), missing=0.0, calendar=ALL)
    want = feeds.concat([straight(df.iloc[:50]), straight(df.iloc[50:])])
    first = feed(df.iloc[:50])
    late = df.iloc[50:].copy()
    late.iloc[10, late.columns.get_loc("time")] -= pd.Timedelta("1D")
    with pytest.raises(feeds.TimeOrderError):
        feed(late)
    assert feeds.concat([first, feed(df.iloc[50:])]).equals(want)


def test_a_feed_pickled_before_calendar_features_reads_as_having_none():
    df = frame(60)
    feed = feeds.Feed(feeds.Schema(**SCHEMA), missing=0.0)
    want = feeds.Feed(feeds.Schema(**SCHEMA), missing=0.0)
    want(df.iloc[:30])
    feed(df.iloc[:30])
    del feed.__dict__["calendar"], feed.__dict__["_calendar"]
    old = pickle.loads(pickle.dumps(feed))
    assert old.calendar is None and old.calendar_features == ()
    assert old(df.iloc[30:]).equals(want(df.iloc[30:]))
