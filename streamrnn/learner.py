"""Online learning: a :class:`~streamrnn.Stream` whose model learns while the stream flows."""

import pickle
import types
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa

import feeds
from feeds._warn import user_level

from . import autoregression as ar_model
from . import checkpoint
from . import relative as rel
from ._keys import as_keys
from ._validate import as_float_array, positive_int
from .compiling import first_use
from .core import backend
from .core.layout import make_back_spec, trainable_ranges, unpack
from .errors import ConfigError, InputError, StateError
from .losses import Pinball, as_loss
from .optim import Adam, Optimizer, WarmUp
from .stream import Stream, rollout, sizes_open, through_feed

_TABLES = (feeds.Chunk, pd.DataFrame, pa.Table, pa.RecordBatch)

#: The forecasting defaults (the ``streamrnn backfill`` command has the same):
#: windows of 16 steps closing every 8, a Huber loss (robust to spikes: quadratic
#: within one target standard deviation of the change, linear beyond) and Adam at
#: 3e-3 after a linear warm-up from a tenth of it over 100 updates.
DEFAULT_TBPTT = (8, 16)
DEFAULT_LOSS = "huber"
DEFAULT_LR = 3e-3
DEFAULT_WARMUP = 100
DEFAULT_AR = 7  # lags of the online AR blended into forecasts


def default_optimizer():
    """The optimizer a learner gets by default: ``Adam(lr=3e-3)`` warmed up over 100
    updates (:class:`~streamrnn.optim.WarmUp`)."""
    return Adam(lr=DEFAULT_LR, schedule=WarmUp(DEFAULT_WARMUP))


#: Per-slot arrays of a learner with independent weights per key.
_PER_KEY_ARRAYS = ("_Pk", "_PTk", "_Gk", "_M1k", "_M2k", "_tk", "_pendk", "_lossk", "_countk")


def _tbptt(value):
    try:
        k1, k2 = value
    except (TypeError, ValueError):
        raise ConfigError(f"tbptt must be a pair (k1, k2) of integers, got {value!r}") from None
    k1 = positive_int(k1, "tbptt k1")
    k2 = positive_int(k2, "tbptt k2")
    if k2 < k1:
        raise ConfigError(f"tbptt needs k2 >= k1 (backpropagate at least k1 steps), got {value!r}")
    return k1, k2


class OnlineLearner(Stream):
    """Learn from a stream of many keyed series with truncated backpropagation
    through time, predicting each row before learning from it.

    The model's weights are shared by every series (or, with ``per_key=True``,
    each key trains its own copy). Every ``k1`` steps of a series, a window
    closes: the series backpropagates through its last ``k2`` steps (across
    chunk edges: each series keeps its recent inputs, targets and states) with
    the loss of its last ``k1`` steps. After every ``batch`` windows, counted in
    the order their closing rows arrive, the gradients are combined in a fixed
    order and the optimizer updates the weights; rows before that are predicted
    with the old weights, rows after with the new. **The weights learned from
    a stream are the same bit for bit however it is cut into chunks** (see
    :mod:`streamrnn.core.tbptt` for the rule).

    Parameters
    ----------
    model : RNN, GRU or LSTM
        Trained in place: ``model.state_dict()`` follows the learning.
    tbptt : (int, int), default (8, 16)
        ``(k1, k2)``: a window closes every ``k1`` steps and reaches ``k2 >= k1``
        steps back.
    loss : str or streamrnn.losses.Loss, default "huber"
    optimizer : streamrnn.optim.Optimizer, default :func:`default_optimizer`
        ``Adam(lr=3e-3)`` with a linear warm-up over its first 100 updates.
    horizon : int, default 1
        The output at step ``t`` is labeled by the targets of step ``t + horizon``
        (held per series until that row arrives): 1 learns next-step forecasts
        when the targets are the series themselves; 0 labels each row with its
        own targets.
    batch : int, default 1
        Windows per update. With ``n`` series in step, ``batch=n`` makes one
        update from all of them, as a mini-batch of ``n`` sequences.
    per_key : bool, default False
        Give every key its own copy of the weights (starting from the model's)
        and its own optimizer state: one small model per series, trained in
        parallel. ``batch`` then counts each key's own windows.
        :meth:`key_model` returns a key's model.
    relative : {"last", None}, default "last" for forecasts
        ``"last"``: the network forecasts the change from each target's last
        observed value, in the feed's scale of the target (see
        :mod:`streamrnn.relative`): an untrained network forecasts persistence
        and learns what it misses. None: the network forecasts the level. The
        default is ``"last"`` when the outputs stand for the targets (one per
        target, or one per target and quantile), else None.
    minimum : float, optional
        A lower bound for every forecast and quantile (0 for a target that
        cannot be negative); learning is unchanged.
    calibrate : bool, default True
        With ``relative="last"`` and a :class:`~streamrnn.losses.Pinball` loss:
        spread each key's quantiles around their median by a factor that
        follows the interval's misses, so that the share of labels outside the
        outer quantiles tends to the nominal one (see
        :mod:`streamrnn.relative`). Learning is unchanged.
    shrink : bool, default True
        With ``relative="last"``: multiply the network's forecast change by
        each key's gain in [0, 1], the least-squares gain of the realised
        changes on the forecast ones over the key's past labels (see
        :mod:`streamrnn.relative`), so that a network whose changes are noise
        forecasts close to persistence. Learning is unchanged.
    ar : int or None, default 7
        With ``relative="last"``: run an online linear autoregression of each
        key's targets on their last ``ar`` values (recursive least squares,
        :mod:`streamrnn.autoregression`) beside the network, and move each
        forecast towards the AR's by each key's blend weight in [0, 1], learned
        from their past errors like the shrinkage gain (see
        :mod:`streamrnn.relative`); None: no AR. Learning is unchanged.
    seasonal : sequence of int, optional
        With ``relative="last"``: the input columns that hold each target's
        seasonal naive forecast (its value one season before the row the
        output forecasts: a feed's lag of ``season - horizon`` rows, scaled
        like the target), one per target. Each forecast then also moves
        towards it, after the AR, by a weight learned the same way. The
        backfill sets it from its lagged target inputs. Learning is unchanged.
    feedback, feed :
        As for :class:`~streamrnn.Stream`.

    Notes
    -----
    Quantiles (a :class:`~streamrnn.losses.Pinball` loss) come back
    rearranged so that they never cross (see :mod:`streamrnn.relative`).

    Examples
    --------
    >>> import numpy as np, streamrnn
    >>> model = streamrnn.GRU(1, 8, output_size=1, seed=0)
    >>> learner = streamrnn.OnlineLearner(model, tbptt=(4, 8), horizon=1)
    >>> wave = np.sin(np.arange(64) / 3.0)[:, None]
    >>> y = learner.predict_learn(np.zeros(64, int), None, wave, wave)
    >>> y.shape, learner.counts["updates"]
    ((64, 1), 15)

    The same stream cut anywhere learns the same weights:

    >>> other = streamrnn.OnlineLearner(streamrnn.GRU(1, 8, output_size=1, seed=0),
    ...                                 tbptt=(4, 8), horizon=1)
    >>> for part in np.array_split(np.arange(64), 5):
    ...     _ = other.learn(np.zeros(len(part), int), None, wave[part], wave[part])
    >>> all((other.model.state_dict()[k] == v).all() for k, v in model.state_dict().items())
    True
    """

    _SLOT_ARRAYS = Stream._SLOT_ARRAYS + (
        "_aring",
        "_oring",
        "_gain",
        "_arst",
        "_arseen",
        "_bring",
        "_blend",
        "_sring",
        "_sblend",
        "_cwidth",
        "_cring",
        "_cseen",
        "_ring",
        "_ring_row",
        "_steps",
        "_done",
        "_vsince",
        "_ssince",
    )

    def __init__(
        self,
        model,
        tbptt=DEFAULT_TBPTT,
        loss=DEFAULT_LOSS,
        optimizer=None,
        horizon=1,
        batch=1,
        per_key=False,
        feedback=None,
        feed=None,
        relative="default",
        minimum=None,
        shrink=True,
        calibrate=True,
        ar=DEFAULT_AR,
        seasonal=None,
    ):
        args = dict(locals())
        self.tbptt = _tbptt(tbptt)
        self.loss = as_loss(loss)
        self.horizon = positive_int(horizon, "horizon", 0)
        self.batch = positive_int(batch, "batch")
        if not isinstance(per_key, (bool, np.bool_)):
            raise ConfigError(f"per_key must be True or False, got {per_key!r}")
        self.per_key = bool(per_key)
        if self.per_key:
            self._SLOT_ARRAYS = type(self)._SLOT_ARRAYS + _PER_KEY_ARRAYS
        if optimizer is None:
            optimizer = default_optimizer()
        if not isinstance(optimizer, Optimizer):
            raise ConfigError(
                f"optimizer must be a streamrnn.optim optimizer (SGD, Adam, AdamW), "
                f"got {optimizer!r}"
            )
        self.optimizer = optimizer
        if sizes_open(self, model, feed, args):  # the options above are known; the rest waits
            return
        self._n_targets = self.loss.targets(self._outputs_for(model))
        k1, k2 = self.tbptt
        self._C = k2 + self.horizon + 1  # ring length: steps a window may reach back
        self._ring_width = model.input_size + self._n_targets + model.state_size
        self._PT_size = make_back_spec(model._spec, model.dtype)[1]
        quantiles = self.loss.quantiles if isinstance(self.loss, Pinball) else None
        self._stands = stands = self._stands_for_targets(model)
        if relative == "default":
            relative = "last" if stands else None
        if not stands and (relative is not None or minimum is not None):
            raise ConfigError(
                f"relative and minimum apply to outputs that stand for the targets; the "
                f"{self._outputs_for(model)} outputs of this model under {self.loss!r} do "
                f"not (pass relative=None)"
            )
        if not isinstance(shrink, (bool, np.bool_)):
            raise ConfigError(f"shrink must be True or False, got {shrink!r}")
        self.shrink = bool(shrink) and relative is not None
        if not isinstance(calibrate, (bool, np.bool_)):
            raise ConfigError(f"calibrate must be True or False, got {calibrate!r}")
        self.calibrate = bool(calibrate) and relative is not None and quantiles is not None
        if ar is not None:
            ar = positive_int(ar, "ar")
        self.ar = ar if relative is not None else None
        self.seasonal = self._seasonal_columns(seasonal, model) if relative is not None else None
        super().__init__(model, feedback=feedback, feed=feed, relative=relative,
                         minimum=minimum, quantiles=quantiles, horizon=self.horizon)  # fmt: skip
        size = model._P.shape[0]
        # With biases, the optimizer can sweep the whole buffer: padding has zero
        # gradient and state, so it stays zero; the derived b_ih + b_hh is rebuilt.
        self._segs = (
            np.array([[0, size]], np.int64)
            if model.bias
            else trainable_ranges(model._spec, model.bias)
        )
        slots = optimizer.slots
        self._M1 = np.zeros(size if slots >= 1 else 0, model.dtype)
        self._M2 = np.zeros(size if slots >= 2 else 0, model.dtype)
        self._t = np.zeros(2, np.int64)
        self._LG = np.zeros((backend.LANES, size), model.dtype)
        self._lane_loss = np.zeros(backend.LANES)
        self._lane_count = np.zeros(backend.LANES, np.int64)
        self._lane_used = np.zeros(backend.LANES, np.int64)
        self._pending = 0
        self._counts = np.zeros(4, np.int64)
        self._bind()

    def _outputs_for(self, model):
        """Outputs the loss scores."""
        return model.out_features

    def _outputs_wanted(self, targets, args):
        loss = as_loss(args.get("loss", DEFAULT_LOSS))
        return targets * (len(loss.quantiles) if isinstance(loss, Pinball) else 1) or None

    def _stands_for_targets(self, model):
        """Whether the outputs are values of the targets (or their quantiles)."""
        O = self._outputs_for(model)
        if self.loss.name == "cross_entropy":
            return False
        if isinstance(self.loss, Pinball):
            return O == self._n_targets * len(self.loss.quantiles)
        return O == self._n_targets

    def _new_outputs(self, n):
        return np.empty((n, self.model.out_features), self.model.dtype)

    def _bind(self):
        """Buffers rebuilt from the weights: never saved."""
        m = self.model
        self._bspec, self._PT = m._backend.back_weights(m._spec, m._P)
        self._P_seen = m._P
        self._scratch = m._backend.lane_scratch(m._spec, self.tbptt[1], m._P)

    # -- storage -------------------------------------------------------------
    def _allocate(self, capacity):
        super()._allocate(capacity)
        if self.__dict__.get("per_key"):
            m = self.model
            size = m._P.shape[0]
            self._Pk = np.zeros((capacity, size), m.dtype)
            self._PTk = np.zeros((capacity, self._PT_size), m.dtype)
            self._Gk = np.zeros((capacity, size), m.dtype)
            slots = self.optimizer.slots
            self._M1k = np.zeros((capacity, size if slots >= 1 else 0), m.dtype)
            self._M2k = np.zeros((capacity, size if slots >= 2 else 0), m.dtype)
            self._tk = np.zeros((capacity, 1), np.int64)
            self._pendk = np.zeros(capacity, np.int64)
            self._lossk = np.zeros((capacity, 2))
            self._countk = np.zeros((capacity, 4), np.int64)
        self._ring = np.zeros((capacity, self._C, self._ring_width), self.model.dtype)
        self._ring_row = np.zeros((capacity, self._C), np.int64)  # chunk row of a pending step
        # a relative learner's anchors and scales of each series' last `horizon` rows
        lag = self.horizon if self.relative is not None else 0
        self._aring = np.full((capacity, lag, 2 * self._T), np.nan)
        # ... the network's point changes of those rows, and the shrinkage gains' sums
        lag = lag if self.__dict__.get("shrink") else 0
        self._oring = np.full((capacity, lag, self._T), np.nan)
        self._gain = np.zeros((capacity, self._T, 4))
        self._allocate_blends(capacity)
        # ... and the calibration's log spreads, the intervals issued, the rows seen
        lag = self.horizon if self.__dict__.get("calibrate") else 0
        self._cwidth = np.zeros((capacity, self._T))
        self._cring = np.full((capacity, lag, self._T, 2), np.nan)
        self._cseen = np.zeros(capacity, np.int64)
        self._steps = np.zeros(capacity, np.int64)  # steps stored
        self._done = np.zeros(capacity, np.int64)  # steps run forward
        self._vsince = np.full(capacity, -1, np.int64)  # update count when ...
        self._ssince = np.zeros(capacity, np.int64)  # ... this step and later were run

    def _allocate_blends(self, capacity):
        """The blends' per-key arrays: the online AR's state and rows seen, the point
        changes of the network (shrunk) and of the AR made for the last ``horizon``
        rows, the AR blend's sums, and the same two of the seasonal naive blend."""
        p = self.__dict__.get("ar")
        T = self._T
        if p:
            self._arst = ar_model.fresh(capacity, T, p, max(self.horizon, 1))
        else:
            self._arst = np.zeros((capacity, T, 0))
        self._arseen = np.zeros(capacity, np.int64)
        self._bring = np.full((capacity, self.horizon if p else 0, 2 * T), np.nan)
        self._blend = np.zeros((capacity, T, 4))
        seasonal = self.__dict__.get("seasonal") is not None
        self._sring = np.full((capacity, self.horizon if seasonal else 0, 2 * T), np.nan)
        self._sblend = np.zeros((capacity, T, 4))

    def _restart(self, slots):
        """Histories of ``slots`` start again from their current states."""
        m = self.model
        self._steps[slots] = 0
        self._done[slots] = 0
        self._vsince[slots] = -1
        at_state = m.input_size + self._n_targets
        self._ring[slots, 0, :at_state] = 0  # no input or targets seen since
        self._ring[slots, 0, at_state:] = self._S[slots]

    def _add_keys(self, new_keys):
        slots = super()._add_keys(new_keys)
        self._aring[slots] = np.nan
        self._oring[slots] = np.nan
        self._gain[slots] = 0
        if self.ar:
            self._arst[slots] = ar_model.fresh(1, self._T, self.ar, max(self.horizon, 1))
        self._arseen[slots] = 0
        self._bring[slots] = np.nan
        self._blend[slots] = 0
        self._sring[slots] = np.nan
        self._sblend[slots] = 0
        self._cwidth[slots] = 0
        self._cring[slots] = np.nan
        self._cseen[slots] = 0
        self._restart(slots)
        if self.per_key:  # a new key starts from the model's weights, untrained
            self._Pk[slots] = self.model._P
            self._PTk[slots] = self._PT
            for name in _PER_KEY_ARRAYS[2:]:
                getattr(self, name)[slots] = 0
        return slots

    def set_state(self, key, state):
        super().set_state(key, state)
        keys, _ = self._one_key(key)
        self._restart(self._slots(keys))

    def reset(self, key=None):
        super().reset(key)
        if key is None:
            self._restart(np.arange(self._n))
        else:
            keys, _ = self._one_key(key)
            self._restart(self._slots(keys))

    def __getstate__(self):
        self._sync_model()
        state = super().__getstate__()
        for name in ("_bspec", "_PT", "_scratch", "_P_seen"):
            state.pop(name, None)  # absent while the model's sizes are open
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "_sized_by" in state:
            return
        gain = state.get("_gain")
        if gain is not None and gain.shape[-1] == 2:  # saved before the gains' t-test
            self._gain = np.concatenate([gain, np.zeros(gain.shape)], axis=-1)
        if "ar" not in state or "seasonal" not in state:  # saved before the blends
            self.ar = state.get("ar")
            self.seasonal = state.get("seasonal")
            self._allocate_blends(len(self._keys))
        if self.per_key:  # the slot arrays of this version
            self._SLOT_ARRAYS = type(self)._SLOT_ARRAYS + _PER_KEY_ARRAYS
        self._bind()

    def _sync_model(self):
        """The model's PyTorch-named parameters from the weights being learned."""
        self.model._sync()

    # -- public ----------------------------------------------------------------
    @property
    def counts(self):
        """``updates`` applied, ``skipped`` (non-finite loss or gradient: the weights
        were kept), ``labels`` learned from, ``windows`` closed."""
        counts = self._counts
        if self.per_key:
            counts = self._countk[: self._n].sum(axis=0)
        u, s, lab, w = (int(v) for v in counts)
        return {"updates": u, "skipped": s, "labels": lab, "windows": w}

    def predict(self, keys, times=None, x=None, outputs="all"):
        """Advance the series and return their outputs without learning.

        As :meth:`Stream.update`. The series' histories start again after these
        rows: later windows do not reach back over rows that were only predicted.
        """
        return self.update(keys, times, x, outputs)

    def learn(self, keys, times=None, x=None, y=None):
        """Learn from a chunk: ``(keys, times, x, y)`` arrays or one chunk (a
        :class:`feeds.Chunk`, DataFrame or Arrow table, whose targets are the labels).
        Returns nothing; see :meth:`predict_learn`."""
        self.predict_learn(keys, times, x, y)

    def predict_learn(self, keys, times=None, x=None, y=None):
        """Predict every row, then learn from it (prequential): the output of each
        row comes from the weights before any update that its label takes part in.

        Parameters
        ----------
        keys, times, x :
            As for :meth:`Stream.update`; or one chunk in ``keys``.
        y : array, shape (N, targets)
            Targets of each row (NaN where missing). The output at a series' step
            ``t`` learns from the targets of its step ``t + horizon``.

        Returns
        -------
        array (N, outputs): each row's output, in data units when the feed scales
        the targets.
        """
        if x is None:
            if times is not None or y is not None or not isinstance(keys, _TABLES):
                raise InputError(
                    "predict_learn takes keys, times, x and y, or one chunk: a feeds.Chunk, "
                    f"a pandas DataFrame or an Arrow table; got {type(keys).__name__} and no x"
                )
            if isinstance(keys, feeds.Chunk):
                return self._learn_from(keys)
            if self.feed is None:
                self.feed = feeds.Feed(dtype=self.model.dtype)
            return through_feed(self.feed, lambda: self.feed(keys), self._learn_from)
        return self._learn_arrays(keys, times, x, y)

    def flush(self, outputs="all"):
        """Release the rows the feed holds back and learn from them (see
        :meth:`Stream.flush`); returns their outputs."""
        if outputs not in ("all", "last"):
            raise ConfigError(f"outputs must be 'all' or 'last', got {outputs!r}")
        if self.feed is None:
            return self._new_outputs(0)
        return through_feed(self.feed, self.feed.flush, self._learn_from)

    def _learn_from(self, chunk):
        if chunk is None or not len(chunk):
            return self._new_outputs(0)
        if chunk.y is None:
            raise InputError(
                "the chunk has no targets to learn from; name them in feeds.Schema(targets=[...])"
            )
        self._size_from(chunk.x, chunk.y, chunk.columns)
        if chunk.y.shape[1] != self._n_targets:
            raise InputError(
                f"the chunk has {chunk.y.shape[1]} target column(s) {list(chunk.targets)}, but "
                f"the model's {self.model.out_features} outputs under {self.loss!r} stand for "
                f"{self._n_targets}; build it with output_size="
                f"{self._outputs_wanted(chunk.y.shape[1], {'loss': self.loss})} or leave its "
                f"sizes open ({type(self.model).__name__}(hidden_size={self.model.hidden_size}))"
            )
        if self._stands:
            self._take_transforms(chunk)
        keys = chunk.keys if chunk.keys is not None else np.zeros(len(chunk), np.int64)
        return self._learn_arrays(keys, chunk.times, chunk.x, chunk.y, chunk.y_loc, chunk.y_scale)

    def _labels(self, y, N):
        if y is None:
            raise InputError("learning needs targets y, shape (N, targets)")
        y = as_float_array(y, self.model.dtype, "y")
        if y.ndim == 1 and self._n_targets == 1:
            y = y[:, None]
        if y.shape != (N, self._n_targets):
            raise InputError(
                f"y has shape {y.shape}, expected {(N, self._n_targets)}: one row of "
                f"{self._n_targets} targets per input row for {self.loss!r}"
            )
        bad = np.isinf(y)
        if bad.any():
            row = int(np.flatnonzero(bad.any(axis=1))[0])
            raise InputError(
                f"y holds inf at row {row}; targets must be finite (NaN where missing)"
            )
        self.loss.check_targets(y, self.model.out_features, "y")
        return y

    def _learn_arrays(self, keys, times, x, y, loc=None, scale=None):
        """Predict and learn from arrays; ``loc`` and ``scale`` (N, targets) are the
        feed's scaling of ``y`` (None: none). Returns the forecasts."""
        self._size_from(x, y)
        rows = self._rows(keys, times, x)
        if rows is None:
            self._labels(y, 0)
            return self._new_outputs(0)
        y = self._labels(y, len(rows.x))
        if not self._stands:
            scale = None  # outputs that are no target values stay as they are
        self._commit_keys(rows)
        Y = self._new_outputs(len(rows.x))
        if self.relative is None:
            self._learn_rows(rows, y, Y)
            Y = self._in_units(Y, loc, scale)
        else:
            groups = rel.groups_of(rows)
            obs, A, s, last = self._anchors(rows, y, loc, scale, groups)
            labels, lab, ring = self._change_labels(rows, groups, obs, A, s)
            self._learn_rows(rows, labels, Y)
            seasonal = None
            if self.seasonal is not None:  # the inputs that hold it, in data units
                seasonal = rows.x[:, list(self.seasonal)].astype(np.float64)
                if scale is not None:
                    seasonal = seasonal * scale + loc
                seasonal = seasonal[rows.order]
            Y = self._forecasts(rows, groups, Y, A, s, lab, obs, seasonal)
            self._aring[rows.slots] = ring
            self._alast[rows.slots] = last
        Y = self._bounded(Y, rearranged=self.calibrate)
        self._commit_rows(rows)
        return Y

    def _change_labels(self, rows, groups, obs, anchor, s):
        """A relative learner's labels: the change of each row's targets from the
        anchor of the row ``horizon`` steps before, in that row's scale. Returns them
        in input order (the model's dtype) and in series order (float64), and the
        series' new anchor histories."""
        h = self.horizon
        if h == 0:
            lab = (obs - anchor) / s
            ring = self._aring[rows.slots]
        else:
            ring = self._aring[rows.slots].copy()
            then = rel.lagged(ring, groups, np.hstack([anchor, s]), h)
            T = self._T
            lab = (obs - then[:, :T]) / then[:, T:]
        labels = np.empty(lab.shape, self.model.dtype)
        labels[rows.order] = lab
        return labels, lab, ring

    def _forecasts(self, rows, groups, Y, anchor, s, lab, obs, seasonal):
        """Forecasts in input order from the network's changes ``Y``: shrunk, blended
        with the AR's and the seasonal naive forecasts (``seasonal``, data units, series
        order; None: none) and calibrated in series order (committing what that
        learns), then ``anchor + s * change``."""
        order, j = rows.order, self._tcol
        C = Y[order].astype(np.float64)
        if self.shrink:
            gain = self._shrink(rows, groups, lab, C[:, self._point])
            C -= ((1.0 - gain) * C[:, self._point])[:, j]
        if self.ar:
            change = self._ar_changes(rows, groups, obs, anchor, s)
            C += self._blend_towards(rows, groups, lab, C[:, self._point], change, "_bring",
                                     "_blend")[:, j]  # fmt: skip
        if seasonal is not None:
            change = (seasonal - anchor) / s
            C += self._blend_towards(rows, groups, lab, C[:, self._point], change, "_sring",
                                     "_sblend")[:, j]  # fmt: skip
        if self.calibrate:  # on rearranged quantiles: the median is the middle one
            C = rel.sort_quantiles(C, self._qorder, len(self._qorder))
            self._calibrate(rows, lab, C)
        out = np.empty(Y.shape, self.model.dtype)
        out[order] = anchor[:, j] + C * s[:, j]
        return out

    def _calibrate(self, rows, lab, C):
        """Spread ``C``'s quantiles (series order, in place) by each key's calibration."""
        slots = rows.slots
        K = len(self.quantiles)
        q = np.array(self.quantiles)
        outer = np.array([np.argmin(q), np.argmax(q)], np.int64)
        nominal = 1.0 - (q.max() - q.min())
        width, ring = self._cwidth[slots].copy(), self._cring[slots].copy()
        seen = self._cseen[slots].copy()
        C3 = C.reshape(len(C), self._T, K)
        rel.calibrate(rows.seg, lab, C3, int(self._point[0]), outer, nominal,
                      rel.CALIBRATION_STEP, width, ring, seen)  # fmt: skip
        self._cwidth[slots], self._cring[slots], self._cseen[slots] = width, ring, seen

    def _spreads_of(self, slots):
        if not self.calibrate:
            return super()._spreads_of(slots)
        return np.exp(self._cwidth[slots])

    def _shrink(self, rows, groups, lab, made):
        """Each row's shrinkage gain (series order, see :mod:`streamrnn.relative`) from
        the network's point changes ``made`` (series order); the keys' sums and
        histories of forecast changes are committed."""
        slots = rows.slots
        if self.horizon:
            ring = self._oring[slots].copy()
            made = rel.lagged(ring, groups, made, self.horizon)
            self._oring[slots] = ring
        state = self._gain[slots].copy()
        gain = np.empty_like(lab)
        rel.shrink_gains(rows.seg, lab, made, state, rel.SHRINK_FORGET, gain)
        self._gain[slots] = state
        return gain

    def _ar_changes(self, rows, groups, obs, anchor, s):
        """The online AR's forecast of each row's output (series order), as a change
        from the anchor in the scale ``s``; commits the AR."""
        slots, (sizes, pos) = rows.slots, groups
        h = self.horizon
        state = self._arst[slots].copy()
        due, ahead = np.empty((2, *obs.shape))
        ar_model.run(np.repeat(np.arange(len(slots)), sizes),
                     np.repeat(self._arseen[slots], sizes) + pos,
                     obs, state, self.ar, max(h, 1), due, ahead)  # fmt: skip
        self._arst[slots] = state
        self._arseen[slots] += sizes
        return ((due if h == 0 else ahead) - anchor) / s

    def _blend_towards(self, rows, groups, lab, made, change, ring_name, sums_name):
        """How far each row's point change ``made`` (series order) moves towards
        ``change`` (another forecast's, NaN: none): the key's blend weight (see
        :mod:`streamrnn.relative`) times the difference. The changes made wait
        ``horizon`` rows for their labels in ``ring_name``; the weights' sums are
        ``sums_name``; both are committed."""
        slots, T = rows.slots, self._T
        both = np.hstack([made, change])
        if self.horizon:
            ring = getattr(self, ring_name)[slots].copy()
            both = rel.lagged(ring, groups, both, self.horizon)
            getattr(self, ring_name)[slots] = ring
        sums = getattr(self, sums_name)[slots].copy()
        weight = np.empty_like(lab)
        then = both[:, :T]
        rel.shrink_gains(rows.seg, lab - then, both[:, T:] - then, sums, rel.SHRINK_FORGET, weight)
        getattr(self, sums_name)[slots] = sums
        return weight * np.where(np.isnan(change), 0.0, change - made)

    def _seasonal_columns(self, seasonal, model):
        """``seasonal`` checked: None, or one input column per target."""
        if seasonal is None:
            return None
        cols = tuple(seasonal) if isinstance(seasonal, (list, tuple, np.ndarray)) else None
        T = self._n_targets
        if (
            cols is None
            or len(cols) != T
            or not all(isinstance(c, (int, np.integer)) and 0 <= c < model.input_size
                       for c in cols)  # fmt: skip
        ):
            raise ConfigError(
                f"seasonal must be None or {T} input column(s) (integers in 0 .. "
                f"{model.input_size - 1}), one per target; got {seasonal!r}"
            )
        return tuple(int(c) for c in cols)

    def _blend_of(self, slots):
        if not (self.ar and self.horizon == 1):
            return super()._blend_of(slots)
        weights, past = ar_model.rollout_windows(self._arst[slots], self._arseen[slots], self.ar)
        return rel.current_gains(self._blend[slots]), weights, past

    def _gains_of(self, slots):
        if not self.shrink:
            return super()._gains_of(slots)
        return rel.current_gains(self._gain[slots])

    def _learn_rows(self, rows, y, Y):
        if self.per_key:
            with first_use("per_key", self.model):
                return self._learn_rows_per_key(rows, y, Y)
        with first_use("learning", self.model):
            self._learn_rows_shared(rows, y, Y)

    def _learn_rows_shared(self, rows, y, Y):
        m = self.model
        if m._P is not self._P_seen:  # new weights were loaded into the model
            m._backend.refresh(m._spec, m._P, self._bspec, self._PT)
            self._P_seen = m._P
        k1, k2 = self.tbptt
        h = self.horizon
        win_rows, upd_rows = m._backend.plan(
            rows.slot_rows, self._steps, h, k1, self.batch, self._pending
        )
        t = self._t
        t[1] = t[0] + 1
        lrs = np.array([self.optimizer.lr_at(int(t[1]) + j) for j in range(len(upd_rows))])
        okind, hyper = self.optimizer.kernel_args()
        lkind, lpar = self.loss.kernel_args()
        skipped = self._counts[1]
        m._backend.learn_chunk(
            (m._spec, m._P, self._bspec, self._PT),
            (okind, hyper, lrs, self._M1, self._M2, self._segs, t),
            (lkind, lpar, self._n_targets),
            (rows.x, y, rows.slot_rows, Y, self._seg_of),
            (
                self._S,
                self._ring,
                self._ring_row,
                self._steps,
                self._done,
                self._vsince,
                self._ssince,
            ),
            (win_rows, upd_rows),
            (self._LG, self._lane_loss, self._lane_count, self._lane_used, self._scratch),
            np.array([h, k1, k2, self.batch, m._backend.thread_count()], np.int64),
            self._counts,
        )
        self._pending = (self._pending + len(win_rows)) % self.batch
        if len(upd_rows):
            m._trained()
        if self._counts[1] > skipped:
            warnings.warn(
                f"{int(self._counts[1] - skipped)} update(s) skipped: non-finite loss or "
                "gradient; the weights were kept (see counts['skipped'])",
                RuntimeWarning,
                stacklevel=user_level(),
            )

    def _learn_rows_per_key(self, rows, y, Y):
        m = self.model
        k1, k2 = self.tbptt
        counts = np.diff(rows.seg)
        t0 = self._tk[rows.slots, 0]
        most = counts // (k1 * self.batch) + 1  # updates a key can make in this chunk
        need = np.unique(np.concatenate([np.arange(a + 1, a + u + 1) for a, u in zip(t0, most)]))
        lrs = np.array([self.optimizer.lr_at(int(t)) for t in need])
        okind, hyper = self.optimizer.kernel_args()
        lkind, lpar = self.loss.kernel_args()
        before = self._countk[rows.slots, 1].sum()
        m._backend.learn_per_key(
            (m._spec, self._Pk, self._bspec, self._PTk),
            (okind, hyper, need.astype(np.int64), lrs, self._segs),
            (lkind, lpar, self._n_targets),
            (rows.x, y, Y, rows.order, rows.seg, rows.slots),
            (self._S, self._ring, self._ring_row, self._steps, self._done, self._vsince,
             self._ssince),
            (self._Gk, self._M1k, self._M2k, self._tk, self._pendk, self._lossk, self._countk),
            np.array([self.horizon, k1, k2, self.batch, m._backend.thread_count()], np.int64),
        )  # fmt: skip
        skipped = self._countk[rows.slots, 1].sum() - before
        if skipped:
            warnings.warn(
                f"{int(skipped)} update(s) skipped: non-finite loss or gradient; the weights "
                "were kept (see counts['skipped'])",
                RuntimeWarning,
                stacklevel=user_level(),
            )

    def key_model(self, key):
        """The model of ``key`` (a copy): its own weights when ``per_key``, else the
        shared model's."""
        keys, _ = self._one_key(key)
        slot = self._slots(keys)[0]
        out = self.model.clone()
        if self.per_key:
            out.load_state_dict(unpack(self._Pk[slot], out._spec, out._shapes()))
        else:
            out.load_state_dict(self.model.state_dict())
        return out

    def _advance(self, rows, Y):
        if not self.per_key:
            super()._advance(rows, Y)
        else:  # each key with its own weights
            counts = np.diff(rows.seg)
            forward = self.model._backend.forward
            for q, slot in enumerate(rows.slots):
                forward(
                    self.model._spec, self._Pk[slot], rows.x, rows.order, rows.seg[q : q + 1],
                    counts[q : q + 1], rows.slots[q : q + 1], self._S, Y,
                )  # fmt: skip
        self._restart(rows.slots)

    def forecast(self, keys, horizon, future=None):
        if not self.per_key:
            return super().forecast(keys, horizon, future)
        if np.ndim(keys) != 1:
            raise InputError(f"keys must be a sequence of keys, got {keys!r}")
        arr, kind = as_keys(keys, len(keys))
        self._check_key_kind(kind)
        slots = self._slots(arr)
        shared = self.model._P
        out = []
        try:
            for i, slot in enumerate(slots):
                self.model._P = self._Pk[slot]
                fut = None if future is None else np.asarray(future)[i : i + 1]
                out.append(
                    rollout(
                        self.model,
                        self._S[[slot]],  # copies: the kernel uses them as scratch
                        self._xlast[[slot]],
                        self._has_input[[slot]],
                        self._fb,
                        horizon,
                        fut,
                        arr[i : i + 1],
                        change=self.relative is not None,
                    )  # fmt: skip
                )
        finally:
            self.model._P = shared
        Y = np.concatenate(out) if out else np.empty((0, horizon, self.model.out_features))
        return self._rollout(Y.astype(self.model.dtype, copy=False), slots, arr)

    forecast.__doc__ = Stream.forecast.__doc__

    # -- offline warm-up -----------------------------------------------------------
    def fit(self, data, epochs=1):
        """Learn from history, ``epochs`` times over, with the same kernels, before
        going live.

        ``data`` is a chunk, a DataFrame or Arrow table, a list of them, or a
        function that returns a fresh iterable of them (to stream a file once per
        epoch). Before each epoch after the first, the series are forgotten
        (states, histories, times) and the feed goes back to where it was before
        the first; the weights and the optimizer carry on. After the last epoch
        the series' states are those at the end of the history. Returns ``self``.
        """
        epochs = positive_int(epochs, "epochs")
        if callable(data):
            source = data
        elif isinstance(data, (list, tuple) + _TABLES):
            items = list(data) if isinstance(data, (list, tuple)) else [data]
            source = lambda: items  # noqa: E731
        elif isinstance(data, types.GeneratorType) or hasattr(data, "__next__"):
            if epochs > 1:
                raise ConfigError(
                    "fit over more than one epoch needs data it can read again: a list of "
                    "chunks, a table, or a function returning an iterable (got an iterator)"
                )
            source = lambda: data  # noqa: E731
        else:
            raise InputError(
                "fit takes a chunk, a DataFrame or Arrow table, a list of them or a function "
                f"returning an iterable of them; got {type(data).__name__}"
            )
        start = self.feed._snapshot() if self.feed is not None else None
        for epoch in range(epochs):
            if epoch:
                self._forget_series()
                if start is not None:
                    self.feed._restore(start)
            for part in source():
                self.learn(part)
            if self.feed is not None:
                self.flush()
        return self

    def _forget_series(self):
        self._n = 0
        self._key_kind = None
        self._time_kind = None
        self._index = pd.Index([])
        self._lookup = None  # key -> slot, built when needed
        self._allocate(0)

    # -- saving --------------------------------------------------------------------
    def save(self, path):
        """Write the learner (weights, optimizer state, every key's state and history,
        the feed and its scaling) to ``path`` atomically: a reader sees the old file
        or the new one, never a part."""
        data = pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)
        checkpoint.write_atomic(path, lambda f: f.write(data))

    @classmethod
    def load(cls, path):
        """A learner written by :meth:`save`, or the one a backfill checkpoint holds
        (see :func:`streamrnn.checkpoint.load_engine`)."""
        with open(path, "rb") as f:
            if f.read(len(checkpoint.MAGIC)) == checkpoint.MAGIC:
                learner = checkpoint.load_engine(path)
                if not isinstance(learner, cls):
                    raise StateError(
                        f"{path} is the checkpoint of an inference backfill (a "
                        f"{type(learner).__name__}), not of a {cls.__name__}"
                    )
                return learner
            f.seek(0)
            try:
                learner = pickle.load(f)
            except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
                raise StateError(f"{path} holds no saved learner ({exc})") from None
        if not isinstance(learner, cls):
            raise StateError(f"{path} holds a {type(learner).__name__}, not a {cls.__name__}")
        return learner
