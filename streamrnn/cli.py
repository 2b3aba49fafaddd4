"""The ``streamrnn`` command: ``streamrnn backfill INPUT -o OUTPUT [options]``, and
``streamrnn compile`` to compile the kernels ahead of time.

Options come from the command line or a TOML job file (``--config job.toml``,
keys named like the long options, at the top level or under ``[backfill]``);
the command line wins; paths in a job file are taken from the working folder.

Exit status: 0 done; 1 the data does not fit the options, or the input holds
no rows, or the output folder's state is damaged, or a write failed (the message says what and
where); 2 a bad option or job file: a value that is not accepted, an INPUT or
--model that does not exist, a column the input does not have (--key, --time,
--features, --targets, --missing, --column-types), a setting the data cannot
take (a policy for a column that is no feature), an output folder that holds
results (this job's: --resume or --overwrite; another's or other files: a new
folder); 70 an unexpected error (one line:
please report it); 130 and 143 stopped by SIGINT and SIGTERM after a
checkpoint.

The job and the feeds word their errors for Python (``Schema(key=...)``,
``missing='mask'``); :func:`cli_words` rewrites them into this command's words
(``--key COLUMN``, ``--missing mask``), or a job file's keys for the settings
that came from one.
"""

import argparse
import ast
import contextlib
import io
import json
import math
import os
import re
import shlex
import sys
import tokenize
import warnings

import feeds

from . import backfill
from .backfill.folder import owner
from .backfill.job import CHOICES, checked
from .backfill.runner import holds_rows
from .errors import ConfigError, InputError, StreamrnnError

_HELP = {
    "input": "Parquet file or dataset folder, CSV file, or Arrow IPC file to read",
    "output": "folder of the output Parquet dataset: new, empty, or this job's own",
    "format": "input format (auto: by suffix; a folder is Parquet)",
    "column_types": "CSV input: types of some columns, COLUMN=TYPE,... with Arrow type "
    "names (float64, int64, string, bool, timestamp[s]), e.g. TEMP=float64,cbwd=string; the "
    "others are inferred from the file's first block; repeatable",
    "encoding": "CSV input: the file's text encoding, e.g. latin-1 or cp1252 (default: utf-8)",
    "time_format": "CSV input: the strptime format of times not written in ISO 8601, e.g. "
    "'%%m/%%d/%%Y %%H:%%M' for 01/31/2010 23:00; repeat the option for several, tried in order",
    "na_values": "CSV input: more texts read as missing in numeric and time columns, "
    "comma-separated, e.g. -,n/a (empty, NA, N/A, null, nan are missing already; text "
    "columns keep them as written); repeatable",
    "key": "key column: one series per value (default: inferred, see feeds.Schema)",
    "no_key": "the input is one series: no key column",
    "time": "time column, or the columns of its parts: year,month,day[,hour[,minute[,second]]] "
    "(found by their names) or year=COLUMN,month=COLUMN,... (default: the one timestamp "
    "column, else year, month, day, ... columns)",
    "features": "comma-separated input columns (default: every other numeric column)",
    "targets": "comma-separated target columns: what is forecast and scored",
    "categorical": "text or integer columns given to the model as one-hot inputs: COLUMN (a "
    "category list grown from the data, 16 slots), COLUMN=SLOTS, or COLUMN=A|B|C (declared "
    "categories), comma-separated, repeatable; a category with no slot is an all-zero row",
    "grid": "put each series on a regular grid of this step, e.g. 1h",
    "missing": "what a missing feature value becomes: error (stop), ffill (the key's last "
    "value), mask (0 and a 0/1 input COLUMN_missing), a fill value, or ffill:VALUE (VALUE "
    "until there is a last value); per column as COLUMN=POLICY,..., a policy without a "
    "column being the others' (else error): ffill,pm2.5=mask (repeatable: --missing ffill "
    "--missing pm2.5=mask is the same). Missing targets are left missing: not learned from, "
    "not scored",
    "late": "a row older than its key's last: an error, or drop it (counted)",
    "duplicates": "a row at its key's last time: an error, or keep the first or the last",
    "scale": "standardise values online: per_key, global or none; auto: per_key for a new "
    "model, none with --model",
    "calendar": "calendar inputs from the time: none, auto (from the sampling step; none "
    "with --model), or names among hour_of_day, day_of_week, day_of_year, minute_of_hour",
    "lags": "inputs holding each target's value this many rows before: auto (season - "
    "horizon: the seasonal naive forecast; none with --model), none, or numbers",
    "model": "start from this model: a PyTorch .pt/.pth, a saved learner, or a checkpoint",
    "cell": "cell of a new model",
    "hidden": "hidden size of a new model",
    "layers": "layers of a new model",
    "seed": "seed of a new model's weights",
    "dtype": "dtype of a new model and of the data",
    "learn": "learn prequentially (predict each row, then learn from it); else inference",
    "loss": "loss to learn: huber (robust to spikes), mse or mae",
    "quantiles": "comma-separated quantiles: learn (or read) each as an output, pinball loss",
    "lr": "Adam learning rate",
    "schedule": "learning-rate schedule: warmup (linear from lr/10 over --warmup updates, "
    "then constant), constant, or exponential (warm-up, then times --decay each update)",
    "warmup": "updates of learning-rate warm-up",
    "decay": "factor on the learning rate per update after warm-up (--schedule exponential)",
    "relative": "forecast the change from each target's last value (last) or the level "
    "(none); auto: last, or a saved model's own (none for a PyTorch model)",
    "shrink": "learning: shrink each key's forecast changes towards persistence by a gain "
    "learned from its past errors (with --relative last)",
    "ar": "learning: move each key's forecasts towards those of an online linear "
    "autoregression on its last LAGS values, by a weight learned from their past errors (with "
    "--relative last; 0: no autoregression)",
    "calibrate": "learning quantiles: widen or narrow each key's intervals as they miss, "
    "towards the nominal coverage (with --relative last)",
    "minimum": "lower bound of every forecast and quantile (0 for a target that cannot be "
    "negative)",
    "device": "where the model runs: cpu, or cuda (an NVIDIA GPU, pip install "
    "'streamrnn[cuda]')",
    "transform": "read the targets as log1p(value): learn relative changes, never forecast "
    "below 0; auto: log1p with --min 0 or more, or as --model learned",
    "tbptt": "k1,k2: a window closes every k1 steps and backpropagates k2 steps",
    "horizon": "steps ahead each output forecasts (0: the row's own targets)",
    "lookahead": "rows of the stream a row's output waits for the row its forecast is for, "
    "to write its target_time and TARGET_actual (empty when that row comes later or never)",
    "batch": "windows per update",
    "per_key": "every key learns its own weights",
    "season": "period in steps of the seasonal naive baseline (scored too): a number, "
    "none, or auto (24 for hourly data, 7 for daily, ...)",
    "chunk_rows": "input rows per chunk; memory follows it, results do not",
    "checkpoint_rows": "take a checkpoint after this many input rows",
    "checkpoint_seconds": "take a checkpoint after this many seconds (0: never by time)",
    "resume": "continue this job from its checkpoint in OUTPUT (or start it); with -o alone, "
    "go on with the settings OUTPUT holds",
    "overwrite": "replace a backfill's results in OUTPUT (other files are never touched)",
    "report": "report folder (default: OUTPUT/_report)",
    "plot_series": "series shown in the report's forecast plot",
    "states": "write each key's final hidden state to OUTPUT/_states.parquet",
    "hidden_states": "inference: add each row's hidden state (top layer) to the output",
    "progress": "auto: a live line on a terminal, log lines otherwise",
}


_METAVARS = {"key": "COLUMN", "time": "COLUMN", "features": "COLUMNS", "targets": "COLUMNS",
             "categorical": "COLUMNS", "ar": "LAGS",
             "missing": "POLICY", "column_types": "COLUMN=TYPE,...", "lookahead": "ROWS",
             "time_format": "FORMAT", "na_values": "TEXT,...",
             "chunk_rows": "ROWS", "checkpoint_rows": "ROWS"}  # fmt: skip
#: Options that may be given more than once: each time adds a format, or items to the list
#: (``--missing ffill --missing pm2.5=mask`` is ``--missing ffill,pm2.5=mask``).
_REPEATED = ("time_format", "column_types", "na_values", "categorical", "missing", "features",
             "targets", "quantiles")
#: How an error shows a value it leaves open (``Schema(time=...)``: ``--time COLUMN``).
_PLACEHOLDERS = {"key": "COLUMN", "time": "COLUMN", "features": "COLUMN,...",
                 "targets": "COLUMN,...", "missing": "POLICY", "column_types": "COLUMN=TYPE,...",
                 "calendar": "NAME,...", "categorical": "COLUMN,...", "time_format": "FORMAT",
                 "na_values": "TEXT,..."}  # fmt: skip
_EPILOG = """\
output: one row per row of the feed, in its order: the key, the time, target_time (the time of
the row the forecast is for, HORIZON rows later in the series), TARGET_forecast (and TARGET_qQ
per quantile), TARGET_actual (that row's value, as scored). Both are empty when that row came
more than --lookahead rows later or never (a series' last HORIZON rows), except target_time with
--grid (the row's time plus HORIZON steps); TARGET_actual also when the value is missing.

learner counts: windows closed (every k1 steps of a series, --tbptt); every --batch windows
make one update, unless none of their labels is known (a series' first HORIZON rows, missing
targets): such a batch teaches nothing and counts as no update; skipped: updates left out for a
non-finite loss or gradient (the weights were kept); labels: target values learned from.

exit status: 0 done; 1 the data does not fit the options, an INPUT of no rows (nothing is
written), a damaged output folder, or a write failure; 2 a bad option or job file (a value
not accepted, an INPUT or --model that does not exist, a column the input does not have, an
OUTPUT that holds results and needs --resume, --overwrite or a new folder); 70 unexpected
(please report it); 130/143 stopped by SIGINT/SIGTERM after a checkpoint.
"""


def _parser():
    parser = argparse.ArgumentParser(
        prog="streamrnn",
        description="streamrnn: compiled RNN, GRU and LSTM for streaming time series.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub = commands.add_parser(
        "backfill",
        help="run a model over history: files in, a Parquet dataset of forecasts out",
        description=backfill.__doc__.split("\n\n")[0].replace("\n", " ")
        + " Stopped or crashed runs continue with --resume, giving the same output bit for bit.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = backfill.Job()
    sub.add_argument("input", nargs="?", help=_HELP["input"])
    sub.add_argument("-o", "--output", help=_HELP["output"])
    sub.add_argument("--config", metavar="TOML", help="read options from this job file")
    for name in backfill.job_fields():
        if name in ("input", "output"):
            continue
        flag = "--" + name.replace("_", "-")
        default = getattr(defaults, name)
        text = _HELP[name]
        if isinstance(default, bool):
            sub.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                             help=text)  # fmt: skip
            continue
        kind = type(default) if isinstance(default, (int, float)) else str
        if name == "checkpoint_rows":
            kind = int
        elif name in ("checkpoint_seconds", "minimum", "decay"):
            kind = float
        choices = CHOICES.get(name)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        if name != "report" and shown is not None:
            text += f" (default: {shown})"
        flags = (flag, "--min") if name == "minimum" else (flag,)
        where = sub.add_mutually_exclusive_group() if name == "key" else sub
        metavar = None if choices else _METAVARS.get(name, name.upper())
        action = "append" if name in _REPEATED else "store"
        where.add_argument(*flags, type=kind, choices=choices, default=None, dest=name,
                           metavar=metavar, action=action, help=text)  # fmt: skip
        if name == "key":  # or --no-key: one series
            where.add_argument("--no-key", dest="key", action="store_const", const=False,
                               help=_HELP["no_key"])  # fmt: skip
    sub.add_argument("--dask", metavar="ADDRESS",
                     help="run on a Dask cluster, split by key: a scheduler's address, or "
                     "local:N for N worker processes on this machine (pip install "
                     "'streamrnn[dask]')")  # fmt: skip
    sub.add_argument("--shards", type=int, metavar="N",
                     help="with --dask: parts the keys are split into (default: twice the "
                     "workers' threads)")  # fmt: skip
    sub.add_argument("--no-report", action="store_true", help="make no report")
    sub.add_argument("--json", action="store_true", help="print the summary as JSON")
    ahead = commands.add_parser(
        "compile",
        help="compile the kernels ahead of time (for images, CI caches, cluster workers)",
        description="Compile the kernels that these cells, dtypes and modes use, or load them "
        "from the cache, so that the first backfill or learning call does not wait. The "
        "defaults are what a default backfill uses.",
    )
    ahead.add_argument("--cells", default="gru",
                       help="comma-separated among rnn, gru, lstm (default: gru)")  # fmt: skip
    ahead.add_argument("--dtypes", default="float32",
                       help="comma-separated: float32, float64 (default: float32)")  # fmt: skip
    ahead.add_argument("--modes", default="inference,learning",
                       help="comma-separated among inference, learning, per_key (--per-key), "
                       "seq2seq (default: inference,learning)")  # fmt: skip
    return parser


def _compile(args):
    """``streamrnn compile``: one line per kernel family, then where the cache is."""
    from . import compiling

    def names(text):
        return [v.strip() for v in text.split(",") if v.strip()]

    out = sys.stdout
    try:
        took = compiling.compile(names(args.cells), names(args.dtypes), names(args.modes))
    except ConfigError as exc:  # "cells must be among ..." -> "--cells: must be among ..."
        text = str(exc).replace("s must", "s: must", 1)
        sys.stderr.write(f"streamrnn compile: error: --{text}\n")
        return 2
    for (mode, cell, dtype), seconds in took.items():
        out.write(f"{mode:9s} {cell:4s} {dtype}: {seconds:6.1f} s\n")
    out.write(f"cache: {compiling.cache_dir()}\n")
    return 0


def _job(args, words):
    values = backfill.from_toml(args.config) if args.config else {}
    words.from_file = set(values)
    for name in backfill.job_fields():
        value = getattr(args, name, None)
        if isinstance(value, list) and name != "time_format":  # given more than once
            value = ",".join(value)
        if value is not None:
            values[name] = value
            words.from_file.discard(name)
    if args.no_report:
        values["report"] = None
    if values.get("resume") and values.get("output") and not values.get("input"):
        values = {**_saved_job(values["output"]), **values}
    missing = [n for n in ("input", "output") if not values.get(n)]
    if missing:
        raise ConfigError(
            f"missing {' and '.join(missing).upper()}: give the input path and -o OUTPUT "
            "(or input = ... and output = ... in the job file)"
        )
    return backfill.Job(**values)


def _refuse_empty(job):
    """An input with no rows is an error before anything is written: a backfill of it
    would leave an output of no columns. (``backfill.run`` takes one, for pipelines
    whose inputs may be empty.)"""
    job = checked(job)
    if holds_rows(job) is False:
        what = " (a header line, no lines of values)" if job.format == "csv" else ""
        raise InputError(
            f"input {job.input!r} holds no rows{what}; there is nothing to backfill, and "
            "nothing was written"
        )


def _saved_job(output):
    """The settings a backfill in ``output`` was started with (``--resume`` with no INPUT
    goes on with them); none when the folder holds no job."""
    found = owner(output) if os.path.isdir(output) else None
    if found is None:
        return {}
    saved = {k: v for k, v in found["identity"].items() if k in backfill.job_fields()}
    if saved.get("tbptt") is not None:
        saved["tbptt"] = tuple(saved["tbptt"])
    return saved


# -- errors in the command's words ----------------------------------------------------------
_CALL = re.compile(r"\b(?:feeds\.)?(?:Schema|Feed|iter_csv|iter_parquet|iter_ipc)\((?:\.\.\., )?"
                   r"(?P<args>[^()]*(?:\([^()]*\)[^()]*)*)\)")  # fmt: skip
_ARG = re.compile(r"(?<![\w.\-])(?P<name>[a-z_]+)=")
_ALTERNATIVE = re.compile(r"(,\s*|\s+or\s+)'([\w.:-]*)'")
_OPENS = {"[": "]", "(": ")", "{": "}", "<": ">"}
_LEADS = ("must", "names", "gives", "lists", "writes", "are", "is", "does", "apply", "applies",
          "and")  # fmt: skip


def _literal_end(text, i):
    """Where the Python literal starting at ``text[i]`` ends (brackets and quotes matched;
    else a run of name, number and dot characters)."""
    if i < len(text) and text[i] in "'\"":
        end = text.find(text[i], i + 1)
        return len(text) if end < 0 else end + 1
    if i < len(text) and text[i] in _OPENS:
        depth, quote = 0, None
        for j in range(i, len(text)):
            c = text[j]
            if quote:
                quote = None if c == quote else quote
            elif c in "'\"":
                quote = c
            elif c in _OPENS:
                depth += 1
            elif c in _OPENS.values():
                depth -= 1
                if not depth:
                    return j + 1
        return len(text)
    m = re.compile(r"[\w.+\-]*").match(text, i)
    return m.end()


def _value(text):
    """The Python literal ``text`` as a value: names other than True, False and None
    (``value``, ``...``) become Ellipsis, ``pa.float64()`` its type's name."""
    text = re.sub(r"\bpa\.(\w+)\(\)", lambda m: repr(m.group(1)), text)
    try:
        tokens = [
            (tokenize.OP, "...") if t.type == tokenize.NAME and t.string not in (
                "True", "False", "None") else (t.type, t.string)
            for t in tokenize.generate_tokens(io.StringIO(text).readline)
        ]  # fmt: skip
        return ast.literal_eval(tokenize.untokenize(tokens).strip())
    except (SyntaxError, ValueError, tokenize.TokenError):
        return ...


class _Words:
    """Rewrites Python spellings of the job's settings into options (see :func:`cli_words`)."""

    def __init__(self, fields, config=None):
        self.fields, self.config, self.from_file = set(fields), config, set()

    def flag(self, name):
        return "--" + name.replace("_", "-")

    def spell(self, name, value=None):
        """How to write setting ``name`` (with ``value``: Ellipsis for a placeholder)."""
        if name in self.from_file:
            text = f"{name}" if value is None else f"{name} = {self.toml(value)}"
            return f"{text} in {self.config}"
        if name == "key" and value is False:
            return "--no-key"
        if isinstance(value, bool):
            return self.flag(name) if value else "--no-" + self.flag(name)[2:]
        if value is None:
            return self.flag(name)
        return f"{self.flag(name)} {self.text(name, value)}"

    def text(self, name, value):
        """A value as the command line takes it."""
        if value is ...:
            return _PLACEHOLDERS.get(name, name.upper())
        if value is None:
            return "none"
        if isinstance(value, dict):
            return ",".join(f"{self.text('key', k)}={self.policy(v)}" for k, v in value.items())
        if isinstance(value, (list, tuple)):
            if name == "missing" and len(value) == 2 and value[0] == "ffill":
                return self.policy(value)
            if list(value) == [...]:  # [...]: one or more
                one = self.text(name, ...)
                return one if one.endswith(",...") else one + ",..."
            return ",".join(self.text(name, v) for v in value)
        return shlex.quote(value) if isinstance(value, str) else str(value)  # as typed in a shell

    def policy(self, value):
        """A value in a dict: a missing-value policy, a column, a category list."""
        if isinstance(value, tuple) and len(value) == 2 and value[0] == "ffill":
            return f"ffill:{'VALUE' if value[1] is ... else value[1]}"
        if isinstance(value, (list, tuple)):
            return "|".join("..." if v is ... else str(v) for v in value)
        return "COLUMN" if value is ... else str(value)

    def toml(self, value):
        if value is ...:
            return "..."
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, str):
            return json.dumps(value)
        if isinstance(value, dict):
            items = [f"{json.dumps(str(k)) if k is not ... else '...'} = {self.toml(v)}"
                     for k, v in value.items()]  # fmt: skip
            return "{" + ", ".join(items) + "}"
        if isinstance(value, (list, tuple)):
            return "[" + ", ".join(self.toml(v) for v in value) + "]"
        return str(value)

    def __call__(self, message):
        message = re.sub(r"^input '", "INPUT '", message)
        message = re.sub(r"^output '", "OUTPUT '", message)
        message = re.sub(r"\bin (?=(?:feeds\.)?Schema\()", "with ", message)
        message = re.sub(r"\b([a-z_]+) \((--[a-z-]+)((?: [^)]*)?)\)", self._paired, message)
        message = _CALL.sub(self._call, message)
        message = self._args(message)
        return self._lead(message)

    def _paired(self, m):  # "resume (--resume)": the option alone
        name, flag, rest = m.groups()
        if name in self.fields and flag == self.flag(name):
            return self.spell(name) + rest
        return m.group(0)

    def _call(self, m):  # "Schema(key=...)": the options it stands for
        args = m.group("args")
        names = [a.group("name") for a in _ARG.finditer(args)]
        if not names or any(n not in self.fields for n in names):
            return m.group(0)
        return self._args(args)

    def _args(self, text):
        out, i = [], 0
        for m in _ARG.finditer(text):
            if m.start() < i or m.group("name") not in self.fields:
                continue
            end = _literal_end(text, m.end())
            literal = text[m.end() : end]
            value = _value(literal) if literal else None
            if literal and value is None:  # "scale=None": the option's word for it
                value = "none"
            out += [text[i : m.start()], self.spell(m.group("name"), value)]
            i = end
            if isinstance(value, str) and m.group("name") not in self.from_file:
                while alt := _ALTERNATIVE.match(text, i):  # "missing='mask', 'ffill'"
                    out.append(alt.group(1) + alt.group(2))
                    i = alt.end()
        return "".join(out) + text[i:]

    def _lead(self, message):  # "hidden must be ...": the option
        words = message.split(" ")
        i = 0
        while i < len(words) and words[i] in self.fields:
            quoted = i + 1 < len(words) and words[i + 1][:1] in "'\""
            if words[i] == "key" and quoted:
                break  # "key 'a': ...": a series' key, not the option
            if i + 1 < len(words) and (words[i + 1] in _LEADS or words[i + 1][:1] in "'\"{["):
                words[i] = self.spell(words[i])
                i += 2 if words[i + 1] == "and" else len(words)
            else:
                break
        return " ".join(words)


def cli_words(message, config=None, from_file=()):
    """``message`` in the command's words: a setting's Python spelling
    (``Schema(key=...)``, ``missing='mask'``, ``hidden must be``) becomes its option
    (``--key COLUMN``, ``--missing mask``, ``--hidden must be``), or, for a setting
    read from the job file ``config`` (those named in ``from_file``), the file's key.

    Examples
    --------
    >>> cli_words("cannot tell the key column among string columns ['a', 'b']; name it "
    ...           "with Schema(key=...), or Schema(key=False) for one series")
    "cannot tell the key column among string columns ['a', 'b']; name it with --key COLUMN, \
or --no-key for one series"
    >>> cli_words("use missing={'pm2.5': ('ffill', value)} to fill until there is one")
    'use --missing pm2.5=ffill:VALUE to fill until there is one'
    >>> cli_words("hidden must be an integer >= 1, got 0", "job.toml", {"hidden"})
    'hidden in job.toml must be an integer >= 1, got 0'
    """
    words = _Words(backfill.job_fields(), config)
    words.from_file = set(from_file)
    return words(message)


def _print_summary(summary, out):
    out.write(f"backfill done: {summary['rows_in']:,} rows in, {summary['rows_out']:,} rows "
              f"out, {summary['series']:,} series")  # fmt: skip
    if summary.get("resumed_at"):
        out.write(f" (resumed at row {summary['resumed_at']:,})")
    out.write(f"\n  this run: {summary['seconds']:.2f} s, {summary['rows_per_s']:,.0f} rows/s\n")
    if summary.get("inputs"):
        out.write(f"  model inputs ({len(summary['inputs'])}): {', '.join(summary['inputs'])}\n")
    if summary.get("log1p_targets"):
        out.write(f"  read as log1p(value): {', '.join(summary['log1p_targets'])} (forecasts "
                  "turned back: never below 0; --transform)\n")
    scores = [(n, summary[n]) for n in ("mae", "rmse", "persistence_mae", "mase",
              "seasonal_mae", "mase_seasonal", "ar_mae", "mase_ar", "coverage")
              if n in summary]  # fmt: skip
    if scores:
        out.write("  " + ", ".join(f"{n} {v:.4g}" for n, v in scores))
        verdicts = [f"{'better' if summary[m] < 1 else 'worse'} than {b}"
                    for m, b in (("mase", "persistence"), ("mase_seasonal", "seasonal naive"),
                                 ("mase_ar", "AR(7)"))
                    if m in summary and not math.isnan(summary[m])]  # fmt: skip
        if verdicts:
            out.write(f" ({', '.join(verdicts)})")
        out.write("\n")
    if "updates" in summary:  # the counts are explained in --help
        out.write(f"  learner: {summary['windows']:,} windows, {summary['updates']:,} updates, "
                  f"{summary['skipped']:,} skipped, {summary['labels']:,} labels\n")  # fmt: skip
    out.write(f"  output: {summary['output']}\n")
    if "shards" in summary:
        out.write(f"  shards: {summary['shards']} (a folder each, with its checkpoint)\n")
    else:
        out.write(f"  checkpoint: {summary['checkpoint']}\n")
    if "report" in summary:
        out.write(f"  report: {summary['report']}\n")


_OPTION = re.compile(r"--?[A-Za-z][\w-]*(=.*)?", re.S)


def _glued(argv):
    """``argv`` with ``--na-values VALUE`` as ``--na-values=VALUE`` where VALUE starts with
    a dash (``-``, ``--``, ``-,n/a``), which argparse would take for an option."""
    out, i = [], 0
    while i < len(argv):
        word = argv[i]
        after = argv[i + 1] if i + 1 < len(argv) else None
        dashed = after is not None and after.startswith("-") and not _OPTION.fullmatch(after)
        if word == "--na-values" and dashed:
            out.append(f"{word}={after}")
            i += 2
            continue
        out.append(word)
        i += 1
    return out


@contextlib.contextmanager
def _dask_client(address):
    """A Dask client of the scheduler at ``address``, or of a ``local:N`` cluster of N
    worker processes made for this run."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError(
            "--dask needs Dask's distributed scheduler: pip install 'streamrnn[dask]'"
        ) from None
    if address.startswith("local:"):
        try:
            n = int(address[len("local:") :])
        except ValueError:
            n = 0
        if n < 1:
            raise ConfigError(f"--dask local:N needs a number of workers N >= 1, got {address!r}")
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=None)  # fmt: skip
        with cluster, Client(cluster) as client:
            yield client
        return
    with Client(address) as client:
        sys.stderr.write(f"streamrnn backfill: on Dask at {address}; dashboard: "
                         f"{client.dashboard_link}\n")  # fmt: skip
        yield client


def main(argv=None):
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(_glued(sys.argv[1:] if argv is None else list(argv)))
    if args.command == "compile":
        return _compile(args)
    if args.command != "backfill":
        parser.print_help()
        return 2
    err = sys.stderr
    words = _Words(backfill.job_fields(), args.config)
    shown = set()

    def warn(message, category, *rest, **kw):  # once each, in the command's words
        text = words(str(message))
        if text not in shown:
            shown.add(text)
            err.write(f"streamrnn backfill: warning: {text}\n")

    try:
        with warnings.catch_warnings():
            warnings.showwarning = warn
            job = _job(args, words)
            _refuse_empty(job)
            if args.dask:
                with _dask_client(args.dask) as client:
                    summary = backfill.run(job, out=err, client=client, shards=args.shards)
            else:
                summary = backfill.run(job)
    except backfill.Interrupted as exc:
        err.write(f"streamrnn backfill: {exc}\n")
        return 128 + exc.signum
    except KeyboardInterrupt:  # outside the loop: while starting or writing the report
        err.write("streamrnn backfill: interrupted; run again with --resume to go on\n")
        return 130
    except (ConfigError, feeds.ConfigError) as exc:
        err.write(f"streamrnn backfill: error: {words(str(exc))}\n")
        return 2
    except (StreamrnnError, feeds.FeedError, OSError) as exc:
        err.write(f"streamrnn backfill: error: {words(str(exc))}\n")
        return 1
    except Exception as exc:  # a fault of ours: one line, and what to report
        err.write(
            f"streamrnn backfill: internal error: {type(exc).__name__}: {exc} (please report "
            "it; the output and checkpoint written so far are intact)\n"
        )
        return 70
    if args.json:  # NaN (no score yet) as null: strict JSON
        clean = {k: None if isinstance(v, float) and not math.isfinite(v) else v
                 for k, v in summary.items()}  # fmt: skip
        print(json.dumps(clean, default=str))
    else:
        _print_summary(summary, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
