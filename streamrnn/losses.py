"""Losses for online learning, with their gradients.

Every loss is a mean over the labeled entries it sees: a target that is NaN is
no label and counts for nothing, so missing values in a stream are masked, not
guessed. During training the sum and the count are carried separately through
a batch of windows, and the gradient of the batch is the gradient of
``sum / count``, as PyTorch's losses with ``reduction="mean"`` over the labeled
entries.

==================  =====================================  ==========================
loss                per labeled entry (``d = yhat - y``)     outputs per target
==================  =====================================  ==========================
:class:`MSE`        ``d**2``                                 1
:class:`MAE`        ``|d|``                                  1
:class:`Huber`      ``d**2 / 2`` if ``|d| < delta`` else      1
                    ``delta * (|d| - delta / 2)``
:class:`Pinball`    ``max(q (y - yhat), (q - 1)(y - yhat))``  one per quantile
                    for each quantile ``q``
:class:`CrossEntropy` ``-log softmax(yhat)[y]``; ``y`` is a   one per class (logits)
                    class index, one target column
==================  =====================================  ==========================

Examples
--------
>>> import numpy as np
>>> from streamrnn.losses import Pinball
>>> loss = Pinball(quantiles=(0.1, 0.5, 0.9))
>>> loss.outputs(n_targets=2)   # output j * 3 + k is target j's k-th quantile
6
>>> round(loss(np.array([[0.0, 1.0, 2.0]]), np.array([[1.0]])), 4)   # (0.1 + 0 + 0.1) / 3
0.0667
"""

import math

import numpy as np

from .core.jit import kernel
from .errors import ConfigError, InputError

MSE_KIND = 0
MAE_KIND = 1
HUBER_KIND = 2
PINBALL_KIND = 3
CROSS_ENTROPY_KIND = 4


@kernel
def loss_grad(kind, par, yhat, y, dy):
    """Loss of one step and its gradient.

    ``yhat`` (outputs) and ``y`` (targets, NaN where missing) are 1-D; ``dy``
    receives ``d loss / d yhat`` (zero where there is no label). Returns
    ``(sum of entry losses, number of labeled entries)``; the sum is float64.
    """
    total = 0.0
    count = 0
    for j in range(dy.shape[0]):
        dy[j] = 0.0
    if kind == PINBALL_KIND:
        K = par.shape[0]
        for t in range(y.shape[0]):
            if math.isnan(y[t]):
                continue
            for k in range(K):
                q = par[k]
                e = float(y[t]) - float(yhat[t * K + k])
                if e > 0.0:
                    total += q * e
                    dy[t * K + k] = -q
                elif e < 0.0:
                    total += (q - 1.0) * e
                    dy[t * K + k] = 1.0 - q
                else:
                    dy[t * K + k] = 0.5 - q  # the mean of both sides, as torch.maximum
                count += 1
        return total, count
    if kind == CROSS_ENTROPY_KIND:
        if math.isnan(y[0]):
            return total, count
        c = int(y[0])
        top = float(yhat[0])
        for j in range(yhat.shape[0]):
            v = float(yhat[j])
            if v > top:  # (not max(): numba 0.68's CUDA target cannot type it)
                top = v
        s = 0.0
        for j in range(yhat.shape[0]):
            s += math.exp(float(yhat[j]) - top)
        lse = top + math.log(s)
        for j in range(yhat.shape[0]):
            dy[j] = math.exp(float(yhat[j]) - lse)
        dy[c] -= 1.0
        return lse - float(yhat[c]), 1
    delta = par[0] if kind == HUBER_KIND else 0.0
    for j in range(y.shape[0]):
        if math.isnan(y[j]):
            continue
        d = yhat[j] - y[j]
        count += 1
        if kind == MSE_KIND:
            total += float(d) * float(d)
            dy[j] = 2 * d
        elif kind == MAE_KIND:
            total += abs(float(d))
            dy[j] = 1.0 if d > 0 else (-1.0 if d < 0 else 0.0)
        else:
            a = abs(float(d))
            if a < delta:
                total += 0.5 * a * a
                dy[j] = d
            else:
                total += delta * (a - 0.5 * delta)
                dy[j] = delta if d > 0 else -delta
    return total, count


class Loss:
    """Base class: a kernel loss ``kind`` with float64 parameters."""

    _kind = None
    name = None

    def _params(self):
        return np.zeros(1)

    def kernel_args(self):
        """``(kind, params)`` for :func:`loss_grad`."""
        return self._kind, self._params()

    def outputs(self, n_targets):
        """Model outputs this loss needs for ``n_targets`` target columns."""
        return n_targets

    def targets(self, n_outputs):
        """Target columns that go with ``n_outputs`` model outputs."""
        return n_outputs

    def check_targets(self, y, n_outputs, where="y"):
        """Raise :class:`InputError` for labels this loss cannot take (NaN is no label)."""

    def __call__(self, yhat, y):
        """Mean loss over the labeled entries of ``(N, outputs)`` and ``(N, targets)``."""
        yhat = np.asarray(yhat, np.float64)
        y = np.asarray(y, np.float64)
        kind, par = self.kernel_args()
        dy = np.empty(yhat.shape[-1])
        total, count = 0.0, 0
        for r in range(len(y)):
            s, c = loss_grad(kind, par, yhat[r], y[r], dy)
            total += s
            count += c
        return float(total / count) if count else 0.0

    def __repr__(self):
        return f"{type(self).__name__}()"

    def __eq__(self, other):
        return type(self) is type(other) and repr(self) == repr(other)

    def __hash__(self):
        return hash(repr(self))


class MSE(Loss):
    """Mean squared error."""

    _kind = MSE_KIND
    name = "mse"


class MAE(Loss):
    """Mean absolute error (its gradient is the sign of the error, 0 at 0)."""

    _kind = MAE_KIND
    name = "mae"


class Huber(Loss):
    """Huber loss: squared near zero, absolute beyond ``delta`` (``torch.nn.HuberLoss``).

    Examples
    --------
    >>> import numpy as np
    >>> float(Huber(delta=1.0)(np.array([[3.0]]), np.array([[0.0]])))
    2.5
    """

    _kind = HUBER_KIND
    name = "huber"

    def __init__(self, delta=1.0):
        if not isinstance(delta, (int, float, np.floating)) or not (
            math.isfinite(delta) and delta > 0
        ):
            raise ConfigError(f"Huber delta must be a finite number > 0, got {delta!r}")
        self.delta = float(delta)

    def _params(self):
        return np.array([self.delta])

    def __repr__(self):
        return f"Huber(delta={self.delta!r})"


class Pinball(Loss):
    """Pinball (quantile) loss for several quantiles at once: prediction intervals.

    The model has one output per target and quantile: output ``j * K + k`` is
    target ``j``'s quantile ``quantiles[k]``. Each labeled target value counts
    ``K`` entries in the mean.
    """

    _kind = PINBALL_KIND
    name = "pinball"

    def __init__(self, quantiles=(0.1, 0.5, 0.9)):
        try:
            q = np.asarray(quantiles, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            q = np.array([np.nan])
        if q.size == 0 or not np.all((q > 0) & (q < 1)):
            raise ConfigError(
                f"Pinball quantiles must be numbers strictly between 0 and 1, got {quantiles!r}"
            )
        if np.unique(q).size != q.size:
            raise ConfigError(f"Pinball quantiles must differ, got {quantiles!r}")
        self.quantiles = tuple(float(v) for v in q)

    def _params(self):
        return np.array(self.quantiles)

    def outputs(self, n_targets):
        return n_targets * len(self.quantiles)

    def targets(self, n_outputs):
        K = len(self.quantiles)
        if n_outputs % K:
            raise ConfigError(
                f"a pinball loss over {K} quantiles needs a multiple of {K} outputs, "
                f"the model has {n_outputs}"
            )
        return n_outputs // K

    def __repr__(self):
        return f"Pinball(quantiles={self.quantiles!r})"


class CrossEntropy(Loss):
    """Cross-entropy of softmax over the outputs (logits), for sequence classification.

    The target is one column holding a class index ``0 .. outputs - 1`` (as a
    float; NaN where a step has no label).
    """

    _kind = CROSS_ENTROPY_KIND
    name = "cross_entropy"

    def outputs(self, n_targets):
        raise ConfigError("cross_entropy needs one output per class; set the model's output_size")

    def targets(self, n_outputs):
        return 1

    def check_targets(self, y, n_outputs, where="y"):
        n_classes = n_outputs
        y = np.asarray(y)
        lab = y[~np.isnan(y)]
        bad = (lab < 0) | (lab >= n_classes) | (lab != np.floor(lab))
        if bad.any():
            v = float(lab[bad][0])
            raise InputError(
                f"{where} holds {v!r}, which is no class index: cross_entropy takes integers "
                f"0 .. {n_classes - 1} (NaN where a step has no label)"
            )


LOSSES = {cls.name: cls for cls in (MSE, MAE, Huber, Pinball, CrossEntropy)}


def as_loss(loss):
    """A :class:`Loss` from an instance or a name."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss in LOSSES:
        return LOSSES[loss]()
    raise ConfigError(
        f"loss must be one of {sorted(LOSSES)} or a streamrnn.losses object, got {loss!r}"
    )
