"""Backfill: run a model over history, from files to a Parquet dataset, resumable.

:func:`run` reads a Parquet file or dataset folder, a CSV file or an Arrow IPC
file through a :class:`feeds.Feed`, runs every series through a model
(inference, or prequential learning: each row is predicted, then learned from)
and writes one output row per input row to ``output/part-NNNNNN.parquet``:
the key, the time, each target's forecast for ``horizon`` steps later and,
for a pinball loss, each quantile. The command line (``streamrnn backfill``)
is a thin layer over :class:`Job` and :func:`run`.

Output and position are committed together. Each chunk's rows go to a new
part file, written atomically; every ``checkpoint_rows`` input rows or
``checkpoint_seconds``, and when SIGINT or SIGTERM arrives, a checkpoint
(:mod:`streamrnn.checkpoint`) records the engine, the feed, the running scores,
the input rows consumed and the part files committed. A run with ``resume``
deletes the parts written after the last checkpoint, reads on from its
position and writes the same rows, bit for bit, as a run that never stopped:
every result in streamrnn is the same however the stream is cut.

The folder holds ``_job.json`` (which job owns it), ``_checkpoint`` and, unless
turned off, ``_report/`` (plots and a page). Dataset readers pass over names
starting with ``_`` or ``.``, so ``pyarrow.dataset.dataset(output)`` reads the
outputs alone.
"""

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import re
import shutil
import signal
import sys
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import feeds

from . import checkpoint
from ._book import Book
from .errors import ConfigError, InputError, StateError
from .evaluate import _Scorer, _wanted
from .learner import OnlineLearner
from .losses import MSE, Pinball, as_loss
from .models import GRU, LSTM, RNN, RecurrentModel
from .optim import Adam
from .stream import Stream

JOB_FILE = "_job.json"
CHECKPOINT = "_checkpoint"
REPORT = "_report"
STATES = "_states.parquet"
LOCK = "_lock"
_PART = re.compile(r"part-(\d{6})\.parquet")
_CELLS = {"rnn": RNN, "gru": GRU, "lstm": LSTM}
_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".arrow": "ipc",
            ".ipc": "ipc", ".feather": "ipc"}  # fmt: skip


@dataclasses.dataclass
class Job:
    """What a backfill does. Every field has a command-line flag of the same name
    (``chunk_rows`` is ``--chunk-rows``) and a key in a TOML job file.

    Parameters
    ----------
    input : str
        A Parquet file or dataset folder, a CSV file or an Arrow IPC file.
    output : str
        The folder of the output dataset (created; must be new, empty, or this
        job's own).
    format : {"auto", "parquet", "csv", "ipc"}
        ``auto`` goes by the file's suffix (a folder is Parquet).
    key, time, features, targets :
        Columns, as for :class:`feeds.Schema` (inferred when None).
    grid, missing, scale :
        Feed options, as for :class:`feeds.Feed`.
    model : str, optional
        A model to start from: a PyTorch file (``.pt``/``.pth``: an
        ``nn.RNN/GRU/LSTM``, a module with ``rnn`` and ``head`` attributes, or a
        dict of those), a learner saved by :meth:`OnlineLearner.save`, or a
        checkpoint. Without it a new seeded model is made from ``cell``,
        ``hidden``, ``layers``, ``seed`` and ``dtype``.
    learn : bool
        Prequential learning (predict each row, then learn from it) instead of
        inference.
    loss, quantiles, lr, tbptt, horizon, batch, per_key :
        The learner (:class:`OnlineLearner`, Adam with learning rate ``lr``).
        ``quantiles`` makes the loss a pinball loss over them: the model then
        gives each quantile of each target, in learning and in inference.
        ``horizon`` also pairs outputs with targets for scoring.
    season : int, optional
        Period of the seasonal naive baseline, in steps.
    chunk_rows : int
        Input rows per chunk; memory follows it. It does not change the results,
        and may differ between a run and its resumption.
    checkpoint_rows, checkpoint_seconds :
        Take a checkpoint after the chunk that passes either (None: never).
    resume : bool
        Continue this job from its checkpoint in ``output`` (or start it).
    overwrite : bool
        Replace a backfill's results in ``output`` (no other files are touched).
    report : str or None
        The report folder; ``"auto"`` is ``output/_report``, None makes none.
    plot_series : int
        Series shown in the report's forecast plot.
    states : bool
        Write each key's final hidden state to ``output/_states.parquet``.
    progress : {"auto", "bar", "log", "none"}
        A live line on a terminal (``bar``), a log line every 10 s (``log``);
        ``auto`` picks by whether stderr is a terminal.
    """

    input: str = None
    output: str = None
    format: str = "auto"
    key: str = None
    time: str = None
    features: list = None
    targets: list = None
    grid: str = None
    missing: str = "error"
    scale: str = None
    model: str = None
    cell: str = "gru"
    hidden: int = 64
    layers: int = 1
    seed: int = 0
    dtype: str = "float32"
    learn: bool = False
    loss: str = "mse"
    quantiles: list = None
    lr: float = 1e-3
    tbptt: tuple = (32, 32)
    horizon: int = 1
    batch: int = 1
    per_key: bool = False
    season: int = None
    chunk_rows: int = 100_000
    checkpoint_rows: int = None
    checkpoint_seconds: float = 60.0
    resume: bool = False
    overwrite: bool = False
    report: str = "auto"
    plot_series: int = 3
    states: bool = False
    progress: str = "auto"


# Fields that do not change what a job computes: they may differ on resumption.
_RUN_ONLY = {"output", "chunk_rows", "checkpoint_rows", "checkpoint_seconds", "resume",
             "overwrite", "report", "progress", "states"}  # fmt: skip


def _fail(name, value, want):
    raise ConfigError(f"{name} must be {want}, got {value!r}")


def _int(job, name, low, none=False):
    value = getattr(job, name)
    if value is None and none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        _fail(name, value, f"an integer >= {low}" + (" or None" if none else ""))
    setattr(job, name, int(value))


def _names(job, name):
    value = getattr(job, name)
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if value is not None and (
        not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value)
    ):
        _fail(name, value, "a list of column names")
    setattr(job, name, None if value is None else list(value))


def checked(job):
    """A validated copy of ``job`` (values normalised); ConfigError names the field."""
    if not isinstance(job, Job):
        raise ConfigError(f"expected a streamrnn.backfill.Job, got {type(job).__name__}")
    job = dataclasses.replace(job)
    for name in ("input", "output"):
        value = getattr(job, name)
        if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
            _fail(name, value, "a path")
        setattr(job, name, os.fspath(value))
    if job.format not in ("auto", "parquet", "csv", "ipc"):
        _fail("format", job.format, "'auto', 'parquet', 'csv' or 'ipc'")
    for name in ("key", "time", "scale", "model"):
        value = getattr(job, name)
        if value is not None and not isinstance(value, str):
            _fail(name, value, "a string or None")
    if isinstance(job.grid, str):  # "3600" is a step for numeric times, "1h" for timestamps
        try:
            job.grid = float(job.grid) if "." in job.grid else int(job.grid)
        except ValueError:
            pass
    if job.grid is not None and (isinstance(job.grid, bool)
                                 or not isinstance(job.grid, (str, int, float))):  # fmt: skip
        _fail("grid", job.grid, "a time span ('1h') or a number (for numeric times)")
    _names(job, "features")
    _names(job, "targets")
    if job.cell not in _CELLS:
        _fail("cell", job.cell, "'rnn', 'gru' or 'lstm'")
    if job.dtype not in ("float32", "float64"):
        _fail("dtype", job.dtype, "'float32' or 'float64'")
    for name in ("learn", "per_key", "resume", "overwrite", "states"):
        if not isinstance(getattr(job, name), (bool, np.bool_)):
            _fail(name, getattr(job, name), "true or false")
    for name, low in (("hidden", 1), ("layers", 1), ("seed", 0), ("horizon", 0), ("batch", 1),
                      ("chunk_rows", 1), ("plot_series", 0)):  # fmt: skip
        _int(job, name, low)
    _int(job, "season", 1, none=True)
    _int(job, "checkpoint_rows", 1, none=True)
    if job.checkpoint_seconds is not None and (
        isinstance(job.checkpoint_seconds, bool)
        or not isinstance(job.checkpoint_seconds, (int, float))
        or not job.checkpoint_seconds > 0
    ):
        _fail("checkpoint_seconds", job.checkpoint_seconds, "a positive number of seconds or None")
    if isinstance(job.lr, bool) or not isinstance(job.lr, (int, float)) or not job.lr > 0:
        _fail("lr", job.lr, "a positive number")
    job.lr = float(job.lr)
    if isinstance(job.tbptt, str):
        job.tbptt = [v for v in job.tbptt.split(",") if v.strip()]
    try:
        job.tbptt = tuple(v if isinstance(v, int) and not isinstance(v, bool) else int(v, 10)
                          for v in job.tbptt)  # fmt: skip
    except (TypeError, ValueError):
        _fail("tbptt", job.tbptt, "two integers k1,k2 with 1 <= k1 <= k2")
    if len(job.tbptt) != 2 or not 1 <= job.tbptt[0] <= job.tbptt[1]:
        _fail("tbptt", job.tbptt, "two integers k1,k2 with 1 <= k1 <= k2")
    if job.quantiles is not None:
        q = job.quantiles
        if isinstance(q, str):
            q = [v for v in q.split(",") if v.strip()]
        try:
            q = [float(v) for v in q]
        except (TypeError, ValueError):
            _fail("quantiles", job.quantiles, "numbers between 0 and 1")
        if not q or not all(0 < v < 1 for v in q) or len(set(q)) != len(q) or 0.5 not in q:
            _fail("quantiles", job.quantiles, "distinct numbers between 0 and 1, 0.5 among "
                  "them (the median is the point forecast)")  # fmt: skip
        job.quantiles = q
    as_loss(job.loss if job.quantiles is None else Pinball(job.quantiles))
    if job.progress not in ("auto", "bar", "log", "none"):
        _fail("progress", job.progress, "'auto', 'bar', 'log' or 'none'")
    if job.report is not None and not isinstance(job.report, (str, os.PathLike)):
        _fail("report", job.report, "a folder, 'auto' or None")
    if job.format == "auto":
        if os.path.isdir(job.input):
            job.format = "parquet"
        else:
            suffix = os.path.splitext(job.input)[1].lower()
            if suffix not in _FORMATS:
                raise ConfigError(
                    f"cannot tell the format of {job.input!r} from its suffix; name it with "
                    f"format= ('parquet', 'csv' or 'ipc'); known suffixes: {sorted(_FORMATS)}"
                )
            job.format = _FORMATS[suffix]
    return job


# -- the job's identity ---------------------------------------------------------------
def _digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _input_files(path):
    """``{relative name: [bytes, mtime_ns]}`` of the input's files."""
    if not os.path.exists(path):
        raise InputError(f"{path}: the input does not exist")
    if not os.path.isdir(path):
        st = os.stat(path)
        return {os.path.basename(path): [st.st_size, st.st_mtime_ns]}
    files = {}
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        for name in sorted(names):
            if name.startswith((".", "_")):
                continue
            full = os.path.join(root, name)
            st = os.stat(full)
            files[os.path.relpath(full, path)] = [st.st_size, st.st_mtime_ns]
    return files


def identity(job):
    """What makes a job's results what they are: its settings, its input's files
    (names, sizes, times) and its starting model's contents."""
    ident = {k: v for k, v in dataclasses.asdict(job).items() if k not in _RUN_ONLY}
    ident["input"] = os.path.abspath(job.input)
    ident["tbptt"] = list(job.tbptt)
    ident["input_files"] = _input_files(job.input)
    if job.model is not None:
        if not os.path.isfile(job.model):
            raise InputError(f"{job.model}: the model file does not exist")
        ident["model"] = os.path.abspath(job.model)
        ident["model_sha256"] = _digest(job.model)
    return ident


def _job_id(ident):
    text = json.dumps(ident, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _differences(old, new):
    """Readable differences between two identities."""
    out = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        if a == b:
            continue
        if name == "input_files":
            a, b = a or {}, b or {}
            gone = sorted(set(a) - set(b))
            added = sorted(set(b) - set(a))
            changed = sorted(n for n in set(a) & set(b) if a[n] != b[n])
            parts = [f"{label} {', '.join(names[:3])}" + (" ..." if len(names) > 3 else "")
                     for label, names in (("missing:", gone), ("new:", added),
                                          ("changed:", changed)) if names]  # fmt: skip
            out.append("input files (" + "; ".join(parts) + ")")
        else:
            out.append(f"{name} {a!r} -> {b!r}")
    return out


# -- the output folder ------------------------------------------------------------------
def _parts(folder):
    """``{index: name}`` of the part files in ``folder``."""
    found = {}
    for name in os.listdir(folder):
        m = _PART.fullmatch(name)
        if m:
            found[int(m.group(1))] = name
    return found


def _ours(name):
    return (
        name in (JOB_FILE, CHECKPOINT, REPORT, STATES, LOCK)
        or name.startswith(".tmp-")
        or _PART.fullmatch(name) is not None
    )


def _clear(folder):
    """Remove a backfill's files from ``folder`` (nothing else), the job file last."""
    names = sorted(os.listdir(folder), key=lambda n: n == JOB_FILE)
    for name in names:
        if _ours(name) and name != LOCK:
            path = os.path.join(folder, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)


def _write_json(path, value):
    text = json.dumps(value, indent=1, sort_keys=True, default=str).encode()
    checkpoint.write_atomic(path, lambda f: f.write(text))


def _lock(out):
    """Hold ``out/_lock`` exclusively until the returned descriptor is closed (the
    system releases it when the process ends, kill -9 included)."""
    try:
        import fcntl
    except ImportError:  # no advisory locks on this system
        return None
    fd = os.open(os.path.join(out, LOCK), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise ConfigError(
            f"output folder {out!r} is in use by another backfill run; wait for it to end or "
            "stop it (it can then be resumed)"
        ) from None
    return fd


def _claim(job, ident, job_id):
    """Make ``job.output`` this job's and lock it: returns ``(lock, checkpoint to resume
    from or None)``."""
    out = job.output
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"output {out!r} is a file; it must be a folder (new or empty)")
    names = sorted(os.listdir(out)) if os.path.isdir(out) else []
    foreign = [n for n in names if not _ours(n)]
    if foreign:
        raise ConfigError(
            f"output folder {out!r} holds files that are not a backfill's results "
            f"({', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}); "
            "choose a new or empty folder"
        )
    os.makedirs(out, exist_ok=True)
    lock = _lock(out)
    try:
        start = _take_over(job, ident, job_id, os.listdir(out))
    except BaseException:
        if lock is not None:
            os.close(lock)
        raise
    return lock, start


def _take_over(job, ident, job_id, names):
    out = job.output
    owner = None
    if JOB_FILE in names:
        try:
            with open(os.path.join(out, JOB_FILE)) as f:
                owner = json.load(f)
            owner["job"], owner["identity"]
        except (OSError, ValueError, KeyError, TypeError):
            raise StateError(
                f"{os.path.join(out, JOB_FILE)} is damaged: cannot tell which job owns {out!r}; "
                "start again with overwrite (--overwrite)"
            ) from None
    started = CHECKPOINT in names  # parts without a checkpoint are uncommitted
    if job.overwrite or not started:  # nothing of value: start (again)
        _clear(out)
        _write_json(os.path.join(out, JOB_FILE), {"job": job_id, "identity": ident})
        return None
    if owner is None:
        raise ConfigError(
            f"output folder {out!r} holds a backfill's files but no {JOB_FILE} (an "
            "interrupted overwrite?); start again with overwrite (--overwrite)"
        )
    if owner["job"] != job_id:
        diff = "; ".join(_differences(owner["identity"], ident)) or "settings"
        raise ConfigError(
            f"output folder {out!r} holds another job's results (it differs in: {diff}); "
            "choose a new folder, or pass overwrite (--overwrite) to replace them"
        )
    start, done = None, False
    if CHECKPOINT in names:
        start = checkpoint.read(os.path.join(out, CHECKPOINT))
        if start[0].get("job") != job_id:
            raise StateError(
                f"{os.path.join(out, CHECKPOINT)} belongs to job {start[0].get('job')}, "
                f"but {JOB_FILE} names job {job_id}"
            )
        done = start[0]["done"]
    if not job.resume:
        what = "the finished results" if done else "an unfinished run"
        raise ConfigError(
            f"output folder {out!r} holds {what} of this job; pass resume (--resume) "
            "to continue it, or overwrite (--overwrite) to start again"
        )
    committed = start[0]["parts"] if start is not None else 0
    parts = _parts(out)
    lost = [f"part-{i:06d}.parquet" for i in range(committed) if i not in parts]
    if lost:
        raise StateError(
            f"output folder {out!r} lacks {len(lost)} part file(s) the checkpoint "
            f"committed ({', '.join(lost[:3])}{' ...' if len(lost) > 3 else ''}); "
            "start again with overwrite (--overwrite)"
        )
    for index, name in parts.items():  # written after the checkpoint
        if index >= committed:
            os.unlink(os.path.join(out, name))
    for name in os.listdir(out):
        if name.startswith(".tmp-"):
            os.unlink(os.path.join(out, name))
    return start


# -- models and engines -----------------------------------------------------------------
def _load_model(path):
    """A streamrnn model from a PyTorch file, a saved learner or stream, or a checkpoint."""
    if path.endswith((".pt", ".pth")):
        from .torch_io import _torch, from_torch

        torch = _torch()
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # torch raises many kinds
            raise InputError(f"{path}: cannot load it with torch.load: {exc}") from None
        if isinstance(obj, dict):
            rnn, head = obj.get("rnn"), obj.get("head")
        elif isinstance(obj, (torch.nn.RNN, torch.nn.GRU, torch.nn.LSTM)):
            rnn, head = obj, None
        else:
            rnn, head = getattr(obj, "rnn", None), getattr(obj, "head", None)
        if not isinstance(rnn, (torch.nn.RNN, torch.nn.GRU, torch.nn.LSTM)):
            raise InputError(
                f"{path}: expected a torch.nn.RNN, GRU or LSTM, a module with .rnn (and "
                f".head) attributes, or a dict {{'rnn': ..., 'head': ...}}; got "
                f"{type(obj).__name__}"
            )
        return from_torch(rnn, head)
    with open(path, "rb") as f:
        start = f.read(len(checkpoint.MAGIC))
    if start == checkpoint.MAGIC:
        engine = checkpoint.read(path)[1]["engine"]
    else:
        import pickle

        try:
            with open(path, "rb") as f:
                engine = pickle.load(f)
        except Exception as exc:  # unpickling garbage can raise almost anything
            raise InputError(
                f"{path}: not a model file (a PyTorch .pt/.pth, a saved learner or stream, "
                f"or a checkpoint): {exc}"
            ) from None
    model = getattr(engine, "model", engine)
    if not isinstance(model, RecurrentModel):
        raise InputError(f"{path} holds a {type(engine).__name__}, not a model")
    return model


def _make_engine(job, model, chunk, feed):
    """The learner or stream for the first chunk (input and target counts known)."""
    I = chunk.x.shape[1]
    T = 0 if chunk.y is None else chunk.y.shape[1]
    K = len(job.quantiles) if job.quantiles else 1
    if model is not None:
        if model.input_size != I:
            raise ConfigError(
                f"the model takes {model.input_size} inputs, but the feed gives {I} "
                f"({', '.join(chunk.columns)}); choose features to match"
            )
        if job.quantiles and model.out_features != T * K:
            raise ConfigError(
                f"the model gives {model.out_features} outputs, but {T} target(s) times "
                f"{K} quantiles need {T * K}"
            )
    else:
        if not T:
            raise ConfigError(
                "a new model needs targets to size its outputs; name them (targets=...)"
            )
        model = _CELLS[job.cell](I, job.hidden, job.layers, output_size=T * K,
                                 dtype=job.dtype, seed=job.seed)  # fmt: skip
    if not job.learn:
        return Stream(model, feed=feed)
    if not T:
        raise ConfigError("learning needs targets: name them (targets=...)")
    loss = Pinball(job.quantiles) if job.quantiles else job.loss
    return OnlineLearner(model, tbptt=job.tbptt, loss=loss, optimizer=Adam(lr=job.lr),
                         horizon=job.horizon, batch=job.batch, per_key=job.per_key,
                         feed=feed)  # fmt: skip


def _feed(job):
    schema = feeds.Schema(time=job.time, key=job.key, features=job.features, targets=job.targets)
    options = {"missing": job.missing, "dtype": job.dtype}
    if job.grid is not None:
        options["grid"] = job.grid
    if job.scale is not None:
        options["scale"] = job.scale
    try:
        return feeds.Feed(schema, **options)
    except (ValueError, TypeError) as exc:
        raise ConfigError(str(exc)) from None


def _reader(job, feed, skip):
    rows = job.chunk_rows
    if job.format == "parquet":
        return feeds.iter_parquet(job.input, feed, rows=rows, skip=skip)
    if job.format == "csv":
        return feeds.iter_csv(job.input, feed, rows=rows, skip=skip)
    return feeds.iter_ipc(job.input, feed, rows=rows, skip=skip)


def _total_rows(job):
    """Input rows when cheap to know (Parquet and IPC metadata), else None."""
    try:
        if job.format == "parquet":
            import pyarrow.dataset as ds

            return ds.dataset(job.input, format="parquet").count_rows()
        if job.format == "ipc":
            with pa.memory_map(job.input) as source:
                return pa.ipc.open_file(source).count_rows()
    except (pa.ArrowInvalid, OSError):
        pass
    return None


# -- the output table ---------------------------------------------------------------------
def _output_names(job, chunk, width):
    targets = list(chunk.targets)
    if job.quantiles:
        K = len(job.quantiles)
        if width == len(targets) * K:
            return [f"{t}_q{q:g}" for t in targets for q in job.quantiles]
    elif width == len(targets):
        return [f"{t}_forecast" for t in targets]
    return [f"output_{j}" for j in range(width)]


def _output_table(job, schema, chunk, out, names):
    cols, fields = [], []
    if chunk.keys is not None:
        keys = chunk.keys
        if isinstance(keys, pd.Categorical):
            keys = pa.DictionaryArray.from_arrays(
                pa.array(keys.codes, pa.int32()), pa.array(np.asarray(keys.categories, object))
            ).cast(pa.string())
        else:
            keys = pa.array(keys)
        cols.append(keys)
        fields.append(schema.key or "key")
    if chunk.times is not None:
        times = chunk.times
        if times.dtype.kind == "M":
            times = pa.array(times.view(np.int64), pa.timestamp("ns", tz=chunk.tz))
        cols.append(pa.array(times))
        fields.append(schema.time)
    if job.quantiles and names[0] != "output_0":  # the middle quantile as the forecast
        K = len(job.quantiles)
        mid = int(np.argsort(job.quantiles)[(K - 1) // 2])
        for j, t in enumerate(chunk.targets):
            cols.append(pa.array(out[:, j * K + mid]))
            fields.append(f"{t}_forecast")
    for j, name in enumerate(names):
        cols.append(pa.array(out[:, j]))
        fields.append(name)
    return pa.table(cols, names=fields)


# -- progress ----------------------------------------------------------------------------
class _Progress:
    """A live line on a terminal, or a plain log line every ``every`` seconds."""

    def __init__(self, mode, total, done, stream=None):
        self.out = stream or sys.stderr
        if mode == "auto":
            mode = "bar" if getattr(self.out, "isatty", lambda: False)() else "log"
        self.mode, self.total, self.start_rows = mode, total, done
        self.start = self.last = time.monotonic()
        self.every = 0.2 if mode == "bar" else 10.0

    def __enter__(self):
        self.drawn = False
        return self

    def __exit__(self, *exc):
        if self.mode == "bar" and self.drawn:  # end the live line before anything else
            self.out.write("\n")
            self.out.flush()

    def show(self, rows, metric, final=False):
        now = time.monotonic()
        if self.mode == "none" or (not final and now - self.last < self.every):
            return
        self.last = now
        rate = (rows - self.start_rows) / max(now - self.start, 1e-9)
        text = f"{rows:,} rows"
        if self.total:
            text += f" of {self.total:,} ({100 * rows / self.total:.0f}%)"
        text += f", {rate:,.0f} rows/s"
        if self.total and rate > 0 and not final:
            left = (self.total - rows) / rate
            text += f", ETA {int(left // 3600)}:{int(left % 3600 // 60):02d}:{int(left % 60):02d}"
        if metric is not None and not math.isnan(metric):
            text += f", MAE {metric:.4g}"
        if self.mode == "bar":
            self.out.write("\r" + text.ljust(78))
            self.drawn = True
        else:
            self.out.write(f"backfill: {text}\n")
        self.out.flush()


# -- signals -------------------------------------------------------------------------------
class Interrupted(Exception):
    """SIGINT or SIGTERM stopped the run after a checkpoint; ``signum`` says which."""

    def __init__(self, signum, rows):
        self.signum, self.rows = signum, rows
        name = signal.Signals(signum).name
        super().__init__(
            f"{name}: stopped after a checkpoint at input row {rows:,}; run again with "
            "resume (--resume) to continue"
        )


class _Signals:
    """Turn SIGINT and SIGTERM into a flag the loop checks between chunks."""

    def __init__(self):
        self.caught = None
        self._old = {}

    def __enter__(self):
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                if signal.getsignal(sig) is not signal.SIG_IGN:  # as nohup leaves it
                    self._old[sig] = signal.signal(sig, self._catch)
        return self

    def _catch(self, signum, frame):
        self.caught = signum

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


# -- the run -------------------------------------------------------------------------------
class _Run:
    """One backfill run: the state a checkpoint holds, and the loop."""

    def __init__(self, job, model, job_id, start):
        self.job, self.model, self.job_id = job, model, job_id
        if start is None:
            self.engine, self.feed, self.scorer, self.book = None, _feed(job), None, None
            self.names = None
            self.parts = self.rows_out = 0
            self.done = False
            self.resumed_at = 0
        else:
            header, payload = start
            self.engine, self.feed = payload["engine"], payload["feed"]
            self.scorer, self.book = payload["scorer"], payload["book"]
            self.names = payload["names"]
            self.parts, self.rows_out = header["parts"], header["rows_out"]
            self.done = header["done"]
            self.resumed_at = header["rows_in"]
        self.last = (self.rows_in, time.monotonic())

    @property
    def rows_in(self):
        return self.feed.counts["rows_in"]

    def _setup(self, chunk):
        job = self.job
        self.engine = _make_engine(job, self.model, chunk, self.feed)
        width = self.engine.model.out_features
        self.names = _output_names(job, chunk, width)
        if chunk.y is None:
            return
        if job.learn:
            loss = self.engine.loss
        else:
            loss = Pinball(job.quantiles) if job.quantiles else MSE()
        names = _wanted(None, loss, job.season)
        self.scorer = _Scorer(loss, job.horizon, names, job.season, None, None, 0.0)
        if job.quantiles and self.names[0] != "output_0":
            K, q = len(job.quantiles), np.asarray(job.quantiles)
            order = np.argsort(q)
            point, band = int(order[(K - 1) // 2]), (int(order[0]), int(order[-1]))
        else:
            point, band = 0, None
        if self.names[0] != "output_0" or width == chunk.y.shape[1]:
            self.book = Book(job.plot_series, point, band)

    def step(self, chunk):
        if self.engine is None:
            if not len(chunk):
                return
            self._setup(chunk)
        if self.job.learn:
            out = self.engine.predict_learn(chunk)
        else:
            out = self.engine.update(chunk)
        if self.scorer is not None and chunk.y is not None and len(chunk):
            book = self.book
            self.scorer.on_pairs = None if book is None else (
                lambda rows, made, ys: book.take(chunk, rows, made, ys))  # fmt: skip
            self.scorer.take(chunk, out)
            self.scorer.on_pairs = None
        if len(chunk):
            table = _output_table(self.job, self.feed.schema, chunk, out, self.names)
            name = os.path.join(self.job.output, f"part-{self.parts:06d}.parquet")
            checkpoint.write_atomic(name, lambda f: pq.write_table(table, f))
            self.parts += 1
            self.rows_out += len(chunk)

    def due(self):
        rows, t = self.last
        job = self.job
        return (job.checkpoint_rows is not None and self.rows_in - rows >= job.checkpoint_rows) or (
            job.checkpoint_seconds is not None and time.monotonic() - t >= job.checkpoint_seconds
        )

    def save(self):
        header = {
            "job": self.job_id,
            "streamrnn": _version(),
            "engine": type(self.engine).__name__,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "parts": self.parts,
            "done": self.done,
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        payload = {"engine": self.engine, "feed": self.feed, "scorer": self.scorer,
                   "book": self.book, "names": self.names}  # fmt: skip
        checkpoint.write(os.path.join(self.job.output, CHECKPOINT), header, payload)
        self.last = (self.rows_in, time.monotonic())

    def metric(self):
        if self.scorer is None or not self.scorer._ready:
            return None
        return self.scorer._model.mae()


def _version():
    from . import __version__

    return __version__


def run(job, out=None):
    """Run a backfill :class:`Job` (or resume it); returns its summary.

    Parameters
    ----------
    job : Job
    out : file, optional
        Where progress goes (default stderr).

    Returns
    -------
    dict
        ``rows_in``, ``rows_out``, ``series``, ``seconds`` and ``rows_per_s``
        (this run: a resumed run counts from where it started), ``parts``, the
        scores (``mae``, ``rmse``, ``persistence_mae``, ``mase``, ...), the
        learner's ``counts``, and the paths of the output, checkpoint and report.

    Raises
    ------
    ConfigError
        A bad setting, or an output folder that holds other files or another
        job's results.
    feeds.SchemaError, InputError
        Input that is missing, unreadable, damaged, or does not fit the schema
        (or the checkpoint's schema).
    StorageError
        A file could not be written (a full disk); the checkpoint and the parts
        it commits are intact.
    Interrupted
        SIGINT or SIGTERM arrived; a checkpoint was taken first.

    Examples
    --------
    >>> import tempfile, os, numpy as np, pandas as pd, pyarrow.dataset as ds
    >>> from streamrnn.backfill import Job, run
    >>> folder = tempfile.mkdtemp()
    >>> df = pd.DataFrame({"key": np.repeat(["a", "b"], 50), "time": np.tile(np.arange(50), 2),
    ...                    "level": np.sin(np.arange(100) / 4)})
    >>> df.to_parquet(os.path.join(folder, "in.parquet"))
    >>> job = Job(os.path.join(folder, "in.parquet"), os.path.join(folder, "out"),
    ...           targets=["level"], hidden=8, dtype="float64", report=None, progress="none")
    >>> summary = run(job)
    >>> summary["rows_out"], summary["series"]
    (100, 2)
    >>> ds.dataset(os.path.join(folder, "out")).to_table().column_names
    ['key', 'time', 'level_forecast']
    """
    job = checked(job)
    model = None
    if job.model is not None:
        if not os.path.isfile(job.model):
            raise InputError(f"{job.model}: the model file does not exist")
        model = _load_model(job.model)
        job.dtype = str(model.dtype)  # a loaded model keeps its own
    report = _report_folder(job)
    ident = identity(job)
    job_id = _job_id(ident)
    lock, start = _claim(job, ident, job_id)
    try:
        state = _Run(job, model, job_id, start)
        t0 = time.perf_counter()
        if not state.done:
            _loop(job, state, out)
        seconds = time.perf_counter() - t0
        return _finish(job, state, seconds, report)
    finally:
        if lock is not None:
            os.close(lock)


def _loop(job, state, out):
    progress = _Progress(job.progress, _total_rows(job), state.rows_in, out)
    reader = _reader(job, state.feed, state.rows_in)
    with _Signals() as signals, contextlib.closing(reader), progress:
        for chunk in reader:
            state.step(chunk)
            if signals.caught is not None:
                state.save()
                raise Interrupted(signals.caught, state.rows_in)
            if state.due():
                state.save()
            progress.show(state.rows_in, state.metric())
        state.done = True
        state.save()
        progress.show(state.rows_in, state.metric(), final=True)


def _report_folder(job):
    """The report folder (None for none), checked before anything is written."""
    if job.report is None:
        return None
    if job.report == "auto":
        return os.path.join(job.output, REPORT)
    folder = job.report
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ConfigError(f"report {folder!r} is a file; it must be a folder")
    inside = os.path.relpath(os.path.abspath(folder), os.path.abspath(job.output))
    if not inside.startswith(os.pardir):
        raise ConfigError(
            f"report folder {folder!r} is inside the output folder; leave report unset to "
            f"write it to {os.path.join(job.output, REPORT)!r}, or choose a folder outside"
        )
    from .report import FILES

    other = sorted(n for n in (os.listdir(folder) if os.path.isdir(folder) else [])
                   if n not in FILES and not n.startswith(".tmp-"))  # fmt: skip
    if other:
        raise ConfigError(
            f"report folder {folder!r} holds other files ({', '.join(other[:3])}); the "
            "report would mix with them: choose a new or empty folder"
        )
    return folder


def _finish(job, state, seconds, report):
    engine = state.engine
    rows = state.rows_in - state.resumed_at
    summary = {
        "rows_in": state.rows_in,
        "rows_out": state.rows_out,
        "series": 0 if engine is None else len(engine),
        "seconds": seconds,
        "rows_per_s": rows / seconds if seconds > 0 else math.nan,
        "resumed_at": state.resumed_at,
        "parts": state.parts,
    }
    if state.scorer is not None and state.scorer._ready:
        summary.update(state.scorer.figures())
    if job.learn and engine is not None:
        summary.update(engine.counts)
    summary["output"] = job.output
    summary["checkpoint"] = os.path.join(job.output, CHECKPOINT)
    if job.states and engine is not None:
        _write_states(job, engine)
    if report is not None and engine is not None:
        summary["report"] = str(_report(job, state, summary, report))
    return summary


def _write_states(job, engine):
    keys = list(engine.keys())
    cols = {(engine.feed.schema.key or "key"): pa.array(keys)}
    parts = ("h", "c") if isinstance(engine.model, LSTM) else ("h",)
    states = [engine.get_state(k) for k in keys]
    for i, part in enumerate(parts):  # (layers, hidden) each: h0_0 is layer 0, unit 0
        values = [st[i] if len(parts) > 1 else st for st in states]
        model = engine.model
        S = np.stack(values) if keys else np.zeros((0, model.num_layers, model.hidden_size))
        for layer in range(S.shape[1]):
            for unit in range(S.shape[2]):
                cols[f"{part}{layer}_{unit}"] = pa.array(S[:, layer, unit])
    table = pa.table(cols)
    checkpoint.write_atomic(os.path.join(job.output, STATES), lambda f: pq.write_table(table, f))


def _report(job, state, summary, folder):
    from .report import write_report

    book = state.book
    curve = book.curve() if book is not None else pd.DataFrame()
    samples = book.sample_frames() if book is not None else {}
    shown = {
        "rows in": summary["rows_in"],
        "rows out": summary["rows_out"],
        "series": summary["series"],
        "seconds (this run)": summary["seconds"],
        "rows/s (this run)": summary["rows_per_s"],
    }
    for name in ("mae", "rmse", "persistence_mae", "mase", "seasonal_mae", "mase_seasonal",
                 "coverage", "coverage_nominal", "updates", "skipped"):  # fmt: skip
        if name in summary:
            shown[name.replace("_", " ")] = summary[name]
    interval = None
    if job.quantiles and book is not None and book.band is not None:
        q = sorted(job.quantiles)
        interval = f"{q[0]:.0%}-{q[-1]:.0%}"
    targets = job.targets or ["target"]
    kind = "prequential learning" if job.learn else "inference"
    title = f"backfill of {job.input} ({kind})"
    return write_report(folder, title=title, summary=shown, curve=curve, samples=samples,
                        target=targets[0], interval=interval)  # fmt: skip


def load_checkpoint(path):
    """The engine a backfill checkpoint holds, ready to go on live.

    Returns the :class:`~streamrnn.OnlineLearner` (or :class:`~streamrnn.Stream`
    for inference) with its feed, weights, optimizer state, every key's state and
    the scaling statistics, as the backfill left them: give it the chunks that
    follow. Raises :class:`StateError` for a file that is no checkpoint, of
    another format, or damaged.
    """
    header, payload = checkpoint.read(os.fspath(path))
    engine = payload["engine"]
    if engine is None:
        raise StateError(f"{path}: the checkpoint was taken before any row was read")
    return engine


def job_fields():
    """The names of :class:`Job`'s fields, in order."""
    return [f.name for f in dataclasses.fields(Job)]


def from_toml(path):
    """A :class:`Job` from a TOML file (keys are field names; ``-`` or ``_``)."""
    import tomllib

    try:
        with open(path, "rb") as f:
            values = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: the job file does not exist") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the job file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    if "backfill" in values:
        others = sorted(k for k in values if k != "backfill")
        if others or not isinstance(values["backfill"], dict):
            raise ConfigError(
                f"{path}: with a [backfill] table, every key belongs in it; found "
                f"{', '.join(others) or 'backfill = ...'} outside"
            )
        values = values["backfill"]
    fields = job_fields()
    out = {}
    for name, value in values.items():
        field = name.replace("-", "_")
        if field not in fields:
            raise ConfigError(f"{path}: unknown key {name!r}; known keys: {', '.join(fields)}")
        out[field] = value
    return out
