"""Shared set-up: seeded data and models, built the same way in every benchmark."""

import time

import numba
import numpy as np
import pyarrow as pa

import streamrnn

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
