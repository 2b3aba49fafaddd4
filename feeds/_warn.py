"""Warnings that name the user's line, whatever path inside the packages led to them."""

import sys

#: Frames of these packages are skipped, and of the standard library's wrappers that sit
#: between their functions (context managers, partials).
_PACKAGES = ("feeds", "streamrnn")
_WRAPPERS = ("contextlib", "functools")


def _ours(module):
    top = module.partition(".")[0]
    return top in _PACKAGES or module in _WRAPPERS


def user_level():
    """The ``stacklevel`` for a :func:`warnings.warn` made by the caller of this function
    that points at the first frame outside ``feeds`` and ``streamrnn``: the line of the
    program that called into them."""
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and _ours(frame.f_globals.get("__name__", "")):
        frame = frame.f_back
        level += 1
    return level
