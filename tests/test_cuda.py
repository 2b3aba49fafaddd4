"""The CUDA backend on Numba's simulator: the CPU's outputs, states and forecasts,
whatever the chunks and batches; the typed errors of a machine that cannot run it.

The simulator runs each GPU thread in Python (so sizes stay tiny) and is switched
on here, for this process, before anything imports ``numba.cuda``. On a machine
with a GPU, ``STREAMRNN_TEST_DEVICE=cuda`` runs the same tests on it instead
(``benchmarks/gpu_run.sh``).
"""

import os
import pickle
import sys

import numba
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import feeds
import streamrnn
from streamrnn import ConfigError, DeviceError, InputError
from streamrnn.core import backend

ON_GPU = os.environ.get("STREAMRNN_TEST_DEVICE") == "cuda"
if ON_GPU:  # asked for the device: a machine without one is a failure, not a pass
    from numba import cuda

    if not cuda.is_available():
        raise RuntimeError("STREAMRNN_TEST_DEVICE=cuda, but no GPU is usable here")
else:  # the simulator must be on before numba.cuda is first imported, or nothing here runs
    if "numba.cuda" in sys.modules and not numba.config.ENABLE_CUDASIM:
        raise RuntimeError(
            "numba.cuda was imported before tests/test_cuda.py could switch the simulator on; "
            "run with NUMBA_ENABLE_CUDASIM=1"
        )
    numba.config.ENABLE_CUDASIM = 1

CELLS = {
    "rnn_tanh": lambda **kw: streamrnn.RNN(**kw),
    "rnn_relu": lambda **kw: streamrnn.RNN(nonlinearity="relu", **kw),
    "gru": lambda **kw: streamrnn.GRU(**kw),
    "lstm": lambda **kw: streamrnn.LSTM(**kw),
}
TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=1e-5, atol=1e-6)}


def pair(cell, dtype="float64", layers=1, head=True, inputs=3, hidden=4, seed=0):
    """The same model twice: on the CPU and on the (simulated) GPU."""
    kw = dict(input_size=inputs, hidden_size=hidden, num_layers=layers,
              output_size=2 if head else None, dtype=dtype, seed=seed)  # fmt: skip
    return CELLS[cell](**kw), CELLS[cell](**kw).to("cuda")


def keyed(n=40, keys=4, inputs=3, seed=0):
    rng = np.random.default_rng(seed)
    k = rng.integers(0, keys, n)
    return k, rng.standard_normal((n, inputs))


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("layers, head", [(1, True), (2, False), (3, True)])
def test_forward_matches_the_cpu(cell, dtype, layers, head):
    cpu, gpu = pair(cell, dtype, layers, head)
    x = np.random.default_rng(1).standard_normal((6, 3, 3)).astype(dtype)
    (y1, s1), (y2, s2) = cpu.forward(x), gpu.forward(x)
    np.testing.assert_allclose(y2, y1, **TOL[dtype])
    both = zip(s1, s2) if cell == "lstm" else [(s1, s2)]  # (h, c), or h
    for a, b in both:
        np.testing.assert_allclose(b, a, **TOL[dtype])
    y3, _ = gpu.forward(x[:, 0])  # one unbatched sequence
    np.testing.assert_allclose(y3, y1[:, 0], **TOL[dtype])


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_keyed_streams_match_the_cpu(cell, dtype):
    cpu, gpu = pair(cell, dtype, layers=2)
    keys, x = keyed(60)
    a, b = streamrnn.Stream(cpu), streamrnn.Stream(gpu)
    for part in np.array_split(np.arange(60), 3):
        np.testing.assert_allclose(b.update(keys[part], None, x[part]),
                                   a.update(keys[part], None, x[part]), **TOL[dtype])  # fmt: skip
    for k in range(4):
        np.testing.assert_allclose(b.get_state(k), a.get_state(k), **TOL[dtype])


@settings(max_examples=10, deadline=None)
@given(cuts=st.lists(st.integers(0, 40), max_size=5), seed=st.integers(0, 3))
def test_cutting_a_stream_anywhere_changes_no_bit_on_the_gpu(cuts, seed):
    _, gpu = pair("gru", "float32", layers=2, seed=seed)
    keys, x = keyed(40, seed=seed)
    whole = streamrnn.Stream(gpu)
    want = whole.update(keys, None, x)
    cut = streamrnn.Stream(gpu)
    edges = [0, *sorted({c % 41 for c in cuts}), 40]
    got = np.concatenate([cut.update(keys[i:j], None, x[i:j]) for i, j in zip(edges, edges[1:])])
    np.testing.assert_array_equal(got, want)
    for k in set(keys.tolist()):
        np.testing.assert_array_equal(cut.get_state(k), whole.get_state(k))


def test_a_series_gives_the_same_bits_alone_as_among_other_keys():
    _, gpu = pair("lstm", "float32")
    keys, x = keyed(50, keys=5)
    crowd = streamrnn.Stream(gpu).update(keys, None, x)
    alone = streamrnn.Stream(gpu).update(keys[keys == 2], None, x[keys == 2])
    np.testing.assert_array_equal(alone, crowd[keys == 2])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_one_step_of_one_series_matches_the_cpu(dtype):
    cpu, gpu = pair("gru", dtype, layers=2)
    a, b = streamrnn.Series(cpu), streamrnn.Series(gpu)
    for x in np.random.default_rng(2).standard_normal((5, 3)).astype(dtype):
        np.testing.assert_allclose(b.step(x), a.step(x), **TOL[dtype])
    np.testing.assert_allclose(b.state, a.state, **TOL[dtype])
    before = b.state.copy()
    with pytest.raises(InputError, match="non-finite value nan in column 1"):
        b.step(np.array([0.0, np.nan, 1.0], dtype))
    np.testing.assert_array_equal(b.state, before)


def test_a_series_follows_its_model_between_devices():
    cpu, _ = pair("rnn_tanh", "float64")
    twin, _ = pair("rnn_tanh", "float64")
    a, b = streamrnn.Series(cpu), streamrnn.Series(twin)
    xs = np.random.default_rng(3).standard_normal((4, 3))
    b.step(xs[0])
    twin.to("cuda")
    b.step(xs[1])
    twin.to("cpu")
    b.step(xs[2])
    for x in xs[:3]:
        a.step(x)
    np.testing.assert_allclose(b.state, a.state, **TOL["float64"])


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn_relu"])
def test_forecasts_match_the_cpu(cell):
    """Rollouts with the output fed back into the first input, and known future inputs."""
    cpu, gpu = pair(cell, "float64", layers=2)
    keys, x = keyed(30, keys=3)
    future = np.random.default_rng(4).standard_normal((3, 4, 3))
    out = []
    for model in (cpu, gpu):
        stream = streamrnn.Stream(model, feedback={0: 0})
        stream.update(keys, None, x)
        out.append((stream.forecast([0, 1, 2], 5), stream.forecast([2, 0], 5, future=future[:2])))
    for a, b in zip(*out):
        np.testing.assert_allclose(b, a, **TOL["float64"])


def test_a_relative_stream_through_a_feed_matches_the_cpu():
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"key": np.repeat(["a", "b"], 20), "time": np.tile(np.arange(20), 2),
                       "level": rng.standard_normal(40).cumsum()})  # fmt: skip
    out = []
    for device in ("cpu", "cuda"):
        model = streamrnn.GRU(hidden_size=4, seed=1, dtype="float64", device=device)
        feed = feeds.Feed(feeds.Schema(key="key", targets="level"), dtype="float64", lags=2)
        stream = streamrnn.Stream(model, feed=feed, relative="last")
        out.append((stream.update(df), stream.forecast(["a", "b"], 3)))
    for a, b in zip(*out):
        np.testing.assert_allclose(b, a, **TOL["float64"])


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gradients_match_the_cpu(cell, dtype):
    cpu, gpu = pair(cell, dtype, layers=2, head=cell != "gru", hidden=3)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 2, 3)).astype(dtype)
    y = rng.standard_normal((4, 2, cpu.out_features)).astype(dtype)
    y[1, 0, 0] = np.nan  # no label there
    v1, g1, s1 = cpu.gradients(x, y, loss="huber")
    v2, g2, s2 = gpu.gradients(x, y, loss="huber")
    assert v2 == pytest.approx(v1, rel=TOL[dtype]["rtol"])
    for name in g1:
        np.testing.assert_allclose(g2[name], g1[name], err_msg=name, **TOL[dtype])
    for a, b in zip(s1, s2) if cell == "lstm" else [(s1, s2)]:
        np.testing.assert_allclose(b, a, **TOL[dtype])


def learners(cell="gru", dtype="float64", layers=1, **kw):
    """The same learner twice, its model on the CPU and on the (simulated) GPU."""
    cpu, gpu = pair(cell, dtype, layers, head=True, inputs=2, hidden=3)
    kw = dict(tbptt=(2, 3), horizon=1, **kw)
    return streamrnn.OnlineLearner(cpu, **kw), streamrnn.OnlineLearner(gpu, **kw)


def labeled(n, keys=2, seed=0, dtype="float64"):
    rng = np.random.default_rng(seed)
    k = rng.integers(0, keys, n)
    x = rng.standard_normal((n, 2)).astype(dtype)
    y = (np.sin(np.arange(n) / 3.0)[:, None] + 0.1 * x[:, :1]).astype(dtype)
    y[n // 3, 0] = np.nan  # a row without a label
    return k, x, y, y[:, [0, 0]]  # two outputs learn the same target


@pytest.mark.parametrize(
    "cell, dtype, kw",
    [
        ("gru", "float64", dict(batch=1)),
        ("lstm", "float64", dict(batch=3, loss="huber")),
        (
            "rnn_tanh",
            "float32",
            dict(
                batch=2,
                optimizer=streamrnn.optim.AdamW(
                    lr=0.01, weight_decay=0.1, clip_norm=0.5, schedule=streamrnn.optim.WarmUp(20)
                ),
            ),
        ),
        (
            "rnn_relu",
            "float64",
            dict(batch=2, optimizer=streamrnn.optim.SGD(lr=0.01, momentum=0.9, nesterov=True)),
        ),
    ],
)
def test_learning_matches_the_cpu_over_hundreds_of_updates(cell, dtype, kw):
    a, b = learners(cell, dtype, **kw)
    keys, x, _, y = labeled(360, dtype=dtype)
    for part in np.array_split(np.arange(360), 3):
        pa = a.predict_learn(keys[part], None, x[part], y[part])
        pb = b.predict_learn(keys[part], None, x[part], y[part])
        np.testing.assert_allclose(pb, pa, **TOL[dtype])
    assert a.counts == b.counts and b.counts["updates"] >= 50
    np.testing.assert_allclose(b.model._P, a.model._P, **TOL[dtype])
    for k in (0, 1):
        np.testing.assert_allclose(b.get_state(k), a.get_state(k), **TOL[dtype])


@settings(max_examples=6, deadline=None)
@given(cuts=st.lists(st.integers(0, 60), max_size=4), batch=st.sampled_from([1, 3]))
def test_cutting_a_learned_stream_anywhere_changes_no_bit_on_the_gpu(cuts, batch):
    keys, x, _, y = labeled(60, keys=3, dtype="float32")
    _, whole = learners("gru", "float32", batch=batch)
    want = whole.predict_learn(keys, None, x, y)
    _, cut = learners("gru", "float32", batch=batch)
    edges = [0, *sorted({c % 61 for c in cuts}), 60]
    got = np.concatenate([cut.predict_learn(keys[i:j], None, x[i:j], y[i:j])
                          for i, j in zip(edges, edges[1:])])  # fmt: skip
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(cut.model._P, whole.model._P)
    for k in range(3):
        np.testing.assert_array_equal(cut.get_state(k), whole.get_state(k))


def test_a_learner_moves_between_devices_mid_stream():
    """Half on the CPU (its batch half summed), the rest on the GPU, then a pickle
    loaded on the CPU: the CPU's run throughout, within the tolerance."""
    a, b = learners("lstm", batch=4)
    keys, x, _, y = labeled(90, keys=3)
    a.predict_learn(keys, None, x, y)
    b.model.to("cpu")
    b.predict_learn(keys[:31], None, x[:31], y[:31])
    b.model.to("cuda")
    b.predict_learn(keys[31:60], None, x[31:60], y[31:60])
    b = pickle.loads(pickle.dumps(b))
    assert b.model.device == "cpu"
    b.predict_learn(keys[60:], None, x[60:], y[60:])
    assert a.counts == b.counts
    np.testing.assert_allclose(b.model._P, a.model._P, **TOL["float64"])


@pytest.mark.parametrize(
    "cell, dtype, kw",
    [
        ("gru", "float64", dict(batch=1)),
        ("lstm", "float32", dict(batch=2, loss="huber")),
        (
            "rnn_tanh",
            "float64",
            dict(
                batch=1,
                optimizer=streamrnn.optim.AdamW(
                    lr=0.01, weight_decay=0.1, clip_norm=0.5, schedule=streamrnn.optim.WarmUp(20)
                ),
            ),
        ),
        (
            "rnn_relu",
            "float64",
            dict(batch=2, optimizer=streamrnn.optim.SGD(lr=0.01, momentum=0.9, nesterov=True)),
        ),
    ],
)
def test_learning_per_key_matches_the_cpu(cell, dtype, kw):
    a, b = learners(cell, dtype, per_key=True, **kw)
    keys, x, _, y = labeled(240, keys=3, dtype=dtype)
    for part in np.array_split(np.arange(240), 3):
        pa = a.predict_learn(keys[part], None, x[part], y[part])
        pb = b.predict_learn(keys[part], None, x[part], y[part])
        np.testing.assert_allclose(pb, pa, **TOL[dtype])
    assert a.counts == b.counts and b.counts["updates"] >= 30
    for k in range(3):
        np.testing.assert_allclose(b.key_model(k)._P, a.key_model(k)._P, **TOL[dtype])
        np.testing.assert_allclose(b.get_state(k), a.get_state(k), **TOL[dtype])
    np.testing.assert_allclose(b._PTk, a._PTk, **TOL[dtype])  # the back copies follow


@settings(max_examples=5, deadline=None)
@given(cuts=st.lists(st.integers(0, 60), max_size=4))
def test_cutting_a_stream_learned_per_key_changes_no_bit_on_the_gpu(cuts):
    keys, x, _, y = labeled(60, keys=3, dtype="float32")
    _, whole = learners("lstm", "float32", per_key=True, batch=2)
    want = whole.predict_learn(keys, None, x, y)
    _, cut = learners("lstm", "float32", per_key=True, batch=2)
    edges = [0, *sorted({c % 61 for c in cuts}), 60]
    got = np.concatenate([cut.predict_learn(keys[i:j], None, x[i:j], y[i:j])
                          for i, j in zip(edges, edges[1:])])  # fmt: skip
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(cut._Pk, whole._Pk)


@pytest.mark.parametrize("per_key", [False, True])
def test_an_overflowing_loss_skips_the_update_on_the_gpu_as_on_the_cpu(per_key):
    adam = streamrnn.optim.Adam(lr=0.05, schedule=streamrnn.optim.ExponentialDecay(0.7))
    a, b = learners("gru", batch=1, per_key=per_key, relative=None, loss="mse", optimizer=adam)
    keys, x, _, y = labeled(40, keys=2)
    y[[9, 25], 0] = 1e200
    for learner in (a, b):
        with pytest.warns(RuntimeWarning, match="update"):
            learner.predict_learn(keys, None, x, y)
    assert a.counts == b.counts and b.counts["skipped"] >= 2
    if per_key:
        for k in (0, 1):
            np.testing.assert_allclose(b.key_model(k)._P, a.key_model(k)._P, **TOL["float64"])
    else:
        np.testing.assert_allclose(b.model._P, a.model._P, **TOL["float64"])


@pytest.mark.parametrize("per_key", [False, True])
def test_fewer_threads_than_series_change_no_bit(per_key, monkeypatch):
    """With scratch for only one thread, a thread learns every series in turn."""
    from streamrnn.core import gpu_learn

    keys, x, _, y = labeled(60, keys=3, dtype="float32")
    _, many = learners("lstm", "float32", batch=2, per_key=per_key)
    want = many.predict_learn(keys, None, x, y)
    monkeypatch.setattr(gpu_learn, "SCRATCH_MAX", 1)
    _, one = learners("lstm", "float32", batch=2, per_key=per_key)
    np.testing.assert_array_equal(one.predict_learn(keys, None, x, y), want)
    np.testing.assert_array_equal(one._Pk if per_key else one.model._P,
                                  many._Pk if per_key else many.model._P)  # fmt: skip


def test_the_device_gradient_norm_is_the_cpus_even_when_its_squares_overflow():
    """The device function called from Python: as Python on the simulator, compiled for
    the CPU where the device functions are compiled (a GPU run)."""
    from streamrnn.core import gpu_learn
    from streamrnn.optim import grad_norm

    segs = np.array([[0, 2], [3, 2]])
    for G in ([3.0, 4.0, 9.0, 0.0, 12.0], [1e200, -1e200, 7.0, 3.0, 1e199],
              [1.0, np.inf, 0.0, 2.0, 3.0], [1.0, np.inf, 0.0, np.nan, 3.0]):  # fmt: skip
        G = np.array(G)
        want, got = grad_norm(G, segs), gpu_learn.norm_of(G, segs)
        assert got == pytest.approx(want, rel=1e-15, nan_ok=True), G


def test_what_learns_only_on_the_cpu_says_so():
    enc, dec = streamrnn.GRU(3, 4, seed=0), streamrnn.GRU(1, 4, output_size=1, seed=1)
    with pytest.raises(DeviceError, match=r"Seq2SeqLearner learns on the CPU for now; the "
                       r"decoder is on 'cuda'"):  # fmt: skip
        streamrnn.Seq2SeqLearner(enc, dec.to("cuda"), horizon=2)


def test_a_model_saved_on_the_gpu_loads_on_the_cpu():
    cpu, gpu = pair("lstm", "float64")
    loaded = pickle.loads(pickle.dumps(gpu))
    assert (gpu.device, loaded.device) == ("cuda", "cpu")
    x = np.random.default_rng(6).standard_normal((4, 3))
    np.testing.assert_array_equal(loaded.forward(x)[0], cpu.forward(x)[0])


def test_an_unknown_device_is_refused():
    with pytest.raises(ConfigError, match=r"device must be one of \['cpu', 'cuda'\], got 'gpu'"):
        streamrnn.GRU(3, 4, device="gpu")


@pytest.fixture
def no_cuda_yet(monkeypatch):
    """The backends as on a fresh process: CUDA not yet asked for."""
    monkeypatch.delitem(backend._BACKENDS, "cuda", raising=False)


def test_without_numbas_cuda_target_the_error_says_to_install_the_extra(no_cuda_yet, monkeypatch):
    monkeypatch.delattr(numba, "cuda", raising=False)
    monkeypatch.setitem(sys.modules, "numba.cuda", None)
    with pytest.raises(DeviceError, match=r"needs numba's CUDA target .*pip install "
                       r"\"streamrnn\[cuda\]\""):  # fmt: skip
        streamrnn.GRU(3, 4, device="cuda")


def test_without_a_gpu_the_error_says_so(no_cuda_yet, monkeypatch):
    from numba import cuda

    monkeypatch.setattr(cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="found no usable NVIDIA GPU: no CUDA driver"):
        streamrnn.LSTM(3, 4).to("cuda")


def test_with_a_numpy_too_new_for_the_cuda_target_the_error_says_so(no_cuda_yet, monkeypatch):
    monkeypatch.setattr(backend.np, "__version__", "2.5.0")
    with pytest.raises(DeviceError, match=r"needs NumPy below 2.5 .* with NumPy 2.5.0\)"):
        streamrnn.GRU(3, 4, device="cuda")


def test_an_inference_backfill_on_the_gpu_matches_the_cpu(tmp_path):
    from streamrnn.backfill import Job, run

    rng = np.random.default_rng(7)
    df = pd.DataFrame({"key": np.tile(["a", "b"], 30), "time": np.repeat(np.arange(30), 2),
                       "y": np.exp(rng.standard_normal(60).cumsum() / 5)})  # fmt: skip
    df.to_parquet(tmp_path / "in.parquet")
    common = dict(key="key", time="time", targets=["y"], report=None, progress="none",
                  checkpoint_seconds=None)  # fmt: skip
    run(Job(str(tmp_path / "in.parquet"), str(tmp_path / "learned"), learn=True, hidden=4,
            minimum=0.0, quantiles=[0.1, 0.5, 0.9], lags=[2], **common))  # fmt: skip
    model = str(tmp_path / "learned" / "_checkpoint")
    tables = []
    for device in ("cpu", "cuda"):
        out = tmp_path / device
        run(Job(str(tmp_path / "in.parquet"), str(out), model=model, device=device, **common))
        tables.append(pd.read_parquet(out).sort_values(["key", "time"]))
    cpu, gpu = tables
    assert list(gpu.columns) == list(cpu.columns) and "y_q0.9" in gpu.columns
    for name in ("y_q0.1", "y_q0.5", "y_q0.9"):
        np.testing.assert_allclose(gpu[name], cpu[name], **TOL["float32"])


@pytest.mark.parametrize("per_key", [False, True])
def test_a_learning_backfill_on_the_gpu_matches_the_cpu(tmp_path, per_key):
    from streamrnn.backfill import Job, run

    rng = np.random.default_rng(8)
    df = pd.DataFrame({"key": np.tile(["a", "b", "c"], 40), "time": np.repeat(np.arange(40), 3),
                       "y": np.exp(rng.standard_normal(120).cumsum() / 5)})  # fmt: skip
    df.to_parquet(tmp_path / "in.parquet")
    tables = []
    for device in ("cpu", "cuda"):
        out = tmp_path / device
        run(Job(str(tmp_path / "in.parquet"), str(out), key="key", time="time", targets=["y"],
                learn=True, hidden=4, minimum=0.0, tbptt=(4, 8), batch=3, device=device,
                per_key=per_key,
                report=None, progress="none", checkpoint_seconds=None))  # fmt: skip
        tables.append(pd.read_parquet(out).sort_values(["key", "time"]))
    cpu, gpu = tables
    assert list(gpu.columns) == list(cpu.columns) and len(gpu) == 120
    assert gpu["y_forecast"].notna().all()
    np.testing.assert_allclose(gpu["y_forecast"], cpu["y_forecast"], **TOL["float32"])


def test_states_kept_on_the_gpu_are_the_streams_whatever_it_does_between_chunks():
    """Reads, writes, new keys, removals, a pickle and a move to the CPU and back, each
    between chunks advanced on the GPU, against the same on the CPU alone."""
    cpu, gpu = pair("gru", "float64", layers=2)
    keys, x = keyed(90, keys=6, seed=3)
    a, b = streamrnn.Stream(cpu), streamrnn.Stream(gpu)
    parts = np.array_split(np.arange(90), 9)

    def both(fn):
        return fn(a), fn(b)

    def step(i):
        got, want = both(lambda s: s.update(keys[parts[i]], None, x[parts[i]]))
        np.testing.assert_allclose(want, got, **TOL["float64"])

    step(0)
    step(1)
    for k in set(keys[np.concatenate(parts[:2])].tolist()):
        np.testing.assert_allclose(b.get_state(k), a.get_state(k), **TOL["float64"])
    state = np.full((2, 4), 0.25)
    both(lambda s: s.set_state(1, state))
    step(2)
    both(lambda s: s.reset(2))
    step(3)
    both(lambda s: s.remove(0))
    step(4)
    both(lambda s: s.set_state(99, state))  # a new key, among rows of the old ones
    step(5)
    b = pickle.loads(pickle.dumps(b))  # the states the GPU advanced go with it
    assert b.model.device == "cpu"
    b.model.to("cuda")
    step(6)
    gpu_model = b.model
    gpu_model.to("cpu")
    step(7)
    gpu_model.to("cuda")
    both(lambda s: s.reset())
    step(8)
    for k in a.keys():
        np.testing.assert_allclose(b.get_state(k), a.get_state(k), **TOL["float64"])
    seen = [k for k in a.keys() if k != 99]  # 99 has had no input to hold
    np.testing.assert_allclose(b.forecast(seen, 3), a.forecast(seen, 3), **TOL["float64"])
