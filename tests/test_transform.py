"""Targets read as log1p(value): the feed against the same data transformed beforehand,
cut anywhere; streams and learners that turn their forecasts back; the errors."""

import dataclasses
import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import feeds
import streamrnn
from streamrnn import InputError
from streamrnn.losses import Pinball

SCHEMA = dict(time="time", key="sensor", features=["a", "b", "c"], targets=["a", "b"])


def frame(n=200, seed=0):
    """Rows of three sensors, interleaved; targets ``a`` (a flow: positive, with spikes and
    gaps) and ``b`` (never negative, zero at times); ``c`` a plain feature."""
    rng = np.random.default_rng(seed)
    keys = np.array(["s0", "s1", "s2"], dtype=object)[rng.integers(0, 3, n)]
    time = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.cumsum(rng.integers(1, 4, n)) * 10,
                                                        "min")  # fmt: skip
    a = np.exp(rng.normal(2.0, 1.0, n))
    a[rng.random(n) < 0.15] = np.nan
    b = np.maximum(rng.normal(0.5, 1.0, n), 0.0)
    c = rng.standard_normal(n)
    return pd.DataFrame({"sensor": keys, "time": time, "a": a, "b": b, "c": c})


def logged(df, columns=("a", "b")):
    """The frame with ``columns`` replaced by log1p of them, as a user could do beforehand."""
    out = df.copy()
    for c in columns:
        out[c] = np.log1p(out[c])
    return out


def read(df, parts=None, **options):
    feed = feeds.Feed(feeds.Schema(**SCHEMA), **options)
    parts = [df] if parts is None else parts
    return feeds.concat([feed(p) for p in parts] + [feed.flush()]), feed


def untagged(chunk):
    return dataclasses.replace(chunk, transforms=())


# -- the feed ----------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [None, "global", "per_key"])
@pytest.mark.parametrize("grid", [None, "30min"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_feed_reads_what_a_transformed_frame_gives(scale, grid, dtype):
    df = frame(300)
    options = dict(missing="mask", scale=scale, grid=grid, dtype=dtype, lags=[1, 5])
    got, feed = read(df, transform="log1p", **options)
    want, _ = read(logged(df), **options)
    assert got.transforms == feed.target_transforms == ("log1p", "log1p")
    assert untagged(got).equals(want)  # inputs, targets, scaling and lags alike


def test_a_dict_names_the_targets_it_transforms():
    df = frame(120)
    got, feed = read(df, transform={"b": "log1p"}, missing="mask", lags=2)
    want, _ = read(logged(df, ["b"]), missing="mask", lags=2)
    assert feed.target_transforms == (None, "log1p") == got.transforms
    assert untagged(got).equals(want)
    raw, _ = read(df, missing="mask", lags=2)
    assert raw.transforms == ()
    np.testing.assert_array_equal(got.y[:, 0], raw.y[:, 0])  # a untouched


@pytest.mark.parametrize("scale", [None, "per_key"])
def test_targets_in_units_turn_back_to_the_data(scale):
    df = frame(150)
    got, _ = read(df, transform="log1p", missing="mask", scale=scale, dtype="float64")
    raw, _ = read(df, missing="mask", dtype="float64")
    np.testing.assert_allclose(got.y_in_units(), raw.y, rtol=1e-12, atol=1e-12)
    assert np.array_equal(np.isnan(got.y_in_units()), np.isnan(raw.y))


def test_untransform_is_expm1_per_column():
    values = np.array([[0.0, 0.5], [np.log(3.0), -1.0]])
    out = feeds.untransform(values, ("log1p", None))
    np.testing.assert_allclose(out, [[0.0, 0.5], [2.0, -1.0]], rtol=1e-15)
    assert out is not values and values[1, 0] == np.log(3.0)


@settings(max_examples=25, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 150), max_size=8),
    grid=st.sampled_from([None, "20min"]),
    scale=st.sampled_from([None, "global", "per_key"]),
    seed=st.integers(0, 3),
)
def test_cutting_anywhere_changes_nothing(cuts, grid, scale, seed):
    df = frame(150, seed=seed)
    options = dict(missing="mask", grid=grid, scale=scale, lags=[1, 3], transform="log1p",
                   dtype="float64")  # fmt: skip
    edges = [0, *sorted({c % 151 for c in cuts}), 150]
    whole, _ = read(df, **options)
    cut, _ = read(df, [df.iloc[i:j] for i, j in zip(edges[:-1], edges[1:])], **options)
    assert cut.equals(whole)


def test_a_negative_target_is_an_error_that_names_it_and_changes_nothing():
    df = frame(80)
    feed = feeds.Feed(feeds.Schema(**SCHEMA), missing="mask", transform="log1p", lags=1)
    straight = feeds.Feed(feeds.Schema(**SCHEMA), missing="mask", transform="log1p", lags=1)
    want = [straight(df.iloc[:40]), straight(df.iloc[40:])]
    first = feed(df.iloc[:40])
    bad = df.iloc[40:].copy()
    bad.iloc[7, bad.columns.get_loc("b")] = -0.25
    with pytest.raises(feeds.FeedError, match=r"target column 'b' is -0.25 at row 7 \(row 47 of "
                       r"the stream\); transform='log1p' takes values >= 0"):  # fmt: skip
        feed(bad)
    assert feeds.concat([first, feed(df.iloc[40:])]).equals(feeds.concat(want))


def test_a_feature_that_is_no_target_may_be_negative():
    df = frame(60)
    df["c"] = -np.abs(df["c"])
    got, _ = read(df, transform="log1p", missing="mask")
    np.testing.assert_array_equal(got.x[:, 2], df["c"].to_numpy(np.float32))


@pytest.mark.parametrize(
    "schema, transform, match",
    [
        (SCHEMA, "log", r"transform must be one of \('log1p',\)"),
        (SCHEMA, {"a": "sqrt"}, r"transform of 'a' must be one of"),
        (
            SCHEMA,
            {"c": "log1p"},
            r"transform names 'c', which is not a target; targets are "
            r"\['a', 'b'\]",
        ),  # fmt: skip
        (dict(SCHEMA, targets=[]), "log1p", r"transform applies to targets"),
    ],
)
def test_wrong_transforms_are_refused_with_what_is_accepted(schema, transform, match):
    with pytest.raises(feeds.ConfigError, match=match):
        feeds.Feed(feeds.Schema(**schema), transform=transform)


def test_targets_named_on_the_first_chunk_are_checked_then():
    feed = feeds.Feed(feeds.Schema(time="time", key="sensor"), transform="log1p")
    with pytest.raises(feeds.ConfigError, match="transform applies to targets"):
        feed(frame(10))


def test_a_pickled_feed_resumes_with_its_transform_and_an_older_one_has_none():
    df = frame(200)
    options = dict(missing="mask", grid="20min", lags=[2], scale="per_key", transform="log1p")
    want, _ = read(df, **options)
    first = feeds.Feed(feeds.Schema(**SCHEMA), **options)
    parts = [first(df.iloc[:90])]
    resumed = pickle.loads(pickle.dumps(first))
    parts += [resumed(df.iloc[90:]), resumed.flush()]
    assert feeds.concat(parts).equals(want)
    old = feeds.Feed(feeds.Schema(**SCHEMA), missing="mask")
    old(df.iloc[:90])
    for name in ("transform", "target_transforms", "_tcols"):
        del old.__dict__[name]
    old = pickle.loads(pickle.dumps(old))
    plain = feeds.Feed(feeds.Schema(**SCHEMA), missing="mask")
    plain(df.iloc[:90])
    assert old.transform is None and old.target_transforms == (None, None)
    assert old(df.iloc[90:]).equals(plain(df.iloc[90:]))


# -- streams and learners turn their forecasts back ------------------------------------------

ONE = dict(time="time", targets=["flow"])


def flows(n=240, seed=0):
    """One river-like series: positive, multiplicative moves, a few spikes."""
    rng = np.random.default_rng(seed)
    level = np.exp(np.cumsum(rng.normal(0.0, 0.08, n))) * 20.0
    level[rng.random(n) < 0.05] *= 4.0
    return pd.DataFrame({"time": np.arange(n), "flow": level})


def fresh_learner(transform, loss, **kw):
    feed = feeds.Feed(feeds.Schema(**ONE), dtype="float64", scale="global", lags=[4],
                      transform=transform)  # fmt: skip
    model = streamrnn.GRU(hidden_size=6, seed=1, dtype="float64")
    return streamrnn.OnlineLearner(model, feed=feed, tbptt=(4, 8), loss=loss, seasonal=[1],
                                   minimum=0.0, **kw)  # fmt: skip


@pytest.mark.parametrize("loss", ["huber", Pinball([0.1, 0.5, 0.9])])
def test_a_learner_forecasts_expm1_of_what_it_forecasts_on_transformed_data(loss):
    df = flows()
    mine = fresh_learner("log1p", loss)
    got = np.concatenate([mine.predict_learn(df.iloc[i : i + 37]) for i in range(0, 240, 37)])
    theirs = fresh_learner(None, loss)
    want = theirs.predict_learn(logged(df, ["flow"]))
    np.testing.assert_array_equal(got, np.maximum(np.expm1(want), 0.0))
    assert mine.counts["updates"] == theirs.counts["updates"] > 0
    ahead = mine.forecast([0], 6)
    np.testing.assert_array_equal(ahead, np.maximum(np.expm1(theirs.forecast([0], 6)), 0.0))
    assert (np.diff(ahead, axis=-1) >= 0).all() and (ahead >= 0).all()
    again = pickle.loads(pickle.dumps(mine))
    rest = flows(40, seed=5).assign(time=np.arange(240, 280))
    np.testing.assert_array_equal(again.predict_learn(rest), mine.predict_learn(rest))


def test_a_stream_forecasts_expm1_of_what_it_forecasts_on_transformed_data():
    df = flows(120)
    model = streamrnn.LSTM(2, 5, output_size=1, seed=3, dtype="float64")

    def stream(transform):
        feed = feeds.Feed(feeds.Schema(**ONE), dtype="float64", lags=[2], transform=transform)
        return streamrnn.Stream(model, feed=feed, relative="last")

    mine = stream("log1p")
    got = np.concatenate([mine.update(p) for p in (df.iloc[:50], df.iloc[50:])])
    want = stream(None).update(logged(df, ["flow"]))
    np.testing.assert_array_equal(got, np.expm1(want))


def test_a_learner_takes_its_targets_in_one_set_of_units():
    df = flows(60)
    mine = fresh_learner("log1p", "huber")
    mine.predict_learn(df.iloc[:30])
    other = feeds.Feed(feeds.Schema(**ONE), dtype="float64", scale="global", lags=[4])
    with pytest.raises(InputError, match=r"the chunk's targets \['flow'\] are untransformed, "
                       r"but this OnlineLearner has learned and forecast them transformed "
                       r"\('log1p',\)"):  # fmt: skip
        mine.predict_learn(other(df.iloc[30:]))


def test_a_learner_saved_before_transforms_loads_as_untransformed():
    df = flows(80)
    mine = fresh_learner(None, "huber")
    mine.predict_learn(df.iloc[:40])
    twin = pickle.loads(pickle.dumps(mine))
    del mine.__dict__["_transforms"]
    old = pickle.loads(pickle.dumps(mine))
    assert old._transforms is None
    np.testing.assert_array_equal(old.predict_learn(df.iloc[40:]), twin.predict_learn(df.iloc[40:]))


def test_progressive_scores_a_log1p_learner_in_the_datas_units():
    from streamrnn.evaluate import progressive

    df = flows(200)
    mine = fresh_learner("log1p", "huber")
    result = progressive([df.iloc[:90], df.iloc[90:]], fresh_learner("log1p", "huber"),
                         metrics=["mae", "mase"], ar_order=None)  # fmt: skip
    out = mine.predict_learn(df)[:, 0]
    y = df["flow"].to_numpy()
    np.testing.assert_allclose(result.metrics["mae"], np.mean(np.abs(out[:-1] - y[1:])),
                               rtol=1e-12)  # fmt: skip
    persistence = np.mean(np.abs(y[:-1] - y[1:]))
    np.testing.assert_allclose(result.metrics["mase"], result.metrics["mae"] / persistence,
                               rtol=1e-9)  # fmt: skip
