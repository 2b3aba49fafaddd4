"""Compile the CUDA backend's kernels to PTX on a machine without a GPU.

    pip install nvidia-cuda-nvcc-cu12        # NVIDIA's compiler library (libnvvm), 40 MB
    python benchmarks/cuda_compile_check.py [--cc 9.0]

The simulator (``tests/test_cuda.py``) runs the kernels' logic in Python; it
does not show that the CUDA compiler accepts them. This script does: it
compiles every kernel (forward, rollouts, learning and gradients; every cell,
both dtypes: the cell is a run-time value) for a
compute capability (9.0, Hopper, by default) with NVIDIA's NVVM, and prints
one JSON line per kernel. Without a driver, numba.cuda cannot ask a device for
its compute capability when a kernel calls another compiled function (the cell
updates), so the script answers for it with ``--cc``.
"""

import argparse
import glob
import json
import os
import sys


def _locate_nvvm():
    """Point numba.cuda at the libnvvm and libdevice of an installed nvidia-cuda-nvcc."""
    if "NUMBA_CUDA_NVVM" in os.environ:
        return
    for root in sys.path:
        nvvm = glob.glob(os.path.join(root, "nvidia", "cuda_nvcc", "nvvm", "lib64", "libnvvm.so*"))
        if nvvm:
            os.environ["NUMBA_CUDA_NVVM"] = nvvm[0]
            os.environ["NUMBA_CUDA_LIBDEVICE"] = os.path.join(os.path.dirname(nvvm[0]), "..",
                                                              "libdevice")  # fmt: skip
            return
    sys.exit("no libnvvm found: pip install nvidia-cuda-nvcc-cu12 (or set NUMBA_CUDA_NVVM)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cc", default="9.0", help="compute capability (default 9.0)")
    args = parser.parse_args()
    cc = tuple(int(v) for v in args.cc.split("."))
    _locate_nvvm()
    import numba.cuda.api as api
    import numba.cuda.dispatcher as dispatcher
    from numba import cuda, float32, float64, int64

    class Device:  # the one answer the compiler needs from a device
        compute_capability = cc
        id = 0

    api.get_current_device = dispatcher.get_current_device = Device

    from streamrnn.core import gpu, gpu_learn

    i1, i2, f1, f2 = int64[:], int64[:, :], float64[:], float64[:, :]
    for ty in (float32, float64):
        v, m, t3 = ty[:], ty[:, :], ty[:, :, :]
        kernels = {
            (gpu, "run_series"): (i1, v, m, i1, m, m, m),
            (gpu, "roll_out"): (i1, v, m, m, i2, t3, t3, m),
            (gpu_learn, "learn_rows"): (i1, v, m, m, i1, m, t3, i2, i2, m, m, f2, m, i1, f1),
            (gpu_learn, "learn_keys"): (
                i1,
                m,
                m,
                m,
                i1,
                m,
                t3,
                i2,
                i2,
                m,
                m,
                m,
                m,
                i2,
                i1,
                f2,
                i2,
                m,
                i1,
                f1,
                f1,
                i1,
                f1,
                i2,
            ),
            (gpu_learn, "windows"): (i1, v, m, m, m, m, f2, m, m, i1, f1),
            (gpu_learn, "add_rows"): (m, int64, v),
        }
        for (module, name), signature in kernels.items():
            ptx, _ = cuda.compile_ptx(getattr(module, name).py_func, signature, cc=cc)
            print(json.dumps({"kernel": name, "dtype": str(ty), "cc": args.cc,
                              "ptx_bytes": len(ptx)}))  # fmt: skip


if __name__ == "__main__":
    main()
