"""First-time compilation: said before the wait, and done ahead of time on request.

The kernels are compiled by Numba on their first call for each cell family and
dtype, and cached on disk; later processes load them in about a second. The
first call on a machine waits for the compiler: about three seconds for a forward
pass, about half a minute for the learning kernels on a small machine. Before such a wait a
:class:`CompileWarning` says what is compiled, roughly how long it takes and
where the cache is. Silence it with::

    warnings.filterwarnings("ignore", category=streamrnn.CompileWarning)

:func:`compile` fills the cache ahead of time (for image builds, CI caches and
cluster workers); ``streamrnn compile`` does the same from the command line, and
:func:`compile_in_background` in another process.
"""

import contextlib
import os
import time
import warnings
from pathlib import Path

import numpy as np

from feeds._warn import user_level

from .core import _cache
from .core.cells import CELLS
from .core.cells import FAMILIES as CELL_FAMILIES

#: What each family of kernels is, and roughly how long its first compilation
#: takes on a 2-core machine.
FAMILIES = {
    "inference": ("forward passes and forecasts", "3-10 seconds"),
    "learning": (
        "learning kernels (truncated backpropagation, shared weights)",
        "half a minute",
    ),
    "per_key": ("learning kernels for weights per key", "half a minute"),
    "seq2seq": ("sequence-to-sequence learning kernels", "a minute or less"),
}


class CompileWarning(UserWarning):
    """A family of kernels is being compiled for the first time on this machine."""


_ready = set()  # (family, cell family, dtype) compiled or loaded in this process


def cache_dir():
    """The folder where Numba caches the compiled kernels of this package's modules, for
    the present version of their sources (see :mod:`streamrnn.core._cache`)."""
    return Path(_cache.cache_folder())


def _sources_stamp():
    """A digest of the sources the kernels are compiled from: a changed source means a
    compiled kernel may be out of date, so its family counts as not yet compiled. The
    same digest keys Numba's cache of the kernels."""
    return _cache.sources_digest()


def _marker(family, cell, dtype):
    return cache_dir() / f"streamrnn-{family}-{cell}-{dtype}.compiled"


def _known(family, cell, dtype):
    """Whether this family of kernels was compiled on this machine from these sources."""
    try:
        return _marker(family, cell, dtype).read_text() == _sources_stamp()
    except OSError:
        return False


_READY = contextlib.nullcontext()


def first_use(family, model):
    """A context: before the first compilation on this machine of a family of kernels
    for ``model``'s cells and dtype it warns, and once done it notes it; kernels ready
    in this process cost a set lookup. A model on the GPU has no notice: these
    kernels are the CPU's."""
    if model.device != "cpu":
        return _READY
    key = (family, _cells_of(family, CELLS[model.cell].family), np.dtype(model.dtype).name)
    return _READY if key in _ready else _announced(*key)


def _cells_of(family, cell):
    """The cells a family of kernels is compiled for: ``cell``'s family, but every cell
    for the encoder-decoder's kernels (``"all"``), which are compiled for any cell."""
    return "all" if family == "seq2seq" else cell


@contextlib.contextmanager
def _announced(family, cell, dtype):
    known = _known(family, cell, dtype)
    if not known:
        what, how_long = FAMILIES[family]
        warnings.warn(
            f"compiling streamrnn's {what}{'' if cell == 'all' else f' of {cell} cells'} "
            f"for {dtype}, the first time on "
            f"this machine: about {how_long}; they are cached in {cache_dir()} for later runs "
            "(streamrnn compile does this ahead of time)",
            CompileWarning,
            stacklevel=user_level(),
        )
    yield
    _ready.add((family, cell, dtype))
    if not known:
        marker = _marker(family, cell, dtype)
        with contextlib.suppress(OSError):  # a read-only cache only means a repeated notice
            marker.parent.mkdir(parents=True, exist_ok=True)
            tmp = marker.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(_sources_stamp())
            os.replace(tmp, marker)


@contextlib.contextmanager
def said_on(stream):
    """Within this block, compile notices are written to ``stream`` as one line each
    (``streamrnn: compiling ...``) rather than as Python warnings."""
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, CompileWarning):
            stream.write(f"streamrnn: {message}\n")
            stream.flush()
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", CompileWarning)
            yield
    finally:
        warnings.showwarning = shown


_MODES = ("inference", "learning", "per_key", "seq2seq")


def compile(cells=("gru",), dtypes=("float32",), modes=("inference", "learning")):  # noqa: A001
    """Compile (or load from the cache) the kernels that these cells, dtypes and modes
    use, so that the first real call does not wait. Returns the seconds each
    ``(mode, cell, dtype)`` took.

    ``modes`` among ``"inference"`` (forward passes, one step of one series, streams
    and forecasts),
    ``"learning"`` (:class:`~streamrnn.OnlineLearner` with shared weights),
    ``"per_key"`` (weights per key) and ``"seq2seq"``
    (:class:`~streamrnn.Seq2SeqLearner`).
    """
    cells, dtypes, modes = _checked(cells, dtypes, modes)
    took = {}
    for mode in modes:
        for cell in cells:
            for dtype in dtypes:
                start = time.perf_counter()
                _exercise(mode, cell, np.dtype(dtype))
                took[(mode, cell, np.dtype(dtype).name)] = time.perf_counter() - start
    return took


def _checked(cells, dtypes, modes):
    """The arguments of :func:`compile` as tuples, or a ConfigError naming the bad one."""
    from .errors import ConfigError

    cells, dtypes, modes = (
        (v,) if isinstance(v, str) else tuple(v) for v in (cells, dtypes, modes)
    )
    for name, values, allowed in (("cells", cells, CELL_FAMILIES), ("modes", modes, _MODES)):
        bad = [v for v in values if v not in allowed]
        if bad or not values:
            raise ConfigError(f"{name} must be among {list(allowed)}, got {list(values)}")
    for d in dtypes:
        if np.dtype(d) not in (np.float32, np.float64):
            raise ConfigError(f"dtypes must be among ['float32', 'float64'], got {list(dtypes)}")
    return cells, tuple(np.dtype(d).name for d in dtypes), modes


def compile_in_background(cells=("gru",), dtypes=("float32",), modes=("learning",)):
    """Start compiling these kernels into the cache in another process, and return it
    (a :class:`subprocess.Popen`: ``wait()`` returns 0 once they are cached), or None
    when all of them were compiled on this machine before.

    Numba compiles on one core; a program with other work to do before its first
    learning call (reading and ordering data, a stream's first chunks) can have the
    learning kernels compiled on another core meanwhile. Wait for the process before
    that first call, or it compiles the same kernels a second time, and kill it if the
    program stops before. Meanwhile compile no other signature of these kernels here
    (another dtype, say): Numba's cache index of a function is not locked, and two
    processes adding different signatures of one function at once can leave an entry
    that points at the other's machine code. The kernels that inference shares with
    learning are compiled with the same signatures by both, which is safe.

    The arguments are those of :func:`compile`, which the process runs (``streamrnn
    compile``). None is also returned where no Python can be started (an embedded
    interpreter).
    """
    import subprocess
    import sys

    cells, dtypes, modes = _checked(cells, dtypes, modes)
    if all(_known(m, _cells_of(m, c), d) for m in modes for c in cells for d in dtypes):
        return None
    if not sys.executable:  # an embedded interpreter: no Python to start
        return None
    command = [sys.executable, "-m", "streamrnn", "compile", "--cells", ",".join(cells),
               "--dtypes", ",".join(dtypes), "--modes", ",".join(modes)]  # fmt: skip
    # started beside this package's folder, so that it imports this very package
    here = Path(__file__).resolve().parent.parent
    return subprocess.Popen(command, cwd=here, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip


def _exercise(mode, cell, dtype):
    """Run ``mode``'s kernels once on a tiny stream, as real use calls them."""
    from . import models
    from .learner import OnlineLearner
    from .seq2seq import Seq2SeqLearner
    from .stream import Series, Stream

    model = models.MODELS[cell](input_size=2, hidden_size=4, output_size=1, seed=0, dtype=dtype)
    rng = np.random.default_rng(0)
    n = 64
    keys = np.repeat(np.arange(16), n // 16)
    times = np.tile(np.arange(n // 16), 16)
    x = rng.standard_normal((n, 2)).astype(dtype)
    y = rng.standard_normal((n, 1)).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CompileWarning)
        if mode == "inference":
            model.forward(x[:8])
            Series(model).step(x[0])
            stream = Stream(model)
            stream.update(keys, times, x)
            stream.forecast(np.arange(16), 2)
        elif mode == "learning":
            OnlineLearner(model, tbptt=(2, 4)).predict_learn(keys, times, x, y)
        elif mode == "per_key":
            OnlineLearner(model, tbptt=(2, 4), per_key=True).predict_learn(keys, times, x, y)
        else:
            decoder = type(model)(1, 4, output_size=1, seed=1, dtype=dtype)
            learner = Seq2SeqLearner(model, decoder, horizon=2, tbptt=(2, 4))
            learner.predict_learn(keys, times, x, y)
