"""The output folder: which job owns it, the lock of the run using it, and its parts."""

import json
import os
import re
import shutil

from .. import checkpoint
from ..errors import ConfigError, StateError
from .job import differences

JOB_FILE = "_job.json"
CHECKPOINT = "_checkpoint"
REPORT = "_report"
STATES = "_states.parquet"
LOCK = "_lock"
_PART = re.compile(r"part-(\d{6})\.parquet")


def parts(folder):
    """``{index: name}`` of the part files in ``folder``."""
    found = {}
    for name in os.listdir(folder):
        m = _PART.fullmatch(name)
        if m:
            found[int(m.group(1))] = name
    return found


def _ours(name):
    return (
        name in (JOB_FILE, CHECKPOINT, REPORT, STATES, LOCK)
        or name.startswith(".tmp-")
        or _PART.fullmatch(name) is not None
    )


def _clear(folder):
    """Remove a backfill's files from ``folder`` (nothing else): the checkpoint first,
    so that no checkpoint outlives the parts it commits, and the job file last."""
    names = sorted(os.listdir(folder), key=lambda n: (n != CHECKPOINT, n == JOB_FILE))
    for name in names:
        if _ours(name) and name != LOCK:
            path = os.path.join(folder, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)


def _write_json(path, value):
    text = json.dumps(value, indent=1, sort_keys=True, default=str).encode()
    checkpoint.write_atomic(path, lambda f: f.write(text))


def _lock(out):
    """Hold ``out/_lock`` exclusively until the returned descriptor is closed (the
    system releases it when the process ends, kill -9 included)."""
    try:
        import fcntl
    except ImportError:  # no advisory locks on this system
        return None
    fd = os.open(os.path.join(out, LOCK), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise StateError(
            f"output folder {out!r} is in use by another backfill run; wait for it to end or "
            "stop it (it can then be resumed)"
        ) from None
    return fd


def owner(out):
    """What ``out``'s job file says: ``{"job": id, "identity": settings}``, or None when
    the folder has none; a damaged one is a :class:`StateError`."""
    path = os.path.join(out, JOB_FILE)
    try:
        with open(path) as f:
            found = json.load(f)
        found["job"], found["identity"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        raise StateError(
            f"{path} is damaged: cannot tell which job owns {out!r}; start again with "
            "overwrite (--overwrite)"
        ) from None
    return found


def claim(job, ident, job_id):
    """Make ``job.output`` this job's and lock it: returns ``(lock, checkpoint to resume
    from or None)``."""
    out = job.output
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"output {out!r} is a file; it must be a folder (new or empty)")
    names = sorted(os.listdir(out)) if os.path.isdir(out) else []
    foreign = [n for n in names if not _ours(n)]
    if foreign:
        raise ConfigError(
            f"output folder {out!r} holds files that are not a backfill's results "
            f"({', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}); "
            "choose a new or empty folder"
        )
    os.makedirs(out, exist_ok=True)
    lock = _lock(out)
    try:
        start = _take_over(job, ident, job_id, os.listdir(out))
    except BaseException:
        if lock is not None:
            os.close(lock)
        raise
    return lock, start


def _take_over(job, ident, job_id, names):
    out = job.output
    started = CHECKPOINT in names  # parts without a checkpoint are uncommitted
    if job.overwrite or not started:  # nothing of value: start (again)
        _clear(out)
        _write_json(os.path.join(out, JOB_FILE), {"job": job_id, "identity": ident})
        return None
    found = owner(out) if JOB_FILE in names else None
    if found is None:
        raise ConfigError(
            f"output folder {out!r} holds a backfill's files but no {JOB_FILE} (an "
            "interrupted overwrite?); start again with overwrite (--overwrite)"
        )
    if found["job"] != job_id:
        diff = "; ".join(differences(found["identity"], ident)) or "settings"
        raise ConfigError(
            f"output folder {out!r} holds another job's results (it differs in: {diff}); "
            "choose a new folder, or pass overwrite (--overwrite) to replace them"
        )
    start, done = None, False
    if CHECKPOINT in names:
        start = checkpoint.read(os.path.join(out, CHECKPOINT))
        if start[0].get("job") != job_id:
            raise StateError(
                f"{os.path.join(out, CHECKPOINT)} belongs to job {start[0].get('job')}, "
                f"but {JOB_FILE} names job {job_id}"
            )
        done = start[0]["done"]
    if not job.resume:
        what = "the finished results" if done else "an unfinished run"
        raise ConfigError(
            f"output folder {out!r} holds {what} of this job; pass resume (--resume) "
            "to continue it, or overwrite (--overwrite) to start again"
        )
    committed = start[0]["parts"] if start is not None else 0
    found = parts(out)
    lost = [f"part-{i:06d}.parquet" for i in range(committed) if i not in found]
    if lost:
        raise StateError(
            f"output folder {out!r} lacks {len(lost)} part file(s) the checkpoint "
            f"committed ({', '.join(lost[:3])}{' ...' if len(lost) > 3 else ''}); "
            "start again with overwrite (--overwrite)"
        )
    for index, name in found.items():  # written after the checkpoint
        if index >= committed:
            os.unlink(os.path.join(out, name))
    for name in os.listdir(out):
        if name.startswith(".tmp-"):
            os.unlink(os.path.join(out, name))
    return start
