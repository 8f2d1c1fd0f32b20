"""Pictures of training: ``plot_history(history, ["loss", "eval_loss"])``.

Accepts a `minialign.train.History`, its ``as_dict()`` form, or a plain
``{name: [values]}`` dict (then the x axis is the index, or ``d["step"]`` if present).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def _series(history, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one metric, from any of the accepted history forms."""
    if hasattr(history, "steps") and callable(history.steps):  # a History
        return history.steps(key), history[key]
    if not isinstance(history, Mapping) or key not in history:
        known = list(history) if isinstance(history, Mapping) else type(history).__name__
        raise ValueError(f"plot_history: no metric {key!r} in the history (has {known})")
    value = history[key]
    if isinstance(value, Mapping):  # History.as_dict() form
        return np.asarray(value["step"]), np.asarray(value["value"], dtype=float)
    values = np.asarray(value, dtype=float)
    steps = np.asarray(history["step"]) if "step" in history else np.arange(len(values))
    if len(steps) != len(values):
        steps = np.arange(len(values))
    return steps, values


def plot_history(
    history,
    keys: str | Sequence[str] = ("loss",),
    ax=None,
    *,
    title: str | None = None,
    ylabel: str | None = None,
    logy: bool = False,
    smooth: int = 1,
):
    """Draw the metrics ``keys`` against the training step on ``ax`` (a new figure if None).

    ``smooth`` > 1 also draws a trailing moving average over that many points (the raw
    curve is then faded). Returns the axes.
    """
    import matplotlib.pyplot as plt

    keys = [keys] if isinstance(keys, str) else list(keys)
    if not keys:
        raise ValueError("plot_history: keys is empty; name at least one metric, e.g. 'loss'")
    if smooth < 1:
        raise ValueError(f"plot_history: smooth must be >= 1, got {smooth}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for key in keys:
        steps, values = _series(history, key)
        if smooth > 1 and len(values) >= smooth:
            (line,) = ax.plot(steps, values, alpha=0.3)
            kernel = np.ones(smooth) / smooth
            ax.plot(
                steps[smooth - 1 :],
                np.convolve(values, kernel, "valid"),
                color=line.get_color(),
                label=key,
            )
        else:
            ax.plot(steps, values, marker="o" if len(values) < 20 else None, label=key)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel or (keys[0] if len(keys) == 1 else "value"))
    ax.set_title(title or ", ".join(keys) + " during training")
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


_METHOD_STYLE = {
    "ppo": ("tab:blue", "o"),
    "grpo": ("tab:green", "s"),
    "dpo": ("tab:red", "^"),
    "best_of_n": ("tab:purple", "D"),
    "reference": ("black", "*"),
}


_KNOBS = (("beta", "β"), ("tau", "τ"), ("n", "n"))  # how a run's setting is labelled


def knob_label(record: Mapping) -> str:
    """``"β=0.05"``, ``"τ=2"`` or ``"n=16"``: the setting that distinguishes a run of a method
    (DPO's τ is shown, not its β = 1/τ)."""
    for key, symbol in (_KNOBS[1], _KNOBS[2], _KNOBS[0]):
        if record.get(key) is not None:
            return f"{symbol}={record[key]:g}"
    return ""


def plot_frontier(summary: Sequence[Mapping], ax=None):
    """True reward against KL(π‖π_ref), one curve per method: the DPO paper's Figure 2 in miniature.

    ``summary`` is a list of records with ``method``, ``kl`` and ``true_reward`` (as written
    to ``summary.json`` by ``minialign demo``); each point is labelled with its setting
    (``knob_label``). Returns the axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4.5))
    methods = list(dict.fromkeys(r["method"] for r in summary))
    for method in methods:
        runs = sorted((r for r in summary if r["method"] == method), key=lambda r: r["kl"])
        color, marker = _METHOD_STYLE.get(method, (None, "o"))
        kl = [r["kl"] for r in runs]
        reward = [r["true_reward"] for r in runs]
        style = "" if method == "reference" else "-"
        label = "best_of_n (KL: the analytic bound)" if method == "best_of_n" else method
        ax.plot(kl, reward, style, marker=marker, color=color, label=label, markersize=8)
        for r in runs:
            ax.annotate(knob_label(r), (r["kl"], r["true_reward"]), textcoords="offset points",
                        xytext=(5, -11), fontsize=7, color=color)  # fmt: skip
    ax.set_xlabel(r"KL($\pi \,\|\, \pi_{\rm ref}$)  (nats per response)")
    ax.set_ylabel("true reward")
    ax.set_title("Reward gained against KL spent")
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


_AXIS_LABELS = {"kl": r"KL($\pi \,\|\, \pi_{\rm ref}$) (nats)", "true_reward": "true reward",
                "proxy_reward": "proxy reward (reward model)"}  # fmt: skip
_LINESTYLES = ("-", "--", ":", "-.")


def _run_label(run: str) -> tuple[str, str]:
    """``"ppo-0.05"`` -> (``"ppo"``, ``"ppo β=0.05"``); ``"dpo-2"`` -> (``"dpo"``, ``"dpo τ=2"``)."""
    method, _, value = run.rpartition("-")
    if not method:
        return run, run
    symbol = {"ppo": "β", "grpo": "β", "dpo": "τ", "best_of_n": "n"}.get(method, "")
    return method, f"{method} {symbol}={value}" if symbol else run


def plot_run_curves(
    metrics: Sequence[Mapping],
    keys=("eval_true_reward", "eval_proxy_reward", "eval_kl"),
    note: str | None = None,
):
    """One panel per metric in ``keys``, one line per run, from ``metrics.jsonl`` records
    (``{"run", "metric", "step", "value"}``). Runs differ in length (PPO iterations, DPO
    steps), so the x axis is the fraction of each run completed. A method keeps its
    colour and its runs differ by line style; ``note`` is printed under the panels (e.g.
    how many prompts the curves used). Returns the figure."""
    import matplotlib.pyplot as plt

    keys = [k for k in keys if any(m["metric"] == k for m in metrics)] or ["loss"]
    runs = list(dict.fromkeys(m["run"] for m in metrics if m["metric"] in keys))
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.6), squeeze=False)
    seen: dict[str, int] = {}
    styles = {}
    for run in runs:
        method, label = _run_label(run)
        k = seen[method] = seen.get(method, -1) + 1
        color = _METHOD_STYLE.get(method, (plt.get_cmap("tab10")(len(seen) % 10), ""))[0]
        styles[run] = dict(color=color, linestyle=_LINESTYLES[k % 4], label=label)
    for ax, key in zip(axes[0], keys):
        for run in runs:
            points = [
                (m["step"], m["value"]) for m in metrics if m["run"] == run and m["metric"] == key
            ]
            if points:
                steps, values = map(np.asarray, zip(*points))
                ax.plot(steps / max(steps.max(), 1), values, **styles[run])
        name = key.removeprefix("eval_")
        ax.set_xlabel("fraction of the run")
        ax.set_ylabel(_AXIS_LABELS.get(name, name.replace("_", " ")))
        ax.set_title(name.replace("_", " ") + " on held-out prompts")
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    if note:
        fig.text(0.01, -0.02, note, fontsize=8, va="top")
    fig.tight_layout()
    return fig


def save_figure(fig, path) -> None:
    """Save ``fig`` as a PNG atomically (`minialign.checkpoint.atomic_write`) and close it."""
    import matplotlib.pyplot as plt

    from .checkpoint import atomic_write

    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)


# ----------------------------------------------------------------------------
# Small helpers for the notebooks: the lines every panel repeats, so that a code
# cell shows the quantity being plotted rather than matplotlib.
# ----------------------------------------------------------------------------


def panels(n: int = 1, *, width: float = 5.5, height: float = 3.8):
    """A row of ``n`` axes, ``width`` x ``height`` inches each: ``fig, axes = panels(3)``.

    ``axes`` is always a 1-D array (also for ``n = 1``)."""
    import matplotlib.pyplot as plt

    if int(n) != n or n < 1:
        raise ValueError(f"panels: n must be a positive integer, got {n}")
    fig, axes = plt.subplots(1, int(n), figsize=(width * n, height), squeeze=False)
    return fig, axes[0]


def decorate(
    ax,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    *,
    hlines: Mapping[str, float] | None = None,
    vlines: Mapping[str, float] | None = None,
    logx: bool = False,
    logy: bool = False,
    legend: bool = True,
    fontsize: float | None = None,
):
    """Title, axis labels, labelled reference lines, log axes, grid and legend on ``ax``.

    ``hlines``/``vlines`` map a legend label to a value: ``hlines={"log 2": np.log(2)}``
    draws a dotted grey horizontal line at 0.693 named "log 2" (an empty label: no legend
    entry). The legend is drawn only if some line has a label. Returns the axes.
    """
    for (label, value), style in zip((hlines or {}).items(), ("--", ":", "-.") * 9):
        ax.axhline(value, color="gray", ls=style, lw=1, label=label or None)
    for (label, value), style in zip((vlines or {}).items(), ("--", ":", "-.") * 9):
        ax.axvline(value, color="gray", ls=style, lw=1, label=label or None)
    if title is not None:
        ax.set_title(title)
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if legend and ax.get_legend_handles_labels()[1]:
        ax.legend(fontsize=fontsize)
    return ax


def moving_average(values, k: int) -> np.ndarray:
    """Trailing mean over ``k`` points, ``len(values) - k + 1`` of them (``k = 1``: a copy)."""
    values = np.asarray(values, dtype=float)
    if int(k) != k or k < 1:
        raise ValueError(f"moving_average: k must be a positive integer, got {k}")
    if len(values) < k:
        raise ValueError(f"moving_average: need at least k = {k} values, got {len(values)}")
    return np.convolve(values, np.ones(int(k)) / k, "valid")


def plot_curves(curves: Mapping, ax=None, *, style: str = "-", smooth: int = 1, **decoration):
    """One line per item of ``curves``, then `decorate` (``decoration`` = its keywords).

    Each value is ``y`` (drawn against 0, 1, 2, ...) or a pair ``(x, y)``. ``smooth`` > 1
    draws the trailing `moving_average` over that many points instead, against the x of
    each window's last point. Returns the axes.
    """
    import matplotlib.pyplot as plt

    if not curves:
        raise ValueError("plot_curves: curves is empty; pass {label: y} or {label: (x, y)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.8))
    for label, curve in curves.items():
        x, y = curve if isinstance(curve, tuple) else (np.arange(len(curve)), curve)
        x, y = np.asarray(x), np.asarray(y, dtype=float)
        if x.shape != y.shape:
            raise ValueError(f"plot_curves: {label!r} has x of shape {x.shape}, y {y.shape}")
        if smooth > 1:
            x, y = x[smooth - 1 :], moving_average(y, smooth)
        ax.plot(x, y, style, label=label)
    return decorate(ax, **decoration)


def plot_histograms(samples: Mapping, bins, ax=None, *, step: bool = False, **decoration):
    """Overlaid histograms, one per item of ``samples`` ({label: values}), on shared ``bins``.

    ``step=True`` draws outlines (many overlapping histograms), otherwise translucent
    bars. Then `decorate` with ``decoration``. Returns the axes."""
    import matplotlib.pyplot as plt

    if not samples:
        raise ValueError("plot_histograms: samples is empty; pass {label: values}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.8))
    for label, values in samples.items():
        if step:
            ax.hist(np.asarray(values, dtype=float), bins=bins, histtype="step", lw=2, label=label)
        else:
            ax.hist(np.asarray(values, dtype=float), bins=bins, alpha=0.6, label=label)
    return decorate(ax, **decoration)


def plot_runs(runs: Mapping, keys: Sequence[str], axes=None, *, titles=None, ylabels=None):
    """Compare runs: one panel per metric in ``keys``, one line per run ({label: History}).

    ``titles``/``ylabels`` (one per key) default to the key. Returns the axes."""
    if not runs or not keys:
        raise ValueError("plot_runs: need at least one run and one metric key")
    if axes is None:
        _, axes = panels(len(keys))
    if len(axes) != len(keys):
        raise ValueError(f"plot_runs: {len(keys)} keys but {len(axes)} axes")
    for i, (ax, key) in enumerate(zip(axes, keys)):
        for label, history in runs.items():
            steps, values = _series(history, key)
            ax.plot(steps, values, "o-" if len(values) < 30 else "-", label=label)
        title = titles[i] if titles else key
        decorate(ax, title, "step", ylabels[i] if ylabels else key)
    return axes


def plot_clipped_surrogate(ratio, advantage: float, epsilon: float, zero_grad=None, ax=None):
    r"""PPO's clipped objective for one advantage $\hat A$ over a grid of ratios $r$.

    Draws $\min(r\hat A,\ \mathrm{clip}(r, 1-\epsilon, 1+\epsilon)\hat A)$ (the term inside
    $L^{\rm CLIP}$, maximised), the unclipped $r\hat A$, the edges $1\pm\epsilon$, and shades
    the ratios where ``zero_grad`` (a bool array over ``ratio``, e.g. measured with
    autograd) is True. Returns the axes.
    """
    import matplotlib.pyplot as plt

    ratio = np.asarray(ratio, dtype=float)
    surrogate = np.minimum(ratio * advantage, np.clip(ratio, 1 - epsilon, 1 + epsilon) * advantage)
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.plot(ratio, surrogate, color="tab:blue", label=r"$\min(r\hat A,\ \mathrm{clip}(r)\hat A)$")
    ax.plot(ratio, ratio * advantage, ":", color="gray", label=r"unclipped $r\hat A$")
    if zero_grad is not None:
        zero_grad = np.asarray(zero_grad, dtype=bool)
        if zero_grad.shape != ratio.shape:
            raise ValueError(
                f"plot_clipped_surrogate: zero_grad has shape {zero_grad.shape}, "
                f"ratio has {ratio.shape}"
            )
        low, high = surrogate.min() - 0.1, surrogate.max() + 0.1
        ax.fill_between(
            ratio, low, high, where=zero_grad, color="tab:red", alpha=0.15, label="gradient = 0"
        )
    for edge in (1 - epsilon, 1 + epsilon):
        ax.axvline(edge, color="gray", lw=0.8, ls="--")
    ax.set_title(rf"$\hat A = {advantage:+g}$, $\epsilon = {epsilon:g}$")
    ax.set_xlabel(r"ratio $r_\theta = \pi_\theta / \pi_{\theta_{old}}$")
    ax.set_ylabel("surrogate objective")
    ax.legend(fontsize=8, loc="upper left" if advantage > 0 else "lower left")
    ax.grid(alpha=0.3)
    return ax


def plot_history_grid(runs, panels: Sequence, ncols: int = 2, smooth: int = 1):
    """A grid of `plot_history` panels, one per ``(keys, title, ylabel)`` in ``panels``.

    ``runs`` is one history (every key in its panel is drawn) or ``{label: history}``
    (one line per run, labelled, for a single key per panel). Returns the figure.
    """
    import matplotlib.pyplot as plt

    if not panels:
        raise ValueError("plot_history_grid: panels is empty; pass (keys, title, ylabel) tuples")
    if ncols < 1:
        raise ValueError(f"plot_history_grid: ncols must be >= 1, got {ncols}")
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.5 * ncols, 3.6 * nrows), squeeze=False)
    several = isinstance(runs, Mapping) and all(hasattr(h, "steps") for h in runs.values())
    for ax, (keys, title, ylabel) in zip(axes.flat, panels):
        if not several:
            plot_history(runs, keys, ax=ax, title=title, ylabel=ylabel, smooth=smooth)
            continue
        if not isinstance(keys, str):
            raise ValueError(
                f"plot_history_grid: with several runs a panel takes one key, got {keys}"
            )
        for label, history in runs.items():
            steps, values = _series(history, keys)
            plot_history(
                {"step": steps, label: values},
                label,
                ax=ax,
                title=title,
                ylabel=ylabel,
                smooth=smooth,
            )
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig
