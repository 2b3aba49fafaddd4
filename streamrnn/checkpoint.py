"""Checkpoint files and atomic writes.

A checkpoint is one file, so that one rename replaces it whole:

1. the line ``STREAMRNN-CHECKPOINT``;
2. one line of JSON, the header: ``format`` (this module's :data:`FORMAT`),
   the ``streamrnn`` version that wrote it, what the writer records about the
   run (for a backfill: the job, the position in the input, the output
   committed), and ``payload_bytes`` and ``payload_sha256`` of what follows;
3. the payload: a pickle of the engine (an :class:`~streamrnn.OnlineLearner` or
   :class:`~streamrnn.Stream` with its feed, weights, optimizer state, every
   key's state and history, and the scaling statistics) and the writer's own
   running state.

The header can be read without unpickling (``head -2`` shows it), so an
incompatible or foreign file is refused before any of it runs; the checksum
refuses a file that was cut short or damaged. Pickle restores every array bit
for bit. Like any pickle, a checkpoint runs code when loaded: load only files
you wrote. :data:`FORMAT` changes whenever what the payload holds changes;
earlier formats that can still be read are listed in :data:`READS`, with the
new names of the classes their payloads name that have moved or been renamed.

Every file is written by :func:`write_atomic`: to a temporary file in the same
folder, flushed and ``fsync``-ed, renamed over the target, and the folder
``fsync``-ed. A reader, or a run after a crash at any instant, sees the old
file or the new one, never a part of one.
"""

import contextlib
import errno
import hashlib
import io
import json
import os
import pickle
import tempfile

from .errors import StateError, StorageError

MAGIC = b"STREAMRNN-CHECKPOINT\n"
FORMAT = 3
#: Formats this version reads, each with ``{(module, name): (module, name)}``: where
#: the classes its payloads name live now. Format 2 (streamrnn 0.1.0) named the
#: backfill's running scores ``streamrnn.evaluate._Scorer``.
READS = {
    2: {("streamrnn.evaluate", "_Scorer"): ("streamrnn.evaluate", "Scorer")},
    3: {},
}


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Files are readable as the process's umask allows (mkstemp alone makes them 0600).
_MODE = 0o666 & ~_umask()


def _fsync_folder(folder):
    if hasattr(os, "O_DIRECTORY"):
        fd = os.open(folder, os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path, write):
    """Write ``path`` atomically: ``write(f)`` fills a temporary file in the same
    folder, which is flushed, synced to disk and renamed over ``path``.

    Raises :class:`StorageError` (an ``OSError``) naming the path when the disk
    is full or the folder cannot be written; ``path`` is then unchanged.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix="-" + os.path.basename(path))
    except OSError as exc:
        raise _storage_error(exc, path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _MODE)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_folder(folder)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, StorageError):
            raise _storage_error(exc, path) from None
        raise


@contextlib.contextmanager
def atomic_files(scratch=None):
    """Write several files atomically, together: in ``with atomic_files() as opened``,
    ``opened(path)`` gives a new temporary file beside ``path`` (or in the folder
    ``scratch``, on the same file system, removed at the end) to write (and close).

    When the block ends without an error, every file is synced to disk, then each is
    renamed over its path and each folder is synced once. After an error in the block
    or while syncing, none is renamed and the temporary files are removed; the block's
    own errors go on as they are, except a full disk, which is the
    :class:`StorageError` :func:`write_atomic` gives (naming the last file opened). An
    error among the renames themselves (the files already on disk) can leave some
    renamed: a caller records the whole as done only after this returns.
    """
    made = []  # (file object, temporary path, path)
    if scratch is not None:
        os.makedirs(scratch, exist_ok=True)

    def opened(path):
        path = os.fspath(path)
        folder = scratch or os.path.dirname(os.path.abspath(path))
        try:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-",
                                       suffix="-" + os.path.basename(path))  # fmt: skip
        except OSError as exc:
            raise _storage_error(exc, path) from None
        f = os.fdopen(fd, "wb")
        made.append((f, tmp, path))
        os.fchmod(f.fileno(), _MODE)
        return f

    def discard():
        for f, tmp, _ in made:
            f.close()
            if os.path.exists(tmp):
                os.unlink(tmp)
        if scratch is not None and os.path.isdir(scratch) and not os.listdir(scratch):
            os.rmdir(scratch)

    try:
        yield opened
    except BaseException as exc:
        discard()
        if isinstance(exc, OSError) and exc.errno in _FULL and made:
            raise _storage_error(exc, made[-1][2]) from None
        raise
    path = None
    try:
        for entry in made:
            f, tmp, path = entry  # (named in an error)
            f.close()
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    except OSError as exc:
        discard()
        raise _storage_error(exc, path) from None
    try:
        folders = []
        for _, tmp, path in made:
            os.replace(tmp, path)
            folder = os.path.dirname(os.path.abspath(path))
            if folder not in folders:
                folders.append(folder)
        for folder in folders:
            _fsync_folder(folder)
        if scratch is not None:
            os.rmdir(scratch)
    except OSError as exc:
        raise _storage_error(exc, path) from None


#: The errors of a disk (or quota) that is full, or a file too large for it.
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _storage_error(exc, path):
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        what = "the disk is full" if exc.errno != errno.EFBIG else "the file is too large"
    else:
        what = exc.strerror or str(exc)
    return StorageError(exc.errno, f"cannot write {path}: {what}")


def write(path, header, payload):
    """Write a checkpoint: ``header`` (a JSON-able dict) and ``payload`` (pickled)."""
    body = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    head = {
        "format": FORMAT,
        **header,
        "payload_bytes": len(body),
        "payload_sha256": hashlib.sha256(body).hexdigest(),
    }
    line = json.dumps(head, sort_keys=True, separators=(",", ":")).encode() + b"\n"

    def fill(f):
        f.write(MAGIC)
        f.write(line)
        f.write(body)

    write_atomic(path, fill)


def read_header(path):
    """The header of the checkpoint at ``path`` (the payload is not read)."""
    with _open(path) as f:
        return _header(f, path)


def read(path):
    """``(header, payload)`` of the checkpoint at ``path``.

    Raises
    ------
    StateError
        The file is no checkpoint, was written in another format, or is
        truncated or damaged (its checksum does not match).
    """
    with _open(path) as f:
        header = _header(f, path)
        left = os.fstat(f.fileno()).st_size - f.tell()
        body = f.read(min(header["payload_bytes"], left) + 1)
    if (
        len(body) != header["payload_bytes"]
        or hashlib.sha256(body).hexdigest() != header["payload_sha256"]
    ):
        raise StateError(
            f"{path}: the checkpoint is truncated or damaged (its checksum does not match)"
        )
    try:
        payload = _Unpickler(io.BytesIO(body), READS[header["format"]]).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise StateError(f"{path}: the checkpoint's payload cannot be loaded ({exc})") from None
    return header, payload


def load_engine(path):
    """The engine a backfill checkpoint holds, ready to go on live.

    Returns the :class:`~streamrnn.OnlineLearner` (or :class:`~streamrnn.Stream`
    for inference) with its feed, weights, optimizer state, every key's state and
    the scaling statistics, as the backfill left them: give it the chunks that
    follow. Raises :class:`StateError` for a file that is no checkpoint, of
    another format, or damaged.
    """
    _, payload = read(os.fspath(path))
    engine = payload["engine"]
    if engine is None:
        raise StateError(f"{path}: the checkpoint was taken before any row was read")
    return engine


class _Unpickler(pickle.Unpickler):
    """Reads a payload whose classes may have moved since it was written."""

    def __init__(self, file, moved):
        super().__init__(file)
        self._moved = moved

    def find_class(self, module, name):
        return super().find_class(*self._moved.get((module, name), (module, name)))


def _open(path):
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise StateError(f"{path}: no checkpoint there (the file does not exist)") from None
    except OSError as exc:
        raise StateError(f"{path}: cannot read the checkpoint: {exc.strerror}") from None


def _header(f, path):
    if f.read(len(MAGIC)) != MAGIC:
        raise StateError(f"{path} is not a streamrnn checkpoint (it does not start with {MAGIC!r})")
    try:
        header = json.loads(f.readline())
        fmt, size = header["format"], header["payload_bytes"]
        header["payload_sha256"]
    except (ValueError, KeyError, TypeError):
        raise StateError(f"{path}: the checkpoint's header is damaged") from None
    if not isinstance(fmt, int) or fmt not in READS:
        raise StateError(
            f"{path} is a checkpoint in format {fmt!r} (written by streamrnn "
            f"{header.get('streamrnn', '?')}); this streamrnn reads formats "
            f"{', '.join(map(str, READS))}"
        )
    if not isinstance(size, int) or size < 0:
        raise StateError(f"{path}: the checkpoint's header is damaged")
    return header
