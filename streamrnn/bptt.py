"""Backpropagation through time over one window of one series.

:func:`window` runs the network forward over ``T`` steps from a given state,
keeping every activation, scores the outputs against the labels from step
``loss0`` on, and backpropagates through all ``T`` steps, adding the gradient of
the summed loss to ``G`` (laid out as ``P``). It is the one kernel that both
:meth:`streamrnn.RecurrentModel.gradients` and the online learner call.

The forward part makes the same matrix products and cell updates as
:func:`streamrnn.kernels.advance_block`, in the same order, so a window starting
from a stream's state reproduces the stream's outputs bit for bit.

Backward, for each step from last to first and each layer from top to bottom,
the cell turns the gradient reaching its new state into gradients of its gate
pre-activations (:mod:`streamrnn.cells`); the products with ``W_hh`` and
``W_ih`` carry them to the previous step and the layer below. The weight
gradients are summed over the window afterwards, one matrix product per weight
(``dW^T += U^T dA``, ``U`` the layer's inputs over the window), in step order.

``PT`` holds the weights untransposed for those products
(:func:`streamrnn.layout.make_back_spec`); :func:`refresh` rebuilds it, and the
bias sums in ``P``, after the weights change.
"""

from numba import njit

from . import config
from .cells import (
    GRU,
    LSTM,
    SAVED_PER_UNIT,
    gru_backward,
    gru_update_save,
    lstm_backward,
    lstm_update_save,
    rnn_backward,
    rnn_update,
)
from .kernels import _HEAD, _PER_LAYER, _gate_width, _state_width, gemm
from .layout import aligned_zeros, make_back_spec
from .losses import loss_grad

_FLAGS = config.JIT_FLAGS


@njit(inline="always")
def _transpose(src, at, ld, rows, cols, dst, to, ld_to):
    """``dst[to:]`` viewed ``(cols, ld_to)`` = ``src[at:]`` viewed ``(rows, ld)``, transposed."""
    S2 = src[at : at + rows * ld].reshape(rows, ld)
    D2 = dst[to : to + cols * ld_to].reshape(cols, ld_to)
    for c in range(cols):
        out = D2[c]
        for r in range(rows):
            out[r] = S2[r, c]


@njit(**_FLAGS)
def refresh(spec, P, bspec, PT):
    """After ``P``'s weights change: its ``b_ih + b_hh`` blocks, and ``PT``."""
    I = spec[1]
    H = spec[2]
    GW = _gate_width(spec)
    ld = spec[8]
    ld_h = bspec[0]
    for layer in range(spec[3]):
        at = _HEAD + _PER_LAYER * layer
        n_in = I if layer == 0 else H
        for g in range(GW):
            P[spec[at + 4] + g] = P[spec[at + 2] + g] + P[spec[at + 3] + g]
        w_ih, w_hh, ld_in = bspec[2 + 3 * layer], bspec[3 + 3 * layer], bspec[4 + 3 * layer]
        _transpose(P, spec[at], ld, n_in, GW, PT, w_ih, ld_in)
        _transpose(P, spec[at + 1], ld, H, GW, PT, w_hh, ld_h)
    if spec[5]:
        _transpose(P, spec[6], spec[9], H, spec[4], PT, bspec[1], ld_h)


@njit(**_FLAGS)
def scratch_size(spec, T):
    """Length of the scratch :func:`window` needs for ``T`` steps."""
    I = spec[1]
    H = spec[2]
    L = spec[3]
    O = spec[4]
    GW = _gate_width(spec)
    per_layer = 2 * (T + 1) * H + T * SAVED_PER_UNIT * H + 2 * T * GW
    wide = max(GW, H, O, I)
    return L * per_layer + T * O + O + 2 * GW + 2 * L * H + 4 * H + wide + max(I, H) * T + T


@njit(**_FLAGS)
def window(spec, P, bspec, PT, s0, X, T, Y, loss0, lkind, lpar, G, W, s_end, dS_end, dS0, S_out,
           Y_out):  # fmt: skip
    """Forward and backward over ``T`` steps of one series; returns ``(loss, labels)``.

    ``s0`` is the state before the first step (``D`` numbers); ``X`` holds ``T``
    input rows and ``Y`` ``T`` label rows back to back (``Y.shape[0] // T`` per
    step, NaN for no label). Steps ``t >= loss0`` are scored with loss
    ``lkind`` (parameters ``lpar``); the gradient of their summed loss is
    added to ``G``. ``W`` is scratch of :func:`scratch_size`. When not empty,
    ``s_end`` receives the state after the last step, ``dS_end`` is a gradient
    reaching that state from outside the window, ``dS0`` receives the
    gradient reaching ``s0``, and ``S_out`` and ``Y_out`` receive the state
    (``D`` numbers) and the output (``O``) after every step.
    """
    kind = spec[0]
    I = spec[1]
    H = spec[2]
    L = spec[3]
    O = spec[4]
    has_head = spec[5]
    ld = spec[8]
    ld_o = spec[9]
    ld_h = bspec[0]
    KH = _state_width(spec)
    D = L * KH
    GW = _gate_width(spec)
    Oy = Y.shape[0] // T if T > 0 else 0
    A = SAVED_PER_UNIT * H

    # scratch layout: per layer h (T+1 rows), c (T+1 rows), activations, dA_i, dA_h
    per_layer = 2 * (T + 1) * H + T * A + 2 * T * GW
    hs0 = 0
    DY = L * per_layer
    YH = DY + T * O
    GI = YH + O
    GH = GI + GW
    DHR = GH + GW  # gradient reaching each layer's h from the next step
    DCR = DHR + L * H  # ... and its c (LSTM)
    DHI = DCR + L * H  # gradient reaching the current layer's new h
    DHD = DHI + H  # the part of dh_prev that bypasses W_hh (GRU)
    DX = DHD + H  # gradient reaching the layer below
    ZERO = DX + H
    UT = ZERO + max(GW, H, O, I)
    ONES = UT + max(I, H) * T
    for j in range(max(GW, H, O, I)):
        W[ZERO + j] = 0.0
    for t in range(T):
        W[ONES + t] = 1.0

    # forward, keeping activations
    for layer in range(L):
        hs = hs0 + layer * per_layer
        for j in range(H):
            W[hs + j] = s0[layer * KH + j]
            W[hs + (T + 1) * H + j] = s0[layer * KH + H + j] if kind == LSTM else 0.0
    loss = 0.0
    count = 0
    for t in range(T):
        for layer in range(L):
            at = _HEAD + _PER_LAYER * layer
            hs = hs0 + layer * per_layer
            cs = hs + (T + 1) * H
            ac = cs + (T + 1) * H + t * A
            hp = hs + t * H
            hn = hp + H
            for j in range(H):
                W[hn + j] = W[hp + j]
            if layer == 0:
                src = X
                src_at = t * I
                n_in = I
            else:
                src = W
                src_at = hs - per_layer + (t + 1) * H
                n_in = H
            if kind == GRU:
                gemm(P, spec[at], ld, src, src_at, n_in, 1, n_in, GW, P, spec[at + 2], 0, W, GI, GW)
                gemm(P, spec[at + 1], ld, W, hp, H, 1, H, GW, P, spec[at + 3], 0, W, GH, GW)
                gru_update_save(W[GI : GI + GW], W[GH : GH + GW], W[hn : hn + H], H, W[ac : ac + A])
            else:
                gemm(P, spec[at], ld, src, src_at, n_in, 1, n_in, GW, P, spec[at + 4], 0, W, GI, GW)
                gemm(P, spec[at + 1], ld, W, hp, H, 1, H, GW, W, GI, GW, W, GI, GW)
                if kind == LSTM:
                    cp = cs + t * H
                    for j in range(H):
                        W[cp + H + j] = W[cp + j]
                    lstm_update_save(W[GI : GI + GW], W[hn : hn + H], W[cp + H : cp + 2 * H], H,
                                     W[ac : ac + A])  # fmt: skip
                else:
                    rnn_update(kind, W[GI : GI + GW], W[hn : hn + H], H)
        top = hs0 + (L - 1) * per_layer + (t + 1) * H
        if has_head:
            gemm(P, spec[6], ld_o, W, top, H, 1, H, O, P, spec[7], 0, W, YH, O)
            yhat = W[YH : YH + O]
        else:
            yhat = W[top : top + O]
        if S_out.shape[0]:
            for layer in range(L):
                hs = hs0 + layer * per_layer + (t + 1) * H
                for j in range(H):
                    S_out[t * D + layer * KH + j] = W[hs + j]
                    if kind == LSTM:
                        S_out[t * D + layer * KH + H + j] = W[hs + (T + 1) * H + j]
            for j in range(O):
                Y_out[t * O + j] = yhat[j]
        dy = W[DY + t * O : DY + (t + 1) * O]
        if t >= loss0:
            s, c = loss_grad(lkind, lpar, yhat, Y[t * Oy : (t + 1) * Oy], dy)
            loss += s
            count += c
        else:
            for j in range(O):
                dy[j] = 0.0

    if s_end.shape[0]:
        for layer in range(L):
            hs = hs0 + layer * per_layer
            for j in range(H):
                s_end[layer * KH + j] = W[hs + T * H + j]
                if kind == LSTM:
                    s_end[layer * KH + H + j] = W[hs + (T + 1) * H + T * H + j]

    # backward through the steps
    for layer in range(L):
        for j in range(H):
            W[DHR + layer * H + j] = dS_end[layer * KH + j] if dS_end.shape[0] else 0.0
            W[DCR + layer * H + j] = (
                dS_end[layer * KH + H + j] if dS_end.shape[0] and kind == LSTM else 0.0
            )
    for t in range(T - 1, -1, -1):
        for layer in range(L - 1, -1, -1):
            at = _HEAD + _PER_LAYER * layer
            hs = hs0 + layer * per_layer
            cs = hs + (T + 1) * H
            ac = cs + (T + 1) * H + t * A
            dai = cs + (T + 1) * H + T * A + t * GW
            dah = dai + T * GW
            dhr = DHR + layer * H
            if layer == L - 1:
                if has_head:
                    gemm(PT, bspec[1], ld_h, W, DY + t * O, O, 1, O, H, W, dhr, 0, W, DHI, H)
                else:
                    for j in range(H):
                        W[DHI + j] = W[dhr + j] + W[DY + t * O + j]
            else:
                for j in range(H):
                    W[DHI + j] = W[dhr + j] + W[DX + j]
            dh = W[DHI : DHI + H]
            w_hh = bspec[3 + 3 * layer]
            if kind == GRU:
                gru_backward(W[ac : ac + A], W[hs + t * H : hs + t * H + H], dh,
                             W[dai : dai + GW], W[dah : dah + GW], W[DHD : DHD + H], H)  # fmt: skip
                gemm(PT, w_hh, ld_h, W, dah, GW, 1, GW, H, W, DHD, 0, W, dhr, 0)
            else:
                if kind == LSTM:
                    lstm_backward(W[ac : ac + A], W[cs + t * H : cs + t * H + H], dh,
                                  W[DCR + layer * H : DCR + layer * H + H], W[dai : dai + GW],
                                  H)  # fmt: skip
                else:
                    rnn_backward(kind, W[hs + (t + 1) * H : hs + (t + 2) * H], dh,
                                 W[dai : dai + GW], H)  # fmt: skip
                for g in range(GW):
                    W[dah + g] = W[dai + g]
                gemm(PT, w_hh, ld_h, W, dai, GW, 1, GW, H, W, ZERO, 0, W, dhr, 0)
            if layer > 0:
                w_ih, ld_in = bspec[2 + 3 * layer], bspec[4 + 3 * layer]
                gemm(PT, w_ih, ld_in, W, dai, GW, 1, GW, H, W, ZERO, 0, W, DX, 0)

    if dS0.shape[0]:
        for layer in range(L):
            for j in range(H):
                dS0[layer * KH + j] = W[DHR + layer * H + j]
                if kind == LSTM:
                    dS0[layer * KH + H + j] = W[DCR + layer * H + j]

    # weight gradients, summed over the window: dW^T += U^T dA
    for layer in range(L):
        at = _HEAD + _PER_LAYER * layer
        hs = hs0 + layer * per_layer
        dai = hs + 2 * (T + 1) * H + T * A
        dah = dai + T * GW
        if layer == 0:
            n_in = I
            for t in range(T):
                for j in range(I):
                    W[UT + j * T + t] = X[t * I + j]
        else:
            n_in = H
            below = hs - per_layer + H  # h of the layer below after each step
            for t in range(T):
                for j in range(H):
                    W[UT + j * T + t] = W[below + t * H + j]
        w = spec[at]
        gemm(W, dai, GW, W, UT, T, n_in, T, GW, G, w, ld, G, w, ld)
        for t in range(T):
            for j in range(H):
                W[UT + j * T + t] = W[hs + t * H + j]
        w = spec[at + 1]
        gemm(W, dah, GW, W, UT, T, H, T, GW, G, w, ld, G, w, ld)
        # bias gradients: sums over the steps, in step order (a product with ones)
        gemm(W, dai, GW, W, ONES, 0, 1, T, GW, G, spec[at + 2], 0, G, spec[at + 2], 0)
        gemm(W, dah, GW, W, ONES, 0, 1, T, GW, G, spec[at + 3], 0, G, spec[at + 3], 0)
    if has_head:
        top = hs0 + (L - 1) * per_layer + H
        for t in range(T):
            for j in range(H):
                W[UT + j * T + t] = W[top + t * H + j]
        gemm(W, DY, O, W, UT, T, H, T, O, G, spec[6], ld_o, G, spec[6], ld_o)
        gemm(W, DY, O, W, ONES, 0, 1, T, O, G, spec[7], 0, G, spec[7], 0)
    return loss, count


def window_args(model):
    """``(bspec, PT)`` for ``model``'s current weights."""
    bspec, size = make_back_spec(model._spec, model.dtype)
    PT = aligned_zeros(size, model.dtype)
    refresh(model._spec, model._P, bspec, PT)
    return bspec, PT
