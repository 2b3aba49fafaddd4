"""Online learning, streamrnn against PyTorch's recipe on the CPU, same process.

PyTorch's recipe for truncated backpropagation through time: run ``k`` steps,
take the mean squared error, ``backward()``, one Adam step, detach the state.
streamrnn runs the same schedule with ``OnlineLearner(tbptt=(k, k), batch=n)``
(one update from the windows of the ``n`` series), float32, Adam, MSE.

Prints a table and, last, one JSON document. Ratios are ``streamrnn steps/s /
PyTorch steps/s`` from medians of interleaved repeats.

The sides are timed as in ``compare.py`` (see its docstring for the
measurements behind this): before each timed call, that side's thread count
is set (``numba.set_num_threads`` or ``torch.set_num_threads``, the workload's
count) and the process sleeps ``--pause`` seconds (0.05), so that the idle
OpenMP threads of the other library have stopped spinning. A row whose
PyTorch figure holds an outlier (one repeat over twice the median of the
others) is measured again, both sides, after waiting up to ``--wait-quiet``
seconds for other processes to leave the CPUs idle, at most ``--retries``
times; the table and the JSON (``repeated``, ``repeat_reasons``,
``pytorch_tries``, ``pytorch_outlier``, ``other_cores``) say so.

    python benchmarks/learn_compare.py            # GRU and LSTM, H=64, k=32
    python benchmarks/learn_compare.py --quick
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
K = 32
TARGETS = {  # minimum speed-up at H=64, k1 = k2 = 32
    ("one series", "gru"): 40,
    ("one series", "lstm"): 10,
    ("64 series", "gru"): 2,
    ("64 series", "lstm"): 2,
    ("10,000 keyed", "gru"): 10,
    ("10,000 keyed", "lstm"): 10,
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


def model(cell, H):
    cls = streamrnn.GRU if cell == "gru" else streamrnn.LSTM
    return cls(I, H, output_size=1, dtype="float32", seed=0)


#: What the learner's outputs are: levels, as PyTorch's recipe learns (``--relative none``),
#: or changes from the last value, shrunk, as a forecasting learner has them by default.
RELATIVE = {"none": None, "last": "last"}
_relative = [None]


def learner(cell, H, n_series):
    """A fresh learner: Adam, MSE, one update from every ``n_series`` windows."""
    return streamrnn.OnlineLearner(
        model(cell, H), tbptt=(K, K), loss="mse", optimizer=streamrnn.optim.Adam(), horizon=0,
        batch=n_series, relative=_relative[0],
    )  # fmt: skip


def twin(cell, H):
    """The same initial network in PyTorch, with Adam."""
    rnn, head = model(cell, H).to_torch()
    opt = torch.optim.Adam(list(rnn.parameters()) + list(head.parameters()), lr=1e-3)
    return rnn, head, opt


def detach(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def bench_lockstep(cell, H, repeats, n_threads, n_series, T):
    """``n_series`` series in step for ``T`` steps. PyTorch takes ``K`` steps at a
    time (its recipe); streamrnn chunks of at least 1,024 rows (any cut gives the
    same weights)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, n_series, I)).astype(np.float32)
    y = rng.standard_normal((T, n_series, 1)).astype(np.float32)
    span = max(K, 1024 // n_series)
    keys = np.tile(np.arange(n_series), span)
    chunks = [
        (x[t : t + span].reshape(-1, I), y[t : t + span].reshape(-1, 1)) for t in range(0, T, span)
    ]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def run_ours():
        fresh = learner(cell, H, n_series)
        for xc, yc in chunks:
            fresh.learn(keys, None, xc, yc)

    def run_peer():
        rnn, head, opt = twin(cell, H)
        state = None
        for t in range(0, T, K):
            out, state = rnn(xt[t : t + K], state)
            loss = torch.nn.functional.mse_loss(head(out), yt[t : t + K])
            opt.zero_grad()
            loss.backward()
            opt.step()
            state = detach(state)

    run_ours()
    t_ours, t_peer, peer_times = pair_times(run_ours, run_peer, repeats, n_threads)
    steps = T * n_series
    return steps / t_ours, steps / t_peer, peer_times


def bench_keyed(cell, H, repeats, n_threads, n_keys=10_000, n_chunks=2 * K):
    """Every chunk holds each key once, in a fresh random order (a fleet reporting);
    one update from all keys every ``K`` chunks."""
    rng = np.random.default_rng(3)
    chunks = [
        (
            rng.permutation(n_keys),
            rng.standard_normal((n_keys, I)).astype(np.float32),
            rng.standard_normal((n_keys, 1)).astype(np.float32),
        )
        for _ in range(n_chunks)
    ]

    def run_ours():
        fresh = learner(cell, H, n_keys)
        for keys, x, y in chunks:
            fresh.learn(keys, None, x, y)

    def run_peer():
        rnn, head, opt = twin(cell, H)
        zero = torch.zeros(rnn.num_layers, n_keys, H)
        hs = zero.clone()
        cs = zero.clone()
        losses = []
        for i, (keys, x, y) in enumerate(chunks):
            idx = torch.from_numpy(keys)
            h = hs[:, idx]
            if cell == "gru":
                out, hn = rnn(torch.from_numpy(x)[None], h)
            else:
                out, (hn, cn) = rnn(torch.from_numpy(x)[None], (h, cs[:, idx]))
                cs = cs.index_copy(1, idx, cn)
            hs = hs.index_copy(1, idx, hn)
            losses.append(torch.nn.functional.mse_loss(head(out[0]), torch.from_numpy(y)))
            if (i + 1) % K == 0:
                opt.zero_grad()
                torch.stack(losses).mean().backward()
                opt.step()
                losses = []
                hs, cs = hs.detach(), cs.detach()

    run_ours()
    t_ours, t_peer, peer_times = pair_times(run_ours, run_peer, repeats, n_threads)
    rows = n_keys * n_chunks
    return rows / t_ours, rows / t_peer, peer_times


def doubt_peer(result):
    """Why a row's PyTorch figure looks disturbed, or None (see the module docstring)."""
    reason = outlier(result[2])
    return None if reason is None else f"PyTorch: {reason}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--cells", nargs="+", default=["gru", "lstm"])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument(
        "--relative",
        choices=sorted(RELATIVE),
        default="none",
        help="streamrnn's outputs: levels (as PyTorch's recipe) or changes "
        "from the last value, shrunk (a forecasting learner's default)",
    )
    add_measuring_options(parser)
    args = parser.parse_args()
    _relative[0] = RELATIVE[args.relative]
    SCHEDULE["pause"] = args.pause
    rep = 3 if args.quick else 5
    H = args.hidden
    cores = os.cpu_count()
    rows = []
    for cell in args.cells:
        work = [
            ("one series", 1, bench_lockstep, (cell, H, rep, 1, 1, 4096)),
            ("64 series", cores, bench_lockstep, (cell, H, rep, cores, 64, 1024)),
            ("10,000 keyed", cores, bench_keyed, (cell, H, max(2, rep - 2), cores)),
        ]
        for name, n_threads, fn, fn_args in work:
            threads(n_threads)
            (ours, peer, _), cpu, tries, doubt = steady(
                lambda fn=fn, fn_args=fn_args: fn(*fn_args),
                doubt_peer,
                args.retries,
                args.wait_quiet,
            )
            ratio = ours / peer
            target = TARGETS.get((name, cell)) if H == 64 else None
            rows.append(
                dict(workload=name, cell=cell, hidden=H, threads=n_threads,
                     unit="series-steps/s", streamrnn=ours, pytorch=peer,
                     speedup=round(ratio, 2), target=target,
                     met=None if target is None else bool(ratio >= target),
                     repeated=len(tries), repeat_reasons=[reason for _, reason in tries],
                     pytorch_tries=[result[1] for result, _ in tries], pytorch_outlier=doubt,
                     other_cores=cpu["other_cores"])
            )  # fmt: skip
            mark = "" if target is None else (" ok" if ratio >= target else " MISSED")
            print(
                f"{name:13s} {cell:4s} H={H:<3d} threads={n_threads}  streamrnn {ours:11,.0f}  "
                f"pytorch {peer:11,.0f} series-steps/s  x{ratio:6.2f}"
                + ("" if target is None else f"  (target x{target}{mark})"),
                flush=True,
            )
            for result, reason in tries:
                print(f"    measured again: {reason} (PyTorch {result[1]:,.0f})", flush=True)
            if doubt is not None:
                print(
                    f"    kept, still doubtful after {len(tries)} more tries: {doubt}", flush=True
                )
            if cpu["other_cores"] is not None and cpu["other_cores"] >= 0.3:
                busy = cpu["other_cores"]
                print(f"    other processes kept {busy:.1f} cores busy meanwhile", flush=True)
    meta = dict(
        machine=platform.machine(), processor=platform.processor(), cpus=cores,
        torch=torch.__version__, numba=numba.__version__, numpy=np.__version__,
        streamrnn=streamrnn.__version__, input_size=I, k1=K, k2=K, dtype="float32",
        optimizer="Adam(lr=1e-3)", loss="mse", relative=args.relative, pause_s=args.pause,
        retries=args.retries, wait_quiet_s=args.wait_quiet,
    )  # fmt: skip
    print(json.dumps(dict(meta=meta, results=rows), indent=1))


if __name__ == "__main__":
    main()
