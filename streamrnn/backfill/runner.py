"""The backfill loop: engines, output parts, checkpoints, progress and signals."""

import contextlib
import dataclasses
import difflib
import math
import os
import pickle
import signal
import sys
import time
import warnings
from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import feeds
from feeds._warn import user_level
from feeds.tables import column_types as arrow_types

from .. import checkpoint
from .._book import Book
from ..errors import ConfigError, InputError
from ..evaluate import Scorer, wanted_scores
from ..learner import OnlineLearner
from ..losses import MSE, Pinball
from ..models import MODELS, RecurrentModel
from ..optim import Adam, ExponentialDecay, WarmUp
from ..stream import Stream
from .folder import CHECKPOINT, REPORT, STATES, claim
from .job import OTHERS, checked, identity, job_id
from .pairing import Pairing


# -- models and engines -----------------------------------------------------------------
def _load_model(path):
    """A streamrnn model from a PyTorch file, a saved learner or stream, or a checkpoint;
    returns ``(model, saved)``: the job settings the saved engine ran with (its
    ``relative``, ``"none"`` for a PyTorch model or a bare model, its targets'
    ``transform``, its ``quantiles`` if any, and its feed's ``scale``, ``lags`` and
    ``calendar`` when it has one), for the job's ``auto`` (and unset) settings to
    follow."""
    if path.endswith((".pt", ".pth")):
        from ..adapters.torch import from_torch, require_torch

        torch = require_torch()
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
        return from_torch(rnn, head), {"relative": "none", "transform": "none"}
    with open(path, "rb") as f:
        start = f.read(len(checkpoint.MAGIC))
    if start == checkpoint.MAGIC:
        engine = checkpoint.read(path)[1]["engine"]
    else:
        try:
            with open(path, "rb") as f:
                engine = pickle.load(f)
        except Exception as exc:  # unpickling garbage can raise almost anything
            reason = " ".join(str(exc).split())
            raise InputError(
                f"{path}: not a model file (a PyTorch .pt/.pth, a saved learner or stream, "
                f"or a checkpoint): {reason}"
            ) from None
    model = getattr(engine, "model", engine)
    if not isinstance(model, RecurrentModel):
        what = "no model (the checkpoint of an empty run)" if engine is None else (
            f"a {type(engine).__name__}, not a model")  # fmt: skip
        raise InputError(f"{path} holds {what}")
    saved = {"relative": getattr(engine, "relative", None) or "none",
             "transform": _saved_transform(path, engine)}  # fmt: skip
    if getattr(engine, "quantiles", None):  # its outputs: these quantiles of each target
        saved["quantiles"] = list(engine.quantiles)
    feed = getattr(engine, "feed", None)
    if feed is not None:  # the inputs it learned from, as they were made
        lags = feed.lags
        saved["scale"] = feed.scale or "none"
        saved["lags"] = "none" if lags is None else ([lags] if isinstance(lags, int) else lags)
        saved["calendar"] = "none" if not feed.calendar else list(feed.calendar)
    return model, saved


def _saved_transform(path, engine):
    """How a saved learner or stream read its targets: ``"log1p"`` or ``"none"``."""
    transforms = set(getattr(engine, "_transforms", None) or ())
    if transforms in (set(), {None}):
        return "none"
    if transforms == {"log1p"}:
        return "log1p"
    raise InputError(
        f"{path} learned some targets on log1p and others on their values; a backfill reads "
        "all its targets one way (transform=...): backfill it from Python, with its own feed"
    )


# -- settings read from the data ------------------------------------------------------------
#: The season (steps) of a sampling step, smallest step first: a day of 5-minute steps,
#: a day of hours, a week of days, a year of weeks or months.
_SEASONS = ((pd.Timedelta("5min"), 288), (pd.Timedelta("15min"), 96),
            (pd.Timedelta("30min"), 48), (pd.Timedelta("1h"), 24), (pd.Timedelta("1D"), 7),
            (pd.Timedelta("7D"), 52))  # fmt: skip
_PEEK_ROWS = 10_000


#: The longest daily season read from a sampling step (one-minute data).
_MOST_PER_DAY = 1440


def _season_for(step):
    """The natural season of data sampled every ``step`` (None when there is none): a
    year of months, a week of days, a year of weeks, or a day of any step that divides
    one into at most :data:`_MOST_PER_DAY` rows (24 hourly rows, 144 ten-minute rows)."""
    if pd.Timedelta("28D") <= step <= pd.Timedelta("31D"):  # months
        return 12
    for every, season in _SEASONS:
        if abs(step - every) <= every * 0.1:
            return season
    per_day = pd.Timedelta("1D") / step
    whole = round(per_day)
    if 2 <= whole <= _MOST_PER_DAY and abs(per_day - whole) <= 0.05 * whole:
        return whole
    return None


def _peek(job):
    """The input's first rows, through a feed with the job's schema that fills every
    missing value and drops late and duplicate rows (None when there are none)."""
    feed = feeds.Feed(_schema(job), late="drop", duplicates="first", missing=0.0)
    reader = _reader(dataclasses.replace(job, chunk_rows=_PEEK_ROWS), feed, 0)
    with contextlib.closing(reader):
        return next(iter(reader), None)


def _sampling_step(job):
    """The input's sampling step and whether it holds weekdays only: the grid, else the
    median time between a key's rows among the input's first rows (None for numeric
    times or too few rows)."""
    if job.grid is not None:
        try:
            return pd.Timedelta(job.grid), False
        except (TypeError, ValueError):
            return None, False  # numeric times
    try:
        chunk = _peek(job)
    except (feeds.FeedError, OSError, ValueError, TypeError):
        return None, False  # the run itself reports what is wrong with the input
    if chunk is None or chunk.times is None or chunk.times.dtype.kind != "M":
        return None, False
    keys = np.zeros(len(chunk), np.int64) if chunk.keys is None else pd.factorize(chunk.keys)[0]
    order = np.lexsort((chunk.times, keys))
    t, k = chunk.times.view(np.int64)[order], keys[order]
    gap = np.diff(t)[np.diff(k) == 0]
    gap = gap[gap > 0]
    if not gap.size:
        return None, False
    weekdays = len(t) >= 20 and bool((pd.DatetimeIndex(chunk.times).day_of_week < 5).all())
    return pd.Timedelta(int(np.median(gap)), "ns"), weekdays


def resolved(job):
    """The job with its ``auto`` settings decided: transform, scale, season, calendar
    inputs and lags (read from the sampling step of the input's first rows; daily rows on
    weekdays only have a season of 5)."""
    job = dataclasses.replace(job)
    if job.transform == "auto":  # log1p where the bound says the target cannot be negative
        bounded = job.minimum is not None and job.minimum >= 0
        job.transform = "log1p" if bounded and job.model is None and job.targets else "none"
    if job.model is not None:  # a given model's inputs and units are its own
        job.scale = None if job.scale == "auto" else job.scale
        job.calendar = None if job.calendar == "auto" else job.calendar
        job.lags = None if job.lags == "auto" else job.lags
    elif job.scale == "auto":
        job.scale = "per_key"
    if "auto" in (job.season, job.calendar) or job.lags == "auto":
        step, weekdays = _sampling_step(job)
        if job.season == "auto":
            job.season = None if step is None else _season_for(step)
            if job.season is None and step is not None:
                warnings.warn(
                    f"no season for rows every {step}: the seasonal naive baseline and the "
                    "lagged target input are off; name the season (season=) to have them",
                    UserWarning,
                    stacklevel=user_level(),
                )
            if job.season == 7 and weekdays:  # trading or working days: a week of five
                job.season = 5
        if job.calendar == "auto":
            job.calendar = None if step is None else (list(feeds.calendar_for(step)) or None)
    if job.lags == "auto":
        lag = None if job.season is None else job.season - job.horizon
        job.lags = [lag] if job.targets and lag is not None and lag >= 1 else None
    return job


def _optimizer(job):
    """Adam with the job's learning rate and schedule."""
    then = ExponentialDecay(job.decay) if job.schedule == "exponential" else None
    if job.schedule == "constant" or (job.warmup == 0 and then is None):
        schedule = None
    elif job.warmup == 0:
        schedule = then
    else:
        schedule = WarmUp(job.warmup, then=then)
    return Adam(lr=job.lr, schedule=schedule)


def _make_engine(job, model, chunk, feed, relative):
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
        model = MODELS[job.cell](I, job.hidden, job.layers, output_size=T * K,
                                 dtype=job.dtype, seed=job.seed)  # fmt: skip
    model.to(job.device)
    relative = None if relative == "none" else relative
    stands = bool(T) and model.out_features == T * K
    if not stands and (relative is not None or job.minimum is not None):
        if job.relative != "auto" or job.minimum is not None:
            raise ConfigError(
                f"relative and minimum apply to forecasts of the targets; the model's "
                f"{model.out_features} outputs are not one per target"
                + (" and quantile" if job.quantiles else "")
            )
        relative = None
    if not job.learn:
        return Stream(model, feed=feed, relative=relative, minimum=job.minimum,
                      quantiles=job.quantiles if stands else None,
                      horizon=job.horizon)  # fmt: skip
    if not T:
        raise ConfigError("learning needs targets: name them (targets=...)")
    loss = Pinball(job.quantiles) if job.quantiles else job.loss
    return OnlineLearner(model, tbptt=job.tbptt, loss=loss, optimizer=_optimizer(job),
                         horizon=job.horizon, batch=job.batch, per_key=job.per_key,
                         feed=feed, relative=relative, minimum=job.minimum,
                         shrink=job.shrink, calibrate=job.calibrate,
                         ar=job.ar or None,
                         seasonal=_seasonal_inputs(job, chunk))  # fmt: skip


def _seasonal_inputs(job, chunk):
    """The input column of each target's seasonal naive forecast (its lag of ``season -
    horizon`` rows), or None when the feed gives no such lag for every target."""
    if job.season is None or not job.lags:
        return None
    columns = list(chunk.columns)
    names = [f"{t}_lag{job.season - job.horizon}" for t in chunk.targets]
    if not all(name in columns for name in names):
        return None
    return [columns.index(name) for name in names]


def _schema(job):
    try:
        return feeds.Schema(time=job.time, key=job.key, features=job.features,
                            targets=job.targets, categorical=job.categorical)  # fmt: skip
    except (feeds.FeedError, ValueError, TypeError) as exc:  # the settings' fault
        raise ConfigError(str(exc)) from None


def _input_columns(job):
    """The input's column names, read from its metadata or header (None when it cannot
    be read: the run then says why)."""
    try:
        if job.format == "parquet":
            import pyarrow.dataset as ds

            hive = ds.HivePartitioning.discover(infer_dictionary=True)
            return ds.dataset(job.input, format="parquet", partitioning=hive).schema.names
        if job.format == "csv":
            import pyarrow.csv as pacsv

            convert = pacsv.ConvertOptions(column_types=arrow_types(job.column_types))
            if job.time_format:  # as the reader parses, so that the first block reads
                convert.timestamp_parsers = [pacsv.ISO8601, *job.time_format]
            if job.na_values:
                convert.null_values = [*convert.null_values, *job.na_values]
            read = pacsv.ReadOptions(encoding=job.encoding or "utf8")
            with pacsv.open_csv(job.input, read_options=read, convert_options=convert) as reader:
                return reader.schema.names
        with pa.memory_map(job.input) as source:
            try:
                return pa.ipc.open_file(source).schema.names
            except pa.ArrowInvalid:
                source.seek(0)
                return pa.ipc.open_stream(source).schema.names
    except (pa.ArrowInvalid, OSError, ValueError):
        return None


def _named_columns(job):
    """``(setting, column)`` of every column the job names."""
    named = []
    for name in ("key", "time", "features", "targets", "categorical", "missing", "column_types"):
        value = getattr(job, name)
        if isinstance(value, str) and name in ("key", "time"):
            value = [value]
        elif isinstance(value, dict):
            value = value.values() if name == "time" else [c for c in value if c != OTHERS]
        elif not isinstance(value, list) or name == "missing":  # ("ffill", 0) is a policy
            continue
        named += [(name, c) for c in value if isinstance(c, str)]
    return named


def _check_columns(job):
    """A column the job names that the input does not have is a bad setting."""
    names = _input_columns(job)
    if not names:  # unreadable, or no files: the run says so
        return
    for setting, column in _named_columns(job):
        if column not in names:
            near = difflib.get_close_matches(column, names, n=1)
            shown = names if len(names) <= 30 else [*names[:30], "..."]
            raise ConfigError(
                f"{setting} names column {column!r}, which the input does not have"
                + (f" (did you mean {near[0]!r}?)" if near else "")
                + f"; its columns are {shown}"
            )


def _feed(job):
    schema = _schema(job)
    options = {"missing": job.missing, "late": job.late, "duplicates": job.duplicates,
               "dtype": job.dtype}  # fmt: skip
    if job.grid is not None:
        options["grid"] = job.grid
    if job.scale is not None:
        options["scale"] = job.scale
    if job.calendar is not None:
        options["calendar"] = tuple(job.calendar)
    if job.lags is not None:
        options["lags"] = list(job.lags)
    if job.transform == "log1p":
        options["transform"] = "log1p"
    try:
        return feeds.Feed(schema, **options)
    except (ValueError, TypeError) as exc:
        raise ConfigError(str(exc)) from None


def _reader(job, feed, skip):
    rows = job.chunk_rows
    if job.format == "parquet":
        return feeds.iter_parquet(job.input, feed, rows=rows, skip=skip)
    if job.format == "csv":
        return feeds.iter_csv(job.input, feed, rows=rows, skip=skip,
                              column_types=job.column_types, encoding=job.encoding,
                              time_format=job.time_format, na_values=job.na_values)  # fmt: skip
    return feeds.iter_ipc(job.input, feed, rows=rows, skip=skip)


def holds_rows(job):
    """Whether a checked job's input holds a row of data: Parquet and IPC by their
    metadata, CSV by a line of values after the header (read up to it, not whole).
    None when it cannot be told (unreadable input: the run says why)."""
    try:
        if job.format == "parquet":
            import pyarrow.dataset as ds

            hive = ds.HivePartitioning.discover(infer_dictionary=True)
            dataset = ds.dataset(job.input, format="parquet", partitioning=hive)
            return bool(dataset.count_rows()) if dataset.files else None
        if job.format == "csv":
            return _csv_lines(job.input, job.encoding) >= 2
        with pa.memory_map(job.input) as source:
            try:
                return pa.ipc.open_file(source).count_rows() > 0
            except pa.ArrowInvalid:
                source.seek(0)
                return any(batch.num_rows for batch in pa.ipc.open_stream(source))
    except (pa.ArrowInvalid, OSError, ValueError):
        return None


def _csv_lines(path, encoding, enough=2):
    """Lines that are not empty at the start of a text file, counted up to ``enough``
    (the CSV reader skips empty lines)."""
    seen, filled = 0, False
    with open(path, encoding=encoding or "utf-8", errors="replace", newline="") as f:
        while seen < enough and (text := f.read(1 << 16)):
            for i, piece in enumerate(text.replace("\r", "\n").split("\n")):
                if i and filled:  # a line end after some text
                    seen, filled = seen + 1, False
                filled = filled or bool(piece)
    return seen + filled


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


def _forecasts(names):
    """Whether the outputs named ``names`` stand for the targets."""
    return not names[0].startswith("output_")


#: The output column of the time each forecast is for.
TARGET_TIME = "target_time"


def _all_names(job, schema, names, hidden):
    """The output's columns, in order."""
    cols = [schema.key or "key"] if schema.key else []
    cols += [schema.time_name, TARGET_TIME]
    if job.quantiles and _forecasts(names):
        cols += [f"{t}_forecast" for t in schema.targets]
    cols += [*names, *(f"{t}_actual" for t in schema.targets)]
    return cols + [f"h_{j}" for j in range(hidden)]


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
        fields.append(schema.time_name)
    if job.quantiles and _forecasts(names):  # the median as the forecast
        K, mid = len(job.quantiles), job.quantiles.index(0.5)
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

    def __init__(self, job, model, job_id, start, feed, relative="last"):
        self.job, self.model, self.job_id = job, model, job_id
        self.relative = relative
        if start is None:
            self.engine, self.feed, self.scorer, self.book = None, feed, None, None
            self.names = self.shadow = self.pairing = None
            self.parts = self.rows_out = 0
            self.done = False
            self.resumed_at = 0
        else:
            header, payload = start
            self.engine, self.feed = payload["engine"], payload["feed"]
            if self.engine is not None:  # saved models load on the CPU
                self.engine.model.to(job.device)
            self.scorer, self.book = payload["scorer"], payload["book"]
            self.names, self.shadow = payload["names"], payload["shadow"]
            self.pairing = payload["pairing"]
            self.parts, self.rows_out = header["parts"], header["rows_out"]
            self.done = header["done"]
            self.resumed_at = header["rows_in"]
        self.last = (self.rows_in, time.monotonic())

    @property
    def rows_in(self):
        return self.feed.counts["rows_in"]

    def _setup(self, chunk):
        job = self.job
        self.engine = _make_engine(job, self.model, chunk, self.feed, self.relative)
        if job.hidden_states:  # the same network without its head: outputs are h
            model = self.engine.model
            bare = type(model)(**{**model._config(), "output_size": None})
            bare.load_state_dict({k: v for k, v in model.state_dict().items()
                                  if not k.startswith("head.")})  # fmt: skip
            self.shadow = Stream(bare)
        width = self.engine.model.out_features
        self.names = _output_names(job, chunk, width)
        hidden = 0 if self.shadow is None else self.shadow.model.hidden_size
        columns = _all_names(job, self.feed.schema, self.names, hidden)
        twice = sorted({c for c in columns if columns.count(c) > 1})
        if twice:
            raise ConfigError(
                f"the output would have two columns named {twice[0]!r}: the input's "
                f"{twice[0]!r} and the one the backfill adds ({', '.join(columns)}); rename the "
                "input's column"
            )
        self.pairing = Pairing(job.horizon, job.lookahead, _grid_step(job, chunk))
        if chunk.y is None or not _forecasts(self.names):  # nothing to score
            return
        if job.learn:
            loss = self.engine.loss
        else:
            loss = Pinball(job.quantiles) if job.quantiles else MSE()
        names = wanted_scores(None, loss, job.season)
        self.scorer = Scorer(loss, job.horizon, names, job.season, None, None, 0.0)
        point, band = 0, None
        if job.quantiles:
            q = job.quantiles
            point, band = q.index(0.5), (q.index(min(q)), q.index(max(q)))
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
            pairs = None if book is None else partial(book.take, chunk)
            self.scorer.take(chunk, out, pairs)
        if len(chunk):
            table = _output_table(self.job, self.feed.schema, chunk, out, self.names)
            if self.shadow is not None:
                keys = chunk.keys if chunk.keys is not None else np.zeros(len(chunk), np.int64)
                h = self.shadow.update(keys, chunk.times, chunk.x)
                for j in range(h.shape[1]):
                    table = table.append_column(f"h_{j}", pa.array(h[:, j]))
            y = chunk.y_in_units()  # as the scores take them
            self._write(self.pairing.add(table, chunk.keys, chunk.times, y))

    def close(self):
        """The stream has ended: write the rows still waiting for their target rows."""
        if self.pairing is not None:
            self._write(self.pairing.close())

    def _write(self, left):
        """Write the rows that left the pairing as the next part."""
        if left is None:
            return
        table = left.table
        at = table.column_names.index(self.feed.schema.time_name)
        when = left.when.view(np.int64) if left.when.dtype.kind == "M" else left.when
        kind = table.schema.field(at).type
        table = table.add_column(at + 1, TARGET_TIME, pa.array(when, kind, mask=~left.known))
        at = table.num_columns
        if self.shadow is not None:
            at -= self.shadow.model.hidden_size
        for j, target in enumerate(self.feed.schema.targets):
            values = left.actual[:, j]
            table = table.add_column(at + j, f"{target}_actual",
                                     pa.array(values, mask=np.isnan(values)))  # fmt: skip
        name = os.path.join(self.job.output, f"part-{self.parts:06d}.parquet")
        checkpoint.write_atomic(name, lambda f: pq.write_table(table, f))
        self.parts += 1
        self.rows_out += table.num_rows

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
                   "book": self.book, "names": self.names, "shadow": self.shadow,
                   "pairing": self.pairing}  # fmt: skip
        checkpoint.write(os.path.join(self.job.output, CHECKPOINT), header, payload)
        self.last = (self.rows_in, time.monotonic())

    def metric(self):
        if self.scorer is None or not self.scorer._ready:
            return None
        return self.scorer._model.mae()


def _grid_step(job, chunk):
    """The grid's step in the time's units (nanoseconds for timestamps), or None."""
    if job.grid is None:
        return None
    if chunk.times.dtype.kind == "M":
        return int(pd.Timedelta(job.grid).value)
    return job.grid


def _version():
    from .. import __version__

    return __version__


def settled(job):
    """``(job, model, relative)``: the job checked and its ``auto`` settings decided (from
    a given model, else from the input's first rows), the model it starts from (None:
    a new one) and what its outputs are (``"last"`` or ``"none"``)."""
    job = checked(job)
    model, relative = None, job.relative
    if job.model is not None:
        if not os.path.isfile(job.model):
            raise ConfigError(f"model {job.model!r} does not exist")
        model, saved = _load_model(job.model)
        job.dtype = str(model.dtype)  # a loaded model keeps its own
        if relative == "auto":
            relative = saved.pop("relative")
        read_as = saved["transform"]
        if job.transform not in ("auto", read_as):
            raise ConfigError(
                f"model {job.model!r} learned its targets "
                + ("on log1p (transform='log1p')" if read_as == "log1p" else "on their values")
                + f", but transform={job.transform!r} reads them otherwise; leave transform "
                "at 'auto' to read them as it learned them"
            )
        for name, value in saved.items():  # auto settings: as the saved engine ran
            if getattr(job, name) in ("auto", None) and name != "relative":
                setattr(job, name, value)
        job = checked(job)  # the settings taken, in their checked form
    if relative == "auto":
        relative = "last"
    if model is None and not job.learn and job.targets:
        warnings.warn(
            "inference with a new, untrained model: its forecasts come from random weights; "
            "pass learn=True to learn from the data, or model= a trained model",
            UserWarning,
            stacklevel=user_level(),
        )
    if not (job.resume and os.path.exists(os.path.join(job.output, CHECKPOINT))):
        _check_columns(job)  # a job resumed was checked when it began; its input, by identity
    if model is None and not job.targets:  # before anything is read or written
        raise ConfigError("a new model needs targets to size its outputs; name them (targets=...)")
    job = resolved(job)
    return job, model, relative


def run(job, out=None, client=None, shards=None):
    """Run a backfill :class:`Job` (or resume it); returns its summary.

    Parameters
    ----------
    job : Job
    out : file, optional
        Where progress goes (default stderr).
    client : distributed.Client, optional
        Run it on this Dask cluster's workers, split by key (see
        :mod:`streamrnn.backfill.distributed`); ``shards`` is then the number of
        parts the keys are split into (default: twice the workers' threads).

    Returns
    -------
    dict
        ``rows_in``, ``rows_out``, ``series``, ``seconds`` and ``rows_per_s``
        (this run: a resumed run counts from where it started), ``parts``, the
        scores (``mae``, ``rmse``, ``persistence_mae``, ``mase``, ...), the
        learner's counts, and the paths of the output, checkpoint and report
        (always written whole when the summary names it). The counts:
        ``windows`` closed (every ``k1`` steps of a series); every ``batch``
        windows make one of the ``updates``, unless none of their labels is
        known (a series' first ``horizon`` rows, missing targets): such a batch
        teaches nothing and is no update; ``skipped`` updates (a non-finite
        loss or gradient: the weights were kept); ``labels`` learned from.

    Raises
    ------
    ConfigError
        A bad setting (an input or model that does not exist, a column the
        input does not have), or an output folder that holds other files or
        another job's results.
    feeds.SchemaError, InputError
        Input that is missing, unreadable, damaged, or does not fit the schema
        (or the checkpoint's schema).
    StateError
        A damaged checkpoint or job file, committed parts gone missing, or a
        folder in use by another run.
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
    >>> job = Job(os.path.join(folder, "in.parquet"), os.path.join(folder, "out"), key="key",
    ...           targets=["level"], hidden=8, dtype="float64", report=None, progress="none")
    >>> summary = run(job)
    >>> summary["rows_out"], summary["series"]
    (100, 2)
    >>> out = ds.dataset(os.path.join(folder, "out")).to_table().to_pandas()
    >>> list(out.columns)
    ['key', 'time', 'target_time', 'level_forecast', 'level_actual']
    >>> out[["key", "time", "target_time", "level_actual"]].iloc[[0, 1, 49]]
       key  time  target_time  level_actual
    0    a     0          1.0      0.247404
    1    a     1          2.0      0.479426
    49   a    49          NaN           NaN
    """
    if client is not None:
        from . import distributed

        return distributed.run(job, client, shards, out)
    job, model, relative = settled(job)
    if os.path.isdir(job.input) and _within(job.output, job.input):
        raise ConfigError(
            f"output folder {job.output!r} is inside the input folder {job.input!r}: its parts "
            "would become input; choose a folder outside"
        )
    report = _report_folder(job)
    feed = _feed(job)  # its options are checked before anything is written
    ident = identity(job)
    job_id_ = job_id(ident)
    lock, start = claim(job, ident, job_id_)
    try:
        state = _Run(job, model, job_id_, start, feed, relative)
        t0 = time.perf_counter()
        if not state.done:
            _loop(job, state, out)
        seconds = time.perf_counter() - t0
        # the report is made from the checkpoint alone: a finished job resumed writes it
        # again, the same bytes (and whole, if a crash cut its first writing short)
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
        state.close()
        state.done = True
        state.save()
        progress.show(state.rows_in, state.metric(), final=True)


def _within(path, folder):
    """Whether ``path`` is ``folder`` or lies inside it."""
    path, folder = os.path.abspath(path), os.path.abspath(folder)
    return os.path.commonpath([path, folder]) == folder


def _report_folder(job):
    """The report folder (None for none), checked before anything is written."""
    if job.report is None:
        return None
    if job.report == "auto":
        return os.path.join(job.output, REPORT)
    folder = job.report
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ConfigError(f"report {folder!r} is a file; it must be a folder")
    if _within(folder, job.output):
        raise ConfigError(
            f"report folder {folder!r} is inside the output folder; leave report unset to "
            f"write it to {os.path.join(job.output, REPORT)!r}, or choose a folder outside"
        )
    if os.path.isdir(job.input) and _within(folder, job.input):
        raise ConfigError(f"report folder {folder!r} is inside the input folder; choose another")
    from ..report import FILES

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
    if engine is not None and engine.feed is not None and engine.feed.bound:
        summary["inputs"] = list(engine.feed.input_names)
        feed = engine.feed
        read_as = [t for t, how in zip(feed.targets, feed.target_transforms) if how]
        if read_as:
            summary["log1p_targets"] = read_as
    return summary


def _write_states(job, engine):
    keys, model = list(engine.keys()), engine.model
    cols = {(engine.feed.schema.key or "key"): pa.array(keys)}
    parts = ("h", "c") if model.state_vectors == 2 else ("h",)
    states = [engine.get_state(k) for k in keys]
    for i, part in enumerate(parts):  # (layers, hidden) each: h0_0 is layer 0, unit 0
        values = [st[i] if len(parts) > 1 else st for st in states]
        S = np.stack(values) if keys else np.zeros((0, model.num_layers, model.hidden_size))
        for layer in range(S.shape[1]):
            for unit in range(S.shape[2]):
                cols[f"{part}{layer}_{unit}"] = pa.array(S[:, layer, unit])
    table = pa.table(cols)
    checkpoint.write_atomic(os.path.join(job.output, STATES), lambda f: pq.write_table(table, f))


def _report(job, state, summary, folder):
    from ..report import write_report

    book = state.book
    curve = book.curve() if book is not None else pd.DataFrame()
    samples = book.sample_frames() if book is not None else {}
    shown = {  # what the checkpoint holds, not this run's timings: the same after a resume
        "rows in": summary["rows_in"],
        "rows out": summary["rows_out"],
        "series": summary["series"],
    }
    for name in ("mae", "rmse", "persistence_mae", "mase", "seasonal_mae", "mase_seasonal",
                 "ar_mae", "mase_ar", "coverage", "coverage_nominal", "windows", "updates",
                 "skipped", "labels"):  # fmt: skip
        if name in summary:
            shown[name.replace("_", " ")] = summary[name]
    interval = None
    if job.quantiles and book is not None and book.band is not None:
        q = sorted(job.quantiles)
        interval = f"{q[0]:.0%}-{q[-1]:.0%}"
    schema = state.feed.schema
    targets = list(schema.targets) or ["target"]
    kind = "prequential learning" if job.learn else "inference"
    title = f"backfill of {job.input} ({kind})"
    if os.path.isdir(folder):  # left by a run killed while writing its report
        for name in os.listdir(folder):
            if name.startswith(".tmp-"):
                os.unlink(os.path.join(folder, name))
    return write_report(folder, title=title, summary=shown, curve=curve, samples=samples,
                        target=targets[0], interval=interval, key=schema.key or False,
                        points=Book.POINTS, horizon=job.horizon)  # fmt: skip


def load_checkpoint(path):
    """The engine a backfill checkpoint holds (:func:`streamrnn.checkpoint.load_engine`)."""
    return checkpoint.load_engine(path)
