"""Shared set-up: seeded data and models, built the same way in every benchmark."""

import time

import numba
import numpy as np
import pyarrow as pa

import streamrnn

from .machine import busy_seconds

I = 8


def model(cell, hidden, seed=0):
    cls = streamrnn.GRU if cell == "gru" else streamrnn.LSTM
    return cls(I, hidden, dtype="float32", seed=seed)


def data(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def threads(n):
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


def median_times(fns, repeats):
    """Interleave the functions ``repeats`` times; median seconds of each."""
    times = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - t0)
    return [float(np.median(t)) for t in times]


#: Seconds to wait before each timed call in :func:`times_apart`: the idle threads of an
#: OpenMP library (Numba's ``omp`` layer, PyTorch) keep a core busy for 5-10 ms after its call
#: returns.
PAUSE = 0.05


def times_apart(fns, repeats, prepare=None, pause=PAUSE):
    """Interleave the functions ``repeats`` times, as :func:`median_times` does, but start
    each timed call on a settled process: ``prepare[i]()`` runs first, untimed (to set that
    side's thread count, say), then a ``pause`` in seconds, long enough for the threads the
    previous call left spinning to go to sleep. Returns every call's seconds, one list per
    function. ``pause=0`` without ``prepare`` is :func:`median_times`' schedule."""
    times = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            if prepare is not None and prepare[i] is not None:
                prepare[i]()
            if pause:
                time.sleep(pause)
            t0 = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - t0)
    return times


def outlier(times, limit=2.0):
    """Why ``times`` (seconds of the repeats of one workload) hold an outlier, or None: a
    repeat more than ``limit`` times the median of the others."""
    for i, t in enumerate(times):
        others = times[:i] + times[i + 1 :]
        if others and t > limit * float(np.median(others)):
            return (
                f"one repeat took {t:.3g} s, over {limit:g}x the median of the others "
                f"({float(np.median(others)):.3g} s)"
            )
    return None


def steady(measure, doubt, retries, wait):
    """Call ``measure()`` until ``doubt(result)`` finds no reason (a string) to distrust its
    result, at most ``1 + retries`` times; before each retry, wait up to ``wait`` seconds for
    other processes to leave the CPUs idle (:func:`wait_quiet`).

    Returns ``(result, cpu, tries, reason)``: the last result, :meth:`CpuUse.stop`'s figures
    while it was measured, ``(result, reason)`` of each try set aside, and the reason the
    last result is still doubted (None when it is not)."""
    tries = []
    while True:
        use = CpuUse()
        result = measure()
        cpu = use.stop()
        reason = doubt(result)
        if reason is None or len(tries) >= retries:
            return result, cpu, tries, reason
        tries.append((result, reason))
        wait_quiet(wait)


class CpuUse:
    """Cores used by this process, and by the rest of the machine, from creation to
    :meth:`stop` (``other_cores`` is None where the machine's use cannot be read)."""

    def __init__(self):
        self._wall = time.perf_counter()
        self._ours = time.process_time()
        self._system = busy_seconds()

    def stop(self):
        wall = time.perf_counter() - self._wall
        ours = (time.process_time() - self._ours) / wall
        system = busy_seconds()
        other = None
        if system is not None and self._system is not None:
            other = round(max(0.0, (system - self._system) / wall - ours), 2)
        return dict(cores_used=round(ours, 2), other_cores=other)


def wait_quiet(limit, threshold=0.3, interval=0.5):
    """Wait, at most ``limit`` seconds, until the rest of the machine uses under ``threshold``
    cores over ``interval`` seconds. Returns ``(seconds waited, other cores last seen)``."""
    t0 = time.perf_counter()
    other = None
    while limit > 0:
        use = CpuUse()
        time.sleep(interval)
        other = use.stop()["other_cores"]
        if other is None or other < threshold or time.perf_counter() - t0 >= limit:
            break
    return time.perf_counter() - t0, other


def pair_times(run_ours, run_peer, repeats, n_threads, peer_threads, pause=PAUSE):
    """Median seconds of each side, interleaved (:func:`times_apart`), each timed call at
    ``n_threads`` of its own library (``numba.set_num_threads`` for streamrnn,
    ``peer_threads`` for the peer) after a pause; and the seconds of every peer repeat."""
    ours, peer = times_apart(
        [run_ours, run_peer],
        repeats,
        prepare=[lambda: numba.set_num_threads(n_threads), lambda: peer_threads(n_threads)],
        pause=pause,
    )
    return float(np.median(ours)), float(np.median(peer)), peer


def add_measuring_options(parser):
    """The side-by-side scripts' options for keeping each side's measurement apart:
    ``--pause``, ``--retries``, ``--wait-quiet``."""
    parser.add_argument(
        "--pause",
        type=float,
        default=PAUSE,
        metavar="SECONDS",
        help=f"sleep before each timed call (default {PAUSE}; 0: strict alternation)",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=3,
        help="times a row with an outlying PyTorch figure is measured again",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="before measuring a row again, wait at most this long for other "
        "processes to leave the CPUs idle (default 30)",
    )


def sensor_table(n, keys, features=8, seed=0):
    """``n`` rows of ``keys`` sensors, interleaved by time: every key once a step, in a
    fresh random order; a timestamp column and ``features`` float32 columns f0, f1, ..."""
    rng = np.random.default_rng(seed)
    names = np.array([f"sensor-{k:04d}" for k in range(keys)])
    steps = -(-n // keys)
    order = np.concatenate([rng.permutation(keys) for _ in range(steps)])[:n]
    step = np.repeat(np.arange(steps, dtype=np.int64), keys)[:n]
    times = np.datetime64("2024-01-01T00:00:00", "ns") + step.astype("timedelta64[s]")
    cols = {"sensor": pa.array(names[order]), "time": pa.array(times)}
    for j in range(features):
        cols[f"f{j}"] = pa.array(rng.standard_normal(n, dtype=np.float32))
    return pa.table(cols)
