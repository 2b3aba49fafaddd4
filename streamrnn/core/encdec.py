"""Kernels of the encoder-decoder learner (:class:`streamrnn.Seq2SeqLearner`): a
decoder's rollout, and a chunk of rows predicted and learned, with the window
kernel of :mod:`streamrnn.core.bptt` for the encoder and each decoder."""

import numpy as np

from ..optim import apply_update, clip_scale, grad_norm
from .bptt import refresh, scratch_size, window
from .jit import kernel
from .kernels import advance_block, gate_width, readout_block
from .layout import OUTPUTS


@kernel
def decode(spec, P, s, x0, fb, Hz, Y, GI, GH):
    """Roll the decoder ``Hz`` steps from state ``s`` (changed), first input ``x0``,
    each later input the outputs ``fb`` of the step before; outputs into ``Y``."""
    O = spec[OUTPUTS]
    x = x0.copy()
    for k in range(Hz):
        advance_block(spec, P, x, s, 1, GI, GH)
        readout_block(spec, P, s, 1, Y[k * O : (k + 1) * O])
        for j in range(x.shape[0]):
            x[j] = Y[k * O + fb[j]]


@kernel
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
    GW = max(gate_width(espec), gate_width(dspec))
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
        for j in range(D):
            s[j] = S[q, j]
        decode(dspec, dP, s, x0, fb, Hz, Ypred[r].reshape(Hz * Ypred.shape[2]), GI, GH)
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
