"""`check`: run every property of a name against a function, and report.

Each property runs as a hypothesis test with fixed settings (derandomised, no example
database, no deadline, a fixed number of examples), so a check gives the same report
every time (also whatever else is imported: see `_no_local_constants`). When a property fails, hypothesis shrinks the input and replays the smallest
failing one last; the test records what each call received, so the report shows that
smallest input. Nothing of hypothesis (a traceback, "Falsifying example") reaches the
user: every exception, including one raised by the function under test, becomes a
`Failure` in the report.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import time
import warnings

import numpy as np

from . import frameworks, registry
from .context import Ctx, Mismatch, UserError
from .options import CheckOptions
from .report import CheckReport, Failure

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def check(name: str, fn, framework: str = "numpy", **options) -> CheckReport:
    """Check ``fn``, your implementation of minialign's ``name``, and report.

    ``fn`` takes the same positional arguments as ``minialign.objectives.<name>`` (see
    ``minialign check --list``); each optional keyword argument of minialign's (``mask``,
    ``estimator``, ``ddof``, ...) is exercised only if ``fn`` accepts it by name. It returns
    what minialign's returns: a scalar loss, an array, or a tuple for ``gae_advantages``.

    ``framework``: ``"numpy"`` (arrays in, values compared), ``"minialign"`` (Tensors in,
    values and gradients compared), ``"torch"`` (float64 torch tensors in, values and
    gradients through ``torch.autograd``). ``options`` are the conventions and
    tolerances of `CheckOptions` (``ddof=1`` for TRL's Bessel σ, ``estimator="k3"``,
    ``level="token"``, ``dpo_beta=True``, ``max_examples=...``).

    Returns a `CheckReport`; ``print(report)`` shows the smallest failing input of every
    failing property. Raises ValueError for an unknown name or framework, TypeError for a
    function whose signature cannot take the arguments, ImportError if hypothesis (or
    torch, for ``framework="torch"``) is missing.
    """
    entry = registry.get(name)
    opts = CheckOptions.from_kwargs(options)
    accepted = accepted_options(entry, fn)
    fw = frameworks.get(framework)
    hypothesis = _hypothesis()
    spec = importlib.import_module(f"{__package__}.specs.{entry.spec}").SPECS[entry.name]
    to_user = spec.to_user(opts) if spec.to_user else None
    ctx = Ctx(entry, fn, fw, opts, accepted, spec.reference(opts), to_user)
    report = CheckReport(entry.name, fw.name, _label(fn), notes=_notes(entry, accepted, opts))
    start = time.perf_counter()
    with warnings.catch_warnings(), np.errstate(all="ignore"), fw.session(), _no_local_constants():
        warnings.simplefilter("ignore")
        for prop in spec.properties(ctx):
            failure = _run(prop, ctx, hypothesis)
            report.properties[prop.name] = failure is None
            if failure is not None:
                report.failures.append(failure)
    report.seconds = time.perf_counter() - start
    return report


def accepted_options(entry: registry.Entry, fn) -> set[str]:
    """The entry's keyword options that ``fn`` takes by name; TypeError if ``fn`` cannot
    take the positional arguments, or requires more (a required ``mask`` is fine: every
    case passes one to a function that takes it)."""
    if not callable(fn):
        raise TypeError(f"check: expected a function for {entry.name}, got {type(fn).__name__}")
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: just call it
        return set()
    n = len(entry.args)
    positional = [p for p in params if p.kind in _POSITIONAL]
    wanted = f"{entry.name}({', '.join(entry.args)})"
    takes_star = any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in params)
    if len(positional) < n and not takes_star:
        got = ", ".join(p.name for p in positional) or "nothing"
        raise TypeError(
            f"{_label(fn)} takes {len(positional)} positional arguments ({got}); "
            f"it must take the {n} of {wanted}"
        )
    required = [p.name for p in positional[n:] if p.default is p.empty] + [
        p.name for p in params if p.kind == inspect.Parameter.KEYWORD_ONLY and p.default is p.empty
    ]
    required = [
        r for r in required if not (r == "mask" and "mask" in entry.options)
    ]  # always given
    if required:
        raise TypeError(
            f"{_label(fn)} requires {', '.join(required)} beyond the arguments of {wanted}; "
            f"give them defaults"
        )
    core = {p.name for p in positional[:n]}
    named = {p.name for p in params if p.kind in _NAMED} - core
    return {o for o in entry.options if o in named}


def _run(prop, ctx: Ctx, hypothesis) -> Failure | None:
    from hypothesis.errors import UnsatisfiedAssumption

    box: dict[str, Failure] = {}

    def body(case):
        ctx.calls = []
        try:
            prop.test(ctx, case)
        except UnsatisfiedAssumption:
            raise
        except Exception as exc:
            box["failure"] = _failure(prop.name, ctx, exc)  # the last one is the shrunk one
            raise

    settings = hypothesis.settings(
        hypothesis.settings.get_profile("default"),
        max_examples=prop.examples or ctx.options.max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        verbosity=hypothesis.Verbosity.quiet,
        suppress_health_check=list(hypothesis.HealthCheck),
        report_multiple_bugs=False,
        phases=(hypothesis.Phase.explicit, hypothesis.Phase.generate, hypothesis.Phase.shrink),
    )
    try:
        settings(hypothesis.given(prop.cases)(body))()
    except Exception as exc:
        failure = box.get("failure")
        if failure is None:
            return Failure(prop.name, f"the check could not run: {type(exc).__name__}: {exc}")
        if "Flaky" in type(exc).__name__:
            failure.note = (
                "(the function did not fail the same way when called again on the same "
                "input: does it use randomness or keep state between calls?)"
            )
        return failure
    return None


def _failure(name: str, ctx: Ctx, exc: Exception) -> Failure:
    inputs = [(label, case.lines()) for label, case in ctx.calls]
    if isinstance(exc, Mismatch):
        return Failure(name, exc.message, inputs, exc.expected, exc.got, exc.upstream)
    if isinstance(exc, UserError):
        return Failure(name, f"your function {exc}", inputs)
    return Failure(name, f"{type(exc).__name__}: {exc}", inputs)


def _notes(entry, accepted: set[str], opts: CheckOptions) -> list[str]:
    notes = []
    if accepted:
        notes.append(f"also exercised your keyword arguments: {', '.join(sorted(accepted))}")
    missing = [o for o in entry.options if o not in accepted]
    if missing:
        notes.append(f"not exercised (your function does not take them): {', '.join(missing)}")
    changed = opts.changed()
    if changed:
        notes.append("options: " + ", ".join(f"{k}={v!r}" for k, v in changed.items()))
    return notes


@contextlib.contextmanager
def _no_local_constants():
    """Keep hypothesis from mixing constants found in the caller's own modules into its
    draws, so the report does not depend on what else is imported (a student's file, an
    editable install of minialign). This reaches into a private part of hypothesis; if
    that part moves, the check still runs, only without this guarantee."""
    try:
        from hypothesis.internal.conjecture import providers

        original, cache = providers._get_local_constants, providers.CONSTANTS_CACHE.cache
        empty = providers.Constants()
    except (ImportError, AttributeError):
        yield
        return
    cache.clear()
    providers._get_local_constants = lambda: empty
    try:
        yield
    finally:
        providers._get_local_constants = original
        cache.clear()


def _label(fn) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def _hypothesis():
    try:
        return importlib.import_module("hypothesis")
    except ImportError:
        raise ImportError(
            'minialign.check needs hypothesis, which is not installed: pip install "minialign[check]"'
        ) from None
