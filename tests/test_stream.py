"""Keyed streaming: chunk invariance, per-key state, forecasts."""

import naive
import numpy as np
import pytest
from conftest import CELLS, TOL, make_model
from hypothesis import given, settings
from hypothesis import strategies as st

import streamrnn
from streamrnn import config


def long_rows(rng, n_keys, n_rows, I, dtype, str_keys=False):
    keys = rng.integers(0, n_keys, n_rows)
    if str_keys:
        keys = np.array([f"sensor-{k}" for k in keys], dtype=object)
    times = np.empty(n_rows, np.int64)
    counter = {}
    for r, k in enumerate(keys):  # test data only: per-key increasing times
        counter[k] = counter.get(k, 0) + int(rng.integers(1, 4))
        times[r] = counter[k]
    x = rng.standard_normal((n_rows, I)).astype(dtype)
    return keys, times, x


def run_in_chunks(model, keys, times, x, cuts):
    stream = streamrnn.Stream(model)
    outs = []
    edges = [0, *sorted(cuts), len(keys)]
    for a, b in zip(edges[:-1], edges[1:]):
        outs.append(stream.update(keys[a:b], times[a:b], x[a:b]))
    return np.concatenate(outs), stream


def per_key_reference(model, keys, x):
    """Each key's rows through model.forward on their own."""
    y = np.empty((len(keys), model.out_features), model.dtype)
    states = {}
    for k in dict.fromkeys(keys.tolist()):
        rows = np.flatnonzero(keys == k)
        y[rows], states[k] = model.forward(x[rows])
    return y, states


@settings(max_examples=25, deadline=None)
@given(
    cell=st.sampled_from(CELLS),
    dtype=st.sampled_from(["float32", "float64"]),
    seed=st.integers(0, 2**31 - 1),
    n_rows=st.integers(1, 60),
    n_keys=st.integers(1, 12),
    cuts=st.lists(st.integers(0, 60), max_size=8),
    parallel_min=st.sampled_from([1, 8, 10**9]),
)
def test_chunking_never_changes_outputs_or_states(
    cell, dtype, seed, n_rows, n_keys, cuts, parallel_min, monkeypatch_module
):
    rng = np.random.default_rng(seed)
    model = make_model(cell, 3, 5, 2, output_size=2, dtype=dtype, seed=seed % 7)
    keys, times, x = long_rows(rng, n_keys, n_rows, 3, dtype)
    whole, s_whole = run_in_chunks(model, keys, times, x, [])
    monkeypatch_module.setattr(config, "PARALLEL_MIN_SERIES", parallel_min)
    monkeypatch_module.setattr(config, "PARALLEL_MIN_ROWS", parallel_min)
    cut = [c for c in cuts if c <= n_rows]
    pieces, s_pieces = run_in_chunks(model, keys, times, x, cut)
    rows, s_rows = run_in_chunks(model, keys, times, x, list(range(1, n_rows)))
    assert np.array_equal(whole, pieces) and np.array_equal(whole, rows)
    ref, ref_states = per_key_reference(model, keys, x)
    assert np.array_equal(whole, ref)
    for k in s_whole.keys():
        for a, b, c, d in zip(
            *(np.atleast_3d(np.asarray(s.get_state(k))) for s in (s_whole, s_pieces, s_rows)),
            np.atleast_3d(np.asarray(ref_states[k])),
        ):
            assert np.array_equal(a, b) and np.array_equal(a, c) and np.array_equal(a, d)


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), batch=st.integers(1, 20), T=st.integers(1, 12))
def test_batch_composition_never_changes_a_series(seed, batch, T):
    """A series gives the same bits alone, in any batch, at any position."""
    rng = np.random.default_rng(seed)
    model = streamrnn.GRU(4, 19, output_size=3, dtype="float32", seed=1)
    x = rng.standard_normal((T, batch, 4)).astype(np.float32)
    y, h = model.forward(x)
    perm = rng.permutation(batch)
    y_perm, h_perm = model.forward(x[:, perm])
    assert np.array_equal(y_perm, y[:, perm]) and np.array_equal(h_perm, h[:, perm])
    j = int(rng.integers(batch))
    y_one, h_one = model.forward(x[:, j])
    assert np.array_equal(y_one, y[:, j]) and np.array_equal(h_one, h[:, j])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cell", CELLS)
def test_keyed_stream_matches_naive(cell, dtype, rng):
    model = make_model(cell, 3, 6, 2, output_size=2, dtype=dtype, seed=4)
    keys, times, x = long_rows(rng, 5, 80, 3, dtype, str_keys=True)
    stream = streamrnn.Stream(model)
    y = np.concatenate(
        [
            stream.update(keys[a : a + 13], times[a : a + 13], x[a : a + 13])
            for a in range(0, 80, 13)
        ]
    )
    tol = TOL[np.dtype(dtype).type]
    for k in set(keys):
        rows = np.flatnonzero(keys == k)
        y_ref, h_ref, c_ref = naive.forward(cell, model.state_dict(), x[rows][:, None, :])
        np.testing.assert_allclose(y[rows], y_ref[:, 0], rtol=tol, atol=tol)
        state = stream.get_state(k)
        h = state[0] if cell == "lstm" else state
        np.testing.assert_allclose(h, h_ref[:, 0], rtol=tol, atol=tol)


def test_series_step_run_and_forward_agree(rng):
    model = streamrnn.LSTM(3, 9, 2, output_size=3, seed=2)
    x = rng.standard_normal((30, 3)).astype(np.float32)
    y, (h, c) = model.forward(x)
    one = streamrnn.Series(model)
    stepped = np.stack([one.step(row) for row in x])
    chunked = streamrnn.Series(model)
    pieces = np.concatenate([chunked.run(x[:7]), chunked.run(x[7:8]), chunked.run(x[8:])])
    assert np.array_equal(stepped, y) and np.array_equal(pieces, y)
    for s in (one, chunked):
        assert np.array_equal(s.state[0], h) and np.array_equal(s.state[1], c)
        assert np.array_equal(s.output(), y[-1])


def test_state_is_readable_settable_resettable_removable():
    model = streamrnn.GRU(2, 4, seed=0, dtype="float64")
    stream = streamrnn.Stream(model)
    x = np.ones((3, 2))
    stream.update([7, 8, 7], [0, 0, 1], x)
    assert stream.keys() == [7, 8] and len(stream) == 2 and 7 in stream and 9 not in stream
    h7 = stream.get_state(7)
    assert h7.shape == (1, 4) and np.abs(h7).sum() > 0
    stream.set_state(9, h7)
    assert np.array_equal(stream.get_state(9), h7) and stream.keys() == [7, 8, 9]
    stream.reset(7)
    assert not stream.get_state(7).any()
    stream.remove(8)
    assert stream.keys() == [7, 9] and 8 not in stream
    with pytest.raises(streamrnn.UnknownKeyError, match="unknown key 8"):
        stream.get_state(8)
    # a removed key comes back fresh, with no memory of its old times
    y = stream.update([8], [0], x[:1])
    assert np.array_equal(y, model.forward(x[:1])[0])
    stream.reset()
    assert all(not stream.get_state(k).any() for k in stream.keys())


def test_state_memory_grows_with_keys_only():
    model = streamrnn.GRU(1, 4)
    stream = streamrnn.Stream(model)
    for chunk in range(5):
        keys = np.arange(1000) + 1000 * (chunk % 2)
        stream.update(keys, np.full(1000, chunk), np.zeros((1000, 1)))
    assert len(stream) == 2000
    assert stream._S.shape[0] < 4 * 2000


def test_many_to_one_outputs_last_row_per_key():
    model = streamrnn.RNN(1, 3, output_size=1, seed=3, dtype="float64")
    stream = streamrnn.Stream(model)
    x = np.arange(5.0)[:, None]
    keys, y_last = stream.update(["b", "a", "b", "a", "b"], None, x, outputs="last")
    assert keys == ["b", "a"]
    ref_b = model.forward(x[[0, 2, 4]])[0][-1]
    ref_a = model.forward(x[[1, 3]])[0][-1]
    assert np.array_equal(y_last, np.stack([ref_b, ref_a]))
    assert np.array_equal(stream.output(["b", "a"]), y_last)


@pytest.mark.parametrize("cell", CELLS)
def test_forecast_matches_naive_rollout_and_keeps_state(cell, rng):
    model = make_model(cell, 3, 6, 2, output_size=2, dtype="float64", seed=8)
    stream = streamrnn.Stream(model, feedback={0: 2, 1: 0})
    keys, times, x = long_rows(rng, 3, 30, 3, np.float64)
    stream.update(keys, times, x)
    before = {k: stream.get_state(k) for k in stream.keys()}
    ks = stream.keys()
    fc = stream.forecast(ks, horizon=5)
    fut = rng.standard_normal((len(ks), 4, 3))
    fc_future = stream.forecast(ks, horizon=5, future=fut)
    for q, k in enumerate(ks):
        st = stream.get_state(k)
        h, c = st if cell == "lstm" else (st, np.zeros_like(st))
        last = x[np.flatnonzero(keys == k)[-1]]
        ref = naive.forecast(cell, model.state_dict(), h, c, last, 5, [(0, 2), (1, 0)])
        np.testing.assert_allclose(fc[q], ref, rtol=1e-10, atol=1e-10)
        ref = naive.forecast(cell, model.state_dict(), h, c, last, 5, [(0, 2), (1, 0)], fut[q])
        np.testing.assert_allclose(fc_future[q], ref, rtol=1e-10, atol=1e-10)
        for a, b in zip(np.atleast_3d(np.asarray(before[k])), np.atleast_3d(np.asarray(st))):
            assert np.array_equal(a, b)
    # the first forecast step is the output of the last row
    assert np.array_equal(fc[:, 0], stream.output(ks))


def test_autoregressive_default_feedback_when_widths_agree():
    model = streamrnn.GRU(2, 5, output_size=2, seed=1, dtype="float64")
    series = streamrnn.Series(model)
    series.step([0.1, 0.2])
    fc = series.forecast(4)
    h = series.state
    ref = naive.forecast(
        "gru", model.state_dict(), h, np.zeros_like(h), [0.1, 0.2], 4, [(0, 0), (1, 1)]
    )
    np.testing.assert_allclose(fc, ref, rtol=1e-10, atol=1e-10)


def test_datetime_and_tz_aware_times_are_accepted():
    import pandas as pd

    model = streamrnn.GRU(1, 2)
    stream = streamrnn.Stream(model)
    t = pd.date_range("2024-01-01", periods=4, freq="h", tz="Europe/Paris")
    stream.update(["a"] * 4, t, np.zeros((4, 1)))
    with pytest.raises(streamrnn.TimeOrderError, match="key 'a'"):
        stream.update(["a"], t[-1:], np.zeros((1, 1)))
    naive_stream = streamrnn.Stream(model)
    naive_stream.update(
        [1, 1], np.array(["2024-01-01", "2024-01-02"], "datetime64[D]"), np.zeros((2, 1))
    )
    naive_stream.update([1], np.array(["2024-01-02T00:00:01"], "datetime64[s]"), np.zeros((1, 1)))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 9), min_size=1, max_size=40))
def test_group_rows_matches_a_plain_grouping(slot_rows):
    from streamrnn.core import kernels

    slot_rows = np.array(slot_rows, np.int64)
    scratch = np.full(10, -1, np.int64)
    order, seg, slots = kernels.group_rows(slot_rows, scratch)
    expected_slots = list(dict.fromkeys(slot_rows.tolist()))  # first appearance
    assert slots.tolist() == expected_slots
    for q, s in enumerate(expected_slots):
        assert order[seg[q] : seg[q + 1]].tolist() == np.flatnonzero(slot_rows == s).tolist()
    assert (scratch == -1).all()
