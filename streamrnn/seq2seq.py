"""Encoder-decoder (seq2seq) forecasts, learned online.

An *encoder* reads each series' inputs, one step at a time, as any model in a
:class:`~streamrnn.Stream`. At every step its state starts a *decoder* that
emits the next ``horizon`` steps of the targets: decoder step ``k`` reads the
targets of step ``t + k`` (the last known ones, for ``k = 0``; its own previous
output when forecasting ahead) and predicts those of step ``t + k + 1``.

Learning follows the rule of :mod:`streamrnn.core.tbptt` with the horizon as the
label delay: when the targets of step ``m + horizon`` arrive and ``m`` is a
multiple of ``k1``, the encoder runs over steps ``a + 1 .. m`` (``a = max(0,
m - k2)``) from its state after step ``a``; from each of its last ``k1`` states
a decoder runs ``horizon`` steps with the true targets as inputs (teacher
forcing) and is scored against the following targets; the decoders' gradients
flow back into the encoder's states and through the encoder window. Both
networks are updated together after every ``batch`` windows, with one global
gradient norm. The same window kernel (:func:`streamrnn.core.bptt._window_of`) does all
of it, so the gradients match PyTorch's autograd.
"""

import warnings

import numpy as np

from feeds._warn import user_level

from ._keys import as_keys
from ._validate import positive_int
from .compiling import first_use
from .errors import ConfigError, DeviceError, InputError
from .learner import OnlineLearner
from .models import RecurrentModel
from .optim import Adam


class Seq2SeqLearner(OnlineLearner):
    """Multi-horizon forecasts from an encoder and a decoder, learned online.

    Parameters
    ----------
    encoder : RNN, GRU or LSTM
        Reads the inputs; its head, if any, is not used.
    decoder : RNN, GRU or LSTM
        Same cell, ``hidden_size`` and ``num_layers`` as the encoder (its state
        starts from the encoder's); ``input_size`` = the number of targets;
        ``output_size`` = what the loss needs (the targets, or targets times
        quantiles for a pinball loss).
    horizon : int
        Steps the decoder emits.
    tbptt, loss, optimizer, batch, feed :
        As for :class:`~streamrnn.OnlineLearner` (default ``(32, 32)``, ``"mse"`` and
        ``Adam()``). The decoder's outputs are levels.

    :meth:`predict_learn` returns, for each row, the ``(horizon, outputs)``
    forecast of the steps after it, made before learning from the row.

    Examples
    --------
    >>> import numpy as np, streamrnn
    >>> enc = streamrnn.GRU(1, 8, seed=0)
    >>> dec = streamrnn.GRU(1, 8, output_size=1, seed=1)
    >>> learner = streamrnn.Seq2SeqLearner(enc, dec, horizon=3, tbptt=(4, 8))
    >>> wave = np.sin(np.arange(40) / 3.0)[:, None]
    >>> learner.predict_learn(np.zeros(40, int), None, wave, wave).shape
    (40, 3, 1)
    >>> learner.forecast([0], 3).shape
    (1, 3, 1)
    """

    def __init__(self, encoder, decoder, horizon, tbptt=(32, 32), loss="mse", optimizer=None,
                 batch=1, feed=None):  # fmt: skip
        for name, m in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(m, RecurrentModel):
                raise ConfigError(f"{name} must be a streamrnn RNN, GRU or LSTM, got {m!r}")
        same = ("cell", "hidden_size", "num_layers", "dtype")
        diff = [a for a in same if getattr(encoder, a) != getattr(decoder, a)]
        if diff:
            raise ConfigError(
                f"the decoder starts from the encoder's state, so they must agree on "
                f"{', '.join(same)}; they differ in {', '.join(diff)}"
            )
        for name, m in (("encoder", encoder), ("decoder", decoder)):
            if m.device != "cpu":
                raise DeviceError(
                    f"Seq2SeqLearner learns on the CPU for now; the {name} is on "
                    f"{m.device!r}: learn with .to('cpu'), then .to('cuda') to run it"
                )
        self.decoder = decoder
        if optimizer is None:
            optimizer = Adam()
        super().__init__(encoder, tbptt=tbptt, loss=loss, optimizer=optimizer,
                         horizon=horizon, batch=batch, feed=feed, relative=None)  # fmt: skip
        if self.horizon < 1:
            raise ConfigError(f"horizon must be an integer >= 1, got {horizon!r}")
        if decoder.input_size != self._n_targets:
            raise ConfigError(
                f"the decoder reads the {self._n_targets} target(s) of each step: it needs "
                f"input_size={self._n_targets}, got {decoder.input_size}"
            )
        # the output fed back for each target: the middle quantile under a pinball loss
        K = decoder.out_features // self._n_targets
        self._fb_out = np.arange(self._n_targets, dtype=np.int64) * K + (K - 1) // 2
        size = decoder._P.shape[0]
        slots = self.optimizer.slots
        self._dM1 = np.zeros(size if slots >= 1 else 0, decoder.dtype)
        self._dM2 = np.zeros(size if slots >= 2 else 0, decoder.dtype)
        self._dG = np.zeros(size, decoder.dtype)
        self._eG = np.zeros(encoder._P.shape[0], encoder.dtype)
        self._dsegs = np.array([[0, size]], np.int64)
        self._esegs = np.array([[0, encoder._P.shape[0]]], np.int64)
        if not (encoder.bias and decoder.bias):
            raise ConfigError("Seq2SeqLearner needs models with biases (bias=True)")
        self._s2s = np.zeros(3)  # windows in the batch, their loss and labels

    def _outputs_for(self, model):
        return self.decoder.out_features

    def _bind(self):
        super()._bind()
        dec = self.decoder
        self._dbspec, self._dPT = dec._backend.back_weights(dec._spec, dec._P)
        self._dP_seen = self.decoder._P

    def __getstate__(self):
        self.decoder._sync()
        state = super().__getstate__()
        for name in ("_dbspec", "_dPT", "_dP_seen"):
            del state[name]
        return state

    def _run(self, rows, y, Y, learn):
        enc, dec = self.model, self.decoder
        for m, spec_bspec, seen in ((enc, (self._bspec, self._PT), "_P_seen"),
                                    (dec, (self._dbspec, self._dPT), "_dP_seen")):  # fmt: skip
            if m._P is not getattr(self, seen):
                m._backend.refresh(m._spec, m._P, *spec_bspec)
                setattr(self, seen, m._P)
        k1, k2 = self.tbptt
        n_upd = len(rows.x) // self.batch + 1  # a row closes one window at most
        t = self._t
        t[1] = t[0] + 1
        lrs = np.array([self.optimizer.lr_at(int(t[1]) + j) for j in range(n_upd)])
        okind, hyper = self.optimizer.kernel_args()
        lkind, lpar = self.loss.kernel_args()
        updates, skipped = self._counts[0], self._counts[1]
        enc._backend.encdec_chunk(
            (enc._spec, enc._P, self._bspec, self._PT, self._eG, self._M1, self._M2, self._esegs),
            (dec._spec, dec._P, self._dbspec, self._dPT, self._dG, self._dM1, self._dM2,
             self._dsegs),
            (okind, hyper, lrs, t),
            (lkind, lpar),
            (rows.x, y, rows.slot_rows, Y, self._fb_out),
            (self._S, self._ring, self._steps),
            np.array([self.horizon, k1, k2, self.batch, int(learn)], np.int64),
            self._s2s,
            self._counts,
        )  # fmt: skip
        if self._counts[0] > updates:
            enc._trained()
            dec._trained()
        if self._counts[1] > skipped:
            warnings.warn(
                f"{int(self._counts[1] - skipped)} update(s) skipped: non-finite loss or "
                "gradient; the weights were kept (see counts['skipped'])",
                RuntimeWarning,
                stacklevel=user_level(),
            )

    def _learn_rows(self, rows, y, Y):
        with first_use("seq2seq", self.model):
            self._run(rows, y, Y, True)

    def _new_outputs(self, n):
        return np.empty((n, self.horizon, self.decoder.out_features), self.model.dtype)

    def _advance(self, rows, Y):
        raise InputError(
            "a Seq2SeqLearner forecasts from the targets: use predict_learn, or forecast"
        )

    def predict(self, keys, times=None, x=None, outputs="all"):
        """Not available: the decoder needs each row's targets; use :meth:`predict_learn`."""
        self._advance(None, None)

    def update(self, keys, times=None, x=None, outputs="all"):
        """Not available, as :meth:`predict`."""
        self._advance(None, None)

    def forecast(self, keys, horizon=None, future=None):
        """The decoder's next ``horizon`` steps (default: the learner's) from each key's
        state, starting from its last targets; ``(len(keys), horizon, outputs)``."""
        if future is not None:
            raise InputError("a decoder forecasts from its own outputs; future= is not used")
        horizon = positive_int(self.horizon if horizon is None else horizon, "horizon")
        arr, kind = as_keys(keys, len(keys))
        self._check_key_kind(kind)
        slots = self._slots(arr)
        C = self._C
        I = self.model.input_size
        dec = self.decoder
        Y = np.empty((len(slots), horizon * dec.out_features), dec.dtype)
        GW = dec.gate_width
        GI, GH = np.empty(GW, dec.dtype), np.empty(GW, dec.dtype)
        for i, slot in enumerate(slots):
            last = self._ring[slot, self._steps[slot] % C, I : I + self._n_targets]
            x0 = np.where(np.isnan(last), 0, last).astype(dec.dtype)
            s = self._S[slot].copy()
            dec._backend.decode(dec._spec, dec._P, s, x0, self._fb_out, horizon, Y[i], GI, GH)
        Y = Y.reshape(len(slots), horizon, dec.out_features)
        feed = self.feed
        if feed is None or feed.scale is None or not self._stands:
            return self._bounded(Y)
        loc, scale = feed.target_scaling(arr)
        j = self._tcol
        Y = (Y * scale[:, None, j] + loc[:, None, j]).astype(dec.dtype, copy=False)
        return self._bounded(Y)


__all__ = ["Seq2SeqLearner"]
