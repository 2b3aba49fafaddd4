"""How parameters and state are laid out for the kernels.

The public models keep PyTorch-shaped arrays under PyTorch's names; the
kernels read one flat buffer ``P`` holding, for each layer ``l``,
``W_ih^T (n_in, G*H)``, ``W_hh^T (H, G*H)``, ``b_ih (G*H)``, ``b_hh (G*H)``
and their sum ``b_ih + b_hh`` (the starting value of RNN and LSTM gates),
then the head's ``W^T (H, O)`` and ``b (O)``. A model without biases stores
zeros, which adds nothing.
"""

import numpy as np

from .cells import CELLS
from .kernels import _HEAD, _PER_LAYER


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


def make_spec(cell, input_size, hidden_size, num_layers, output_size):
    """The kernels' int64 ``spec`` and the length of the flat buffer."""
    kind, G, _ = CELLS[cell]
    H = hidden_size
    GH = G * H
    has_head = output_size is not None
    O = output_size if has_head else H
    spec = np.zeros(_HEAD + _PER_LAYER * num_layers, dtype=np.int64)
    pos = 0
    for layer in range(num_layers):
        n_in = input_size if layer == 0 else H
        w_ih, pos = pos, pos + n_in * GH
        w_hh, pos = pos, pos + H * GH
        b_ih, pos = pos, pos + GH
        b_hh, pos = pos, pos + GH
        b_sum, pos = pos, pos + GH
        at = _HEAD + _PER_LAYER * layer
        spec[at : at + _PER_LAYER] = (w_ih, w_hh, b_ih, b_hh, b_sum)
    head_w, pos = pos, pos + (H * O if has_head else 0)
    head_b, pos = pos, pos + (O if has_head else 0)
    spec[:_HEAD] = (kind, input_size, H, num_layers, O, has_head, head_w, head_b)
    return spec, pos


def pack(params, spec, size, dtype):
    """Flat kernel buffer from PyTorch-shaped arrays (missing biases are zero)."""
    P = np.zeros(size, dtype=dtype)
    num_layers = int(spec[3])
    for layer in range(num_layers):
        at = _HEAD + _PER_LAYER * layer
        w_ih, w_hh, b_ih, b_hh, b_sum = spec[at : at + _PER_LAYER]
        wi = params[f"weight_ih_l{layer}"].T
        wh = params[f"weight_hh_l{layer}"].T
        P[w_ih : w_ih + wi.size] = wi.ravel()
        P[w_hh : w_hh + wh.size] = wh.ravel()
        if f"bias_ih_l{layer}" in params:
            n = params[f"bias_ih_l{layer}"].size
            P[b_ih : b_ih + n] = params[f"bias_ih_l{layer}"]
            P[b_hh : b_hh + n] = params[f"bias_hh_l{layer}"]
            P[b_sum : b_sum + n] = P[b_ih : b_ih + n] + P[b_hh : b_hh + n]
    if spec[5]:
        wo = params["head.weight"].T
        P[spec[6] : spec[6] + wo.size] = wo.ravel()
        P[spec[7] : spec[7] + params["head.bias"].size] = params["head.bias"]
    return P
