"""Recurrent models: parameters under PyTorch's names, and batch forward passes."""

import numpy as np

from ._validate import as_float_array, check_finite, dtype_of, positive_int
from .compiling import first_use
from .core import backend
from .core.cells import CELLS
from .core.layout import make_spec, pack, param_shapes
from .errors import ConfigError, InputError, StateError


class RecurrentModel:
    """A stack of recurrent layers with an optional linear head.

    Use :class:`RNN`, :class:`GRU` or :class:`LSTM`; they differ only in the
    cell. Parameters are NumPy arrays with the names and shapes of
    ``torch.nn.RNN``/``GRU``/``LSTM`` (``weight_ih_l0`` ...) plus
    ``head.weight`` and ``head.bias`` when ``output_size`` is set.

    Parameters
    ----------
    input_size : int or None
        Features per time step. None leaves the model's sizes open until data
        arrive: a :class:`~streamrnn.Stream` or :class:`~streamrnn.OnlineLearner`
        holding it sets ``input_size`` from the width of the first chunk's inputs
        (a feed's columns) and, unless ``output_size`` is given, a head with one
        output per target (times the loss's quantiles), or none without targets;
        or call :meth:`size`. The weights are drawn then, from ``seed``.
    hidden_size : int
        Units per layer.
    num_layers : int, default 1
        Stacked layers; layer ``k > 0`` reads layer ``k - 1``'s hidden state.
    output_size : int or None, default None
        Width of a linear readout ``y = W h + b`` on the top hidden state.
        Without it the output is the top hidden state itself.
    bias : bool, default True
        Whether the recurrent layers have biases (the head always has one).
    dtype : {"float32", "float64"}, default "float32"
    seed : int, default 0
        Seed for PyTorch's default initialisation: every weight and bias
        uniform on ``[-1/sqrt(hidden_size), 1/sqrt(hidden_size)]``.
    device : {"cpu", "cuda"}, default "cpu"
        Where the model's kernels run (see :meth:`to`). ``"cuda"`` runs forward
        passes, streams, steps, forecasts, gradients and online learning on an
        NVIDIA GPU (``pip install "streamrnn[cuda]"``); the encoder-decoder
        learns on the CPU for now. Not saved with the model: a loaded model runs
        on the CPU until moved.
    """

    _cell = None

    def __init__(
        self,
        input_size=None,
        hidden_size=None,
        num_layers=1,
        output_size=None,
        *,
        bias=True,
        dtype="float32",
        seed=0,
        device="cpu",
    ):
        if hidden_size is None:
            raise ConfigError(f"{type(self).__name__} needs hidden_size, the units per layer")
        self.hidden_size = positive_int(hidden_size, "hidden_size")
        self.num_layers = positive_int(num_layers, "num_layers")
        self.output_size = None if output_size is None else positive_int(output_size, "output_size")
        if not isinstance(bias, (bool, np.bool_)):
            raise ConfigError(f"bias must be True or False, got {bias!r}")
        self.bias = bool(bias)
        self.dtype = np.dtype(dtype_of(dtype))
        try:
            np.random.default_rng(seed)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"seed must be an integer or None, got {seed!r}") from exc
        self.seed = seed
        self.to(device)
        self.input_size = None
        if input_size is not None:
            self.size(input_size, self.output_size)

    @property
    def sized(self):
        """Whether ``input_size`` is set and the weights exist (see :meth:`size`)."""
        return self.input_size is not None

    def size(self, input_size, output_size=None):
        """Set the sizes of a model made with ``input_size=None`` and draw its weights
        from its seed; returns the model.

        Examples
        --------
        >>> import streamrnn
        >>> model = streamrnn.GRU(hidden_size=8)
        >>> model.sized
        False
        >>> model.size(3, output_size=1).state_dict()["weight_ih_l0"].shape
        (24, 3)
        """
        if self.sized:
            raise ConfigError(f"this model's sizes are already set: {self!r}")
        input_size = positive_int(input_size, "input_size")
        output_size = None if output_size is None else positive_int(output_size, "output_size")
        self.input_size, self.output_size = input_size, output_size
        self._spec, self._size = make_spec(
            self._cell,
            self.input_size,
            self.hidden_size,
            self.num_layers,
            self.output_size,
            self.dtype,
        )
        rng = np.random.default_rng(self.seed)
        bound = 1.0 / np.sqrt(self.hidden_size)
        self._params = {
            name: rng.uniform(-bound, bound, size=shape).astype(self.dtype)
            for name, shape in self._shapes().items()
        }
        self._repack()
        return self

    def _require_sizes(self):
        if not self.sized:
            raise ConfigError(
                f"this {type(self).__name__}'s sizes are open (input_size=None): give it to "
                "a Stream or OnlineLearner, which size it from their first data, or call "
                "model.size(input_size, output_size)"
            )

    # -- description -------------------------------------------------------
    @property
    def cell(self):
        """The cell's name: ``"rnn_tanh"``, ``"rnn_relu"``, ``"gru"`` or ``"lstm"``."""
        return self._cell

    @property
    def state_vectors(self):
        """Vectors of state per layer: 2 for LSTM (h and c), else 1."""
        return CELLS[self._cell].states

    @property
    def state_size(self):
        """Numbers of state per series: ``num_layers * state_vectors * hidden_size``."""
        return self.num_layers * self.state_vectors * self.hidden_size

    @property
    def out_features(self):
        """Width of each output row: ``output_size``, or ``hidden_size`` without a head."""
        return self.hidden_size if self.output_size is None else self.output_size

    @property
    def gate_width(self):
        """Gate pre-activations per layer: ``gates * hidden_size``."""
        return CELLS[self._cell].gates * self.hidden_size

    #: Where the model's kernels run: "cpu" or "cuda" (see :meth:`to`).
    device = "cpu"

    def to(self, device):
        """Run this model's kernels on ``device`` (``"cpu"`` or ``"cuda"``) from now on;
        returns the model. The weights and any stream's states stay where they are
        (NumPy arrays): a stream or series holding the model goes on from its state.
        A :class:`~streamrnn.DeviceError` says what is missing when this machine
        cannot run ``device``.

        Examples
        --------
        >>> import streamrnn
        >>> streamrnn.GRU(3, 8).to("cpu").device
        'cpu'
        """
        backend.get(device)  # fails here, not at the first call, on a machine without it
        self.device = device
        return self

    @property
    def _backend(self):
        return backend.get(self.device)

    def _shapes(self):
        return param_shapes(
            self._cell,
            self.input_size,
            self.hidden_size,
            self.num_layers,
            self.output_size,
            self.bias,
        )

    def _config(self):
        return dict(
            input_size=self.input_size,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            output_size=self.output_size,
            bias=self.bias,
            dtype=self.dtype.name,
            seed=self.seed,
        )

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._config().items())
        return f"{type(self).__name__}({args})"

    def clone(self):
        """A fresh model with the same arguments and seed (so the same initial weights),
        on the same device.

        Examples
        --------
        >>> import streamrnn
        >>> streamrnn.RNN(2, 3, seed=4).clone()
        RNN(input_size=2, hidden_size=3, num_layers=1, ..., seed=4, nonlinearity='tanh')
        """
        return type(self)(**self._config()).to(self.device)

    def copy(self):
        """A model with the same arguments and a copy of the current weights."""
        other = self.clone()
        if self.sized:
            other.load_state_dict(self.state_dict())
        return other

    # -- parameters --------------------------------------------------------
    def _repack(self):
        self._P = pack(self._params, self._spec, self._size, self.dtype)

    def _trained(self):
        """Called after the kernels change ``_P`` in place (online learning): the
        PyTorch-named copies are rebuilt when next read, and a device's copy again."""
        self._stale = True
        backend.resident.forget(self._P)

    def _sync(self):
        if self.__dict__.get("_stale"):
            from .core.layout import unpack

            self._params = unpack(self._P, self._spec, self._shapes())
            self._stale = False

    def __getstate__(self):
        self._sync()
        state = self.__dict__.copy()
        state.pop("_P", None)  # rebuilt, aligned, on load
        state.pop("device", None)  # loaded on the CPU, wherever it was saved
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.sized:
            self._repack()

    def state_dict(self):
        """Copies of the parameters, keyed by PyTorch's names."""
        self._require_sizes()
        self._sync()
        return {name: value.copy() for name, value in self._params.items()}

    def load_state_dict(self, state_dict):
        """Replace every parameter. Accepts NumPy arrays or CPU tensors.

        Raises :class:`StateError` naming a missing, unexpected, misshapen or
        non-finite entry; on error the model is left unchanged. Series and
        streams built on the model use the new weights from their next step.

        Examples
        --------
        >>> import numpy as np, streamrnn
        >>> a, b = streamrnn.GRU(2, 3, seed=1), streamrnn.GRU(2, 3, seed=2)
        >>> b.load_state_dict(a.state_dict())
        >>> x = np.ones((4, 2), np.float32)
        >>> bool((a.forward(x)[0] == b.forward(x)[0]).all())
        True
        >>> b.load_state_dict({"weight_ih_l0": np.zeros((9, 2))})
        Traceback (most recent call last):
        ...
        streamrnn.errors.StateError: state_dict does not fit GRU(...): missing ['weight_hh_l0', ...
        """
        self._require_sizes()
        shapes = self._shapes()
        names = list(state_dict)
        missing = [n for n in shapes if n not in state_dict]
        extra = [n for n in names if n not in shapes]
        if missing or extra:
            raise StateError(
                f"state_dict does not fit {self!r}: missing {missing}, "
                f"unexpected {extra}; expected exactly {list(shapes)}"
            )
        new = {}
        for name, shape in shapes.items():
            value = state_dict[name]
            if hasattr(value, "detach"):  # a torch tensor
                value = value.detach().cpu().numpy()
            arr = np.asarray(value)
            if arr.dtype.kind not in "fiu":
                raise StateError(f"{name} must hold real numbers, got dtype {arr.dtype}")
            if arr.shape != shape:
                raise StateError(f"{name} has shape {arr.shape}, expected {shape}")
            with np.errstate(over="ignore"):  # an overflow is reported just below
                arr = np.array(arr, dtype=self.dtype, copy=True)
            if not np.isfinite(arr).all():
                raise StateError(
                    f"{name} has non-finite values (in {self.dtype.name}); "
                    "parameters must be finite"
                )
            new[name] = arr
        self._params = new
        self._stale = False
        self._repack()

    def to_torch(self):
        """The same network as PyTorch modules: ``(rnn, head)``, ``head`` None without one.

        Needs torch; the modules hold this model's weights in its dtype.
        """
        from .adapters.torch import to_torch

        self._require_sizes()
        return to_torch(self)

    # -- state ---------------------------------------------------------------
    def zero_state(self, batch=None):
        """Zero state in PyTorch's layout: ``h`` of shape ``(L, H)``, or
        ``(L, batch, H)``; LSTM gives the pair ``(h, c)``.

        Examples
        --------
        >>> import streamrnn
        >>> streamrnn.GRU(2, 3, num_layers=2).zero_state(batch=5).shape
        (2, 5, 3)
        """
        shape = (self.num_layers, self.hidden_size)
        if batch is not None:
            shape = (self.num_layers, positive_int(batch, "batch", 0), self.hidden_size)
        h = np.zeros(shape, self.dtype)
        return (h, h.copy()) if self.state_vectors == 2 else h

    def _pack_state(self, state, batch):
        """Kernel rows ``(batch, state_size)`` from PyTorch-layout state (copied)."""
        L, H, K = self.num_layers, self.hidden_size, self.state_vectors
        S = np.zeros((1 if batch is None else batch, L * K * H), self.dtype)
        if state is None:
            return S
        parts = state if K == 2 else (state,)
        if K == 2 and not (isinstance(state, (tuple, list)) and len(state) == 2):
            raise StateError("LSTM state must be a pair (h, c)")
        want = (L, H) if batch is None else (L, batch, H)
        for i, part in enumerate(parts):
            name = "hc"[i] if K == 2 else "h"
            arr = np.asarray(part)
            if arr.dtype.kind not in "fiu":
                raise StateError(f"state {name} must hold real numbers, got {arr.dtype}")
            if arr.shape != want:
                raise StateError(f"state {name} has shape {arr.shape}, expected {want}")
            with np.errstate(over="ignore"):  # an overflow is reported just below
                arr = arr.astype(self.dtype)
            if not np.isfinite(arr).all():
                raise StateError(f"state {name} has non-finite values (in {self.dtype.name})")
            arr = arr.reshape(L, -1, H)
            for layer in range(L):
                base = layer * K * H + i * H
                S[:, base : base + H] = arr[layer]
        return S

    def _unpack_state(self, S, batched):
        """PyTorch-layout state from kernel rows."""
        L, H, K = self.num_layers, self.hidden_size, self.state_vectors
        B = S.shape[0]
        view = S.reshape(B, L, K, H)
        parts = [view[:, :, i, :].transpose(1, 0, 2).copy() for i in range(K)]
        if not batched:
            parts = [p[:, 0, :] for p in parts]
        return tuple(parts) if K == 2 else parts[0]

    # -- running -------------------------------------------------------------
    def _check_rows(self, x, name="x"):
        if x.shape[-1] != self.input_size:
            raise InputError(
                f"{name} has {x.shape[-1]} features in its last axis, expected "
                f"input_size={self.input_size}"
            )

    def _sequence(self, x):
        """``x`` checked as ``(T, input_size)`` or ``(T, batch, input_size)``:
        ``(x, batched, T, batch)``."""
        self._require_sizes()
        x = as_float_array(x, self.dtype, "x")
        if x.ndim not in (2, 3):
            raise InputError(
                f"x must have shape (T, input_size) or (T, batch, input_size), got {x.shape}"
            )
        self._check_rows(x)
        check_finite(x, "x", ("time step", "series", "column") if x.ndim == 3 else None)
        batched = x.ndim == 3
        return x, batched, x.shape[0], (x.shape[1] if batched else 1)

    def forward(self, x, state=None):
        """Run the network over a sequence.

        Parameters
        ----------
        x : array, shape (T, input_size) or (T, batch, input_size)
            Time first, as PyTorch's default ``batch_first=False``.
        state : optional
            Initial state as returned by :meth:`zero_state` (zeros if None).

        Returns
        -------
        y : array, shape (T, out_features) or (T, batch, out_features)
        state : the state after the last step, in the layout of ``state``.

        Examples
        --------
        >>> import numpy as np, streamrnn
        >>> model = streamrnn.GRU(input_size=3, hidden_size=8, output_size=1, seed=1)
        >>> x = np.ones((5, 3), dtype=np.float32)
        >>> y, h = model.forward(x)
        >>> y.shape, h.shape
        ((5, 1), (1, 8))
        >>> y2, _ = model.forward(x[2:], state=model.forward(x[:2])[1])
        >>> bool((y2 == y[2:]).all())
        True
        """
        x, batched, T, B = self._sequence(x)
        S = self._pack_state(state, B if batched else None)
        X = x.reshape(T * B, self.input_size)
        Y = np.empty((T * B, self.out_features), self.dtype)
        if T > 0:
            order = np.arange(T * B).reshape(T, B).T.ravel()
            self._run(X, order, np.arange(B) * T, np.full(B, T), np.arange(B), S, Y)
        y = Y.reshape((T, B, self.out_features) if batched else (T, self.out_features))
        return y, self._unpack_state(S, batched)

    __call__ = forward

    def gradients(self, x, y, state=None, loss="mse"):
        """Loss over a sequence and its gradient with respect to every parameter.

        Backpropagation through all the steps of ``x``, with the kernels that
        online learning uses; the results match PyTorch's autograd.

        Parameters
        ----------
        x : array, shape (T, input_size) or (T, batch, input_size)
        y : array, shape (T, targets) or (T, batch, targets)
            Labels of each step's output; NaN where a step has no label.
        state : optional
            Initial state, as for :meth:`forward`.
        loss : str or streamrnn.losses.Loss, default "mse"
            The mean over labeled entries (see :mod:`streamrnn.losses`).

        Returns
        -------
        loss : float
        grads : dict of arrays, keyed like :meth:`state_dict`
        state : the state after the last step, as :meth:`forward` returns it

        Examples
        --------
        >>> import numpy as np, streamrnn
        >>> model = streamrnn.LSTM(2, 4, output_size=1, dtype="float64", seed=0)
        >>> x, y = np.ones((6, 2)), np.full((6, 1), 0.5)
        >>> value, grads, _ = model.gradients(x, y, loss="huber")
        >>> round(value, 6), grads["weight_hh_l0"].shape
        (0.023875, (16, 4))
        """
        from .core.layout import unpack
        from .losses import as_loss

        loss = as_loss(loss)
        x, batched, T, B = self._sequence(x)
        n_targets = loss.targets(self.out_features)
        y = as_float_array(y, self.dtype, "y")
        want = (T, B, n_targets) if batched else (T, n_targets)
        if y.shape != want:
            raise InputError(
                f"y has shape {y.shape}, expected {want}: one label row per step "
                f"({n_targets} targets for {self.out_features} outputs with {loss!r})"
            )
        if np.isinf(y).any():
            raise InputError("y holds inf; labels must be finite (NaN where a step has none)")
        loss.check_targets(y, self.out_features, "y")
        S = self._pack_state(state, B if batched else None)
        run = self._backend
        bspec, PT = run.back_weights(self._spec, self._P)
        G = np.zeros_like(self._P)
        kind, par = loss.kernel_args()
        xs = np.ascontiguousarray(x.reshape(T, B, self.input_size).transpose(1, 0, 2))
        ys = np.ascontiguousarray(y.reshape(T, B, n_targets).transpose(1, 0, 2))
        lossc = np.zeros((B, 2))
        s_end = np.empty(B * self.state_size, self.dtype)
        run.gradients(self._spec, self._P, bspec, PT, B, S.ravel(), xs.ravel(), T, ys.ravel(), kind,
                      par, G, lossc, s_end)  # fmt: skip
        if T:
            S = s_end.reshape(B, self.state_size)
        total, count = 0.0, 0
        for b in range(B):  # window by window, as the learner adds them
            total += lossc[b, 0]
            count += int(lossc[b, 1])
        if count:
            G /= G.dtype.type(count)
        grads = unpack(G, self._spec, self._shapes())
        return (float(total / count) if count else 0.0), grads, self._unpack_state(S, batched)

    def _run(self, X, order, starts, lens, slots, S, Y):
        """Advance series ``q`` over rows ``order[starts[q]:starts[q] + lens[q]]``
        with state ``S[slots[q]]``; series must come longest first."""
        with first_use("inference", self):
            self._backend.forward(self._spec, self._P, X, order, starts, lens, slots, S, Y)


class GRU(RecurrentModel):
    """Gated recurrent unit, as ``torch.nn.GRU`` (gates r, z, n).

    Examples
    --------
    >>> import streamrnn
    >>> streamrnn.GRU(4, 16, num_layers=2).state_dict()["weight_hh_l1"].shape
    (48, 16)
    """

    _cell = "gru"


class LSTM(RecurrentModel):
    """Long short-term memory, as ``torch.nn.LSTM`` (gates i, f, g, o; state (h, c)).

    Examples
    --------
    >>> import streamrnn
    >>> h, c = streamrnn.LSTM(4, 16).zero_state(batch=3)
    >>> h.shape, c.shape
    ((1, 3, 16), (1, 3, 16))
    """

    _cell = "lstm"


class RNN(RecurrentModel):
    """Elman network, as ``torch.nn.RNN``: ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``.

    ``nonlinearity`` is ``"tanh"`` (default) or ``"relu"``; other arguments
    are those of :class:`RecurrentModel`.

    Examples
    --------
    >>> import streamrnn
    >>> streamrnn.RNN(2, 3, nonlinearity="relu").cell
    'rnn_relu'
    """

    def __init__(
        self,
        input_size=None,
        hidden_size=None,
        num_layers=1,
        output_size=None,
        *,
        nonlinearity="tanh",
        bias=True,
        dtype="float32",
        seed=0,
    ):
        if nonlinearity not in ("tanh", "relu"):
            raise ConfigError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self._cell = f"rnn_{nonlinearity}"
        super().__init__(
            input_size, hidden_size, num_layers, output_size, bias=bias, dtype=dtype, seed=seed
        )

    def _config(self):
        return dict(super()._config(), nonlinearity=self.nonlinearity)


#: The model class of each cell family (:data:`streamrnn.core.cells.FAMILIES`).
MODELS = {"rnn": RNN, "gru": GRU, "lstm": LSTM}


def model_for_cell(cell, **kwargs):
    """Build the model class that holds ``cell`` (a name from :data:`CELLS`)."""
    if cell not in CELLS:
        raise ConfigError(f"unknown cell {cell!r}; expected one of {list(CELLS)}")
    if CELLS[cell].family == "rnn":
        kwargs["nonlinearity"] = cell[len("rnn_") :]
    return MODELS[CELLS[cell].family](**kwargs)
