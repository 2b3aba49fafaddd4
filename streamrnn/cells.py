"""Cell math: one time step of each recurrent cell, written once for every loop.

Every cell follows PyTorch's equations, gate order and parameter names. A cell
step reads its layer's parameters from the flat parameter buffer ``P`` (see
:mod:`streamrnn.layout`) and updates one series' state slice in place.

Weights are stored transposed, ``(n_in, G*H)``, so the innermost loop of every
matrix-vector product walks a contiguous row and vectorises over the gates;
each gate value is summed over its inputs in the same order for every series,
which keeps results independent of how series are batched or chunked.

Cell kinds (the integer that selects a cell inside the loop kernels):

``RNN_TANH`` and ``RNN_RELU`` (``torch.nn.RNN``)::

    h' = act(W_ih x + b_ih + W_hh h + b_hh)

``GRU`` (``torch.nn.GRU``, gates r, z, n)::

    r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h

``LSTM`` (``torch.nn.LSTM``, gates i, f, g, o; state is h then c)::

    i  = sigmoid(W_ii x + b_ii + W_hi h + b_hi)
    f  = sigmoid(W_if x + b_if + W_hf h + b_hf)
    g  = tanh(W_ig x + b_ig + W_hg h + b_hg)
    o  = sigmoid(W_io x + b_io + W_ho h + b_ho)
    c' = f * c + i * g
    h' = o * tanh(c')
"""

from numba import njit

from ._activations import sigmoid, tanh

RNN_TANH = 0
RNN_RELU = 1
GRU = 2
LSTM = 3

#: name -> (kind, gates per unit G, state vectors per layer K)
CELLS = {
    "rnn_tanh": (RNN_TANH, 1, 1),
    "rnn_relu": (RNN_RELU, 1, 1),
    "gru": (GRU, 3, 1),
    "lstm": (LSTM, 4, 2),
}


@njit(inline="always")
def accumulate(P, w_off, v, n_in, width, out):
    """``out += v @ W`` with ``W`` stored ``(n_in, width)`` at ``P[w_off:]``.

    Rows are taken eight at a time so that each pass over ``out`` does eight
    multiply-adds per load and store; the order of the sum is fixed by
    ``n_in`` alone, never by the data or the batch.
    """
    k = 0
    while k + 8 <= n_in:
        w = P[w_off + k * width : w_off + (k + 8) * width]
        v0 = v[k]
        v1 = v[k + 1]
        v2 = v[k + 2]
        v3 = v[k + 3]
        v4 = v[k + 4]
        v5 = v[k + 5]
        v6 = v[k + 6]
        v7 = v[k + 7]
        w0 = w[0:width]
        w1 = w[width : 2 * width]
        w2 = w[2 * width : 3 * width]
        w3 = w[3 * width : 4 * width]
        w4 = w[4 * width : 5 * width]
        w5 = w[5 * width : 6 * width]
        w6 = w[6 * width : 7 * width]
        w7 = w[7 * width : 8 * width]
        for j in range(width):
            out[j] += ((v0 * w0[j] + v1 * w1[j]) + (v2 * w2[j] + v3 * w3[j])) + (
                (v4 * w4[j] + v5 * w5[j]) + (v6 * w6[j] + v7 * w7[j])
            )
        k += 8
    while k < n_in:
        vk = v[k]
        w = P[w_off + k * width : w_off + (k + 1) * width]
        for j in range(width):
            out[j] += vk * w[j]
        k += 1


@njit(inline="always")
def affine(P, w_off, b_off, v, n_in, width, out):
    """``out = b + v @ W``: the bias at ``P[b_off:]``, then :func:`accumulate`."""
    b = P[b_off : b_off + width]
    for j in range(width):
        out[j] = b[j]
    accumulate(P, w_off, v, n_in, width, out)


@njit(inline="always")
def affine_add(P, w_off, b_off, v, n_in, width, out):
    """``out += b + v @ W``."""
    b = P[b_off : b_off + width]
    for j in range(width):
        out[j] += b[j]
    accumulate(P, w_off, v, n_in, width, out)


@njit(inline="always")
def rnn_step(kind, P, off, x, n_in, H, h, gi):
    """Elman step; ``off`` is the layer's (W_ih, W_hh, b_ih, b_hh) offsets."""
    affine(P, off[0], off[2], x, n_in, H, gi)
    affine_add(P, off[1], off[3], h, H, H, gi)
    if kind == RNN_TANH:
        for j in range(H):
            h[j] = tanh(gi[j])
    else:
        for j in range(H):
            v = gi[j]
            h[j] = max(v, v - v)  # v - v is a zero of v's type


@njit(inline="always")
def gru_step(P, off, x, n_in, H, h, gi, gh):
    """GRU step; ``b_hn`` stays inside the reset product, as in PyTorch."""
    affine(P, off[0], off[2], x, n_in, 3 * H, gi)
    affine(P, off[1], off[3], h, H, 3 * H, gh)
    for j in range(H):
        r = sigmoid(gi[j] + gh[j])
        z = sigmoid(gi[H + j] + gh[H + j])
        n = tanh(gi[2 * H + j] + r * gh[2 * H + j])
        h[j] = n + z * (h[j] - n)  # = (1 - z) * n + z * h, rounded as PyTorch does


@njit(inline="always")
def lstm_step(P, off, x, n_in, H, h, c, gi):
    """LSTM step; ``h`` and ``c`` are updated in place."""
    affine(P, off[0], off[2], x, n_in, 4 * H, gi)
    affine_add(P, off[1], off[3], h, H, 4 * H, gi)
    for j in range(H):
        i = sigmoid(gi[j])
        f = sigmoid(gi[H + j])
        g = tanh(gi[2 * H + j])
        o = sigmoid(gi[3 * H + j])
        cj = f * c[j] + i * g
        c[j] = cj
        h[j] = o * tanh(cj)
