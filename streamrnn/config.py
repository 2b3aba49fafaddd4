"""Defaults that the kernels and the public layer read; tests may patch them."""

from .core import _cache

#: A call splits its series over threads (streamrnn.core.threads) only when it has at
#: least this many series and this many rows: below that, waking a thread costs
#: more than it saves.
PARALLEL_MIN_SERIES = 8
PARALLEL_MIN_ROWS = 256

#: Compiled kernels are cached on disk next to the package when it is writable,
#: keyed to the contents of the package's compiled sources (see streamrnn.core._cache).
CACHE = True

#: Fast-math flags of the gate loops: division by reciprocal and fused
#: multiply-adds. Both depend only on a unit's position in its layer, never on
#: the batch, so results stay independent of chunking. The matrix products fix
#: their own rounding (see streamrnn.core._simd).
FASTMATH = {"arcp", "contract"}

# Every kernel module imports this one before it compiles anything: from here on,
# the package's functions are cached under the digest of its compiled sources.
_cache.install()
