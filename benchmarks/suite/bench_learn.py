"""Online learning speed: TBPTT(32, 32), Adam, MSE, float32, H=64.

Each benchmark builds a fresh learner per timed call (``number = 1``), so the
weights always start from the same seed; compilation happens in ``setup``.
"""

import numpy as np

import streamrnn

from .common import I, data, threads

K = 32


def learner(cell, hidden, batch):
    cls = streamrnn.GRU if cell == "gru" else streamrnn.LSTM
    m = cls(I, hidden, output_size=1, dtype="float32", seed=0)
    return streamrnn.OnlineLearner(m, tbptt=(K, K), horizon=0, batch=batch)


class LearnOneSeries:
    """One series, 4,096 steps in chunks of 1,024 rows, one thread."""

    params = (["gru", "lstm"], [64])
    param_names = ["cell", "hidden"]
    number = 1
    timeout = 180

    def setup(self, cell, hidden):
        threads(1)
        self.x = data(4096, I)
        self.y = data(4096, 1, seed=1)
        self.keys = np.zeros(1024, np.int64)
        learner(cell, hidden, 1).learn(self.keys[:64], None, self.x[:64], self.y[:64])

    def time_learn(self, cell, hidden):
        fresh = learner(cell, hidden, 1)
        for t in range(0, 4096, 1024):
            fresh.learn(self.keys, None, self.x[t : t + 1024], self.y[t : t + 1024])


class LearnKeyed:
    """1,000 keyed series, each chunk holds every key once in a random order;
    one update from all keys every 32 chunks; both threads."""

    params = (["gru", "lstm"], [64])
    param_names = ["cell", "hidden"]
    number = 1
    timeout = 180

    def setup(self, cell, hidden):
        threads(2)
        rng = np.random.default_rng(3)
        n = 1000
        self.chunks = [
            (rng.permutation(n), data(n, I, seed=i), data(n, 1, seed=1000 + i)) for i in range(K)
        ]
        self.n = n
        warm = learner(cell, hidden, n)
        for keys, x, y in self.chunks[:2]:
            warm.learn(keys, None, x, y)

    def time_learn(self, cell, hidden):
        fresh = learner(cell, hidden, self.n)
        for keys, x, y in self.chunks:
            fresh.learn(keys, None, x, y)


class LearnStart:
    """Start of learning: import, build, first call, with the kernels cached on disk, and
    from an empty cache (every kernel the first shared-weight learning call needs is
    compiled; ``benchmarks/cold_start.py`` measures each first call this way)."""

    timeout = 900

    def timeraw_import_and_first_learn(self):
        return """
        import os, tempfile
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp()
        import warnings
        warnings.simplefilter("ignore")
        import numpy as np, streamrnn
        m = streamrnn.GRU(8, 32, output_size=1, seed=0)
        learner = streamrnn.OnlineLearner(m)
        learner.predict_learn(np.repeat(np.arange(4), 8), None, np.ones((32, 8), np.float32),
                              np.ones((32, 1), np.float32))
        """

    def timeraw_import_and_cached_learn(self):
        return """
        import numpy as np, streamrnn
        m = streamrnn.GRU(8, 16, output_size=1, seed=0)
        learner = streamrnn.OnlineLearner(m, tbptt=(4, 4))
        learner.learn(np.zeros(8, int), None, np.ones((8, 8), np.float32), np.ones((8, 1)))
        """
