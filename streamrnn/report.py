"""The report folder of a backfill job: a batch run of a model over history.

:func:`write_report` writes into one folder ``forecast.png`` (actual against
forecast for a few sample series, each panel titled with its series and how many
of its points it shows, the prediction interval shaded),
``error_over_time.png`` (MAE of the model and of its baselines per bucket of
scored rows: persistence, the seasonal naive forecast and the online linear
autoregression, those that have forecasts), ``learning_curve.png`` (their
running MAE against the rows scored), and ``index.html`` and ``report.md``,
which show the summary table and the three images with captions. The page is
self-contained: no scripts, no outside resources. A plot without data is drawn
as a "no data" image, so the pages never show a broken image. Every file is
replaced whole (written under a temporary name, then renamed), ``index.html``
last: a page that is there shows images that are there.

Plots are drawn on their own :class:`matplotlib.figure.Figure`, leaving the
caller's pyplot state and backend alone. matplotlib is needed by this module
only, and imported when it is called.
"""

import html
import io
import math
import numbers
from pathlib import Path

import numpy as np
import pandas as pd

from . import checkpoint
from .errors import InputError

#: The files the report writes.
FILES = ("forecast.png", "error_over_time.png", "learning_curve.png", "index.html", "report.md")
DPI = 100
WIDTH = 10.0  # inches, every image
PANEL_HEIGHT = 3.0  # inches, one forecast panel
PLOT_HEIGHT = 3.5  # inches, error over time and learning curve
MAX_SERIES = 6  # forecast panels at most
CURVE_COLUMNS = ("rows", "time", "mae", "persistence_mae", "running_mae", "running_persistence_mae")
SAMPLE_COLUMNS = ("time", "actual", "forecast")
#: The baselines drawn beside the model: column prefix, legend label, caption text, line style.
BASELINES = (
    ("persistence", "persistence", "persistence (the last known value)", "tab:gray", "--"),
    ("seasonal", "seasonal naive", "the seasonal naive forecast (the value one season before)",
     "tab:green", ":"),
    ("ar", "online AR", "an online linear autoregression (recursive least squares on the last "
     "few values)", "tab:orange", "-."),
)  # fmt: skip


def write_report(
    folder,
    *,
    title,
    summary,
    curve,
    samples,
    target,
    interval=None,
    key=None,
    points=None,
    horizon=None,
):
    """Write the plots, ``index.html`` and ``report.md`` of a backfill job into ``folder``.

    Parameters
    ----------
    folder : str or os.PathLike
        Created if missing, parents too. The five files in it are overwritten,
        each replaced whole (written to a temporary name, then renamed).
    title : str
        Title of the page.
    summary : dict
        Name -> int, float, str or None, shown as a table in this order. Ints
        get thousands separators; floats are rounded to 4 significant digits
        (``5475.0`` shows as ``5,475``, ``0.21345`` as ``0.2135``); NaN shows as
        ``n/a`` and None as an empty cell.
    curve : pandas.DataFrame
        One row per bucket of consecutive scored rows, with columns ``rows``
        (scored rows at the bucket's end, increasing), ``time`` (the bucket's
        last label time: datetimes, possibly tz-aware, or numbers), ``mae`` and
        ``persistence_mae`` (within the bucket), ``running_mae`` and
        ``running_persistence_mae`` (up to the bucket's end); optionally
        ``seasonal_mae``, ``ar_mae`` and their ``running_`` twins. A baseline's
        columns may be all NaN (it is then not drawn); other columns are
        ignored. May have no rows.
    samples : dict
        Series key -> DataFrame with columns ``time``, ``actual``, ``forecast``
        and optionally ``lo`` and ``hi``, the interval bounds, in time order.
        The first six are plotted. May be empty.
    target : str
        Name of the target, for the axes.
    interval : str, optional
        Label of the interval, such as ``"5%-95%"``.
    key : str or False, optional
        The key column's name: a panel is titled ``"<key> <series key>"``;
        False: the data is one series, titled with the target's name; None
        (default): ``"series <series key>"``.
    points : int, optional
        The most points a sample holds (its series' last ones): titles and the
        caption say whether a panel shows a series' last ``points`` or all of them.
    horizon : int, optional
        Rows ahead each forecast was made, for the caption.

    Returns
    -------
    pathlib.Path
        The HTML page.

    Raises
    ------
    InputError
        A column is missing from ``curve`` (when it has rows) or from a sample,
        or a ``time`` column holds neither datetimes nor numbers.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> from streamrnn.report import write_report
    >>> curve = pd.DataFrame({"rows": [100, 200], "time": [99, 199], "mae": [0.5, 0.3],
    ...                       "persistence_mae": [0.9, 0.8], "running_mae": [0.5, 0.4],
    ...                       "running_persistence_mae": [0.9, 0.85]})
    >>> sample = pd.DataFrame({"time": [197, 198, 199], "actual": [0.1, 0.4, 0.2],
    ...                        "forecast": [0.2, 0.3, 0.3]})
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     page = write_report(folder, title="backfill of wave", summary={"mae": 0.4},
    ...                         curve=curve, samples={"wave": sample}, target="wave")
    ...     sorted(path.name for path in page.parent.iterdir())
    ['error_over_time.png', 'forecast.png', 'index.html', 'learning_curve.png', 'report.md']
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError("write_report needs matplotlib: pip install matplotlib") from err
    if len(curve):
        _check_columns(curve, CURVE_COLUMNS, "curve")
        x_axes = {
            "time": _axis_values(curve["time"], "curve"),
            "rows": (curve["rows"].to_numpy(dtype=float), "rows scored"),
        }
    shown = []
    for name, frame in list(samples.items())[:MAX_SERIES]:
        _check_columns(frame, SAMPLE_COLUMNS, f"samples[{name!r}]")
        shown.append((name, frame, *_axis_values(frame["time"], f"samples[{name!r}]")))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def new_figure(height):
        fig = Figure(figsize=(WIDTH, height), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        return fig

    fig = new_figure(PANEL_HEIGHT * max(len(shown), 1))
    if not shown:
        _no_data(fig.add_subplot())
    for i, (name, frame, x, xlabel) in enumerate(shown):
        ax = fig.add_subplot(len(shown), 1, i + 1)
        ax.set_title(_panel_title(name, frame, target, key, points), loc="left")
        _plot_sample(ax, frame, x, xlabel, target, interval)
    _save_png(fig, folder / "forecast.png")

    drawn = [b for b in BASELINES if len(curve) and _has_values(curve, f"{b[0]}_mae")]
    for name, x_column, prefix, what in [
        ("error_over_time.png", "time", "", "MAE in the bucket"),
        ("learning_curve.png", "rows", "running_", "running MAE"),
    ]:
        ax = (fig := new_figure(PLOT_HEIGHT)).add_subplot()
        if len(curve):
            x, xlabel = x_axes[x_column]
            _lines(ax, x, curve, prefix, drawn, what)
            _format_axes(ax, xlabel, f"{what} ({target})", x)
        else:
            _no_data(ax)
        _save_png(fig, folder / name)

    band = f", with the {interval} prediction interval shaded" if interval else ""
    more = f" (the first {MAX_SERIES} of {len(samples)})" if len(samples) > MAX_SERIES else ""
    against = f"the model and of {_and([b[2] for b in drawn])}" if drawn else "the model"
    which = "the series" if key is False else f"sample series{more}"
    made = "" if horizon is None else (
        f", each forecast made {horizon} row{'s' * (horizon != 1)} before the value it is for"
        if horizon else ", each forecast made at its own row")  # fmt: skip
    last = "" if points is None else f": at most the last {points:,} scored points of each"
    images = [
        ("forecast.png", "forecasts", f"Actual and forecast {target} of {which}{last}{made}"
         f"{band}."),
        ("error_over_time.png", "error over time", f"MAE of {against} within each bucket of "
         "consecutive scored rows, at the time of its last label (a baseline's on the rows "
         "where it has a forecast)."),
        ("learning_curve.png", "learning curve", f"Running MAE of {against} up to each "
         "bucket's end, against the rows scored so far."),
    ]  # fmt: skip
    rows = [(str(name), _format_value(value)) for name, value in summary.items()]
    _write_atomic(folder / "report.md", _markdown(title, rows, images).encode())
    page = folder / "index.html"
    _write_atomic(page, _html(title, rows, images).encode())
    return page


def _panel_title(name, frame, target, key, points):
    """A forecast panel's title: its series, and which of its points it shows."""
    series = target if key is False else f"{key or 'series'} {name}"
    if points is None or not len(frame):
        return series
    n = len(frame)
    return f"{series}: {'last' if n >= points else 'all'} {n:,} scored points"


def _check_columns(frame, required, what):
    missing = [name for name in required if name not in frame.columns]
    if missing:
        raise InputError(
            f"{what} is missing the column {missing[0]!r}; it needs {', '.join(required)}"
        )


def _format_value(value):
    """Text of one summary value (see :func:`write_report`)."""
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_ | str):
        return str(value)
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        if math.isnan(value):
            return "n/a"
        rounded = float(f"{value:.4g}")
        if rounded.is_integer() and abs(rounded) < 1e15:
            return f"{rounded:,.0f}"
        return f"{rounded:.4g}"
    return str(value)


def _axis_values(time, what):
    """Values matplotlib can plot, and the axis label: tz-aware times as local wall times."""
    time = pd.Series(time)
    if isinstance(time.dtype, pd.DatetimeTZDtype):
        return time.dt.tz_localize(None).to_numpy(), f"time ({time.dt.tz})"
    if pd.api.types.is_datetime64_dtype(time.dtype):
        return time.to_numpy(), "time"
    try:
        return time.to_numpy(dtype=float), "time"
    except (TypeError, ValueError) as err:
        raise InputError(
            f"{what} column 'time' has dtype {time.dtype}; give datetimes or numbers"
        ) from err


def _plot_sample(ax, frame, time, label, target, interval):
    if not len(frame):
        _no_data(ax)
        return
    if "lo" in frame.columns and "hi" in frame.columns:
        lo, hi = frame["lo"].to_numpy(dtype=float), frame["hi"].to_numpy(dtype=float)
        ax.fill_between(
            time, lo, hi, color="tab:blue", alpha=0.2, lw=0, label=interval or "interval"
        )
    ax.plot(time, frame["actual"].to_numpy(dtype=float), color="black", lw=1, label="actual")
    ax.plot(time, frame["forecast"].to_numpy(dtype=float), color="tab:blue", lw=1, label="forecast")
    _format_axes(ax, label, target, time)


def _has_values(curve, column):
    return column in curve.columns and bool(np.isfinite(curve[column].to_numpy(float)).any())


def _and(items):
    return ", ".join(items[:-1]) + (" and " if len(items) > 1 else "") + items[-1]


def _lines(ax, x, curve, prefix, baselines, what):
    """The model's line, then each baseline's (``prefix`` picks the running columns)."""
    ax.plot(x, curve[f"{prefix}mae"].to_numpy(dtype=float), color="tab:blue",
            label=f"model {what}")  # fmt: skip
    for name, label, _, color, style in baselines:
        values = curve[f"{prefix}{name}_mae"].to_numpy(dtype=float)
        ax.plot(x, values, color=color, ls=style, label=f"{label} {what}")


def _format_axes(ax, xlabel, ylabel, x):
    if np.issubdtype(x.dtype, np.datetime64):
        from matplotlib import dates

        locator = dates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")


def _no_data(ax):
    ax.set_axis_off()
    ax.text(0.5, 0.5, "no data", ha="center", va="center", fontsize=14, transform=ax.transAxes)


def _save_png(fig, path):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    fig.clear()
    _write_atomic(path, buffer.getvalue())


def _write_atomic(path, data):
    checkpoint.write_atomic(path, lambda f: f.write(data))


def _markdown(title, rows, images):
    def text(value):
        return html.escape(value, quote=False).replace("|", "\\|").replace("\n", " ")

    lines = [f"# {text(title)}", ""]
    if rows:
        lines += ["| measure | value |", "| --- | ---: |"]
        lines += [f"| {text(name)} | {text(value)} |" for name, value in rows]
        lines.append("")
    for src, alt, caption in images:
        lines += [f"![{alt}]({src})", "", text(caption), ""]
    return "\n".join(lines)


def _html(title, rows, images):
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        f"<title>{e(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1040px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .75em}"
        "td.value{text-align:right}img{max-width:100%}figcaption{color:#555}</style>",
        "</head>",
        "<body>",
        f"<h1>{e(title)}</h1>",
    ]
    if rows:
        parts.append("<table>")
        parts.append("<tr><th>measure</th><th>value</th></tr>")
        parts += [f'<tr><td>{e(n)}</td><td class="value">{e(v)}</td></tr>' for n, v in rows]
        parts.append("</table>")
    for src, alt, caption in images:
        parts.append(f'<figure><img src="{src}" alt="{alt}"><figcaption>{e(caption)}</figcaption>')
        parts.append("</figure>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)
