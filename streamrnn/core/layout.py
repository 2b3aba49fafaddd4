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


def make_back_spec(spec, dtype):
    """Layout of ``PT``, the weights the backward pass multiplies by, untransposed.

    For each layer ``W_ih (G*H, n_in)`` and ``W_hh (G*H, H)``, then the head's
    ``W (O, H)``, rows padded to whole cache lines. Returns the int64 ``bspec``
    ``[ld_h, head, then per layer: w_ih, w_hh, ld_in]`` and the buffer's length.
    """
    line = ALIGN_BYTES // np.dtype(dtype).itemsize
    I, H, L, O = (int(v) for v in spec[1:5])
    GW = CELLS_BY_KIND_GATES[int(spec[0])] * H
    ld_h = _round_up(H, line)
    bspec = np.zeros(2 + 3 * L, np.int64)
    pos = 0
    for layer in range(L):
        ld_in = _round_up(I if layer == 0 else H, line)
        bspec[2 + 3 * layer : 5 + 3 * layer] = (pos, pos + GW * ld_in, ld_in)
        pos += GW * ld_in + GW * ld_h
    bspec[0] = ld_h
    bspec[1] = pos
    pos += O * ld_h
    return bspec, pos


#: gates per unit, by kernel cell kind
CELLS_BY_KIND_GATES = {kind: gates for kind, gates, _ in CELLS.values()}


def trainable_ranges(spec, bias):
    """``(n, 2)`` int64 ``(start, length)`` ranges of ``P`` that training changes:
    weights and biases without their padding, never the derived ``b_ih + b_hh``."""
    I, H, L, O = (int(v) for v in spec[1:5])
    GW = CELLS_BY_KIND_GATES[int(spec[0])] * H
    ld_g, ld_o = int(spec[8]), int(spec[9])
    out = []
    for layer in range(L):
        at = _HEAD + _PER_LAYER * layer
        n_in = I if layer == 0 else H
        for w, rows in ((spec[at], n_in), (spec[at + 1], H)):
            out += [(int(w) + r * ld_g, GW) for r in range(rows)]
        if bias:
            out += [(int(spec[at + 2]), GW), (int(spec[at + 3]), GW)]
    if spec[5]:
        out += [(int(spec[6]) + r * ld_o, O) for r in range(H)]
        out.append((int(spec[7]), O))
    return np.array(out, np.int64).reshape(-1, 2)


def unpack(P, spec, shapes):
    """PyTorch-shaped arrays (copies) from a buffer laid out as :func:`pack` lays
    out ``P``; ``shapes`` as from :func:`param_shapes`."""
    ld_g, ld_o = int(spec[8]), int(spec[9])
    out = {}
    for layer in range(int(spec[3])):
        at = _HEAD + _PER_LAYER * layer
        for name, off in (("weight_ih", spec[at]), ("weight_hh", spec[at + 1])):
            rows, cols = shapes[f"{name}_l{layer}"]
            block = P[off : off + cols * ld_g].reshape(cols, ld_g)[:, :rows]
            out[f"{name}_l{layer}"] = block.T.copy()
        if f"bias_ih_l{layer}" in shapes:
            n = shapes[f"bias_ih_l{layer}"][0]
            out[f"bias_ih_l{layer}"] = P[spec[at + 2] : spec[at + 2] + n].copy()
            out[f"bias_hh_l{layer}"] = P[spec[at + 3] : spec[at + 3] + n].copy()
    if spec[5]:
        O, H = shapes["head.weight"]
        block = P[spec[6] : spec[6] + H * ld_o].reshape(H, ld_o)[:, :O]
        out["head.weight"] = block.T.copy()
        out["head.bias"] = P[spec[7] : spec[7] + O].copy()
    return out
