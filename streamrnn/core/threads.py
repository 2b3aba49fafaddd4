"""The threads kernels run on: a few Python threads, started on first need.

Kernels release the GIL (:mod:`streamrnn.core.jit`), so a call that splits its work
runs ``task(w, workers)`` for ``w = 0 .. workers - 1`` at once: part 0 on the
calling thread, the others on a pool of ``workers - 1`` threads that sleep on a
queue between calls. Nothing spins while idle, so a busy machine or another
library's threads in the same process lose nothing to threads waiting here, and
work too small to split never wakes a thread.

The thread count is Numba's (``NUMBA_NUM_THREADS``, ``numba.set_num_threads``),
so that one setting governs every kernel. The pool is rebuilt in a child
process after ``fork``.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba

_lock = threading.Lock()
_pool = None
_pool_size = 0


def count():
    """Threads a kernel call may use."""
    return numba.get_num_threads()


def _forget_pool():
    global _pool, _pool_size
    _pool, _pool_size = None, 0


os.register_at_fork(after_in_child=_forget_pool)


def _pool_of(size):
    global _pool, _pool_size
    with _lock:
        if _pool_size < size:
            old = _pool
            _pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="streamrnn")
            _pool_size = size
            if old is not None:
                old.shutdown(wait=False)
        return _pool


def run(task, workers):
    """``task(w, workers)`` for every ``w < workers``, at once; returns when all are
    done and raises the first error any of them raised."""
    if workers <= 1:
        task(0, 1)
        return
    pool = _pool_of(workers - 1)
    futures = [pool.submit(task, w, workers) for w in range(1, workers)]
    try:
        task(0, workers)
    finally:
        errors = [f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error
