"""Slow, obviously-correct NumPy references, written from the PyTorch equations.

Everything is computed in float64 with matrix products in PyTorch's layout,
independently of the kernels' transposed, flattened buffers.
"""

import numpy as np


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def cell_step(cell, p, layer, x, h, c):
    """One step of one layer for a batch: ``x`` (B, n_in), ``h``/``c`` (B, H)."""
    W_ih = p[f"weight_ih_l{layer}"]
    W_hh = p[f"weight_hh_l{layer}"]
    b_ih = p.get(f"bias_ih_l{layer}", np.zeros(W_ih.shape[0]))
    b_hh = p.get(f"bias_hh_l{layer}", np.zeros(W_hh.shape[0]))
    gi = x @ W_ih.T + b_ih
    gh = h @ W_hh.T + b_hh
    if cell == "rnn_tanh":
        return np.tanh(gi + gh), c
    if cell == "rnn_relu":
        return np.maximum(gi + gh, 0.0), c
    if cell == "gru":
        H = h.shape[1]
        r = sigmoid(gi[:, :H] + gh[:, :H])
        z = sigmoid(gi[:, H : 2 * H] + gh[:, H : 2 * H])
        n = np.tanh(gi[:, 2 * H :] + r * gh[:, 2 * H :])
        return (1.0 - z) * n + z * h, c
    if cell == "lstm":
        H = h.shape[1]
        g = gi + gh
        i = sigmoid(g[:, :H])
        f = sigmoid(g[:, H : 2 * H])
        gg = np.tanh(g[:, 2 * H : 3 * H])
        o = sigmoid(g[:, 3 * H :])
        c = f * c + i * gg
        return o * np.tanh(c), c
    raise ValueError(cell)


def forward(cell, params, x, h0=None, c0=None):
    """Reference forward pass.

    ``x`` is (T, B, I); ``h0``/``c0`` are (L, B, H) or None. Returns
    ``(y, h, c)`` with ``y`` (T, B, out), the head applied when present.
    """
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    x = np.asarray(x, np.float64)
    T, B, _ = x.shape
    L = sum(1 for k in p if k.startswith("weight_ih_l"))
    H = p["weight_hh_l0"].shape[1]
    h = np.zeros((L, B, H)) if h0 is None else np.array(h0, np.float64)
    c = np.zeros((L, B, H)) if c0 is None else np.array(c0, np.float64)
    ys = []
    for t in range(T):
        inp = x[t]
        for layer in range(L):
            h[layer], c[layer] = cell_step(cell, p, layer, inp, h[layer], c[layer])
            inp = h[layer]
        out = inp
        if "head.weight" in p:
            out = inp @ p["head.weight"].T + p["head.bias"]
        ys.append(np.array(out))  # h is updated in place next step
    return np.stack(ys), h, c


def forecast(cell, params, h, c, x_last, horizon, feedback, future=None):
    """Reference autoregressive rollout for one series from state ``h``/``c`` (L, H)."""
    h = np.array(h, np.float64)[:, None, :]
    c = np.array(c, np.float64)[:, None, :]
    x = np.array(x_last, np.float64)
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    top = h[-1]
    y = top @ p["head.weight"].T + p["head.bias"] if "head.weight" in p else top
    out = [y[0]]
    for k in range(1, horizon):
        if future is not None:
            x = np.array(future[k - 1], np.float64)
        for o, i in feedback:
            x[i] = out[-1][o]
        y, h, c = forward(cell, params, x[None, None, :], h, c)
        out.append(y[0, 0])
    return np.stack(out)


# -- feeds ----------------------------------------------------------------------------------


def feed_rows(
    rows,
    features,
    targets=(),
    *,
    late="error",
    duplicates="error",
    missing="error",
    time_delta=False,
    dt_scale=1.0,
    grid=None,
    aggregate="mean",
    scale=None,
    freeze_after=None,
):
    """What a feed should emit, one row at a time with dicts and lists.

    ``rows`` is a list of ``(key, time, {column: value})`` with times as plain
    numbers (ns for timestamps); missing values are NaN. Returns a list of
    ``(key, time, x, y)``. Scaling uses the mean and population standard
    deviation of all values seen so far, recomputed from the list each time.
    """
    values = list(dict.fromkeys([*features, *targets]))
    policies = {c: (missing.get(c, "error") if isinstance(missing, dict) else missing)
                for c in features}  # fmt: skip
    hold = grid is not None or duplicates == "last"
    last_time, pending, order = {}, {}, []
    released = []  # (key, time, {column: value})

    def release(key):
        bin_time, group = pending.pop(key)
        if grid is None:
            released.append((key, bin_time, dict(group[-1])))
            return
        out = {}
        for c in values:
            seen = [g[c] for g in group if not np.isnan(g[c])]
            if not seen:
                out[c] = np.nan
            elif aggregate == "mean":
                out[c] = sum(seen) / len(seen)
            else:
                out[c] = seen[-1]
        released.append((key, bin_time, out))

    for key, t, vals in rows:
        if key not in order:
            order.append(key)
        if key in last_time and t < last_time[key]:
            if late == "error":
                raise ValueError(f"late row {key} {t}")
            continue
        if key in last_time and t == last_time[key]:
            if duplicates == "error":
                raise ValueError(f"duplicate {key} {t}")
            if duplicates == "first":
                continue
        last_time[key] = t
        if not hold:
            released.append((key, t, dict(vals)))
            continue
        b = t if grid is None else (t // grid) * grid
        if key in pending and pending[key][0] == b:
            pending[key][1].append(vals)
            continue
        if key in pending:
            prev = pending[key][0]
            release(key)
            if grid is not None:
                for k in range(prev + grid, b, grid):
                    released.append((key, k, {c: np.nan for c in values}))
        pending[key] = (b, [vals])
    for key in order:
        if key in pending:
            release(key)

    seen, last_value, prev_time, out = {}, {}, {}, []
    for key, t, vals in released:
        x, y, filled = [], [], {}
        for c in values:
            v = vals[c]
            if np.isinf(v):
                raise ValueError(f"inf in {c}")
            group = key if scale == "per_key" else None
            history = seen.setdefault((group, c), [])
            if not np.isnan(v):
                last_value[(key, c)] = v
                if freeze_after is None or len(history) < freeze_after:
                    history.append(v)
            elif c in policies:
                policy = policies[c]
                if policy == "error":
                    raise ValueError(f"missing {c}")
                if policy == "ffill" or isinstance(policy, tuple):
                    if (key, c) in last_value:
                        v = last_value[(key, c)]
                    elif isinstance(policy, tuple):
                        v = policy[1]
                    else:
                        raise ValueError(f"nothing to carry forward in {c}")
                elif policy != "mask":
                    v = float(policy)
            loc, sd = (np.mean(history), np.std(history)) if scale and history else (0.0, 0.0)
            sd = sd if sd > 0 else 1.0
            filled[c] = (0.0 if np.isnan(v) else (v - loc) / sd) if scale else v
            if c in targets:
                y.append((vals[c] - loc) / sd if scale else vals[c])
        for c in features:
            x.append(0.0 if np.isnan(filled[c]) else filled[c])
        if time_delta:
            x.append((t - prev_time[key]) * dt_scale if key in prev_time else 0.0)
        prev_time[key] = t
        x += [float(np.isnan(vals[c])) for c in features if policies[c] == "mask"]
        out.append((key, t, x, y))
    return out


# -- backpropagation through time ------------------------------------------------------------

LOSS_DEFAULTS = {
    "mse": {},
    "mae": {},
    "huber": {"delta": 1.0},
    "pinball": {"quantiles": (0.1, 0.5, 0.9)},
    "cross_entropy": {},
}
_LOSS_CLASSES = {"mse": "mse", "mae": "mae", "huber": "huber", "pinball": "pinball",
                 "crossentropy": "cross_entropy"}  # fmt: skip


def loss_spec(loss):
    """``(name, options)`` from a name, a ``(name, options)`` pair or a loss object.

    A loss object is read by its class name (``MSE``, ``Huber``, ``CrossEntropy`` ...)
    and its ``delta`` / ``quantiles`` attributes.
    """
    if isinstance(loss, str):
        name, given = loss, {}
    elif isinstance(loss, tuple):
        name, given = loss
    else:
        name = _LOSS_CLASSES[type(loss).__name__.lower()]
        given = {k: getattr(loss, k) for k in LOSS_DEFAULTS[name] if hasattr(loss, k)}
    options = dict(LOSS_DEFAULTS[name], **given)
    if "quantiles" in options:
        options["quantiles"] = tuple(float(q) for q in np.ravel(options["quantiles"]))
    return name, options


def loss_and_grad(loss, yhat, y):
    """Mean loss over labeled entries and its gradient with respect to ``yhat``.

    ``yhat`` is (T, B, out), ``y`` is (T, B, n_targets) with NaN where there is
    no label. Each entry is handled on its own, in plain loops.
    """
    name, options = loss_spec(loss)
    T, B, O = yhat.shape
    total, count = 0.0, 0
    dyhat = np.zeros_like(yhat)  # gradient of the sum; divided by count at the end
    for t in range(T):
        for b in range(B):
            if name == "cross_entropy":
                label = y[t, b, 0]
                if np.isnan(label):
                    continue
                k = int(label)
                top = max(yhat[t, b])
                exps = [np.exp(v - top) for v in yhat[t, b]]
                log_sum = top + np.log(sum(exps))
                total += log_sum - yhat[t, b, k]
                count += 1
                for j in range(O):
                    dyhat[t, b, j] = exps[j] / sum(exps) - (1.0 if j == k else 0.0)
                continue
            for j in range(y.shape[2]):
                label = y[t, b, j]
                if np.isnan(label):
                    continue
                if name == "pinball":
                    qs = options["quantiles"]
                    for k, q in enumerate(qs):
                        col = j * len(qs) + k
                        u = label - yhat[t, b, col]
                        total += max(q * u, (q - 1.0) * u)
                        dyhat[t, b, col] = -q if u > 0 else 1.0 - q
                        count += 1
                    continue
                d = yhat[t, b, j] - label
                if name == "mse":
                    total += d * d
                    dyhat[t, b, j] = 2.0 * d
                elif name == "mae":
                    total += abs(d)
                    dyhat[t, b, j] = float(np.sign(d))
                elif name == "huber":
                    delta = options["delta"]
                    if abs(d) < delta:
                        total += 0.5 * d * d
                        dyhat[t, b, j] = d
                    else:
                        total += delta * (abs(d) - 0.5 * delta)
                        dyhat[t, b, j] = delta * float(np.sign(d))
                else:
                    raise ValueError(name)
                count += 1
    if count == 0:
        return 0.0, np.zeros_like(yhat)
    return total / count, dyhat / count


def cell_backward(cell, p, layer, saved, dh, dc, grads):
    """Backward through one step of one layer.

    ``saved`` holds the step's input ``x``, previous ``h``/``c`` and its
    activations; ``dh``/``dc`` are the gradients reaching the new ``h``/``c``.
    Adds the parameter gradients into ``grads`` and returns the gradients of
    the step's input and of the previous ``h`` and ``c``.
    """
    W_ih = p[f"weight_ih_l{layer}"]
    W_hh = p[f"weight_hh_l{layer}"]
    x, h_prev, c_prev = saved["x"], saved["h_prev"], saved["c_prev"]
    dc_prev = np.zeros_like(dc)
    if cell == "rnn_tanh":
        h = saved["h"]
        da = dh * (1.0 - h * h)  # tanh' = 1 - tanh^2
        dgi = dgh = da
    elif cell == "rnn_relu":
        da = dh * (saved["a"] > 0.0)  # relu' = 1 above 0, else 0
        dgi = dgh = da
    elif cell == "gru":
        r, z, n, gh_n = saved["r"], saved["z"], saved["n"], saved["gh_n"]
        # h' = (1 - z) n + z h_prev
        dn = dh * (1.0 - z)
        dz = dh * (h_prev - n)
        # n = tanh(gi_n + r * gh_n)
        dn_pre = dn * (1.0 - n * n)
        dr = dn_pre * gh_n
        dr_pre = dr * r * (1.0 - r)
        dz_pre = dz * z * (1.0 - z)
        dgi = np.concatenate([dr_pre, dz_pre, dn_pre], axis=1)
        dgh = np.concatenate([dr_pre, dz_pre, dn_pre * r], axis=1)
    elif cell == "lstm":
        i, f, g, o, c = saved["i"], saved["f"], saved["g"], saved["o"], saved["c"]
        tc = np.tanh(c)
        # h = o tanh(c);  c = f c_prev + i g
        do = dh * tc
        dc = dc + dh * o * (1.0 - tc * tc)
        di = dc * g
        df = dc * c_prev
        dg = dc * i
        dc_prev = dc * f
        da = np.concatenate(
            [di * i * (1.0 - i), df * f * (1.0 - f), dg * (1.0 - g * g), do * o * (1.0 - o)],
            axis=1,
        )
        dgi = dgh = da
    else:
        raise ValueError(cell)
    grads[f"weight_ih_l{layer}"] += dgi.T @ x
    grads[f"weight_hh_l{layer}"] += dgh.T @ h_prev
    if f"bias_ih_l{layer}" in grads:
        grads[f"bias_ih_l{layer}"] += dgi.sum(axis=0)
        grads[f"bias_hh_l{layer}"] += dgh.sum(axis=0)
    dx = dgi @ W_ih
    dh_prev = dgh @ W_hh
    if cell == "gru":
        dh_prev = dh_prev + dh * z
    return dx, dh_prev, dc_prev


def cell_forward_saving(cell, p, layer, x, h_prev, c_prev):
    """One step of one layer, keeping what :func:`cell_backward` needs."""
    W_ih = p[f"weight_ih_l{layer}"]
    W_hh = p[f"weight_hh_l{layer}"]
    b_ih = p.get(f"bias_ih_l{layer}", np.zeros(W_ih.shape[0]))
    b_hh = p.get(f"bias_hh_l{layer}", np.zeros(W_hh.shape[0]))
    H = h_prev.shape[1]
    gi = x @ W_ih.T + b_ih
    gh = h_prev @ W_hh.T + b_hh
    saved = {"x": x, "h_prev": h_prev, "c_prev": c_prev}
    c = c_prev
    if cell == "rnn_tanh":
        h = np.tanh(gi + gh)
    elif cell == "rnn_relu":
        saved["a"] = gi + gh
        h = np.maximum(gi + gh, 0.0)
    elif cell == "gru":
        r = sigmoid(gi[:, :H] + gh[:, :H])
        z = sigmoid(gi[:, H : 2 * H] + gh[:, H : 2 * H])
        n = np.tanh(gi[:, 2 * H :] + r * gh[:, 2 * H :])
        h = (1.0 - z) * n + z * h_prev
        saved.update(r=r, z=z, n=n, gh_n=gh[:, 2 * H :])
    elif cell == "lstm":
        a = gi + gh
        i = sigmoid(a[:, :H])
        f = sigmoid(a[:, H : 2 * H])
        g = np.tanh(a[:, 2 * H : 3 * H])
        o = sigmoid(a[:, 3 * H :])
        c = f * c_prev + i * g
        h = o * np.tanh(c)
        saved.update(i=i, f=f, g=g, o=o, c=c)
    else:
        raise ValueError(cell)
    saved["h"] = h
    return h, c, saved


def backprop(model, x, y, state=None, loss="mse"):
    """Forward in float64 keeping every activation, then backward by hand.

    Returns ``(loss_value, grads, final_state, state_grad)``: ``grads`` keyed
    like ``model.state_dict()``, ``final_state`` and ``state_grad`` (the
    gradient with respect to the initial state) in the layout of
    ``model.zero_state()``. Everything is float64.
    """
    cell, L = model.cell, model.num_layers
    p = {k: np.asarray(v, np.float64) for k, v in model.state_dict().items()}
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    batched = x.ndim == 3
    if not batched:
        x, y = x[:, None, :], y[:, None, :]
    T, B, _ = x.shape
    H = model.hidden_size
    lstm = cell == "lstm"
    if state is None:
        h0, c0 = np.zeros((L, B, H)), np.zeros((L, B, H))
    else:
        h0, c0 = state if lstm else (state, np.zeros_like(np.asarray(state)))
        h0 = np.asarray(h0, np.float64).reshape(L, B, H)
        c0 = np.asarray(c0, np.float64).reshape(L, B, H)

    # forward
    saved = [[None] * L for _ in range(T)]
    h = [h0[layer] for layer in range(L)]
    c = [c0[layer] for layer in range(L)]
    tops, yhat = [], []
    for t in range(T):
        inp = x[t]
        for layer in range(L):
            h[layer], c[layer], saved[t][layer] = cell_forward_saving(
                cell, p, layer, inp, h[layer], c[layer]
            )
            inp = h[layer]
        tops.append(inp)
        yhat.append(inp @ p["head.weight"].T + p["head.bias"] if "head.weight" in p else inp)
    value, dyhat = loss_and_grad(loss, np.stack(yhat), y)

    # backward
    grads = {k: np.zeros_like(v) for k, v in p.items()}
    dh_next = [np.zeros((B, H)) for _ in range(L)]
    dc_next = [np.zeros((B, H)) for _ in range(L)]
    for t in reversed(range(T)):
        if "head.weight" in p:
            grads["head.weight"] += dyhat[t].T @ tops[t]
            grads["head.bias"] += dyhat[t].sum(axis=0)
            from_above = dyhat[t] @ p["head.weight"]
        else:
            from_above = dyhat[t]
        for layer in reversed(range(L)):
            dh = dh_next[layer] + from_above
            from_above, dh_next[layer], dc_next[layer] = cell_backward(
                cell, p, layer, saved[t][layer], dh, dc_next[layer], grads
            )

    def layout(parts):
        parts = [np.stack(v) if batched else np.stack(v)[:, 0] for v in parts]
        return tuple(parts) if lstm else parts[0]

    final = layout([h, c] if lstm else [h])
    state_grad = layout([dh_next, dc_next] if lstm else [dh_next])
    return value, grads, final, state_grad


def gradients(model, x, y, state=None, loss="mse"):
    """Reference for ``model.gradients``: ``(loss_value, grads, final_state)`` in float64.

    ``loss`` is a name, a ``(name, options)`` pair such as ``("huber", {"delta": 0.5})``,
    or a loss object (see :func:`loss_spec`).
    """
    value, grads, final, _ = backprop(model, x, y, state, loss)
    return value, grads, final


# -- online learning -------------------------------------------------------------------------------


class _Weights:
    """What :func:`backprop` reads from a model, with the weights held apart from it."""

    def __init__(self, model, params):
        self.cell = model.cell
        self.num_layers = model.num_layers
        self.hidden_size = model.hidden_size
        self._params = params

    def state_dict(self):
        return self._params


def labeled_entries(loss, y):
    """How many entries of the targets ``y`` count in the mean of ``loss``."""
    name, options = loss_spec(loss)
    y = np.asarray(y, np.float64)
    if name == "cross_entropy":
        return int(np.sum(~np.isnan(y[..., 0])))
    n = int(np.sum(~np.isnan(y)))
    return n * len(options["quantiles"]) if name == "pinball" else n


def online_learning(model, rows, k1, k2, horizon, batch, lr, loss="mse"):
    """Reference for ``OnlineLearner`` with plain SGD, one row at a time.

    Follows the rule of :mod:`streamrnn.core.tbptt` literally. Each key counts its
    steps ``c = 1, 2, ...``; at step ``c`` the label of step ``m = c - horizon``
    arrives, and when ``m >= k1`` and ``m % k1 == 0`` a window closes: the
    network runs from the key's state after step ``a = max(0, m - k2)`` over
    steps ``a + 1 .. m`` with the current weights, the outputs of the last
    ``k1`` steps are scored (step ``t`` against the targets of step
    ``t + horizon``) and the gradient of the summed loss is kept. After every
    ``batch`` windows, over all keys in row order, the weights take one step of
    ``lr`` times the summed gradients divided by the labeled entries (none: no
    step). Each row's output comes from the weights before that.

    ``rows`` is a list of ``(key, x, y)``; ``y`` None marks a row that is only
    predicted, after which the key's history starts again from its state; ``x``
    None sets the key's state to ``y`` (in the layout of ``model.zero_state()``;
    None for zeros) and starts its history again from there.
    Returns ``(outputs, params, states, counts)``: outputs ``(N, out)``, the
    learned weights keyed like ``model.state_dict()``, each key's state in the
    layout of ``model.zero_state()`` and the counts of ``OnlineLearner.counts``.
    """
    cell, L, H = model.cell, model.num_layers, model.hidden_size
    lstm = cell == "lstm"
    p = {k: np.asarray(v, np.float64).copy() for k, v in model.state_dict().items()}
    zero = np.zeros((L, 1, H))
    state = {}  # key -> (h, c), each (L, 1, H)
    history = {}  # key -> inputs and targets of steps 1.., states after steps 0..

    def restart(h, c):
        return {"x": [], "y": [], "h": [h.copy()], "c": [c.copy()]}

    grad_sum = {k: np.zeros_like(v) for k, v in p.items()}
    count = 0
    in_batch = 0
    counts = {"updates": 0, "skipped": 0, "labels": 0, "windows": 0}
    outputs = []
    for key, x, y in rows:
        if x is None:
            parts = (zero, zero) if y is None else (y if lstm else (y, np.zeros((L, H))))
            h, c = (np.array(v, np.float64).reshape(L, 1, H) for v in parts)
            state[key] = (h, c)
            history[key] = restart(h, c)
            continue
        h, c = state.get(key, (zero, zero))
        out, h, c = forward(cell, p, np.asarray(x, np.float64)[None, None, :], h, c)
        outputs.append(out[0, 0])
        state[key] = (h, c)
        if y is None:
            history[key] = restart(h, c)
            continue
        rec = history.setdefault(key, restart(zero, zero))
        rec["x"].append(np.asarray(x, np.float64))
        rec["y"].append(np.asarray(y, np.float64))
        rec["h"].append(h.copy())
        rec["c"].append(c.copy())
        m = len(rec["x"]) - horizon
        if m < k1 or m % k1:
            continue
        a = max(0, m - k2)
        xs = np.array(rec["x"][a:m])  # steps a + 1 .. m
        ys = np.array(rec["y"][a + horizon : m + horizon])  # their labels
        ys[: m - a - k1] = np.nan  # only the last k1 steps are scored
        h0, c0 = rec["h"][a][:, 0], rec["c"][a][:, 0]
        _, grads, _ = gradients(_Weights(model, p), xs, ys, (h0, c0) if lstm else h0, loss)
        n = labeled_entries(loss, ys)
        for name in grad_sum:
            grad_sum[name] += grads[name] * n  # the gradient of the summed loss
        count += n
        in_batch += 1
        counts["windows"] += 1
        if in_batch < batch:
            continue
        if count:
            for name in p:
                p[name] = p[name] - lr * (grad_sum[name] / count)
            counts["updates"] += 1
            counts["labels"] += count
        grad_sum = {k: np.zeros_like(v) for k, v in p.items()}
        count = 0
        in_batch = 0
    states = {
        key: (h[:, 0].copy(), c[:, 0].copy()) if lstm else h[:, 0].copy()
        for key, (h, c) in state.items()
    }
    width = model.out_features
    return np.array(outputs).reshape(-1, width), p, states, counts


def calendar_features(times, names, tz=None):
    """Sine and cosine of each calendar feature's phase, row by row with Python's datetime.

    ``times`` are UTC nanoseconds (int64 or datetime64[ns]; wall-clock times when
    ``tz`` is None), read on the clock of ``tz`` (an IANA name or a fixed offset
    such as ``"+05:45"``). Phases: seconds since the hour / 3600, since midnight
    / 86400, days since Monday 00:00 / 7, days since January 1 00:00 / the
    year's length in days.
    """
    import datetime as dt
    import zoneinfo

    if tz is None or tz in ("UTC", "utc", "Z"):
        zone = None
    elif tz[0] in "+-":
        sign = -1 if tz[0] == "-" else 1
        hours, minutes = (int(v) for v in tz[1:].split(":"))
        zone = dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
    else:
        zone = zoneinfo.ZoneInfo(tz)
    out = np.zeros((len(times), 2 * len(names)))
    for i, ns in enumerate(np.asarray(times).view(np.int64).tolist()):
        whole, frac = divmod(ns, 10**9)
        when = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=whole)
        if zone is not None:
            when = when.replace(tzinfo=dt.UTC).astimezone(zone).replace(tzinfo=None)
        midnight = when.replace(hour=0, minute=0, second=0)
        seconds = (when - midnight).total_seconds() + frac / 1e9
        jan1 = dt.datetime(when.year, 1, 1)
        year_days = (dt.datetime(when.year + 1, 1, 1) - jan1).days
        phase = {
            "minute_of_hour": (when.minute * 60 + when.second + frac / 1e9) / 3600,
            "hour_of_day": seconds / 86400,
            "day_of_week": (when.weekday() + seconds / 86400) / 7,
            "day_of_year": ((midnight - jan1).days + seconds / 86400) / year_days,
        }
        for q, name in enumerate(names):
            out[i, 2 * q] = np.sin(2 * np.pi * phase[name])
            out[i, 2 * q + 1] = np.cos(2 * np.pi * phase[name])
    return out


# -- forecasts relative to the last observed value (streamrnn.relative) ------------------------


def relative_anchors(keys, y, horizon, loc=None):
    """Each row's anchor, row by row: the key's last observed target at or before the
    row (before it for ``horizon == 0``), else ``loc`` of the row (0 without)."""
    y = np.asarray(y, np.float64)
    last, out = {}, np.empty_like(y)
    for r, k in enumerate(np.asarray(keys).tolist()):
        seen = last.setdefault(k, np.full(y.shape[1], np.nan))
        if horizon > 0:
            seen[~np.isnan(y[r])] = y[r][~np.isnan(y[r])]
        base = np.zeros(y.shape[1]) if loc is None else np.asarray(loc[r], np.float64)
        out[r] = np.where(np.isnan(seen), base, seen)
        if horizon == 0:
            seen[~np.isnan(y[r])] = y[r][~np.isnan(y[r])]
    return out


def relative_labels(keys, y, horizon, loc=None, scale=None):
    """Each row's label for a relative learner: its targets less the anchor of the key's
    row ``horizon`` rows before, over that row's scale (NaN when there is none)."""
    y = np.asarray(y, np.float64)
    anchors = relative_anchors(keys, y, horizon, loc)
    scale = np.ones_like(y) if scale is None else np.asarray(scale, np.float64)
    rows, out = {}, np.full_like(y, np.nan)
    for r, k in enumerate(np.asarray(keys).tolist()):
        mine = rows.setdefault(k, [])
        mine.append(r)
        if len(mine) > horizon:
            o = mine[-1 - horizon]
            out[r] = (y[r] - anchors[o]) / scale[o]
    return out


def lagged_targets(keys, values, lags, loc=None, scale=None):
    """Lagged targets row by row: each key's forward-filled history, ``k`` rows back.

    ``keys`` names each emitted row's key, ``values`` ``(rows, targets)`` holds
    the targets in data units (NaN: missing) and ``lags`` a list of ``(target,
    k)``, one per column. A row's column holds the key's last observed value of
    the target at or before its row ``t - k``; failing that, the last observed
    at or before row ``t``; failing that, 0. Given ``loc`` and ``scale`` (per
    row and target), an observed value becomes ``(value - loc) / scale``.
    """
    values = np.asarray(values, np.float64)
    out = np.zeros((len(values), len(lags)))
    history = {}  # key -> its rows so far, each a list of forward-filled values
    for i, key in enumerate(keys):
        rows = history.setdefault(key, [])
        before = rows[-1] if rows else [np.nan] * values.shape[1]
        rows.append([b if np.isnan(v) else v for v, b in zip(values[i].tolist(), before)])
        t = len(rows) - 1
        for c, (q, k) in enumerate(lags):
            value = rows[t - k][q] if t - k >= 0 else np.nan
            if np.isnan(value):
                value = rows[t][q]
            if np.isnan(value):
                continue  # nothing observed yet: 0
            if loc is not None:
                value = (value - np.float64(loc[i][q])) / np.float64(scale[i][q])
            out[i, c] = value
    return out


def online_ar(y, p, h, p0=1e3, exact=False):
    """The online linear AR(p) baseline of one series, one row at a time.

    Recursive least squares (forgetting factor 1, weights 0, ``P = p0 I``) of
    ``y[t + d]`` on ``[1, v[t], v[t - 1], .., v[t - p + 1]]``, ``v`` the forward-filled
    ``y`` and ``d = max(h, 1)``. Row ``t`` first learns from its own value (when
    not NaN) with the regressor of ``d`` rows before, then forecasts row ``t + d``.
    Returns each row's forecast (NaN where its regressor reaches before the first
    value). ``exact=True`` runs the same steps on fractions, rounding only the
    forecasts.
    """
    from fractions import Fraction

    y = np.asarray(y, np.float64)
    n, d = len(y), max(h, 1)
    number = Fraction if exact else np.float64
    filled = y.copy()
    for t in range(1, n):
        if np.isnan(filled[t]):
            filled[t] = filled[t - 1]

    def regressor(t):
        if t - p + 1 < 0:
            return None
        lags = filled[t - p + 1 : t + 1][::-1]
        if np.isnan(lags).any():
            return None
        return np.array([number(1.0), *(number(v) for v in lags.tolist())])

    w = np.array([number(0.0)] * (p + 1))
    P = np.array([[number(p0 if i == j else 0.0) for j in range(p + 1)] for i in range(p + 1)])
    forecast = np.full(n, np.nan)
    for t in range(n):
        x = regressor(t - d)
        if x is not None and not np.isnan(y[t]):
            Px = P @ x
            denom = 1 + x @ Px
            gain = Px / denom
            w = w + gain * (number(y[t]) - w @ x)
            P = P - np.outer(Px, Px) / denom
        x = regressor(t)
        if x is not None and t + d < n:
            forecast[t + d] = float(w @ x)
    return forecast


def ar_made(keys, y, p, h):
    """Each row's AR(p) forecast (:func:`online_ar`, per key) of what the row's output
    forecasts: the key's row ``h`` rows later (for ``h = 0``, the row itself)."""
    y = np.asarray(y, np.float64)
    keys = np.asarray(keys)
    out = np.full_like(y, np.nan)
    d = max(h, 1)
    for k in np.unique(keys):
        rows = np.flatnonzero(keys == k)
        for j in range(y.shape[1]):
            series = y[rows, j]
            if h == 0:
                out[rows, j] = online_ar(series, p, 0)
            else:  # the forecast row t makes is stored at t + d: pad past the end
                padded = np.concatenate([series, np.full(d, np.nan)])
                out[rows, j] = online_ar(padded, p, h)[d:]
    return out


def shrink_gains(keys, labels, made, forget):
    """Each row's shrinkage gain, row by row: per key and target, over the key's rows
    before (each older one weighted by ``forget`` per later row; rows where either is
    NaN count for nothing), the weighted least-squares slope ``b`` of the labels on
    ``made`` through 0, clipped to [0, 1], times ``max(0, 1 - 2/t**2)`` with ``t`` its
    t-statistic on (weighted count - 1) degrees of freedom; 0 while ``b <= 0`` or
    fewer than one labelled row's weight."""
    labels, made = np.asarray(labels, np.float64), np.asarray(made, np.float64)
    keys = np.asarray(keys).tolist()
    gain = np.empty_like(labels)
    for r, k in enumerate(keys):
        for j in range(labels.shape[1]):
            before = [i for i in range(r) if keys[i] == k
                      and not (np.isnan(labels[i, j]) or np.isnan(made[i, j]))]  # fmt: skip
            w = np.array([forget ** (len(before) - 1 - m) for m in range(len(before))])
            x, y = made[before, j], labels[before, j]
            sxx, sxy, n = float(np.sum(w * x * x)), float(np.sum(w * x * y)), float(np.sum(w))
            if sxx <= 0 or sxy <= 0 or n <= 1:
                gain[r, j] = 0.0
                continue
            b = sxy / sxx
            resid = float(np.sum(w * (y - b * x) ** 2))
            t2 = np.inf if resid <= 0 else b * b * sxx * (n - 1) / resid
            gain[r, j] = min(b, 1.0) * max(0.0, 1.0 - 2.0 / t2)
    return gain


def made_changes(keys, outputs, horizon):
    """Each row's network output of ``horizon`` rows before in its key (NaN before)."""
    outputs = np.asarray(outputs, np.float64)
    rows, out = {}, np.full_like(outputs, np.nan)
    for r, k in enumerate(np.asarray(keys).tolist()):
        mine = rows.setdefault(k, [])
        mine.append(r)
        if len(mine) > horizon:
            out[r] = outputs[mine[-1 - horizon]]
    return out


def calibrated(keys, labels, changes, quantiles, horizon, step, start):
    """Quantile changes (N, T, K) spread row by row around their median by each key's
    factor exp(w); w moves by ``max(step, start / sqrt(n + 1)) * (miss - nominal)`` after
    each label, ``n`` being the key's rows before this one and ``miss`` telling whether
    the label fell outside the outer quantiles issued ``horizon`` rows before, and stays
    within [-5, 5]."""
    q = np.asarray(quantiles)
    lo, hi, mid = int(np.argmin(q)), int(np.argmax(q)), int(np.flatnonzero(q == 0.5)[0])
    nominal = 1.0 - (q.max() - q.min())
    out = np.array(changes, np.float64)
    width, issued = {}, {}
    for r, k in enumerate(np.asarray(keys).tolist()):
        w = width.setdefault(k, np.zeros(out.shape[1]))
        past = issued.setdefault(k, [])
        out[r] = out[r, :, [mid]].T + np.exp(w)[:, None] * (out[r] - out[r, :, [mid]].T)
        past.append(out[r, :, [lo, hi]].T.copy())
        if len(past) > horizon:
            a, b = past[-1 - horizon][:, 0], past[-1 - horizon][:, 1]
            for j in range(out.shape[1]):
                if not np.isnan(labels[r, j]):
                    miss = float(labels[r, j] < a[j] or labels[r, j] > b[j])
                    now = max(step, start / np.sqrt(len(past)))
                    w[j] = min(max(w[j] + now * (miss - nominal), -5.0), 5.0)
    return out
