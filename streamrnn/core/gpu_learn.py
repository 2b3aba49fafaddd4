"""Gradients and online learning on an NVIDIA GPU.

Imported by :mod:`streamrnn.core.gpu`. The rule is the CPU's
(:mod:`streamrnn.core.tbptt`): every row is predicted with the weights current
when it arrives, a window of series ``s`` closes at its step ``c`` when ``m = c - h``
is a positive multiple of ``k1`` and runs forward and backward over steps
``max(0, m - k2) + 1 .. m`` with the current weights, from the state its ring kept,
scoring its last ``k1`` steps; after every ``batch`` windows the summed gradient,
divided by the number of labels, steps the weights.

How the work is laid out: the rows between two updates (a *segment*) are learned
by one launch with a thread per series. A thread walks its series' rows in time
order: it stores each in the series' ring, advances the state one step and
predicts the row (:func:`streamrnn.core.gpu.advance_one`), and runs the window the
row closes, if any (:func:`window_one`), into that window's own gradient row. A
second launch adds those rows to the batch's running sum, one thread per weight,
window after window in the order they closed. So the sum never depends on how
the stream was cut, on which keys share a launch or on thread scheduling, and
nothing is added with atomics: the learned weights are the same bits whatever
the chunks. They differ from the CPU's in the last bits (its sums are split over
eight buffers and its products add in blocks): within 1e-10 (float64) and 1e-5
(float32, relative).

The shared weights are stepped on the host between segments, by the CPU's own
optimizer code (:func:`streamrnn.optim.apply_update`): the gradient comes back,
the weights go over, one copy each per update. A chunk sends its rows and its
series' rings and states, and brings them back with its outputs: the learner's
arrays stay its record, as on the CPU, and checkpoints are the same.

With weights per key (:func:`learn_per_key`) each series is independent: one
launch per chunk, a thread per series, and each thread steps its own weights
when its batch of windows is full (:func:`key_step`, the optimizer's operations
written for the device), its gradient summed window after window as on the CPU.
"""

import math

import numpy as np
from numba import cuda

from ..losses import loss_grad
from ..optim import (
    HYPER_BETA1,
    HYPER_BETA2,
    HYPER_EPS,
    HYPER_MOMENTUM,
    HYPER_NESTEROV,
    HYPER_WEIGHT_DECAY,
    KIND_ADAMW,
    KIND_SGD,
    clip_scale,
)
from .bptt import refresh
from .cells import (
    GRU,
    LSTM,
    SAVED_PER_UNIT,
    gru_backward,
    gru_update,
    lstm_backward,
    lstm_update,
    rnn_backward,
    rnn_update,
)
from .gpu import SIMULATED, THREADS, add_product, advance_one, device, gates_of, plain, read_out
from .kernels import gate_width, state_width
from .layout import (
    B_HH,
    B_IH,
    B_SUM,
    HAS_HEAD,
    HEAD_B,
    HEAD_W,
    HIDDEN,
    INPUTS,
    KIND,
    LAYERS,
    LD_GATES,
    LD_HEAD,
    OUTPUTS,
    W_HH,
    W_IH,
    layer_at,
)
from .tbptt import _step_weights

#: Gradient rows (one per window) a launch may fill: windows beyond it go to the next
#: launch of the same segment, which changes no value.
WINDOW_ROWS_MAX = 1 << 27


def window_scratch(spec, k2, labels):
    """Length of a thread's scratch for windows of up to ``k2`` steps with ``labels``
    numbers per step (the window's start state, inputs and labels first)."""
    I, H, L, O = (int(spec[i]) for i in (INPUTS, HIDDEN, LAYERS, OUTPUTS))
    D = L * int(state_width(spec))
    GW = int(gate_width(spec))
    head = D + k2 * (I + labels)
    work = 2 * L * (k2 + 1) * H + L * k2 * SAVED_PER_UNIT * H + (k2 + 1) * O
    return max(head + work + 4 * GW + 2 * L * H + 3 * H, 2 * GW)


@device
def window_one(spec, P, W, D, T, Oy, loss0, lkind, lpar, G, lossc, s_end):
    """Forward and backward over ``T`` steps of one series.

    ``W`` starts with the state before the first step (``D`` numbers), the inputs
    (``T`` rows of ``I``) and the labels (``T`` rows of ``Oy``, NaN for none); the
    rest is scratch. Steps ``t >= loss0`` are scored with loss ``lkind``: ``lossc``
    gets the summed loss and the label count, and the gradient of the summed loss is
    added to ``G`` (laid out as ``P``). ``s_end``, when not empty, gets the state
    after the last step. The forward steps are :func:`streamrnn.core.gpu.advance_one`'s
    products and cell updates; backward, the cells' own backward steps
    (:mod:`streamrnn.core.cells`), each step's weight gradients added as it is left.
    """
    kind = spec[KIND]
    I = spec[INPUTS]
    H = spec[HIDDEN]
    L = spec[LAYERS]
    O = spec[OUTPUTS]
    ld = spec[LD_GATES]
    KH = state_width(spec)
    GW = gate_width(spec)
    A = SAVED_PER_UNIT * H
    T1H = (T + 1) * H
    XW = D  # inputs
    YW = XW + T * I  # labels
    HS = YW + T * Oy  # per layer, h before the first step and after each: T + 1 rows of H
    CS = HS + L * T1H  # ... and c (LSTM)
    AS = CS + L * T1H  # per layer, the activations of each step: T rows of A
    DYS = AS + L * T * A  # the loss gradient reaching each step's outputs: T rows of O
    YH = DYS + T * O  # the head's outputs
    GI = YH + O
    GH = GI + GW
    DAI = GH + GW  # the gradients of the gate pre-activations: input part,
    DAH = DAI + GW  # ... and hidden part
    DHR = DAH + GW  # per layer, the gradient reaching h (and c) from the next step
    DCR = DHR + L * H
    DHI = DCR + L * H  # the gradient reaching the current layer's new h
    DHD = DHI + H  # the part of dh_prev that bypasses W_hh (GRU)
    DX = DHD + H  # the gradient reaching the layer below
    lossc[0] = 0.0
    lossc[1] = 0.0
    for layer in range(L):
        for j in range(H):
            W[HS + layer * T1H + j] = W[layer * KH + j]
            if kind == LSTM:
                W[CS + layer * T1H + j] = W[layer * KH + H + j]

    # forward, keeping activations
    for t in range(T):
        for layer in range(L):
            at = layer_at(layer)
            hp = HS + layer * T1H + t * H
            hn = hp + H
            for j in range(H):
                W[hn + j] = W[hp + j]
            if layer == 0:
                src = XW + t * I
                n_in = I
            else:
                src = hn - T1H
                n_in = H
            gi = W[GI : GI + GW]
            a = W[AS + (layer * T + t) * A : AS + (layer * T + t + 1) * A]
            if kind == GRU:
                gates_of(P, spec[at + W_IH], ld, W, src, n_in, spec[at + B_IH], gi, GW)
                gh = W[GH : GH + GW]
                gates_of(P, spec[at + W_HH], ld, W, hp, H, spec[at + B_HH], gh, GW)
                gru_update(gi, gh, W[hn : hn + H], H, a)
            else:
                gates_of(P, spec[at + W_IH], ld, W, src, n_in, spec[at + B_SUM], gi, GW)
                add_product(P, spec[at + W_HH], ld, W, hp, H, gi, GW)
                if kind == LSTM:
                    cp = CS + layer * T1H + t * H
                    for j in range(H):
                        W[cp + H + j] = W[cp + j]
                    lstm_update(gi, W[hn : hn + H], W[cp + H : cp + 2 * H], H, a)
                else:
                    rnn_update(kind, gi, W[hn : hn + H], H)
        top = HS + (L - 1) * T1H + (t + 1) * H
        if spec[HAS_HEAD]:
            yhat = W[YH : YH + O]
            gates_of(P, spec[HEAD_W], spec[LD_HEAD], W, top, H, spec[HEAD_B], yhat, O)
        else:
            yhat = W[top : top + O]
        dy = W[DYS + t * O : DYS + (t + 1) * O]
        if t >= loss0:
            v, c = loss_grad(lkind, lpar, yhat, W[YW + t * Oy : YW + (t + 1) * Oy], dy)
            lossc[0] += v
            lossc[1] += c
        else:
            for j in range(O):
                dy[j] = 0.0
    if s_end.shape[0]:
        for layer in range(L):
            for j in range(H):
                s_end[layer * KH + j] = W[HS + layer * T1H + T * H + j]
                if kind == LSTM:
                    s_end[layer * KH + H + j] = W[CS + layer * T1H + T * H + j]

    # backward through the steps, each step's weight gradients as it is left
    for j in range(L * H):
        W[DHR + j] = 0.0
        W[DCR + j] = 0.0
    for t in range(T - 1, -1, -1):
        for layer in range(L - 1, -1, -1):
            at = layer_at(layer)
            dhr = DHR + layer * H
            hn = HS + layer * T1H + (t + 1) * H
            hp = hn - H
            if layer == L - 1:
                dy0 = DYS + t * O
                if spec[HAS_HEAD]:
                    hw = spec[HEAD_W]
                    ldo = spec[LD_HEAD]
                    for k in range(H):
                        W[DHI + k] = W[dhr + k]
                        for o in range(O):
                            W[DHI + k] += W[dy0 + o] * P[hw + k * ldo + o]
                        for o in range(O):
                            G[hw + k * ldo + o] += W[hn + k] * W[dy0 + o]
                    for o in range(O):
                        G[spec[HEAD_B] + o] += W[dy0 + o]
                else:
                    for k in range(H):
                        W[DHI + k] = W[dhr + k] + W[dy0 + k]
            else:
                for k in range(H):
                    W[DHI + k] = W[dhr + k] + W[DX + k]
            a = W[AS + (layer * T + t) * A : AS + (layer * T + t + 1) * A]
            dh = W[DHI : DHI + H]
            dai = W[DAI : DAI + GW]
            dah = W[DAH : DAH + GW]
            if kind == GRU:
                gru_backward(a, W[hp:hn], dh, dai, dah, W[DHD : DHD + H], H)
            else:
                if kind == LSTM:
                    cp = CS + layer * T1H + t * H
                    lstm_backward(a, W[cp : cp + H], dh, W[DCR + layer * H : DCR + layer * H + H],
                                  dai, H)  # fmt: skip
                else:
                    rnn_backward(kind, W[hn : hn + H], dh, dai, H)
                for g in range(GW):
                    dah[g] = dai[g]
            w_ih = spec[at + W_IH]
            w_hh = spec[at + W_HH]
            for k in range(H):  # to the previous step
                W[dhr + k] = W[DHD + k] if kind == GRU else 0.0
                for g in range(GW):
                    W[dhr + k] += dah[g] * P[w_hh + k * ld + g]
            if layer > 0:  # to the layer below
                for k in range(H):
                    W[DX + k] = 0.0
                    for g in range(GW):
                        W[DX + k] += dai[g] * P[w_ih + k * ld + g]
                u0 = hn - T1H
                n_in = H
            else:
                u0 = XW + t * I
                n_in = I
            for k in range(n_in):
                uk = W[u0 + k]
                for g in range(GW):
                    G[w_ih + k * ld + g] += uk * dai[g]
            for k in range(H):
                hk = W[hp + k]
                for g in range(GW):
                    G[w_hh + k * ld + g] += hk * dah[g]
            for g in range(GW):
                G[spec[at + B_IH] + g] += dai[g]
                G[spec[at + B_HH] + g] += dah[g]


@device
def take_row(spec, P, X, Yl, r, ring, ring_row, st, state, w, version):
    """Row ``r`` as its series' next step: stored in the series' ring (``ring``,
    ``ring_row``: the series' own), the state advanced and the output written to
    ``Ypred[r]`` by the caller's :func:`streamrnn.core.gpu.read_out`; ``st`` holds
    the series' steps, steps done, and the weights' version and the step since
    which they ran. Returns the step's number."""
    I = X.shape[1]
    Oy = Yl.shape[1]
    D = state.shape[0]
    C = ring.shape[0]
    at_state = ring.shape[1] - D
    GW = gate_width(spec)
    st[0] += 1
    c = st[0]
    e = ring[c % C]
    for j in range(I):
        e[j] = X[r, j]
    for j in range(Oy):
        e[I + j] = Yl[r, j]
    ring_row[c % C] = r
    advance_one(spec, P, X[r], state, w[:GW], w[GW : 2 * GW])
    for j in range(D):
        e[at_state + j] = state[j]
    if st[2] != version:
        st[2] = version
        st[3] = c
    st[1] = c
    return c


@device
def gather_window(ring, m, h, k2, I, Oy, D, w):
    """The window that closes at step ``m`` (labels ``h`` steps later), up to ``k2``
    steps long, from a series' ring into the head of ``w`` (start state, inputs,
    labels: see :func:`window_one`). Returns its length."""
    C = ring.shape[0]
    at_state = ring.shape[1] - D
    a = m - k2 if m > k2 else 0  # (no max(): numba 0.68's CUDA target cannot type it)
    T = m - a
    first = ring[a % C]
    for j in range(D):
        w[j] = first[at_state + j]
    for t in range(T):
        src = ring[(a + 1 + t) % C]
        lab = ring[(a + 1 + t + h) % C]
        for j in range(I):
            w[D + t * I + j] = src[j]
        for j in range(Oy):
            w[D + T * I + t * Oy + j] = lab[I + j]
    return T


@cuda.jit
def learn_rows(spec, P, X, Yl, meta, S, ring, ring_row, ints, Ypred, Gw, lossw, W, cfg, lpar):
    """Thread ``g`` learns the rows of a segment of series ``g``, then of series ``g +
    threads`` and so on (``threads`` the rows of ``W``; see the module doc).

    ``meta`` packs ``order`` (the rows, by series, each in time order), ``widx`` (for
    each of those, the row of ``Gw`` and ``lossw`` of the window it closes, or -1),
    then per series ``starts``, ``lens`` and the local slot of its ring, state and
    counters ``ints`` (steps, done, version since, step since). ``cfg`` is ``[h, k1,
    k2, version, loss kind, rows, series]``; ``W[g]`` is the thread's scratch."""
    g = cuda.grid(1)
    if g >= W.shape[0]:
        return
    spec, P, X, Yl, meta, S = plain(spec), plain(P), plain(X), plain(Yl), plain(meta), plain(S)
    ring, ring_row, ints, Ypred = plain(ring), plain(ring_row), plain(ints), plain(Ypred)
    Gw, lossw, W, cfg, lpar = plain(Gw), plain(lossw), plain(W), plain(cfg), plain(lpar)
    h, k1, k2, version, lkind, N, n = cfg[0], cfg[1], cfg[2], cfg[3], cfg[4], cfg[5], cfg[6]
    w = W[g]
    for q in range(g, n, W.shape[0]):
        _learn_series(spec, P, X, Yl, meta, S, ring, ring_row, ints, Ypred, Gw, lossw, w, lpar,
                      h, k1, k2, version, lkind, N, n, q)  # fmt: skip


@device
def _learn_series(spec, P, X, Yl, meta, S, ring, ring_row, ints, Ypred, Gw, lossw, w, lpar, h, k1,
                  k2, version, lkind, N, n, q):  # fmt: skip
    """Series ``q``'s rows of a segment (see :func:`learn_rows`), with scratch ``w``."""
    D = S.shape[1]
    s = meta[2 * N + 2 * n + q]
    start = meta[2 * N + q]
    state = S[s]
    for i in range(start, start + meta[2 * N + n + q]):
        r = meta[i]
        c = take_row(spec, P, X, Yl, r, ring[s], ring_row[s], ints[s], state, w, version)
        read_out(spec, P, state, Ypred[r])
        k = meta[N + i]
        if k < 0:
            continue
        T = gather_window(ring[s], c - h, h, k2, X.shape[1], Yl.shape[1], D, w)
        G = Gw[k]
        for j in range(G.shape[0]):
            G[j] = 0.0
        window_one(spec, P, w, D, T, Yl.shape[1], T - k1, lkind, lpar, G, lossw[k], state[0:0])


@device
def finite(v):
    return not (math.isnan(v) or math.isinf(v))


@device
def norm_of(G, segs):
    """The L2 norm of ``G`` over ``segs`` in float64, as :func:`streamrnn.optim.grad_norm`
    gives it: nan if an entry is, inf if one is, and when only the sum of squares
    overflows, recomputed with the entries scaled by the largest."""
    total = 0.0
    for k in range(segs.shape[0]):
        for j in range(segs[k, 0], segs[k, 0] + segs[k, 1]):
            total += float(G[j]) * float(G[j])
    if total < math.inf:
        return math.sqrt(total)
    big = 0.0
    for k in range(segs.shape[0]):
        for j in range(segs[k, 0], segs[k, 0] + segs[k, 1]):
            a = abs(float(G[j]))
            if not a <= big:  # larger, or nan
                if math.isnan(a):
                    return a
                big = a
    if big == math.inf:
        return big
    total = 0.0
    for k in range(segs.shape[0]):
        for j in range(segs[k, 0], segs[k, 0] + segs[k, 1]):
            x = float(G[j]) / big
            total += x * x
    return big * math.sqrt(total)


@device
def key_step(spec, P, G, M1, M2, okind, hyper, segs, t, lr, lossc, counts):
    """One key's update on the device, as the CPU's (:func:`streamrnn.core.tbptt.
    _key_update`): the summed gradient averaged over its labels, checked, clipped
    (:func:`streamrnn.optim.clip_scale`), and an SGD, Adam or AdamW step of the
    weights over ``segs`` (the operations of :mod:`streamrnn.optim`'s update loops,
    each multiply-add as the device's compiler rounds it); then the bias sums, and the
    counts; ``G`` and ``lossc`` emptied."""
    count = lossc[1]
    if count > 0:
        inv = 1.0 / count
        for k in range(segs.shape[0]):
            for j in range(segs[k, 0], segs[k, 0] + segs[k, 1]):
                G[j] = G[j] * inv
        norm = norm_of(G, segs)
        if finite(norm) and finite(lossc[0]):
            t[0] += 1
            c = clip_scale(hyper, norm)
            wd = hyper[HYPER_WEIGHT_DECAY]
            if okind == KIND_SGD:
                momentum = hyper[HYPER_MOMENTUM]
                nesterov = hyper[HYPER_NESTEROV] != 0.0
                for k in range(segs.shape[0]):
                    for j in range(segs[k, 0], segs[k, 0] + segs[k, 1]):
                        p = P[j]
                        g = wd * p + G[j] * c
                        if momentum != 0.0:
                            b = g if t[0] == 1 else M1[j] * momentum + g
                            M1[j] = b
                            g = momentum * b + g if nesterov else b
                        P[j] = p - lr * g
            else:
                beta1 = hyper[HYPER_BETA1]
                beta2 = hyper[HYPER_BETA2]
                eps = hyper[HYPER_EPS]
                decoupled = okind == KIND_ADAMW
                l2 = 0.0 if decoupled else wd
                shrink = 1.0 - lr * wd if decoupled else 1.0
                step = -(lr / (1.0 - beta1 ** t[0]))
                bc2_sqrt = math.sqrt(1.0 - beta2 ** t[0])
                for k in range(segs.shape[0]):
                    for j in range(segs[k, 0], segs[k, 0] + segs[k, 1]):
                        p = P[j] * shrink
                        g = l2 * p + G[j] * c
                        m = M1[j] + (1.0 - beta1) * (g - M1[j])
                        M1[j] = m
                        v = M2[j] * beta2 + (1.0 - beta2) * g * g
                        M2[j] = v
                        P[j] = p + (step * m) / (math.sqrt(v) / bc2_sqrt + eps)
            GW = gate_width(spec)
            for layer in range(spec[LAYERS]):
                at = layer_at(layer)
                for g in range(GW):
                    P[spec[at + B_SUM] + g] = P[spec[at + B_IH] + g] + P[spec[at + B_HH] + g]
            counts[0] += 1
            counts[2] += int(count)
        else:
            counts[1] += 1
    for j in range(G.shape[0]):
        G[j] = 0.0
    lossc[0] = 0.0
    lossc[1] = 0.0


@cuda.jit
def learn_keys(spec, P, X, Yl, meta, S, ring, ring_row, ints, Ypred, G, M1, M2, t, pend, lossk,
               countk, W, cfg, lpar, hyper, lr_t, lr_v, segs):  # fmt: skip
    """Thread ``g`` learns series ``q = g, g + threads, ...``, each over its rows of a
    chunk with its own weights ``P[q]``
    (gradient ``G[q]``, optimizer state ``M1[q]``, ``M2[q]``, updates so far
    ``t[q]``, windows pending ``pend[q]``, loss ``lossk[q]``, counts ``countk[q]``),
    as the CPU's per-key learning (:func:`streamrnn.core.tbptt.learn_per_key`).
    ``meta`` packs ``order``, then ``starts`` and ``lens`` per series; ``cfg`` is
    ``[h, k1, k2, batch, loss kind, optimizer kind, rows, series]``; the rate of
    update ``lr_t[i]`` is ``lr_v[i]``."""
    g = cuda.grid(1)
    if g >= W.shape[0]:
        return
    spec, P, X, Yl, meta, S = plain(spec), plain(P), plain(X), plain(Yl), plain(meta), plain(S)
    ring, ring_row, ints, Ypred = plain(ring), plain(ring_row), plain(ints), plain(Ypred)
    G, M1, M2, t, pend = plain(G), plain(M1), plain(M2), plain(t), plain(pend)
    lossk, countk, W, cfg, lpar = plain(lossk), plain(countk), plain(W), plain(cfg), plain(lpar)
    hyper, lr_t, lr_v, segs = plain(hyper), plain(lr_t), plain(lr_v), plain(segs)
    w = W[g]
    for q in range(g, cfg[7], W.shape[0]):
        _learn_key(spec, P, X, Yl, meta, S, ring, ring_row, ints, Ypred, G, M1, M2, t, pend,
                   lossk, countk, w, cfg, lpar, hyper, lr_t, lr_v, segs, q)  # fmt: skip


@device
def _learn_key(spec, P, X, Yl, meta, S, ring, ring_row, ints, Ypred, G, M1, M2, t, pend, lossk,
               countk, w, cfg, lpar, hyper, lr_t, lr_v, segs, q):  # fmt: skip
    """Series ``q``'s rows with its own weights (see :func:`learn_keys`), scratch ``w``."""
    h, k1, k2, batch, lkind, okind, N, n = (cfg[0], cfg[1], cfg[2], cfg[3], cfg[4], cfg[5],
                                            cfg[6], cfg[7])  # fmt: skip
    D = S.shape[1]
    state = S[q]
    Pq = P[q]
    start = meta[N + q]
    for i in range(start, start + meta[N + n + q]):
        r = meta[i]
        c = take_row(spec, Pq, X, Yl, r, ring[q], ring_row[q], ints[q], state, w, t[q, 0])
        read_out(spec, Pq, state, Ypred[r])
        m = c - h
        if m < k1 or m % k1:
            continue
        T = gather_window(ring[q], m, h, k2, X.shape[1], Yl.shape[1], D, w)
        window_one(spec, Pq, w, D, T, Yl.shape[1], T - k1, lkind, lpar, G[q], lossk[q, 2:],
                   state[0:0])  # fmt: skip
        lossk[q, 0] += lossk[q, 2]
        lossk[q, 1] += lossk[q, 3]
        countk[q, 3] += 1
        pend[q] += 1
        if pend[q] == batch:
            pend[q] = 0
            u = 0
            while u < lr_t.shape[0] - 1 and lr_t[u] < t[q, 0] + 1:
                u += 1
            key_step(spec, Pq, G[q], M1[q], M2[q], okind, hyper, segs, t[q], lr_v[u], lossk[q],
                     countk[q])  # fmt: skip


@cuda.jit
def windows(spec, P, S0, X, Y, Gw, lossw, W, s_end, cfg, lpar):
    """Thread ``q`` runs window ``q`` of ``T`` steps (``cfg = [T, loss kind]``) from
    ``S0[q]`` over inputs ``X[q]`` and labels ``Y[q]`` (rows of ``T * I`` and
    ``T * Oy``): its gradient into ``Gw[q]``, its loss into ``lossw[q]``, its end
    state into ``s_end[q]``."""
    q = cuda.grid(1)
    if q >= S0.shape[0]:
        return
    spec, P, S0, X, Y, Gw = plain(spec), plain(P), plain(S0), plain(X), plain(Y), plain(Gw)
    lossw, W, s_end, cfg, lpar = plain(lossw), plain(W), plain(s_end), plain(cfg), plain(lpar)
    T = cfg[0]
    D = S0.shape[1]
    w = W[q]
    for j in range(D):
        w[j] = S0[q, j]
    for j in range(X.shape[1]):
        w[D + j] = X[q, j]
    for j in range(Y.shape[1]):
        w[D + X.shape[1] + j] = Y[q, j]
    G = Gw[q]
    for j in range(G.shape[0]):
        G[j] = 0.0
    window_one(spec, P, w, D, T, Y.shape[1] // T, 0, cfg[1], lpar, G, lossw[q], s_end[q])


@cuda.jit
def add_rows(Gw, n, acc):
    """``acc[j] += Gw[0, j] + ... + Gw[n - 1, j]``, in row order, for every ``j`` (a
    thread's ``j`` stride the grid)."""
    Gw, acc = plain(Gw), plain(acc)
    for j in range(cuda.grid(1), acc.shape[0], cuda.gridsize(1)):
        for i in range(n):
            acc[j] += Gw[i, j]


def _blocks(n):
    return max(1, -(-n // THREADS))


#: Numbers of scratch the threads of a learning launch may hold together: beyond it,
#: fewer threads each take several series in turn (which changes no value).
SCRATCH_MAX = 1 << 28


def _scratch(spec, k2, labels, n, dtype):
    """Scratch rows for the threads that learn ``n`` series: one each, up to
    :data:`SCRATCH_MAX` numbers in all."""
    width = window_scratch(spec, k2, labels)
    return cuda.device_array((max(1, min(n, SCRATCH_MAX // width)), width), dtype)


def add_windows(d_Gw, n, d_acc):
    """Add the first ``n`` gradient rows to the running sum, in order."""
    if n:
        add_rows[1 if SIMULATED else _blocks(d_acc.shape[0]), THREADS](d_Gw, n, d_acc)


def fold_lanes(lanes):
    """Sum the CPU's gradient buffers into buffer 0, in buffer order (as its update
    would): a learner that ran on the CPU goes on here from the same batch."""
    LG, lane_loss, lane_count, lane_used, _ = lanes
    used = np.flatnonzero(lane_used)
    if not len(used) or (len(used) == 1 and used[0] == 0):
        return
    acc = LG[used[0]].copy()
    for lane in used[1:]:
        acc += LG[lane]
    total = 0.0
    for lane in used:
        total += lane_loss[lane]
    count = int(lane_count[used].sum())
    LG[:] = 0.0
    lane_loss[:] = 0.0
    lane_count[:] = 0
    lane_used[:] = 0
    LG[0] = acc
    lane_loss[0], lane_count[0], lane_used[0] = total, count, 1


def learn_chunk(kept, net, opt, loss, data, hist, plan_, lanes, cfg, counts):
    """A chunk learned with shared weights, as :func:`streamrnn.core.tbptt.learn_chunk`
    (the same arguments); ``kept`` gives the device copy of the spec."""
    spec, P = net[0], net[1]
    lrs, t = opt[2], opt[6]
    lkind, lpar, _ = loss
    X, Yl, slot_rows, Ypred, _ = data
    S, ring, ring_row, steps, done, vsince, ssince = hist
    LG, lane_loss, lane_count, lane_used, _ = lanes
    h, k1, k2, batch = (int(v) for v in cfg[:4])
    win_rows, upd_rows = plan_
    N = X.shape[0]
    counts[3] += win_rows.shape[0]
    if N == 0:
        return
    fold_lanes(lanes)
    series, local = np.unique(slot_rows, return_inverse=True)
    n = series.shape[0]
    ints = np.stack([steps[series], done[series], vsince[series], ssince[series]], axis=1)
    d_S = cuda.to_device(np.ascontiguousarray(S[series]))
    d_ring = cuda.to_device(np.ascontiguousarray(ring[series]))
    d_ring_row = cuda.to_device(np.ascontiguousarray(ring_row[series]))
    d_ints = cuda.to_device(ints)
    d_X = cuda.to_device(np.ascontiguousarray(X))
    d_Yl = cuda.to_device(np.ascontiguousarray(Yl))
    d_Ypred = cuda.device_array(Ypred.shape, Ypred.dtype)
    d_spec, d_P, d_lpar = kept(spec), cuda.to_device(P), cuda.to_device(np.asarray(lpar))
    d_acc = cuda.to_device(LG[0])
    size = P.shape[0]
    rows_max = max(1, min(WINDOW_ROWS_MAX // size, batch, max(1, win_rows.shape[0])))
    d_Gw = cuda.device_array((rows_max, size), P.dtype)
    d_lossw = cuda.device_array((rows_max, 2), np.float64)
    d_W = _scratch(spec, k2, Yl.shape[1], n, P.dtype)
    window_of = np.full(N, -1, np.int64)
    window_of[win_rows] = np.arange(win_rows.shape[0])
    # segments: the rows up to each update, then the rest; each cut where its windows
    # would overflow the gradient rows
    ends = [(int(r), True) for r in upd_rows]
    if not ends or ends[-1][0] != N - 1:
        ends.append((N - 1, False))
    r0 = 0
    for end, then_update in ends:
        version = int(t[0])
        first_w = int(np.searchsorted(win_rows, r0))
        last_w = int(np.searchsorted(win_rows, end, "right"))
        cuts = [int(win_rows[k]) for k in range(first_w + rows_max - 1, last_w - 1, rows_max)]
        p0 = r0
        for p1 in [*cuts, end]:
            if p1 < p0:
                continue
            rows = np.arange(p0, p1 + 1)
            by_series = np.argsort(local[rows], kind="stable")
            order = rows[by_series]
            who, starts, lens = np.unique(local[order], return_index=True, return_counts=True)
            widx = window_of[order]
            w0 = int(np.searchsorted(win_rows, p0))
            nw = int(np.searchsorted(win_rows, p1, "right")) - w0
            widx[widx >= 0] -= w0
            meta = np.concatenate([order, widx, starts, lens, who]).astype(np.int64)
            k = who.shape[0]
            run = np.array([h, k1, k2, version, lkind, order.shape[0], k], np.int64)
            learn_rows[_blocks(min(k, d_W.shape[0])), THREADS](
                d_spec, d_P, d_X, d_Yl, cuda.to_device(meta), d_S, d_ring, d_ring_row, d_ints,
                d_Ypred, d_Gw, d_lossw, d_W, cuda.to_device(run), d_lpar,
            )  # fmt: skip
            if nw:
                add_windows(d_Gw, nw, d_acc)
                lw = d_lossw[:nw].copy_to_host()
                lane_loss[0] = np.cumsum(np.concatenate([[lane_loss[0]], lw[:, 0]]))[-1]
                lane_count[0] += int(lw[:, 1].sum())
                lane_used[0] = 1
            p0 = p1 + 1
        if then_update:
            G = d_acc.copy_to_host()
            lr = lrs[t[0] + 1 - t[1]]
            okind, hyper, _, M1, M2, segs, _ = opt  # the CPU's own step, on the host
            _step_weights(spec, P, net[2], net[3], G, M1, M2, okind, hyper, t, lr, segs,
                          int(lane_count[0]), float(lane_loss[0]), counts)  # fmt: skip
            d_P.copy_to_device(P)
            d_acc.copy_to_device(np.zeros_like(G))
            lane_loss[0], lane_count[0], lane_used[0] = 0.0, 0, 0
        r0 = end + 1
    d_Ypred.copy_to_host(Ypred)
    S[series] = d_S.copy_to_host()
    ring[series] = d_ring.copy_to_host()
    ring_row[series] = d_ring_row.copy_to_host()
    ints = d_ints.copy_to_host()
    steps[series], done[series], vsince[series], ssince[series] = ints.T
    LG[0] = d_acc.copy_to_host()


def learn_per_key(kept, net, opt, loss, data, hist, keyed, cfg):
    """A chunk learned with weights per key, as :func:`streamrnn.core.tbptt.learn_per_key`
    (the same arguments): a thread per series, each updating its own weights on the
    device when its batch of windows is full."""
    spec, Pk, bspec, PTk = net
    okind, hyper, lr_t, lr_v, segs = opt
    lkind, lpar, _ = loss
    X, Yl, Ypred, order, seg, slots = data
    S, ring, ring_row, steps, done, vsince, ssince = hist
    Gk, M1k, M2k, tk, pendk, lossk, countk = keyed
    h, k1, k2, batch = (int(v) for v in cfg[:4])
    n = slots.shape[0]
    if n == 0:
        return

    def over(host):  # the chunk's series' rows, on the device (a column at least)
        rows = host[slots]
        if rows.ndim == 2 and rows.shape[1] == 0:
            rows = np.zeros((n, 1), host.dtype)
        return cuda.to_device(np.ascontiguousarray(rows))

    ints = np.stack([steps[slots], done[slots], vsince[slots], ssince[slots]], axis=1)
    d_ints, d_S, d_ring, d_ring_row = cuda.to_device(ints), over(S), over(ring), over(ring_row)
    d_P, d_G, d_M1, d_M2 = over(Pk), over(Gk), over(M1k), over(M2k)
    d_t, d_pend, d_count = over(tk), over(pendk), over(countk)
    d_loss = cuda.to_device(np.concatenate([lossk[slots], np.zeros((n, 2))], axis=1))
    d_Ypred = cuda.device_array(Ypred.shape, Ypred.dtype)
    meta = np.concatenate([order, seg[:-1], np.diff(seg)]).astype(np.int64)
    run = np.array([h, k1, k2, batch, lkind, okind, order.shape[0], n], np.int64)
    d_W = _scratch(spec, k2, Yl.shape[1], n, Pk.dtype)
    learn_keys[_blocks(d_W.shape[0]), THREADS](
        kept(spec), d_P, cuda.to_device(np.ascontiguousarray(X)),
        cuda.to_device(np.ascontiguousarray(Yl)), cuda.to_device(meta), d_S, d_ring, d_ring_row,
        d_ints, d_Ypred, d_G, d_M1, d_M2, d_t, d_pend, d_loss, d_count,
        d_W,
        cuda.to_device(run), cuda.to_device(np.asarray(lpar)), cuda.to_device(hyper),
        cuda.to_device(np.asarray(lr_t, np.int64)), cuda.to_device(np.asarray(lr_v, np.float64)),
        cuda.to_device(np.ascontiguousarray(segs, np.int64)),
    )  # fmt: skip
    d_Ypred.copy_to_host(Ypred)
    before = tk[slots, 0].copy()
    for host, dev in (
        (S, d_S),
        (ring, d_ring),
        (ring_row, d_ring_row),
        (Pk, d_P),
        (Gk, d_G),
        (M1k, d_M1),
        (M2k, d_M2),
        (tk, d_t),
        (pendk, d_pend),
        (countk, d_count),
    ):
        if host.ndim == 1 or host.shape[1]:
            host[slots] = dev.copy_to_host()
    lossk[slots] = d_loss.copy_to_host()[:, :2]
    ints = d_ints.copy_to_host()
    steps[slots], done[slots], vsince[slots], ssince[slots] = ints.T
    for s in slots[tk[slots, 0] != before]:  # the back copies of the weights that changed
        refresh(spec, Pk[s], bspec, PTk[s])


def gradients(kept, spec, P, n, S0, X, T, Y, lkind, lpar, G, lossc, s_end):
    """As :meth:`streamrnn.core.backend.CPU.gradients`: one thread per window, their
    gradients added to ``G`` in window order."""
    if n == 0:
        return
    D = S0.shape[0] // n
    if T == 0:
        if s_end.shape[0]:
            s_end[:] = S0
        lossc[:] = 0.0
        return
    Oy = Y.shape[0] // (n * T)
    d_Gw = cuda.device_array((n, P.shape[0]), P.dtype)
    d_lossw = cuda.device_array((n, 2), np.float64)
    d_end = cuda.device_array((n, D), P.dtype)
    d_W = cuda.device_array((n, window_scratch(spec, T, Oy)), P.dtype)
    windows[_blocks(n), THREADS](
        kept(spec), cuda.to_device(P), cuda.to_device(S0.reshape(n, D)),
        cuda.to_device(X.reshape(n, -1)), cuda.to_device(Y.reshape(n, -1)), d_Gw, d_lossw, d_W,
        d_end, cuda.to_device(np.array([T, lkind], np.int64)), cuda.to_device(np.asarray(lpar)),
    )  # fmt: skip
    d_acc = cuda.to_device(G)
    add_windows(d_Gw, n, d_acc)
    d_acc.copy_to_host(G)
    lossc[:] = d_lossw.copy_to_host()
    if s_end.shape[0]:
        s_end[:] = d_end.copy_to_host().ravel()
