"""A backfill job's settings: their checks, job files, and the job's identity."""

import codecs
import dataclasses
import hashlib
import json
import numbers
import os

import numpy as np

from feeds import FeedError
from feeds.schema import CATEGORIES
from feeds.tables import column_types as arrow_types
from feeds.tables import na_markers, time_formats

from ..core.cells import FAMILIES
from ..errors import ConfigError, InputError
from ..learner import DEFAULT_AR, DEFAULT_LOSS, DEFAULT_LR, DEFAULT_TBPTT, DEFAULT_WARMUP
from ..losses import Pinball, as_loss

#: The settings that take one of a few values, and those values.
CHOICES = {
    "format": ("auto", "parquet", "csv", "ipc"),
    "late": ("error", "drop"),
    "duplicates": ("error", "first", "last"),
    "cell": FAMILIES,
    "dtype": ("float32", "float64"),
    "progress": ("auto", "bar", "log", "none"),
    "relative": ("auto", "last", "none"),
    "transform": ("auto", "log1p", "none"),
    "device": ("cpu", "cuda"),
    "schedule": ("warmup", "constant", "exponential"),
}
#: The learner's forecasting defaults (as :class:`~streamrnn.OnlineLearner` has them).
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
    column_types : dict or str, optional
        CSV input: the Arrow type of some columns, ``{column: type}`` with type
        names (``"float64"``, ``"int64"``, ``"string"``, ``"timestamp[s]"``, see
        :func:`feeds.tables.column_types`) or ``pyarrow`` types, or the text
        ``"TEMP=float64,cbwd=string"``. Other columns' types are inferred from
        the file's first block.
    encoding : str, optional
        CSV input: the file's text encoding (``"latin-1"``, ``"cp1252"``,
        ``"utf-16"``, ...); UTF-8 by default.
    time_format : str or list of str, optional
        CSV input: the strptime format of times written otherwise than ISO 8601
        (``"%m/%d/%Y %H:%M"`` reads ``01/31/2010 23:00``), or several, tried in
        order (see :func:`feeds.iter_csv`).
    na_values : list of str, optional
        CSV input: more texts read as missing in numeric and time columns, such
        as ``["-", "n/a"]``; also as comma-separated text, ``"-,n/a"``. Text
        columns keep them as written.
    key : str or False, optional
        The key column; False: the input is one series; None: inferred, as for
        :class:`feeds.Schema`.
    time : str, list or dict, optional
        The time column, or the columns of its parts (``["year", "month",
        "day", "hour"]``, or ``{part: column}``), as for :class:`feeds.Schema`;
        also as text, ``"year,month,day,hour"`` or ``"year=yr,month=mo,day=d"``.
    features, targets :
        Columns, as for :class:`feeds.Schema` (inferred when None); also as
        comma-separated text.
    categorical : str, list or dict, optional
        Text or integer columns given to the model as one-hot inputs, as for
        :class:`feeds.Schema`: a column or a list (each with a category list
        grown from the stream), or ``{column: slots or [categories]}``; also
        as text, ``"cbwd"``, ``"cbwd=8"`` (8 slots) or ``"cbwd=NE|NW|SE|cv"``
        (declared categories), comma-separated.
    missing : str, number, tuple or dict
        What a missing feature value becomes (:class:`feeds.Feed`): ``"error"``,
        ``"ffill"``, ``"mask"``, a fill value, or ``("ffill", value)``
        (``"ffill:value"`` as text); or a dict ``{column: policy}``, where the
        key ``"*"`` gives the policy of the features it does not name (else
        ``"error"``); or that dict as text, ``"ffill,pm2.5=mask"`` (a policy
        without a column is the one for the others, ``"*"``).
    grid, late, duplicates :
        Feed options, as for :class:`feeds.Feed`.
    scale : {"auto", "per_key", "global", "none"}
        Online standardisation of every feature and target (:class:`feeds.Feed`).
        ``auto``: ``per_key`` for a new model, ``none`` with ``model``.
    calendar : str or list of str
        Calendar inputs from the time column (``hour_of_day``, ``day_of_week``,
        ``day_of_year``, ``minute_of_hour``); ``"auto"`` picks them from the
        sampling step (read from the input's first rows) for a new model, none
        with ``model``; none by default (on the bundled data they made the
        online forecasts worse than the lagged target alone).
    lags : str, int or list of int
        Inputs holding each target's value that many rows before; ``"auto"`` is
        ``season - horizon`` (what the seasonal naive forecast reads) when the
        season is known, for a new model (none with ``model``); ``"none"`` for
        none.
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
    lookahead : int
        How many later rows of the feed's stream a row's output waits for the
        row its forecast is for (``horizon`` rows later in its series), to write
        that row's time and targets beside the forecast (``target_time``,
        ``<target>_actual``); left empty when it comes later, or never.
    schedule, warmup, decay :
        The learning rate's schedule: ``"warmup"`` (linear from a tenth of
        ``lr`` over ``warmup`` updates, then constant), ``"constant"``, or
        ``"exponential"`` (after the warm-up, multiplied by ``decay`` every
        update).
    relative : {"auto", "last", "none"}
        Forecast the change from each target's last observed value (``last``,
        see :mod:`streamrnn.relative`) or the level (``none``). ``auto``: a
        learner's own setting when ``model`` is a saved learner or checkpoint,
        ``none`` for a PyTorch model, else ``last``.
    minimum : float, optional
        A lower bound for every forecast and quantile (0 for a target that
        cannot be negative).
    transform : {"auto", "log1p", "none"}
        Read the targets as ``log1p(value)`` (``feeds.Feed(transform=...)``):
        the model learns and forecasts relative changes, and its forecasts,
        turned back, never fall below 0. ``auto``: ``log1p`` when ``minimum``
        is 0 or more (a target that cannot be negative) and no ``model`` is
        given, else ``none``; with a ``model``, how it learned its targets (a
        saved learner or stream knows; ``none`` for a PyTorch model).
    shrink : bool
        Learning with ``relative`` ``last``: shrink each key's forecast changes
        towards persistence by a gain learned from its past labels (see
        :mod:`streamrnn.relative`).
    ar : int
        Learning with ``relative`` ``last``: lags of the online linear
        autoregression run beside the network, towards whose forecasts each
        key's forecasts move by a weight learned from their past errors (see
        :mod:`streamrnn.relative`); 0: none.
    calibrate : bool
        Learning quantiles with ``relative`` ``last``: spread each key's
        quantiles around their median by a factor that follows the interval's
        misses, so that its coverage tends to the nominal one.
    device : {"cpu", "cuda"}
        Where the model runs (``RecurrentModel.to``): ``cuda`` runs the backfill,
        inference or learning, on an NVIDIA GPU (``pip install "streamrnn[cuda]"``).
    season : int or "auto", optional
        Period of the seasonal naive baseline, in steps; ``"auto"`` from the
        sampling step (288 for 5 minutes, 24 for hours, 7 for days, 5 for days
        that are all weekdays, 52 for weeks, 12 for months), None for none.
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
    hidden_states : bool
        Inference: add each row's hidden state (the top layer's ``h``, after the
        row) to the output, as columns ``h_0``, ``h_1``, ...
    progress : {"auto", "bar", "log", "none"}
        A live line on a terminal (``bar``), a log line every 10 s (``log``);
        ``auto`` picks by whether stderr is a terminal.
    """

    input: str = None
    output: str = None
    format: str = "auto"
    column_types: dict = None
    encoding: str = None
    time_format: object = None
    na_values: list = None
    key: str = None
    time: str = None
    features: list = None
    targets: list = None
    categorical: object = None
    grid: str = None
    missing: str = "error"
    late: str = "error"
    duplicates: str = "error"
    scale: str = "auto"
    calendar: object = None
    lags: object = "auto"
    model: str = None
    cell: str = "gru"
    hidden: int = 32
    layers: int = 1
    seed: int = 0
    dtype: str = "float32"
    learn: bool = False
    loss: str = DEFAULT_LOSS
    quantiles: list = None
    lr: float = DEFAULT_LR
    schedule: str = "warmup"
    warmup: int = DEFAULT_WARMUP
    decay: float = 1.0
    tbptt: tuple = DEFAULT_TBPTT
    horizon: int = 1
    lookahead: int = 100_000
    batch: int = 1
    per_key: bool = False
    relative: str = "auto"
    minimum: float = None
    transform: str = "auto"
    device: str = "cpu"
    shrink: bool = True
    ar: int = DEFAULT_AR
    calibrate: bool = True
    season: object = "auto"
    chunk_rows: int = 100_000
    checkpoint_rows: int = None
    checkpoint_seconds: float = 60.0
    resume: bool = False
    overwrite: bool = False
    report: str = "auto"
    plot_series: int = 3
    states: bool = False
    hidden_states: bool = False
    progress: str = "auto"


# Fields added after jobs were first written: left out of a job's identity while unset (or,
# resolved, at the value that computes what jobs did before them), so that a folder started
# before them keeps its job id and resumes.
_LATER = {"time_format": None, "na_values": None, "transform": "none", "device": "cpu"}
# Fields that do not change what a job computes: they may differ on resumption.
_RUN_ONLY = {"output", "chunk_rows", "checkpoint_rows", "checkpoint_seconds", "resume",
             "overwrite", "report", "progress", "states"}  # fmt: skip


#: In a ``missing`` dict, the key of the policy for the features it does not name.
OTHERS = "*"
_POLICY_WORDS = ("error", "mask", "ffill")
_POLICY_TEXT = (
    "'error', 'mask', 'ffill', a finite fill value or 'ffill:VALUE' (the key's last value, "
    "VALUE until there is one)"
)
_PER_COLUMN = (
    "or policies per column, COLUMN=POLICY, comma-separated, a policy without a column "
    "being the one for the others ('ffill,pm2.5=mask')"
)


def _fail(name, value, want):
    raise ConfigError(f"{name} must be {want}, got {value!r}")


def _finite(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)


def _policy(value, column=None):
    """One missing-value policy, as :class:`feeds.Feed` takes it, from its value or its text
    (``column``'s, for a message)."""
    if isinstance(value, str):
        text = value.strip()
        if text in _POLICY_WORDS:
            return text
        head, colon, tail = text.partition(":")
        try:
            number = float(tail if colon else text)
        except ValueError:
            number = None
        if number is not None and np.isfinite(number) and (not colon or head.strip() == "ffill"):
            return ("ffill", number) if colon else number
    elif isinstance(value, (list, tuple)):  # a job file's array
        if len(value) == 2 and value[0] == "ffill" and _finite(value[1]):
            return ("ffill", float(value[1]))
    elif _finite(value):
        return float(value)
    if column is None:
        _fail("missing", value, f"{_POLICY_TEXT}, {_PER_COLUMN}")
    raise ConfigError(
        f"missing gives column {column!r} the policy {value!r}, which is not one; a policy "
        f"is {_POLICY_TEXT}"
    )


def _missing(value):
    """``missing`` checked: one policy, or ``{column: policy}`` (:data:`OTHERS` for the
    features it does not name)."""
    if isinstance(value, str) and ("=" in value or "," in value):
        items = []
        for part in (p.strip() for p in value.split(",")):
            column, equals, policy = part.rpartition("=")
            if not part or (equals and not column.strip()):
                _fail("missing", value, f"one policy ({_POLICY_TEXT}), {_PER_COLUMN}")
            items.append((column.strip() if equals else OTHERS, policy))
    elif isinstance(value, dict):
        items = list(value.items())
    else:
        return _policy(value)
    out = {}
    for column, policy in items:
        if not isinstance(column, str) or not column:
            _fail("missing", value, "a dict keyed by column names")
        if column in out:
            which = "the other columns" if column == OTHERS else f"column {column!r}"
            raise ConfigError(f"missing gives {which} two policies; give one")
        out[column] = _policy(policy, None if column == OTHERS else column)
    return out[OTHERS] if list(out) == [OTHERS] else out


def _items(name, value, want):
    """``[(column, text)]`` of ``"a=x,b=y"`` or a dict."""
    if isinstance(value, dict):
        return list(value.items())
    if not isinstance(value, str):
        _fail(name, value, want)
    items = []
    for part in (p.strip() for p in value.split(",")):
        column, equals, text = part.rpartition("=")
        if not equals or not column.strip() or not text.strip():
            _fail(name, value, want)
        items.append((column.strip(), text.strip()))
    return items


def _column_types(value):
    """``column_types`` checked: ``{column: type name}`` (names the CSV reader takes back),
    or None."""
    try:
        types = arrow_types(value)
    except FeedError as exc:
        if str(exc).startswith("column_types "):  # it names the setting itself
            raise ConfigError(str(exc)) from None
        raise ConfigError(f"column_types {value!r} is not accepted: {exc}") from None
    return {c: str(t) for c, t in types.items()} or None


def _time_format(value):
    """``time_format`` checked: a list of strptime formats, or None."""
    try:
        return time_formats(value) or None
    except FeedError as exc:
        raise ConfigError(str(exc)) from None


def _na_values(value):
    """``na_values`` checked: a list of texts (``"-,n/a"`` split at its commas), or None."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    try:
        return na_markers(value) or None
    except FeedError as exc:
        raise ConfigError(str(exc)) from None


def _categories(text):
    """``"8"``: slots; ``"NE|NW|cv"``: the categories (integers when all are)."""
    if text.isdigit():
        return int(text)
    values = [v.strip() for v in text.split("|")]
    try:
        return [int(v) for v in values]
    except ValueError:
        return values


def _categorical(value):
    """``categorical`` as :class:`feeds.Schema` takes it, from its text form."""
    if not isinstance(value, str):
        return value
    items = [p.strip() for p in value.split(",") if p.strip()]
    if not any("=" in p for p in items):
        return items or None
    want = "COLUMN, COLUMN=SLOTS or COLUMN=CATEGORY|CATEGORY|..., comma-separated"
    out = {}
    for part in items:
        column, equals, spec = part.partition("=")
        if not column.strip() or (equals and not spec.strip()):
            _fail("categorical", value, want)
        if column.strip() in out:
            raise ConfigError(f"categorical gives column {column.strip()!r} twice; give it once")
        out[column.strip()] = _categories(spec.strip()) if equals else CATEGORIES
    return out


def _time(value):
    """``time``: a column, or the columns of its parts (a list, or a dict {part: column};
    as text ``year,month,day`` or ``year=yr,month=mo,day=d``)."""
    if isinstance(value, str) and "," in value:
        if "=" in value:
            return dict(_items("time", value, "PART=COLUMN items (year=yr,month=mo,day=d)"))
        return [v.strip() for v in value.split(",") if v.strip()]
    if value is None or (isinstance(value, str) and value):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return list(value)
    if isinstance(value, dict) and value:
        return dict(value)
    _fail("time", value, "a column name, or the columns of its parts")


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
    for name, allowed in CHOICES.items():
        if getattr(job, name) not in allowed:
            _fail(name, getattr(job, name), "one of " + ", ".join(map(repr, allowed)))
    if job.scale in ("none", False):
        job.scale = None
    if job.scale not in (None, "auto", "per_key", "global"):
        _fail("scale", job.scale, "'auto', 'per_key', 'global' or 'none'")
    for name in ("calendar", "lags"):
        value = getattr(job, name)
        if isinstance(value, str) or value is False or value is None:
            value = None if value in ("none", "", False, None) else value
        setattr(job, name, value)
    if job.calendar not in (None, "auto"):
        _names(job, "calendar")
    if job.lags not in (None, "auto"):
        lags = job.lags
        if isinstance(lags, str):
            lags = [v for v in lags.split(",") if v.strip()]
        elif isinstance(lags, int) and not isinstance(lags, bool):
            lags = [lags]
        try:
            job.lags = [int(v) if not isinstance(v, (bool, float)) else None for v in lags]
        except (TypeError, ValueError):
            _fail("lags", job.lags, "'auto', 'none' or positive integers")
        if None in job.lags:
            _fail("lags", lags, "'auto', 'none' or positive integers")
        if not all(v > 0 for v in job.lags) or len(set(job.lags)) != len(job.lags):
            _fail("lags", job.lags, "'auto', 'none' or distinct positive integers")
    if job.season == "none":
        job.season = None
    if isinstance(job.season, str) and job.season != "auto":
        try:
            job.season = int(job.season)
        except ValueError:
            _fail("season", job.season, "a number of steps, 'auto' or 'none'")
    if job.minimum is not None:
        if isinstance(job.minimum, str):
            try:
                job.minimum = float(job.minimum)
            except ValueError:
                _fail("minimum", job.minimum, "a number")
        if isinstance(job.minimum, bool) or not isinstance(job.minimum, (int, float)):
            _fail("minimum", job.minimum, "a number")
        if not np.isfinite(job.minimum):
            _fail("minimum", job.minimum, "a finite number")
        job.minimum = float(job.minimum)
    for name in ("key", "model"):
        value = getattr(job, name)
        if name == "key" and value is False:  # one series
            continue
        if value is not None and (not isinstance(value, str) or not value):
            _fail(name, value, "a column name" + (", or false for one series" if name == "key"
                                                  else " or None"))  # fmt: skip
    job.time = _time(job.time)
    job.categorical = _categorical(job.categorical)
    job.missing = _missing(job.missing)
    job.column_types = _column_types(job.column_types)
    job.time_format = _time_format(job.time_format)
    job.na_values = _na_values(job.na_values)
    if job.encoding is not None:
        try:
            job.encoding = codecs.lookup(job.encoding).name
        except (LookupError, TypeError):
            raise ConfigError(
                f"encoding {job.encoding!r} is not a text encoding Python knows; for example "
                "utf-8, latin-1, cp1252 or utf-16"
            ) from None
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
    for name in (
        "learn",
        "per_key",
        "resume",
        "overwrite",
        "states",
        "hidden_states",
        "shrink",
        "calibrate",
    ):
        if not isinstance(getattr(job, name), (bool, np.bool_)):
            _fail(name, getattr(job, name), "true or false")
    for name, low in (("hidden", 1), ("layers", 1), ("seed", 0), ("horizon", 0), ("batch", 1),
                      ("chunk_rows", 1), ("plot_series", 0), ("lookahead", 0)):  # fmt: skip
        _int(job, name, low)
    if job.season != "auto":
        _int(job, "season", 1, none=True)
    _int(job, "warmup", 0)
    _int(job, "ar", 0)
    if (
        isinstance(job.decay, bool)
        or not isinstance(job.decay, (int, float))
        or not (0 < job.decay <= 1)
    ):
        _fail("decay", job.decay, "a number in (0, 1]")
    job.decay = float(job.decay)
    _int(job, "checkpoint_rows", 1, none=True)
    if type(job.checkpoint_seconds) in (int, float) and job.checkpoint_seconds == 0:
        job.checkpoint_seconds = None  # 0: never by time (job files have no None)
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
    if job.hidden_states and job.learn:
        raise ConfigError(
            "hidden_states writes each row's state in inference; a learning run writes each "
            "key's final state with states (--states)"
        )
    loss = as_loss(job.loss if job.quantiles is None else Pinball(job.quantiles))
    if job.quantiles is None and loss.name in ("pinball", "cross_entropy"):
        raise ConfigError(
            f"loss {job.loss!r} does not fit a backfill of forecasts: give quantiles "
            "(--quantiles 0.1,0.5,0.9) for a pinball loss, or a loss of 'mse', 'mae' or 'huber'"
        )
    if job.report is False:  # a job file's way to say none
        job.report = None
    if job.report is not None and (
        not isinstance(job.report, (str, os.PathLike)) or not os.fspath(job.report)
    ):
        _fail("report", job.report, "a folder, 'auto', or None or false for no report")
    if not os.path.exists(job.input):
        raise ConfigError(f"input {job.input!r} does not exist")
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
    for name, why in _CSV_ONLY.items():
        if getattr(job, name) is not None and job.format != "csv":
            raise ConfigError(
                f"{name} applies to CSV input; {job.input!r} is read as {job.format}{why}"
            )
    return job


#: The options only a CSV reader takes, and why another format needs none.
_CSV_ONLY = {
    "column_types": " (its columns have their types)",
    "encoding": "",
    "time_format": " (its time column has its type: convert text to timestamps before "
    "writing it)",
    "na_values": " (its missing values are nulls)",
}


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
    for name, before in _LATER.items():
        if ident[name] == before:
            del ident[name]
    ident["input"] = os.path.abspath(job.input)
    ident["tbptt"] = list(job.tbptt)
    ident["input_files"] = _input_files(job.input)
    if job.model is not None:
        if not os.path.isfile(job.model):
            raise InputError(f"{job.model}: the model file does not exist")
        ident["model"] = os.path.abspath(job.model)
        ident["model_sha256"] = _digest(job.model)
    return ident


def job_id(ident):
    text = json.dumps(ident, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def differences(old, new):
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
