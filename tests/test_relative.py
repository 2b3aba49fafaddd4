"""Forecasts relative to the last observed value, quantiles that never cross, a lower
bound: against NumPy references (tests/naive.py), cut anywhere, saved and loaded."""

import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from naive import (
    ar_made,
    calibrated,
    made_changes,
    relative_anchors,
    relative_labels,
    shrink_gains,
)

import feeds
import streamrnn
from streamrnn import ConfigError, InputError, optim
from streamrnn.losses import CrossEntropy, Pinball


def keyed(lengths, seed=0, mask=0.2):
    """Rows of several keys interleaved at random: keys, x (2 inputs), y (NaN gaps)."""
    rng = np.random.default_rng(seed)
    keys = np.concatenate([np.full(n, k) for k, n in enumerate(lengths)])
    keys = keys[rng.permutation(len(keys))]
    x = rng.standard_normal((len(keys), 2))
    y = np.cumsum(rng.standard_normal(len(keys)))[:, None] + 5.0
    y[rng.random(len(keys)) < mask] = np.nan
    return keys, x, y


def learner(relative="last", horizon=1, loss="mse", outputs=1, **kw):
    kw.setdefault("shrink", False)
    kw.setdefault("calibrate", False)
    kw.setdefault("ar", None)
    model = streamrnn.GRU(2, 4, output_size=outputs, dtype="float64", seed=3)
    return streamrnn.OnlineLearner(model, tbptt=(3, 5), horizon=horizon, loss=loss,
                                   optimizer=optim.Adam(lr=0.02), relative=relative,
                                   **kw)  # fmt: skip


@pytest.mark.parametrize("horizon", [0, 1, 3])
def test_learns_the_change_as_a_level_learner_given_the_reference_labels(horizon):
    """A relative learner is a level learner whose labels are the changes from the
    anchors, and whose forecasts are the anchors plus its outputs."""
    keys, x, y = keyed([30, 25, 20], seed=horizon)
    rel = learner(horizon=horizon)
    level = learner(relative=None, horizon=horizon)
    out = rel.predict_learn(keys, None, x, y)
    raw = level.predict_learn(keys, None, x, relative_labels(keys, y, horizon))
    anchors = relative_anchors(keys, y, horizon)
    np.testing.assert_array_equal(out, anchors + raw)
    for name, value in rel.model.state_dict().items():
        np.testing.assert_array_equal(value, level.model.state_dict()[name], err_msg=name)


def test_through_a_scaling_feed_changes_are_in_the_targets_scale():
    """With a feed that standardises, the label of row r is (y_r - anchor_o) / scale_o,
    o the row `horizon` before, and the forecast anchor_t + scale_t * output."""
    rng = np.random.default_rng(4)
    n = 60
    df = pd.DataFrame({"key": np.repeat(["a", "b"], n), "time": np.tile(np.arange(n), 2),
                       "u": rng.standard_normal(2 * n),
                       "v": np.cumsum(rng.standard_normal(2 * n)) * 10 + 100})  # fmt: skip
    df.loc[rng.random(2 * n) < 0.15, "v"] = np.nan
    schema = feeds.Schema(features=["u"], targets=["v"])
    chunk = feeds.concat(
        list(feeds.iter_pandas(df, feeds.Feed(schema, scale="per_key", dtype="float64"), rows=17))
    )
    model = streamrnn.GRU(1, 4, output_size=1, dtype="float64", seed=1)
    rel = streamrnn.OnlineLearner(
        model,
        tbptt=(3, 5),
        optimizer=optim.Adam(lr=0.02),
        feed=feeds.Feed(schema, scale="per_key", dtype="float64"),
        shrink=False,
    )
    out = np.concatenate([rel.predict_learn(part) for part in
                          [df.iloc[:50], df.iloc[50:51], df.iloc[51:]]])  # fmt: skip
    keys = np.asarray(chunk.keys, object)
    data = chunk.y * chunk.y_scale + chunk.y_loc
    level = streamrnn.OnlineLearner(
        streamrnn.GRU(1, 4, output_size=1, dtype="float64", seed=1),
        tbptt=(3, 5),
        optimizer=optim.Adam(lr=0.02),
        relative=None,
    )
    labels = relative_labels(keys, data, 1, chunk.y_loc, chunk.y_scale)
    raw = level.predict_learn(keys, None, chunk.x, labels)
    anchors = relative_anchors(keys, data, 1, chunk.y_loc)
    np.testing.assert_allclose(out, anchors + chunk.y_scale * raw, rtol=1e-12, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=6), st.sampled_from([0, 1, 2]))
def test_any_cut_gives_the_same_forecasts_and_weights(cuts, horizon):
    keys, x, y = keyed([40, 33, 27], seed=7)
    whole = learner(horizon=horizon, shrink=True, ar=3)
    expected = whole.predict_learn(keys, None, x, y)
    parts = learner(horizon=horizon, shrink=True, ar=3)
    edges = np.unique(np.clip(np.cumsum(cuts), 0, len(keys)))
    got = [parts.predict_learn(keys[a:b], None, x[a:b], y[a:b])
           for a, b in zip(np.r_[0, edges], np.r_[edges, len(keys)])]  # fmt: skip
    np.testing.assert_array_equal(np.concatenate(got), expected)
    for name, value in whole.model.state_dict().items():
        np.testing.assert_array_equal(parts.model.state_dict()[name], value)
    np.testing.assert_array_equal(parts.forecast([0, 1, 2], 3), whole.forecast([0, 1, 2], 3))


def test_an_untrained_network_starts_at_persistence():
    """Outputs near zero forecast the last observed value: a new relative learner's
    error is close to persistence's from the first rows."""
    model = streamrnn.GRU(2, 4, output_size=1, dtype="float64", seed=0)
    model.load_state_dict({**model.state_dict(), "head.weight": np.zeros((1, 4)),
                           "head.bias": np.zeros(1)})  # fmt: skip
    stream = streamrnn.Stream(model, relative="last")
    keys, x, y = keyed([10, 12], seed=1, mask=0.3)
    out = stream.update(keys, None, x, y=y)
    np.testing.assert_array_equal(out, relative_anchors(keys, y, 1))


def test_rollouts_add_each_change_to_the_level_before():
    model = streamrnn.GRU(1, 5, output_size=1, dtype="float64", seed=2)
    stream = streamrnn.Stream(model, relative="last")
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.standard_normal(12))[:, None]
    stream.update(np.zeros(12, int), None, x, y=x)
    got = stream.forecast([0], horizon=4)[0, :, 0]
    # reference: step the network by hand, feeding back the level
    state = stream.get_state(0)
    level, out = x[-1, 0], []
    y0, _ = model.forward(np.zeros((0, 1)), state) if False else (None, None)
    change = model.forward(x[-1:], None)[0] if False else None
    s = streamrnn.Series(model, state=state)
    step = s.output()[0]
    for _ in range(4):
        out.append(level + step)
        level = level + step
        step = s.step(np.array([level]))[0]
    np.testing.assert_allclose(got, out, rtol=1e-12)
    del y0, change


def test_quantiles_never_cross_and_the_bound_holds():
    model = streamrnn.GRU(2, 6, output_size=3, dtype="float64", seed=5)
    keys, x, y = keyed([30, 30], seed=3)
    plain = streamrnn.Stream(model).update(keys, None, x)
    sorted_ = streamrnn.Stream(model, quantiles=[0.5, 0.05, 0.95]).update(keys, None, x)
    np.testing.assert_array_equal(sorted_[:, [1, 0, 2]], np.sort(plain, axis=1))
    bounded = streamrnn.Stream(model, minimum=0.0).update(keys, None, x)
    np.testing.assert_array_equal(bounded, np.maximum(plain, 0.0))
    lrn = learner(loss=Pinball([0.9, 0.1, 0.5]), outputs=3, minimum=4.0)
    out = lrn.predict_learn(keys, None, x, y)
    assert (np.diff(out[:, [1, 2, 0]], axis=1) >= 0).all() and (out >= 4.0).all()
    fc = lrn.forecast([0, 1], horizon=5)
    assert (np.diff(fc[..., [1, 2, 0]], axis=-1) >= 0).all() and (fc >= 4.0).all()


def test_defaults_and_errors():
    assert learner(relative="default").relative == "last"
    default = streamrnn.OnlineLearner(streamrnn.GRU(2, 4, output_size=1, seed=0))
    assert (default.relative, default.shrink, default.loss.name) == ("last", True, "huber")
    assert default.ar == 7 and learner(relative=None, ar=7).ar is None
    with pytest.raises(ConfigError, match="shrink must be True or False"):
        learner(shrink="yes")
    with pytest.raises(ConfigError, match="ar must be an integer >= 1"):
        learner(ar=0)
    model = streamrnn.GRU(2, 4, output_size=3, dtype="float64", seed=0)
    assert streamrnn.OnlineLearner(model, loss=CrossEntropy(), horizon=0).relative is None
    with pytest.raises(ConfigError, match="relative must be"):
        learner(relative="seasonal")
    with pytest.raises(ConfigError, match="minimum must be finite"):
        learner(minimum=np.inf)
    with pytest.raises(ConfigError, match="stand for the targets"):
        streamrnn.OnlineLearner(model, loss=CrossEntropy(), relative="last")
    stream = streamrnn.Stream(streamrnn.GRU(2, 4, output_size=1, seed=0), relative="last")
    with pytest.raises(InputError, match=r"y has shape \(3, 2\), expected \(3, 1\)"):
        stream.update([1, 2, 3], None, np.ones((3, 2)), y=np.ones((3, 2)))
    with pytest.raises(InputError, match="y holds inf at row 1"):
        stream.update([1, 2, 3], None, np.ones((3, 2)), y=[1.0, np.inf, 0.0])
    assert len(stream) == 0  # nothing changed


def test_saved_and_loaded_goes_on_as_if_never_stopped(tmp_path):
    keys, x, y = keyed([40, 40], seed=9)
    a = learner(horizon=2, minimum=0.0, shrink=True, ar=3)
    b = learner(horizon=2, minimum=0.0, shrink=True, ar=3)
    a.predict_learn(keys[:37], None, x[:37], y[:37])
    b.predict_learn(keys[:37], None, x[:37], y[:37])
    b.save(tmp_path / "l.pkl")
    b = streamrnn.OnlineLearner.load(tmp_path / "l.pkl")
    np.testing.assert_array_equal(b.predict_learn(keys[37:], None, x[37:], y[37:]),
                                  a.predict_learn(keys[37:], None, x[37:], y[37:]))  # fmt: skip
    np.testing.assert_array_equal(b.forecast([0, 1], 3), a.forecast([0, 1], 3))


@pytest.mark.parametrize("horizon", [0, 1, 2])
def test_shrunk_changes_against_the_reference(horizon):
    """A shrinking learner learns as one that does not (the gain only touches what it
    returns) and forecasts anchor + gain * change, the gain from the rows before."""
    keys, x, y = keyed([40, 30, 35], seed=11)
    ahead = relative_labels(keys, y, horizon)
    for k in np.unique(keys):  # an input that tells each row the change it forecasts
        mine = np.flatnonzero(keys == k)
        x[mine[: len(mine) - horizon], 0] = np.nan_to_num(ahead[mine[horizon:], 0])
    shrunk = learner(horizon=horizon, shrink=True)
    plain = learner(horizon=horizon)
    out = shrunk.predict_learn(keys[:50], None, x[:50], y[:50])
    out = np.concatenate([out, shrunk.predict_learn(keys[50:], None, x[50:], y[50:])])
    raw = plain.predict_learn(keys, None, x, y)
    anchors = relative_anchors(keys, y, horizon)
    change = raw - anchors
    gain = shrink_gains(
        keys,
        relative_labels(keys, y, horizon),
        made_changes(keys, change, horizon),
        streamrnn.relative.SHRINK_FORGET,
    )
    np.testing.assert_allclose(out, anchors + gain * change, rtol=1e-12, atol=1e-12)
    for name, value in plain.model.state_dict().items():
        np.testing.assert_array_equal(shrunk.model.state_dict()[name], value)
    assert 0 < gain.max() <= 1 and gain.min() >= 0


def test_shrinking_quantiles_move_with_their_median():
    keys, x, y = keyed([60], seed=12, mask=0.0)
    q = (0.1, 0.5, 0.9)
    shrunk = learner(loss=Pinball(q), outputs=3, shrink=True)
    plain = learner(loss=Pinball(q), outputs=3)
    out = shrunk.predict_learn(keys, None, x, y)
    raw = plain.predict_learn(keys, None, x, y)
    np.testing.assert_allclose(out[:, 2] - out[:, 0], raw[:, 2] - raw[:, 0], atol=1e-9)
    anchors = relative_anchors(keys, y, 1)[:, 0]
    assert np.abs(out[:, 1] - anchors).max() <= np.abs(raw[:, 1] - anchors).max() + 1e-12
    assert shrunk.forecast([0], 4).shape == (1, 4, 3)


@pytest.mark.parametrize("horizon", [0, 1, 3])
def test_calibrated_intervals_against_the_reference(horizon):
    keys, x, y = keyed([50, 45], seed=13)
    q = (0.9, 0.5, 0.1)
    cal = learner(loss=Pinball(q), outputs=3, horizon=horizon, calibrate=True)
    plain = learner(loss=Pinball(q), outputs=3, horizon=horizon)
    out = np.concatenate([cal.predict_learn(keys[a:b], None, x[a:b], y[a:b])
                          for a, b in ((0, 31), (31, 32), (32, 95))])  # fmt: skip
    anchors = relative_anchors(keys, y, horizon)
    raw = plain.predict_learn(keys, None, x, y)  # sorted; the spread keeps the order
    changes = (raw - anchors)[:, None, :]
    want = calibrated(keys, relative_labels(keys, y, horizon), changes, q, horizon,
                      streamrnn.relative.CALIBRATION_STEP,
                      streamrnn.relative.CALIBRATION_START)  # fmt: skip
    np.testing.assert_allclose(out, anchors + want[:, 0], rtol=1e-12, atol=1e-12)
    assert not np.allclose(out, raw)  # the spread moved


def test_calibration_reaches_the_nominal_coverage_on_a_wrong_network():
    """A network whose interval is far too narrow still covers about 80% of the labels
    of a 10%-90% interval once the spread has followed the misses."""
    rng = np.random.default_rng(0)
    n = 3000
    y = np.cumsum(rng.standard_normal(n))[:, None]
    model = streamrnn.GRU(1, 3, output_size=3, dtype="float64", seed=0)
    lrn = streamrnn.OnlineLearner(model, loss=Pinball((0.1, 0.5, 0.9)),
                                  optimizer=optim.SGD(lr=1e-12))  # fmt: skip
    out = lrn.predict_learn(np.zeros(n, int), None, y, y)
    inside = (y[1:, 0] >= out[:-1, 0]) & (y[1:, 0] <= out[:-1, 2])
    assert 0.75 < inside[n // 2 :].mean() < 0.85


def test_a_random_walk_gets_a_gain_that_noise_cannot_earn():
    """On changes the network cannot foresee, the t-test takes the gain to 0 far more
    often than the clipped least-squares gain alone."""
    rng = np.random.default_rng(21)
    labels = rng.standard_normal((400, 1))
    made = rng.standard_normal((400, 1))
    keys = np.zeros(400, int)
    gain = shrink_gains(keys, labels, made, streamrnn.relative.SHRINK_FORGET)
    assert (gain[50:] == 0).mean() > 0.8
    good = shrink_gains(keys, made + 0.3 * labels, made, streamrnn.relative.SHRINK_FORGET)
    assert good[50:].min() > 0.8


def test_a_learner_saved_with_the_older_gain_sums_loads_and_goes_on():
    keys, x, y = keyed([30, 20], seed=13)
    old = learner(shrink=True)
    old.predict_learn(keys[:30], None, x[:30], y[:30])
    old._gain = old._gain[..., :2].copy()  # the sums a learner kept before the t-test
    again = pickle.loads(pickle.dumps(old))
    assert again._gain.shape[-1] == 4
    assert np.isfinite(again.predict_learn(keys[30:], None, x[30:], y[30:])).all()


@pytest.mark.parametrize("horizon", [0, 1, 2])
def test_blended_changes_against_the_reference(horizon):
    """A learner blending in the AR learns as one that does not, and moves each
    shrunk change towards the AR's by the weight the reference gives its past errors."""
    keys, x, y = keyed([45, 38, 41], seed=17, mask=0.15)
    blended = learner(horizon=horizon, shrink=True, ar=3)
    plain = learner(horizon=horizon)
    out = np.concatenate([blended.predict_learn(keys[a:b], None, x[a:b], y[a:b])
                          for a, b in ((0, 47), (47, 90), (90, len(keys)))])  # fmt: skip
    raw = plain.predict_learn(keys, None, x, y)
    for name, value in plain.model.state_dict().items():
        np.testing.assert_array_equal(blended.model.state_dict()[name], value)
    anchors = relative_anchors(keys, y, horizon)
    labels = relative_labels(keys, y, horizon)
    forget = streamrnn.relative.SHRINK_FORGET
    made = shrink_gains(keys, labels, made_changes(keys, raw - anchors, horizon), forget)
    made = made * (raw - anchors)
    ar = ar_made(keys, y, 3, horizon) - anchors
    then = made_changes(keys, made, horizon)
    weight = shrink_gains(keys, labels - then, made_changes(keys, ar, horizon) - then, forget)
    expected = anchors + made + weight * np.where(np.isnan(ar), 0.0, ar - made)
    np.testing.assert_allclose(out, expected, rtol=1e-11, atol=1e-11)
    assert weight.max() > 0.2 and np.isnan(ar).any() and not np.isnan(out).any()


def test_a_rollout_starts_where_the_last_row_forecast():
    """With the last row unlabelled, nothing the blend learns changes after it: the
    first step of a rollout is that row's forecast, AR blend included."""
    keys, x, _ = keyed([90], seed=19, mask=0.0)
    y = 5.0 + 3.0 * np.sin(np.arange(90) / 2.0)[:, None]  # what an AR(3) learns at once
    y[-1] = np.nan
    blended = learner(shrink=True, ar=3)
    out = blended.predict_learn(keys, None, x, y)
    np.testing.assert_allclose(blended.forecast([0], 3)[0, 0], out[-1], rtol=1e-12)
    assert blended._blend_of(np.array([0]))[0].max() > 0  # the blend is at work
    plain = learner(shrink=True)
    plain.predict_learn(keys, None, x, y)
    assert abs(plain.forecast([0], 1)[0, 0, 0] - out[-1, 0]) > 1e-6


def test_a_learner_saved_before_the_ar_blend_loads_without_it():
    keys, x, y = keyed([30, 20], seed=23)
    old = learner(shrink=True)
    twin = learner(shrink=True)
    for lrn in (old, twin):
        lrn.predict_learn(keys[:30], None, x[:30], y[:30])
    state = old.__getstate__()
    for name in ("ar", "_arst", "_arseen", "_bring", "_blend"):
        del state[name]
    again = streamrnn.OnlineLearner.__new__(streamrnn.OnlineLearner)
    again.__setstate__(state)
    assert again.ar is None
    more = np.arange(40) % 5 + 2  # three keys it has not seen: the slot arrays grow
    np.testing.assert_array_equal(again.predict_learn(more, None, x[:40], y[:40]),
                                  twin.predict_learn(more, None, x[:40], y[:40]))  # fmt: skip


@pytest.mark.parametrize("horizon", [0, 1, 2])
def test_the_seasonal_naive_blend_against_the_reference(horizon):
    """After the AR, each change moves towards the seasonal naive forecast held in an
    input column, by a weight the reference gives the errors left."""
    keys, x, y = keyed([45, 38, 41], seed=29, mask=0.15)
    anchors = relative_anchors(keys, y, horizon)
    ahead = relative_labels(keys, y, horizon)
    for k in np.unique(keys):  # a "seasonal" forecast that knows the change, give or take
        mine = np.flatnonzero(keys == k)
        known = np.nan_to_num(ahead[mine[horizon:], 0])
        x[mine[: len(mine) - horizon], 1] = anchors[mine[: len(mine) - horizon], 0] + known
    x[:, 1] += 0.3 * np.random.default_rng(0).standard_normal(len(x))
    blended = learner(horizon=horizon, shrink=True, ar=3, seasonal=[1])
    plain = learner(horizon=horizon)
    out = np.concatenate([blended.predict_learn(keys[a:b], None, x[a:b], y[a:b])
                          for a, b in ((0, 40), (40, 99), (99, len(keys)))])  # fmt: skip
    raw = plain.predict_learn(keys, None, x, y)
    for name, value in plain.model.state_dict().items():
        np.testing.assert_array_equal(blended.model.state_dict()[name], value)
    labels = relative_labels(keys, y, horizon)
    forget = streamrnn.relative.SHRINK_FORGET

    def towards(made, other):
        then = made_changes(keys, made, horizon)
        weight = shrink_gains(keys, labels - then, made_changes(keys, other, horizon) - then,
                              forget)  # fmt: skip
        return made + weight * np.where(np.isnan(other), 0.0, other - made), weight

    made = shrink_gains(keys, labels, made_changes(keys, raw - anchors, horizon), forget)
    made = made * (raw - anchors)
    made, _ = towards(made, ar_made(keys, y, 3, horizon) - anchors)
    made, weight = towards(made, x[:, 1:2] - anchors)
    np.testing.assert_allclose(out, anchors + made, rtol=1e-11, atol=1e-11)
    assert weight.max() > 0.5


def test_the_seasonal_columns_are_checked():
    with pytest.raises(ConfigError, match=r"seasonal must be None or 1 input column\(s\)"):
        learner(seasonal=[2])
    with pytest.raises(ConfigError, match="seasonal must be None"):
        learner(seasonal=1)
    assert learner(relative=None, seasonal=[1]).seasonal is None
