"""Optimizers for online learning: SGD, Adam and AdamW, with gradient clipping
and learning-rate schedules, following ``torch.optim``.

Two layers, as elsewhere in the package:

* Optimizer and schedule objects (:class:`SGD`, :class:`Adam`, :class:`AdamW`,
  :class:`Constant`, :class:`ExponentialDecay`, :class:`WarmUp`) validate their
  arguments and turn them into what the kernels need: :meth:`~SGD.kernel_args`
  gives ``(kind, hyper)`` once, :meth:`~SGD.lr_at` the learning rate of each
  update.
* Kernels (:func:`grad_norm`, :func:`clip_scale`, :func:`apply_update`) update
  flat buffers in place. They are plain serial ``@njit`` functions, callable
  from Python or from a learner's own compiled code, and they trust their
  arguments.

Buffers seen by the kernels, all 1-D of one dtype (float32 or float64) except
``segs``:

``P``
    every parameter in one flat array.
``G``
    the gradient of ``P``, already averaged over the batch; read, never written.
``M1``, ``M2``
    optimizer state, zeros before the first update; :attr:`~SGD.slots` says how
    many are used (SGD with momentum: ``M1`` holds the momentum buffer; Adam and
    AdamW: ``M1`` and ``M2`` hold the first and second moments). An unused one
    may be a zero-length array of the same dtype.
``segs``
    int64, shape ``(n, 2)``: the ``(start, length)`` ranges of ``P`` that are
    trained. Entries outside them (padding, derived values) are never read or
    written.

Arithmetic follows PyTorch's CPU kernels (``foreach=False``): the same
operations in the same order, in the parameters' dtype, with scalar
hyperparameters rounded to that dtype where PyTorch rounds them, and fused
multiply-adds where PyTorch's vectorised kernels fuse. SGD then reproduces
``torch.optim.SGD`` bit for bit; Adam and AdamW differ in the last bits only
where PyTorch's vectorised ``sqrt`` is not correctly rounded.

``hyper`` (float64) holds, at the positions named by the ``HYPER_*``
constants: momentum, nesterov (1.0 or 0.0), beta1, beta2, eps, weight decay and
the clipping threshold (0.0 for none).

Examples
--------
One Adam update of two trained ranges, with clipping to norm 1; entry 1 is
padding and stays as it is:

>>> import numpy as np
>>> from streamrnn.optim import Adam, apply_update, clip_scale, grad_norm
>>> opt = Adam(lr=0.1, clip_norm=1.0)
>>> kind, hyper = opt.kernel_args()
>>> P = np.array([1.0, 7.0, 2.0])
>>> G = np.array([3.0, np.nan, 4.0])
>>> segs = np.array([[0, 1], [2, 1]])
>>> M1, M2 = np.zeros(3), np.zeros(3)
>>> norm = grad_norm(G, segs)
>>> norm
5.0
>>> scale = clip_scale(hyper, norm)
>>> apply_update(kind, hyper, 1, opt.lr_at(1), scale, P, G, M1, M2, segs)
>>> P.round(6)
array([0.9, 7. , 1.9])
"""

import inspect
import math
import numbers

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._validate import positive_int
from .core.jit import exact_kernel, kernel
from .errors import ConfigError

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "Constant",
    "ExponentialDecay",
    "WarmUp",
    "Schedule",
    "Optimizer",
    "grad_norm",
    "clip_scale",
    "apply_update",
    "KIND_SGD",
    "KIND_ADAM",
    "KIND_ADAMW",
    "HYPER_MOMENTUM",
    "HYPER_NESTEROV",
    "HYPER_BETA1",
    "HYPER_BETA2",
    "HYPER_EPS",
    "HYPER_WEIGHT_DECAY",
    "HYPER_CLIP_NORM",
    "HYPER_SIZE",
]

KIND_SGD = 0
KIND_ADAM = 1
KIND_ADAMW = 2

HYPER_MOMENTUM = 0
HYPER_NESTEROV = 1
HYPER_BETA1 = 2
HYPER_BETA2 = 3
HYPER_EPS = 4
HYPER_WEIGHT_DECAY = 5
HYPER_CLIP_NORM = 6
HYPER_SIZE = 7

#: Added to the gradient norm before dividing, as torch.nn.utils.clip_grad_norm_.
CLIP_EPS = 1e-6


# --------------------------------------------------------------------------
# Validation


def _number(value, name, accepted, ok):
    """``value`` as a float if it is a finite real number with ``ok(value)``."""
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or not ok(value)
    ):
        raise ConfigError(f"{name} must be {accepted}, got {value!r}")
    return float(value)


def _positive(value, name):
    return _number(value, name, "a finite number > 0", lambda v: v > 0)


def _non_negative(value, name):
    return _number(value, name, "a finite number >= 0", lambda v: v >= 0)


def _beta(value, name):
    return _number(value, name, "a number in [0, 1)", lambda v: 0 <= v < 1)


def _betas(betas):
    try:
        pair = tuple(betas)
    except TypeError:
        pair = ()
    if len(pair) != 2:
        raise ConfigError(
            f"betas must be a pair (beta1, beta2) of numbers in [0, 1), got {betas!r}"
        )
    return (_beta(pair[0], "betas[0]"), _beta(pair[1], "betas[1]"))


def _clip_norm(value):
    if value is None:
        return None
    return _number(value, "clip_norm", "None or a finite number > 0", lambda v: v > 0)


def _schedule(value, name="schedule"):
    if value is not None and not isinstance(value, Schedule):
        raise ConfigError(
            f"{name} must be None or a schedule (Constant, ExponentialDecay, WarmUp), got {value!r}"
        )
    return value


class _Configured:
    """Constructor arguments kept under their own names: repr and clone from them."""

    def _params(self):
        names = list(inspect.signature(type(self).__init__).parameters)[1:]
        return {name: getattr(self, name) for name in names}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"

    def clone(self):
        """A new object with the same arguments (nested schedules cloned too).

        Returns
        -------
        same type as self

        Examples
        --------
        >>> from streamrnn.optim import SGD, ExponentialDecay
        >>> opt = SGD(lr=0.1, schedule=ExponentialDecay(0.5))
        >>> copy = opt.clone()
        >>> copy.schedule
        ExponentialDecay(gamma=0.5, every=1)
        >>> copy.schedule is opt.schedule
        False
        """
        params = {
            k: v.clone() if isinstance(v, _Configured) else v for k, v in self._params().items()
        }
        return type(self)(**params)


def _update_number(t):
    return positive_int(t, "t (the 1-based update number)")


# --------------------------------------------------------------------------
# Learning-rate schedules


class Schedule(_Configured):
    """Base class of learning-rate schedules: a factor on the base rate per update.

    Subclasses implement ``_factor(done)``, the factor for the update that
    follows ``done`` earlier updates (``done = t - 1``), which matches the
    epoch counter of a ``torch.optim.lr_scheduler`` stepped once after each
    ``optimizer.step()``.
    """

    def factor(self, t):
        """The factor on the base learning rate for update ``t``.

        Parameters
        ----------
        t : int
            Update number, 1 for the first update.

        Returns
        -------
        float

        Examples
        --------
        >>> from streamrnn.optim import ExponentialDecay
        >>> ExponentialDecay(0.5).factor(3)
        0.25
        """
        return self._factor(_update_number(t) - 1)

    def _factor(self, done):
        raise NotImplementedError


class Constant(Schedule):
    """The base learning rate for every update.

    Examples
    --------
    >>> from streamrnn.optim import Constant
    >>> Constant().factor(1000)
    1.0
    """

    def __init__(self):
        pass

    def _factor(self, done):
        return 1.0


class ExponentialDecay(Schedule):
    """Multiply the learning rate by ``gamma`` every ``every`` updates.

    Update ``t`` uses the factor ``gamma ** ((t - 1) // every)``: the same
    rates as ``torch.optim.lr_scheduler.ExponentialLR(gamma)`` (``every=1``)
    or ``StepLR(step_size=every, gamma=gamma)``, stepped after each update.

    Parameters
    ----------
    gamma : float
        Decay factor, a finite number > 0.
    every : int, default 1
        Updates between decays.

    Examples
    --------
    >>> from streamrnn.optim import ExponentialDecay
    >>> s = ExponentialDecay(0.5, every=2)
    >>> [s.factor(t) for t in range(1, 6)]
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    def __init__(self, gamma, every=1):
        self.gamma = _positive(gamma, "gamma")
        self.every = positive_int(every, "every")

    def _factor(self, done):
        return self.gamma ** (done // self.every)


class WarmUp(Schedule):
    """Linear warm-up from ``start_factor`` to 1 over ``steps`` updates, then ``then``.

    Update ``t`` (with ``done = t - 1`` updates before it) uses
    ``start_factor + (1 - start_factor) * done / steps`` while ``done < steps``,
    as ``torch.optim.lr_scheduler.LinearLR(start_factor, end_factor=1.0,
    total_iters=steps)``. Afterwards it uses the ``then`` schedule counted from
    the end of warm-up (its first update is update ``steps + 1``), as
    ``SequentialLR([LinearLR(...), then], milestones=[steps])``.

    Parameters
    ----------
    steps : int
        Updates of warm-up, >= 1.
    start_factor : float, default 0.1
        Factor of the first update, in (0, 1].
    then : Schedule or None, default None
        Schedule after warm-up; None keeps the base rate.

    Examples
    --------
    >>> from streamrnn.optim import ExponentialDecay, WarmUp
    >>> s = WarmUp(4, start_factor=0.2, then=ExponentialDecay(0.5))
    >>> [round(s.factor(t), 6) for t in range(1, 8)]
    [0.2, 0.4, 0.6, 0.8, 1.0, 0.5, 0.25]
    """

    def __init__(self, steps, start_factor=0.1, then=None):
        self.steps = positive_int(steps, "steps")
        self.start_factor = _number(
            start_factor, "start_factor", "a number in (0, 1]", lambda v: 0 < v <= 1
        )
        self.then = _schedule(then, "then")

    def _factor(self, done):
        if done < self.steps:
            return self.start_factor + (1.0 - self.start_factor) * done / self.steps
        if self.then is None:
            return 1.0
        return self.then._factor(done - self.steps)


# --------------------------------------------------------------------------
# Optimizers


class Optimizer(_Configured):
    """Base class of the optimizers; see :class:`SGD`, :class:`Adam`, :class:`AdamW`."""

    _kind = -1

    def _hyper(self):
        hyper = np.zeros(HYPER_SIZE, dtype=np.float64)
        hyper[HYPER_WEIGHT_DECAY] = self.weight_decay
        hyper[HYPER_CLIP_NORM] = 0.0 if self.clip_norm is None else self.clip_norm
        return hyper

    def kernel_args(self):
        """What :func:`apply_update` and :func:`clip_scale` need, packed once.

        Returns
        -------
        kind : int
            ``KIND_SGD``, ``KIND_ADAM`` or ``KIND_ADAMW``.
        hyper : ndarray of float64, shape (HYPER_SIZE,)
            Learning-rate independent constants at the ``HYPER_*`` positions;
            unused ones are 0.

        Examples
        --------
        >>> from streamrnn.optim import HYPER_CLIP_NORM, HYPER_MOMENTUM, SGD
        >>> kind, hyper = SGD(momentum=0.9, clip_norm=5.0).kernel_args()
        >>> kind, hyper.dtype, hyper.shape
        (0, dtype('float64'), (7,))
        >>> float(hyper[HYPER_MOMENTUM]), float(hyper[HYPER_CLIP_NORM])
        (0.9, 5.0)
        """
        return self._kind, self._hyper()

    def lr_at(self, t):
        """The learning rate of update ``t``: ``lr`` times the schedule's factor.

        Parameters
        ----------
        t : int
            Update number, 1 for the first update.

        Returns
        -------
        float

        Examples
        --------
        >>> from streamrnn.optim import SGD, WarmUp
        >>> opt = SGD(lr=0.5, schedule=WarmUp(2, start_factor=0.5))
        >>> [opt.lr_at(t) for t in (1, 2, 3)]
        [0.25, 0.375, 0.5]
        """
        t = _update_number(t)
        if self.schedule is None:
            return self.lr
        return self.lr * self.schedule._factor(t - 1)

    @property
    def slots(self):
        """Number of state arrays (``M1``, ``M2``) the update uses: 0, 1 or 2."""
        return 2


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, as ``torch.optim.SGD``.

    With ``g`` the (clipped) gradient and ``b`` the momentum buffer (``M1``),
    update ``t`` does::

        g = g + weight_decay * p                  if weight_decay
        b = g if t == 1 else momentum * b + g     if momentum
        g = g + momentum * b if nesterov else b   if momentum
        p = p - lr * g

    (dampening is 0.)

    Parameters
    ----------
    lr : float, default 0.01
        Base learning rate, > 0.
    momentum : float, default 0.0
        Momentum factor, >= 0; 0 keeps no state.
    weight_decay : float, default 0.0
        L2 penalty added to the gradient, >= 0.
    nesterov : bool, default False
        Nesterov momentum; requires ``momentum > 0``.
    clip_norm : float or None, default None
        Clip the gradient's global L2 norm to this value (see :func:`clip_scale`).
    schedule : Schedule or None, default None
        Learning-rate schedule; None keeps ``lr``.

    Examples
    --------
    >>> import numpy as np
    >>> from streamrnn.optim import SGD, apply_update
    >>> opt = SGD(lr=0.1, momentum=0.9)
    >>> opt.slots
    1
    >>> kind, hyper = opt.kernel_args()
    >>> P, G = np.array([1.0, 2.0]), np.array([1.0, -1.0])
    >>> M1, unused = np.zeros(2), np.zeros(0)
    >>> segs = np.array([[0, 2]])
    >>> for t in (1, 2):
    ...     apply_update(kind, hyper, t, opt.lr_at(t), 1.0, P, G, M1, unused, segs)
    >>> P.round(6)  # steps of 0.1, then 0.1 * (0.9 + 1)
    array([0.71, 2.29])
    """

    _kind = KIND_SGD

    def __init__(
        self,
        lr=0.01,
        momentum=0.0,
        weight_decay=0.0,
        nesterov=False,
        clip_norm=None,
        schedule=None,
    ):
        self.lr = _positive(lr, "lr")
        self.momentum = _non_negative(momentum, "momentum")
        self.weight_decay = _non_negative(weight_decay, "weight_decay")
        if not isinstance(nesterov, (bool, np.bool_)):
            raise ConfigError(f"nesterov must be True or False, got {nesterov!r}")
        if nesterov and self.momentum == 0:
            raise ConfigError("nesterov=True requires momentum > 0, got momentum=0.0")
        self.nesterov = bool(nesterov)
        self.clip_norm = _clip_norm(clip_norm)
        self.schedule = _schedule(schedule)

    def _hyper(self):
        hyper = super()._hyper()
        hyper[HYPER_MOMENTUM] = self.momentum
        hyper[HYPER_NESTEROV] = 1.0 if self.nesterov else 0.0
        return hyper

    @property
    def slots(self):
        """Number of state arrays the update uses: 1 with momentum, else 0."""
        return 1 if self.momentum != 0 else 0


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (``amsgrad=False``).

    With ``g`` the (clipped) gradient, ``m`` and ``v`` the moments (``M1``,
    ``M2``), update ``t`` does::

        g = g + weight_decay * p                  if weight_decay
        m = m + (g - m) * (1 - beta1)             (torch.lerp)
        v = v * beta2 + (1 - beta2) * g * g
        denom = sqrt(v) / sqrt(1 - beta2 ** t) + eps
        p = p - lr / (1 - beta1 ** t) * m / denom

    Parameters
    ----------
    lr : float, default 1e-3
        Base learning rate, > 0.
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the first and second moments, each in [0, 1).
    eps : float, default 1e-8
        Added to the denominator, >= 0.
    weight_decay : float, default 0.0
        L2 penalty added to the gradient, >= 0.
    clip_norm : float or None, default None
        Clip the gradient's global L2 norm to this value (see :func:`clip_scale`).
    schedule : Schedule or None, default None
        Learning-rate schedule; None keeps ``lr``.

    Examples
    --------
    >>> import numpy as np
    >>> from streamrnn.optim import Adam, apply_update
    >>> opt = Adam(lr=0.01)
    >>> kind, hyper = opt.kernel_args()
    >>> P, G = np.array([1.0, 2.0]), np.array([0.5, -3.0])
    >>> M1, M2 = np.zeros(2), np.zeros(2)
    >>> apply_update(kind, hyper, 1, opt.lr_at(1), 1.0, P, G, M1, M2, np.array([[0, 2]]))
    >>> P.round(6)  # the first step is lr * sign(g)
    array([0.99, 2.01])
    """

    _kind = KIND_ADAM

    def __init__(
        self,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        clip_norm=None,
        schedule=None,
    ):
        self.lr = _positive(lr, "lr")
        self.betas = _betas(betas)
        self.eps = _non_negative(eps, "eps")
        self.weight_decay = _non_negative(weight_decay, "weight_decay")
        self.clip_norm = _clip_norm(clip_norm)
        self.schedule = _schedule(schedule)

    def _hyper(self):
        hyper = super()._hyper()
        hyper[HYPER_BETA1], hyper[HYPER_BETA2] = self.betas
        hyper[HYPER_EPS] = self.eps
        return hyper


class AdamW(Adam):
    """Adam with decoupled weight decay, as ``torch.optim.AdamW``.

    Each update first shrinks the parameters, ``p = p * (1 - lr * weight_decay)``
    (``lr`` of this update, schedule included), then does an :class:`Adam`
    update without the L2 term.

    Parameters
    ----------
    lr : float, default 1e-3
        Base learning rate, > 0.
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the first and second moments, each in [0, 1).
    eps : float, default 1e-8
        Added to the denominator, >= 0.
    weight_decay : float, default 0.01
        Decoupled decay rate, >= 0.
    clip_norm : float or None, default None
        Clip the gradient's global L2 norm to this value (see :func:`clip_scale`).
    schedule : Schedule or None, default None
        Learning-rate schedule; None keeps ``lr``.

    Examples
    --------
    >>> import numpy as np
    >>> from streamrnn.optim import AdamW, apply_update
    >>> opt = AdamW(lr=0.01, weight_decay=0.5)
    >>> kind, hyper = opt.kernel_args()
    >>> P, G = np.array([1.0, 2.0]), np.array([0.5, -3.0])
    >>> M1, M2 = np.zeros(2), np.zeros(2)
    >>> apply_update(kind, hyper, 1, opt.lr_at(1), 1.0, P, G, M1, M2, np.array([[0, 2]]))
    >>> P.round(6)  # p * (1 - 0.005) - 0.01 * sign(g)
    array([0.985, 2.   ])
    """

    _kind = KIND_ADAMW

    def __init__(
        self,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.01,
        clip_norm=None,
        schedule=None,
    ):
        super().__init__(lr, betas, eps, weight_decay, clip_norm, schedule)


# --------------------------------------------------------------------------
# Kernels


@kernel
def _sum_squares(G, segs):
    """Sum of squares over the ranges in float64: entry ``i`` of a range goes to
    partial sum ``i % 16``, and the 16 are added in order at the end (a fixed
    order, so the result is always the same, and one that vectorises)."""
    acc = np.zeros(16)
    for s in range(segs.shape[0]):
        a = segs[s, 0]
        v = G[a : a + segs[s, 1]]
        n = v.shape[0]
        full = n - n % 16
        for i in range(0, full, 16):
            for u in range(16):
                x = np.float64(v[i + u])
                acc[u] += x * x
        for i in range(full, n):
            x = np.float64(v[i])
            acc[i - full] += x * x
    total = 0.0
    for u in range(16):
        total += acc[u]
    return total


@kernel
def grad_norm(G, segs):
    """L2 norm of ``G`` over the trained ranges, summed in float64 in a fixed order.

    Non-finite when an entry in the ranges is: nan if any is nan, else inf.
    Entries outside ``segs`` are not read. Should the sum of squares overflow
    while every entry is finite, the norm is recomputed with the entries scaled
    by the largest one.

    Parameters
    ----------
    G : ndarray of float32 or float64, 1-D
    segs : ndarray of int64, shape (n, 2)
        ``(start, length)`` of each trained range.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from streamrnn.optim import grad_norm
    >>> segs = np.array([[0, 1], [2, 1]])
    >>> grad_norm(np.array([3.0, np.inf, 4.0]), segs)
    5.0
    >>> grad_norm(np.array([3.0, 0.0, np.nan]), segs)
    nan
    """
    total = _sum_squares(G, segs)
    if total < np.inf:
        return np.sqrt(total)
    # A non-finite entry, or overflow: look for the largest magnitude.
    big = 0.0
    for s in range(segs.shape[0]):
        start = segs[s, 0]
        for i in range(start, start + segs[s, 1]):
            a = abs(np.float64(G[i]))
            if not a <= big:  # larger, or nan
                if np.isnan(a):
                    return a
                big = a
    if big == np.inf:
        return big
    total = 0.0
    for s in range(segs.shape[0]):
        start = segs[s, 0]
        for i in range(start, start + segs[s, 1]):
            x = np.float64(G[i]) / big
            total += x * x
    return big * np.sqrt(total)


@kernel
def clip_scale(hyper, norm):
    """The factor that clips a gradient of L2 norm ``norm``.

    As ``torch.nn.utils.clip_grad_norm_(params, max_norm)``:
    ``min(max_norm / (norm + 1e-6), 1)``, with ``max_norm = hyper[HYPER_CLIP_NORM]``;
    1.0 when that is 0 (no clipping). A nan norm gives nan.

    Parameters
    ----------
    hyper : ndarray of float64
        From :meth:`Optimizer.kernel_args`.
    norm : float
        From :func:`grad_norm`.

    Returns
    -------
    float

    Examples
    --------
    >>> from streamrnn.optim import SGD, clip_scale
    >>> _, hyper = SGD(clip_norm=1.0).kernel_args()
    >>> round(clip_scale(hyper, 4.0), 6), clip_scale(hyper, 0.5)
    (0.25, 1.0)
    """
    max_norm = hyper[HYPER_CLIP_NORM]
    if max_norm <= 0.0:
        return 1.0
    coef = max_norm / (norm + CLIP_EPS)
    if coef > 1.0:
        return 1.0
    return coef


@intrinsic
def _fma(typingctx, a, b, c):
    """``a * b + c`` rounded once (``llvm.fma``), for three floats of one type."""
    if not (a == b == c and a in (types.float32, types.float64)):
        return None

    def codegen(context, builder, signature, args):
        ty = args[0].type
        fnty = ir.FunctionType(ty, [ty, ty, ty])
        fma = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.fma.{ty.intrinsic_name}")
        return builder.call(fma, args)

    return a(a, a, a), codegen


# The update loops below are compiled without fast-math, so that every
# operation rounds where PyTorch's CPU kernels round; the multiply-adds that
# those kernels fuse (``add`` with ``alpha``, ``addcmul``, ``lerp``) are
# explicit ``_fma`` calls. Each line's comment names the PyTorch operation.


@exact_kernel
def _sgd_range(P, G, M1, c, weight_decay, momentum, neg_lr, first, has_momentum, nesterov):
    """SGD over one range (views, so that indices start at 0 and the loop vectorises).

    A gradient scale of 1 and a weight decay of 0 change nothing exactly, so
    they need no branch.
    """
    n = P.shape[0]
    if not has_momentum:
        for i in range(n):
            p = P[i]
            g = _fma(weight_decay, p, G[i] * c)  # grad.mul_(clip).add(param, alpha=wd)
            P[i] = _fma(neg_lr, g, p)  # param.add_(grad, alpha=-lr)
    elif first:
        for i in range(n):
            p = P[i]
            g = _fma(weight_decay, p, G[i] * c)
            M1[i] = g  # buf = grad.clone()
            g = _fma(momentum, g, g) if nesterov else g  # grad.add(buf, alpha=momentum)
            P[i] = _fma(neg_lr, g, p)
    else:
        for i in range(n):
            p = P[i]
            g = _fma(weight_decay, p, G[i] * c)
            buf = M1[i] * momentum + g  # buf.mul_(momentum).add_(grad)
            M1[i] = buf
            g = _fma(momentum, buf, g) if nesterov else buf
            P[i] = _fma(neg_lr, g, p)


@exact_kernel
def _sgd_update(hyper, t, lr, scale, P, G, M1, segs):
    cast = P.dtype.type
    momentum = cast(hyper[HYPER_MOMENTUM])
    weight_decay = cast(hyper[HYPER_WEIGHT_DECAY])
    has_momentum = hyper[HYPER_MOMENTUM] != 0.0
    nesterov = hyper[HYPER_NESTEROV] != 0.0
    for s in range(segs.shape[0]):
        a = segs[s, 0]
        b = a + segs[s, 1]
        _sgd_range(P[a:b], G[a:b], M1[a:b] if has_momentum else M1, cast(scale), weight_decay,
                   momentum, cast(-lr), t == 1, has_momentum, nesterov)  # fmt: skip


@exact_kernel
def _adam_range(P, G, M1, M2, c, l2, shrink, lerp_coef, small_w, b2, c2, eps, neg_step, bc2_sqrt):
    """Adam or AdamW over one range (views: indices from 0, so the loop vectorises).

    The clipping scale, the L2 term and the decoupled decay are applied with
    neutral values (1, 0, 1) when unused: exact, and branch-free.
    """
    for i in range(P.shape[0]):
        p = P[i] * shrink  # param.mul_(1 - lr * weight_decay)  (AdamW)
        g = _fma(l2, p, G[i] * c)  # grad.mul_(clip).add(param, alpha=weight_decay)  (Adam)
        m = M1[i]
        m = _fma(lerp_coef, g - m, m if small_w else g)  # exp_avg.lerp_(grad, 1 - beta1)
        M1[i] = m
        # exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        v = _fma(c2 * g, g, M2[i] * b2)
        M2[i] = v
        denom = np.sqrt(v) / bc2_sqrt + eps  # (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps)
        P[i] = p + (neg_step * m) / denom  # param.addcdiv_(exp_avg, denom, -step_size)


@exact_kernel
def _adam_update(decoupled, hyper, t, lr, scale, P, G, M1, M2, segs):
    cast = P.dtype.type
    beta1 = hyper[HYPER_BETA1]
    beta2 = hyper[HYPER_BETA2]
    weight_decay = hyper[HYPER_WEIGHT_DECAY]
    l2 = cast(0.0 if decoupled else weight_decay)
    shrink = cast(1.0 - lr * weight_decay) if decoupled else cast(1.0)
    # torch.lerp(m, g, w) = fma(w, g - m, m) for w < 0.5, else fma(w - 1, g - m, g)
    w = cast(1.0 - beta1)
    small_w = w < 0.5
    lerp_coef = w if small_w else w - cast(1.0)
    step = np.float64(t)
    neg_step = cast(-(lr / (1.0 - beta1**step)))
    bc2_sqrt = cast((1.0 - beta2**step) ** 0.5)
    for s in range(segs.shape[0]):
        a = segs[s, 0]
        b = a + segs[s, 1]
        _adam_range(P[a:b], G[a:b], M1[a:b], M2[a:b], cast(scale), l2, shrink, lerp_coef,
                    small_w, cast(beta2), cast(1.0 - beta2), cast(hyper[HYPER_EPS]), neg_step,
                    bc2_sqrt)  # fmt: skip


@kernel
def apply_update(kind, hyper, t, lr, scale, P, G, M1, M2, segs):
    """One optimizer update of ``P`` (and its state) in place, over ``segs`` only.

    The gradient used is ``G * scale``; ``G`` itself is not written.

    Parameters
    ----------
    kind : int
        ``KIND_SGD``, ``KIND_ADAM`` or ``KIND_ADAMW``, from
        :meth:`Optimizer.kernel_args`.
    hyper : ndarray of float64
        From :meth:`Optimizer.kernel_args`.
    t : int
        Update number, 1 for the first update (count only updates applied).
    lr : float
        Learning rate of this update, from :meth:`Optimizer.lr_at`.
    scale : float
        Clipping factor from :func:`clip_scale`; 1.0 for none.
    P, G, M1, M2 : ndarray, 1-D, all float32 or all float64
        Parameters, gradient and state (see the module notes); an unused state
        array may have length 0.
    segs : ndarray of int64, shape (n, 2)
        ``(start, length)`` of each trained range.

    Examples
    --------
    >>> import numpy as np
    >>> from streamrnn.optim import SGD, apply_update
    >>> kind, hyper = SGD().kernel_args()
    >>> P = np.array([1.0, 1.0, 1.0], dtype=np.float32)
    >>> G = np.ones(3, dtype=np.float32)
    >>> unused = np.zeros(0, dtype=np.float32)
    >>> apply_update(kind, hyper, 1, 0.5, 1.0, P, G, unused, unused, np.array([[1, 2]]))
    >>> P
    array([1. , 0.5, 0.5], dtype=float32)
    """
    if kind == KIND_SGD:
        _sgd_update(hyper, t, lr, scale, P, G, M1, segs)
    else:
        _adam_update(kind == KIND_ADAMW, hyper, t, lr, scale, P, G, M1, M2, segs)
