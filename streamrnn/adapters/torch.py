"""Moving networks between streamrnn and PyTorch (torch is imported only here)."""

import numpy as np

from ..core.cells import CELLS
from ..errors import ConfigError

_MODES = {cell.torch_mode: name for name, cell in CELLS.items()}


def require_torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is in the test extra
        raise ImportError(
            "this needs PyTorch: pip install 'streamrnn[test]' or pip install torch"
        ) from exc
    return torch


def from_torch(rnn, head=None):
    """A streamrnn model holding the weights of a PyTorch recurrent module.

    Parameters
    ----------
    rnn : torch.nn.RNN, torch.nn.GRU or torch.nn.LSTM
        Unidirectional, without LSTM projections; ``batch_first`` does not
        matter (weights are the same) and dropout does not apply to inference.
    head : torch.nn.Linear, optional
        A readout on the top hidden state; becomes the model's head.

    Examples
    --------
    >>> import torch, numpy as np, streamrnn
    >>> net = torch.nn.GRU(3, 8, num_layers=2, dtype=torch.float64)
    >>> model = streamrnn.from_torch(net)
    >>> x = np.random.default_rng(0).standard_normal((6, 3))
    >>> y, _ = model.forward(x)
    >>> ref, _ = net(torch.from_numpy(x))
    >>> bool(np.allclose(y, ref.detach().numpy(), atol=1e-12))
    True
    """
    from ..models import model_for_cell

    mode = getattr(rnn, "mode", None)
    if mode not in _MODES:
        raise ConfigError(f"rnn must be a torch.nn.RNN, GRU or LSTM, got {type(rnn).__name__}")
    if rnn.bidirectional:
        raise ConfigError("bidirectional modules cannot stream; use bidirectional=False")
    if getattr(rnn, "proj_size", 0):
        raise ConfigError("LSTM with proj_size > 0 is not supported; use proj_size=0")
    weight = rnn.weight_ih_l0
    dtype = {"torch.float32": "float32", "torch.float64": "float64"}.get(str(weight.dtype))
    if dtype is None:
        raise ConfigError(f"rnn weights are {weight.dtype}; convert to float32 or float64")
    output_size = None
    if head is not None:
        if not hasattr(head, "in_features") or head.in_features != rnn.hidden_size:
            raise ConfigError(f"head must be a torch.nn.Linear with in_features={rnn.hidden_size}")
        if head.bias is None:
            raise ConfigError("head must have a bias (torch.nn.Linear(..., bias=True))")
        output_size = head.out_features
    model = model_for_cell(
        _MODES[mode],
        input_size=rnn.input_size,
        hidden_size=rnn.hidden_size,
        num_layers=rnn.num_layers,
        output_size=output_size,
        bias=rnn.bias,
        dtype=dtype,
    )
    state = {k: v.detach().cpu().numpy() for k, v in rnn.state_dict().items()}
    if head is not None:
        state["head.weight"] = head.weight.detach().cpu().numpy()
        state["head.bias"] = head.bias.detach().cpu().numpy()
    model.load_state_dict(state)
    return model


def to_torch(model):
    """PyTorch modules ``(rnn, head)`` with ``model``'s weights (``head`` may be None)."""
    torch = require_torch()
    dtype = torch.float64 if model.dtype == np.float64 else torch.float32
    common = dict(
        input_size=model.input_size,
        hidden_size=model.hidden_size,
        num_layers=model.num_layers,
        bias=model.bias,
        dtype=dtype,
    )
    if model.cell == "gru":
        rnn = torch.nn.GRU(**common)
    elif model.cell == "lstm":
        rnn = torch.nn.LSTM(**common)
    else:
        rnn = torch.nn.RNN(nonlinearity=model.cell[4:], **common)
    params = model.state_dict()
    rnn.load_state_dict(
        {k: torch.from_numpy(v) for k, v in params.items() if not k.startswith("head.")}
    )
    head = None
    if model.output_size is not None:
        head = torch.nn.Linear(model.hidden_size, model.output_size, dtype=dtype)
        head.load_state_dict(
            {
                "weight": torch.from_numpy(params["head.weight"]),
                "bias": torch.from_numpy(params["head.bias"]),
            }
        )
    return rnn, head
