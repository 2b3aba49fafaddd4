"""Checks every model and stream passes: inputs unchanged, pickling, cloning, seeding, threads."""

import pickle

import numba
import numpy as np
import pytest
from conftest import CELLS, make_model

import streamrnn


@pytest.fixture(params=CELLS)
def model(request):
    return make_model(request.param, 3, 5, 2, output_size=2, dtype="float32", seed=11)


def test_inputs_are_not_modified(model, rng):
    x = rng.standard_normal((6, 2, 3)).astype(np.float32)
    state = model.zero_state(batch=2)
    x0 = x.copy()
    s0 = [s.copy() for s in (state if isinstance(state, tuple) else (state,))]
    model.forward(x, state)
    assert np.array_equal(x, x0)
    for a, b in zip(s0, state if isinstance(state, tuple) else (state,)):
        assert np.array_equal(a, b)
    keys = np.tile([4, 5], 6)
    stream = streamrnn.Stream(model)
    xs = x.reshape(-1, 3)
    before = xs.copy()
    stream.update(keys, None, xs)
    assert np.array_equal(xs, before) and np.array_equal(keys, np.tile([4, 5], 6))


def test_pickle_before_and_after_use(model, rng):
    x = rng.standard_normal((7, 3)).astype(np.float32)
    y, _ = model.forward(x)
    again = pickle.loads(pickle.dumps(model))
    assert np.array_equal(again.forward(x)[0], y)
    assert again._P.ctypes.data % 64 == 0

    stream = streamrnn.Stream(model)
    stream.update(["a", "b"], [0, 0], x[:2])
    copy = pickle.loads(pickle.dumps(stream))
    assert np.array_equal(copy.update(["a"], [1], x[2:3]), stream.update(["a"], [1], x[2:3]))
    series = streamrnn.Series(model)
    series.run(x[:3])
    copy = pickle.loads(pickle.dumps(series))
    assert np.array_equal(copy.step(x[3]), series.step(x[3]))


def test_clone_is_fresh_and_copy_keeps_weights(model):
    trained = model.copy()
    trained.load_state_dict({k: v * 2 for k, v in model.state_dict().items()})
    fresh = trained.clone()
    same = trained.copy()
    for k, v in model.state_dict().items():
        assert np.array_equal(fresh.state_dict()[k], v)
        assert np.array_equal(same.state_dict()[k], 2 * v)
    assert repr(fresh) == repr(model)


def test_seed_decides_weights():
    a = streamrnn.LSTM(2, 3, seed=5).state_dict()
    b = streamrnn.LSTM(2, 3, seed=5).state_dict()
    c = streamrnn.LSTM(2, 3, seed=6).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)
    as64 = streamrnn.LSTM(2, 3, seed=5, dtype="float64").state_dict()
    assert all(np.array_equal(a[k], as64[k].astype(np.float32)) for k in a)


def test_thread_count_never_changes_results(model, rng, monkeypatch):
    x = rng.standard_normal((9, 37, 3)).astype(np.float32)
    monkeypatch.setattr(streamrnn.config, "PARALLEL_MIN_ROWS", 2)  # split even this
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        y1, _ = model.forward(x)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        y2, _ = model.forward(x)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(y1, y2)


def test_new_weights_reach_existing_series_and_streams(rng):
    model = streamrnn.GRU(2, 4, seed=0)
    series = streamrnn.Series(model)
    stream = streamrnn.Stream(model)
    other = streamrnn.GRU(2, 4, seed=9)
    model.load_state_dict(other.state_dict())
    x = rng.standard_normal((1, 2)).astype(np.float32)
    expected = other.forward(x)[0][0]
    assert np.array_equal(series.step(x[0]), expected)
    assert np.array_equal(stream.update([1], None, x)[0], expected)
