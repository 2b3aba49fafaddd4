"""Independent weights per key: each key learns as if it were alone."""

import numpy as np
import pytest

import streamrnn


def stream(n=300, n_keys=3, seed=0):
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, n_keys, n)
    x = rng.standard_normal((n, 2))
    y = rng.standard_normal((n, 1))
    y[::7] = np.nan
    return keys, x, y


def learner(cell="gru", per_key=True, dtype="float64", **kw):
    cls = {"gru": streamrnn.GRU, "lstm": streamrnn.LSTM}[cell]
    model = cls(2, 4, output_size=1, dtype=dtype, seed=1)
    opts = dict(tbptt=(4, 9), horizon=1, batch=2, optimizer=streamrnn.optim.Adam(lr=0.02),
                relative=None)  # fmt: skip
    opts.update(kw)
    return streamrnn.OnlineLearner(model, per_key=per_key, **opts)


def run(lrn, keys, x, y, cuts=()):
    edges = [0, *cuts, len(keys)]
    return np.concatenate(
        [lrn.predict_learn(keys[a:b], None, x[a:b], y[a:b]) for a, b in zip(edges, edges[1:])]
    )


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_each_key_learns_as_if_alone(cell):
    keys, x, y = stream()
    both = learner(cell)
    out = run(both, keys, x, y)
    total = 0
    for k in range(3):
        alone = learner(cell, per_key=False)
        sel = keys == k
        mine_out = alone.predict_learn(keys[sel], None, x[sel], y[sel])
        np.testing.assert_array_equal(mine_out, out[sel])
        mine = both.key_model(k).state_dict()
        for name, value in alone.model.state_dict().items():
            np.testing.assert_array_equal(mine[name], value)
        total += alone.counts["updates"]
        np.testing.assert_array_equal(both.get_state(k), alone.get_state(k))
    assert both.counts["updates"] == total > 0
    # the shared model is untouched
    fresh = streamrnn.GRU(2, 4, output_size=1, dtype="float64", seed=1)
    if cell == "gru":
        for name, value in fresh.state_dict().items():
            np.testing.assert_array_equal(both.model.state_dict()[name], value)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cuts", [(1,), (5, 77, 78, 200), tuple(range(0, 300, 13))])
def test_any_cutting_learns_the_same(dtype, cuts):
    keys, x, y = stream()
    whole = learner(dtype=dtype)
    cut = learner(dtype=dtype)
    np.testing.assert_array_equal(run(whole, keys, x, y), run(cut, keys, x, y, cuts))
    for k in range(3):
        a, b = whole.key_model(k).state_dict(), cut.key_model(k).state_dict()
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])
    assert whole.counts == cut.counts


def test_forecast_and_predict_use_each_keys_weights():
    keys, x, y = stream()
    lrn = learner()
    run(lrn, keys, x, y)
    states = [lrn.get_state(k) for k in range(3)]
    fc = lrn.forecast([0, 2], 3)
    for k in range(3):  # forecasting changes nothing
        np.testing.assert_array_equal(lrn.get_state(k), states[k])
    for i, k in enumerate([0, 2]):
        alone = streamrnn.Stream(lrn.key_model(k))
        alone.set_state(k, lrn.get_state(k))
        held = np.repeat(x[keys == k][-1][None, None], 2, axis=1)  # inputs held at the last
        np.testing.assert_array_equal(fc[i], alone.forecast([k], 3, future=held)[0])
    before = lrn.key_model(1).state_dict()
    out = lrn.predict([1, 1], None, x[:2])
    assert out.shape == (2, 1)
    for name, value in before.items():
        np.testing.assert_array_equal(lrn.key_model(1).state_dict()[name], value)


def test_save_load_continues(tmp_path):
    keys, x, y = stream()
    a = learner()
    run(a, keys[:150], x[:150], y[:150])
    a.save(tmp_path / "l.bin")
    b = streamrnn.OnlineLearner.load(tmp_path / "l.bin")
    np.testing.assert_array_equal(
        run(a, keys[150:], x[150:], y[150:]), run(b, keys[150:], x[150:], y[150:])
    )
    np.testing.assert_array_equal(a._Pk[: a._n], b._Pk[: b._n])


def test_per_key_must_be_a_bool():
    with pytest.raises(streamrnn.ConfigError, match="per_key"):
        learner(per_key="yes")
