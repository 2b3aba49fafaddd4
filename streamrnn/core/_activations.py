"""Activation functions shared by every cell, specialised by dtype at compile time.

float64 uses the C library's ``exp`` and ``tanh``, so results match PyTorch to
rounding. float32 uses a branch-free ``exp`` (Cody-Waite range reduction, a
degree-7 Taylor polynomial on ``[-ln2/2, ln2/2]`` and an exponent built from
bits) that LLVM vectorises across a whole gate loop; it is accurate to a few
ulp, far inside the 1e-5 parity budget, and the libm call it replaces is
scalar and several times slower.

Both are intrinsics: their LLVM IR is written here, so that typing a call
compiles nothing (an overload or a compiled function is compiled once more
for its type, at a cost of about half a second per cell on a first call).
"""

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

_F = np.float32
_LOG2E = _F(1.4426950408889634)
_LN2_HI = _F(0.693359375)  # ln 2 split in two: this part has few bits,
_LN2_LO = _F(-2.12194440e-4)  # so n * _LN2_HI is exact for |n| < 2**15
_X_MIN = _F(-87.0)  # exp(-87) is still a normal float32
_X_MAX = _F(88.0)
_HALF = _F(0.5)
_ONE = _F(1.0)
_TWO = _F(2.0)
_C2 = _F(1 / 2)
_C3 = _F(1 / 6)
_C4 = _F(1 / 24)
_C5 = _F(1 / 120)
_C6 = _F(1 / 720)
_C7 = _F(1 / 5040)


def _exp32(builder, x):
    """LLVM IR of the branch-free float32 ``exp``: clamp to [-87, 88]; ``n =
    floor(x log2(e) + 1/2)``; ``r = (x - n ln2_hi) - n ln2_lo``; a degree-7 Taylor
    polynomial of ``r`` by Horner's rule; times ``2**n`` built from its bits."""
    f32 = ir.FloatType()

    def c(v):
        return ir.Constant(f32, float(v))

    x = builder.select(builder.fcmp_ordered("<", x, c(_X_MIN)), c(_X_MIN), x)
    x = builder.select(builder.fcmp_ordered(">", x, c(_X_MAX)), c(_X_MAX), x)
    floor = builder.module.declare_intrinsic("llvm.floor", [f32])
    n = builder.call(floor, [builder.fadd(builder.fmul(x, c(_LOG2E)), c(_HALF))])
    r = builder.fsub(builder.fsub(x, builder.fmul(n, c(_LN2_HI))), builder.fmul(n, c(_LN2_LO)))
    p = c(_C7)
    for k in (_C6, _C5, _C4, _C3, _C2, _ONE, _ONE):
        p = builder.fadd(builder.fmul(p, r), c(k))
    i64 = ir.IntType(64)
    bits = builder.shl(builder.add(builder.fptosi(n, i64), ir.Constant(i64, 127)),
                       ir.Constant(i64, 23))  # fmt: skip
    scale = builder.bitcast(builder.trunc(bits, ir.IntType(32)), f32)
    return builder.fmul(p, scale)


def _libm(context, builder, fn, x):
    """``fn(x)`` for a float64 ``x`` as Numba lowers ``math.exp`` or ``math.tanh``."""
    sig = types.float64(types.float64)
    return context.get_function(fn, sig)(builder, [x])


@intrinsic
def sigmoid(typingctx, x):
    """Logistic function ``1 / (1 + exp(-x))``; float32 through the branch-free exp.

    Written as LLVM IR (an intrinsic) rather than a compiled function: typing a
    call costs nothing, where a function is compiled once more for its type."""
    if x not in (types.float32, types.float64):
        return None

    def codegen(context, builder, signature, args):
        (v,) = args
        one = ir.Constant(v.type, 1.0)
        if x == types.float32:
            e = _exp32(builder, builder.fsub(ir.Constant(v.type, -0.0), v))
        else:
            e = _libm(context, builder, math.exp, builder.fsub(ir.Constant(v.type, -0.0), v))
        return builder.fdiv(one, builder.fadd(one, e))

    return x(x), codegen


@intrinsic
def tanh(typingctx, x):
    """Hyperbolic tangent; float32 as ``1 - 2 / (exp(2x) + 1)`` through the branch-free
    exp (it saturates cleanly at both ends), float64 as the C library's."""
    if x not in (types.float32, types.float64):
        return None

    def codegen(context, builder, signature, args):
        (v,) = args
        if x == types.float64:
            return _libm(context, builder, math.tanh, v)
        one, two = ir.Constant(v.type, 1.0), ir.Constant(v.type, 2.0)
        e = _exp32(builder, builder.fmul(two, v))
        return builder.fsub(one, builder.fdiv(two, builder.fadd(e, one)))

    return x(x), codegen
