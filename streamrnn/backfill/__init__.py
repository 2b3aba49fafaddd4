"""Backfill: run a model over history, from files to a Parquet dataset, resumable.

:func:`run` reads a Parquet file or dataset folder, a CSV file or an Arrow IPC
file through a :class:`feeds.Feed`, runs every series through a model
(inference, or prequential learning: each row is predicted, then learned from)
and writes one output row per row of the feed, in the feed's order, to
``output/part-NNNNNN.parquet``: the key, the time, ``target_time`` (the time of
the row the forecast is for, ``horizon`` rows later in the series), each
target's forecast for that row (``<target>_forecast`` and, for a pinball loss,
each quantile) and its value there (``<target>_actual``, as it was scored;
empty when missing, or when that row did not come within ``lookahead`` rows of
the stream: see :mod:`.pairing`). The command line (``streamrnn backfill``) is
a thin layer over :class:`Job` and :func:`run`.

Output and position are committed together. Each chunk's rows go to a new
part file, written atomically; every ``checkpoint_rows`` input rows or
``checkpoint_seconds``, and when SIGINT or SIGTERM arrives, a checkpoint
(:mod:`streamrnn.checkpoint`) records the engine, the feed, the running scores,
the input rows consumed and the part files committed. A run with ``resume``
deletes the parts written after the last checkpoint, reads on from its
position and writes the same rows, bit for bit, as a run that never stopped:
every result in streamrnn is the same however the stream is cut. The report
is made from what the checkpoint holds, so resuming a finished job writes it
again, the same bytes: whole, even if a crash cut its first writing short.

The folder holds ``_job.json`` (which job owns it), ``_lock`` (held by the run
using it), ``_checkpoint`` and, unless turned off, ``_report/`` (plots and a
page). Dataset readers pass over names starting with ``_`` or ``.``, so
``pyarrow.dataset.dataset(output)`` reads the outputs alone.

The settings and their checks are in :mod:`.job`, the output folder's rules
in :mod:`.folder`, the loop in :mod:`.runner`, the pairing of each forecast
with the row it is for in :mod:`.pairing`.
"""

from .job import Job, checked, from_toml, identity, job_fields
from .runner import Interrupted, load_checkpoint, run

__all__ = ["Interrupted", "Job", "checked", "from_toml", "identity", "job_fields",
           "load_checkpoint", "run"]  # fmt: skip
