"""streamrnn against PyTorch on the CPU, same workloads, same process.

Prints a table and, last, one JSON document with every timing and ratio.
Ratios are ``peer time / streamrnn time`` (above 1: streamrnn is faster),
from the medians of interleaved repeats, so machine noise hits both sides.

Neither side disturbs the other (``suite.common.times_apart``): before each
timed call, that side's thread count is set (``numba.set_num_threads`` for
streamrnn, ``torch.set_num_threads`` for PyTorch; the workload's count, the
same for both) and the process sleeps ``--pause`` seconds (0.05). Idle OpenMP
threads (PyTorch's, and Numba's ``omp`` layer where kernels use ``prange``)
keep a core busy for 5-10 ms after a call returns (measured on 2 cores: about
one core for 5 ms, 0.1-0.4 of one for 5 ms more); the pause lets them sleep
before the other side's call. On a quiet machine, strict alternation
(``--pause 0``) measured the same within noise (an 11 ms 2-thread ``nn.GRU``
call straight after a 10,000-key ``Stream.update`` on ``prange`` kernels:
10.7, 11.0 and 12.0 ms in three rounds of 40 calls; after the pause: 10.6,
11.3 and 12.5 ms), so the pause is a guard for short calls, not a correction.

What does spoil a figure is another process on the machine: PyTorch's
2-thread ``nn.GRU`` fell from about 800,000 to 20,000-40,000 series-steps/s
while another process kept one of two cores busy. So a row whose PyTorch
figure is an outlier is measured again (both sides, after waiting up to
``--wait-quiet`` seconds for other processes to leave the CPUs idle), at
most ``--retries`` times: when one PyTorch repeat took over twice the median
of the others, or when the 2-thread figure is under half the 1-thread
figure scaled to 2 threads. The table and the JSON (``repeated``,
``repeat_reasons``, ``pytorch_tries``, ``pytorch_outlier``) say which rows
were measured again and why, and ``other_cores`` how busy the rest of the
machine was while the kept figures were taken. streamrnn's figures are never
the reason for a repeat.

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
from suite import common
from suite.common import PAUSE, add_measuring_options, outlier, steady

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


#: How each pair of sides is timed, from the command line.
SCHEDULE = dict(pause=PAUSE)


def threads(n):
    torch.set_num_threads(n)
    numba.set_num_threads(n)


def pair_times(run_ours, run_peer, repeats, n_threads):
    """:func:`suite.common.pair_times` with PyTorch as the peer and the ``--pause`` given."""
    return common.pair_times(run_ours, run_peer, repeats, n_threads, torch.set_num_threads,
                             SCHEDULE["pause"])  # fmt: skip


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

    t_ours, t_peer, peer_times = pair_times(run_ours, run_peer, repeats, 1)
    return t_ours / n_steps, t_peer / n_steps, "s/step", peer_times


def _forward_times(cell, H, repeats, shape, seed, n_threads):
    """Median seconds of one ``forward`` over data of ``shape``: (ours, PyTorch, every
    PyTorch repeat)."""
    ours, rnn = models(cell, H)
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    xt = torch.from_numpy(x)
    ours.forward(x)

    def run_peer():
        with torch.inference_mode():
            rnn(xt)

    return pair_times(lambda: ours.forward(x), run_peer, repeats, n_threads)


def bench_sequence(cell, H, repeats, T=4096):
    threads(1)
    t_ours, t_peer, peer_times = _forward_times(cell, H, repeats, (T, I), seed=1, n_threads=1)
    return T / t_ours, T / t_peer, "steps/s", peer_times


def bench_batch(cell, H, repeats, n_threads, B=1024, T=256):
    threads(n_threads)
    t_ours, t_peer, peer_times = _forward_times(
        cell, H, repeats, (T, B, I), seed=2, n_threads=n_threads
    )
    return B * T / t_ours, B * T / t_peer, "series-steps/s", peer_times


def bench_keyed(cell, H, repeats, n_keys=10_000, chunk=10_000, n_chunks=4):
    """Each chunk: every key once, in a fresh random order (a fleet reporting).

    Both sides use every core (each library's default).
    """
    n_threads = os.cpu_count()
    threads(n_threads)
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
    t_ours, t_peer, peer_times = pair_times(run_ours, run_peer, repeats, n_threads)
    rows = chunk * n_chunks
    return rows / t_ours, rows / t_peer, "rows/s", peer_times


def doubt_peer(result, n_threads, one_thread):
    """Why a row's PyTorch figure looks disturbed, or None (see the module docstring)."""
    _, peer, unit, peer_times = result
    reason = outlier(peer_times)
    if reason is not None:
        return f"PyTorch: {reason}"
    if one_thread is not None and n_threads > 1 and peer < one_thread * n_threads / 2:
        return (
            f"PyTorch at {n_threads} threads under half its 1-thread figure "
            f"({one_thread:,.4g} {unit}) scaled to {n_threads} threads"
        )
    return None


def print_notes(row, tries, doubt, cpu):
    """Indented lines under a table row: tries set aside, a doubt kept, a busy machine."""
    for result, reason in tries:
        print(f"    measured again: {reason} (PyTorch {result[1]:.4g} {row['unit']})", flush=True)
    if doubt is not None:
        print(f"    kept, still doubtful after {len(tries)} more tries: {doubt}", flush=True)
    if cpu["other_cores"] is not None and cpu["other_cores"] >= 0.3:
        print(f"    other processes kept {cpu['other_cores']:.1f} cores busy meanwhile", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--cells", nargs="+", default=["gru", "lstm"])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    add_measuring_options(parser)
    args = parser.parse_args()
    SCHEDULE["pause"] = args.pause
    rep = 3 if args.quick else 7
    rows = []
    for H in args.hidden:
        for cell in args.cells:
            few = 3 if H >= 256 else rep
            work = [
                ("step", 1, bench_step, (cell, H, rep, 2000)),
                ("sequence", 1, bench_sequence, (cell, H, rep)),
                ("batch-1t", 1, bench_batch, (cell, H, few, 1)),
                ("batch-2t", 2, bench_batch, (cell, H, few, 2)),
                ("keyed", os.cpu_count(), bench_keyed, (cell, H, few)),
            ]
            one_thread = None  # PyTorch's batch-1t figure, to check batch-2t's against
            for name, n_threads, fn, fn_args in work:
                base = one_thread if name.startswith("batch-") else None
                (ours, peer, unit, _), cpu, tries, doubt = steady(
                    lambda fn=fn, fn_args=fn_args: fn(*fn_args),
                    lambda result, n=n_threads, base=base: doubt_peer(result, n, base),
                    args.retries,
                    args.wait_quiet,
                )
                if name == "batch-1t":
                    one_thread = peer
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
                    threads=n_threads,
                    repeated=len(tries),
                    repeat_reasons=[reason for _, reason in tries],
                    pytorch_tries=[result[1] for result, _ in tries],
                    pytorch_outlier=doubt,
                    other_cores=cpu["other_cores"],
                )
                rows.append(row)
                mark = "" if target is None else (" ok" if ratio >= target else " MISSED")
                print(
                    f"{name:9s} {cell:4s} H={H:<4d} streamrnn {ours:10.4g}  pytorch "
                    f"{peer:10.4g} {unit:15s} x{ratio:6.2f}"
                    + ("" if target is None else f"  (target x{target}{mark})"),
                    flush=True,
                )
                print_notes(row, tries, doubt, cpu)
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
        pause_s=args.pause,
        retries=args.retries,
        wait_quiet_s=args.wait_quiet,
    )
    print(json.dumps(dict(meta=meta, results=rows), indent=1))


if __name__ == "__main__":
    main()
