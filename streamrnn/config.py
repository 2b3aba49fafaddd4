"""Defaults that the kernels and the public layer read; tests may patch them."""

#: Below this many series in one call the serial kernel runs: starting the
#: thread pool costs more than it saves for a handful of series.
PARALLEL_MIN_SERIES = 8

#: Compiled kernels are cached on disk next to the package when it is writable.
CACHE = True
