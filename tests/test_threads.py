"""The kernels' threads: work split only when it is worth it, errors passed on, nothing
left running between calls."""

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import streamrnn
from streamrnn import config
from streamrnn.core import threads


def test_every_part_runs_once_and_the_caller_takes_part_zero():
    seen = []
    lock = threading.Lock()

    def task(w, n):
        with lock:
            seen.append((w, n, threading.current_thread() is threading.main_thread()))

    threads.run(task, 3)
    assert sorted(seen) == [(0, 3, True), (1, 3, False), (2, 3, False)]


def test_an_error_in_any_part_reaches_the_caller_after_all_parts_end():
    done = []

    def task(w, n):
        if w == 1:
            raise ValueError("part 1 failed")
        done.append(w)

    with pytest.raises(ValueError, match="part 1 failed"):
        threads.run(task, 2)
    assert done == [0]


def test_small_chunks_start_no_thread():
    """A fresh process: a 100-row keyed update and one step never start the pool."""
    code = textwrap.dedent(
        """
        import threading, warnings
        warnings.simplefilter("ignore")
        import numpy as np, streamrnn
        from streamrnn.core import threads
        stream = streamrnn.Stream(streamrnn.GRU(3, 4, seed=0))
        stream.update(np.arange(100) % 10, None, np.ones((100, 3), np.float32))
        streamrnn.Series(streamrnn.GRU(3, 4, seed=0)).step(np.ones(3, np.float32))
        print(threads._pool is None, threading.active_count())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ)
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "1"]


def test_a_large_chunk_is_split_and_gives_the_same_bits(monkeypatch):
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs numba with at least 2 threads")
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 40, 600)
    x = rng.standard_normal((600, 3)).astype(np.float32)
    model = streamrnn.LSTM(3, 5, output_size=2, seed=1)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = streamrnn.Stream(model).update(keys, None, x)
        numba.set_num_threads(2)
        calls = []
        run = threads.run
        monkeypatch.setattr(threads, "run", lambda task, n: (calls.append(n), run(task, n)))
        two = streamrnn.Stream(model).update(keys, None, x)
    finally:
        numba.set_num_threads(before)
    assert calls and max(calls) == 2 and 600 >= config.PARALLEL_MIN_ROWS
    assert np.array_equal(one, two)


def test_the_pool_is_rebuilt_in_a_forked_child():
    if not hasattr(os, "fork"):
        pytest.skip("needs fork")
    threads.run(lambda w, n: None, 2)
    assert threads._pool is not None
    pid = os.fork()
    if pid == 0:  # the child: a fresh pool works
        ok = threads._pool is None
        parts = []
        threads.run(lambda w, n: parts.append(w), 2)
        os._exit(0 if ok and sorted(parts) == [0, 1] else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
