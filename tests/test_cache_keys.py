"""Numba's cache of the package's kernels is keyed to the contents of all its compiled sources:
an edit to a callee's module alone recompiles its callers, and nothing else does."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numba import njit
from numba.core import caching
from numba.core import config as numba_config

import streamrnn
from streamrnn import compiling
from streamrnn.core import _cache, cells

ROOT = Path(streamrnn.__file__).resolve().parent.parent

# cells.rnn_update (in cells.py) takes its tanh from _activations.py; it compiles in
# about a second, and its result tells which version of tanh its machine code holds.
_STEP = """
import json
import numpy as np
from streamrnn.core import cells
h = np.zeros(1)
cells.rnn_update(0, np.array([0.5]), h, 1)
stats = cells.rnn_update.stats
print(json.dumps({"h": h[0], "hits": sum(stats.cache_hits.values()),
                  "misses": sum(stats.cache_misses.values()),
                  "path": stats.cache_path, "file": cells.__file__}))
"""

_TANH = "            return _libm(context, builder, math.tanh, v)\n"
_TANH_EDITED = _TANH.replace(", v)", ", builder.fadd(v, ir.Constant(v.type, 1.0)))")  # tanh(x + 1)


@pytest.fixture
def copy(tmp_path):
    """A copy of the packages' sources, without compiled entries."""
    root = tmp_path / "src"
    for name in ("streamrnn", "feeds"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _step(root, cache):
    """Run the step once in a fresh process that imports the copy in ``root``."""
    env = {**os.environ, "PYTHONPATH": str(root), "NUMBA_CACHE_DIR": str(cache)}
    env.pop("NUMBA_CACHE_LOCATOR_CLASSES", None)
    done = subprocess.run(
        [sys.executable, "-c", _STEP], cwd=root, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout.splitlines()[-1])
    assert Path(said["file"]).resolve() == (root / "streamrnn" / "core" / "cells.py").resolve()
    return said


def _edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_an_edit_to_a_callee_module_alone_recompiles_its_callers(copy, tmp_path):
    cache = tmp_path / "cache"
    package = copy / "streamrnn"
    first = _step(copy, cache)
    assert (first["misses"], first["hits"]) == (1, 0)
    assert first["h"] == pytest.approx(np.tanh(0.5))
    assert Path(first["path"]).name == _cache.digest_of(package)[:16]
    assert Path(first["path"]).parent.parent == cache

    # A new timestamp on a compiled module, and an edit to a module without compiled
    # code, leave the cache as it was.
    os.utime(package / "core" / "_activations.py", ns=(1, 1))
    with open(package / "cli.py", "a") as f:
        f.write("# an edit outside the kernels\n")
    again = _step(copy, cache)
    assert (again["misses"], again["hits"]) == (0, 1)
    assert again["path"] == first["path"]

    # Only _activations.py changes: cells.rnn_update is compiled again, with the new tanh.
    _edit(package / "core" / "_activations.py", _TANH, _TANH_EDITED)
    edited = _step(copy, cache)
    assert (edited["misses"], edited["hits"]) == (1, 0)
    assert edited["h"] == pytest.approx(np.tanh(1.5))
    assert edited["path"] != first["path"]

    # Back to the first version: its entries are still there.
    _edit(package / "core" / "_activations.py", _TANH_EDITED, _TANH)
    back = _step(copy, cache)
    assert (back["misses"], back["hits"]) == (0, 1)
    assert back["h"] == first["h"] and back["path"] == first["path"]


def test_the_digest_follows_contents_of_compiled_sources_at_any_depth(tmp_path):
    package = tmp_path / "streamrnn"
    shutil.copytree(ROOT / "streamrnn", package, ignore=shutil.ignore_patterns("__pycache__"))
    start = _cache.digest_of(package)
    assert start == _cache.digest_of(ROOT / "streamrnn")

    os.utime(package / "core" / "cells.py", ns=(1, 1))
    with open(package / "stream.py", "a") as f:
        f.write("# no compiled code here\n")
    assert _cache.digest_of(package) == start

    digests = {start}
    for edit in (
        lambda: _edit(package / "config.py", "PARALLEL_MIN_SERIES = 8", "PARALLEL_MIN_SERIES = 9"),
        lambda: _edit(package / "core" / "_simd.py", "ROW_BLOCK", "ROW_BLOCK "),
        # a module whose kernels are declared with the package's own decorator (@kernel)
        lambda: _edit(package / "core" / "cells.py", "RNN_TANH = 0", "RNN_TANH = 0  # Elman"),
        lambda: (package / "extra").mkdir(),
        lambda: (package / "extra" / "kernels.py").write_text("@njit\ndef f():\n    return 1\n"),
        lambda: _edit(package / "extra" / "kernels.py", "1", "2"),
    ):
        edit()
        digests.add(_cache.digest_of(package))
    assert len(digests) == 6  # every edit but the new empty folder changes it


def _outside(x):
    return x + 1


def test_only_functions_of_the_package_are_keyed_to_its_sources(tmp_path, monkeypatch):
    monkeypatch.setattr(numba_config, "CACHE_DIR", str(tmp_path))
    assert _cache.PackageLocator.from_function(_outside, __file__) is None
    dispatcher = njit(cache=True)(_outside)  # numba's own locator takes it
    subpath = caching._CacheLocator.get_suitable_cache_subpath(__file__)
    assert dispatcher.stats.cache_path == os.path.join(tmp_path, subpath)

    version = _cache.sources_digest()[:16]
    inner = ROOT / "streamrnn" / "backfill" / "runner.py"  # a subpackage
    locator = _cache.PackageLocator.from_function(_outside, str(inner))
    assert locator.get_source_stamp() == _cache.sources_digest()
    path = Path(locator.get_cache_path())
    assert path.name == version and path.parent.name.startswith("backfill_")

    _cache.install()
    _cache.install()
    locators = _cache._CACHE_IMPL._locator_classes
    assert locators[0] is _cache.PackageLocator and locators.count(_cache.PackageLocator) == 1


def test_compile_notices_and_the_cache_folder_agree_with_numba():
    assert compiling._sources_stamp() == _cache.sources_digest()
    assert compiling.cache_dir() == Path(cells.rnn_update.stats.cache_path)
    assert compiling.cache_dir().name == _cache.sources_digest()[:16]
