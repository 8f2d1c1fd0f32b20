"""What a property sees: a `Case` of inputs, and a `Ctx` that runs the function under test.

A property is a plain function ``test(ctx, case)`` that calls ``ctx.run(case)`` (the
function under test, through its framework) and ``ctx.ref(case)`` (minialign's reference
under the chosen conventions), and compares with ``ctx.close`` / ``ctx.grads_close``,
which raise `Mismatch` with the index, the expected and the received values. Every call of
the function under test is recorded, so a failure can show exactly the inputs it got.
"""

from __future__ import annotations

import traceback

import numpy as np

from .frameworks import FLAGS, MinialignFramework, to_numpy

PARTS = {"gae_advantages": ("advantages", "returns")}


class Mismatch(Exception):
    """A property does not hold: ``message`` says where; the arrays say by how much."""

    def __init__(self, message, expected=None, got=None, upstream=None):
        super().__init__(message)
        self.message, self.expected, self.got, self.upstream = message, expected, got, upstream


class UserError(Exception):
    """The function under test raised; the message names the exception and the line."""


class Case:
    """One set of inputs: positional ``args`` in minialign's order, then keyword ``kwargs``."""

    def __init__(self, args: dict, kwargs: dict | None = None):
        self.args, self.kwargs = dict(args), dict(kwargs or {})

    def __getitem__(self, name):
        return self.args[name] if name in self.args else self.kwargs[name]

    def get(self, name, default=None):
        return self.args.get(name, self.kwargs.get(name, default))

    def replace(self, **changes) -> Case:
        """A copy with some inputs changed (a keyword set to None is dropped)."""
        args, kwargs = dict(self.args), dict(self.kwargs)
        for k, v in changes.items():
            if k in args:
                args[k] = v
            elif v is None:
                kwargs.pop(k, None)
            else:
                kwargs[k] = v
        return Case(args, kwargs)

    @property
    def mask(self):
        return self.kwargs.get("mask")

    def lines(self) -> list[str]:
        items = list(self.args.items()) + list(self.kwargs.items())
        width = max((len(k) for k, _ in items), default=0)
        return [f"{k:<{width}} = {fmt(v, width + 3)}" for k, v in items]


def fmt(x, indent: int = 0) -> str:
    """Arrays as short, copyable literals; everything else as its repr."""
    if isinstance(x, np.ndarray):
        x = x + 0.0 if np.issubdtype(x.dtype, np.floating) else x  # -0. prints as 0.
        text = np.array2string(
            x, precision=8, floatmode="maxprec", separator=", ", max_line_width=96 - indent
        )
        return text.replace("\n", "\n" + " " * indent)
    if isinstance(x, (float, np.floating)):
        return f"{float(x) + 0.0:.10g}"
    return repr(x)


class Outcome:
    def __init__(self, value, grads: dict, carried: bool, upstream):
        self.value, self.grads, self.carried, self.upstream = value, grads, carried, upstream


class Ctx:
    """Runs ``fn`` (the function under test) and ``reference`` on cases, and compares."""

    def __init__(self, entry, fn, framework, options, accepted, reference, to_user=None):
        self.entry, self.fn, self.framework, self.options = entry, fn, framework, options
        self.accepted, self.reference = frozenset(accepted), reference
        self.to_user = to_user or (lambda case: case)
        self.autograd = framework.autograd and bool(entry.differentiable)
        self.calls: list[tuple[str, Case]] = []
        self._ref_framework = MinialignFramework()

    def accepts(self, option: str) -> bool:
        return option in self.accepted

    # -- calling -----------------------------------------------------------
    def run(self, case: Case, label: str = "inputs") -> Outcome:
        """The function under test on ``case``, recorded for the report."""
        case = self.to_user(case)
        self.calls.append((label, case))  # what the function received, for the report
        return self._call(self.fn, self.framework, case, user=True)

    def ref(self, case: Case) -> Outcome:
        """minialign's reference (conventions applied) on ``case``."""
        return self._call(self.reference, self._ref_framework, case, user=False)

    def value(self, case: Case):
        """The function under test's value only (for central differences; not recorded)."""
        return self._call(self.fn, self.framework, self.to_user(case), user=True, grads=False)

    def _call(self, fn, fw, case: Case, user: bool, grads: bool = True) -> Outcome:
        diff = self.entry.differentiable if (fw.autograd and grads) else ()
        leaves = {k: fw.leaf(v, k in diff) for k, v in case.args.items() if _is_array(v)}
        args = [leaves.get(k, v) for k, v in case.args.items()]
        kwargs = {k: _kwarg(fw, k, v, self.options.mask_dtype) for k, v in case.kwargs.items()}
        try:
            out = fn(*args, **kwargs)
        except Exception as exc:
            if not user:
                raise
            raise UserError(_describe(exc, fn)) from None
        try:
            value = to_numpy(out)
        except TypeError as exc:
            raise Mismatch(f"your function {exc}") from None
        if not diff:
            return Outcome(value, {}, False, None)
        G = self.upstream(value, case)
        try:
            carried = fw.backward(out, G)
        except Exception as exc:
            raise UserError("backward: " + _describe(exc, fn)) from None
        return Outcome(value, {k: fw.grad(leaves[k]) for k in diff}, carried, G)

    def upstream(self, value, case: Case) -> np.ndarray:
        """G in backward(G): 1 for a scalar; for an array a fixed, non-constant pattern
        (0.5, 1, 1.5, ...) that is 0 at padded positions, so padding cannot matter."""
        value = np.asarray(value[0] if isinstance(value, tuple) else value)
        if self.entry.returns == "scalar loss" or value.ndim == 0:
            return np.ones(value.shape)
        G = 1.0 + 0.5 * (np.indices(value.shape).sum(axis=0) % 3 - 1.0)  # same after padding
        if case.mask is not None and np.shape(case.mask) == value.shape:
            G = G * case.mask
        return G

    # -- comparing ---------------------------------------------------------
    def close(self, got, expected, what: str = "value", rtol=None, atol=None) -> None:
        rtol = self.options.rtol if rtol is None else rtol
        atol = self.options.atol if atol is None else atol
        if isinstance(expected, tuple):
            parts = PARTS.get(self.entry.name, tuple(f"output {i}" for i in range(len(expected))))
            if not isinstance(got, tuple) or len(got) != len(expected):
                raise Mismatch(
                    f"{what}: expected a tuple of {len(expected)} arrays "
                    f"({', '.join(parts)}), got {_kind(got)}"
                )
            for part, g, e in zip(parts, got, expected):
                self.close(g, e, f"{what} ({part})", rtol, atol)
            return
        if isinstance(got, tuple):
            raise Mismatch(f"{what}: expected one array, got a tuple of {len(got)}")
        _compare(np.asarray(got), np.asarray(expected), what, rtol, atol)

    def grads_close(self, outcome: Outcome, expected: dict, rtol=None, atol=None) -> None:
        """Compare gradients (only under an autograd framework)."""
        if not self.autograd:
            return
        rtol = self.options.rtol if rtol is None else rtol
        atol = self.options.atol if atol is None else atol
        G = None if outcome.upstream is None or outcome.upstream.size == 1 else outcome.upstream
        for name, e in expected.items():
            g = outcome.grads.get(name)
            if g is None:
                if np.any(np.asarray(e) != 0):
                    why = (
                        "its .grad is None after backward (a .detach(), a trip through "
                        "NumPy or float(), or torch.no_grad()?)"
                        if outcome.carried
                        else "the output is not connected to the autograd graph"
                    )
                    raise Mismatch(f"no gradient reached {name}: {why}", e, None, G)
                continue
            _compare(g, np.asarray(e), f"gradient of {name}", rtol, atol, upstream=G)


def _compare(g, e, what, rtol, atol, upstream=None):
    if e.size == 1 and g.size == 1:
        e, g = e.reshape(()), g.reshape(())
    if e.shape != g.shape:
        raise Mismatch(f"{what}: expected shape {e.shape}, got shape {g.shape}", e, g, upstream)
    with np.errstate(invalid="ignore", over="ignore"):
        bad = ~np.isclose(g, e, rtol=rtol, atol=atol)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        at = f" at index {idx}" if idx else ""
        raise Mismatch(f"{what}{at}: expected {fmt(e[idx])}, got {fmt(g[idx])}", e, g, upstream)


def _is_array(v) -> bool:
    return isinstance(v, np.ndarray)


def _kwarg(fw, name, v, mask_dtype):
    if not _is_array(v):
        return v
    if name in FLAGS:
        return fw.flag(v, as_bool=(name == "truncated" or mask_dtype == "bool"))
    return fw.leaf(v, False)


def _kind(x) -> str:
    return f"a tuple of {len(x)}" if isinstance(x, tuple) else f"one array of shape {np.shape(x)}"


def _describe(exc: BaseException, fn) -> str:
    """``ValueError: message (impl.py, line 12)``: the innermost line of the user's file."""
    frames = traceback.extract_tb(exc.__traceback__)
    home = getattr(getattr(fn, "__code__", None), "co_filename", None)
    mine = [f for f in frames if f.filename == home] or frames[-1:]
    where = f" ({mine[-1].filename.rsplit('/', 1)[-1]}, line {mine[-1].lineno})" if mine else ""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"raised {type(exc).__name__}{': ' + text if text else ''}{where}"
