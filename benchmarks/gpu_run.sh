#!/usr/bin/env bash
# The CUDA backend's checks on a machine with an NVIDIA GPU, in one command:
#
#     bash benchmarks/gpu_run.sh            # results in $OUT, or ./gpu-results
#
# It runs tests/test_cuda.py on the device (STREAMRNN_TEST_DEVICE=cuda: every test
# the simulator runs in `make test`, against the CPU backend) and
# benchmarks/gpu_compare.py (against cuDNN and PyTorch on the same GPU), and writes
# what they print, the JUnit XML and the JSON under the results folder, beside
# nvidia-smi's report. The machine needs numba, numba-cuda, NumPy below 2.5,
# pandas, pyarrow, torch with CUDA, pytest and hypothesis; wheels in .whl/ (for a
# machine without network: numpy 2.4, pytest, hypothesis and their pure-Python
# dependencies, for its Python) are installed into .site/ first and put on the path.
set -u
cd "$(dirname "$0")/.."
out=${OUT:-gpu-results}
mkdir -p "$out"
path=$PWD
if compgen -G ".whl/*.whl" > /dev/null; then
    python -m pip install --no-index --no-deps --target .site .whl/*.whl -q > "$out/install.txt" 2>&1
    path=$PWD/.site:$PWD
fi
export PYTHONPATH=$path
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
python -c "import numpy, numba; print('numpy', numpy.__version__, 'numba', numba.__version__)" \
    > "$out/versions.txt" 2>&1
STREAMRNN_TEST_DEVICE=cuda timeout 420 python -m pytest -q -p no:cacheprovider \
    tests/test_cuda.py --junitxml "$out/test_cuda.xml" > "$out/test_cuda.txt" 2>&1
echo "exit status $?" >> "$out/test_cuda.txt"
timeout 420 python benchmarks/gpu_compare.py --out "$out/gpu_compare.json" \
    > "$out/gpu_compare.txt" 2>&1
echo "exit status $?" >> "$out/gpu_compare.txt"
tail -n 3 "$out/test_cuda.txt" "$out/gpu_compare.txt"
