"""Backpropagation through time over one window of one series.

A window kernel (:data:`WINDOW`, one per cell family: see :func:`_window_of`)
runs the network forward over ``T`` steps from a given state,
keeping every activation, scores the outputs against the labels from step
``loss0`` on, and backpropagates through all ``T`` steps, adding the gradient of
the summed loss to ``G`` (laid out as ``P``). It is the one kernel that both
:meth:`streamrnn.RecurrentModel.gradients` and the online learner call.

The forward part makes the same matrix products and cell updates as
:func:`streamrnn.core.kernels.advance_block`, in the same order, so a window starting
from a stream's state reproduces the stream's outputs bit for bit.

Backward, for each step from last to first and each layer from top to bottom,
the cell turns the gradient reaching its new state into gradients of its gate
pre-activations (:mod:`streamrnn.core.cells`); the products with ``W_hh`` and
``W_ih`` carry them to the previous step and the layer below. The weight
gradients are summed over the window afterwards, one matrix product per weight
(``dW^T += U^T dA``, ``U`` the layer's inputs over the window), in step order.

``PT`` holds the weights untransposed for those products
(:func:`streamrnn.core.layout.make_back_spec`); :func:`refresh` rebuilds it, and the
bias sums in ``P``, after the weights change.
"""

from ..losses import loss_grad
from .cells import (
    GRU,
    LSTM,
    RNN_TANH,
    SAVED_PER_UNIT,
    gru_backward,
    gru_update,
    lstm_backward,
    lstm_update,
    named_for,
    per_family,
    rnn_backward,
    rnn_update,
)
from .jit import inline, kernel, not_inlined
from .kernels import gate_width, gemm, state_width
from .layout import (
    B_HH,
    B_IH,
    B_SUM,
    BACK_HEAD,
    BACK_W_HH,
    BACK_W_IH,
    HAS_HEAD,
    HEAD_B,
    HEAD_W,
    HIDDEN,
    INPUTS,
    KIND,
    LAYERS,
    LD_GATES,
    LD_H,
    LD_HEAD,
    LD_IN,
    OUTPUTS,
    W_HH,
    W_IH,
    aligned_zeros,
    back_layer_at,
    layer_at,
    make_back_spec,
)


@inline
def _transpose(src, at, ld, rows, cols, dst, to, ld_to):
    """``dst[to:]`` viewed ``(cols, ld_to)`` = ``src[at:]`` viewed ``(rows, ld)``, transposed."""
    S2 = src[at : at + rows * ld].reshape(rows, ld)
    D2 = dst[to : to + cols * ld_to].reshape(cols, ld_to)
    for c in range(cols):
        out = D2[c]
        for r in range(rows):
            out[r] = S2[r, c]


@kernel
def refresh(spec, P, bspec, PT):
    """After ``P``'s weights change: its ``b_ih + b_hh`` blocks, and ``PT``."""
    I = spec[INPUTS]
    H = spec[HIDDEN]
    GW = gate_width(spec)
    ld = spec[LD_GATES]
    ld_h = bspec[LD_H]
    for layer in range(spec[LAYERS]):
        at = layer_at(layer)
        n_in = I if layer == 0 else H
        for g in range(GW):
            P[spec[at + B_SUM] + g] = P[spec[at + B_IH] + g] + P[spec[at + B_HH] + g]
        w_ih, w_hh, ld_in = (
            bspec[back_layer_at(layer) + BACK_W_IH],
            bspec[back_layer_at(layer) + BACK_W_HH],
            bspec[back_layer_at(layer) + LD_IN],
        )
        _transpose(P, spec[at + W_IH], ld, n_in, GW, PT, w_ih, ld_in)
        _transpose(P, spec[at + W_HH], ld, H, GW, PT, w_hh, ld_h)
    if spec[HAS_HEAD]:
        _transpose(P, spec[HEAD_W], spec[LD_HEAD], H, spec[OUTPUTS], PT, bspec[BACK_HEAD], ld_h)


@kernel
def scratch_size(spec, n, T):
    """Length of the scratch a window kernel needs for ``n`` windows of ``T`` steps."""
    I = spec[INPUTS]
    H = spec[HIDDEN]
    L = spec[LAYERS]
    O = spec[OUTPUTS]
    GW = gate_width(spec)
    per_layer = n * (2 * (T + 1) * H + T * SAVED_PER_UNIT * H + 2 * T * GW)
    wide = max(GW, H, O, I)
    return (
        L * per_layer + n * (T * O + O + 2 * GW + 2 * L * H + 3 * H + T) + wide + max(I, H) * n * T
    )


def _window_of(family):
    """The window kernel of the cells of ``family``: kept out of line (each caller calls
    it, none holds a copy)."""

    @kernel
    @named_for(family)
    def window(spec, P, bspec, PT, n, S0, X, T, Y, loss0, lkind, lpar, G, W, lossc, s_end,
               dS_steps, dS0, S_out, Y_out):  # fmt: skip
        """Forward and backward over ``T`` steps of ``n`` series at once, for cells of
        ``family`` (``GRU``, ``LSTM`` or ``ELMAN``: a constant, so that the other cells'
        code is left out).

        ``S0`` holds the states before the first step (``n`` rows of ``D``); ``X``
        the inputs (``n`` blocks of ``T`` rows of ``I``), ``Y`` the labels (``n``
        blocks of ``T`` rows, NaN for no label). Steps ``t >= loss0`` are scored
        with loss ``lkind`` (parameters ``lpar``): ``lossc[w]`` gets window ``w``'s
        summed loss and label count, and the gradient of the summed loss is added
        to ``G``, window after window: each weight's sum runs over window 0's steps
        in order, then window 1's, ..., exactly as if the windows were run one at a
        time. ``W`` is scratch of :func:`scratch_size`. When not empty, ``s_end``
        receives the states after the last step, ``dS_steps`` (``n`` blocks of ``T``
        rows of ``D``) holds gradients reaching the state after each step from
        outside the window (a decoder started from it, say), ``dS0`` receives the
        gradients reaching ``S0``, and
        ``S_out`` and ``Y_out`` receive each window's state (``D`` numbers) and
        output (``O``) after every step. Every row is computed as it would be alone.
        """
        not_inlined()
        kind = spec[KIND]  # the Elman cells' activation
        I = spec[INPUTS]
        H = spec[HIDDEN]
        L = spec[LAYERS]
        O = spec[OUTPUTS]
        has_head = spec[HAS_HEAD]
        ld = spec[LD_GATES]
        ld_o = spec[LD_HEAD]
        ld_h = bspec[LD_H]
        KH = state_width(spec)
        D = L * KH
        GW = gate_width(spec)
        Oy = Y.shape[0] // (n * T) if T > 0 else 0
        A = SAVED_PER_UNIT * H
        nH = n * H
        nT = n * T

        # scratch, per layer: h and c ([t][w], T + 1 steps), activations ([t][w]),
        # dA_i and dA_h ([w][t]: the order in which weight gradients are summed)
        HC = (T + 1) * nH
        per_layer = 2 * HC + T * n * A + 2 * nT * GW
        DY = L * per_layer  # [w][t]
        YH = DY + nT * O
        GI = YH + n * O
        GH = GI + n * GW
        DHR = GH + n * GW  # gradient reaching each layer's h from the next step, [layer][w]
        DCR = DHR + L * nH  # ... and its c (LSTM)
        DHI = DCR + L * nH  # gradient reaching the current layer's new h
        DHD = DHI + nH  # the part of dh_prev that bypasses W_hh (GRU)
        DX = DHD + nH  # gradient reaching the layer below
        ONES = DX + nH
        ZERO = ONES + nT
        UT = ZERO + max(GW, H, O, I)
        for j in range(max(GW, H, O, I)):
            W[ZERO + j] = 0.0
        for k in range(nT):
            W[ONES + k] = 1.0
        for w in range(n):
            lossc[w, 0] = 0.0
            lossc[w, 1] = 0.0

        # forward, keeping activations
        for layer in range(L):
            hs = layer * per_layer
            for w in range(n):
                for j in range(H):
                    W[hs + w * H + j] = S0[w * D + layer * KH + j]
                    c0 = S0[w * D + layer * KH + H + j] if family == LSTM else 0.0
                    W[hs + HC + w * H + j] = c0
        for t in range(T):
            for layer in range(L):
                at = layer_at(layer)
                hs = layer * per_layer
                cs = hs + HC
                ac = cs + HC + t * n * A
                hp = hs + t * nH
                hn = hp + nH
                for j in range(nH):
                    W[hn + j] = W[hp + j]
                if layer == 0:
                    src = X
                    src_at = t * I
                    stride = T * I
                    n_in = I
                else:
                    src = W
                    src_at = hs - per_layer + (t + 1) * nH
                    stride = H
                    n_in = H
                if family == GRU:
                    gemm(P, spec[at + W_IH], ld, src, src_at, stride, n, n_in, GW, P,
                         spec[at + B_IH], 0, W, GI, GW)  # fmt: skip
                    gemm(P, spec[at + W_HH], ld, W, hp, H, n, H, GW, P, spec[at + B_HH], 0, W, GH,
                         GW)  # fmt: skip
                    for w in range(n):
                        gru_update(W[GI + w * GW : GI + (w + 1) * GW],
                                   W[GH + w * GW : GH + (w + 1) * GW],
                                   W[hn + w * H : hn + (w + 1) * H], H,
                                   W[ac + w * A : ac + (w + 1) * A])  # fmt: skip
                else:
                    gemm(P, spec[at + W_IH], ld, src, src_at, stride, n, n_in, GW, P,
                         spec[at + B_SUM], 0, W, GI, GW)  # fmt: skip
                    gemm(P, spec[at + W_HH], ld, W, hp, H, n, H, GW, W, GI, GW, W, GI, GW)
                    if family == LSTM:
                        cp = cs + t * nH
                        for j in range(nH):
                            W[cp + nH + j] = W[cp + j]
                        for w in range(n):
                            lstm_update(W[GI + w * GW : GI + (w + 1) * GW],
                                        W[hn + w * H : hn + (w + 1) * H],
                                        W[cp + nH + w * H : cp + nH + (w + 1) * H], H,
                                        W[ac + w * A : ac + (w + 1) * A])  # fmt: skip
                    else:
                        for w in range(n):
                            rnn_update(kind, W[GI + w * GW : GI + (w + 1) * GW],
                                       W[hn + w * H : hn + (w + 1) * H], H)  # fmt: skip
            top = (L - 1) * per_layer + (t + 1) * nH
            if has_head:
                gemm(P, spec[HEAD_W], ld_o, W, top, H, n, H, O, P, spec[HEAD_B], 0, W, YH, O)
                out = YH
                ostride = O
            else:
                out = top
                ostride = H
            for w in range(n):
                yhat = W[out + w * ostride : out + w * ostride + O]
                if S_out.shape[0]:
                    base = (w * T + t) * D
                    for layer in range(L):
                        hs = layer * per_layer + (t + 1) * nH + w * H
                        for j in range(H):
                            S_out[base + layer * KH + j] = W[hs + j]
                            if family == LSTM:
                                S_out[base + layer * KH + H + j] = W[hs + HC + j]
                    for j in range(O):
                        Y_out[(w * T + t) * O + j] = yhat[j]
                dy = W[DY + (w * T + t) * O : DY + (w * T + t + 1) * O]
                if t >= loss0:
                    lab = Y[(w * T + t) * Oy : (w * T + t + 1) * Oy]
                    v, c = loss_grad(lkind, lpar, yhat, lab, dy)
                    lossc[w, 0] += v
                    lossc[w, 1] += c
                else:
                    for j in range(O):
                        dy[j] = 0.0

        if s_end.shape[0]:
            for layer in range(L):
                hs = layer * per_layer + T * nH
                for w in range(n):
                    for j in range(H):
                        s_end[w * D + layer * KH + j] = W[hs + w * H + j]
                        if family == LSTM:
                            s_end[w * D + layer * KH + H + j] = W[hs + HC + w * H + j]

        # backward through the steps
        for j in range(L * nH):
            W[DHR + j] = 0.0
            W[DCR + j] = 0.0
        for t in range(T - 1, -1, -1):
            if dS_steps.shape[0]:
                for layer in range(L):
                    for w in range(n):
                        e = (w * T + t) * D + layer * KH
                        for j in range(H):
                            W[DHR + layer * nH + w * H + j] += dS_steps[e + j]
                            if family == LSTM:
                                W[DCR + layer * nH + w * H + j] += dS_steps[e + H + j]
            for layer in range(L - 1, -1, -1):
                hs = layer * per_layer
                cs = hs + HC
                ac = cs + HC + t * n * A
                dai = cs + HC + T * n * A + t * GW  # row w at + w * T * GW
                dah = dai + nT * GW
                dhr = DHR + layer * nH
                if layer == L - 1:
                    if has_head:
                        gemm(
                            PT,
                            bspec[BACK_HEAD],
                            ld_h,
                            W,
                            DY + t * O,
                            T * O,
                            n,
                            O,
                            H,
                            W,
                            dhr,
                            H,
                            W,
                            DHI,
                            H,
                        )
                    else:
                        for w in range(n):
                            for j in range(H):
                                dyj = W[DY + (w * T + t) * O + j]
                                W[DHI + w * H + j] = W[dhr + w * H + j] + dyj
                else:
                    for j in range(nH):
                        W[DHI + j] = W[dhr + j] + W[DX + j]
                w_hh = bspec[back_layer_at(layer) + BACK_W_HH]
                for w in range(n):
                    dh = W[DHI + w * H : DHI + (w + 1) * H]
                    a = W[ac + w * A : ac + (w + 1) * A]
                    da = W[dai + w * T * GW : dai + w * T * GW + GW]
                    if family == GRU:
                        gru_backward(a, W[hs + t * nH + w * H : hs + t * nH + (w + 1) * H], dh, da,
                                     W[dah + w * T * GW : dah + w * T * GW + GW],
                                     W[DHD + w * H : DHD + (w + 1) * H], H)  # fmt: skip
                    elif family == LSTM:
                        lstm_backward(a, W[cs + t * nH + w * H : cs + t * nH + (w + 1) * H], dh,
                                      W[DCR + layer * nH + w * H : DCR + layer * nH + (w + 1) * H],
                                      da, H)  # fmt: skip
                    else:
                        hn = hs + (t + 1) * nH + w * H
                        rnn_backward(kind, W[hn : hn + H], dh, da, H)
                    if family != GRU:
                        for g in range(GW):
                            W[dah + w * T * GW + g] = da[g]
                if family == GRU:
                    gemm(PT, w_hh, ld_h, W, dah, T * GW, n, GW, H, W, DHD, H, W, dhr, H)
                else:
                    gemm(PT, w_hh, ld_h, W, dai, T * GW, n, GW, H, W, ZERO, 0, W, dhr, H)
                if layer > 0:
                    w_ih, ld_in = (
                        bspec[back_layer_at(layer) + BACK_W_IH],
                        bspec[back_layer_at(layer) + LD_IN],
                    )
                    gemm(PT, w_ih, ld_in, W, dai, T * GW, n, GW, H, W, ZERO, 0, W, DX, H)

        if dS0.shape[0]:
            for layer in range(L):
                for w in range(n):
                    for j in range(H):
                        dS0[w * D + layer * KH + j] = W[DHR + layer * nH + w * H + j]
                        if family == LSTM:
                            dS0[w * D + layer * KH + H + j] = W[DCR + layer * nH + w * H + j]

        # weight gradients: dW^T += U^T dA, summed over k = w * T + t in order
        for layer in range(L):
            at = layer_at(layer)
            hs = layer * per_layer
            dai = hs + 2 * HC + T * n * A
            dah = dai + nT * GW
            if layer == 0:
                n_in = I
                for w in range(n):
                    for t in range(T):
                        for j in range(I):
                            W[UT + j * nT + w * T + t] = X[(w * T + t) * I + j]
            else:
                n_in = H
                below = hs - per_layer + nH  # h of the layer below after each step
                for t in range(T):
                    for w in range(n):
                        for j in range(H):
                            W[UT + j * nT + w * T + t] = W[below + t * nH + w * H + j]
            w_ih = spec[at + W_IH]
            gemm(W, dai, GW, W, UT, nT, n_in, nT, GW, G, w_ih, ld, G, w_ih, ld)
            for t in range(T):
                for w in range(n):
                    for j in range(H):
                        W[UT + j * nT + w * T + t] = W[hs + t * nH + w * H + j]
            w_hh = spec[at + W_HH]
            gemm(W, dah, GW, W, UT, nT, H, nT, GW, G, w_hh, ld, G, w_hh, ld)
            # bias gradients: sums over the steps, in order (a product with ones)
            gemm(W, dai, GW, W, ONES, 0, 1, nT, GW, G, spec[at + B_IH], 0, G, spec[at + B_IH], 0)
            gemm(W, dah, GW, W, ONES, 0, 1, nT, GW, G, spec[at + B_HH], 0, G, spec[at + B_HH], 0)
        if has_head:
            top = (L - 1) * per_layer + nH
            for t in range(T):
                for w in range(n):
                    for j in range(H):
                        W[UT + j * nT + w * T + t] = W[top + t * nH + w * H + j]
            gemm(W, DY, O, W, UT, nT, H, nT, O, G, spec[HEAD_W], ld_o, G, spec[HEAD_W], ld_o)
            gemm(W, DY, O, W, ONES, 0, 1, nT, O, G, spec[HEAD_B], 0, G, spec[HEAD_B], 0)

    return window


#: The window kernel of each cell kind (``spec[KIND]``).
WINDOW = per_family(_window_of)
window_gru, window_lstm, window_elman = WINDOW[GRU], WINDOW[LSTM], WINDOW[RNN_TANH]


@inline
def run_window(family, spec, P, bspec, PT, n, S0, X, T, Y, loss0, lkind, lpar, G, W, lossc, s_end,
                       dS_steps, dS0, S_out, Y_out):  # fmt: skip
    """The window kernel of ``family``, a constant: the call of that family's kernel only."""
    if family == GRU:
        window_gru(spec, P, bspec, PT, n, S0, X, T, Y, loss0, lkind, lpar, G, W, lossc, s_end,
                   dS_steps, dS0, S_out, Y_out)  # fmt: skip
    elif family == LSTM:
        window_lstm(spec, P, bspec, PT, n, S0, X, T, Y, loss0, lkind, lpar, G, W, lossc, s_end,
                    dS_steps, dS0, S_out, Y_out)  # fmt: skip
    else:
        window_elman(spec, P, bspec, PT, n, S0, X, T, Y, loss0, lkind, lpar, G, W, lossc, s_end,
                     dS_steps, dS0, S_out, Y_out)  # fmt: skip


@kernel
def window(spec, P, bspec, PT, n, S0, X, T, Y, loss0, lkind, lpar, G, W, lossc, s_end,
           dS_steps, dS0, S_out, Y_out):  # fmt: skip
    """The window kernel for the cell of ``spec``, whichever it is (every family's kernel is
    compiled with it: callers that know the family call :func:`run_window`)."""
    run_window(spec[KIND], spec, P, bspec, PT, n, S0, X, T, Y, loss0, lkind, lpar, G, W, lossc,
               s_end, dS_steps, dS0, S_out, Y_out)  # fmt: skip


def window_args_of(spec, P):
    """``(bspec, PT)`` for the weights ``P`` laid out by ``spec``."""
    bspec, size = make_back_spec(spec, P.dtype)
    PT = aligned_zeros(size, P.dtype)
    refresh(spec, P, bspec, PT)
    return bspec, PT
