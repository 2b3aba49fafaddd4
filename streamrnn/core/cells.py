"""Cell math: the gate nonlinearities of each recurrent cell.

Every cell follows PyTorch's equations, gate order and parameter names. A step
is two parts: the matrix products that give the gate pre-activations (the same
for every cell, done for a block of series at once by
:func:`streamrnn.core.kernels.advance_block`), and the elementwise update below,
which turns pre-activations into the new state of one series.

Pre-activations arrive as ``g = b_ih + b_hh + W_ih x + W_hh h`` for RNN and
LSTM; GRU keeps the input part ``gi = b_ih + W_ih x`` and the hidden part
``gh = b_hh + W_hh h`` apart, because its reset gate multiplies ``gh`` only.

Cell kinds (the integer that selects a cell inside the loop kernels):

``RNN_TANH`` and ``RNN_RELU`` (``torch.nn.RNN``)::

    h' = act(W_ih x + b_ih + W_hh h + b_hh)

``GRU`` (``torch.nn.GRU``, gates r, z, n)::

    r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h

``LSTM`` (``torch.nn.LSTM``, gates i, f, g, o; state is h then c)::

    i  = sigmoid(W_ii x + b_ii + W_hi h + b_hi)
    f  = sigmoid(W_if x + b_if + W_hf h + b_hf)
    g  = tanh(W_ig x + b_ig + W_hg h + b_hg)
    o  = sigmoid(W_io x + b_io + W_ho h + b_ho)
    c' = f * c + i * g
    h' = o * tanh(c')
"""

from typing import NamedTuple

from ._activations import sigmoid, tanh
from .jit import inline, kernel

RNN_TANH = 0
RNN_RELU = 1
GRU = 2
LSTM = 3
#: Either Elman kind, where a kernel is compiled for a family of cells.
ELMAN = -1


class Cell(NamedTuple):
    """What the package knows of a cell, in one place."""

    kind: int  #: the integer that selects it in the kernels (``spec[KIND]``)
    gates: int  #: gates per unit, G
    states: int  #: state vectors per layer, K (h, and c for LSTM)
    family: str  #: its model class's name on the command line and in job files
    torch_mode: str  #: ``mode`` of the ``torch.nn`` module that computes the same


#: The cell registry: every mapping from a cell's name to what it is reads this.
CELLS = {
    "rnn_tanh": Cell(RNN_TANH, 1, 1, "rnn", "RNN_TANH"),
    "rnn_relu": Cell(RNN_RELU, 1, 1, "rnn", "RNN_RELU"),
    "gru": Cell(GRU, 3, 1, "gru", "GRU"),
    "lstm": Cell(LSTM, 4, 2, "lstm", "LSTM"),
}
#: The model families, by their command-line names.
FAMILIES = tuple(dict.fromkeys(cell.family for cell in CELLS.values()))


def by_kind(gru, lstm, elman):
    """A mapping from each cell kind to one of three things, by family (kernels compiled
    once per family, with the family as a constant)."""
    return {GRU: gru, LSTM: lstm, RNN_TANH: elman, RNN_RELU: elman}


def per_family(make):
    """Kernels by cell kind, one per family: ``make(family)`` defines and returns the
    kernel of ``family`` (``GRU``, ``LSTM`` or ``ELMAN``), a constant of its body, so
    that the code of the other families' cells is left out of it. Each is decorated
    with :func:`named_for` under the kernel decorator."""
    return by_kind(make(GRU), make(LSTM), make(ELMAN))


_FAMILY_NAMES = {GRU: "gru", LSTM: "lstm", ELMAN: "elman"}


def named_for(family):
    """A decorator that names a family's kernel after its family (``window_gru``):
    Numba names its cache files after the function, and the families' kernels, the
    same source, must not share files (two processes compiling two families at once
    would write the same index)."""

    def rename(fn):
        fn.__name__ = f"{fn.__name__}_{_FAMILY_NAMES[family]}"
        fn.__qualname__ = f"{fn.__qualname__}_{_FAMILY_NAMES[family]}"
        return fn

    return rename


@kernel
def rnn_update(kind, g, h, H):
    """Elman: ``h = tanh(g)`` or ``relu(g)``."""
    if kind == RNN_TANH:
        for j in range(H):
            h[j] = tanh(g[j])
    else:
        for j in range(H):
            v = g[j]
            h[j] = v if v > 0.0 else 0.0


@inline
def _gru(gi, gh, h, H, a):
    """GRU: ``b_hn`` stays inside the reset product, as in PyTorch. With ``a`` (not
    None: training), keeps ``r, z, n, gh_n`` there for the backward step; a None
    ``a`` compiles a kernel without those stores."""
    for j in range(H):
        r = sigmoid(gi[j] + gh[j])
        z = sigmoid(gi[H + j] + gh[H + j])
        n = tanh(gi[2 * H + j] + r * gh[2 * H + j])
        if a is not None:
            a[j] = r
            a[H + j] = z
            a[2 * H + j] = n
            a[3 * H + j] = gh[2 * H + j]
        h[j] = n + z * (h[j] - n)  # = (1 - z) * n + z * h, rounded as PyTorch does


@kernel
def gru_update(gi, gh, h, H, a):
    """:func:`_gru` keeping the activations in ``a`` (training)."""
    _gru(gi, gh, h, H, a)


@kernel
def gru_step(gi, gh, h, H):
    """:func:`_gru` keeping nothing (inference). A kernel of its own rather than
    ``gru_update`` with a None ``a``: two signatures of one function share one cache
    index, which two processes compiling at once (``compile_in_background``) could
    write over each other."""
    _gru(gi, gh, h, H, None)


@inline
def _lstm(g, h, c, H, a):
    """LSTM: ``c = f c + i g``, ``h = o tanh(c)``. With ``a`` (not None), keeps ``i, f,
    g, o, tanh(c')`` there."""
    for j in range(H):
        i = sigmoid(g[j])
        f = sigmoid(g[H + j])
        gg = tanh(g[2 * H + j])
        o = sigmoid(g[3 * H + j])
        cj = f * c[j] + i * gg
        tc = tanh(cj)
        if a is not None:
            a[j] = i
            a[H + j] = f
            a[2 * H + j] = gg
            a[3 * H + j] = o
            a[4 * H + j] = tc
        c[j] = cj
        h[j] = o * tc


@kernel
def lstm_update(g, h, c, H, a):
    """:func:`_lstm` keeping the activations in ``a`` (training)."""
    _lstm(g, h, c, H, a)


@kernel
def lstm_step(g, h, c, H):
    """:func:`_lstm` keeping nothing (inference; see :func:`gru_step`)."""
    _lstm(g, h, c, H, None)


# -- training: the backward steps ------------------------------------------------
#
# The forward steps above keep what these need when given ``a``: one step's
# activations of one layer, GRU ``r, z, n, gh_n`` (the
# hidden part of the n gate, ``b_hn + W_hn h``); LSTM ``i, f, g, o, tanh(c')``;
# the Elman cell keeps nothing (its output is the new ``h``). Backward steps
# take ``dh`` (the loss gradient reaching the new ``h``) and give the gradients
# of the gate pre-activations: ``dai`` for the input part, ``dah`` for the hidden
# part (they differ only in GRU's n gate, ``dah_n = r * dai_n``).

#: Activations kept per unit and step (``a`` above).
SAVED_PER_UNIT = 5


@kernel
def gru_backward(a, h_prev, dh, dai, dah, dh_prev, H):
    """GRU step backward; ``dh_prev`` gets the direct part ``z * dh`` (the part
    through ``W_hh`` is added by the caller)."""
    for j in range(H):
        r = a[j]
        z = a[H + j]
        n = a[2 * H + j]
        d = dh[j]
        dn = d * (1 - z) * (1 - n * n)
        dr = dn * a[3 * H + j] * r * (1 - r)
        dz = d * (h_prev[j] - n) * z * (1 - z)
        dai[j] = dr
        dai[H + j] = dz
        dai[2 * H + j] = dn
        dah[j] = dr
        dah[H + j] = dz
        dah[2 * H + j] = dn * r
        dh_prev[j] = d * z


@kernel
def lstm_backward(a, c_prev, dh, dc, da, H):
    """LSTM step backward. ``dc`` holds the gradient reaching the new ``c`` from
    later steps and is replaced by the gradient reaching ``c_prev``."""
    for j in range(H):
        i = a[j]
        f = a[H + j]
        gg = a[2 * H + j]
        o = a[3 * H + j]
        tc = a[4 * H + j]
        dct = dc[j] + dh[j] * o * (1 - tc * tc)
        da[j] = dct * gg * i * (1 - i)
        da[H + j] = dct * c_prev[j] * f * (1 - f)
        da[2 * H + j] = dct * i * (1 - gg * gg)
        da[3 * H + j] = dh[j] * tc * o * (1 - o)
        dc[j] = dct * f


@kernel
def rnn_backward(kind, h, dh, da, H):
    """Elman step backward from the new ``h``: ``tanh' = 1 - h**2``; ``relu'`` is 1
    where ``h > 0``, else 0 (as PyTorch)."""
    if kind == RNN_TANH:
        for j in range(H):
            da[j] = dh[j] * (1 - h[j] * h[j])
    else:
        for j in range(H):
            da[j] = dh[j] if h[j] > 0.0 else 0.0
