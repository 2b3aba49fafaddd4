"""Stream the bundled hourly temperatures of Seattle and San Francisco (2010) through a model,
then backfill the year with a learning model and write a report.

    python -m streamrnn.demo [--chunk 2000] [--horizon 6] [--hidden 32] [--output demo-output]

The two cities' rows are written to a Parquet dataset (one file a month) and
read back a batch at a time by ``feeds.iter_parquet``. A feed puts each city on
an hourly grid (the source lacks the hour when daylight saving time began: the
empty bin is forward-filled and counted) and standardises temperatures per
city; a seeded, untrained GRU carries each city's state across chunks, and its
outputs and forecasts come back in degrees Fahrenheit. The run is repeated with
another chunk size to show that the outputs do not change by a bit.

Meanwhile another process compiles the learning kernels (on a first run), and
then the backfill job (what ``streamrnn backfill`` runs) learns a GRU
prequentially over the same dataset, forecasting each city's next hour with a
5%-95% interval (pinball loss), writes the forecasts to a Parquet dataset and
a report with plots, and prints where the report is.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import feeds
import streamrnn
from feeds.datasets import load_weather
from streamrnn.backfill import Job
from streamrnn.backfill import run as run_backfill
from streamrnn.compiling import said_on


def write_monthly(df, folder):
    """Write ``df`` as a Parquet dataset, one file per month, in time order."""
    months = df["time"].dt.to_period("M")
    for i, (_, part) in enumerate(df.groupby(months, sort=True)):
        table = pa.Table.from_pandas(part, preserve_index=False)
        pq.write_table(table, Path(folder) / f"part-{i:02d}.parquet")


def run(folder, model, chunk):
    """Outputs, the stream and the seconds taken, streaming ``folder`` in chunks."""
    schema = feeds.Schema(key="city", time="time", features=["temperature"],
                          targets=["temperature"])  # fmt: skip
    feed = feeds.Feed(schema, grid="1h", missing="ffill", scale="per_key")
    stream = streamrnn.Stream(model, feed=feed)
    start = time.perf_counter()
    outputs = [stream.update(c) for c in feeds.iter_parquet(folder, feed=feed, rows=chunk)]
    return np.concatenate(outputs), stream, time.perf_counter() - start


def main(argv=None):
    with said_on(sys.stdout):
        _main(argv)


def _main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunk", type=int, default=2000, help="rows per chunk")
    parser.add_argument("--horizon", type=int, default=6, help="hours to forecast")
    parser.add_argument("--hidden", type=int, default=32, help="GRU hidden size")
    parser.add_argument("--output", default="demo-output", help="folder of the backfill's results")
    args = parser.parse_args(argv)

    # the backfill's learning kernels compile on another core while the stream runs (if
    # no process can be started, the backfill compiles them itself)
    try:
        ahead = streamrnn.compile_in_background(modes=["learning"])
    except OSError:
        ahead = None
    if ahead is not None:
        print("streamrnn: compiling the learning kernels in another process meanwhile")
    try:
        stream_part(args)
        if ahead is not None:
            ahead.wait()
            ahead = None
    finally:
        if ahead is not None:  # the stream part failed or was interrupted
            ahead.kill()
            ahead.wait()
    backfill(load_weather(), args)


def stream_part(args):
    """Stream the year through a seeded GRU in two chunk sizes; print what it did and its
    forecasts."""
    df = load_weather()
    model = streamrnn.GRU(input_size=1, hidden_size=args.hidden, output_size=1, seed=0)
    print(f"data: {len(df):,} hourly temperatures (F) of {df['city'].nunique()} cities, "
          f"{df['time'].min():%Y-%m-%d} to {df['time'].max():%Y-%m-%d}")  # fmt: skip
    print(f"model: {model!r} (seeded, untrained)")
    with tempfile.TemporaryDirectory() as folder:
        write_monthly(df, folder)
        run(folder, model, args.chunk)  # compile the kernels before timing
        y, stream, seconds = run(folder, model, args.chunk)
        other = max(1, args.chunk // 7 + 1)
        y_other, _, _ = run(folder, model, other)

    counts = stream.feed.counts
    print(f"streamed {counts['rows_in']:,} rows in chunks of {args.chunk:,}: "
          f"{counts['rows_out']:,} rows on the hourly grid, "
          f"{counts['empty_bins']} empty bins forward-filled")  # fmt: skip
    print(f"throughput: {counts['rows_in'] / seconds:,.0f} rows/s from Parquet to outputs")
    print(f"same outputs with chunks of {other:,} rows: {bool((y_other == y).all())}")
    print("first hours (city, time, temperature -> output, F):")
    first = df.iloc[:4]
    for (city, t, temp), out in zip(first.itertuples(index=False), y[:4, 0]):
        print(f"  {city:14s} {t:%Y-%m-%d %H:%M}  {temp:6.1f} -> {out:6.1f}")
    forecast = stream.forecast(stream.keys(), args.horizon)
    for city, row in zip(stream.keys(), forecast[:, :, 0]):
        print(f"forecast {city}, next {args.horizon} hours: " + " ".join(f"{v:.1f}" for v in row))


def backfill(df, args):
    """Learn over the year with the backfill job; print its summary and report."""
    source = Path(args.output) / "weather-2010"
    if not source.exists():
        source.mkdir(parents=True)
        write_monthly(df, source)
    job = Job(str(source), str(Path(args.output) / "forecasts"), key="city", time="time",
              features=["temperature"], targets=["temperature"], grid="1h", missing="ffill",
              learn=True, hidden=args.hidden, quantiles=[0.05, 0.5, 0.95],
              chunk_rows=args.chunk, overwrite=True, progress="none")  # fmt: skip
    print(f"\nbackfill: learning a GRU({args.hidden}) over {source} (prequential, "
          "5%/50%/95% quantiles)")  # fmt: skip
    s = run_backfill(job)
    print(f"backfill: {s['rows_out']:,} forecasts in {s['seconds']:.1f} s, "
          f"{s['updates']:,} updates; next-hour MAE {s['mae']:.3f} F against persistence "
          f"{s['persistence_mae']:.3f} F (MASE {s['mase']:.2f}), the same hour the day "
          f"before {s['seasonal_mae']:.3f} F, an online AR(7) {s['ar_mae']:.3f} F; "
          f"{s['coverage']:.0%} of temperatures inside the 5%-95% interval")  # fmt: skip
    print(f"backfill: forecasts in {job.output}/ (Parquet dataset), checkpoint {s['checkpoint']}")
    print(f"report: {s['report']}")


if __name__ == "__main__":
    main()
