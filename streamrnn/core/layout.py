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

The kernels find their way in ``P`` with ``spec``, an int64 array read by the
names below: first the model's sizes (``spec[HIDDEN]``), then for each layer
the offsets of its blocks (``spec[layer_at(layer) + W_HH]``). The backward pass
reads ``bspec`` (:func:`make_back_spec`) the same way. Every kernel uses these
names; no position is written as a number anywhere else.
"""

import numpy as np
from numba.extending import register_jitable

from .cells import CELLS

ALIGN_BYTES = 64

# -- spec: sizes, then where each block of P starts ------------------------------
KIND = 0  #: cell kind (streamrnn.core.cells)
INPUTS = 1  #: I
HIDDEN = 2  #: H
LAYERS = 3  #: L
OUTPUTS = 4  #: O: the head's outputs, or H without a head
HAS_HEAD = 5  #: 1 with a linear head
HEAD_W = 6  #: offset of the head's W^T (H rows of LD_HEAD)
HEAD_B = 7  #: offset of the head's bias
LD_GATES = 8  #: padded row length of the gate weights
LD_HEAD = 9  #: padded row length of the head's weights
SPEC_HEAD = 10  #: entries before the per-layer offsets

# per layer, from layer_at(layer):
W_IH = 0  #: W_ih^T (n_in rows of LD_GATES)
W_HH = 1  #: W_hh^T (H rows of LD_GATES)
B_IH = 2  #: b_ih
B_HH = 3  #: b_hh
B_SUM = 4  #: b_ih + b_hh
PER_LAYER = 5

# -- bspec: the untransposed weights of the backward pass (make_back_spec) --------
LD_H = 0  #: padded row length of the rows of H
BACK_HEAD = 1  #: offset of the head's W (O rows of LD_H)
BACK_W_IH = 0  #: per layer, from back_layer_at(layer): W_ih (G*H rows of LD_IN)
BACK_W_HH = 1  #: W_hh (G*H rows of LD_H)
LD_IN = 2  #: padded row length of W_ih's rows
BACK_PER_LAYER = 3


@register_jitable
def layer_at(layer):
    """Where ``layer``'s offsets start in ``spec``."""
    return SPEC_HEAD + PER_LAYER * layer


@register_jitable
def back_layer_at(layer):
    """Where ``layer``'s entries start in ``bspec``."""
    return 2 + BACK_PER_LAYER * layer


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
    G = CELLS[cell].gates
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
    kind, G = CELLS[cell].kind, CELLS[cell].gates
    line = ALIGN_BYTES // np.dtype(dtype).itemsize  # items per cache line
    H = hidden_size
    has_head = output_size is not None
    O = output_size if has_head else H
    ld_g = _round_up(G * H, line)
    ld_o = _round_up(O, line)
    spec = np.zeros(layer_at(num_layers), dtype=np.int64)
    pos = 0

    def take(n):
        nonlocal pos
        at = pos
        pos = _round_up(pos + n, line)
        return at

    for layer in range(num_layers):
        n_in = input_size if layer == 0 else H
        at = layer_at(layer)
        spec[at : at + PER_LAYER] = (
            take(n_in * ld_g),  # W_ih^T
            take(H * ld_g),  # W_hh^T
            take(ld_g),  # b_ih
            take(ld_g),  # b_hh
            take(ld_g),  # b_ih + b_hh
        )
    head_w = take(H * ld_o) if has_head else 0
    head_b = take(ld_o) if has_head else 0
    head = np.empty(SPEC_HEAD, np.int64)
    head[[KIND, INPUTS, HIDDEN, LAYERS, OUTPUTS]] = (kind, input_size, H, num_layers, O)
    head[[HAS_HEAD, HEAD_W, HEAD_B, LD_GATES, LD_HEAD]] = (has_head, head_w, head_b, ld_g, ld_o)
    spec[:SPEC_HEAD] = head
    return spec, pos


def _put_matrix(P, at, ld, w):
    """Store ``w`` (rows of a transposed weight) at ``P[at:]`` with leading dimension ``ld``."""
    rows, cols = w.shape
    P[at : at + rows * ld].reshape(rows, ld)[:, :cols] = w


def pack(params, spec, size, dtype):
    """Flat, aligned kernel buffer from PyTorch-shaped arrays (missing biases are zero)."""
    P = aligned_zeros(size, dtype)
    ld_g, ld_o = int(spec[LD_GATES]), int(spec[LD_HEAD])
    for layer in range(int(spec[LAYERS])):
        at = layer_at(layer)
        w_ih, w_hh, b_ih, b_hh, b_sum = (spec[at + k] for k in (W_IH, W_HH, B_IH, B_HH, B_SUM))
        _put_matrix(P, w_ih, ld_g, params[f"weight_ih_l{layer}"].T)
        _put_matrix(P, w_hh, ld_g, params[f"weight_hh_l{layer}"].T)
        if f"bias_ih_l{layer}" in params:
            n = params[f"bias_ih_l{layer}"].size
            P[b_ih : b_ih + n] = params[f"bias_ih_l{layer}"]
            P[b_hh : b_hh + n] = params[f"bias_hh_l{layer}"]
            P[b_sum : b_sum + n] = P[b_ih : b_ih + n] + P[b_hh : b_hh + n]
    if spec[HAS_HEAD]:
        _put_matrix(P, spec[HEAD_W], ld_o, params["head.weight"].T)
        P[spec[HEAD_B] : spec[HEAD_B] + params["head.bias"].size] = params["head.bias"]
    return P


def make_back_spec(spec, dtype):
    """Layout of ``PT``, the weights the backward pass multiplies by, untransposed.

    For each layer ``W_ih (G*H, n_in)`` and ``W_hh (G*H, H)``, then the head's
    ``W (O, H)``, rows padded to whole cache lines. Returns the int64 ``bspec``
    (read by the names ``LD_H``, ``BACK_HEAD``, and per layer from
    :func:`back_layer_at`: ``BACK_W_IH``, ``BACK_W_HH``, ``LD_IN``) and the
    buffer's length.
    """
    line = ALIGN_BYTES // np.dtype(dtype).itemsize
    I, H, L, O = (int(spec[k]) for k in (INPUTS, HIDDEN, LAYERS, OUTPUTS))
    GW = CELLS_BY_KIND_GATES[int(spec[KIND])] * H
    ld_h = _round_up(H, line)
    bspec = np.zeros(back_layer_at(L), np.int64)
    pos = 0
    for layer in range(L):
        ld_in = _round_up(I if layer == 0 else H, line)
        at = back_layer_at(layer)
        bspec[at + BACK_W_IH] = pos
        bspec[at + BACK_W_HH] = pos + GW * ld_in
        bspec[at + LD_IN] = ld_in
        pos += GW * ld_in + GW * ld_h
    bspec[LD_H] = ld_h
    bspec[BACK_HEAD] = pos
    pos += O * ld_h
    return bspec, pos


#: gates per unit, by kernel cell kind
CELLS_BY_KIND_GATES = {cell.kind: cell.gates for cell in CELLS.values()}


def trainable_ranges(spec, bias):
    """``(n, 2)`` int64 ``(start, length)`` ranges of ``P`` that training changes:
    weights and biases without their padding, never the derived ``b_ih + b_hh``."""
    I, H, L, O = (int(spec[k]) for k in (INPUTS, HIDDEN, LAYERS, OUTPUTS))
    GW = CELLS_BY_KIND_GATES[int(spec[KIND])] * H
    ld_g, ld_o = int(spec[LD_GATES]), int(spec[LD_HEAD])
    out = []
    for layer in range(L):
        at = layer_at(layer)
        n_in = I if layer == 0 else H
        for w, rows in ((spec[at + W_IH], n_in), (spec[at + W_HH], H)):
            out += [(int(w) + r * ld_g, GW) for r in range(rows)]
        if bias:
            out += [(int(spec[at + B_IH]), GW), (int(spec[at + B_HH]), GW)]
    if spec[HAS_HEAD]:
        out += [(int(spec[HEAD_W]) + r * ld_o, O) for r in range(H)]
        out.append((int(spec[HEAD_B]), O))
    return np.array(out, np.int64).reshape(-1, 2)


def unpack(P, spec, shapes):
    """PyTorch-shaped arrays (copies) from a buffer laid out as :func:`pack` lays
    out ``P``; ``shapes`` as from :func:`param_shapes`."""
    ld_g, ld_o = int(spec[LD_GATES]), int(spec[LD_HEAD])
    out = {}
    for layer in range(int(spec[LAYERS])):
        at = layer_at(layer)
        for name, off in (("weight_ih", spec[at + W_IH]), ("weight_hh", spec[at + W_HH])):
            rows, cols = shapes[f"{name}_l{layer}"]
            block = P[off : off + cols * ld_g].reshape(cols, ld_g)[:, :rows]
            out[f"{name}_l{layer}"] = block.T.copy()
        if f"bias_ih_l{layer}" in shapes:
            n = shapes[f"bias_ih_l{layer}"][0]
            out[f"bias_ih_l{layer}"] = P[spec[at + B_IH] : spec[at + B_IH] + n].copy()
            out[f"bias_hh_l{layer}"] = P[spec[at + B_HH] : spec[at + B_HH] + n].copy()
    if spec[HAS_HEAD]:
        O, H = shapes["head.weight"]
        block = P[spec[HEAD_W] : spec[HEAD_W] + H * ld_o].reshape(H, ld_o)[:, :O]
        out["head.weight"] = block.T.copy()
        out["head.bias"] = P[spec[HEAD_B] : spec[HEAD_B] + O].copy()
    return out
