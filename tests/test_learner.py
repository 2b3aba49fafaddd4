"""Online learning with :class:`streamrnn.OnlineLearner`: against PyTorch's truncated
backpropagation, against the row-by-row reference ``naive.online_learning``, and
against itself cut into chunks, saved, reloaded and run on other thread counts."""

import pickle
import warnings

import naive
import numba
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from conftest import make_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import feeds
import streamrnn
from streamrnn import config, optim

TORCH_CELLS = ["gru", "lstm", "rnn_tanh"]

#: Hyperparameters given to both sides: (streamrnn optimizer, torch optimizer).
OPTIMIZERS = {
    "sgd": (
        lambda: optim.SGD(lr=0.05, momentum=0.9),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
    ),
    "adam": (
        lambda: optim.Adam(lr=0.01, betas=(0.8, 0.99), eps=1e-6),
        lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-6),
    ),
    "adamw": (
        lambda: optim.AdamW(lr=0.01, weight_decay=0.1),
        lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1),
    ),
}


# -- helpers ---------------------------------------------------------------------------------------


def make_learner(cell="gru", dtype="float64", *, layers=1, inputs=2, hidden=4, outputs=1,
                 seed=0, **options):  # fmt: skip
    """A learner on a fresh model; Adam(lr=0.01) unless an optimizer is given; outputs are
    levels (``relative=None``: what PyTorch's recipe learns) unless ``relative`` is given."""
    model = make_model(cell, inputs, hidden, layers, output_size=outputs, dtype=dtype, seed=seed)
    options.setdefault("optimizer", optim.Adam(lr=0.01))
    options.setdefault("relative", None)
    options.setdefault("loss", "mse")  # the recipe the PyTorch references run
    return streamrnn.OnlineLearner(model, **options)


def keyed_rows(lengths, inputs=2, targets=1, *, seed=0, mask=0.0, dtype="float64", names=None):
    """Rows of ``len(lengths)`` keys interleaved at random (each key's rows in order):
    ``(keys, x, y)`` with a fraction ``mask`` of the targets NaN."""
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(len(lengths)), lengths)
    rng.shuffle(codes)
    keys = codes if names is None else np.asarray(names, dtype=object)[codes]
    N = len(codes)
    x = rng.standard_normal((N, inputs)).astype(dtype)
    y = (0.5 * rng.standard_normal((N, targets))).astype(dtype)
    y[rng.random(y.shape) < mask] = np.nan
    return keys, x, y


def state_parts(state):
    """A state in ``zero_state`` layout as a tuple of arrays (copied)."""
    parts = state if isinstance(state, tuple) else (state,)
    return tuple(np.array(p, copy=True) for p in parts)


def snapshot(learner):
    """Everything a caller can see of a learner: weights, counts, keys and states."""
    keys = learner.keys()
    return {
        "weights": learner.model.state_dict(),
        "counts": learner.counts,
        "keys": keys,
        "states": [state_parts(learner.get_state(k)) for k in keys],
    }


def assert_same_learning(a, b):
    """Two snapshots agree bit for bit."""
    assert a["counts"] == b["counts"]
    assert a["keys"] == b["keys"]
    assert a["weights"].keys() == b["weights"].keys()
    for name, value in a["weights"].items():
        assert np.array_equal(value, b["weights"][name]), name
        assert value.dtype == b["weights"][name].dtype, name
    for key, s, t in zip(a["keys"], a["states"], b["states"]):
        for p, q in zip(s, t):
            assert np.array_equal(p, q), f"state of key {key!r}"


def assert_weights_close(got, expected, dtype, what="weights"):
    """Learned weights against a reference: tight in float64, loose in float32 (where
    a few updates amplify rounding)."""
    assert got.keys() == expected.keys()
    rtol, atol = (1e-9, 1e-12) if np.dtype(dtype) == np.float64 else (1e-4, 1e-5)
    for name, value in got.items():
        np.testing.assert_allclose(
            value, expected[name], rtol=rtol, atol=atol, err_msg=f"{what}: {name}"
        )


def assert_outputs_close(got, expected, dtype, what="outputs"):
    rtol, atol = (1e-9, 1e-12) if np.dtype(dtype) == np.float64 else (1e-4, 1e-5)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, err_msg=what)


# -- PyTorch ---------------------------------------------------------------------------------------


def torch_twin(model, make_optimizer):
    """The model's PyTorch modules and an optimizer over all their parameters."""
    rnn, head = model.to_torch()
    return rnn, head, make_optimizer(list(rnn.parameters()) + list(head.parameters()))


def torch_weights(rnn, head):
    weights = {name: p.detach().numpy().copy() for name, p in rnn.named_parameters()}
    weights["head.weight"] = head.weight.detach().numpy().copy()
    weights["head.bias"] = head.bias.detach().numpy().copy()
    return weights


def torch_state(state, b=0):
    """Series ``b`` of a torch state, in ``zero_state`` layout, as a tuple of arrays."""
    parts = state if isinstance(state, tuple) else (state,)
    return tuple(p.detach().numpy()[:, b].copy() for p in parts)


def masked_mse(yhat, y):
    """Mean squared error over the labeled entries."""
    labeled = ~torch.isnan(y)
    return F.mse_loss(yhat[labeled], y[labeled])


def torch_recipe(model, make_optimizer, x, y, k, *, clip=None, schedule=None, skip=()):
    """The usual truncated-BPTT loop: for each block of ``k`` steps, forward from the
    carried state, one optimizer step on the block's masked MSE, carry the state on
    detached. ``x`` and ``y`` are ``(T, B, features)``, step ``t`` scored against
    ``y[t]``. ``clip`` clips the gradient norm, ``schedule(opt)`` makes a learning-rate
    scheduler stepped after each update, and blocks numbered in ``skip`` make no
    update. Returns ``(outputs of every block before its step, weights, state)``."""
    rnn, head, opt = torch_twin(model, make_optimizer)
    scheduler = None if schedule is None else schedule(opt)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    state, outputs = None, []
    for block, start in enumerate(range(0, len(x) - k + 1, k)):
        out, state = rnn(x[start : start + k], state)
        yhat = head(out)
        outputs.append(yhat.detach().numpy().copy())
        if block not in skip:
            loss = masked_mse(yhat, y[start : start + k])
            opt.zero_grad()
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(opt.param_groups[0]["params"], clip)
            opt.step()
            if scheduler is not None:
                scheduler.step()
        state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
    return np.concatenate(outputs), torch_weights(rnn, head), state


def torch_online(model, make_optimizer, x, y, k, horizon):
    """The learner's rule for ``tbptt=(k, k)`` with series in step, written with torch.

    Each step ``c`` (1-based) is predicted with the weights of the moment; its
    targets label step ``m = c - horizon``; when ``m`` is a multiple of ``k`` the
    steps ``m - k + 1 .. m`` run again from the state the series had after step
    ``m - k``, scored against the targets ``horizon`` steps later, and the
    optimizer steps once. For ``horizon=0`` this is :func:`torch_recipe`; for
    ``horizon > 0`` the ``horizon`` steps after a block are predicted, and
    their states computed, before the block's update.
    """
    rnn, head, opt = torch_twin(model, make_optimizer)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    states, outputs, state = [None], [], None
    for t in range(len(x)):
        with torch.no_grad():
            out, state = rnn(x[t : t + 1], state)
            outputs.append(head(out)[0].numpy().copy())
        states.append(state)
        m = t + 1 - horizon
        if m >= k and m % k == 0:
            out, _ = rnn(x[m - k : m], states[m - k])
            loss = masked_mse(head(out), y[m - k + horizon : m + horizon])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return np.stack(outputs), torch_weights(rnn, head), state


# -- 1. one series against PyTorch -----------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("horizon", [0, 1])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell", TORCH_CELLS)
def test_one_series_learns_as_torch(cell, layers, horizon, opt, dtype):
    """k1 == k2 == k, batch 1: the weights after six updates and every prequential
    output agree with PyTorch (the standard detach loop for horizon 0)."""
    k, updates = 5, 6
    N = k * updates + horizon
    ours, theirs = OPTIMIZERS[opt]
    learner = make_learner(cell, dtype, layers=layers, hidden=5, seed=layers,
                           tbptt=(k, k), horizon=horizon, batch=1, optimizer=ours())  # fmt: skip
    model = learner.model
    start = model.copy()
    _, x, y = keyed_rows([N], seed=3, dtype=dtype)
    out = learner.predict_learn(np.zeros(N, np.int64), None, x, y)
    assert out.shape == (N, 1) and out.dtype == dtype
    assert learner.counts == {"updates": updates, "skipped": 0, "labels": k * updates,
                              "windows": updates}  # fmt: skip
    if horizon == 0:
        t_out, t_weights, t_state = torch_recipe(start, theirs, x[:, None], y[:, None], k)
    else:
        t_out, t_weights, t_state = torch_online(start, theirs, x[:, None], y[:, None], k, horizon)
    assert_weights_close(model.state_dict(), t_weights, dtype)
    assert_outputs_close(out, t_out.reshape(N, 1), dtype)
    for ours_part, torch_part in zip(state_parts(learner.get_state(0)), torch_state(t_state)):
        assert_outputs_close(ours_part, torch_part, dtype, "final state")
    # the learned weights differ from the start: the comparison is not vacuous
    assert not np.allclose(model.state_dict()["weight_hh_l0"], start.state_dict()["weight_hh_l0"])


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_clipping_schedule_and_skipped_updates_follow_torch(cell):
    """Clipping to a norm, a decaying rate, and an update skipped for an overflowing
    loss: the schedule counts the updates made, as a torch scheduler stepped after each."""
    k, blocks, huge_block = 4, 8, 3
    N = k * blocks
    opt = optim.Adam(lr=0.05, clip_norm=0.3, schedule=optim.ExponentialDecay(0.7))
    learner = make_learner(cell, layers=2, seed=5, tbptt=(k, k), horizon=0, optimizer=opt)
    start = learner.model.copy()
    _, x, y = keyed_rows([N], seed=11)
    bad = y.copy()
    bad[huge_block * k + 1] = 1e200
    keys = np.zeros(N, np.int64)
    with pytest.warns(RuntimeWarning, match="1 update"):
        out = learner.predict_learn(keys, None, x, bad)
    assert learner.counts == {"updates": blocks - 1, "skipped": 1, "labels": k * (blocks - 1),
                              "windows": blocks}  # fmt: skip
    t_out, t_weights, _ = torch_recipe(
        start, lambda p: torch.optim.Adam(p, lr=0.05), x[:, None], y[:, None], k, clip=0.3,
        schedule=lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.7), skip={huge_block},
    )  # fmt: skip
    assert_weights_close(learner.model.state_dict(), t_weights, np.float64)
    assert_outputs_close(out, t_out.reshape(N, 1), np.float64)
    # cut into chunks, with the skip inside one: the same bits
    again = make_learner(cell, layers=2, seed=5, tbptt=(k, k), horizon=0, optimizer=opt)
    with pytest.warns(RuntimeWarning, match="1 update"):
        assert np.array_equal(learn_in_chunks(again, keys, x, bad, [3, 13, 14, 29]), out)
    assert_same_learning(snapshot(again), snapshot(learner))


def test_torch_rule_is_the_detach_recipe_for_horizon_zero():
    """The step-by-step torch version of the rule and the block loop agree."""
    model = make_model("lstm", 2, 4, 2, output_size=1, dtype="float64", seed=4)
    _, x, y = keyed_rows([20], seed=5)
    make = OPTIMIZERS["adam"][1]
    a = torch_recipe(model, make, x[:, None], y[:, None], 4)
    b = torch_online(model, make, x[:, None], y[:, None], 4, 0)
    np.testing.assert_allclose(a[0].reshape(20, 1), b[0].reshape(20, 1), rtol=1e-12)
    for name in a[1]:
        np.testing.assert_allclose(a[1][name], b[1][name], rtol=1e-12, atol=1e-15)


def test_horizon_one_first_window_closes_at_row_k():
    """With horizon 1 the label of step m comes with row m (0-based): the first window
    (steps 1 .. k) closes at row k, whose own output still comes from the old weights."""
    k = 4
    learner = make_learner("gru", tbptt=(k, k), horizon=1, optimizer=optim.SGD(lr=0.5))
    start = learner.model.copy()
    _, x, y = keyed_rows([k + 2], seed=1)
    keys = np.zeros(k + 2, np.int64)
    assert learner.learn(keys[:k], None, x[:k], y[:k]) is None
    assert learner.counts["windows"] == 0
    assert all(
        np.array_equal(v, start.state_dict()[n]) for n, v in learner.model.state_dict().items()
    )
    out = learner.predict_learn(keys[k:], None, x[k:], y[k:])
    assert learner.counts == {"updates": 1, "skipped": 0, "labels": k, "windows": 1}
    fixed = streamrnn.Stream(start).update(keys, None, x)
    assert out[0] == fixed[k]  # row k: predicted before its label updates the weights
    assert out[1] != fixed[k + 1]  # row k + 1: the new weights
    # the update was the gradient of steps 1 .. k scored against rows 1 .. k
    _, grads, _ = start.gradients(x[:k], y[1 : k + 1])
    for name, value in learner.model.state_dict().items():
        np.testing.assert_allclose(value, start.state_dict()[name] - 0.5 * grads[name],
                                   rtol=1e-12, atol=1e-14, err_msg=name)  # fmt: skip


# -- 2. many series sharing the weights ------------------------------------------------------------


@pytest.mark.parametrize("horizon", [0, 1])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_series_in_step_learn_as_a_torch_batch(cell, horizon):
    """B series one row each per step (in a different order at every step), batch=B:
    the same as torch on a batch of B sequences, mean over every labeled entry."""
    B, k, T = 3, 4, 4 * 5 + horizon
    learner = make_learner(cell, layers=2, seed=2, tbptt=(k, k), horizon=horizon, batch=B,
                           optimizer=OPTIMIZERS["adam"][0]())  # fmt: skip
    start = learner.model.copy()
    rng = np.random.default_rng(6)
    x = rng.standard_normal((T, B, 2))
    y = 0.5 * rng.standard_normal((T, B, 1))
    y[rng.random(y.shape) < 0.2] = np.nan
    order = np.concatenate([t * B + rng.permutation(B) for t in range(T)])
    keys = np.tile(np.array(["s0", "s1", "s2"], dtype=object), T)[order]
    out = learner.predict_learn(keys, None, x.reshape(T * B, 2)[order], y.reshape(T * B, 1)[order])
    back = np.empty_like(out)
    back[order] = out
    if horizon == 0:
        t_out, t_weights, t_state = torch_recipe(start, OPTIMIZERS["adam"][1], x, y, k)
    else:
        t_out, t_weights, t_state = torch_online(start, OPTIMIZERS["adam"][1], x, y, k, horizon)
    assert learner.counts["updates"] == 5 and learner.counts["windows"] == 5 * B
    assert learner.counts["labels"] == int(np.sum(~np.isnan(y[horizon:])))
    assert_weights_close(learner.model.state_dict(), t_weights, np.float64)
    assert_outputs_close(back, t_out.reshape(T * B, 1), np.float64)
    for b in range(B):
        for ours, theirs in zip(state_parts(learner.get_state(f"s{b}")), torch_state(t_state, b)):
            assert_outputs_close(ours, theirs, np.float64, f"state of s{b}")


# -- 3. against the row-by-row reference -----------------------------------------------------------


def as_rows(keys, x, y):
    return [(k, x[r], None if y is None else y[r]) for r, k in enumerate(keys)]


def check_against_reference(learner, start, chunks, k1, k2, horizon, batch, lr, loss="mse",
                            min_updates=3):  # fmt: skip
    """Learn ``chunks`` of ``(keys, x, y)`` (y None: predict only) and compare with
    ``naive.online_learning``; returns the learner's outputs. A chunk may also be
    ``("reset", key)`` or ``("set_state", key, state)``."""
    rows, outs = [], []
    for item in chunks:
        if isinstance(item[0], str):
            if item[0] == "reset":
                learner.reset(item[1])
                rows.append((item[1], None, None))
            else:
                learner.set_state(item[1], item[2])
                rows.append((item[1], None, item[2]))
            continue
        keys, x, y = item
        if y is None:
            outs.append(learner.predict(keys, None, x))
        else:
            outs.append(learner.predict_learn(keys, None, x, y))
        rows += as_rows(keys, x, y)
    out = np.concatenate(outs)
    ref_out, ref_weights, ref_states, ref_counts = naive.online_learning(
        start, rows, k1, k2, horizon, batch, lr, loss
    )
    assert learner.counts == ref_counts
    assert ref_counts["updates"] >= min_updates  # enough to matter
    assert_weights_close(learner.model.state_dict(), ref_weights, np.float64, "vs reference")
    if isinstance(learner.loss, streamrnn.losses.Pinball):  # returned rearranged: never crossed
        order = np.argsort(learner.loss.quantiles, kind="stable")
        K = len(order)
        ref_out = np.asarray(ref_out).reshape(len(ref_out), -1, K).copy()
        ref_out[..., order] = np.sort(ref_out, axis=-1)
        ref_out = ref_out.reshape(len(ref_out), -1)
    assert_outputs_close(out, ref_out, np.float64, "outputs vs reference")
    assert sorted(learner.keys()) == sorted(ref_states)
    for key, state in ref_states.items():
        for ours, theirs in zip(state_parts(learner.get_state(key)), state_parts(state)):
            assert_outputs_close(ours, theirs, np.float64, f"state of {key!r}")
    return out


@pytest.mark.parametrize(
    "k1, k2, horizon, batch", [(3, 7, 2, 3), (4, 4, 1, 2), (2, 5, 0, 1), (5, 9, 3, 4)]
)
@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn_tanh"])
def test_keyed_stream_matches_reference(cell, k1, k2, horizon, batch):
    """Keys of different lengths interleaved, masked labels, k1 <= k2, batch and horizon."""
    lr = 0.2
    learner = make_learner(cell, layers=1 + (k1 % 2), outputs=2, seed=k1,
                           tbptt=(k1, k2), horizon=horizon, batch=batch,
                           optimizer=optim.SGD(lr=lr))  # fmt: skip
    start = learner.model.copy()
    keys, x, y = keyed_rows([33, 9, 41, 4], targets=2, seed=k2, mask=0.25)
    cut = len(keys) // 3
    chunks = [(keys[:cut], x[:cut], y[:cut]), (keys[cut:], x[cut:], y[cut:])]
    check_against_reference(learner, start, chunks, k1, k2, horizon, batch, lr)


@pytest.mark.parametrize(
    "loss, outputs, targets",
    [
        ("mae", 2, 2),
        (streamrnn.losses.Huber(delta=0.3), 2, 2),
        (streamrnn.losses.Pinball(quantiles=(0.2, 0.8)), 4, 2),
        ("cross_entropy", 3, 1),
    ],
    ids=["mae", "huber", "pinball", "cross_entropy"],
)
def test_other_losses_match_reference(loss, outputs, targets):
    k1, k2, horizon, batch, lr = 3, 5, 1, 2, 0.3
    learner = make_learner("gru", outputs=outputs, seed=9, tbptt=(k1, k2), horizon=horizon,
                           batch=batch, loss=loss, optimizer=optim.SGD(lr=lr))  # fmt: skip
    start = learner.model.copy()
    keys, x, y = keyed_rows([20, 14, 25], targets=targets, seed=4, mask=0.2)
    if naive.loss_spec(loss)[0] == "cross_entropy":
        rng = np.random.default_rng(0)
        y = rng.integers(0, outputs, size=y.shape).astype(float)
        y[rng.random(y.shape) < 0.2] = np.nan
    check_against_reference(learner, start, [(keys, x, y)], k1, k2, horizon, batch, lr, loss)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cell=st.sampled_from(["gru", "lstm", "rnn_tanh"]),
    k1=st.integers(1, 4),
    extra=st.integers(0, 4),
    horizon=st.integers(0, 3),
    batch=st.integers(1, 4),
    lengths=st.lists(st.integers(1, 25), min_size=1, max_size=5),
    cuts=st.lists(st.tuples(st.integers(0, 125), st.booleans()), max_size=6),
)
def test_random_streams_match_reference(cell, k1, extra, horizon, batch, lengths, cuts):
    """Any schedule, cut into chunks of which some are only predicted."""
    lr = 0.2
    learner = make_learner(cell, layers=2, tbptt=(k1, k1 + extra), horizon=horizon,
                           batch=batch, optimizer=optim.SGD(lr=lr))  # fmt: skip
    start = learner.model.copy()
    keys, x, y = keyed_rows(lengths, seed=len(cuts), mask=0.2)
    chunks, edge = [], 0
    for cut, predict_only in sorted((min(c, len(keys)), p) for c, p in cuts) + [(len(keys), False)]:
        part = slice(edge, cut)
        chunks.append((keys[part], x[part], None if predict_only else y[part]))
        edge = cut
    check_against_reference(learner, start, chunks, k1, k1 + extra, horizon, batch, lr,
                            min_updates=0)  # fmt: skip


# -- 4. chunking and threads change nothing --------------------------------------------------------


def learn_in_chunks(learner, keys, x, y, cuts):
    """Learn the rows cut at ``cuts`` (sorted; repeats give empty chunks)."""
    edges = [0, *cuts, len(keys)]
    outs = [
        learner.predict_learn(keys[a:b], None, x[a:b], y[a:b]) for a, b in zip(edges, edges[1:])
    ]
    return np.concatenate(outs)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cell=st.sampled_from(["gru", "lstm", "rnn_tanh"]),
    k1=st.integers(1, 4),
    extra=st.integers(0, 4),
    horizon=st.integers(0, 2),
    batch=st.integers(1, 5),
    lengths=st.lists(st.integers(1, 15), min_size=1, max_size=8),
    seed=st.integers(0, 3),
    cuts=st.lists(st.integers(0, 120), max_size=8),
)
def test_chunking_changes_nothing(dtype, cell, k1, extra, horizon, batch, lengths, seed, cuts):
    """The same stream cut anywhere: bit-identical outputs, weights, states and counts."""
    options = dict(tbptt=(k1, k1 + extra), horizon=horizon, batch=batch, seed=seed)
    names = [f"key{i}" for i in range(len(lengths))]
    keys, x, y = keyed_rows(lengths, seed=seed, mask=0.2, dtype=dtype, names=names)
    whole = make_learner(cell, dtype, **options)
    parts = make_learner(cell, dtype, **options)
    out = whole.predict_learn(keys, None, x, y)
    cuts = sorted(min(c, len(keys)) for c in cuts)
    assert np.array_equal(learn_in_chunks(parts, keys, x, y, cuts), out)
    assert_same_learning(snapshot(parts), snapshot(whole))


@pytest.fixture
def threads(monkeypatch):
    """Sets numba's thread count for a test and puts it back afterwards; chunks of any
    size are split over the threads."""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs numba with at least 2 threads")
    monkeypatch.setattr(config, "PARALLEL_MIN_ROWS", 2)
    before = numba.get_num_threads()
    yield numba.set_num_threads
    numba.set_num_threads(before)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_thread_count_changes_nothing(dtype, threads):
    """Ten keys (more than one block of series) and batches of several windows, so that
    the parallel forward and window kernels run."""
    options = dict(tbptt=(3, 5), horizon=1, batch=4, seed=1)
    keys, x, y = keyed_rows([12] * 10, seed=2, mask=0.1, dtype=dtype)
    results = []
    for n, cuts in [(1, []), (2, []), (2, [7, 7, 31, 32, 90]), (1, [50])]:
        threads(n)
        learner = make_learner("lstm", dtype, layers=2, **options)
        results.append((learn_in_chunks(learner, keys, x, y, cuts), snapshot(learner)))
    for out, snap in results[1:]:
        assert np.array_equal(out, results[0][0])
        assert_same_learning(snap, results[0][1])
    assert results[0][1]["counts"]["updates"] >= 5


def test_keys_arriving_over_time_and_leaving():
    """Forty keys, most of them new in later chunks (the per-key storage grows), then
    one removed: the others learn as if it had simply gone quiet."""
    options = dict(tbptt=(2, 4), horizon=1, batch=3, seed=3)
    keys, x, y = keyed_rows(list(range(1, 41)), seed=4, mask=0.1)
    order = np.argsort(keys, kind="stable")  # keys appear one after another
    keys, x, y = keys[order], x[order], y[order]
    whole = make_learner("gru", **options)
    out = whole.predict_learn(keys, None, x, y)
    grown = make_learner("gru", **options)
    assert np.array_equal(learn_in_chunks(grown, keys, x, y, [1, 40, 300, 301, 700]), out)
    assert_same_learning(snapshot(grown), snapshot(whole))
    # key 5 leaves; the rest go on as in a learner where it stays but gets no rows (up to
    # rounding: the later keys move to other slots, and gradients are summed by slot)
    more_keys, more_x, more_y = keyed_rows([6] * 40, seed=5, mask=0.1)
    stay = more_keys != 5
    more_keys, more_x, more_y = more_keys[stay], more_x[stay], more_y[stay]
    grown.remove(5)
    assert 5 not in grown and len(grown) == 39
    out = grown.predict_learn(more_keys, None, more_x, more_y)
    assert_outputs_close(out, whole.predict_learn(more_keys, None, more_x, more_y), np.float64)
    a, b = snapshot(grown), snapshot(whole)
    del b["states"][5], b["keys"][5]
    assert a["counts"] == b["counts"] and a["keys"] == b["keys"]
    assert_weights_close(a["weights"], b["weights"], np.float64)
    for key, s, t in zip(a["keys"], a["states"], b["states"]):
        assert_outputs_close(s[0], t[0], np.float64, f"state of {key}")


# -- 5. non-finite values --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype, huge", [("float32", 1e30), ("float32", 3e38), ("float64", 1e200)])
def test_overflowing_loss_skips_the_update(dtype, huge):
    k = 4
    learner = make_learner("gru", dtype, inputs=1, tbptt=(k, k), horizon=0,
                           optimizer=optim.SGD(lr=0.05))  # fmt: skip
    _, x, y = keyed_rows([4 * k], inputs=1, seed=2, dtype=dtype)
    keys = np.zeros(4 * k, np.int64)
    learner.learn(keys[:k], None, x[:k], y[:k])
    before = snapshot(learner)
    bad = y[k : 2 * k].copy()
    bad[1] = huge
    with pytest.warns(RuntimeWarning, match="skipped"):
        out = learner.predict_learn(keys[k : 2 * k], None, x[k : 2 * k], bad)
    assert np.isfinite(out).all()
    after = snapshot(learner)
    for name, value in before["weights"].items():
        assert np.array_equal(after["weights"][name], value), name
    assert after["counts"] == {"updates": 1, "skipped": 1, "labels": k, "windows": 2}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning from here on
        learner.learn(keys[2 * k :], None, x[2 * k :], y[2 * k :])
    assert learner.counts == {"updates": 3, "skipped": 1, "labels": 3 * k, "windows": 4}
    changed = learner.model.state_dict()["weight_hh_l0"]
    assert np.isfinite(changed).all() and not np.array_equal(
        changed, before["weights"]["weight_hh_l0"]
    )


def test_nan_labels_are_masked():
    k = 4
    learner = make_learner("gru", tbptt=(k, k), horizon=0, optimizer=optim.SGD(lr=0.1))
    start = learner.model.copy()
    _, x, y = keyed_rows([3 * k], seed=3)
    y[[0, 2, 5]] = np.nan
    y[2 * k :] = np.nan  # a window with no label at all: no update, nothing skipped
    keys = np.zeros(3 * k, np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        learner.learn(keys, None, x, y)
    assert learner.counts == {"updates": 2, "skipped": 0, "labels": 2 * k - 3, "windows": 3}
    ref = naive.online_learning(start, as_rows(keys, x, y), k, k, 0, 1, 0.1)
    assert ref[3] == learner.counts
    assert_weights_close(learner.model.state_dict(), ref[1], np.float64)


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_label_is_refused(value):
    learner = make_learner("gru", tbptt=(2, 2), horizon=0)
    _, x, y = keyed_rows([5], seed=1)
    y[3] = value
    with pytest.raises(streamrnn.InputError, match=r"y holds inf at row 3") as info:
        learner.learn(np.zeros(5, np.int64), None, x, y)
    assert "NaN where missing" in str(info.value)
    assert learner.keys() == [] and learner.counts["windows"] == 0


# -- 6. bad arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, match",
    [
        ({"tbptt": (4, 2)}, "k2 >= k1"),
        ({"tbptt": (4.0, 4)}, "tbptt k1"),
        ({"tbptt": (4, "8")}, "tbptt k2"),
        ({"tbptt": (0, 4)}, "tbptt k1"),
        ({"tbptt": (True, 4)}, "tbptt k1"),
        ({"tbptt": 4}, "tbptt must be a pair"),
        ({"tbptt": (1, 2, 3)}, "tbptt must be a pair"),
        ({"tbptt": None}, "tbptt must be a pair"),
        ({"horizon": -1}, "horizon"),
        ({"horizon": 1.5}, "horizon"),
        ({"batch": 0}, "batch"),
        ({"batch": "2"}, "batch"),
        ({"optimizer": "adam"}, "optimizer"),
        ({"optimizer": optim.Constant()}, "optimizer"),
        ({"loss": "rmse"}, "loss"),
        ({"feed": "per_key"}, "feed"),
    ],
)
def test_bad_configuration_is_refused(options, match):
    model = make_model("gru", 2, 4, output_size=1)
    with pytest.raises(streamrnn.ConfigError, match=match):
        streamrnn.OnlineLearner(model, **options)


def test_torch_optimizer_is_refused():
    model = make_model("gru", 2, 4, output_size=1)
    rnn, head = model.to_torch()
    with pytest.raises(streamrnn.ConfigError, match="optimizer must be a streamrnn.optim"):
        streamrnn.OnlineLearner(model, optimizer=torch.optim.SGD(rnn.parameters(), lr=0.1))


@pytest.fixture
def warmed():
    """A learner with two keys, some history and a window pending in its batch, its
    twin, and the rows that continue the stream."""

    def build():
        learner = make_learner("lstm", tbptt=(3, 5), horizon=1, batch=2, outputs=2)
        keys, x, y = keyed_rows([10, 9], targets=2, seed=8, mask=0.1)
        learner.learn(keys, np.arange(len(keys)), x, y)
        return learner

    keys, x, y = keyed_rows([6, 7, 3], targets=2, seed=9, mask=0.1)
    return build(), build(), (keys, np.arange(100, 100 + len(keys)), x, y)


def bad_calls(learner, keys, times, x, y):
    """Calls that must fail, each with the error and a pattern of its message."""
    N = len(keys)
    late = times.copy()
    late[0] = 0
    inf_x = x.copy()
    inf_x[2, 1] = np.inf
    one_target = y[:, :1]
    return [
        (lambda: learner.learn(keys, times, x, one_target), streamrnn.InputError, "y has shape"),
        (lambda: learner.learn(keys, times, x, y[:-1]), streamrnn.InputError, "y has shape"),
        (lambda: learner.learn(keys, times, x, y.ravel()), streamrnn.InputError, "y has shape"),
        (lambda: learner.learn(keys, times, x), streamrnn.InputError, "targets y"),
        (
            lambda: learner.learn(keys, times, x, np.full((N, 2), "a")),
            streamrnn.InputError,
            "y must hold real numbers",
        ),  # fmt: skip
        (lambda: learner.learn(keys, times, x[:, :1], y), streamrnn.InputError, "input_size"),
        (lambda: learner.learn(keys, times, inf_x, y), streamrnn.InputError, "x has a non-finite"),
        (lambda: learner.learn(keys, late, x, y), streamrnn.TimeOrderError, "time"),
        (lambda: learner.learn(keys[:-1], times, x, y), streamrnn.InputError, "keys"),
        (lambda: learner.learn(keys.astype(str), times, x, y), streamrnn.KeyTypeError, "key"),
        (lambda: learner.predict_learn(list(keys)), streamrnn.InputError, "one chunk"),
        (lambda: learner.learn(feeds.Chunk(keys, None, x)), streamrnn.InputError, "no targets"),
    ]


def test_failed_calls_change_nothing(warmed):
    learner, twin, (keys, times, x, y) = warmed
    before = snapshot(learner)
    for call, error, match in bad_calls(learner, keys, times, x, y):
        with pytest.raises(error, match=match):
            call()
        assert_same_learning(snapshot(learner), before)
    # and the stream goes on exactly as if they had never been made
    out = learner.predict_learn(keys, times, x, y)
    assert np.array_equal(out, twin.predict_learn(keys, times, x, y))
    assert_same_learning(snapshot(learner), snapshot(twin))
    assert learner.counts["updates"] > before["counts"]["updates"]


def test_bad_class_index_is_refused():
    learner = make_learner("gru", outputs=3, loss="cross_entropy", tbptt=(2, 2), horizon=0)
    _, x, _ = keyed_rows([4])
    keys = np.zeros(4, np.int64)
    learner.learn(keys, None, x, np.array([[0.0], [1.0], [np.nan], [2.0]]))
    before = snapshot(learner)
    for bad in (3.0, -1.0, 1.5):
        y = np.array([[0.0], [bad], [1.0], [2.0]])
        with pytest.raises(streamrnn.InputError, match=rf"y holds {bad!r}.*0 \.\. 2"):
            learner.learn(keys, None, x, y)
        assert_same_learning(snapshot(learner), before)


def test_bad_fit_arguments_are_refused():
    learner = make_learner("gru")
    keys, x, y = keyed_rows([4])
    chunk = feeds.Chunk(keys, None, x, y)
    with pytest.raises(streamrnn.ConfigError, match="epochs"):
        learner.fit([chunk], epochs=0)
    with pytest.raises(streamrnn.InputError, match="fit takes"):
        learner.fit(3)
    with pytest.raises(streamrnn.ConfigError, match="read again"):
        learner.fit(iter([chunk]), epochs=2)
    assert learner.counts["windows"] == 0 and learner.keys() == []


# -- 7. saving and loading -------------------------------------------------------------------------


def continuation(seed):
    keys, x, y = keyed_rows([9, 6, 11], targets=2, seed=seed, mask=0.1, names=["p", "q", "r"])
    return keys, x, y


def test_saved_learner_continues_exactly(tmp_path):
    learner = make_learner("gru", layers=2, outputs=2, tbptt=(3, 6), horizon=2, batch=3,
                           optimizer=optim.AdamW(lr=0.02, weight_decay=0.05))  # fmt: skip
    keys, x, y = continuation(1)
    learner.learn(keys, None, x, y)
    path = tmp_path / "learner.bin"
    learner.save(path)
    loaded = streamrnn.OnlineLearner.load(path)
    copied = pickle.loads(pickle.dumps(learner))
    assert loaded.model is not learner.model
    assert_same_learning(snapshot(loaded), snapshot(learner))
    for seed in (2, 3):
        keys, x, y = continuation(seed)
        out = learner.predict_learn(keys, None, x, y)
        assert np.array_equal(loaded.predict_learn(keys, None, x, y), out)
        assert np.array_equal(copied.predict_learn(keys, None, x, y), out)
    assert_same_learning(snapshot(loaded), snapshot(learner))
    assert_same_learning(snapshot(copied), snapshot(learner))
    assert learner.counts["updates"] >= 5
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_loading_what_is_no_learner_is_refused(tmp_path):
    learner = make_learner("gru")
    keys, x, y = keyed_rows([5])
    learner.learn(keys, None, x, y)
    whole = tmp_path / "whole"
    learner.save(whole)
    data = whole.read_bytes()
    payloads = {
        "empty": b"",
        "text": b"key,time,value\na,1,2.0\n",
        "bytes": bytes(range(256)),
        "truncated": data[: len(data) // 2],
        "dict": pickle.dumps({"weights": 1}),
        "stream": pickle.dumps(streamrnn.Stream(learner.model)),
    }
    for name, payload in payloads.items():
        path = tmp_path / name
        path.write_bytes(payload)
        with pytest.raises(streamrnn.StateError, match=f"{name} holds"):
            streamrnn.OnlineLearner.load(path)


# -- 8. predict between learning -------------------------------------------------------------------


def test_predict_restarts_histories_and_keeps_weights():
    k = 4
    learner = make_learner("gru", tbptt=(k, k), horizon=0, optimizer=optim.SGD(lr=0.1))
    _, x, y = keyed_rows([12], seed=4)
    keys = np.zeros(12, np.int64)
    learner.learn(keys[:5], None, x[:5], y[:5])
    before = snapshot(learner)
    learner.predict(keys[5:7], None, x[5:7])
    after = snapshot(learner)
    assert after["counts"] == before["counts"] == {"updates": 1, "skipped": 0, "labels": 4,
                                                   "windows": 1}  # fmt: skip
    for name, value in before["weights"].items():
        assert np.array_equal(after["weights"][name], value), name
    learner.learn(keys[7:10], None, x[7:10], y[7:10])  # the history counts 3 steps, not 8
    assert learner.counts["windows"] == 1
    learner.learn(keys[10:11], None, x[10:11], y[10:11])
    assert learner.counts["windows"] == 2


def test_predict_between_learning_matches_reference():
    k1, k2, horizon, batch, lr = 2, 5, 1, 2, 0.2
    learner = make_learner("lstm", layers=2, tbptt=(k1, k2), horizon=horizon, batch=batch,
                           optimizer=optim.SGD(lr=lr))  # fmt: skip
    start = learner.model.copy()
    a = keyed_rows([12, 8], seed=1, mask=0.1)
    b = keyed_rows([3, 2], seed=2)
    c = keyed_rows([9, 14], seed=3, mask=0.1)
    chunks = [a, (b[0], b[1], None), c]
    check_against_reference(learner, start, chunks, k1, k2, horizon, batch, lr)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_reset_and_set_state_between_learning_match_reference(cell):
    """Both start the key's history again from the state they set; a key made by
    set_state starts from that state."""
    k1, k2, horizon, batch, lr = 3, 5, 1, 2, 0.2
    learner = make_learner(cell, tbptt=(k1, k2), horizon=horizon, batch=batch,
                           optimizer=optim.SGD(lr=lr))  # fmt: skip
    start = learner.model.copy()
    rng = np.random.default_rng(0)
    zero = learner.model.zero_state()
    state = tuple(0.5 * rng.standard_normal(p.shape) for p in state_parts(zero))
    state = state if cell == "lstm" else state[0]
    names = ["a", "b", "c"]
    chunks = [
        keyed_rows([12, 10], seed=1, mask=0.1, names=names[:2]),
        ("reset", "b"),
        ("set_state", "a", state),
        ("set_state", "c", state),
        keyed_rows([9, 7, 11], seed=2, mask=0.1, names=names),
        ("reset", "c"),
        keyed_rows([5, 8, 6], seed=3, mask=0.1, names=names),
    ]
    check_against_reference(learner, start, chunks, k1, k2, horizon, batch, lr)


def test_predict_then_learn_is_a_fresh_history():
    """After predict, learning goes on exactly as a learner holding the same weights
    (plain SGD: no other optimizer state) whose series start at those states."""
    options = dict(tbptt=(3, 6), horizon=1, batch=1, optimizer=optim.SGD(lr=0.3), relative=None,
                   loss="mse")
    learner = make_learner("rnn_tanh", **options)
    keys, x, y = keyed_rows([8, 11], seed=5, names=["u", "v"])
    learner.learn(keys, None, x, y)
    learner.predict(keys[:4], None, x[:4])
    other = streamrnn.OnlineLearner(learner.model.copy(), **options)
    for key in learner.keys():
        other.set_state(key, state_parts(learner.get_state(key))[0])
    keys, x, y = keyed_rows([10, 7], seed=6, names=["u", "v"])
    out = learner.predict_learn(keys, None, x, y)
    assert np.array_equal(other.predict_learn(keys, None, x, y), out)
    a, b = snapshot(learner), snapshot(other)
    a["counts"] = b["counts"] = None
    assert_same_learning(a, b)


# -- 9. fit ----------------------------------------------------------------------------------------


def fit_chunks():
    keys, x, y = keyed_rows([14, 9, 17], seed=7, mask=0.1)
    cuts = [0, 5, 5, 21, len(keys)]
    return [feeds.Chunk(keys[a:b], np.arange(a, b), x[a:b], y[a:b]) for a, b in zip(cuts, cuts[1:])]


def test_fit_over_two_epochs_is_learning_twice():
    chunks = fit_chunks()
    options = dict(tbptt=(3, 5), horizon=1, batch=3, optimizer=optim.Adam(lr=0.02))
    fitted = make_learner("gru", **options)
    assert fitted.fit(chunks, epochs=2) is fitted
    manual = make_learner("gru", **options)
    for chunk in chunks:
        manual.learn(chunk)
    for key in manual.keys():
        manual.remove(key)
    for chunk in chunks:
        manual.learn(chunk)
    assert_same_learning(snapshot(fitted), snapshot(manual))
    # a function giving the chunks afresh each epoch does the same
    again = make_learner("gru", **options)
    again.fit(lambda: iter(chunks), epochs=2)
    assert_same_learning(snapshot(again), snapshot(manual))
    # one epoch from a generator
    once = make_learner("gru", **options)
    once.fit(c for c in chunks)
    single = make_learner("gru", **options).fit(chunks)
    assert_same_learning(snapshot(once), snapshot(single))


# -- 10. through a feed ----------------------------------------------------------------------------


def sensor_frame(n=30, seed=0):
    rng = np.random.default_rng(seed)
    keys = np.repeat(np.array(["north", "south", "east"]), n)
    times = np.tile(np.arange(n), 3)
    levels = np.repeat([10.0, -3.0, 250.0], n)
    values = levels + np.cumsum(rng.standard_normal(3 * n))
    gaps = rng.random(3 * n) < 0.1
    gaps[::n] = False  # each sensor starts with a value
    values[gaps] = np.nan  # missing: carried forward as inputs, masked as labels
    frame = pd.DataFrame({"key": keys, "time": times, "value": values})
    return frame.sort_values(["time", "key"], kind="stable").reset_index(drop=True)


def scaling_feed():
    schema = feeds.Schema(key="key", time="time", features=["value"], targets=["value"])
    return feeds.Feed(schema, scale="per_key", missing="ffill", dtype="float64")


def feed_learner(feed=None):
    return make_learner("gru", inputs=1, tbptt=(4, 6), horizon=1, batch=2, feed=feed,
                        optimizer=optim.Adam(lr=0.02))  # fmt: skip


def test_feed_outputs_are_in_data_units():
    frame = sensor_frame()
    learner = feed_learner(scaling_feed())
    out = learner.predict_learn(frame)
    # the same rows by hand: the feed's chunk, learned in scaled units
    chunk = scaling_feed()(frame)
    bare = feed_learner()
    scaled = bare.predict_learn(chunk.keys, chunk.times, chunk.x, chunk.y)
    assert np.array_equal(out, scaled * chunk.y_scale + chunk.y_loc)
    assert_same_learning(snapshot(learner), snapshot(bare))
    assert learner.counts["updates"] >= 5
    # data units: the outputs sit near each sensor's level, not near 0
    means = pd.Series(out[:, 0]).groupby(frame["key"].to_numpy()).mean()
    assert means["east"] > 200 and abs(means["south"] + 3) < 20


def test_feed_chunking_changes_nothing():
    frame = sensor_frame(seed=1)
    whole = feed_learner(scaling_feed())
    out = whole.predict_learn(frame)
    parts = feed_learner(scaling_feed())
    cuts = [0, 1, 1, 17, 40, 41, len(frame)]
    outs = [parts.predict_learn(frame.iloc[a:b]) for a, b in zip(cuts, cuts[1:])]
    assert np.array_equal(np.concatenate(outs), out)
    assert_same_learning(snapshot(parts), snapshot(whole))


def test_rows_a_feed_holds_back_are_learned_on_flush():
    """With duplicates="last" each key's newest row waits for a later one or for
    flush; cut anywhere, the rows are learned the same."""
    frame = sensor_frame(seed=3)
    frame = pd.concat([frame, frame.iloc[[5, 40]].assign(value=[1.0, 2.0])])  # two repeats
    frame = frame.sort_values("time", kind="stable").reset_index(drop=True)

    def holding_feed():
        schema = feeds.Schema(key="key", time="time", features=["value"], targets=["value"])
        return feeds.Feed(schema, duplicates="last", missing="ffill", dtype="float64")

    whole = feed_learner(holding_feed())
    first = whole.predict_learn(frame)
    rest = whole.flush()
    assert len(first) + len(rest) == len(frame) - 2 and len(rest) == 3  # one per key
    parts = feed_learner(holding_feed())
    cuts = [0, 6, 7, 7, 50, len(frame)]
    outs = [parts.predict_learn(frame.iloc[a:b]) for a, b in zip(cuts, cuts[1:])]
    outs.append(parts.flush())
    assert np.array_equal(np.concatenate(outs), np.concatenate([first, rest]))
    assert_same_learning(snapshot(parts), snapshot(whole))
    assert whole.counts["windows"] == sum((n - 1) // 4 for n in (30, 30, 30))


def test_fit_through_a_feed_starts_each_epoch_from_the_same_feed():
    frame = sensor_frame(seed=2)
    halves = [frame.iloc[:40], frame.iloc[40:]]
    fitted = feed_learner(scaling_feed()).fit(halves, epochs=2)
    manual = feed_learner(scaling_feed())
    for half in halves:
        manual.learn(half)
    for key in manual.keys():
        manual.remove(key)
    manual.feed = scaling_feed()
    for half in halves:
        manual.learn(half)
    assert_same_learning(snapshot(fitted), snapshot(manual))


# -- in place, and the model under the learner -----------------------------------------------------


def test_model_is_trained_in_place():
    learner = make_learner("gru", tbptt=(2, 3), horizon=1, optimizer=optim.SGD(lr=0.1))
    model = learner.model
    keys, x, y = keyed_rows([10, 10], seed=2)
    learner.learn(keys, None, x, y)
    assert learner.model is model
    twin = make_model("gru", 2, 4, 1, output_size=1, dtype="float64", seed=0)
    assert not np.array_equal(model.state_dict()["head.weight"], twin.state_dict()["head.weight"])
    # the model's own forward pass uses the learned weights
    twin.load_state_dict(model.state_dict())
    assert np.array_equal(model.forward(x)[0], twin.forward(x)[0])
    # and so do its torch twin and its pickle, read straight after more learning
    for read in (lambda m: torch_weights(*m.to_torch()),
                 lambda m: pickle.loads(pickle.dumps(m)).state_dict()):  # fmt: skip
        learner.learn(keys, None, x, y)
        got, want = read(model), model.state_dict()
        assert not np.array_equal(want["head.weight"], twin.state_dict()["head.weight"])
        assert all(np.array_equal(got[name], want[name]) for name in want)


def test_states_read_are_copies():
    """``get_state`` is documented to return a copy: learning on must not change it."""
    learner = make_learner("gru", tbptt=(2, 2), horizon=0)
    keys, x, y = keyed_rows([6], seed=1)
    learner.learn(keys[:3], None, x[:3], y[:3])
    state = learner.get_state(0)
    kept = state.copy()
    learner.learn(keys[3:], None, x[3:], y[3:])
    assert np.array_equal(state, kept), "get_state returned a view that later learning changed"


def test_weights_loaded_into_the_model_are_learned_from():
    """After ``model.load_state_dict`` the learner learns from the new weights, as a new
    learner on them would (plain SGD, at a window boundary, so nothing else differs)."""
    options = dict(tbptt=(4, 4), horizon=0, optimizer=optim.SGD(lr=0.1))
    learner = make_learner("gru", **options)
    _, x, y = keyed_rows([24], seed=0)
    keys = np.zeros(24, np.int64)
    learner.learn(keys[:8], None, x[:8], y[:8])
    new = make_model("gru", 2, 4, 1, output_size=1, dtype="float64", seed=7).state_dict()
    learner.model.load_state_dict(new)
    fresh = make_learner("gru", seed=7, **options)
    fresh.set_state(0, state_parts(learner.get_state(0))[0])
    out = learner.predict_learn(keys[8:], None, x[8:], y[8:])
    assert np.array_equal(out, fresh.predict_learn(keys[8:], None, x[8:], y[8:]))
    got, want = learner.model.state_dict(), fresh.model.state_dict()
    worst = max(float(np.abs(got[n] - want[n]).max()) for n in got)
    assert worst == 0.0, f"learned weights differ by up to {worst:.3g} after load_state_dict"
