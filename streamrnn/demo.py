"""Stream a generated multi-series feed through a seeded model.

    python -m streamrnn.demo [--series 500] [--hours 720] [--chunk 5000]

Each of ``--series`` sensors reports once an hour (a daily cycle with its own
phase and amplitude, plus noise); rows of all sensors arrive interleaved in
chunks of ``--chunk`` rows. A seeded, untrained GRU carries every sensor's
hidden state across chunks; the demo prints a few outputs, a forecast, and the
throughput.
"""

import argparse
import time

import numpy as np

import streamrnn


def sensor_feed(n_series, hours, seed=0):
    """Long-format rows ordered by time: keys, times (hours), readings (N, 1)."""
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, n_series)
    amp = rng.uniform(0.5, 2.0, n_series)
    t = np.repeat(np.arange(hours), n_series)
    keys = np.tile(np.arange(n_series), hours)
    x = amp[keys] * np.sin(2 * np.pi * t / 24 + phase[keys]) + 0.1 * rng.standard_normal(t.size)
    return keys, t, x[:, None].astype(np.float32)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=500)
    parser.add_argument("--hours", type=int, default=720)
    parser.add_argument("--chunk", type=int, default=5000)
    args = parser.parse_args(argv)

    keys, times, x = sensor_feed(args.series, args.hours)
    model = streamrnn.GRU(input_size=1, hidden_size=32, output_size=1, seed=0)
    stream = streamrnn.Stream(model)
    print(f"model: {model!r}")
    print(
        f"feed: {args.series} sensors x {args.hours} hours = {len(keys):,} rows, "
        f"chunks of {args.chunk:,} rows"
    )

    warm = streamrnn.Stream(model)  # compile the kernels before timing
    warm.update(keys[: args.chunk], times[: args.chunk], x[: args.chunk])
    start = time.perf_counter()
    first = None
    for a in range(0, len(keys), args.chunk):
        y = stream.update(
            keys[a : a + args.chunk], times[a : a + args.chunk], x[a : a + args.chunk]
        )
        first = y if first is None else first
    elapsed = time.perf_counter() - start

    print("first rows (sensor, hour, reading -> output):")
    for r in range(3):
        print(f"  {keys[r]:4d} {times[r]:5d} {x[r, 0]:8.4f} -> {first[r, 0]:8.4f}")
    print(f"forecast of sensor 0, next 6 hours: {np.round(stream.forecast([0], 6)[0, :, 0], 4)}")
    print(
        f"throughput: {len(keys):,} rows in {elapsed:.3f} s = {len(keys) / elapsed:,.0f} rows/s "
        f"({len(stream):,} series held)"
    )


if __name__ == "__main__":
    main()
