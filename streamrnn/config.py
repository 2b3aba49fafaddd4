"""Defaults that the kernels and the public layer read; tests may patch them."""

from . import _cache

#: Below this many series in one call the serial kernel runs: starting the
#: thread pool costs more than it saves for a handful of series.
PARALLEL_MIN_SERIES = 8

#: Compiled kernels are cached on disk next to the package when it is writable,
#: keyed to the contents of the package's compiled sources (see streamrnn._cache).
CACHE = True

#: Fast-math flags of the gate loops: division by reciprocal and fused
#: multiply-adds. Both depend only on a unit's position in its layer, never on
#: the batch, so results stay independent of chunking. The matrix products fix
#: their own rounding (see streamrnn._simd).
FASTMATH = {"arcp", "contract"}

#: Compile flags shared by every kernel and helper.
JIT_FLAGS = dict(cache=CACHE, error_model="numpy", fastmath=FASTMATH)

# Every kernel module imports this one before it compiles anything: from here on,
# the package's functions are cached under the digest of its compiled sources.
_cache.install()
