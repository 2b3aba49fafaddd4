"""Encoder-decoder (seq2seq) forecasts, learned online.

An *encoder* reads each series' inputs, one step at a time, as any model in a
:class:`~streamrnn.Stream`. At every step its state starts a *decoder* that
emits the next ``horizon`` steps of the targets: decoder step ``k`` reads the
targets of step ``t + k`` (the last known ones, for ``k = 0``; its own previous
output when forecasting ahead) and predicts those of step ``t + k + 1``.

Learning follows the rule of :mod:`streamrnn.tbptt` with the horizon as the
label delay: when the targets of step ``m + horizon`` arrive and ``m`` is a
multiple of ``k1``, the encoder runs over steps ``a + 1 .. m`` (``a = max(0,
m - k2)``) from its state after step ``a``; from each of its last ``k1`` states
a decoder runs ``horizon`` steps with the true targets as inputs (teacher
forcing) and is scored against the following targets; the decoders' gradients
flow back into the encoder's states and through the encoder window. Both
networks are updated together after every ``batch`` windows, with one global
gradient norm. The same window kernel (:func:`streamrnn.bptt.window`) does all
of it, so the gradients match PyTorch's autograd.
"""

import warnings

import numpy as np
from numba import njit

from . import config
from ._keys import as_keys
from ._validate import positive_int
from .bptt import refresh, scratch_size, window, window_args
from .compiling import first_use
from .errors import ConfigError, InputError
from .kernels import _gate_width, advance_block, readout_block
from .layout import CELLS_BY_KIND_GATES
from .learner import OnlineLearner
from .models import RecurrentModel
from .optim import Adam, apply_update, clip_scale, grad_norm

_FLAGS = config.JIT_FLAGS


@njit(**_FLAGS)
def _decode(spec, P, s, x0, fb, Hz, Y, GI, GH):
    """Roll the decoder ``Hz`` steps from state ``s`` (changed), first input ``x0``,
    each later input the outputs ``fb`` of the step before; outputs into ``Y``."""
    O = spec[4]
    x = x0.copy()
    for k in range(Hz):
        advance_block(spec, P, x, s, 1, GI, GH)
        readout_block(spec, P, s, 1, Y[k * O : (k + 1) * O])
        for j in range(x.shape[0]):
            x[j] = Y[k * O + fb[j]]


@njit(**_FLAGS)
def learn_chunk(enc, dec, opt, loss, data, hist, cfg, state, counts):
    """Predict and learn a chunk, row by row in arrival order (see the module doc).

    ``enc``/``dec`` = ``(spec, P, bspec, PT, G, M1, M2, segs)``; ``opt = (kind,
    hyper, lrs, t)``; ``data = (X, Yl, slot_rows, Ypred, fb)``; ``hist = (S, ring,
    steps)``; ``cfg = [Hz, k1, k2, batch, learn]``; ``state = (pending, loss, labels)``
    as a float64 array.
    """
    espec, eP, ebspec, ePT, eG, eM1, eM2, esegs = enc
    dspec, dP, dbspec, dPT, dG, dM1, dM2, dsegs = dec
    okind, hyper, lrs, t = opt
    lkind, lpar = loss
    X, Yl, slot_rows, Ypred, fb = data
    S, ring, steps = hist
    Hz, k1, k2, batch, learn = cfg[0], cfg[1], cfg[2], cfg[3], cfg[4]
    I = X.shape[1]
    Oy = Yl.shape[1]
    D = S.shape[1]
    C = ring.shape[1]
    at_state = I + Oy
    GW = max(_gate_width(espec), _gate_width(dspec))
    GI = np.empty(GW, eP.dtype)
    GH = np.empty(GW, eP.dtype)
    x0 = np.empty(Oy, eP.dtype)
    s = np.empty(D, eP.dtype)
    E = np.empty((k2 + 1) * D, eP.dtype)  # encoder states over a window
    dS = np.zeros(k2 * D, eP.dtype)
    WX = np.empty(k2 * I, eP.dtype)
    XD = np.empty(Hz * Oy, eP.dtype)
    YD = np.empty(Hz * Oy, eP.dtype)
    We = np.empty(scratch_size(espec, 1, k2), eP.dtype)
    Wd = np.empty(scratch_size(dspec, 1, Hz), eP.dtype)
    lossc = np.zeros((1, 2))
    empty = np.zeros(0, eP.dtype)
    for r in range(X.shape[0]):
        q = slot_rows[r]
        x = X[r]
        advance_block(espec, eP, x, S[q], 1, GI, GH)
        for j in range(Oy):
            v = Yl[r, j]
            x0[j] = 0.0 if np.isnan(v) else v
        s[:] = S[q]
        _decode(dspec, dP, s, x0, fb, Hz, Ypred[r].reshape(Hz * Ypred.shape[2]), GI, GH)
        if not learn:
            continue
        steps[q] += 1
        c = steps[q]
        e = ring[q, c % C]
        for j in range(I):
            e[j] = x[j]
        for j in range(Oy):
            e[I + j] = Yl[r, j]
        for j in range(D):
            e[at_state + j] = S[q, j]
        m = c - Hz
        if m < k1 or m % k1:
            continue
        a = max(0, m - k2)
        T = m - a
        # the encoder's states over the window, with the current weights
        start = ring[q, a % C]
        for j in range(D):
            E[j] = start[at_state + j]
        for u in range(T):
            src = ring[q, (a + 1 + u) % C]
            for j in range(I):
                WX[u * I + j] = src[j]
            E[(u + 1) * D : (u + 2) * D] = E[u * D : (u + 1) * D]
            advance_block(espec, eP, WX[u * I : (u + 1) * I], E[(u + 1) * D : (u + 2) * D], 1,
                          GI, GH)  # fmt: skip
        # a decoder from each of the last k1 states, teacher-forced
        dS[: T * D] = 0.0
        for u in range(T - k1, T):
            j0 = a + 1 + u  # the encoder's step
            for k in range(Hz):
                now = ring[q, (j0 + k) % C]
                nxt = ring[q, (j0 + k + 1) % C]
                for j in range(Oy):
                    v = now[I + j]
                    XD[k * Oy + j] = 0.0 if np.isnan(v) else v
                    YD[k * Oy + j] = nxt[I + j]
            window(dspec, dP, dbspec, dPT, 1, E[(u + 1) * D : (u + 2) * D], XD, Hz, YD, 0, lkind,
                   lpar, dG, Wd, lossc, empty, empty, dS[u * D : (u + 1) * D], empty,
                   empty)  # fmt: skip
            state[1] += lossc[0, 0]
            state[2] += lossc[0, 1]
        # and the encoder window, driven by the decoders' gradients
        window(espec, eP, ebspec, ePT, 1, E[:D], WX[: T * I], T, empty, T, lkind, lpar, eG, We,
               lossc, empty, dS[: T * D], empty, empty, empty)  # fmt: skip
        counts[3] += 1
        state[0] += 1
        if state[0] < batch:
            continue
        state[0] = 0
        count = state[2]
        if count > 0:
            inv = eP.dtype.type(1.0 / count)
            eG *= inv
            dG *= inv
            norm = np.sqrt(grad_norm(eG, esegs) ** 2 + grad_norm(dG, dsegs) ** 2)
            if np.isfinite(norm) and np.isfinite(state[1]):
                t[0] += 1
                lr = lrs[t[0] - t[1]]
                scale = clip_scale(hyper, norm)
                apply_update(okind, hyper, t[0], lr, scale, eP, eG, eM1, eM2, esegs)
                apply_update(okind, hyper, t[0], lr, scale, dP, dG, dM1, dM2, dsegs)
                refresh(espec, eP, ebspec, ePT)
                refresh(dspec, dP, dbspec, dPT)
                counts[0] += 1
                counts[2] += np.int64(count)
            else:
                counts[1] += 1
        eG[:] = 0.0
        dG[:] = 0.0
        state[1] = 0.0
        state[2] = 0.0


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
        self._dbspec, self._dPT = window_args(self.decoder)
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
                refresh(m._spec, m._P, *spec_bspec)
                setattr(self, seen, m._P)
        k1, k2 = self.tbptt
        n_upd = len(rows.x) // self.batch + 1  # a row closes one window at most
        t = self._t
        t[1] = t[0] + 1
        lrs = np.array([self.optimizer.lr_at(int(t[1]) + j) for j in range(n_upd)])
        okind, hyper = self.optimizer.kernel_args()
        lkind, lpar = self.loss.kernel_args()
        updates, skipped = self._counts[0], self._counts[1]
        learn_chunk(
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
                stacklevel=4,
            )

    def _learn_rows(self, rows, y, Y):
        with first_use("seq2seq", self.model.dtype):
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
        GW = CELLS_BY_KIND_GATES[int(dec._spec[0])] * dec.hidden_size
        GI, GH = np.empty(GW, dec.dtype), np.empty(GW, dec.dtype)
        for i, slot in enumerate(slots):
            last = self._ring[slot, self._steps[slot] % C, I : I + self._n_targets]
            x0 = np.where(np.isnan(last), 0, last).astype(dec.dtype)
            s = self._S[slot].copy()
            _decode(dec._spec, dec._P, s, x0, self._fb_out, horizon, Y[i], GI, GH)
        Y = Y.reshape(len(slots), horizon, dec.out_features)
        feed = self.feed
        if feed is None or feed.scale is None or not self._stands:
            return self._bounded(Y)
        loc, scale = feed.target_scaling(arr)
        j = self._tcol
        Y = (Y * scale[:, None, j] + loc[:, None, j]).astype(dec.dtype, copy=False)
        return self._bounded(Y)


__all__ = ["Seq2SeqLearner"]
