"""Warnings that name the user's line, whatever path inside the packages led to them."""

import contextlib
import functools
import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Frames in these files are skipped: the two packages, and the standard library's
#: wrappers that sit between their functions (context managers, partials).
_SKIPPED = tuple(os.path.join(_ROOT, name) + os.sep for name in ("feeds", "streamrnn"))
_WRAPPERS = {os.path.abspath(contextlib.__file__), os.path.abspath(functools.__file__)}


def user_level():
    """The ``stacklevel`` for a :func:`warnings.warn` made by the caller of this function
    that points at the first frame outside ``feeds`` and ``streamrnn``: the line of the
    program that called into them."""
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None:
        name = frame.f_code.co_filename
        if not (name.startswith(_SKIPPED) or os.path.abspath(name) in _WRAPPERS):
            break
        frame = frame.f_back
        level += 1
    return level
