"""The seam between the Python layer and compiled code.

:class:`~streamrnn.RecurrentModel`, :class:`~streamrnn.Series`,
:class:`~streamrnn.Stream`, :class:`~streamrnn.OnlineLearner` and
:class:`~streamrnn.Seq2SeqLearner` hold their weights, states and buffers as
NumPy arrays and hand every piece of compiled work to a backend, found by
device name with :func:`get`. They never import a kernel module.

A backend receives host arrays laid out as :mod:`streamrnn.core.layout` says and
writes its results into the arrays it is given (states, outputs, gradients,
optimizer state) before it returns: data cross to the host at the end of each
call. A backend for another device keeps device copies of what it is given
between calls (weights, keyed states) and copies back what the Python layer
reads; its methods take the same arguments and return the same values.

``"cpu"`` (:class:`CPU`) decides how many threads a call uses
(:mod:`streamrnn.core.threads`): none for work too small to split. ``"cuda"``
(:class:`streamrnn.core.gpu.CUDA`) is imported the
first time it is asked for, and only then: numba's CUDA target is an optional
extra (``pip install "streamrnn[cuda]"``).
"""

import weakref
from functools import partial

import numpy as np

from .. import config
from ..errors import ConfigError, DeviceError
from . import bptt, encdec, kernels, native, tbptt, threads
from ._simd import ROW_BLOCK
from .layout import KIND

#: Windows of the online learner are summed into this many gradient buffers
#: (see :mod:`streamrnn.core.tbptt`).
LANES = tbptt.LANES


class CPU:
    """Compiled kernels on this machine's cores."""

    name = "cpu"

    def thread_count(self):
        """Threads a call may use (Numba's setting)."""
        return threads.count()

    # -- inference -----------------------------------------------------------
    def forward(self, spec, P, X, order, starts, lens, slots, S, Y):
        """Advance series ``q`` over rows ``X[order[starts[q]:starts[q] + lens[q]]]``
        from state ``S[slots[q]]`` (updated), outputs into the same rows of ``Y``;
        series listed longest first."""
        native.bind(P.dtype)
        resident.take_back(S)  # states last advanced on another device, if so
        n = slots.shape[0]
        run = kernels.RUN_GROUPS[spec[KIND]]
        if n < config.PARALLEL_MIN_SERIES or X.shape[0] < config.PARALLEL_MIN_ROWS:
            run(spec, P, X, order, starts, lens, slots, S, Y, 0, 1)
            return
        part = partial(run, spec, P, X, order, starts, lens, slots, S, Y)
        threads.run(part, min(threads.count(), -(-n // ROW_BLOCK)))

    def stepper(self, spec, dtype):
        """The one-step function of ``spec``'s cell for weights of ``dtype``: ``step(spec,
        P, x, buf)`` advances one series whose state, last input, output and scratch are
        ``buf``; it returns -1, or the column of a non-finite input (then nothing
        changed)."""
        native.bind(dtype)
        return kernels.STEP_ONE[spec[KIND]]

    def forecast(self, spec, P, S, Xlast, fb, future, Y):
        """Rollouts of ``Y.shape[1]`` steps from each state row of ``S`` (scratch
        copies: overwritten); ``fb`` rows are ``(output, input, change)``: each output
        fed back into the input it stands for, or added to it when ``change`` is 1;
        other inputs come from ``future`` (``(n, horizon - 1, I)``) when it is not
        empty, else are held."""
        native.bind(P.dtype)
        n = S.shape[0]
        workers = 1
        if n >= config.PARALLEL_MIN_SERIES and n * Y.shape[1] >= config.PARALLEL_MIN_ROWS:
            workers = min(threads.count(), n)
        threads.run(
            partial(kernels.FORECAST[spec[KIND]], spec, P, S, Xlast, fb, future, Y), workers
        )

    def group_rows(self, slot_rows, seg_of):
        """Rows grouped by state slot: ``(order, seg, slots)``."""
        return kernels.group_rows(slot_rows, seg_of)

    # -- gradients and learning ------------------------------------------------
    def back_weights(self, spec, P):
        """``(bspec, PT)``: the weights the backward pass reads, for ``P``."""
        return bptt.window_args_of(spec, P)

    def refresh(self, spec, P, bspec, PT):
        """After ``P``'s weights changed from outside: its bias sums and ``PT``."""
        bptt.refresh(spec, P, bspec, PT)

    def gradients(self, spec, P, bspec, PT, n, S0, X, T, Y, lkind, lpar, G, lossc, s_end):
        """Forward and backward over ``T`` steps of ``n`` series from states ``S0``:
        losses into ``lossc``, gradients added to ``G``, end states into ``s_end``."""
        W = np.empty(bptt.scratch_size(spec, n, T), P.dtype)
        empty = np.zeros(0, P.dtype)
        bptt.WINDOW[spec[KIND]](spec, P, bspec, PT, n, S0, X, T, Y, 0, lkind, lpar, G, W, lossc,
                                s_end, empty, empty, empty, empty)  # fmt: skip

    def lane_scratch(self, spec, k2, P):
        """Scratch of the learner's gradient buffers for windows of up to ``k2`` steps."""
        return tbptt.lane_scratch(spec, k2, P)

    def plan(self, slot_rows, steps, h, k1, batch, pending):
        """Rows where windows close and rows after which the weights change."""
        return tbptt.plan(slot_rows, steps, h, k1, batch, pending)

    def learn_chunk(self, net, opt, loss, data, hist, plan, lanes, cfg, counts):
        """A chunk of rows learned with shared weights (see :mod:`streamrnn.core.tbptt`)."""
        native.bind(net[1].dtype)
        tbptt.learn_chunk(net, opt, loss, data, hist, plan, lanes, cfg, counts)

    def learn_per_key(self, net, opt, loss, data, hist, keyed, cfg):
        """A chunk of rows learned with weights per key (see :mod:`streamrnn.core.tbptt`)."""
        native.bind(net[1].dtype)
        tbptt.learn_per_key(net, opt, loss, data, hist, keyed, cfg)

    def encdec_chunk(self, enc, dec, opt, loss, data, hist, cfg, state, counts):
        """A chunk of rows of the encoder-decoder learner, predicted and (with ``cfg[4]``)
        learned (:func:`streamrnn.core.encdec.learn_chunk`)."""
        native.bind(enc[1].dtype)
        encdec.learn_chunk(enc, dec, opt, loss, data, hist, cfg, state, counts)

    def decode(self, spec, P, s, x0, fb, horizon, Y, GI, GH):
        """A decoder's rollout of ``horizon`` steps from state ``s`` (changed)."""
        native.bind(P.dtype)
        encdec.decode(spec, P, s, x0, fb, horizon, Y, GI, GH)


class Resident:
    """Device copies of host arrays, for backends that keep them between calls.

    A stream marks its states as kept (:meth:`keep`): a device backend then keeps its
    copy of them between calls and advances it there, instead of sending the states of
    a chunk's series over and back. The host array stays the stream's record: a copy
    newer than it is brought back by :meth:`on_host` before the host reads or writes
    it, and :meth:`wrote_rows` sends what the host wrote. A model's weights are kept
    the same way (:meth:`put`), until :meth:`forget`. Each entry goes with its host
    array (a weak reference). On the CPU there are no copies, and each call is a
    dictionary lookup.
    """

    def __init__(self):
        self._copies = {}  # id(host) -> [weakref(host), device copy or None, newer]

    def _entry(self, host):
        entry = self._copies.get(id(host))
        return entry if entry is not None and entry[0]() is host else None

    def keep(self, host):
        """Let a device keep a copy of ``host`` between calls."""
        if self._entry(host) is None:
            self.put(host, None)

    def get(self, host):
        """``[weakref, device copy or None, newer]`` of a kept ``host``, or None."""
        return self._entry(host)

    def put(self, host, device, newer=False):
        """Record ``device`` as the copy of ``host``."""
        key = id(host)
        self._copies[key] = [weakref.ref(host, lambda _, key=key: self._copies.pop(key, None)),
                             device, newer]  # fmt: skip

    def touched(self, host):
        """The device copy of ``host`` has been written: it is newer than ``host``."""
        self._entry(host)[2] = True

    def on_host(self, host):
        """Bring a newer device copy of ``host`` back into it (nothing without one)."""
        entry = self._entry(host)
        if entry is not None and entry[1] is not None and entry[2]:
            entry[1].copy_to_host(host)
            entry[2] = False

    def forget(self, host):
        """Drop the device copy of ``host`` (after :meth:`on_host`): the host array, or
        another device, has changed it. It stays kept."""
        entry = self._entry(host)
        if entry is not None:
            entry[1], entry[2] = None, False

    def take_back(self, host):
        """:meth:`on_host`, then :meth:`forget`, with one lookup: the host is about to
        advance ``host`` itself."""
        entry = self._copies.get(id(host))
        if entry is None or entry[1] is None or entry[0]() is not host:
            return
        if entry[2]:
            entry[1].copy_to_host(host)
        entry[1], entry[2] = None, False

    def wrote_rows(self, host, start, stop):
        """The host wrote rows ``start:stop`` of ``host`` (after :meth:`on_host`): the
        device copy gets them too."""
        entry = self._entry(host)
        if entry is not None and entry[1] is not None and stop > start:
            entry[1][start:stop] = host[start:stop]


#: The device copies of every backend (see :class:`Resident`).
resident = Resident()

_BACKENDS = {"cpu": CPU()}
#: The devices a model may name.
DEVICES = ("cpu", "cuda")
#: numba's CUDA target compiles no kernel with NumPy from this version on.
_CUDA_NUMPY_BELOW = (2, 5)


def get(device="cpu"):
    """The backend of ``device``: ``"cpu"``, or ``"cuda"`` (a
    :class:`~streamrnn.DeviceError` when this machine cannot run it, saying what
    is missing)."""
    try:
        return _BACKENDS[device]
    except (KeyError, TypeError):
        if device not in DEVICES:
            raise ConfigError(f"device must be one of {list(DEVICES)}, got {device!r}") from None
    _BACKENDS[device] = backend = _cuda()
    return backend


def _cuda():
    """The CUDA backend, once this machine is known to run it."""
    numpy_version = tuple(int(v) for v in np.__version__.split(".")[:2])
    if numpy_version >= _CUDA_NUMPY_BELOW:
        raise DeviceError(
            f"device='cuda' needs NumPy below {'.'.join(map(str, _CUDA_NUMPY_BELOW))} (numba's "
            f"CUDA target compiles nothing with NumPy {np.__version__}): pip install "
            '"streamrnn[cuda]" installs one that works'
        )
    try:
        from numba import cuda
    except ImportError as exc:
        raise DeviceError(
            f"device='cuda' needs numba's CUDA target ({exc}): pip install \"streamrnn[cuda]\""
        ) from None
    if not cuda.is_available():
        raise DeviceError(
            "device='cuda' found no usable NVIDIA GPU: no CUDA driver, or no device it can "
            "see (numba.cuda.detect() tells which); use device='cpu'"
        )
    from .gpu import CUDA

    return CUDA()


cpu = _BACKENDS["cpu"]
