import numpy as np
import pytest

import streamrnn
from streamrnn import compiling

# Compile notices are tested in test_compiling.py; elsewhere they would trip the tests
# that turn every warning into an error on a machine whose cache is still empty.
compiling._ready.update(
    (f, c, d)
    for f in compiling.FAMILIES
    for c in (*compiling.CELL_FAMILIES, "all")  # "all": the encoder-decoder's kernels
    for d in ("float32", "float64")
)

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
