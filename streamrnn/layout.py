"""How parameters and state are laid out for the kernels.

The public models keep PyTorch-shaped arrays under PyTorch's names; the
kernels read one flat buffer ``P`` holding, for each layer ``l``,
``W_ih^T (n_in, G*H)``, ``W_hh^T (H, G*H)``, ``b_ih (G*H)``, ``b_hh (G*H)``
and their sum ``b_ih + b_hh`` (the starting value of RNN and LSTM gates),
then the head's ``W^T (H, O)`` and ``b (O)``. A model without biases stores
zeros, which adds nothing.

``P`` starts on a 64-byte boundary, every block starts on one, and matrix
rows are padded with zeros to a whole number of 64-byte lines (the leading
dimensions ``ld_g`` and ``ld_o``), so that vector loads never straddle two
cache lines.
"""

import numpy as np

from .cells import CELLS
from .kernels import _HEAD, _PER_LAYER

ALIGN_BYTES = 64


def _round_up(n, to):
    return -(-n // to) * to


def aligned_zeros(n, dtype):
    """A zeroed 1-D array of ``n`` items whose data starts on a 64-byte boundary."""
    dtype = np.dtype(dtype)
    raw = np.zeros(n * dtype.itemsize + ALIGN_BYTES, np.uint8)
    start = -raw.ctypes.data % ALIGN_BYTES
    return raw[start : start + n * dtype.itemsize].view(dtype)


def param_shapes(cell, input_size, hidden_size, num_layers, output_size, bias):
    """PyTorch's parameter names and shapes, in ``state_dict`` order."""
    G = CELLS[cell][1]
    shapes = {}
    for layer in range(num_layers):
        n_in = input_size if layer == 0 else hidden_size
        shapes[f"weight_ih_l{layer}"] = (G * hidden_size, n_in)
        shapes[f"weight_hh_l{layer}"] = (G * hidden_size, hidden_size)
        if bias:
            shapes[f"bias_ih_l{layer}"] = (G * hidden_size,)
            shapes[f"bias_hh_l{layer}"] = (G * hidden_size,)
    if output_size is not None:
        shapes["head.weight"] = (output_size, hidden_size)
        shapes["head.bias"] = (output_size,)
    return shapes


def make_spec(cell, input_size, hidden_size, num_layers, output_size, dtype):
    """The kernels' int64 ``spec`` and the length of the flat buffer."""
    kind, G, _ = CELLS[cell]
    line = ALIGN_BYTES // np.dtype(dtype).itemsize  # items per cache line
    H = hidden_size
    has_head = output_size is not None
    O = output_size if has_head else H
    ld_g = _round_up(G * H, line)
    ld_o = _round_up(O, line)
    spec = np.zeros(_HEAD + _PER_LAYER * num_layers, dtype=np.int64)
    pos = 0

    def take(n):
        nonlocal pos
        at = pos
        pos = _round_up(pos + n, line)
        return at

    for layer in range(num_layers):
        n_in = input_size if layer == 0 else H
        at = _HEAD + _PER_LAYER * layer
        spec[at : at + _PER_LAYER] = (
            take(n_in * ld_g),  # W_ih^T
            take(H * ld_g),  # W_hh^T
            take(ld_g),  # b_ih
            take(ld_g),  # b_hh
            take(ld_g),  # b_ih + b_hh
        )
    head_w = take(H * ld_o) if has_head else 0
    head_b = take(ld_o) if has_head else 0
    spec[:_HEAD] = (kind, input_size, H, num_layers, O, has_head, head_w, head_b, ld_g, ld_o)
    return spec, pos


def _put_matrix(P, at, ld, w):
    """Store ``w`` (rows of a transposed weight) at ``P[at:]`` with leading dimension ``ld``."""
    rows, cols = w.shape
    P[at : at + rows * ld].reshape(rows, ld)[:, :cols] = w


def pack(params, spec, size, dtype):
    """Flat, aligned kernel buffer from PyTorch-shaped arrays (missing biases are zero)."""
    P = aligned_zeros(size, dtype)
    ld_g, ld_o = int(spec[8]), int(spec[9])
    for layer in range(int(spec[3])):
        at = _HEAD + _PER_LAYER * layer
        w_ih, w_hh, b_ih, b_hh, b_sum = spec[at : at + _PER_LAYER]
        _put_matrix(P, w_ih, ld_g, params[f"weight_ih_l{layer}"].T)
        _put_matrix(P, w_hh, ld_g, params[f"weight_hh_l{layer}"].T)
        if f"bias_ih_l{layer}" in params:
            n = params[f"bias_ih_l{layer}"].size
            P[b_ih : b_ih + n] = params[f"bias_ih_l{layer}"]
            P[b_hh : b_hh + n] = params[f"bias_hh_l{layer}"]
            P[b_sum : b_sum + n] = P[b_ih : b_ih + n] + P[b_hh : b_hh + n]
    if spec[5]:
        _put_matrix(P, spec[6], ld_o, params["head.weight"].T)
        P[spec[7] : spec[7] + params["head.bias"].size] = params["head.bias"]
    return P
