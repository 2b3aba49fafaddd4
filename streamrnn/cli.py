"""The ``streamrnn`` command: ``streamrnn backfill INPUT -o OUTPUT [options]``.

Options come from the command line or a TOML job file (``--config job.toml``,
keys named like the long options, at the top level or under ``[backfill]``);
the command line wins; paths in a job file are taken from the working folder.
Exit status: 0 done, 1 an error in the data, the folder's state or while
writing (the message says what and where), 2 a bad option or job file, 70 an
unexpected error (one line: please report it), 130 and 143 stopped by SIGINT
and SIGTERM after a checkpoint.
"""

import argparse
import json
import math
import sys

import feeds

from . import backfill
from .backfill.job import CHOICES
from .errors import ConfigError, StreamrnnError

_HELP = {
    "input": "Parquet file or dataset folder, CSV file, or Arrow IPC file to read",
    "output": "folder of the output Parquet dataset: new, empty, or this job's own",
    "format": "input format (auto: by suffix; a folder is Parquet)",
    "key": "key column (default: the one text column)",
    "time": "time column (default: the one timestamp column)",
    "features": "comma-separated input columns (default: every other numeric column)",
    "targets": "comma-separated target columns: what is forecast and scored",
    "grid": "put each series on a regular grid of this step, e.g. 1h",
    "missing": "missing values: error, ffill, mask, ... (see feeds.Feed)",
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
    "calibrate": "learning quantiles: widen or narrow each key's intervals as they miss, "
    "towards the nominal coverage (with --relative last)",
    "minimum": "lower bound of every forecast and quantile (0 for a target that cannot be "
    "negative)",
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
    "resume": "continue this job from its checkpoint in OUTPUT (or start it)",
    "overwrite": "replace a backfill's results in OUTPUT (other files are never touched)",
    "report": "report folder (default: OUTPUT/_report)",
    "plot_series": "series shown in the report's forecast plot",
    "states": "write each key's final hidden state to OUTPUT/_states.parquet",
    "hidden_states": "inference: add each row's hidden state (top layer) to the output",
    "progress": "auto: a live line on a terminal, log lines otherwise",
}


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

exit status: 0 done; 1 bad data, the folder's state or a write failure; 2 bad options; 70
unexpected (please report); 130/143 stopped by SIGINT/SIGTERM after a checkpoint.
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
        sub.add_argument(*flags, type=kind, choices=choices, default=None, dest=name,
                         metavar=None if choices else name.upper(), help=text)  # fmt: skip
    sub.add_argument("--no-report", action="store_true", help="make no report")
    sub.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def _job(args):
    values = backfill.from_toml(args.config) if args.config else {}
    for name in backfill.job_fields():
        value = getattr(args, name, None)
        if value is not None:
            values[name] = value
    if args.no_report:
        values["report"] = None
    missing = [n for n in ("input", "output") if not values.get(n)]
    if missing:
        raise ConfigError(
            f"missing {' and '.join(missing).upper()}: give the input path and -o OUTPUT "
            "(or input = ... and output = ... in the job file)"
        )
    return backfill.Job(**values)


def _print_summary(summary, out):
    out.write(f"backfill done: {summary['rows_in']:,} rows in, {summary['rows_out']:,} rows "
              f"out, {summary['series']:,} series")  # fmt: skip
    if summary.get("resumed_at"):
        out.write(f" (resumed at row {summary['resumed_at']:,})")
    out.write(f"\n  this run: {summary['seconds']:.2f} s, {summary['rows_per_s']:,.0f} rows/s\n")
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
    out.write(f"  output: {summary['output']}\n  checkpoint: {summary['checkpoint']}\n")
    if "report" in summary:
        out.write(f"  report: {summary['report']}\n")


def main(argv=None):
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command != "backfill":
        parser.print_help()
        return 2
    err = sys.stderr
    try:
        job = _job(args)
        summary = backfill.run(job)
    except backfill.Interrupted as exc:
        err.write(f"streamrnn backfill: {exc}\n")
        return 128 + exc.signum
    except KeyboardInterrupt:  # outside the loop: while starting or writing the report
        err.write("streamrnn backfill: interrupted; run again with --resume to go on\n")
        return 130
    except ConfigError as exc:
        err.write(f"streamrnn backfill: error: {exc}\n")
        return 2
    except (StreamrnnError, feeds.FeedError, OSError) as exc:
        err.write(f"streamrnn backfill: error: {exc}\n")
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
