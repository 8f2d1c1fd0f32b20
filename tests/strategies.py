"""Shared hypothesis strategies for the autograd tests (and any test that needs arrays).

Everything random is drawn through hypothesis (never a global RNG), so a failure
replays from its seed. Values are shifted away from kinks and poles: log and sqrt
see positive numbers, relu/abs/clip/max never sit within 0.05 of a kink or a tie,
so central differences with eps = 1e-6 never straddle one. Arrays are often
NON-CONTIGUOUS views (transposed or strided), see `arrays`.

The input strategies at the bottom each draw ``(arrays, params)`` for one entry of
the op registry in `tests/op_registry.py`.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# ----------------------------------------------------------------------------
# Values
# ----------------------------------------------------------------------------


def floats(lo: float = -3.0, hi: float = 3.0, avoid=(), gap: float = 0.05):
    """Finite float64 values in [lo, hi], at least ``gap`` away from each point in ``avoid``."""
    s = st.floats(lo, hi, allow_nan=False, allow_infinity=False, width=64)
    if avoid:
        s = s.filter(lambda v: all(abs(v - p) >= gap for p in avoid))
    return s


POSITIVE = floats(0.1, 5.0)
ANY = floats()
NONZERO = floats(-3.0, 3.0, avoid=(0.0,), gap=0.3)
OFF_ZERO = floats(avoid=(0.0,))  # relu, abs


def shapes(min_dims=0, max_dims=3, min_side=1, max_side=3):
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


@st.composite
def arrays(draw, shape, elements=ANY, layout=None):
    """A float64 array of ``shape``, sometimes a NON-CONTIGUOUS view of a larger array.

    ``layout`` is drawn unless given: "contiguous", "transposed" (the .T of an array
    with the reversed shape) or "strided" (every other element, possibly reversed, of
    an array twice as long on the last axis).
    """
    shape = tuple(shape)
    if layout is None:
        layout = draw(st.sampled_from(["contiguous", "transposed", "strided"]))
    if layout == "transposed" and len(shape) >= 2:
        return draw(hnp.arrays(np.float64, shape[::-1], elements=elements)).T
    if layout == "strided" and len(shape) >= 1:
        base = draw(hnp.arrays(np.float64, shape[:-1] + (2 * shape[-1],), elements=elements))
        step = draw(st.sampled_from([2, -2]))
        return base[..., ::step]
    return draw(hnp.arrays(np.float64, shape, elements=elements))


@st.composite
def distinct_arrays(draw, shape, layout=None):
    """Values whose pairwise gaps are >= 0.1 (so max/min have no ties near eps)."""
    n = int(np.prod(shape))
    perm = draw(st.permutations(range(n)))
    jitter = draw(st.floats(0.0, 0.05))
    values = (np.array(perm, dtype=np.float64) - n / 2) * 0.15 + jitter
    out = values.reshape(shape)
    if draw(st.booleans()) and out.ndim >= 2:
        out = np.ascontiguousarray(out.T).T  # same values, Fortran-ordered view
    return out


def axes_for(ndim: int, allow_none=True, allow_tuple=True):
    """axis=None, a (possibly negative) int, or a tuple of distinct axes."""
    options = []
    if allow_none:
        options.append(st.none())
    if ndim:
        options.append(st.integers(-ndim, ndim - 1))
        if allow_tuple:
            options.append(
                st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(
                    tuple
                )
            )
    return st.one_of(options)


# ----------------------------------------------------------------------------
# Input strategies for the op registry: each draws (arrays, params)
# ----------------------------------------------------------------------------


@st.composite
def unary(draw, elements=ANY, shape=None):
    shape = draw(shapes()) if shape is None else shape
    return (draw(arrays(shape, elements)),), {}


@st.composite
def binary(draw, a_elements=ANY, b_elements=ANY):
    sa, sb = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)
    ).input_shapes
    return (draw(arrays(sa, a_elements)), draw(arrays(sb, b_elements))), {}


@st.composite
def separated_pair(draw):
    """Two broadcastable arrays with |a - b| >= 0.1 everywhere (no ties for maximum/minimum)."""
    sa, sb = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)
    ).input_shapes
    grid = st.integers(-3, 3)
    a = draw(arrays(sa, st.builds(lambda i, u: i + u, grid, st.floats(0, 0.2))))
    b = draw(arrays(sb, st.builds(lambda i, u: i + 0.5 + u, grid, st.floats(0, 0.2))))
    return (a, b), {}


@st.composite
def clip_bounds_inputs(draw):
    """``x`` and array bounds ``lo`` < ``hi`` that broadcast with it (possibly to a larger
    shape). Bounds sit on the grid {-1.5, -0.5, 0.5, 1.5, 2.5}; ``x`` keeps 0.05 away."""
    sx, sb = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)
    ).input_shapes
    x = draw(arrays(sx, floats(avoid=(-1.5, -0.5, 0.5, 1.5, 2.5))))
    lo = draw(hnp.arrays(np.float64, sb, elements=st.sampled_from([-1.5, -0.5, 0.5])))
    width = draw(hnp.arrays(np.float64, sb, elements=st.sampled_from([1.0, 2.0])))
    return (x,), {"lo": lo, "hi": lo + width}


@st.composite
def reduction(draw, ddof=False, distinct=False):
    shape = draw(shapes())
    axis = draw(axes_for(len(shape)))
    params = {"axis": axis, "keepdims": draw(st.booleans())}
    if ddof:
        n = int(np.prod([shape[a] for a in _axes(axis, len(shape))]))
        params["ddof"] = draw(st.integers(0, 1 if n > 1 else 0))
    x = draw(distinct_arrays(shape)) if distinct else draw(arrays(shape))
    return (x,), params


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    return (axis % ndim,) if isinstance(axis, int) else tuple(axis)


@st.composite
def matmul_inputs(draw):
    sa, sb = draw(
        hnp.mutually_broadcastable_shapes(
            signature="(m?,n),(n,p?)->(m?,p?)", max_dims=4, max_side=3
        )
    ).input_shapes
    return (draw(arrays(sa)), draw(arrays(sb))), {}


@st.composite
def transpose_inputs(draw):
    shape = draw(shapes(min_dims=1, max_dims=4))
    perm = draw(st.permutations(range(len(shape))))
    negate = draw(st.lists(st.booleans(), min_size=len(shape), max_size=len(shape)))
    axes = tuple(p - len(shape) if neg else p for p, neg in zip(perm, negate))
    return (draw(arrays(shape)),), {"axes": axes}


@st.composite
def swapaxes_inputs(draw):
    shape = draw(shapes(min_dims=1, max_dims=4))
    n = len(shape)
    return (draw(arrays(shape)),), {
        "a": draw(st.integers(-n, n - 1)),
        "b": draw(st.integers(-n, n - 1)),
    }


@st.composite
def reshape_inputs(draw):
    shape = draw(shapes(max_dims=4))
    size = int(np.prod(shape))
    factors = [d for d in range(1, size + 1) if size % d == 0]
    first = draw(st.sampled_from(factors))
    new = draw(st.sampled_from([(size,), (first, size // first), (first, -1), (1, size, 1)]))
    return (draw(arrays(shape)),), {"shape": new}


@st.composite
def broadcast_inputs(draw):
    target = draw(shapes(min_dims=1, max_dims=4))
    k = draw(st.integers(0, len(target)))
    src = tuple(1 if draw(st.booleans()) else n for n in target[k:])
    return (draw(arrays(src)),), {"shape": target}


@st.composite
def join_inputs(draw, same_shape):
    shape = draw(shapes(min_dims=1, max_dims=3))
    n = len(shape)
    count = draw(st.integers(1, 3))
    if same_shape:
        axis = draw(st.integers(-n - 1, n))
        shapes_ = [shape] * count
    else:
        axis = draw(st.integers(-n, n - 1))
        sizes = draw(st.lists(st.integers(1, 3), min_size=count, max_size=count))
        shapes_ = [shape[: axis % n] + (k,) + shape[axis % n + 1 :] for k in sizes]
    return tuple(draw(arrays(s)) for s in shapes_), {"axis": axis}


@st.composite
def split_inputs(draw):
    shape = draw(shapes(min_dims=1, max_dims=3, max_side=5))
    n = len(shape)
    axis = draw(st.integers(-n, n - 1))
    cuts = draw(st.lists(st.integers(0, shape[axis]), max_size=3).map(sorted))
    return (draw(arrays(shape)),), {"cuts": tuple(cuts), "axis": axis}


@st.composite
def basic_index_inputs(draw):
    shape = draw(shapes(min_dims=1, max_dims=3, max_side=4))
    index = draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    return (draw(arrays(shape)),), {"index": index}


@st.composite
def fancy_index_inputs(draw):
    shape = draw(shapes(min_dims=1, max_dims=3, max_side=4))
    index = draw(
        hnp.integer_array_indices(shape, result_shape=shapes(min_dims=1, max_dims=2, max_side=5))
    )
    if draw(st.booleans()):  # mix a slice with a repeated index on one axis: x[:, [i, i, j]]
        axis_ix = draw(st.lists(st.integers(-shape[-1], shape[-1] - 1), min_size=1, max_size=5))
        index = (Ellipsis, np.array(axis_ix))
    return (draw(arrays(shape)),), {"index": index}


@st.composite
def take_along_inputs(draw):
    shape = draw(shapes(min_dims=1, max_dims=3, max_side=4))
    n = len(shape)
    axis = draw(st.integers(-n, n - 1))
    idx_shape = tuple(
        draw(st.integers(1, 5)) if d == axis % n else draw(st.sampled_from([1, s]))
        for d, s in enumerate(shape)
    )
    indices = draw(hnp.arrays(np.intp, idx_shape, elements=st.integers(0, shape[axis] - 1)))
    return (draw(arrays(shape)),), {"indices": indices, "axis": axis}


@st.composite
def masked_fill_inputs(draw):
    shape = draw(shapes(min_dims=0, max_dims=3))
    k = draw(st.integers(0, len(shape)))
    mask_shape = tuple(1 if draw(st.booleans()) else n for n in shape[k:])
    mask = draw(hnp.arrays(np.bool_, mask_shape))
    return (draw(arrays(shape)),), {"mask": mask, "value": draw(floats(-5, 5))}


@st.composite
def where_inputs(draw):
    sc, sa, sb = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=3)
    ).input_shapes
    cond = draw(hnp.arrays(np.bool_, sc))
    return (draw(arrays(sa)), draw(arrays(sb))), {"cond": cond}


@st.composite
def softmax_inputs(draw, keepdims=False):
    shape = draw(shapes(min_dims=1, max_dims=3, max_side=4))
    params = {"axis": draw(st.integers(-len(shape), len(shape) - 1))}
    if keepdims:
        params["keepdims"] = draw(st.booleans())
    return (draw(arrays(shape)),), params


@st.composite
def cross_entropy_inputs(draw):
    lead = draw(shapes(min_dims=0, max_dims=2, max_side=4))
    V = draw(st.integers(1, 5))
    targets = draw(hnp.arrays(np.intp, lead, elements=st.integers(0, V - 1)))
    mask = None
    if draw(st.booleans()):
        mask = draw(hnp.arrays(np.float64, lead, elements=st.sampled_from([0.0, 1.0])))
        mask.flat[draw(st.integers(0, mask.size - 1))] = 1.0  # at least one item counts
    return (draw(arrays(lead + (V,))),), {"targets": targets, "mask": mask}


@st.composite
def layer_norm_inputs(draw):
    shape = draw(shapes(min_dims=1, max_dims=3, max_side=4).filter(lambda s: s[-1] >= 2))
    D = shape[-1]
    arrs = [draw(arrays(shape))]
    flags = draw(st.sampled_from([(False, False), (True, False), (False, True), (True, True)]))
    for flag in flags:
        if flag:
            arrs.append(draw(arrays((D,))))
    return tuple(arrs), {"has_weight": flags[0], "has_bias": flags[1]}


@st.composite
def embedding_inputs(draw):
    V, D = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    ids_shape = draw(shapes(min_dims=0, max_dims=2, max_side=5))
    ids = draw(hnp.arrays(np.intp, ids_shape, elements=st.integers(0, V - 1)))
    return (draw(arrays((V, D))),), {"ids": ids}


@st.composite
def dropout_inputs(draw):
    shape = draw(shapes())
    p = draw(st.sampled_from([0.0, 0.1, 0.5, 0.9]))
    return (draw(arrays(shape)),), {"p": p, "seed": draw(st.integers(0, 2**16))}
