"""Inference speed: one step, one long series, many series, keyed streaming."""

import numpy as np

import streamrnn

from .common import I, data, model, threads


class StepLatency:
    """One step of one series called from Python, state kept between calls."""

    params = (["gru", "lstm"], [16, 64, 256])
    param_names = ["cell", "hidden"]

    def setup(self, cell, hidden):
        threads(1)
        self.series = streamrnn.Series(model(cell, hidden))
        self.x = data(I)
        self.series.step(self.x)  # compiled here, not in the timing

    def time_step(self, cell, hidden):
        self.series.step(self.x)


class Sequence:
    """One series, 4,096 steps in one call."""

    params = (["gru", "lstm"], [16, 64, 256])
    param_names = ["cell", "hidden"]

    def setup(self, cell, hidden):
        threads(1)
        self.model = model(cell, hidden)
        self.x = data(4096, I)
        self.model.forward(self.x[:2])

    def time_forward(self, cell, hidden):
        self.model.forward(self.x)


class ManySeries:
    """1,024 series x 256 steps, batched, on 1 and 2 threads."""

    params = (["gru", "lstm"], [64], [1, 2])
    param_names = ["cell", "hidden", "threads"]
    timeout = 120

    def setup(self, cell, hidden, n_threads):
        threads(n_threads)
        self.model = model(cell, hidden)
        self.x = data(256, 1024, I)
        self.model.forward(self.x[:1])

    def time_forward(self, cell, hidden, n_threads):
        self.model.forward(self.x)


class KeyedStreaming:
    """10,000 keyed series, chunks of 10,000 interleaved rows (every key once)."""

    params = (["gru", "lstm"], [64])
    param_names = ["cell", "hidden"]

    def setup(self, cell, hidden):
        threads(1)
        rng = np.random.default_rng(0)
        self.keys = [rng.permutation(10_000) for _ in range(3)]
        self.x = data(10_000, I)
        self.stream = streamrnn.Stream(model(cell, hidden))
        self.stream.update(self.keys[0], np.zeros(10_000, np.int64), self.x)
        self.t = 1

    def time_update(self, cell, hidden):
        self.stream.update(self.keys[self.t % 3], np.full(10_000, self.t), self.x)
        self.t += 1

    def peakmem_update(self, cell, hidden):
        self.stream.update(self.keys[self.t % 3], np.full(10_000, self.t), self.x)
        self.t += 1


class ColdStart:
    """Import plus first compile, in a fresh process with an empty kernel cache."""

    timeout = 600
    number = 1
    repeat = 1

    def timeraw_import_and_first_forward(self):
        return """
import os, tempfile
os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp()
import numpy as np
import streamrnn
streamrnn.GRU(8, 64).forward(np.zeros((2, 8), np.float32))
"""

    def timeraw_import_and_cached_forward(self):
        return """
import numpy as np
import streamrnn
streamrnn.GRU(8, 64).forward(np.zeros((2, 8), np.float32))
"""
