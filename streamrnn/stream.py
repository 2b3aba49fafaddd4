"""Streaming state: one series (:class:`Series`) or many keyed series (:class:`Stream`)."""

import collections
import operator

import numpy as np
import pandas as pd
import pyarrow as pa

import feeds

from . import relative as rel
from ._keys import as_keys, as_times
from ._validate import as_float_array, check_finite, plain, positive_int
from .compiling import first_use
from .core.backend import resident
from .errors import (
    ConfigError,
    InputError,
    KeyTypeError,
    StateError,
    TimeOrderError,
    UnknownKeyError,
)


def _feedback_pairs(model, feedback):
    """``(m, 2)`` int64 array of (output index, input index) pairs."""
    O, I = model.out_features, model.input_size
    if feedback is None:
        if O != I:
            return np.zeros((0, 2), np.int64)
        return np.stack([np.arange(O), np.arange(I)], axis=1).astype(np.int64)
    pairs = feedback.items() if isinstance(feedback, dict) else feedback
    out = []
    for pair in pairs:
        try:
            o, i = (operator.index(v) for v in pair)
        except (TypeError, ValueError):
            raise ConfigError(
                f"feedback must map output index -> input index, got entry {pair!r}"
            ) from None
        if not (0 <= o < O and 0 <= i < I):
            raise ConfigError(
                f"feedback pair ({o}, {i}) is out of range: outputs 0..{O - 1}, inputs 0..{I - 1}"
            )
        out.append((o, i))
    if len({i for _, i in out}) != len(out):
        raise ConfigError("feedback feeds two outputs into the same input")
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def rollout(model, S, Xlast, has_input, fb, horizon, future, labels, change=False):
    """Shared body of :meth:`Series.forecast` and :meth:`Stream.forecast`; with
    ``change``, the fed-back outputs are changes added to their inputs' levels."""
    horizon = positive_int(horizon, "horizon")
    n, I = S.shape[0], model.input_size
    if future is None:
        future = np.zeros((n, 0, I), model.dtype)
        held = np.setdiff1d(np.arange(I), fb[:, 1])
        if horizon > 1 and held.size and not has_input.all():
            who = plain(labels[int(np.flatnonzero(~has_input)[0])])
            raise StateError(
                f"series {who!r} has seen no input, so inputs {held.tolist()} cannot be "
                "held at their last value; pass future=..."
            )
    else:
        future = as_float_array(future, model.dtype, "future")
        if future.ndim == 2 and n == 1:
            future = future[None]
        want = (n, horizon - 1, I)
        if future.shape != want:
            raise InputError(
                f"future has shape {future.shape}, expected {want}: for each series, "
                "the inputs of the horizon - 1 steps after the next one"
            )
        checked = future.copy()
        checked[:, :, fb[:, 1]] = 0  # fed-back inputs may hold anything, NaN included
        check_finite(checked, "future", ("series", "step", "column"))
    Y = np.empty((n, horizon, model.out_features), model.dtype)
    flags = np.full((fb.shape[0], 1), int(change), np.int64)
    with first_use("inference", model):
        model._backend.forecast(model._spec, model._P, S, Xlast, np.hstack([fb, flags]), future, Y)
    return Y


def _units(transforms):
    """How targets with ``transforms`` (see ``feeds.Chunk.transforms``) are read."""
    return f"transformed {tuple(transforms)}" if any(transforms) else "untransformed"


def sizes_open(holder, model, feed, args):
    """Whether ``model``'s sizes are open: then ``holder`` (a stream or learner) keeps its
    arguments (``args``, its ``__init__``'s locals) and is set up by its first data."""
    if getattr(model, "sized", True):
        return False
    if feed is not None and not isinstance(feed, feeds.Feed):
        raise ConfigError(f"feed must be a feeds.Feed, got {type(feed).__name__}")
    holder.model = model
    holder.feed = feed
    holder._n = 0
    holder._sized_by = {k: v for k, v in args.items() if k not in ("self", "model", "__class__")}
    return True


class _NoDataYet(StateError, AttributeError):
    """What a stream or learner whose model's sizes are open has not got yet."""


_Rows = collections.namedtuple(
    "_Rows", "x keys kind times time_kind slot_rows new_keys order seg slots last_rows"
)


def through_feed(feed, make, take):
    """``take(make())``; the feed's changes are undone when either raises, so that its
    rows count only if the model takes them."""
    before = feed._snapshot()
    try:
        return take(make())
    except Exception:
        feed._restore(before)
        raise


class Series:
    """The state of one series, advanced a step or a chunk at a time.

    The fastest way to feed one stream a row at a time: :meth:`step` does no
    work in Python beyond checking the row's type and shape.

    Parameters
    ----------
    model : RNN, GRU or LSTM
    state : optional
        Initial state in the layout of ``model.zero_state()``; zeros if None.
    feedback : dict or sequence of pairs, optional
        ``{output index: input index}`` for :meth:`forecast`; by default every
        output feeds the input of the same index when the widths agree.

    Examples
    --------
    >>> import numpy as np, streamrnn
    >>> model = streamrnn.GRU(input_size=2, hidden_size=4, output_size=2, seed=0)
    >>> series = streamrnn.Series(model)
    >>> series.step(np.array([0.5, -1.0], np.float32)).shape
    (2,)
    >>> series.forecast(horizon=3).shape
    (3, 2)
    """

    def __init__(self, model, state=None, feedback=None, feed=None):
        self.model = model
        self._fb = _feedback_pairs(model, feedback)
        if feed is not None and not isinstance(feed, feeds.Feed):
            raise ConfigError(f"feed must be a feeds.Feed, got {type(feed).__name__}")
        self.feed = feed
        self._key = None  # the key of the rows a feed gave, if they had one
        D, I, O = model.state_size, model.input_size, model.out_features
        GH = model.gate_width
        # one buffer: state | last input | output | scratch
        self._buf = np.zeros(D + I + O + 2 * GH, model.dtype)
        self._buf[:D] = model._pack_state(state, None)[0]
        self._x_shape = (I,)
        self._has_input = False
        self._bind()

    def _bind(self):
        """Views into the buffer (rebuilt after unpickling, which copies views)."""
        D, I, O = self.model.state_size, self.model.input_size, self.model.out_features
        self._y = self._buf[D + I : D + I + O]
        self._step = self.model._backend.stepper(self.model._spec, self.model._P.dtype)
        self._device = self.model.device  # the step's, until the model moves (model.to)

    def __getstate__(self):
        state = self.__dict__.copy()
        del state["_y"], state["_step"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._bind()

    @property
    def state(self):
        """Current state in the layout of ``model.zero_state()`` (a copy)."""
        D = self.model.state_size
        return self.model._unpack_state(self._buf[None, :D], batched=False)

    @state.setter
    def state(self, value):
        self._buf[: self.model.state_size] = self.model._pack_state(value, None)[0]

    def reset(self):
        """Zero the state and forget the last input."""
        self._buf[:] = 0
        self._has_input = False

    def step(self, x):
        """Advance one step with input row ``x`` (shape ``(input_size,)``); return the output.

        On a non-finite input nothing changes and :class:`InputError` names
        the column.
        """
        model = self.model
        flags = getattr(x, "flags", None)
        if (
            type(x) is not np.ndarray
            or x.dtype != model.dtype
            or x.shape != self._x_shape
            or not (flags.c_contiguous and flags.writeable)  # else a new compile
        ):
            x = as_float_array(x, model.dtype, "x")
            if not x.flags.writeable:
                x = x.copy()
            if x.shape != self._x_shape:
                raise InputError(f"x must have shape {self._x_shape} for one step, got {x.shape}")
        if model.device != self._device:
            self._bind()
        bad = self._step(model._spec, model._P, x, self._buf)
        if bad >= 0:
            raise InputError(
                f"x has a non-finite value {x[bad]} in column {bad}; inputs must be finite"
            )
        self._has_input = True
        return self._y.copy()

    def run(self, xs):
        """Advance over a chunk ``xs`` of shape ``(T, input_size)``; return ``(T, out)`` outputs.

        ``xs`` may also be a :class:`feeds.Chunk`, a DataFrame or an Arrow table
        of one series' rows, which go through the series' :attr:`feed` (one
        series, the model's dtype, default policies, made on first use); outputs
        standing for scaled targets come back in data units.

        Examples
        --------
        >>> import numpy as np, streamrnn
        >>> series = streamrnn.Series(streamrnn.LSTM(1, 4, seed=0))
        >>> xs = np.linspace(0, 1, 10, dtype=np.float32)[:, None]
        >>> y = np.concatenate([series.run(xs[:3]), series.run(xs[3:])])
        >>> bool((y == streamrnn.Series(series.model).run(xs)).all())
        True
        """
        model = self.model
        if isinstance(xs, (feeds.Chunk, pd.DataFrame, pa.Table, pa.RecordBatch)):
            return self._run_chunk(xs)
        xs = as_float_array(xs, model.dtype, "xs")
        if xs.ndim != 2:
            raise InputError(f"xs must have shape (T, {model.input_size}), got {xs.shape}")
        model._check_rows(xs, "xs")
        check_finite(xs, "xs")
        T = xs.shape[0]
        Y = np.empty((T, model.out_features), model.dtype)
        if T == 0:
            return Y
        D, I = model.state_size, model.input_size
        S = self._buf[None, :D]
        with first_use("inference", model):
            model._backend.forward(
                model._spec, model._P, xs, np.arange(T), np.zeros(1, np.int64), np.array([T]),
                np.zeros(1, np.int64), S, Y,
            )  # fmt: skip
        self._buf[D : D + I] = xs[-1]
        self._y[:] = Y[-1]
        self._has_input = True
        return Y

    def _run_chunk(self, data):
        if isinstance(data, feeds.Chunk):
            return self._run_from(data)
        if self.feed is None:
            self.feed = feeds.Feed(feeds.Schema(key=False), dtype=self.model.dtype)
        return through_feed(self.feed, lambda: self.feed(data), self._run_from)

    def flush(self):
        """Release the rows the feed holds back (open grid bins, the last of duplicate
        times) and advance over them; returns their outputs. Call it at the end of a
        stream fed tables: until then such rows have no outputs."""
        if self.feed is None:
            return self._run_from(None)
        return through_feed(self.feed, self.feed.flush, self._run_from)

    def _run_from(self, chunk):
        if chunk is None or not len(chunk):
            return np.empty((0, self.model.out_features), self.model.dtype)
        if chunk.keys is not None:
            keys = pd.unique(np.asarray(chunk.keys))
            if len(keys) > 1 or (self._key is not None and keys[0] != self._key):
                seen = [k for k in (self._key, *keys) if k is not None]
                raise InputError(
                    f"a Series takes the rows of one series; got keys {seen[:3]}; "
                    "use a Stream for many series"
                )
        Y = self.run(chunk.x)
        if chunk.keys is not None:  # only once the rows are taken
            self._key = plain(keys[0])
        loc, scale = chunk.y_loc, chunk.y_scale
        if scale is None or scale.shape[1] != self.model.out_features:
            return Y
        return (Y * scale + loc).astype(self.model.dtype, copy=False)

    def output(self):
        """The model output for the current state (what the last step returned)."""
        return self.forecast(1)[0]

    def forecast(self, horizon, future=None):
        """Roll the model ``horizon`` steps ahead without changing the state.

        Row ``k`` of the result predicts step ``t + 1 + k``, where ``t`` is the
        last step taken. Predictions are fed back into the inputs they stand for
        (``feedback``); other inputs are ``future[k - 1]`` when given (shape
        ``(horizon - 1, input_size)``) or held at their last value.
        """
        D, I = self.model.state_size, self.model.input_size
        S = self._buf[None, :D].copy()
        X = self._buf[None, D : D + I].copy()
        has = np.array([self._has_input])
        Y = rollout(self.model, S, X, has, self._fb, horizon, future, ["series"])[0]
        feed = self.feed
        if feed is None or feed.scale is None or len(feed.targets) != self.model.out_features:
            return Y
        loc, scale = feed.target_scaling(None if self._key is None else [self._key])
        return (Y * scale + loc).astype(self.model.dtype, copy=False)


class Stream:
    """Hidden states of many series, keyed by an integer or string id.

    A key's state starts at zero the first time it is seen. Each call to
    :meth:`update` takes a chunk of rows of many series interleaved (long
    format); each series' rows are applied in the order given, and times, when
    given, must strictly increase within each key across the whole stream.
    Outputs and states do not depend on how the stream is cut into chunks.

    Parameters
    ----------
    model : RNN, GRU or LSTM
    feedback : dict or sequence of pairs, optional
        ``{output index: input index}`` used by :meth:`forecast`.
    feed : feeds.Feed, optional
        What tables given to :meth:`update` go through.
    relative : {None, "last"}
        ``"last"``: the outputs are changes from each target's last observed
        value (see :mod:`streamrnn.relative`); the stream returns ``anchor +
        scale * output``. Targets come from the chunks' ``y`` or ``update``'s
        ``y``. None: the outputs are the forecasts.
    minimum : float, optional
        A lower bound applied to every forecast (0 for a target that cannot be
        negative).
    quantiles : sequence of float, optional
        The quantile levels of each target's outputs (``len(quantiles)``
        consecutive outputs per target): returned rearranged so that they never
        cross.
    horizon : int, default 1
        Steps ahead the outputs forecast; with ``relative``, 0 anchors each row
        on the value before it.

    Examples
    --------
    >>> import numpy as np, streamrnn
    >>> model = streamrnn.LSTM(input_size=1, hidden_size=8, output_size=1, seed=0)
    >>> stream = streamrnn.Stream(model)
    >>> y = stream.update(["a", "b", "a"], [1, 1, 2], np.ones((3, 1)))
    >>> y.shape, sorted(stream.keys())
    ((3, 1), ['a', 'b'])
    >>> stream.forecast(["a"], horizon=4).shape
    (1, 4, 1)

    Errors are typed and name the key and row:

    >>> stream.update(["a"], [2], np.ones((1, 1)))
    Traceback (most recent call last):
    ...
    streamrnn.errors.TimeOrderError: key 'a': time 2 at row 0 is not after its previous time 2; ...
    """

    def __init__(self, model, feedback=None, feed=None, relative=None, minimum=None,
                 quantiles=None, horizon=1):  # fmt: skip
        if sizes_open(self, model, feed, locals()):
            return
        self.model = model
        self._fb = _feedback_pairs(model, feedback)
        if feed is not None and not isinstance(feed, feeds.Feed):
            raise ConfigError(f"feed must be a feeds.Feed, got {type(feed).__name__}")
        self.feed = feed
        self._set_forecasting(relative, minimum, quantiles, horizon)
        self._n = 0
        self._key_kind = None
        self._time_kind = None
        self._index = pd.Index([])
        self._lookup = None  # key -> slot, built when needed
        self._seg_of = np.full(0, -1, np.int64)  # scratch for grouping rows by series
        self._allocate(0)

    #: Per target, the transform of the feed its chunks came from (see
    #: ``feeds.Feed(transform=...)``): None before the first chunk with targets.
    _transforms = None

    def __getstate__(self):
        if "_S" in self.__dict__:
            resident.on_host(self._S)  # a device's newer states go with it
        return self.__dict__.copy()

    def __getattr__(self, name):  # only for what __init__ has not set
        if name.startswith("__") or "_sized_by" not in self.__dict__:
            raise AttributeError(name)
        raise _NoDataYet(
            f"this {type(self).__name__} has seen no data yet: its model's sizes are open "
            "until the first chunk, and its series, forecasts and counts with them"
        )

    def _outputs_for(self, model):
        """Outputs a forecast holds."""
        return model.out_features

    def _outputs_wanted(self, targets, args):
        """Outputs of a model sized from data with ``targets`` targets: one per target
        and quantile, or none (the hidden state) without targets."""
        quantiles = args.get("quantiles")
        return targets * (len(quantiles) if quantiles else 1) or None

    def _size_from(self, x, y, columns=None, targets=None):
        """Size the model from the first data (``x``, ``y`` or their widths) and set the
        stream up, once; then check that the data fit the model, naming the columns."""
        deferred = "_sized_by" in self.__dict__
        if not deferred and columns is None:
            return  # sized, and no column names to check against
        model = self.model
        x_width = np.shape(x)[-1] if np.ndim(x) else 0
        if deferred:
            args = self.__dict__.pop("_sized_by")
            args["feed"] = self.feed  # made on first use, perhaps
            n_targets = 0 if y is None else (np.shape(y)[-1] if np.ndim(y) > 1 else 1)
            out = model.output_size
            if out is None:
                out = self._outputs_wanted(n_targets, args)
            model.size(x_width, out)
            type(self).__init__(self, model, **args)
        if columns is not None and x_width != model.input_size:
            raise InputError(
                f"the chunk has {x_width} input columns {list(columns)}, but the model takes "
                f"input_size={model.input_size}; build the model for these columns (or leave "
                f"its sizes open: {type(model).__name__}(hidden_size={model.hidden_size}))"
            )

    def _set_forecasting(self, relative, minimum, quantiles, horizon):
        """The rules that turn outputs into forecasts (:mod:`streamrnn.relative`)."""
        self.relative = rel.check_mode(relative)
        self.minimum = rel.check_minimum(minimum)
        self.horizon = positive_int(horizon, "horizon", 0)
        if quantiles is not None:
            quantiles = tuple(float(q) for q in quantiles)
            if not quantiles or not all(0 < q < 1 for q in quantiles):
                raise ConfigError(f"quantiles must be levels between 0 and 1, got {quantiles}")
        self.quantiles = quantiles
        K = len(quantiles) if quantiles else 1
        O = self._outputs_for(self.model)
        if O % K:
            raise ConfigError(
                f"the model has {O} outputs, which is no whole number of targets times "
                f"{K} quantiles"
            )
        self._T = O // K  # targets the outputs stand for
        self._tcol = np.arange(O) // K  # the target of each output
        if quantiles:
            q = np.array(quantiles)
            mid = np.flatnonzero(q == 0.5)
            point = int(mid[0]) if mid.size else int(np.argsort(q)[(K - 1) // 2])
            self._qorder = np.argsort(q, kind="stable")
        else:
            point, self._qorder = 0, None
        self._point = np.arange(self._T) * K + point  # each target's point forecast

    # -- storage ---------------------------------------------------------------
    def _allocate(self, capacity):
        m = self.model
        self._alast = np.full((capacity, self._T), np.nan)  # last observed targets
        self._keys = np.empty(capacity, object if self._key_kind != "int" else np.int64)
        self._S = np.zeros((capacity, m.state_size), m.dtype)
        self._xlast = np.zeros((capacity, m.input_size), m.dtype)
        self._has_input = np.zeros(capacity, bool)
        self._tlast = np.zeros(capacity, np.float64 if self._time_kind == "float" else np.int64)
        self._has_time = np.zeros(capacity, bool)

    #: Arrays with one entry per slot: grown, and compacted on remove, together.
    _SLOT_ARRAYS = ("_keys", "_S", "_xlast", "_has_input", "_tlast", "_has_time", "_alast")

    def _grow(self, need):
        resident.on_host(self._S)  # a device's newer states, before they are copied
        old = {name: getattr(self, name) for name in self._SLOT_ARRAYS}
        self._allocate(max(need, 2 * len(self._keys), 16))
        n = self._n
        for name, arr in old.items():
            getattr(self, name)[:n] = arr[:n]

    def _add_keys(self, new_keys):
        n, k = self._n, len(new_keys)
        if n + k > len(self._keys):
            self._grow(n + k)
        self._keys[n : n + k] = new_keys
        self._S[n : n + k] = 0
        resident.wrote_rows(self._S, n, n + k)
        self._has_input[n : n + k] = False
        self._has_time[n : n + k] = False
        self._alast[n : n + k] = np.nan
        self._n = n + k
        self._index = pd.Index(self._keys[: self._n])
        self._lookup = None  # key -> slot, built when needed
        return np.arange(n, n + k)

    def _check_key_kind(self, kind):
        if kind is None or self._key_kind is None or kind == self._key_kind:
            return
        raise KeyTypeError(
            f"this stream's keys are {self._key_kind}s, got {kind} keys; "
            "use one key type for the whole stream"
        )

    def _slots(self, keys, create=False):
        """Slots of ``keys`` (one-dimensional array); unknown keys raise or are created."""
        slots = self._index.get_indexer(keys) if self._n else np.full(len(keys), -1)
        missing = slots < 0
        if missing.any():
            if not create:
                key = plain(keys[int(np.flatnonzero(missing)[0])])
                raise UnknownKeyError(
                    f"unknown key {key!r}; the stream holds {self._n} keys "
                    "(see keys()); update or set_state creates a key"
                )
            slots = slots.copy()
            slots[missing] = self._add_keys(keys[missing])
        return slots.astype(np.int64, copy=False)

    def _one_key(self, key):
        keys, kind = as_keys([key], 1)
        self._check_key_kind(kind)
        return keys, kind

    # -- keys ------------------------------------------------------------------
    def __len__(self):
        return self._n

    def __contains__(self, key):
        try:
            keys, kind = as_keys([key], 1)
        except InputError:
            return False
        if kind != self._key_kind or not self._n:
            return False
        return bool(self._index.get_indexer(keys)[0] >= 0)

    def keys(self):
        """The keys held, in the order they were first seen."""
        return self._keys[: self._n].tolist()

    def get_state(self, key):
        """State of ``key`` in the layout of ``model.zero_state()`` (a copy)."""
        keys, _ = self._one_key(key)
        slot = self._slots(keys)[0]
        resident.on_host(self._S)
        return self.model._unpack_state(self._S[slot : slot + 1], batched=False)

    def set_state(self, key, state):
        """Set the state of ``key``, creating the key if it is new."""
        row = self.model._pack_state(state, None)[0]
        keys, kind = self._one_key(key)
        self._key_kind = self._key_kind or kind
        slot = self._slots(keys, create=True)[0]
        resident.on_host(self._S)
        self._S[slot] = row
        resident.wrote_rows(self._S, slot, slot + 1)

    def reset(self, key=None):
        """Zero the state of ``key`` (every key if None); keys stay, times are kept."""
        resident.on_host(self._S)
        if key is None:
            self._S[: self._n] = 0
            self._has_input[: self._n] = False
            resident.wrote_rows(self._S, 0, self._n)
            return
        keys, _ = self._one_key(key)
        slot = self._slots(keys)[0]
        self._S[slot] = 0
        self._has_input[slot] = False
        resident.wrote_rows(self._S, slot, slot + 1)

    def remove(self, key):
        """Forget ``key``: its state, last input and last time."""
        keys, _ = self._one_key(key)
        slot = self._slots(keys)[0]
        keep = np.ones(self._n, bool)
        keep[slot] = False
        n = self._n - 1
        resident.on_host(self._S)
        resident.forget(self._S)  # its rows move: a device copy is made again when needed
        for name in self._SLOT_ARRAYS:
            arr = getattr(self, name)
            arr[:n] = arr[: self._n][keep]
        self._n = n
        self._index = pd.Index(self._keys[:n])
        self._lookup = None  # key -> slot, built when needed

    # -- streaming ---------------------------------------------------------------
    def update(self, keys, times=None, x=None, outputs="all", y=None):
        """Advance every series by its rows in the chunk.

        Takes either arrays ``(keys, times, x)`` or one chunk: a
        :class:`feeds.Chunk`, a long-format pandas DataFrame, or an Arrow table
        or record batch. Tables go through the stream's :attr:`feed` (made with
        default options, in the model's dtype, on first use). When the chunk's
        targets are scaled and the model has one output per target, outputs come
        back in data units. A feed that holds rows back (a grid, or
        ``duplicates="last"``) gives outputs for the rows it releases, which may
        be fewer than came in; :meth:`flush` releases the rest.

        Parameters
        ----------
        keys : array-like of int or str, length N; or a chunk
        times : array-like of length N, or None
            Integers, floats or datetimes; must strictly increase within each
            key, across chunks too. None skips the time check.
        x : array, shape (N, input_size)
        outputs : {"all", "last"}
            ``"all"`` returns one output row per input row (per row of the
            feed's chunk when a table goes through the feed), in input order.
            ``"last"`` returns ``(keys, y)``: each key of the chunk once, in
            order of first appearance, with the output at its last row.
        y : array, shape (N, targets), optional
            The rows' observed targets (NaN where missing), for a ``relative``
            stream's anchors; a chunk's own targets are used when it has them.

        An empty chunk changes nothing and returns empty outputs. On error
        nothing is changed.

        Examples
        --------
        >>> import numpy as np, streamrnn
        >>> stream = streamrnn.Stream(streamrnn.GRU(2, 4, output_size=1, seed=0))
        >>> keys = np.array([10, 20, 10, 30])
        >>> times = np.array(["2024-01-01T00", "2024-01-01T00", "2024-01-01T01",
        ...                   "2024-01-01T00"], dtype="datetime64[h]")
        >>> stream.update(keys, times, np.ones((4, 2))).shape
        (4, 1)
        >>> last_keys, y = stream.update([20, 20], None, np.zeros((2, 2)), outputs="last")
        >>> last_keys, y.shape
        ([20], (1, 1))
        """
        if outputs not in ("all", "last"):
            raise ConfigError(f"outputs must be 'all' or 'last', got {outputs!r}")
        if x is None:
            if times is not None or not isinstance(
                keys, (feeds.Chunk, pd.DataFrame, pa.Table, pa.RecordBatch)
            ):
                raise InputError(
                    "update takes keys, times and x, or one chunk: a feeds.Chunk, a pandas "
                    f"DataFrame or an Arrow table; got {type(keys).__name__} and no x"
                )
            return self._update_chunk(keys, outputs)
        return self._update_arrays(keys, times, x, outputs, y, None, None)

    def _update_arrays(self, keys, times, x, outputs, y, loc, scale):
        """:meth:`update` of arrays; ``loc`` and ``scale`` (N, targets) turn outputs
        standing for scaled targets back into data units (None: no scaling)."""
        self._size_from(x, y)
        rows = self._rows(keys, times, x)
        model = self.model
        if rows is None:
            empty = np.empty((0, model.out_features), model.dtype)
            return empty if outputs == "all" else ([], empty)
        y = self._observed(y, len(rows.x))
        Y = np.empty((len(rows.x), model.out_features), model.dtype)
        self._commit_keys(rows)
        self._advance(rows, Y)
        if self.relative is None:
            Y = self._in_units(Y, loc, scale)
        else:
            obs, A, s, last = self._anchors(rows, y, loc, scale)
            Y = self._from_changes(rows, Y, A, s)
            self._alast[rows.slots] = last
        Y = self._bounded(Y)
        self._commit_rows(rows)
        if outputs == "all":
            return Y
        return rows.keys[rows.order[rows.seg[:-1]]].tolist(), Y[rows.last_rows]

    # -- outputs into forecasts (streamrnn.relative) ------------------------------
    def _observed(self, y, N):
        """``update``'s targets checked: None, or float64 (N, targets) with NaN gaps."""
        if y is None:
            return None
        y = as_float_array(y, np.float64, "y")
        if y.ndim == 1 and self._T == 1:
            y = y[:, None]
        if y.shape != (N, self._T):
            raise InputError(
                f"y has shape {y.shape}, expected {(N, self._T)}: one row of {self._T} "
                "target(s) per input row"
            )
        if np.isinf(y).any():
            row = int(np.flatnonzero(np.isinf(y).any(axis=1))[0])
            raise InputError(f"y holds inf at row {row}; targets must be finite (NaN if missing)")
        return y

    def _in_units(self, Y, loc, scale):
        """Outputs standing for scaled targets, in data units (``Y`` is (N, outputs),
        or (N, steps, outputs) for multi-step outputs)."""
        if scale is None or scale.shape[1] != self._T:
            return Y
        scale, loc = scale[:, self._tcol], loc[:, self._tcol]
        if Y.ndim == 3:
            scale, loc = scale[:, None], loc[:, None]
        return (Y * scale + loc).astype(Y.dtype, copy=False)

    def _anchors(self, rows, y, loc, scale, groups=None):
        """What a relative forecast starts from, per row in series order (``rows.order``).

        Returns ``(obs, anchor, scale, last)``: the observed targets in data units
        (NaN where missing), the anchors (the last observed value at or before the
        row; before it for ``horizon=0``; the running mean, or 0, before any) and
        the scales, each (N, targets) float64, and each series' last observed
        targets after its rows (to commit once the rows are taken). ``groups`` are
        :func:`streamrnn.relative.groups_of` the rows, when known.
        """
        N, T, order = len(rows.x), self._T, rows.order
        if groups is None:
            groups = rel.groups_of(rows)
        obs = np.full((N, T), np.nan) if y is None else np.asarray(y, np.float64)[order]
        if scale is not None and y is not None:
            obs = obs * scale[order] + loc[order]
        seed = self._alast[rows.slots]
        filled, last = rel.forward_fill(seed, groups, obs)
        if self.horizon == 0:  # the row's own target is what is forecast
            before = np.empty_like(filled)
            before[1:] = filled[:-1]
            before[rows.seg[:-1]] = seed
            filled = before
        if scale is None:
            s = np.ones((N, T))
            base = 0.0
        else:
            s = scale[order].astype(np.float64)
            base = loc[order].astype(np.float64)
        anchor = np.where(np.isnan(filled), base, filled)
        return obs, anchor, s, last

    def _from_changes(self, rows, Y, anchor, s):
        """Forecasts ``anchor + s * Y`` in input order, from anchors in series order."""
        j = self._tcol
        A = np.empty_like(anchor)
        S = np.empty_like(s)
        A[rows.order] = anchor
        S[rows.order] = s
        return (A[:, j] + Y * S[:, j]).astype(self.model.dtype, copy=False)

    def _gains_of(self, slots):
        """The shrinkage gain of each key's next forecast (ones: no shrinkage)."""
        return np.ones((len(slots), self._T))

    def _blend_of(self, slots):
        """What a rollout's first step blends in, per key: None, or the blend weights
        ``(n, T)``, a one-step AR's weights ``(n, T, p + 1)`` and last ``p`` values
        ``(n, T, p)``, latest first (see :mod:`streamrnn.autoregression`)."""
        return None

    def _spreads_of(self, slots):
        """The calibrated spread of each key's next quantiles (ones: as the network's)."""
        return np.ones((len(slots), self._T))

    def _take_transforms(self, chunk):
        """Note the transforms of the targets of ``chunk`` (whose targets the outputs
        stand for): the forecasts are turned back from them. A stream takes its
        targets in one set of units."""
        given = tuple(chunk.transforms)
        if self._transforms is None:
            self._transforms = given
        elif given != self._transforms:
            raise InputError(
                f"the chunk's targets {list(chunk.targets)} are {_units(given)}, but this "
                f"{type(self).__name__} has learned and forecast them {_units(self._transforms)}; "
                "feed it from feeds with the same transform"
            )

    def _bounded(self, Y, rearranged=False):
        """Quantiles rearranged so that they never cross (unless they are already),
        then turned back from the targets' transforms into the data's units, then the
        lower bound."""
        if self._qorder is not None and not rearranged:
            Y = rel.sort_quantiles(Y, self._qorder, len(self._qorder))
        if self._transforms and any(self._transforms):
            back = feeds.untransform(Y, [self._transforms[j] for j in self._tcol])
            Y = back.astype(self.model.dtype, copy=False)
        if self.minimum is not None:
            Y = np.maximum(Y, self.minimum).astype(self.model.dtype, copy=False)
        return Y

    def _rollout(self, Y, slots, keys):
        """Forecasts ``(n, horizon, outputs)`` of :meth:`forecast` from the model's
        outputs: in data units, from each key's level for a relative stream."""
        feed = self.feed
        scaled = feed is not None and feed.scale is not None and len(feed.targets) == self._T
        j = self._tcol
        if self.relative is None:
            if scaled:
                loc, scale = feed.target_scaling(keys)
                Y = (Y * scale[:, None, j] + loc[:, None, j]).astype(self.model.dtype, copy=False)
            return self._bounded(Y)
        n, T = len(slots), self._T
        loc, scale = feed.target_scaling(keys) if scaled else (np.zeros((n, T)), np.ones((n, T)))
        level = np.where(np.isnan(self._alast[slots]), loc, self._alast[slots])
        gain, spread = self._gains_of(slots), self._spreads_of(slots)
        blend = self._blend_of(slots)
        out = np.empty(Y.shape)
        for k in range(Y.shape[1]):  # each step's change starts from the level before it
            point = Y[:, k, self._point]
            made = gain * point
            if blend is not None:  # towards the AR, fed the levels before
                weight, w, past = blend
                ar = w[:, :, 0].copy()
                for a in range(past.shape[2]):
                    ar += w[:, :, a + 1] * past[:, :, a]
                towards = (ar - level) / scale - made
                made = made + weight * np.where(np.isnan(towards), 0.0, towards)
            change = made[:, j] + spread[:, j] * (Y[:, k] - point[:, j])
            out[:, k] = level[:, j] + scale[:, j] * change
            level = level + scale * made
            if blend is not None:
                past = np.concatenate([level[:, :, None], past[:, :, :-1]], axis=2)
                blend = weight, w, past
        return self._bounded(out.astype(self.model.dtype))

    def _rows(self, keys, times, x):
        """Checked rows of a chunk, grouped by series (None when there are none);
        changes nothing."""
        model = self.model
        x = as_float_array(x, model.dtype, "x")
        if x.ndim != 2:
            raise InputError(f"x must have shape (N, input_size={model.input_size}), got {x.shape}")
        model._check_rows(x)
        N = x.shape[0]
        keys, kind = as_keys(keys, N)
        if N == 0:
            if times is not None and np.size(times) != 0:
                raise InputError(f"times has {np.size(times)} entries but x has 0 rows")
            return None
        self._check_key_kind(kind)
        time_kind = None
        if times is not None:
            times, time_kind = as_times(times, N)
            if self._time_kind is not None and time_kind != self._time_kind:
                raise InputError(
                    f"times are {time_kind} but earlier chunks had {self._time_kind} times; "
                    "use one kind of time for the whole stream"
                )
        check_finite(x, "x", keys=keys)

        slot_rows, new_keys = self._slot_rows(keys, kind)
        # group rows by slot, each series' rows in arrival order
        need = self._n + (0 if new_keys is None else len(new_keys))
        if self._seg_of.shape[0] < need:
            self._seg_of = np.full(max(need, 2 * self._seg_of.shape[0]), -1, np.int64)
        order, seg, slots = self.model._backend.group_rows(slot_rows, self._seg_of)
        if times is not None:
            self._check_times(keys, slots, times, time_kind, order, seg)
        return _Rows(x, keys, kind, times, time_kind, slot_rows, new_keys, order, seg, slots,
                     order[seg[1:] - 1])  # fmt: skip

    def _commit_keys(self, rows):
        self._key_kind = self._key_kind or rows.kind
        if rows.new_keys is not None:
            self._add_keys(rows.new_keys)

    def _advance(self, rows, Y):
        """Run the model over the rows from the series' states (outputs into ``Y``)."""
        counts = np.diff(rows.seg)
        order, seg, slots = rows.order, rows.seg, rows.slots
        resident.keep(self._S)  # a device may keep its copy of the states between chunks
        if counts.min() == counts.max():  # e.g. one row per key: already longest first
            self.model._run(rows.x, order, seg[:-1], counts, slots, self._S, Y)
        else:
            longest = np.argsort(-counts, kind="stable")
            self.model._run(rows.x, order, seg[:-1][longest], counts[longest], slots[longest],
                            self._S, Y)  # fmt: skip

    def _commit_rows(self, rows):
        """Remember each series' last input and time."""
        slots, last_rows, times = rows.slots, rows.last_rows, rows.times
        self._xlast[slots] = rows.x[last_rows]
        self._has_input[slots] = True
        if times is not None:
            if self._time_kind is None:
                self._time_kind = rows.time_kind
                self._tlast = self._tlast.astype(times.dtype)
            self._tlast[slots] = times[last_rows]
            self._has_time[slots] = True

    def _update_chunk(self, data, outputs):
        if isinstance(data, feeds.Chunk):
            return self._update_from(data, outputs)
        if self.feed is None:
            self.feed = feeds.Feed(dtype=self.model.dtype)
        return through_feed(
            self.feed, lambda: self.feed(data), lambda c: self._update_from(c, outputs)
        )

    def flush(self, outputs="all"):
        """Release the rows the feed holds back (open grid bins, the last of duplicate
        times) and advance over them; returns what :meth:`update` returns for them.
        Call it at the end of a stream fed tables: until then such rows have no
        outputs."""
        if outputs not in ("all", "last"):
            raise ConfigError(f"outputs must be 'all' or 'last', got {outputs!r}")
        if self.feed is None:
            return self._update_from(None, outputs)
        return through_feed(self.feed, self.feed.flush, lambda c: self._update_from(c, outputs))

    def _update_from(self, chunk, outputs):
        if chunk is None or not len(chunk):
            empty = np.empty((0, self.model.out_features), self.model.dtype)
            return empty if outputs == "all" else ([], empty)
        self._size_from(chunk.x, chunk.y, chunk.columns, chunk.targets)
        keys = chunk.keys if chunk.keys is not None else np.zeros(len(chunk), np.int64)
        y = chunk.y if chunk.y is not None and chunk.y.shape[1] == self._T else None
        if y is not None:
            self._take_transforms(chunk)
        return self._update_arrays(keys, chunk.times, chunk.x, outputs, y, chunk.y_loc,
                                   chunk.y_scale)  # fmt: skip

    def _slot_rows(self, keys, kind):
        """State slot of each row; keys new to the stream get the slots they will get
        on commit, in order of first appearance. Returns ``(slots, new keys or None)``."""
        if isinstance(keys, pd.Categorical):  # map the categories, then take by code
            codes = keys.codes.astype(np.int64)
            uniq = keys.categories.to_numpy(dtype=np.int64 if kind == "int" else object)
        else:
            codes, uniq = None, keys
        if codes is None and len(uniq) <= 64 and self._n:  # small chunks: skip pandas
            if getattr(self, "_lookup", None) is None:
                self._lookup = {k: i for i, k in enumerate(self._keys[: self._n].tolist())}
            get = self._lookup.get
            slots = np.array([get(k, -1) for k in uniq.tolist()], np.int64)
        else:
            slots = self._index.get_indexer(uniq) if self._n else np.full(len(uniq), -1)
        slots = slots.astype(np.int64)
        if codes is not None:
            slots = slots[codes]
        new_rows = slots < 0
        if not new_rows.any():
            return slots, None
        new_codes, firsts = pd.factorize(keys[new_rows] if codes is None else codes[new_rows])
        new_keys = np.asarray(firsts, dtype=keys.dtype) if codes is None else uniq[firsts]
        slots[new_rows] = self._n + new_codes
        return slots, new_keys

    def _check_times(self, keys, slots, times, time_kind, order, seg):
        """Times must rise within each key's rows and past its previous time.

        ``slots`` are the keys' slots in segment order; slots from ``self._n``
        on belong to keys this chunk creates.
        """

        def fmt(value):
            if time_kind.startswith("datetime"):
                return np.datetime_as_string(np.datetime64(int(value), "ns"))
            return value.item()

        t = times[order]
        starts = np.zeros(len(t), bool)
        starts[seg[:-1]] = True
        bad = np.flatnonzero((t[1:] <= t[:-1]) & ~starts[1:]) + 1  # no subtraction: no overflow
        if bad.size:
            pos = int(bad[0])
            row, prev_row = int(order[pos]), int(order[pos - 1])
            raise TimeOrderError(
                f"key {plain(keys[row])!r}: time {fmt(times[row])} at row {row} is not after "
                f"time {fmt(times[prev_row])} at row {prev_row}; times must strictly increase "
                "within a key"
            )
        known = slots < self._n
        if known.any():
            old = slots[known]
            first = order[seg[:-1][known]]
            late = self._has_time[old] & (times[first] <= self._tlast[old])
            if late.any():
                q = int(np.flatnonzero(late)[0])
                row = int(first[q])
                raise TimeOrderError(
                    f"key {plain(keys[row])!r}: time {fmt(times[row])} at row {row} is not "
                    f"after its previous time {fmt(self._tlast[old[q]])}; times must strictly "
                    "increase within a key"
                )

    def output(self, keys):
        """Model outputs ``(len(keys), out)`` for the current states of ``keys``."""
        return self.forecast(keys, 1)[:, 0]

    def forecast(self, keys, horizon, future=None):
        """Roll each key ``horizon`` steps ahead from its current state, changing nothing.

        Returns ``(len(keys), horizon, out)``; entry ``[q, k]`` predicts step
        ``t + 1 + k`` of key ``q``, ``t`` being its last step. Predictions are
        fed back into the inputs they stand for (``feedback``); other inputs come
        from ``future[q, k - 1]`` when given (shape
        ``(len(keys), horizon - 1, input_size)``) or are held at their last value.

        Examples
        --------
        >>> import numpy as np, streamrnn
        >>> model = streamrnn.GRU(3, 8, output_size=1, seed=0)
        >>> stream = streamrnn.Stream(model, feedback={0: 0})   # output 0 is input 0
        >>> _ = stream.update(["a", "b"], None, np.ones((2, 3)))
        >>> known = np.zeros((2, 5, 3))          # inputs 1 and 2 over the next 5 steps
        >>> stream.forecast(["a", "b"], horizon=6, future=known).shape
        (2, 6, 1)
        """
        if np.ndim(keys) != 1:
            raise InputError(f"keys must be a sequence of keys, got {keys!r}")
        arr, kind = as_keys(keys, len(keys))
        self._check_key_kind(kind)
        slots = self._slots(arr)
        resident.on_host(self._S)
        Y = rollout(
            self.model,
            self._S[slots],
            self._xlast[slots],
            self._has_input[slots],
            self._fb,
            horizon,
            future,
            arr,
            change=self.relative is not None,
        )
        return self._rollout(Y, slots, arr)
