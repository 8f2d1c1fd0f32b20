"""Pictures of training runs: a `History`'s metrics, a demo's frontier and curves.

``plot_history(history, ["loss", "eval_loss"])`` accepts a `minialign.train.History`, its
``as_dict()`` form, or a plain ``{name: [values]}`` dict (then the x axis is the index, or
``d["step"]`` if present).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .figures import decorate, panels


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

    from ..checkpoint import atomic_write

    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
