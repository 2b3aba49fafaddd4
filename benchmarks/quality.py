"""Forecast quality of the default online model on every bundled data set, against
the baselines a forecaster would try first and the same network trained offline.

    python benchmarks/quality.py [--sets weather,brent] [--epochs N]

What it measures
----------------
For each of the six sets in :mod:`feeds.datasets`, the script describes the data
and nothing else (time column, key, target, and where the data call for them a
grid, a duplicates policy and a missing-value policy), writes the frame to a
Parquet file and runs :func:`streamrnn.backfill.run` on it with learning on and
every other setting at its default, as a user of ``streamrnn backfill --learn``
gets it: once with quantiles 0.05, 0.5 and 0.95 (a pinball loss; the median is
the forecast) and once without (the default point loss). Whatever the defaults
pick from the data (season, calendar inputs, lagged targets) they pick here.

The forecasts are scored by these rules, in the target's units:

- The output at a series' row ``t`` forecasts its row ``t + 1``. Actual values
  come from streaming the same file through a :class:`feeds.Feed` with the
  same schema, grid, duplicates and missing-value options and no scaling, so
  its rows (grid bins included) are the backfill's, in the same order.
- A row whose target is missing is scored by no method. Every figure of a set
  is taken over the same rows: those whose target is observed and for which
  every baseline has a forecast (a series' first ``season`` rows have no
  seasonal naive forecast, and the AR needs seven observed steps), so MASE is
  a ratio of MAEs on identical rows.
- Persistence: the last observed target at or before row ``t``. Seasonal naive:
  the last observed target at or before row ``t + 1 - season``, with the season
  given per set below (not the backfill's guess).
- AR(7): recursive least squares written here in NumPy, per series, on an
  intercept and the forward-filled targets of rows ``t - 6 .. t``, forgetting
  factor 1, ``P`` starting at ``1e3 I`` and weights at 0; each forecast is
  recorded before the fit learns row ``t + 1``'s target.
- "Whole" is every scored row of a series from its first; "last 30%" the rows
  whose target index is at least ``0.7 n`` (``n`` rows in the series).
- Quantiles: coverage is the share of scored rows whose actual value lies in
  [q0.05, q0.95] (nominal 90%); crossings count output rows where a lower
  quantile exceeds a higher one.

The offline network is the online model's architecture (cell, hidden size,
layers, seed and dtype read from ``Job()``) in PyTorch, starting from the point
run's initial weights, given the inputs the backfill gave its model: the feed
columns of the resolved job (its calendar inputs and lags, checked against the
feed in the backfill's checkpoint), built again without scaling and then
standardised per series with the mean and standard deviation of the series'
first 70% of rows (calendar and mask columns as they are, lags with the
target's statistics, masked values at 0). It forecasts what the online model
forecasts (read from the checkpoint): with ``relative="last"``, the change from
the last observed value in target standard deviations (forecast = last
observed + sd * output). Each epoch runs every series of the set as one batch
(right-padded) through its first 70% from a zero state and takes one Adam step
(lr 1e-2, gradient norm clipped at 1) on the Huber loss (delta 1) of the pairs
whose target lies before the validation slice, with full backpropagation
through time. The validation slice is the last 15% of the first 70%: it is not
trained on, and its MAE picks the epoch (1 to ``--epochs``), so the last 30% is
never looked at. Then the chosen network runs statefully from a zero state
through every row, and is scored on the last 30% only; it does not learn while
scored. One step per epoch is a small budget: the history in the JSON shows
whether the validation MAE was still falling at the last epoch.

The data sets and their seasons (for the seasonal naive forecast):

================ ======== ====== ============ ====== ========== ======= ====== =====
set              key      time   target       grid   duplicates missing season --min
================ ======== ====== ============ ====== ========== ======= ====== =====
weather          city     time   temperature  1h     error      ffill   24     --
seattle_weather  (none)   date   temp_max     --     error      error   7      --
stocks           symbol   date   price        --     error      error   12     0
glucose          (none)   time   glucose      5min   first      mask    288    0
fulda            (none)   date   discharge    --     error      error   7      0
brent            (none)   date   price        --     error      error   5      0
================ ======== ====== ============ ====== ========== ======= ====== =====

``--min 0`` says what a user would say of a target that cannot be negative
(prices, readings, flows; not temperatures); with it the backfill learns on
``log1p`` of the target (``--transform auto``).

``seattle_weather``'s text column ``weather`` is dropped before the frame is
written: a job cannot say "one series", and the feed would take the one text
column for the key. Brent's season is five trading days.

Output
------
One table (a line per set: rows, whole-stream MAE of the online models and
persistence, last-30% MAE of every method, coverage, crossings, seconds),
then one JSON document with every figure, the offline training history and
the machine. The run is deterministic: the backfill's results do not depend on
timing, PyTorch runs on one thread (restored afterwards) with fixed seeds.
It takes about five minutes on two cores, nearly all of it training the
offline networks (``--epochs`` sets their budget). ``make compare`` runs it
with the other comparisons.
"""

import argparse
import dataclasses
import json
import math
import os
import platform
import re
import tempfile
import time
from fractions import Fraction

import numba
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

import feeds
import streamrnn
from feeds import datasets
from streamrnn.backfill import Job, checked, load_checkpoint, run
from streamrnn.backfill.folder import CHECKPOINT
from streamrnn.backfill.runner import resolved

QUANTILES = [0.05, 0.5, 0.95]
SPLIT = Fraction(7, 10)  # "last 30%": target index >= 0.7 n
VALIDATION = Fraction(15, 100)  # the last 15% of the first 70%
AR_ORDER = 7
AR_P0 = 1e3
EPOCHS = 40
OFFLINE_LR = 1e-2
OFFLINE_CLIP = 1.0
HUBER_DELTA = 1.0
FEED_ROWS = 100_000  # rows per chunk when reading the actual values


@dataclasses.dataclass(frozen=True)
class DataSet:
    """What a bundled data set is: its columns and policies, and its season."""

    name: str
    load: object
    time: str
    target: str
    season: int
    key: str = None
    grid: str = None
    duplicates: str = "error"
    missing: str = "error"
    drop: tuple = ()
    minimum: float = None  # 0 for a target that cannot be negative: said, as a user says it


SETS = (
    DataSet("weather", datasets.load_weather, "time", "temperature", 24, key="city",
            grid="1h", missing="ffill"),
    DataSet("seattle_weather", datasets.load_seattle_weather, "date", "temp_max", 7,
            drop=("weather",)),
    DataSet("stocks", datasets.load_stocks, "date", "price", 12, key="symbol", minimum=0),
    DataSet("glucose", datasets.load_glucose, "time", "glucose", 288, grid="5min",
            duplicates="first", missing="mask", minimum=0),
    DataSet("fulda", datasets.load_fulda, "date", "discharge", 7, minimum=0),
    DataSet("brent", datasets.load_brent, "date", "price", 5, minimum=0),
)  # fmt: skip
NAMES = {s.name: s for s in SETS}


# -- the online model: the backfill with its defaults ---------------------------------------
def make_job(spec, path, output, quantiles):
    """The job a user writes for this data: the data's description, nothing tuned."""
    return Job(input=path, output=output, time=spec.time, key=spec.key, targets=[spec.target],
               grid=spec.grid, missing=spec.missing, duplicates=spec.duplicates, learn=True,
               minimum=spec.minimum,
               quantiles=quantiles, report=None, progress="none",
               checkpoint_seconds=None)  # fmt: skip


def backfill(job):
    """Run ``job``; returns its output rows (a DataFrame in feed order), summary and
    wall seconds."""
    start = time.perf_counter()
    summary = run(job)
    seconds = time.perf_counter() - start
    parts = sorted(n for n in os.listdir(job.output) if n.startswith("part-"))
    table = pa.concat_tables(pq.read_table(os.path.join(job.output, n)) for n in parts)
    return table.to_pandas(), summary, seconds


# -- the rows as the feed makes them ----------------------------------------------------------
def feed_rows(job, path):
    """Every row of the file through an unscaled float64 feed with the resolved job's
    schema, grid, policies, calendar inputs and lags: the backfill's rows in its
    order. Returns the chunk and the feed."""
    options = {"grid": job.grid} if job.grid is not None else {}
    feed = feeds.Feed(
        feeds.Schema(time=job.time, key=job.key, features=job.features, targets=job.targets),
        dtype="float64", missing=job.missing, late=job.late, duplicates=job.duplicates,
        calendar=None if job.calendar is None else tuple(job.calendar), lags=job.lags,
        **options,
    )  # fmt: skip
    return feeds.concat(list(feeds.iter_parquet(path, feed, rows=FEED_ROWS))), feed


def check_alignment(chunk, out, job):
    """The output rows must be the feed's rows, in the same order."""
    if len(out) != len(chunk):
        raise RuntimeError(f"the output has {len(out)} rows, the feed {len(chunk)}")
    times = out[job.time].to_numpy().astype("datetime64[ns]")
    if not np.array_equal(times, chunk.times.astype("datetime64[ns]")):
        raise RuntimeError("the output's times are not the feed's, row by row")
    if chunk.keys is not None:
        keys = np.asarray(chunk.keys, dtype=object)
        if not (out[job.key].to_numpy(dtype=object) == keys).all():
            raise RuntimeError("the output's keys are not the feed's, row by row")


def series_rows(chunk):
    """Each series' rows (indices into the chunk, in feed order), series in order of
    appearance."""
    if chunk.keys is None:
        return [np.arange(len(chunk))]
    codes = pd.factorize(np.asarray(chunk.keys, dtype=object))[0]
    order = np.argsort(codes, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(codes[order])) + 1)


def first_part(n, fraction):
    """How many of ``n`` rows have an index below ``fraction * n`` (exact)."""
    return math.ceil(fraction * n)


def forward_filled(y):
    """The last observed value at or before each row (NaN before the first)."""
    at = np.where(np.isnan(y), 0, np.arange(len(y)))
    np.maximum.accumulate(at, out=at)
    return y[at]


# -- baselines ----------------------------------------------------------------------------------
def ar_forecasts(y, p=AR_ORDER):
    """Online AR(p) by recursive least squares: the forecast made at each row ``t`` of a
    series for row ``t + 1`` (NaN where the window reaches before the first observed
    target), learning row ``t + 1``'s target after recording it."""
    ff = forward_filled(y)
    out = np.full(len(y) - 1, np.nan)
    observed = np.flatnonzero(~np.isnan(y))
    if not observed.size:
        return out
    w = np.zeros(p + 1)
    P = AR_P0 * np.eye(p + 1)
    for t in range(observed[0] + p - 1, len(y) - 1):
        x = np.concatenate(([1.0], ff[t - p + 1 : t + 1][::-1]))
        out[t] = w @ x
        if not np.isnan(y[t + 1]):
            Px = P @ x
            gain = Px / (1.0 + x @ Px)
            w += gain * (y[t + 1] - out[t])
            P -= np.outer(gain, Px)
    return out


def baselines(y, season):
    """Persistence, seasonal naive and AR(7) forecasts made at each row for the next."""
    ff = forward_filled(y)
    seasonal = np.full(len(y) - 1, np.nan)
    back = np.arange(1, len(y)) - season  # row t + 1 - season, for t = 0 .. n - 2
    seasonal[back >= 0] = ff[back[back >= 0]]
    return {"persistence": ff[:-1], "seasonal_naive": seasonal, "ar7": ar_forecasts(y)}


# -- the offline network ---------------------------------------------------------------------
def standardised_inputs(chunk, feed, rows, n70, target):
    """One series' inputs scaled as the online model's are, with the statistics of its
    first ``n70`` rows; returns the inputs and the target's mean and sd."""
    x = chunk.x[rows].copy()
    y = chunk.y[rows, 0]
    columns = list(chunk.columns)

    def stats(values):
        values = values[~np.isnan(values)]
        mean = float(values.mean()) if values.size else 0.0
        sd = float(values.std()) if values.size else 0.0
        return mean, (sd if sd > 0 else 1.0)

    y_mean, y_sd = stats(y[:n70])
    for c in feed.schema.features:
        j = columns.index(c)
        mask = columns.index(f"{c}_missing") if f"{c}_missing" in columns else None
        missing = x[:, mask] > 0 if mask is not None else np.zeros(len(x), bool)
        mean, sd = stats(np.where(missing, np.nan, x[:, j])[:n70])
        x[:, j] = np.where(missing, 0.0, (x[:, j] - mean) / sd)
    for k, c in enumerate(columns):
        if c.startswith(f"{target}_lag"):
            x[:, k] = (x[:, k] - y_mean) / y_sd
    return x, y_mean, y_sd


def torch_network(job, inputs):
    """The online model's architecture and initial weights as PyTorch modules."""
    cells = {"rnn": streamrnn.RNN, "gru": streamrnn.GRU, "lstm": streamrnn.LSTM}
    model = cells[job.cell](inputs, job.hidden, job.layers, output_size=1, dtype=job.dtype,
                            seed=job.seed)  # fmt: skip
    rnn, head = model.to_torch()
    rnn.batch_first = True
    return rnn, head


def offline(job, chunk, feed, series, epochs, relative):
    """Train the network offline on the first 70% of every series of the set, pick the
    epoch on the validation slice, then forecast every row from a zero state.

    With ``relative="last"`` (the online model's mode) the network forecasts the
    change from the last observed target, else the level, in target sds.

    Returns the forecasts (per series, made at rows ``0 .. n - 2`` for the next row),
    the chosen epoch, its validation MAE, the history (per epoch from 0, the training
    loss and validation MAE of the weights after that many steps) and the seconds.
    """
    start = time.perf_counter()
    torch.manual_seed(job.seed)
    dtype = getattr(torch, job.dtype)
    B, T, I = len(series), max(len(r) for r in series), chunk.x.shape[1]
    Z = np.zeros((B, T, I))
    anchor = np.zeros((B, T))  # the last observed target at each row (the origin)
    actual = np.full((B, T), np.nan)  # the target each row's output forecasts
    scale = np.ones((B, 1))
    train = np.zeros((B, T), bool)
    valid = np.zeros((B, T), bool)
    n70s = []
    for b, rows in enumerate(series):
        n = len(rows)
        n70 = first_part(n, SPLIT)
        v0 = first_part(n, SPLIT * (1 - VALIDATION))
        n70s.append(n70)
        x, y_mean, y_sd = standardised_inputs(chunk, feed, rows, n70, job.targets[0])
        y = chunk.y[rows, 0]
        Z[b, :n] = x
        ff = forward_filled(y)
        anchor[b, :n] = y_mean if relative is None else np.where(np.isnan(ff), y_mean, ff)
        actual[b, : n - 1] = y[1:]
        scale[b] = y_sd
        target_index = np.arange(1, n)
        labeled = ~np.isnan(y[1:])
        train[b, : n - 1] = labeled & (target_index < v0)
        valid[b, : n - 1] = labeled & (target_index >= v0) & (target_index < n70)
    label = (actual - anchor) / scale
    L = max(n70s) - 1  # origins whose target lies in a first 70%
    inputs = torch.tensor(Z[:, :L], dtype=dtype)
    train_t, label_t = torch.tensor(train[:, :L]), torch.tensor(label[:, :L], dtype=dtype)
    valid_v = valid[:, :L]

    rnn, head = torch_network(job, I)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=OFFLINE_LR)
    history, best = {"train_huber": [], "valid_mae": []}, (math.inf, 0, None)
    for epoch in range(epochs + 1):  # the pass of epoch e scores the weights after e steps
        out = head(rnn(inputs)[0])[..., 0]
        level = anchor[:, :L] + scale * out.detach().double().numpy()
        valid_mae = float(np.abs(level - actual[:, :L])[valid_v].mean())
        loss = torch.nn.functional.huber_loss(out[train_t], label_t[train_t], delta=HUBER_DELTA)
        history["train_huber"].append(round(loss.item(), 6))
        history["valid_mae"].append(round(valid_mae, 6))
        if epoch >= 1 and valid_mae < best[0]:
            best = (valid_mae, epoch, [p.detach().clone() for p in params])
        if epoch == epochs:
            break
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, OFFLINE_CLIP)
        opt.step()
    with torch.no_grad():
        for p, value in zip(params, best[2]):
            p.copy_(value)
        out = head(rnn(torch.tensor(Z, dtype=dtype))[0])[..., 0].double().numpy()
    level = anchor + scale * out
    forecasts = [level[b, : len(rows) - 1] for b, rows in enumerate(series)]
    return forecasts, best[1], best[0], history, time.perf_counter() - start


# -- scores -------------------------------------------------------------------------------------
def errors(forecast, actual):
    e = forecast - actual
    return {"mae": float(np.abs(e).mean()), "rmse": float(np.sqrt((e**2).mean()))}


def evaluate(spec, chunk, series, online, offline_fc):
    """Every method's figures on the scored rows of the whole stream and the last 30%."""
    pooled = {}

    def add(name, values):
        pooled.setdefault(name, []).append(values)

    for b, rows in enumerate(series):
        n = len(rows)
        y = chunk.y[rows, 0]
        add("actual", y[1:])
        add("last30", np.arange(1, n) >= first_part(n, SPLIT))
        for name, values in online.items():
            add(name, values[rows][:-1])
        for name, values in baselines(y, spec.season).items():
            add(name, values)
        add("offline", offline_fc[b])
    cat = {name: np.concatenate(parts) for name, parts in pooled.items()}
    actual, last30 = cat["actual"], cat["last30"]
    methods = ["online_quantile", "online_point", "persistence", "seasonal_naive", "ar7"]
    labeled = ~np.isnan(actual)
    scored = labeled & np.all([~np.isnan(cat[m]) for m in methods], axis=0)
    parts = {"whole": scored, "last30": scored & last30}
    figures = {part: {} for part in parts}
    for part, rows in parts.items():
        for m in methods + (["offline"] if part == "last30" else []):
            figures[part][m] = errors(cat[m][rows], actual[rows])
    mase = {
        m: {part: {b: figures[part][m]["mae"] / figures[part][b]["mae"]
                   for b in ("persistence", "seasonal_naive", "ar7")} for part in parts}
        for m in ("online_quantile", "online_point")
    }  # fmt: skip
    lo, hi = cat["q_low"], cat["q_high"]
    coverage = {
        part: float(((actual[rows] >= lo[rows]) & (actual[rows] <= hi[rows])).mean())
        for part, rows in parts.items()
    }
    counts = {
        "series_rows": [len(r) for r in series],
        "targets": int(len(actual)),
        "missing_target": int((~labeled).sum()),
        "no_baseline_yet": int((labeled & ~scored).sum()),
        "scored_whole": int(scored.sum()),
        "scored_last30": int(parts["last30"].sum()),
    }
    return figures, mase, coverage, counts


def crossings(out, target):
    """Output rows where a lower quantile exceeds a higher one."""
    q = out[[f"{target}_q{v:g}" for v in sorted(QUANTILES)]].to_numpy()
    return int((np.diff(q, axis=1) < 0).any(axis=1).sum())


# -- one set ------------------------------------------------------------------------------------
def measure(spec, folder, epochs):
    """Every figure of one data set."""
    start = time.perf_counter()
    frame = spec.load().drop(columns=list(spec.drop))
    path = os.path.join(folder, f"{spec.name}.parquet")
    frame.to_parquet(path)
    jobs = {
        "quantile": make_job(spec, path, os.path.join(folder, f"{spec.name}-q"), QUANTILES),
        "point": make_job(spec, path, os.path.join(folder, f"{spec.name}-p"), None),
    }
    outputs, summaries, seconds = {}, {}, {}
    for kind, job in jobs.items():
        outputs[kind], summaries[kind], seconds[f"backfill_{kind}"] = backfill(job)
    job = resolved(checked(jobs["point"]))
    chunk, feed = feed_rows(job, path)
    for out in outputs.values():
        check_alignment(chunk, out, job)
    engine = load_checkpoint(os.path.join(job.output, CHECKPOINT))
    if tuple(engine.feed.columns) != tuple(chunk.columns):
        raise RuntimeError(
            f"the backfill's inputs were {engine.feed.columns}, the resolved job's feed gives "
            f"{chunk.columns}"
        )
    series = series_rows(chunk)
    target = spec.target
    q = outputs["quantile"]
    online = {
        "online_quantile": q[f"{target}_q0.5"].to_numpy(np.float64),
        "online_point": outputs["point"][f"{target}_forecast"].to_numpy(np.float64),
        "q_low": q[f"{target}_q{min(QUANTILES):g}"].to_numpy(np.float64),
        "q_high": q[f"{target}_q{max(QUANTILES):g}"].to_numpy(np.float64),
    }
    offline_fc, epoch, valid_mae, history, seconds["offline"] = offline(
        job, chunk, feed, series, epochs, engine.relative
    )
    figures, mase, coverage, counts = evaluate(spec, chunk, series, online, offline_fc)
    seconds["total"] = time.perf_counter() - start
    shown = ("mae", "rmse", "persistence_mae", "seasonal_mae", "ar_mae", "coverage", "updates")
    return {
        "data": {
            "key": spec.key,
            "time": spec.time,
            "target": target,
            "grid": spec.grid,
            "duplicates": spec.duplicates,
            "missing": spec.missing,
            "dropped_columns": list(spec.drop),
            "season": spec.season,
            "source_rows": len(frame),
            "rows": len(chunk),
            "series": len(series),
            "inputs": list(chunk.columns),
            **counts,
        },  # fmt: skip
        "resolved_job": {
            name: getattr(job, name)
            for name in (
                "season",
                "calendar",
                "lags",
                "scale",
                "cell",
                "hidden",
                "layers",
                "dtype",
                "loss",
                "lr",
                "schedule",
                "warmup",
                "tbptt",
                "batch",
                "relative",
            )
        },  # fmt: skip
        "mae": {part: {m: f["mae"] for m, f in figs.items()} for part, figs in figures.items()},
        "rmse": {part: {m: f["rmse"] for m, f in figs.items()} for part, figs in figures.items()},
        "mase": mase,
        "quantiles": {
            "levels": QUANTILES,
            "coverage": coverage,
            "nominal": round(max(QUANTILES) - min(QUANTILES), 12),
            "crossings": crossings(q, target),
        },  # fmt: skip
        "offline": {
            "epochs": epochs,
            "chosen_epoch": epoch,
            "valid_mae": valid_mae,
            "relative": engine.relative,
            "history": history,
        },  # fmt: skip
        "backfill_summary": {
            kind: {k: s[k] for k in shown if k in s} for kind, s in summaries.items()
        },  # fmt: skip
        "seconds": seconds,
    }


# -- the report ---------------------------------------------------------------------------------
def table(results):
    """One line per set."""
    head = (f"{'':16s}{'':>7s} | {'MAE whole':^26s} | {'MAE last 30%':^53s} |"
            f"{'cover':>6s}{'cross':>6s}{'secs':>6s}")  # fmt: skip
    sub = (f"{'set':16s}{'rows':>7s} | {'q-med':>8s}{'point':>9s}{'persist':>9s} | "
           f"{'q-med':>8s}{'point':>9s}{'persist':>9s}{'season':>9s}{'AR(7)':>9s}{'offline':>9s} |"
           f"{'':>6s}{'':>6s}{'':>6s}")  # fmt: skip
    lines = [head, sub]
    for name, r in results.items():
        w, l3 = r["mae"]["whole"], r["mae"]["last30"]
        cells = [w["online_quantile"], w["online_point"], w["persistence"]]
        cells30 = [l3[m] for m in ("online_quantile", "online_point", "persistence",
                                   "seasonal_naive", "ar7", "offline")]  # fmt: skip
        lines.append(
            f"{name:16s}{r['data']['rows']:7d} | "
            + f"{cells[0]:8.4g}"
            + "".join(f"{v:9.4g}" for v in cells[1:])
            + " | "
            + f"{cells30[0]:8.4g}"
            + "".join(f"{v:9.4g}" for v in cells30[1:])
            + " |"
            + f"{r['quantiles']['coverage']['whole']:6.3f}{r['quantiles']['crossings']:6d}"
            + f"{r['seconds']['total']:6.0f}"
        )
    return "\n".join(lines)


def dumps(report):
    """The report as indented JSON, each list of plain values on one line."""
    text = json.dumps(report, indent=1)
    return re.sub(r"\[\s+([^\[\]{}]*?)\s+\]",
                  lambda m: "[" + " ".join(m.group(1).split()) + "]", text)  # fmt: skip


def machine():
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "torch": torch.__version__,
        "streamrnn": streamrnn.__version__,
    }


def command_line(doc, names):
    """The command line of a script over data sets ``names`` (name -> DataSet):
    ``(parser, chosen names, epochs)``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument(
        "--sets",
        default=",".join(names),
        help=f"comma-separated, from {', '.join(names)} (default: all)",
    )
    parser.add_argument("--epochs", type=int, default=EPOCHS,
                        help="most offline epochs (one Adam step each)")  # fmt: skip
    args = parser.parse_args()
    chosen = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in names]
    if unknown or not chosen:
        parser.error(f"unknown set {unknown[0] if unknown else '(none)'}; known: {list(names)}")
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    return parser, chosen, args.epochs


def measure_sets(specs, epochs):
    """:func:`measure` of each DataSet of ``specs``, PyTorch on one thread (its count
    restored after); returns ``({name: figures}, seconds)``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    start = time.perf_counter()
    results = {}
    try:
        with tempfile.TemporaryDirectory(prefix="streamrnn-quality-") as folder:
            for spec in specs:
                results[spec.name] = measure(spec, folder, epochs)
    finally:
        torch.set_num_threads(threads)
    return results, time.perf_counter() - start


def main():
    _, chosen, epochs = command_line(__doc__, NAMES)
    results, total = measure_sets([NAMES[name] for name in chosen], epochs)
    defaults = Job()
    print(
        "MAE in each target's units; online = default backfill learning prequentially; "
        "q-med = median of the quantile run; cover = share in [q0.05, q0.95], whole"
    )
    print(table(results))
    print()
    report = {
        "definitions": "the module docstring; every figure of a set on the same rows",
        "settings": {
            "quantiles": QUANTILES,
            "split": float(SPLIT),
            "validation": f"last {float(VALIDATION):.0%} of the first {float(SPLIT):.0%}",
            "ar_order": AR_ORDER,
            "ar_p0": AR_P0,
            "offline": {
                "epochs": epochs,
                "lr": OFFLINE_LR,
                "clip": OFFLINE_CLIP,
                "loss": f"huber(delta={HUBER_DELTA:g})",
                "torch_threads": 1,
                "network": f"torch.nn.{defaults.cell.upper()}(inputs, "
                f"{defaults.hidden}, {defaults.layers}) + "
                f"torch.nn.Linear({defaults.hidden}, 1)",
            },  # fmt: skip
        },
        "sets": results,
        "seconds": total,
        "machine": machine(),
    }
    print(dumps(report))


if __name__ == "__main__":
    main()
