"""feeds: lagged targets match a row-by-row reference, however a stream is cut."""

import pickle
import re

import naive
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import feeds
import streamrnn

SCHEMA = dict(time="time", key="sensor", features=["a", "b", "c"], targets=["a", "b"])


def frame(n=200, n_keys=3, seed=0, gap=True):
    """Rows of ``n_keys`` sensors, interleaved, at irregular times; targets ``a`` and ``b``
    have runs of missing values (one key's ``b`` is missing at first), feature ``c`` none.
    With ``gap``, a stretch of time without rows (empty bins on a grid)."""
    rng = np.random.default_rng(seed)
    keys = np.array([f"s{k}" for k in range(n_keys)], dtype=object)[rng.integers(0, n_keys, n)]
    ticks = np.cumsum(rng.integers(1, 4, n))
    if gap:
        ticks[n // 2 :] += 40
    time = pd.Timestamp("2024-01-01") + pd.to_timedelta(ticks * 10, "min")
    a = 20 + 5 * rng.standard_normal(n)
    a[rng.random(n) < 0.2] = np.nan
    a[n // 3 : n // 3 + 12] = np.nan  # a run longer than the lags
    b = rng.standard_normal(n)
    b[rng.random(n) < 0.1] = np.nan
    b[(keys == "s1") & (np.arange(n) < n // 4)] = np.nan
    c = rng.standard_normal(n)
    return pd.DataFrame({"sensor": keys, "time": time, "a": a, "b": b, "c": c})


def slices(df, cuts):
    edges = [0, *sorted(set(c % (len(df) + 1) for c in cuts)), len(df)]
    return [df.iloc[a:b] for a, b in zip(edges[:-1], edges[1:])]


def lag_part(chunk, feed):
    return chunk.x[:, [chunk.columns.index(c) for c in feed._lag_names]]


def reference(df, options, lags, feed, chunk):
    """The reference's lag columns for ``chunk``: the targets in data units from a feed
    that neither scales nor rounds, scaled with the chunk's own ``y_loc`` and ``y_scale``."""
    raw_options = dict(options, scale=None, dtype="float64", lags=None)
    raw_feed = feeds.Feed(feeds.Schema(**SCHEMA), **raw_options)
    raw = feeds.concat([raw_feed(df), raw_feed.flush()])
    assert raw.keys.tolist() == chunk.keys.tolist()
    scaled = options.get("scale") is not None
    want = naive.lagged_targets(
        chunk.keys.tolist(), raw.y, lags,
        chunk.y_loc if scaled else None, chunk.y_scale if scaled else None,
    )  # fmt: skip
    return want.astype(feed.dtype)


# -- values against the reference ---------------------------------------------------------------


@pytest.mark.parametrize("scale", [None, "global", "per_key"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("grid", [None, "30min"])
def test_values_match_the_reference(scale, dtype, grid):
    df = frame(300)
    options = dict(missing="mask", scale=scale, dtype=dtype, grid=grid, time_delta=True)
    feed = feeds.Feed(feeds.Schema(**SCHEMA), lags=[3, 1, 12], **options)
    got = feeds.concat([feed(df), feed.flush()])
    if grid is not None:
        assert got.counts["empty_bins"] > 20
    lags = [(q, k) for q in (0, 1) for k in (3, 1, 12)]
    want = reference(df, options, lags, feed, got)
    np.testing.assert_array_equal(lag_part(got, feed), want)


def test_per_target_lags_from_a_dict():
    df = frame(200)
    options = dict(missing=0.0, scale="per_key", dtype="float64")
    feed = feeds.Feed(feeds.Schema(**SCHEMA), lags={"b": (5, 2), "a": 1}, **options)
    got = feed(df)
    assert feed.columns == ("a", "b", "c", "a_lag1", "b_lag5", "b_lag2")  # in target order
    want = reference(df, options, [(0, 1), (1, 5), (1, 2)], feed, got)
    np.testing.assert_array_equal(lag_part(got, feed), want)


def test_known_values_of_one_series():
    nan = np.nan
    df = pd.DataFrame({"t": np.arange(8), "y": [nan, 1.0, 2.0, nan, nan, 5.0, 6.0, 7.0]})
    feed = feeds.Feed(feeds.Schema(time="t", targets="y"), missing="mask", lags=[1, 3])
    chunk = feed(df)
    assert chunk.columns == ("y", "y_lag1", "y_lag3", "y_missing")
    # nothing observed: 0; too few rows or nothing observed by then: the current value
    assert chunk.x[:, 1].tolist() == [0.0, 1.0, 1.0, 2.0, 2.0, 2.0, 5.0, 6.0]
    assert chunk.x[:, 2].tolist() == [0.0, 1.0, 2.0, 2.0, 1.0, 2.0, 2.0, 2.0]
    scaled = feeds.Feed(feeds.Schema(time="t", targets="y"), missing="mask", lags=[1, 3],
                        scale="global", dtype="float64")(df)  # fmt: skip
    want = (np.array([nan, 1, 1, 2, 2, 2, 5, 6]) - scaled.y_loc[:, 0]) / scaled.y_scale[:, 0]
    assert scaled.x[0, 1] == 0.0  # the running mean
    assert scaled.x[1:, 1].tolist() == want[1:].tolist()
    assert scaled.x[2, 2] == scaled.y[2, 0]  # the current value, scaled the same way


def test_columns_go_after_the_calendar_and_before_the_masks_and_leave_the_rest_alone():
    df = frame(150)
    options = dict(missing="mask", time_delta=True, scale="per_key", calendar=["hour_of_day"])
    plain = feeds.Feed(feeds.Schema(**SCHEMA), **options)
    feed = feeds.Feed(feeds.Schema(**SCHEMA), lags=(2, 7), **options)
    want, got = plain(df), feed(df)
    lagged = ("a_lag2", "a_lag7", "b_lag2", "b_lag7")
    cal = ("hour_of_day_sin", "hour_of_day_cos")
    names = ("a", "b", "c", "dt", *cal, *lagged, "a_missing", "b_missing", "c_missing")
    assert got.columns == feed.columns == names and feed.input_size == len(names)
    others = [names.index(c) for c in names if c not in lagged]
    np.testing.assert_array_equal(got.x[:, others], want.x)
    for name in ("keys", "times", "y", "y_loc", "y_scale"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
    empty = feed(df.iloc[:0])
    assert empty.columns == names and empty.x.shape == (0, len(names))
    assert feed.flush().x.shape == (0, len(names))


@pytest.mark.parametrize("lags", [None, [], {}, {"a": []}])
def test_no_lags_is_the_feed_as_before(lags):
    df = frame(100)
    want = feeds.Feed(feeds.Schema(**SCHEMA), missing=0.0)(df)
    feed = feeds.Feed(feeds.Schema(**SCHEMA), missing=0.0, lags=lags)
    assert feed(df).equals(want) and feed.columns == ("a", "b", "c")


def test_lagged_targets_flow_through_a_stream():
    df = frame(120)
    feed = feeds.Feed(feeds.Schema(**SCHEMA), missing=0.0, lags=[2])
    stream = streamrnn.Stream(streamrnn.GRU(5, 4, output_size=2, seed=0), feed=feed)
    assert stream.update(df).shape == (120, 2)
    assert feed.input_size == 3 + 2


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lags, match",
    [
        (0, "holds 0, which is no lag"),
        ([1, -2], "holds -2, which is no lag"),
        ([2, 2], "names lag 2 twice"),
        (True, "got True"),
        (2.0, "got 2.0"),
        ("3", "got '3'"),
        ([1.5], "holds 1.5"),
        ({"a": [0]}, "the lags of 'a' holds 0"),
        ({"c": [1]}, "'c', which is not a target; lags apply to the targets: ['a', 'b']"),
    ],
)
def test_wrong_lags_are_refused_with_what_is_accepted(lags, match):
    with pytest.raises(feeds.ConfigError, match=re.escape(match)):
        feeds.Feed(feeds.Schema(**SCHEMA), lags=lags)


def test_lags_need_targets():
    with pytest.raises(feeds.ConfigError, match=re.escape("Schema(targets=[...])")):
        feeds.Feed(lags=2)
    with pytest.raises(feeds.ConfigError, match="the schema names none"):
        feeds.Feed(lags={"a": 2})
    schema = feeds.Schema(targets=[])
    with pytest.raises(feeds.ConfigError, match="the schema names none"):
        feeds.Feed(schema, lags=[1, 2])


def test_a_column_of_the_same_name_is_a_schema_error():
    df = frame(20).assign(a_lag3=1.0)
    feed = feeds.Feed(feeds.Schema(time="time", key="sensor", targets="a"), missing=0.0, lags=3)
    with pytest.raises(feeds.SchemaError, match="'a_lag3' exists already"):
        feed(df)
    assert not feed.schema.bound


def test_a_lag_too_large_for_float32_once_standardised_is_an_error():
    df = pd.DataFrame({"t": np.arange(3), "y": [1e30, np.nan, np.nan]})
    feed = feeds.Feed(feeds.Schema(time="t", targets="y"), missing="mask", lags=1,
                      scale="global")  # fmt: skip
    first = feed(df.iloc[:1])
    # statistics no stream of finite values reaches easily: a tiny spread about 0
    feed._SC = feed._SC.copy()
    feed._SC[0, 0] = (2.0, 0.0, 2e-60)
    state = feed._SC.copy()
    with pytest.raises(feeds.MissingValueError, match=r"'y_lag1' at row 0 \(row 1 of the stream"):
        feed(df.iloc[1:])
    assert np.array_equal(feed._SC, state) and feed.counts["rows_out"] == len(first) == 1
    wide = feeds.Feed(feeds.Schema(time="t", targets="y"), missing="mask", lags=1,
                      scale="global", dtype="float64")  # fmt: skip
    wide(df.iloc[:1])
    wide._SC = feed._SC.copy()
    np.testing.assert_allclose(wide(df.iloc[1:]).x[:, 1], 1e60, rtol=1e-12)


# -- cuts, pickles --------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 160), max_size=8),
    grid=st.sampled_from([None, "20min"]),
    scale=st.sampled_from([None, "global", "per_key"]),
    lags=st.sampled_from([1, [4, 1], (9,), {"b": [2, 6]}]),
    seed=st.integers(0, 3),
)
def test_cutting_anywhere_changes_no_lag(cuts, grid, scale, lags, seed):
    df = frame(160, seed=seed)
    options = dict(missing="mask", grid=grid, scale=scale, lags=lags, dtype="float64")
    if grid is None:  # rows held back and released by flush
        options["duplicates"] = "last"
        df.loc[df.index % 17 == 5, "time"] = df["time"].shift(1)  # a duplicate time now and then
        df = df.iloc[1:]

    def run(parts):
        feed = feeds.Feed(feeds.Schema(**SCHEMA), **options)
        return feeds.concat([feed(p) for p in parts] + [feed.flush()]), feed

    whole, feed = run([df])
    cut, _ = run(slices(df, cuts))
    assert cut.equals(whole)
    if grid is None:
        assert whole.counts["duplicates_dropped"] > 0


def test_a_pickled_feed_resumes_with_its_lags():
    df = frame(300)
    options = dict(missing=("ffill", 0.0), grid="20min", lags=[1, 6], scale="per_key")
    straight = feeds.Feed(feeds.Schema(**SCHEMA), **options)
    want = feeds.concat([straight(df), straight.flush()])
    first = feeds.Feed(feeds.Schema(**SCHEMA), **options)
    fresh = pickle.loads(pickle.dumps(first))  # before the first chunk too
    parts = [first(df.iloc[:100])]
    resumed = pickle.loads(pickle.dumps(first))
    parts += [resumed(df.iloc[100:]), resumed.flush()]
    assert feeds.concat(parts).equals(want)
    assert feeds.concat([fresh(df), fresh.flush()]).equals(want)


def test_an_error_leaves_the_lags_as_they_were():
    df = frame(100)
    options = dict(missing=0.0, lags=[2, 5])
    feed = feeds.Feed(feeds.Schema(**SCHEMA), **options)
    straight = feeds.Feed(feeds.Schema(**SCHEMA), **options)
    want = feeds.concat([straight(df.iloc[:50]), straight(df.iloc[50:])])
    first = feed(df.iloc[:50])
    late = df.iloc[50:].copy()
    late.iloc[30, late.columns.get_loc("time")] -= pd.Timedelta("1D")
    with pytest.raises(feeds.TimeOrderError):
        feed(late)
    assert feeds.concat([first, feed(df.iloc[50:])]).equals(want)


def test_a_feed_pickled_before_lags_reads_as_having_none():
    df = frame(60)
    feed = feeds.Feed(feeds.Schema(**SCHEMA), missing=0.0)
    want = feeds.Feed(feeds.Schema(**SCHEMA), missing=0.0)
    want(df.iloc[:30])
    feed(df.iloc[:30])
    for name in ("lags", "_lag_names", "_lag_at", "_lag0", "_LH"):
        del feed.__dict__[name]
    old = pickle.loads(pickle.dumps(feed))
    assert old.lags is None
    assert old(df.iloc[30:]).equals(want(df.iloc[30:]))
    assert old.flush().equals(want.flush())
