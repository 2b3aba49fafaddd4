"""Shared set-up: seeded data and models, built the same way in every benchmark."""

import numba
import numpy as np

import streamrnn

I = 8


def model(cell, hidden, seed=0):
    cls = streamrnn.GRU if cell == "gru" else streamrnn.LSTM
    return cls(I, hidden, dtype="float32", seed=seed)


def data(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def threads(n):
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
