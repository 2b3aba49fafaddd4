"""Numba's disk cache for this package, keyed to the contents of all its compiled sources.

Numba stamps a cached function with its own source file only, so a kernel whose
callees live in other modules (a loop kernel in ``kernels.py`` inlines a cell
step from ``cells.py``, which inlines the activations of ``_activations.py``)
would load old machine code after one of those modules alone was edited.
:class:`PackageLocator` stamps every function defined under this package's
folder, at any depth, with one digest instead: the contents of each module here
that holds compiled code (a line that applies ``njit``, ``jit``,
``intrinsic``, ``overload``, ``register_jitable``, ``generated_jit``, ...), of
each ``config.py`` (the compile flags), and Numba's version. Editing any of them
recompiles the kernels on their next use; editing a module without compiled code
(the command line, the readers) does not. Constants that kernels read as
globals are frozen into their machine code, so they belong in a module that
holds compiled code or in ``config.py``.

Entries go where Numba would put them (under ``NUMBA_CACHE_DIR`` when it is set,
else in the ``__pycache__`` folder beside the source when that is writable, else
under the user's cache folder), in a subfolder named by the first 16 hex digits
of the digest: two versions of the sources never read each other's entries, and
going back to an earlier version finds its entries still there. Subfolders of
earlier versions stay until removed (``make clean``).

:func:`install` puts the locator at the front of Numba's list of locators;
:mod:`streamrnn.config`, which every kernel module imports before it compiles
anything, calls it. Functions outside this package are left to Numba's own
locators. A list set in ``NUMBA_CACHE_LOCATOR_CLASSES`` replaces Numba's list,
and with it this locator.
"""

import functools
import hashlib
import os
import re
import tempfile
from pathlib import Path

import numba
from numba.core import caching
from numba.core import config as numba_config
from numba.misc.appdirs import AppDirs

#: This package's folder as imported (the folder Numba sees in each function's file name).
_FOLDER = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: The same folder with links resolved, to tell whether a file lies inside it.
_RESOLVED = Path(_FOLDER).resolve()

#: A line that applies a Numba decorator, bare or through a module (``@numba.njit``),
#: or one of :mod:`streamrnn.core.jit`'s (``@kernel``), at any indentation.
_COMPILED = re.compile(
    rb"^[ \t]*@(?:\w+\.)*(?:njit|jit|intrinsic|register_jitable|overload|generated_jit"
    rb"|vectorize|guvectorize|cfunc|stencil|kernel|exact_kernel|inline)",
    re.M,
)

# Numba names the class that holds the list of locators CacheImpl (earlier _CacheImpl).
_CACHE_IMPL = getattr(caching, "CacheImpl", None) or caching._CacheImpl


def digest_of(folder):
    """The hex SHA-256 of Numba's version and of the path and contents of every ``.py``
    file under ``folder`` (at any depth) that holds compiled code or is a ``config.py``.

    Examples
    --------
    >>> from streamrnn.core import _cache
    >>> len(_cache.digest_of(_cache._FOLDER))
    64
    """
    folder = Path(folder)
    digest = hashlib.sha256(f"numba {numba.__version__}\n".encode())
    files = {path.relative_to(folder).as_posix(): path for path in folder.rglob("*.py")}
    for name in sorted(files):
        if "__pycache__" in name.split("/"):
            continue
        text = files[name].read_bytes()
        if files[name].name != "config.py" and not _COMPILED.search(text):
            continue  # nothing compiled in it
        digest.update(f"{name}\n{len(text)}\n".encode())
        digest.update(text)
    return digest.hexdigest()


@functools.cache
def sources_digest():
    """:func:`digest_of` this package's folder, computed once per process."""
    return digest_of(_FOLDER)


@functools.cache
def _in_package(py_file):
    try:
        path = Path(py_file).resolve()
    except (OSError, RuntimeError):
        return False
    return _RESOLVED in path.parents and path.is_file()


def _folders(py_file):
    """Where Numba would cache the functions of ``py_file``, in its order of preference,
    each with the digest's subfolder."""
    py_file = os.path.abspath(py_file)
    subpath = caching._CacheLocator.get_suitable_cache_subpath(py_file)
    version = sources_digest()[:16]
    if numba_config.CACHE_DIR:
        yield os.path.join(numba_config.CACHE_DIR, subpath, version)
    yield os.path.join(os.path.dirname(py_file), "__pycache__", version)
    user = AppDirs(appname="numba", appauthor=False).user_cache_dir
    yield os.path.join(user, subpath, version)


def _writable(folder):
    """Whether ``folder`` exists or can be made, and takes a file (Numba's test)."""
    try:
        os.makedirs(folder, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return False
    return True


def cache_folder(py_file=None):
    """The folder where the functions of ``py_file`` (by default, of the compiled core,
    :mod:`streamrnn.core`) are cached: the first of Numba's choices that is writable,
    or the last one when none is.

    Examples
    --------
    >>> from streamrnn.core import _cache
    >>> _cache.cache_folder().endswith(_cache.sources_digest()[:16])
    True
    """
    for folder in _folders(py_file or os.path.join(_FOLDER, "core", "__init__.py")):
        if _writable(folder):
            return folder
    return folder


class PackageLocator(caching._CacheLocator):
    """Caches a function of this package under the digest of all its compiled sources;
    :meth:`from_function` gives None for a function defined elsewhere.

    Examples
    --------
    >>> import os
    >>> from streamrnn.core import _cache, cells
    >>> fn = cells.rnn_update.py_func
    >>> locator = _cache.PackageLocator.from_function(fn, cells.__file__)
    >>> locator.get_source_stamp() == _cache.sources_digest()
    True
    >>> print(_cache.PackageLocator.from_function(fn, os.__file__))  # not in this package
    None
    """

    def __init__(self, py_func, py_file, cache_path):
        self._py_file = py_file  # Numba's warnings about uncachable functions read it
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = cache_path

    def get_cache_path(self):
        return self._cache_path

    def get_source_stamp(self):
        return sources_digest()

    def get_disambiguator(self):
        return str(self._lineno)

    @classmethod
    def from_function(cls, py_func, py_file):
        if not _in_package(py_file):
            return None
        for folder in _folders(py_file):
            if _writable(folder):
                return cls(py_func, py_file, folder)
        return None


def install():
    """Put :class:`PackageLocator` at the front of Numba's locators, once."""
    locators = _CACHE_IMPL._locator_classes
    if PackageLocator not in locators:
        locators.insert(0, PackageLocator)
