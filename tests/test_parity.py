"""Kernels against the NumPy reference and against PyTorch."""

import naive
import numpy as np
import pytest
import torch
from conftest import CELLS, TOL, make_model

import streamrnn


def torch_forward(model, x, state=None):
    rnn, head = model.to_torch()
    xt = torch.from_numpy(np.ascontiguousarray(x))
    with torch.no_grad():
        if state is not None and model.cell == "lstm":
            state = tuple(torch.from_numpy(s) for s in state)
        elif state is not None:
            state = torch.from_numpy(state)
        y, hn = rnn(xt, state)
        if head is not None:
            y = head(y)
    if model.cell == "lstm":
        return y.numpy(), (hn[0].numpy(), hn[1].numpy())
    return y.numpy(), hn.numpy()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("cell", CELLS)
def test_forward_matches_naive_and_torch(cell, num_layers, bias, dtype, rng):
    tol = TOL[dtype]
    model = make_model(
        cell,
        5,
        7,
        num_layers,
        output_size=3 if num_layers != 2 else None,
        bias=bias,
        dtype=dtype,
        seed=num_layers,
    )
    x = rng.standard_normal((9, 4, 5)).astype(dtype)
    state = model.zero_state(batch=4)
    if cell == "lstm":
        state = tuple((rng.standard_normal(s.shape) * 0.5).astype(dtype) for s in state)
    else:
        state = (rng.standard_normal(state.shape) * 0.5).astype(dtype)
    y, out_state = model.forward(x, state)

    h0, c0 = state if cell == "lstm" else (state, None)
    y_ref, h_ref, c_ref = naive.forward(cell, model.state_dict(), x, h0, c0)
    np.testing.assert_allclose(y, y_ref, rtol=tol, atol=tol)
    h_out = out_state[0] if cell == "lstm" else out_state
    np.testing.assert_allclose(h_out, h_ref, rtol=tol, atol=tol)
    if cell == "lstm":
        np.testing.assert_allclose(out_state[1], c_ref, rtol=tol, atol=tol)

    y_t, state_t = torch_forward(model, x, state)
    np.testing.assert_allclose(y, y_t, rtol=tol, atol=tol)
    for ours, theirs in zip(
        out_state if cell == "lstm" else (out_state,),
        state_t if cell == "lstm" else (state_t,),
    ):
        np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol)
    assert y.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("sizes", [(1, 1, 1), (1, 3, 1), (4, 1, 1), (3, 2, 17)])
def test_odd_sizes(cell, sizes, dtype, rng):
    I, H, T = sizes
    model = make_model(cell, I, H, 2, output_size=1, dtype=dtype, seed=H)
    x = rng.standard_normal((T, I)).astype(dtype)
    y, _ = model.forward(x)
    y_ref, _, _ = naive.forward(cell, model.state_dict(), x[:, None, :])
    np.testing.assert_allclose(y, y_ref[:, 0], rtol=TOL[dtype], atol=TOL[dtype])
    y_t, _ = torch_forward(model, x)
    np.testing.assert_allclose(y, y_t, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("cell", CELLS)
def test_large_hidden_float32_stays_within_tolerance(cell, rng):
    """Vector bodies and scalar tails of the loops both run (H not a multiple of 8)."""
    model = make_model(cell, 8, 67, 2, output_size=4, dtype="float32", seed=3)
    x = rng.standard_normal((40, 3, 8)).astype(np.float32) * 3
    y, _ = model.forward(x)
    y_t, _ = torch_forward(model, x)
    np.testing.assert_allclose(y, y_t, rtol=1e-5, atol=1e-5)


def test_saturating_inputs_float32():
    """Large pre-activations take the clamped ends of the float32 exp."""
    model = streamrnn.LSTM(2, 5, dtype="float32", seed=0)
    x = np.array([[100.0, -100.0], [-300.0, 300.0], [0.0, 1e-7], [40.0, 40.0]], np.float32)
    y, _ = model.forward(x)
    y_t, _ = torch_forward(model, x)
    np.testing.assert_allclose(y, y_t, rtol=1e-5, atol=1e-5)
    assert np.isfinite(y).all()


def test_from_torch_round_trip_is_exact(rng):
    net = torch.nn.LSTM(3, 6, num_layers=2, dtype=torch.float64)
    head = torch.nn.Linear(6, 2, dtype=torch.float64)
    model = streamrnn.from_torch(net, head)
    assert model.cell == "lstm" and model.output_size == 2 and model.num_layers == 2
    net2, head2 = model.to_torch()
    for a, b in zip(net.state_dict().values(), net2.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(head.weight, head2.weight) and torch.equal(head.bias, head2.bias)
    x = rng.standard_normal((5, 3))
    with torch.no_grad():
        ref = head(net(torch.from_numpy(x))[0]).numpy()
    np.testing.assert_allclose(model.forward(x)[0], ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["tanh", "relu"])
def test_from_torch_rnn_keeps_nonlinearity_and_bias(mode):
    net = torch.nn.RNN(2, 3, nonlinearity=mode, bias=False)
    model = streamrnn.from_torch(net)
    assert model.cell == f"rnn_{mode}" and model.bias is False
    assert model.dtype == np.float32
    assert set(model.state_dict()) == {"weight_ih_l0", "weight_hh_l0"}


def test_state_dict_of_plain_arrays_loads_without_torch():
    a = streamrnn.GRU(3, 4, output_size=2, seed=5)
    b = streamrnn.GRU(3, 4, output_size=2, seed=6)
    plain = {k: v.tolist() for k, v in a.state_dict().items()}
    b.load_state_dict({k: np.array(v) for k, v in plain.items()})
    x = np.ones((3, 3), np.float32)
    assert np.array_equal(a.forward(x)[0], b.forward(x)[0])


def test_default_initialisation_follows_pytorch_bounds():
    model = streamrnn.GRU(3, 25, output_size=2, seed=0)
    for name, value in model.state_dict().items():
        assert np.abs(value).max() <= 1 / 5, name
        if value.size >= 50:  # uniform on [-0.2, 0.2] has std 0.115
            assert 0.09 < value.std() < 0.14, name
    same = streamrnn.GRU(3, 25, output_size=2, seed=0).state_dict()
    other = streamrnn.GRU(3, 25, output_size=2, seed=1).state_dict()
    assert all(np.array_equal(same[k], v) for k, v in model.state_dict().items())
    assert not np.array_equal(other["weight_ih_l0"], same["weight_ih_l0"])
