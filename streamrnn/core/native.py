"""The matrix product, compiled once, and called from other kernels by its address.

A call from one compiled function to another links the callee's code into the
caller, where LLVM optimises it and generates its machine code again: every
kernel that calls :func:`gemm` paid for ``gemm`` once more when it was first
compiled (about 0.8 s of a first forward pass). :func:`gemm_call` instead calls
the one compiled ``gemm`` through a symbol, ``streamrnn_gemm_<dtype>``, bound
to its address in this process (:func:`bind`); the caller's machine code holds
the call and nothing of ``gemm``.

The symbol must be bound before a kernel that calls it is compiled or loaded
from the cache. Compiling one binds it (the call's code generation does); the
cache does not, so the backend (:mod:`streamrnn.core.backend`) binds the
symbols of a model's dtype before it runs any kernel, and anything else that
calls kernels directly must call :func:`bind` first.
"""

import llvmlite.binding as llvm
import numpy as np
from numba import from_dtype, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._simd import _is_float_vector
from ._simd import gemm as _gemm_inline
from .jit import kernel, not_inlined


@kernel
def gemm(P, w_off, ldw, V, v_off, v_stride, n_rows, n_in, width, C, c_off, c_stride, OUT,
         o_off, o_stride):  # fmt: skip
    """:func:`streamrnn.core._simd.gemm` (same arguments), compiled once and called from
    every site.

    Inlining the intrinsic at each of the kernels' call sites multiplies its
    unrolled loops; one shared copy keeps the hot code small (measured faster)
    and compiling quicker, for the cost of a call.
    """
    not_inlined()
    _gemm_inline(P, w_off, ldw, V, v_off, v_stride, n_rows, n_in, width, C, c_off, c_stride,
                 OUT, o_off, o_stride)  # fmt: skip


_BOUND = {}  # symbol name -> address


def _signature(dtype):
    vector = types.Array(from_dtype(np.dtype(dtype)), 1, "C")
    ip = types.intp
    return (vector, ip, ip, vector, ip, ip, ip, ip, ip, vector, ip, ip, vector, ip, ip)


def bind(dtype):
    """Compile (or load) :func:`gemm` for ``dtype`` and bind its symbol to it; returns
    the symbol's name. Cheap after the first call for a dtype."""
    name = f"streamrnn_gemm_{np.dtype(dtype).name}"
    if name not in _BOUND:
        sig = _signature(dtype)
        gemm.compile(sig)
        result = gemm.overloads[sig]
        address = result.library.get_pointer_to_function(result.fndesc.llvm_func_name)
        llvm.add_symbol(name, address)
        _BOUND[name] = address
    return name


@intrinsic
def gemm_call(typingctx, P, w_off, ldw, V, v_off, v_stride, n_rows, n_in, width, C, c_off,
              c_stride, OUT, o_off, o_stride):  # fmt: skip
    """:func:`gemm` (same arguments) called through its symbol: flat, contiguous,
    writable arrays of one float dtype."""
    arrays = (P, V, C, OUT)
    if not all(_is_float_vector(a) and a.mutable for a in arrays):
        return None
    if len({a.dtype for a in arrays}) != 1:
        return None
    sig = types.void(*_signature(P.dtype.name))

    def codegen(context, builder, signature, args):
        name = bind(P.dtype.name)  # compiling a caller binds its callee
        fnty = context.call_conv.get_function_type(types.void, signature.args)
        callee = cgutils.get_or_insert_function(builder.module, fnty, name)
        context.call_conv.call_function(builder, callee, types.void, signature.args, args)
        return context.get_dummy_value()

    return sig, codegen
