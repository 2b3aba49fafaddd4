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
