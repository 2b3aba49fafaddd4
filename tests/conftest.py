import numpy as np
import pytest

import streamrnn

CELLS = ["rnn_tanh", "rnn_relu", "gru", "lstm"]
TOL = {np.float64: 1e-10, np.float32: 1e-5}


def make_model(
    cell,
    input_size,
    hidden_size,
    num_layers=1,
    output_size=None,
    *,
    bias=True,
    dtype="float64",
    seed=0,
):
    kw = dict(num_layers=num_layers, output_size=output_size, bias=bias, dtype=dtype, seed=seed)
    if cell == "gru":
        return streamrnn.GRU(input_size, hidden_size, **kw)
    if cell == "lstm":
        return streamrnn.LSTM(input_size, hidden_size, **kw)
    return streamrnn.RNN(input_size, hidden_size, nonlinearity=cell[4:], **kw)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
