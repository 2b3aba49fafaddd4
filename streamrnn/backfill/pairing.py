"""Each output row's target: the time and the values of the row its forecast is for.

A backfill writes one row per row of the feed, in the feed's order, holding the
forecast made at that row for the row ``horizon`` rows later in the same series:
its *target row*. Beside the forecast go the target row's time
(``target_time``) and its targets (``<target>_actual``, in the data's units, as
the forecast was scored against them). Both are known only when the target row
arrives, so output rows wait in a :class:`Pairing` for it, for at most
``lookahead`` later rows of the feed's stream, and leave in the feed's order.
A row whose target row comes later than that, or not at all (a series' last
``horizon`` rows), leaves with them empty; with a grid its ``target_time`` is
still known: its own time plus ``horizon`` grid steps.

What a row gets depends on the stream alone, never on how it is cut into
chunks: a row is paired when its target row is at most ``lookahead`` rows after
it, and it leaves once it is paired or ``lookahead`` rows have followed it (and
every row before it has left). A pairing pickles with the backfill's
checkpoint, so a resumed run writes the same rows bit for bit.

Examples
--------
>>> import numpy as np, pyarrow as pa
>>> from streamrnn.backfill.pairing import Pairing
>>> pairing = Pairing(horizon=1, lookahead=10)
>>> times = np.arange(4)
>>> y = np.array([[1.0], [2.0], [3.0], [4.0]])
>>> left = pairing.add(pa.table({"t": times}), np.array(["a", "b", "a", "b"]), times, y)
>>> left.table.num_rows, left.when.tolist(), left.actual[:, 0].tolist()
(2, [2, 3], [3.0, 4.0])
>>> last = pairing.close()
>>> last.table.num_rows, last.paired.tolist()
(2, [False, False])
"""

import collections

import numpy as np
import pandas as pd
import pyarrow as pa

#: Rows leaving a pairing: their output table, and per row the target row's time
#: (``when``, meaningful where ``known``), whether the target row came (``paired``)
#: and its targets (``actual``, NaN where not paired or missing).
Left = collections.namedtuple("Left", "table when known paired actual")


class Pairing:
    """Output rows waiting for their target rows (see the module's description).

    Parameters
    ----------
    horizon : int
        Rows ahead, in each series, of the row a forecast is for.
    lookahead : int
        Later rows of the stream (any series) a row waits for its target row.
    step : int or float, optional
        The grid step in the time's units (nanoseconds for timestamps): a row's
        ``target_time`` is then known at once, its time plus ``horizon`` steps.
    """

    def __init__(self, horizon, lookahead, step=None):
        self.horizon, self.lookahead, self.step = horizon, lookahead, step
        self.rows = 0  # rows of the stream seen
        self.first = 0  # the stream row of the first waiting row
        self.table = None  # the waiting rows' output
        self.when = self.known = self.paired = self.actual = None
        self.tail_keys = self.tail_rows = None  # each series' last `horizon` rows

    def __getstate__(self):
        state = dict(self.__dict__)
        if self.table is not None:  # Arrow's IPC writes a slice without the rows before it
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, self.table.schema) as writer:
                writer.write_table(self.table)
            state["table"] = sink.getvalue().to_pybytes()
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if isinstance(self.table, bytes):
            self.table = pa.ipc.open_stream(self.table).read_all()

    def add(self, table, keys, times, y):
        """Rows of one chunk: their output ``table``, ``keys`` (None for one series),
        ``times`` and targets ``y`` (``(N, T)`` in data units, or None). Returns the
        rows that leave (a :class:`Left`), or None when none does."""
        N = len(times)
        base, h = self.rows, self.horizon
        T = 0 if y is None else y.shape[1]
        when = np.array(times, copy=True)
        known = np.full(N, self.step is not None or h == 0)
        if self.step is not None:
            when += np.timedelta64(h * self.step, "ns") if when.dtype.kind == "M" else h * self.step
        paired = np.zeros(N, np.bool_)
        actual = np.full((N, T), np.nan)
        if self.table is None:
            self.table = table
            self.when, self.known, self.paired, self.actual = when, known, paired, actual
        else:
            self.table = pa.concat_tables([self.table, table])
            self.when = np.concatenate([self.when, when])
            self.known = np.concatenate([self.known, known])
            self.paired = np.concatenate([self.paired, paired])
            self.actual = np.concatenate([self.actual, actual])
        self.rows += N
        if h == 0:  # each row is its own target row
            at = np.arange(N)
            self._pair(base + at - self.first, at, times, y)
        else:
            self._match(keys, times, y, base)
        return self._leave(self.rows - 1)

    def close(self):
        """The rows still waiting: the stream has ended (None when there are none)."""
        return self._leave(None)

    def _match(self, keys, times, y, base):
        h, N = self.horizon, len(times)
        codes, uniques = pd.factorize(np.zeros(N, np.int64) if keys is None else keys)
        rows = base + np.arange(N)
        if self.tail_keys is not None:  # each series' last rows come first, coded alike
            tail = pd.Index(uniques).get_indexer(self.tail_keys)
            new = tail < 0
            tail[new] = len(uniques) + pd.factorize(self.tail_keys[new])[0]
            codes = np.concatenate([tail, codes])
            rows = np.concatenate([self.tail_rows, rows])
        order = np.argsort(codes, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0])
        sizes = np.diff(np.r_[starts, len(order)])
        within = np.arange(len(order)) - np.repeat(starts, sizes)  # place in its series
        at = np.flatnonzero(within >= h)  # target rows, and the rows h before them
        target, source = rows[order[at]], rows[order[at - h]]
        ok = (source >= self.first) & (target - source <= self.lookahead)
        self._pair(source[ok] - self.first, target[ok] - base, times, y)
        last = np.sort(order[within >= np.repeat(sizes, sizes) - h])  # each series' last h
        old = 0 if self.tail_keys is None else len(self.tail_keys)
        values = np.asarray(uniques, dtype=object)[codes[last[last >= old]]]
        if old:
            values = np.concatenate([self.tail_keys[last[last < old]], values])
        self.tail_keys, self.tail_rows = values, rows[last]

    def _pair(self, waiting, rows, times, y):
        self.when[waiting] = times[rows]
        self.known[waiting] = True
        self.paired[waiting] = True
        if y is not None:
            self.actual[waiting] = y[rows]

    def _leave(self, last):
        """Rows that leave: with ``last`` the stream's last row so far, the leading
        rows that are paired or have been followed by ``lookahead`` rows; else all."""
        if self.table is None or not self.table.num_rows:
            return None
        M = self.table.num_rows
        if last is None:
            n = M
        else:
            ready = self.paired | (self.first + np.arange(M) + self.lookahead <= last)
            n = M if ready.all() else int(np.argmin(ready))
        if not n:
            return None
        left = Left(self.table.slice(0, n), self.when[:n], self.known[:n], self.paired[:n],
                    self.actual[:n])  # fmt: skip
        self.table = self.table.slice(n)
        self.when, self.known = self.when[n:], self.known[n:]
        self.paired, self.actual = self.paired[n:], self.actual[n:]
        self.first += n
        return left
