"""Compile the CUDA backend's kernels to PTX on a machine without a GPU.

    pip install nvidia-cuda-nvcc-cu12        # NVIDIA's compiler library (libnvvm), 40 MB
    python benchmarks/cuda_compile_check.py [--cc 9.0]

The simulator (``tests/test_cuda.py``) runs the kernels' logic in Python; it
does not show that the CUDA compiler accepts them. This script does: it
compiles ``run_series`` and ``roll_out`` (every cell, both dtypes) for a
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

    from streamrnn.core import gpu

    i1, i2 = int64[:], int64[:, :]
    for ty in (float32, float64):
        kernels = {
            "run_series": (i1, ty[:], ty[:, :], i1, ty[:, :], ty[:, :], ty[:, :]),
            "roll_out": (i1, ty[:], ty[:, :], ty[:, :], i2, ty[:, :, :], ty[:, :, :], ty[:, :]),
        }
        for name, signature in kernels.items():
            ptx, _ = cuda.compile_ptx(getattr(gpu, name).py_func, signature, cc=cc)
            print(json.dumps({"kernel": name, "dtype": str(ty), "cc": args.cc,
                              "ptx_bytes": len(ptx)}))  # fmt: skip


if __name__ == "__main__":
    main()
