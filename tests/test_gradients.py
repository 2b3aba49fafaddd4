"""Gradients of the training losses against PyTorch autograd, finite differences
and the hand-written reference in ``naive.backprop``."""

import naive
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import CELLS, make_model

import streamrnn

T, B, I, H = 7, 3, 3, 5

#: (name, options) of every loss exercised; options empty means the bare name is passed
LOSSES = [
    ("mse", {}),
    ("mae", {}),
    ("huber", {}),
    ("huber", {"delta": 0.3}),
    ("pinball", {}),
    ("pinball", {"quantiles": (0.25, 0.75)}),
    ("cross_entropy", {}),
]
LOSS_IDS = ["mse", "mae", "huber", "huber0.3", "pinball", "pinball2", "cross_entropy"]
_CLASSES = {"mse": "MSE", "mae": "MAE", "huber": "Huber", "pinball": "Pinball",
            "cross_entropy": "CrossEntropy"}  # fmt: skip


def api_loss(spec):
    """What ``model.gradients`` takes: the name, or a ``streamrnn.losses`` object."""
    name, options = spec
    if not options:
        return name
    from streamrnn import losses

    return getattr(losses, _CLASSES[name])(**options)


def tolerances(dtype, reference):
    """``rtol, atol`` for comparing against ``reference`` computed in ``dtype``."""
    if np.dtype(dtype) == np.float64:
        return 1e-9, 1e-12
    scale = max(1.0, float(np.max(np.abs(reference), initial=0.0)))
    return 1e-5, 2e-5 * scale


def assert_close(actual, expected, dtype, what):
    actual = np.asarray(actual)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, what
    rtol, atol = tolerances(dtype, expected)
    err = np.max(np.abs(actual - expected), initial=0.0)
    np.testing.assert_allclose(
        actual, expected, rtol=rtol, atol=atol, err_msg=f"{what}: max abs error {err:.3g}"
    )


def assert_states_close(actual, expected, dtype, what="final state"):
    pairs = zip(actual, expected) if isinstance(expected, tuple) else [(actual, expected)]
    for a, e in pairs:
        assert_close(a, e, dtype, what)


# -- building cases ----------------------------------------------------------------------------


def make_case(cell, num_layers, dtype, spec, *, head=True, bias=True, batched=True,
              state=True, seed=0, mask=0.2, sizes=(T, B, I, H)):  # fmt: skip
    """A model, inputs, targets (with NaN holes) and an initial state that fit ``spec``.

    ``sizes`` is ``(steps, batch, inputs, hidden)``.
    """
    steps, batch, inputs, hidden = sizes
    name, options = naive.loss_spec(spec)
    rng = np.random.default_rng(1000 + seed)
    if name == "pinball":
        K = len(options["quantiles"])
        out, n_targets = (2 * K, 2) if head else (hidden, hidden // K)
        assert out == n_targets * K, "without a head, H must be a multiple of the quantiles"
    elif name == "cross_entropy":
        out, n_targets = (4 if head else hidden), 1
    else:
        out = 2 if head else hidden
        n_targets = out
    model = make_model(cell, inputs, hidden, num_layers, output_size=out if head else None,
                       bias=bias, dtype=dtype, seed=seed)  # fmt: skip
    shape = (steps, batch) if batched else (steps,)
    x = rng.standard_normal((*shape, inputs)).astype(dtype)
    if name == "cross_entropy":
        y = rng.integers(0, out, size=(*shape, 1)).astype(dtype)
    else:
        y = (rng.standard_normal((*shape, n_targets)) * 0.5).astype(dtype)
    y[rng.random(y.shape) < mask] = np.nan
    y[2:3] = np.nan  # one step without any label
    s = None
    if state:
        zero = model.zero_state(batch=batch if batched else None)
        parts = zero if cell == "lstm" else (zero,)
        parts = tuple((rng.standard_normal(p.shape) * 0.5).astype(dtype) for p in parts)
        s = parts if cell == "lstm" else parts[0]
    return model, x, y, s


# -- PyTorch ------------------------------------------------------------------------------------


def torch_loss(spec, yhat, y):
    """The mean loss over labeled entries, from torch's own functions where there is one."""
    name, options = naive.loss_spec(spec)
    if name == "cross_entropy":
        labels = y[..., 0]
        rows = ~torch.isnan(labels)
        return F.cross_entropy(yhat[rows], labels[rows].long())
    mask = ~torch.isnan(y)
    if name == "mse":
        return F.mse_loss(yhat[mask], y[mask])
    if name == "mae":
        return F.l1_loss(yhat[mask], y[mask])
    if name == "huber":
        return F.huber_loss(yhat[mask], y[mask], delta=options["delta"])
    if name == "pinball":
        qs = torch.tensor(options["quantiles"], dtype=yhat.dtype)
        yq = yhat.reshape(*y.shape, len(qs))  # column j * K + k is target j, quantile k
        u = torch.where(mask, y, 0.0)[..., None] - yq
        per = torch.maximum(qs * u, (qs - 1.0) * u)
        return per[mask[..., None].expand_as(per)].mean()
    raise ValueError(name)


def torch_gradients(model, x, y, state=None, loss=("mse", {})):
    """``(loss_value, grads, final_state, state_grad)`` from autograd on ``model.to_torch()``."""
    rnn, head = model.to_torch()
    lstm = model.cell == "lstm"
    s = None
    if state is not None:
        parts = state if lstm else (state,)
        s = tuple(torch.tensor(p, requires_grad=True) for p in parts)
    out, hn = rnn(torch.from_numpy(x), (s if lstm else s[0]) if s is not None else None)
    yhat = head(out) if head is not None else out
    value = torch_loss(loss, yhat, torch.from_numpy(y))
    value.backward()
    grads = {k: v.grad.numpy() for k, v in rnn.named_parameters()}
    if head is not None:
        grads["head.weight"] = head.weight.grad.numpy()
        grads["head.bias"] = head.bias.grad.numpy()
    final = tuple(v.detach().numpy() for v in hn) if lstm else hn.detach().numpy()
    state_grad = None
    if s is not None:
        state_grad = tuple(v.grad.numpy() for v in s) if lstm else s[0].grad.numpy()
    return value.item(), grads, final, state_grad


# -- the reference itself ------------------------------------------------------------------------


@pytest.mark.parametrize("spec", LOSSES, ids=LOSS_IDS)
@pytest.mark.parametrize("cell", CELLS)
def test_reference_matches_torch(cell, spec):
    """``naive.backprop`` agrees with autograd, initial-state gradient included."""
    k = LOSSES.index(spec)
    head = spec[0] == "pinball" or k % 4 != 1
    case = make_case(cell, 1 + k % 3, np.float64, spec, head=head, bias=k % 3 != 2, seed=k)
    model, x, y, s = case
    value, grads, final, state_grad = naive.backprop(model, x, y, s, spec)
    t_value, t_grads, t_final, t_state_grad = torch_gradients(model, x, y, s, spec)
    assert value == pytest.approx(t_value, rel=1e-12)
    assert grads.keys() == t_grads.keys() == model.state_dict().keys()
    for name in grads:
        assert_close(grads[name], t_grads[name], np.float64, name)
    assert_states_close(final, t_final, np.float64)
    assert_states_close(state_grad, t_state_grad, np.float64, "initial state gradient")


@pytest.mark.parametrize("cell", CELLS)
def test_reference_state_gradient_matches_finite_differences(cell):
    model, x, y, s = make_case(cell, 2, np.float64, ("mse", {}), seed=3)
    _, _, _, state_grad = naive.backprop(model, x, y, s)
    parts = s if cell == "lstm" else (s,)
    grads = state_grad if cell == "lstm" else (state_grad,)
    rng = np.random.default_rng(7)
    eps = 1e-6
    for part, grad in zip(parts, grads):
        for flat in rng.choice(part.size, 4, replace=False):
            idx = np.unravel_index(flat, part.shape)
            old = part[idx]
            part[idx] = old + eps
            up = naive.backprop(model, x, y, s)[0]
            part[idx] = old - eps
            down = naive.backprop(model, x, y, s)[0]
            part[idx] = old
            assert grad[idx] == pytest.approx((up - down) / (2 * eps), rel=1e-6, abs=1e-9)


# -- model.gradients -------------------------------------------------------------------------------


def check_against_references(model, x, y, s, spec):
    """``model.gradients`` against autograd and ``naive.gradients``; returns its result."""
    dtype = model.dtype
    value, grads, final = model.gradients(x, y, state=s, loss=api_loss(spec))
    assert isinstance(value, float)
    assert grads.keys() == model.state_dict().keys()
    for name, g in model.state_dict().items():
        assert grads[name].shape == g.shape, name
        assert grads[name].dtype == dtype, name
    t_value, t_grads, t_final, _ = torch_gradients(model, x, y, s, spec)
    n_value, n_grads, n_final = naive.gradients(model, x, y, s, spec)
    assert_close(value, t_value, dtype, "loss value vs torch")
    assert_close(value, n_value, dtype, "loss value vs reference")
    for name in grads:
        assert_close(grads[name], t_grads[name], dtype, f"{name} vs torch")
        assert_close(grads[name], n_grads[name], dtype, f"{name} vs reference")
    assert_states_close(final, t_final, dtype, "final state vs torch")
    assert_states_close(final, n_final, dtype, "final state vs reference")
    forward_state = model.forward(x, s)[1]
    assert_states_close(final, forward_state, dtype, "final state vs forward")
    return value, grads, final


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("cell", CELLS)
def test_gradients_match_torch(cell, num_layers, dtype):
    """Every cell and depth, in both dtypes; batched, from a given state, masked targets."""
    case = make_case(cell, num_layers, dtype, ("mse", {}), head=num_layers != 2, seed=num_layers)
    check_against_references(*case, ("mse", {}))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("spec", LOSSES, ids=LOSS_IDS)
@pytest.mark.parametrize("cell", CELLS)
def test_every_loss(cell, spec, dtype):
    k = LOSSES.index(spec)
    head = spec[0] == "pinball" or k % 2 == 0
    case = make_case(cell, 1 + k % 3, dtype, spec, head=head, seed=10 + k)
    check_against_references(*case, spec)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell", ["rnn_relu", "gru"])
def test_pinball_without_head(cell, dtype):
    """Five quantiles of one target read straight from the H = 5 hidden units."""
    spec = ("pinball", {"quantiles": (0.05, 0.3, 0.5, 0.7, 0.95)})
    check_against_references(*make_case(cell, 2, dtype, spec, head=False, seed=6), spec)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell", CELLS)
def test_without_bias(cell, dtype):
    case = make_case(cell, 2, dtype, ("huber", {}), bias=False, seed=5)
    _, grads, _ = check_against_references(*case, ("huber", {}))
    assert not any(name.startswith("bias") for name in grads)
    assert {"head.weight", "head.bias"} <= grads.keys()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell", CELLS)
def test_unbatched(cell, dtype):
    """``x`` of shape (T, I) with and without a state: as one series of a batch of one."""
    for state in (False, True):
        model, x, y, s = make_case(cell, 2, dtype, ("mse", {}), batched=False, state=state)
        value, grads, final = check_against_references(model, x, y, s, ("mse", {}))
        if s is not None:
            s1 = tuple(p[:, None] for p in s) if cell == "lstm" else s[:, None]
        else:
            s1 = None
        v1, g1, f1 = model.gradients(x[:, None], y[:, None], state=s1)
        assert_close(value, v1, dtype, "loss value vs batch of one")
        for name in grads:
            assert_close(grads[name], g1[name], dtype, name)
        f1 = tuple(p[:, 0] for p in f1) if cell == "lstm" else f1[:, 0]
        assert_states_close(final, f1, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell", CELLS)
def test_longer_and_wider(cell, dtype):
    """Hidden and input widths past one vector of lanes, and a longer window."""
    spec = ("huber", {"delta": 0.5})
    case = make_case(cell, 2, dtype, spec, seed=9, sizes=(30, 2, 10, 19))
    check_against_references(*case, spec)


@pytest.mark.parametrize("spec", [("mse", {}), ("pinball", {}), ("cross_entropy", {})])
@pytest.mark.parametrize("cell", CELLS)
def test_matches_finite_differences(cell, spec):
    """Central differences of the returned loss value, float64, a few entries per tensor."""
    model, x, y, s = make_case(cell, 2, np.float64, spec, seed=21)
    loss = api_loss(spec)
    _, grads, _ = model.gradients(x, y, state=s, loss=loss)
    params = model.state_dict()
    rng = np.random.default_rng(8)
    eps = 1e-6
    for name, value in params.items():
        for flat in rng.choice(value.size, min(3, value.size), replace=False):
            idx = np.unravel_index(flat, value.shape)
            old = value[idx]
            value[idx] = old + eps
            model.load_state_dict(params)
            up = model.gradients(x, y, state=s, loss=loss)[0]
            value[idx] = old - eps
            model.load_state_dict(params)
            down = model.gradients(x, y, state=s, loss=loss)[0]
            value[idx] = old
            fd = (up - down) / (2 * eps)
            assert grads[name][idx] == pytest.approx(fd, rel=1e-6, abs=1e-9), (name, idx)
    model.load_state_dict(params)


# -- masks, edge cases, arguments ------------------------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
def test_unlabeled_tail_adds_nothing(cell):
    """Steps after the last label contribute nothing: same as cutting them off."""
    model, x, y, s = make_case(cell, 2, np.float64, ("mae", {}), seed=4)
    y[-3:] = np.nan
    value, grads, _ = model.gradients(x, y, state=s, loss="mae")
    cut_value, cut_grads, _ = model.gradients(x[:-3], y[:-3], state=s, loss="mae")
    assert value == pytest.approx(cut_value, rel=1e-12)
    for name in grads:
        assert_close(grads[name], cut_grads[name], np.float64, name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("spec", LOSSES, ids=LOSS_IDS)
def test_no_labels_gives_zero(spec, dtype):
    model, x, y, s = make_case("gru", 2, dtype, spec)
    y[:] = np.nan
    value, grads, final = model.gradients(x, y, state=s, loss=api_loss(spec))
    assert value == 0.0 and isinstance(value, float)
    assert grads.keys() == model.state_dict().keys()
    for name, g in grads.items():
        assert g.dtype == dtype and not g.any(), name
    assert_states_close(final, model.forward(x, s)[1], dtype)


@pytest.mark.parametrize("batched", [True, False])
def test_empty_window_gives_zero(batched):
    model, x, y, s = make_case("lstm", 2, np.float32, ("mse", {}), batched=batched)
    value, grads, final = model.gradients(x[:0], y[:0], state=s)
    assert value == 0.0
    for name, g in grads.items():
        assert g.dtype == np.float32 and not g.any(), name
    assert_states_close(final, s, np.float32)


def test_sparse_labels_match_torch():
    """A single labeled entry in a whole batch."""
    model, x, y, s = make_case("lstm", 2, np.float64, ("mse", {}), mask=1.0)
    y[4, 1, 0] = 0.7
    check_against_references(model, x, y, s, ("mse", {}))


def test_loss_objects_match_names():
    from streamrnn import losses

    model, x, y, s = make_case("gru", 1, np.float64, ("pinball", {}), seed=2)
    for name, obj in [("mse", losses.MSE()), ("mae", losses.MAE()), ("huber", losses.Huber()),
                      ("pinball", losses.Pinball())]:  # fmt: skip
        yy = y if name == "pinball" else np.concatenate([y, y, y], axis=-1)
        by_name = model.gradients(x, yy, state=s, loss=name)
        by_object = model.gradients(x, yy, state=s, loss=obj)
        assert by_name[0] == by_object[0], name
        for key in by_name[1]:
            assert np.array_equal(by_name[1][key], by_object[1][key]), (name, key)
    model, x, y, s = make_case("gru", 1, np.float64, ("cross_entropy", {}), seed=2)
    a = model.gradients(x, y, state=s, loss="cross_entropy")
    b = model.gradients(x, y, state=s, loss=losses.CrossEntropy())
    assert a[0] == b[0]


def test_arguments_are_left_unchanged():
    model, x, y, s = make_case("lstm", 2, np.float32, ("huber", {}))
    before = model.state_dict()
    copies = [a.copy() for a in (x, y, *s)]
    model.gradients(x, y, state=s, loss="huber")
    for a, b in zip((x, y, *s), copies):
        assert np.array_equal(a, b, equal_nan=True)
    for name, value in model.state_dict().items():
        assert np.array_equal(value, before[name]), name


def test_wrong_target_columns_are_refused():
    model, x, y, s = make_case("rnn_tanh", 1, np.float64, ("mse", {}))  # 2 outputs
    with pytest.raises(streamrnn.InputError, match="y"):
        model.gradients(x, np.zeros((T, B, 3)), state=s)
    model, x, y, s = make_case("rnn_tanh", 1, np.float64, ("pinball", {}))  # 2 targets x 3
    with pytest.raises(streamrnn.InputError, match="y"):
        model.gradients(x, np.zeros((T, B, 6)), state=s, loss="pinball")
    model, x, y, s = make_case("rnn_tanh", 1, np.float64, ("cross_entropy", {}))
    with pytest.raises(streamrnn.InputError, match="y"):
        model.gradients(x, np.zeros((T, B, 4)), state=s, loss="cross_entropy")
    y[0, 0, 0] = 4.0  # classes are 0 .. 3
    with pytest.raises(streamrnn.InputError, match="y"):
        model.gradients(x, y, state=s, loss="cross_entropy")


def test_wrong_target_length_is_refused():
    model, x, y, s = make_case("gru", 1, np.float64, ("mse", {}), batched=False, state=False)
    with pytest.raises(streamrnn.InputError):
        model.gradients(x, np.zeros((T + 1, 2)))
    with pytest.raises(streamrnn.InputError):
        model.gradients(x, np.zeros((T, B, 2)))  # batched y for unbatched x


def test_unknown_loss_is_refused():
    model, x, y, s = make_case("gru", 1, np.float64, ("mse", {}))
    with pytest.raises(streamrnn.ConfigError, match="loss") as info:
        model.gradients(x, y, state=s, loss="rmse")
    assert "mse" in str(info.value)
