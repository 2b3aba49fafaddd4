"""An online linear autoregression per series: recursive least squares on its last values.

The AR(``p``) of a series forecasts its value ``d`` steps ahead from an intercept
and its last ``p`` forward-filled values, ``y[t + d] ~ w . [1, v[t], .., v[t - p +
1]]``, with the weights fitted by recursive least squares (forgetting factor 1,
weights starting at 0 and ``P`` at :data:`P0` times the identity): each step learns
from its own value with the regressor of ``d`` steps before, then forecasts. It is
the linear baseline of :mod:`streamrnn.evaluate` (``mase_ar``), and what a
learner blends into its forecasts (``ar``, see :mod:`streamrnn.relative`).

The state of one series and target is one packed float64 row (:func:`layout`),
so that a key's state is carried from chunk to chunk, grown, saved and compacted
like any other per-key array, and a series' steps run in order give the same bits
however the stream is cut.
"""

import math

import numpy as np

from .core.jit import exact_kernel

#: Starting covariance of the recursive least squares: P = P0 * I.
P0 = 1e3


@exact_kernel
def layout(p, d):
    """Offsets of the parts of one packed state row, and its width.

    A row holds, for one key and one target: the weights ``w`` (intercept, then
    lags 1 .. p), the square-root factor ``S`` of ``P = S S^T`` (row-major), a ring
    of the last ``p + d - 1`` forward-filled values (step ``s`` at ``s % (p + d - 1)``)
    and a ring of the forecasts waiting for their step (step ``s`` at ``s % d``).
    """
    m = p + 1
    W = 0
    S = W + m
    V = S + m * m
    F = V + p + d - 1
    return W, S, V, F, F + d


def fresh(n, targets, p, d):
    """State rows of ``n`` new keys: w = 0, P = P0 I, nothing seen, nothing waiting."""
    W, S, V, F, width = layout(p, d)
    m = p + 1
    row = np.full(width, np.nan)
    row[W:S] = 0.0
    row[S:V] = (math.sqrt(P0) * np.eye(m)).ravel()
    return np.tile(row, (n, targets, 1))


@exact_kernel
def _window(st, V, L, t, p, x):
    """``x = [1, v(t), v(t - 1), .., v(t - p + 1)]`` from the ring of forward-filled
    values; False when step ``t`` has fewer than ``p`` of them."""
    if t - p + 1 < 0:
        return False
    x[0] = 1.0
    at = t % L  # one division, then walk back around the ring
    for j in range(1, p + 1):
        v = st[V + at]
        if np.isnan(v):
            return False
        x[j] = v
        at = at - 1 if at > 0 else L - 1
    return True


@exact_kernel
def _learn(st, W, S, m, x, phi, g, y):
    """One recursive least squares step towards ``y`` from ``x``, in Potter's square-root
    form: the same update as ``k = P x / (1 + x^T P x)``, ``w += k (y - w^T x)``,
    ``P -= k x^T P``, made on the factor ``S`` of ``P = S S^T``, so that ``P`` stays
    positive semi-definite and the divisor ``1 + x^T P x`` is at least 1. A step whose
    divisor or error is not finite (values too large to square) is skipped."""
    beta = 1.0
    for a in range(m):  # phi = S^T x
        acc = 0.0
        for b in range(m):
            acc += st[S + b * m + a] * x[b]
        phi[a] = acc
        beta += acc * acc
    err = y
    for a in range(m):
        err -= st[W + a] * x[a]
    if not (np.isfinite(beta) and np.isfinite(err)):
        return
    for a in range(m):  # g = S phi = P x
        acc = 0.0
        for b in range(m):
            acc += st[S + a * m + b] * phi[b]
        g[a] = acc
    shrink = 1.0 / (beta + math.sqrt(beta))
    for a in range(m):
        st[W + a] += g[a] / beta * err
        for b in range(m):  # S -= g phi^T / (beta + sqrt(beta))
            st[S + a * m + b] -= g[a] * phi[b] * shrink


@exact_kernel
def run(slots, steps, y, state, p, d, due, ahead):
    """Online AR(p) forecasts of each row's targets: those made ``d`` steps before it,
    and those it makes for ``d`` steps after it.

    Row ``i`` is step ``steps[i]`` of the key whose state is ``state[slots[i]]``
    (one packed row per target, see :func:`layout`); the rows of a key come in
    its arrival order (keys are independent, so how keys interleave does not
    matter). For each target, the row: takes the forecast made for it (NaN: none)
    into ``due[i]``; learns from its value, when finite, with the regressor that
    forecast was made from; forward-fills its value into the ring; and forecasts
    step ``steps[i] + d`` from its last ``p`` values into ``ahead[i]`` (NaN while it
    has fewer than ``p``).
    """
    N, T = y.shape
    W, S, V, F, _ = layout(p, d)
    m = p + 1
    L = p + d - 1
    x = np.empty(m)
    phi = np.empty(m)
    g = np.empty(m)
    for i in range(N):
        k, s = slots[i], steps[i]
        for c in range(T):
            st = state[k, c]
            v = y[i, c]
            due[i, c] = st[F + s % d]
            if np.isfinite(v):
                if _window(st, V, L, s - d, p, x):
                    _learn(st, W, S, m, x, phi, g, v)
            else:
                v = st[V + (s - 1) % L] if s > 0 else np.nan
            st[V + s % L] = v
            forecast = np.nan
            if _window(st, V, L, s, p, x):
                forecast = 0.0
                for a in range(m):
                    forecast += st[W + a] * x[a]
            st[F + s % d] = forecast
            ahead[i, c] = forecast


def rollout_windows(state, seen, p):
    """The weights ``(n, T, p + 1)`` and last ``p`` forward-filled values ``(n, T, p)``
    (latest first; NaN where a series has fewer) of one-step (``d = 1``) states
    ``state`` (n, T, width) whose series have ``seen`` (n,) steps."""
    W, S, V, F, _ = layout(p, 1)
    n, T = state.shape[:2]
    values = np.full((n, T, p), np.nan)
    for j in range(p):
        t = seen - 1 - j
        ok = t >= 0
        at = V + np.where(ok, t, 0) % p
        picked = np.take_along_axis(state, np.broadcast_to(at[:, None, None], (n, T, 1)), axis=2)
        values[:, :, j] = np.where(ok[:, None], picked[:, :, 0], np.nan)
    return state[:, :, W : W + p + 1], values
