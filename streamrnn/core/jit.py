"""How the package compiles: one set of Numba flags, and the decorators that apply them.

Every compiled function of the package is declared with :func:`kernel` (or
:func:`exact_kernel`), so that all of them share these choices:

- cached on disk (``config.CACHE``), keyed to the package's compiled sources
  (:mod:`streamrnn.core._cache`);
- ``nogil``: a kernel releases the GIL, so that :mod:`streamrnn.core.threads` can run
  several at once on Python threads, with no threading layer of Numba's
  (:func:`short_kernel`, for one step of one series, keeps it: a call of a few
  microseconds that is never shared);
- ``error_model="numpy"`` (a division by zero gives inf or nan, as in NumPy);
- fast-math limited to ``config.FASTMATH`` for :func:`kernel`, none for
  :func:`exact_kernel` (the optimizer steps, which round where PyTorch rounds);
- plain argument types: a call from another kernel with a constant argument
  (``f(x, 0)``) compiles the same specialisation as with a variable there,
  instead of one more for the constant's literal type;

and :func:`not_inlined` keeps a large function out of its callers' machine code,
so that LLVM optimises its body once rather than again inside every caller.

:data:`inline` is for small helpers only: Numba copies an inlined function's
intermediate code at each call site, at a cost that grows with the square of its
size (seconds for a body of a few hundred lines). A large body that depends on
the cell is instead compiled once per cell family
(:func:`streamrnn.core.cells.per_family`): a closure whose ``family`` is a
constant that Numba prunes the other cells' branches by, before typing.
Every call from compiled code links the callee's code into the caller, where
LLVM optimises it again; keeping the chain of kernels short (a learning call
links the window, pending-steps and update kernels, and nothing links it) is
what keeps the first compilation short. The inference and online-learning
kernels call the matrix product without linking it, by its address
(:mod:`streamrnn.core.native`).
"""

from numba import njit, types
from numba.extending import intrinsic

from .. import config

#: Compile flags of every kernel.
FLAGS = dict(cache=config.CACHE, error_model="numpy", fastmath=config.FASTMATH, nogil=True)
#: The same, without fast-math.
EXACT_FLAGS = {**FLAGS, "fastmath": False}


def _plain_argument_types(dispatcher):
    """Type calls from compiled code with the arguments' plain types (an int constant as
    ``int64``, not ``Literal[int](0)``)."""
    resolve = dispatcher.get_call_template

    def get_call_template(args, kws):
        args = tuple(types.unliteral(a) for a in args)
        kws = {k: types.unliteral(v) for k, v in kws.items()}
        return resolve(args, kws)

    dispatcher.get_call_template = get_call_template
    return dispatcher


def kernel(fn):
    """Compile ``fn`` with :data:`FLAGS`."""
    return _plain_argument_types(njit(**FLAGS)(fn))


def exact_kernel(fn):
    """Compile ``fn`` with :data:`EXACT_FLAGS` (no fast-math)."""
    return _plain_argument_types(njit(**EXACT_FLAGS)(fn))


def short_kernel(fn):
    """Compile ``fn`` with :data:`FLAGS` but keeping the GIL: for a call of a few
    microseconds that never shares its work (one step of one series), where releasing
    and taking back the GIL would be a noticeable part of the call."""
    return _plain_argument_types(njit(**{**FLAGS, "nogil": False})(fn))


#: Small helpers inlined into their callers by Numba (no call, no specialisation).
inline = njit(inline="always")


@intrinsic
def not_inlined(typingctx):
    """Called first in a function's body: LLVM keeps that function out of line
    (``noinline``) in every caller."""

    def codegen(context, builder, signature, args):
        builder.function.attributes.add("noinline")
        return context.get_dummy_value()

    return types.none(), codegen
