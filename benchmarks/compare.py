"""streamrnn against PyTorch on the CPU, same workloads, same process.

Prints a table and, last, one JSON document with every timing and ratio.
Ratios are ``peer time / streamrnn time`` (above 1: streamrnn is faster),
from the medians of interleaved repeats, so machine noise hits both sides.

    python benchmarks/compare.py                 # H in 16, 64, 256; GRU and LSTM
    python benchmarks/compare.py --hidden 64 --quick
"""

import argparse
import json
import os
import platform

import numba
import numpy as np
import torch
from suite.common import median_times

import streamrnn

I = 8
TARGETS = {  # at H=64: minimum speed-up, by workload and cell
    ("step", "gru"): 10,
    ("step", "lstm"): 10,
    ("sequence", "gru"): 20,
    ("sequence", "lstm"): 2,
    ("batch-2t", "gru"): 2.5,
    ("batch-2t", "lstm"): 2,
    ("keyed", "gru"): 10,
    ("keyed", "lstm"): 10,
}


def threads(n):
    torch.set_num_threads(n)
    numba.set_num_threads(n)


def models(cell, H, seed=0):
    cls = streamrnn.GRU if cell == "gru" else streamrnn.LSTM
    ours = cls(I, H, dtype="float32", seed=seed)
    rnn, _ = ours.to_torch()
    return ours, rnn


def bench_step(cell, H, repeats, n_steps):
    threads(1)
    ours, rnn = models(cell, H)
    torch_cell = (torch.nn.GRUCell if cell == "gru" else torch.nn.LSTMCell)(I, H)
    torch_cell.load_state_dict({k[:-3]: v for k, v in rnn.state_dict().items()})
    xs = np.random.default_rng(0).standard_normal((n_steps, I)).astype(np.float32)
    xt = torch.from_numpy(xs)[:, None, :]
    series = streamrnn.Series(ours)
    series.step(xs[0])

    def run_ours():
        step = series.step
        for x in xs:
            step(x)

    if cell == "gru":

        def run_peer():
            with torch.inference_mode():
                h = torch.zeros(1, H)
                for x in xt:
                    h = torch_cell(x, h)
    else:

        def run_peer():
            with torch.inference_mode():
                hc = (torch.zeros(1, H), torch.zeros(1, H))
                for x in xt:
                    hc = torch_cell(x, hc)

    t_ours, t_peer = median_times([run_ours, run_peer], repeats)
    return t_ours / n_steps, t_peer / n_steps, "s/step"


def _forward_times(cell, H, repeats, shape, seed):
    """Median seconds of one ``forward`` over data of ``shape``: (ours, PyTorch)."""
    ours, rnn = models(cell, H)
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    xt = torch.from_numpy(x)
    ours.forward(x)

    def run_peer():
        with torch.inference_mode():
            rnn(xt)

    return median_times([lambda: ours.forward(x), run_peer], repeats)


def bench_sequence(cell, H, repeats, T=4096):
    threads(1)
    t_ours, t_peer = _forward_times(cell, H, repeats, (T, I), seed=1)
    return T / t_ours, T / t_peer, "steps/s"


def bench_batch(cell, H, repeats, n_threads, B=1024, T=256):
    threads(n_threads)
    t_ours, t_peer = _forward_times(cell, H, repeats, (T, B, I), seed=2)
    return B * T / t_ours, B * T / t_peer, "series-steps/s"


def bench_keyed(cell, H, repeats, n_keys=10_000, chunk=10_000, n_chunks=4):
    """Each chunk: every key once, in a fresh random order (a fleet reporting).

    Both sides use every core (each library's default).
    """
    threads(os.cpu_count())
    ours, rnn = models(cell, H)
    rng = np.random.default_rng(3)
    chunks = [
        (rng.permutation(n_keys)[:chunk], rng.standard_normal((chunk, I)).astype(np.float32))
        for _ in range(n_chunks)
    ]
    times = np.arange(n_chunks)

    def run_ours():
        stream = streamrnn.Stream(ours)
        for t, (keys, x) in zip(times, chunks):
            stream.update(keys, np.full(len(keys), t), x)

    zero = torch.zeros(rnn.num_layers, H)

    def run_peer():
        states = {}
        with torch.inference_mode():
            for keys, x in chunks:
                klist = keys.tolist()
                if cell == "gru":
                    h = torch.stack([states.get(k, zero) for k in klist], dim=1)
                    y, hn = rnn(torch.from_numpy(x)[None], h)
                    for i, k in enumerate(klist):
                        states[k] = hn[:, i]
                else:
                    h = torch.stack([states[k][0] if k in states else zero for k in klist], 1)
                    c = torch.stack([states[k][1] if k in states else zero for k in klist], 1)
                    y, (hn, cn) = rnn(torch.from_numpy(x)[None], (h, c))
                    for i, k in enumerate(klist):
                        states[k] = (hn[:, i], cn[:, i])

    run_ours()
    t_ours, t_peer = median_times([run_ours, run_peer], repeats)
    rows = chunk * n_chunks
    return rows / t_ours, rows / t_peer, "rows/s"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--cells", nargs="+", default=["gru", "lstm"])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    rep = 3 if args.quick else 7
    rows = []
    for H in args.hidden:
        for cell in args.cells:
            few = 3 if H >= 256 else rep
            work = [
                ("step", bench_step, (cell, H, rep, 2000)),
                ("sequence", bench_sequence, (cell, H, rep)),
                ("batch-1t", bench_batch, (cell, H, few, 1)),
                ("batch-2t", bench_batch, (cell, H, few, 2)),
                ("keyed", bench_keyed, (cell, H, few)),
            ]
            for name, fn, fn_args in work:
                ours, peer, unit = fn(*fn_args)
                ratio = peer / ours if unit.startswith("s/") else ours / peer
                target = TARGETS.get((name, cell)) if H == 64 else None
                row = dict(
                    workload=name,
                    cell=cell,
                    hidden=H,
                    unit=unit,
                    streamrnn=ours,
                    pytorch=peer,
                    speedup=round(ratio, 2),
                    target=target,
                    met=None if target is None else bool(ratio >= target),
                )
                rows.append(row)
                mark = "" if target is None else (" ok" if ratio >= target else " MISSED")
                print(
                    f"{name:9s} {cell:4s} H={H:<4d} streamrnn {ours:10.4g}  pytorch "
                    f"{peer:10.4g} {unit:15s} x{ratio:6.2f}"
                    + ("" if target is None else f"  (target x{target}{mark})"),
                    flush=True,
                )
    meta = dict(
        machine=platform.machine(),
        processor=platform.processor(),
        cpus=os.cpu_count(),
        torch=torch.__version__,
        numba=numba.__version__,
        numpy=np.__version__,
        streamrnn=streamrnn.__version__,
        input_size=I,
        dtype="float32",
    )
    print(json.dumps(dict(meta=meta, results=rows), indent=1))


if __name__ == "__main__":
    main()
