"""The one hand-vectorised primitive: ``OUT = C + V @ W`` with accumulators in registers.

LLVM's loop vectoriser keeps the output in memory across the loop over ``k``
(it cannot prove it apart from ``W``), which costs a load and a store per
multiply-add. :func:`gemm_acc` emits the loops with explicit vector types: a
block of output stays in vector registers while ``k`` runs and is stored once,
and up to four rows of ``V`` (four series) share every load of ``W``.

Each output starts from ``C[r, j]`` (a bias row, or the output itself to
accumulate) and is the chain ``acc = fma(V[r, k], W[k, j], acc)`` over ``k`` in
order, on every path (blocks of rows or single rows, vector blocks or scalar
tail), so a value never depends on where ``j`` falls, on how many rows are
computed together, or on which other series share the call. That is what
keeps outputs identical however a stream is chunked or batched.

Vectors of 512 bits are used; LLVM splits them where the machine is narrower.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

#: Rows of ``V`` (series) that share each load of ``W``.
ROW_BLOCK = 4
#: Vectors of output held in registers at once, largest first, for a block of
#: rows and for a single row: enough independent fma chains to hide latency, and
#: for one row, whole rows of ``W`` at the common widths so it streams in order.
_BLOCK_VECTORS_ROWS = (4, 3, 2, 1)
_BLOCK_VECTORS_ONE = (16, 12, 8, 6, 4, 3, 2, 1)


def _fma_decl(builder, ty):
    """Declare ``llvm.fma`` for a float, a double or a vector of them."""
    if isinstance(ty, ir.VectorType):
        suffix = f"v{ty.count}{ty.element.intrinsic_name}"
    else:
        suffix = ty.intrinsic_name
    fnty = ir.FunctionType(ty, [ty, ty, ty])
    return cgutils.get_or_insert_function(builder.module, fnty, f"llvm.fma.{suffix}")


def _is_float_vector(a):
    """A 1-D contiguous float32 or float64 array: the loops assume unit stride."""
    return (
        isinstance(a, types.Array)
        and a.ndim == 1
        and a.layout == "C"
        and a.dtype in (types.float32, types.float64)
    )


@intrinsic
def gemm(
    typingctx,
    P,
    w_off,
    ldw,
    V,
    v_off,
    v_stride,
    n_rows,
    n_in,
    width,
    C,
    c_off,
    c_stride,
    OUT,
    o_off,
    o_stride,
):
    """``OUT[r] = C[r] + V[r] @ W`` for ``r < n_rows``, all arrays flat and contiguous.

    ``W`` is ``P[w_off:]`` viewed ``(n_in, ldw)``, of which the first ``width``
    columns are used (``ldw`` pads rows to whole cache lines). Row ``r`` of ``V`` starts
    at ``V[v_off + r * v_stride]`` (``n_in`` values), of ``C`` at
    ``C[c_off + r * c_stride]`` and of ``OUT`` at ``OUT[o_off + r * o_stride]``
    (``width`` values each). A stride of 0 repeats one row (a bias); ``C`` may
    be ``OUT`` itself, to accumulate.
    """
    arrays = (P, V, C, OUT)
    if not all(_is_float_vector(a) for a in arrays):
        return None
    if len({a.dtype for a in arrays}) != 1:
        return None
    ip = types.intp
    sig = types.void(P, ip, ip, V, ip, ip, ip, ip, ip, C, ip, ip, OUT, ip, ip)

    def codegen(context, builder, signature, args):
        (
            P_arr,
            w_off,
            ldw,
            V_arr,
            v_off,
            v_stride,
            n_rows,
            n_in,
            width,
            C_arr,
            c_off,
            c_stride,
            O_arr,
            o_off,
            o_stride,
        ) = args
        P_ty, V_ty = signature.args[0], signature.args[3]
        C_ty, O_ty = signature.args[9], signature.args[12]
        fty = context.get_value_type(P_ty.dtype)
        lanes = 16 if P_ty.dtype == types.float32 else 8
        vty = ir.VectorType(fty, lanes)
        intp = context.get_value_type(types.intp)

        def const(n):
            return ir.Constant(intp, n)

        def data(ty, arr):
            return context.make_array(ty)(context, builder, arr).data

        wp = builder.gep(data(P_ty, P_arr), [w_off])
        vp = builder.gep(data(V_ty, V_arr), [v_off])
        cp = builder.gep(data(C_ty, C_arr), [c_off])
        op = builder.gep(data(O_ty, O_arr), [o_off])
        fma_v = _fma_decl(builder, vty)
        fma_s = _fma_decl(builder, fty)
        lane0 = ir.Constant(ir.IntType(32), 0)
        splat = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
        undef = ir.Constant(vty, ir.Undefined)

        def vec_ptr(ptr, index):
            return builder.bitcast(builder.gep(ptr, [index]), vty.as_pointer())

        def block(rows, start, n_vec):
            """Accumulate ``n_vec`` vectors from column ``start`` for rows ``rows``."""
            accs = []
            for r_out, r_c in zip(rows, rows.c):
                for u in range(n_vec):
                    slot = cgutils.alloca_once(builder, vty)
                    col = builder.add(start, const(u * lanes))
                    builder.store(builder.load(vec_ptr(cp, builder.add(r_c, col)), align=4), slot)
                    accs.append((slot, builder.add(r_out, col)))
            with cgutils.for_range(builder, n_in) as loop:
                k = loop.index
                row_w = builder.add(builder.mul(k, ldw), start)
                ws = [
                    builder.load(vec_ptr(wp, builder.add(row_w, const(u * lanes))), align=4)
                    for u in range(n_vec)
                ]
                for i, r_v in enumerate(rows.v):
                    x = builder.load(builder.gep(vp, [builder.add(r_v, k)]))
                    b = builder.shuffle_vector(
                        builder.insert_element(undef, x, lane0), undef, splat
                    )
                    for u in range(n_vec):
                        slot = accs[i * n_vec + u][0]
                        builder.store(builder.call(fma_v, [b, ws[u], builder.load(slot)]), slot)
            for slot, off in accs:
                builder.store(builder.load(slot), vec_ptr(op, off), align=4)

        def tail(rows, start):
            """Scalar fma chains for columns ``start .. width``."""
            with cgutils.for_range(builder, builder.sub(width, start)) as loop:
                j = builder.add(start, loop.index)
                for r_out, r_v, r_c in zip(rows, rows.v, rows.c):
                    acc = cgutils.alloca_once(builder, fty)
                    builder.store(builder.load(builder.gep(cp, [builder.add(r_c, j)])), acc)
                    with cgutils.for_range(builder, n_in) as inner:
                        k = inner.index
                        w = builder.load(builder.gep(wp, [builder.add(builder.mul(k, ldw), j)]))
                        x = builder.load(builder.gep(vp, [builder.add(r_v, k)]))
                        builder.store(builder.call(fma_s, [x, w, builder.load(acc)]), acc)
                    builder.store(builder.load(acc), builder.gep(op, [builder.add(r_out, j)]))

        def rows_at(first, count):
            rows = _Rows(builder.mul(builder.add(first, const(r)), o_stride) for r in range(count))
            rows.v = [builder.mul(builder.add(first, const(r)), v_stride) for r in range(count)]
            rows.c = [builder.mul(builder.add(first, const(r)), c_stride) for r in range(count)]
            return rows

        def all_columns(rows, sizes):
            done = const(0)
            for n_vec in sizes:
                span = const(n_vec * lanes)
                count = builder.sdiv(builder.sub(width, done), span)
                with cgutils.for_range(builder, count) as loop:
                    block(rows, builder.add(done, builder.mul(loop.index, span)), n_vec)
                done = builder.add(done, builder.mul(count, span))
            tail(rows, done)

        n_groups = builder.sdiv(n_rows, const(ROW_BLOCK))
        with cgutils.for_range(builder, n_groups) as loop:
            all_columns(
                rows_at(builder.mul(loop.index, const(ROW_BLOCK)), ROW_BLOCK), _BLOCK_VECTORS_ROWS
            )
        first = builder.mul(n_groups, const(ROW_BLOCK))
        with cgutils.for_range(builder, builder.sub(n_rows, first)) as loop:
            all_columns(rows_at(builder.add(first, loop.index), 1), _BLOCK_VECTORS_ONE)
        return context.get_dummy_value()

    return sig, codegen


class _Rows(list):
    """Output row offsets, with the matching rows of ``V`` in ``.v`` and of ``C`` in ``.c``."""
