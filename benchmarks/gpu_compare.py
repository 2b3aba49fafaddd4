"""streamrnn's CUDA backend against PyTorch on the same GPU, same workloads, same process.

    python benchmarks/gpu_compare.py --out results.json          # on a machine with a GPU
    NUMBA_ENABLE_CUDASIM=1 python benchmarks/gpu_compare.py --smoke   # the script itself, on
                                                                      # the simulator, tiny

Workloads (float32, H=64, I=8 unless ``--smoke``), GRU and LSTM:

``forward``
    16,384 series x 256 steps from zero states: ``model.forward`` on the GPU
    against cuDNN's ``nn.GRU``/``nn.LSTM`` on the same tensors' sizes (inputs
    already on the device for PyTorch; streamrnn's figure includes sending the
    inputs over and the outputs back, which is what its NumPy interface does).
``keyed``
    100,000 series, a chunk of 100,000 interleaved rows (one row of every
    series, in a shuffled order) through ``Stream.update`` on the GPU, against
    PyTorch keeping every series' state in one tensor indexed by slot (gather
    the chunk's states, one cell step, scatter them back), and against this
    library's CPU backend on this machine's cores.
``one row``
    ``Stream.update`` of one row of one key from Python, end to end, and
    ``Series.step``.
``tbptt``
    16,384 series in step for 128 steps, k1 = k2 = 32, Adam, one update per 32
    steps of every series: ``OnlineLearner`` on the GPU against PyTorch's TBPTT
    recipe on cuDNN (each side starts from a fresh network every call).

Each figure is the median of ``--repeats`` timed calls after a warm-up call
(PyTorch: ``torch.cuda.synchronize()`` before the clock stops). Ratios are
``peer time / streamrnn time``: above 1, streamrnn is faster. The JSON (stdout,
and ``--out``) names the GPU.
"""

import argparse
import json
import platform
import statistics
import time

import numpy as np

import streamrnn

H, I = 64, 8


def median_seconds(fn, repeats, sync=None):
    fn()  # warm-up (compiles)
    if sync:
        sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def make(cell, device, hidden, inputs):
    family = {"gru": streamrnn.GRU, "lstm": streamrnn.LSTM}[cell]
    return family(inputs, hidden, seed=0, device=device)


def torch_peers(cell, hidden, inputs):
    """cuDNN's module and a cell for the keyed workload, on the GPU; None without one."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    torch.manual_seed(0)
    rnn = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell](inputs, hidden).cuda()
    step = {"gru": torch.nn.GRUCell, "lstm": torch.nn.LSTMCell}[cell](inputs, hidden).cuda()
    return torch, rnn, step


def forward(cell, sizes, repeats, out):
    n, T = sizes["series"], sizes["steps"]
    x = np.random.default_rng(0).standard_normal((T, n, I)).astype(np.float32)
    model = make(cell, "cuda", H, I)
    ours = median_seconds(lambda: model.forward(x), repeats)
    row = {"series": n, "steps": T, "streamrnn_s": ours}
    row["streamrnn_series_steps_per_s"] = n * T / ours
    peers = torch_peers(cell, H, I)
    if peers:
        torch, rnn, _ = peers
        xt = torch.from_numpy(x).cuda()
        with torch.no_grad():
            theirs = median_seconds(lambda: rnn(xt), repeats, torch.cuda.synchronize)
        row.update(cudnn_s=theirs, cudnn_series_steps_per_s=n * T / theirs, ratio=theirs / ours)
    out[f"forward_{cell}"] = row


def keyed(cell, sizes, repeats, out):
    n = sizes["keys"]
    rng = np.random.default_rng(1)
    keys = rng.permutation(n)
    x = rng.standard_normal((n, I)).astype(np.float32)
    row = {"keys": n, "rows": n}
    for device in ("cuda", "cpu"):
        stream = streamrnn.Stream(make(cell, device, H, I))
        seconds = median_seconds(lambda s=stream: s.update(keys, None, x), repeats)
        row[f"streamrnn_{device}_s"] = seconds
        row[f"streamrnn_{device}_rows_per_s"] = n / seconds
    row["ratio_vs_cpu_backend"] = row["streamrnn_cpu_s"] / row["streamrnn_cuda_s"]
    peers = torch_peers(cell, H, I)
    if peers:
        torch, _, step = peers
        k = 2 if cell == "lstm" else 1
        states = torch.zeros(k, n, H, device="cuda")
        slots = torch.from_numpy(keys).cuda()

        def pytorch_chunk():
            xt = torch.from_numpy(x).cuda()
            with torch.no_grad():
                if k == 2:
                    h, c = step(xt, (states[0, slots], states[1, slots]))
                    states[0, slots], states[1, slots] = h, c
                else:
                    h = step(xt, states[0, slots])
                    states[0, slots] = h
            return h.cpu()

        theirs = median_seconds(pytorch_chunk, repeats, torch.cuda.synchronize)
        row.update(pytorch_gather_step_scatter_s=theirs, ratio_vs_pytorch=theirs / row[
            "streamrnn_cuda_s"])  # fmt: skip
    out[f"keyed_{cell}"] = row


def learning(cell, sizes, repeats, out):
    """TBPTT with k1 = k2 = K and Adam, ``series`` series in step over ``learn_steps``
    steps, one update from every ``series`` windows: ``OnlineLearner`` on the GPU
    (chunks of ``K`` steps of every series) against PyTorch's recipe on cuDNN (run
    ``K`` steps, MSE, ``backward()``, one Adam step, detach the state)."""
    n, T, K = sizes["learn_series"], sizes["learn_steps"], sizes["k"]
    rng = np.random.default_rng(3)
    x = rng.standard_normal((T, n, I)).astype(np.float32)
    y = rng.standard_normal((T, n, 1)).astype(np.float32)
    keys = np.tile(np.arange(n), K)

    def ours():
        family = {"gru": streamrnn.GRU, "lstm": streamrnn.LSTM}[cell]
        model = family(I, H, output_size=1, seed=0, device="cuda")
        fresh = streamrnn.OnlineLearner(model, tbptt=(K, K), loss="mse", horizon=0, batch=n,
                                        optimizer=streamrnn.optim.Adam(),
                                        relative=None)  # fmt: skip
        for t in range(0, T, K):
            fresh.learn(keys, None, x[t : t + K].reshape(-1, I), y[t : t + K].reshape(-1, 1))

    seconds = median_seconds(ours, repeats)
    row = {"series": n, "steps": T, "k": K, "streamrnn_s": seconds,
           "streamrnn_series_steps_per_s": n * T / seconds}  # fmt: skip
    peers = torch_peers(cell, H, I)
    if peers:
        torch = peers[0]
        xt, yt = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()

        def theirs():
            torch.manual_seed(0)
            rnn = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell](I, H).cuda()
            head = torch.nn.Linear(H, 1).cuda()
            opt = torch.optim.Adam([*rnn.parameters(), *head.parameters()], lr=1e-3)
            state = None
            for t in range(0, T, K):
                h, state = rnn(xt[t : t + K], state)
                loss = torch.nn.functional.mse_loss(head(h), yt[t : t + K])
                opt.zero_grad()
                loss.backward()
                opt.step()
                state = tuple(v.detach() for v in state) if cell == "lstm" else state.detach()

        peer = median_seconds(theirs, repeats, torch.cuda.synchronize)
        row.update(cudnn_s=peer, cudnn_series_steps_per_s=n * T / peer, ratio=peer / seconds)
    out[f"tbptt_{cell}"] = row


def one_row(cell, repeats, out):
    model = make(cell, "cuda", H, I)
    stream = streamrnn.Stream(model)
    x = np.random.default_rng(2).standard_normal((1, I)).astype(np.float32)
    key = np.zeros(1, np.int64)
    series = streamrnn.Series(model)
    out[f"one_row_{cell}"] = {
        "stream_update_us": 1e6 * median_seconds(lambda: stream.update(key, None, x), repeats),
        "series_step_us": 1e6 * median_seconds(lambda: series.step(x[0]), repeats),
    }


def device_name():
    """The GPU's name, "simulator" on Numba's simulator, or "none"."""
    import numba
    from numba import cuda

    if numba.config.ENABLE_CUDASIM:
        return "simulator"
    if not cuda.is_available():
        return "none"
    name = cuda.get_current_device().name
    return name.decode() if isinstance(name, bytes) else str(name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes: check the script (on the simulator)")  # fmt: skip
    args = parser.parse_args()
    global H, I
    if args.smoke:
        H, I = 4, 3
        sizes = {"series": 8, "steps": 3, "keys": 16, "learn_series": 4, "learn_steps": 4,
                 "k": 2}  # fmt: skip
        args.repeats = 1
    else:
        sizes = {"series": 16_384, "steps": 256, "keys": 100_000, "learn_series": 16_384,
                 "learn_steps": 128, "k": 32}  # fmt: skip
    out = {}
    for cell in ("gru", "lstm"):
        forward(cell, sizes, args.repeats, out)
        keyed(cell, sizes, args.repeats, out)
        one_row(cell, args.repeats, out)
        learning(cell, sizes, args.repeats, out)
    out["machine"] = {"gpu": device_name(), "python": platform.python_version(),
                      "numpy": np.__version__, "hidden": H, "inputs": I,
                      "repeats": args.repeats, "smoke": args.smoke}  # fmt: skip
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
