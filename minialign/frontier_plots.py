"""The figure of ``minialign frontier``: `plot_frontier_curves`.

Kept out of `minialign.plots` only to keep each module short enough to read in one sitting."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

_FRONTIER_STYLE = {  # method -> (color, marker, legend label)
    "optimum": ("black", "", "KL-regularised optimum (estimate)"),
    "dpo": ("tab:red", "^", "DPO"),
    "ppo": ("tab:blue", "o", "PPO (reward model)"),
    "ppo_gt": ("tab:cyan", "v", "PPO-GT (true reward)"),
    "grpo": ("tab:green", "s", "GRPO (reward model)"),
    "best_of_n": ("tab:purple", "D", "best-of-n (KL: upper bound)"),
    "preferred_ft": ("tab:brown", "P", "Preferred-FT"),
    "unlikelihood": ("tab:olive", "X", "Unlikelihood"),
}
_KNOB_SYMBOL = {"tau": "τ", "beta": "β", "n": "n", "alpha": "α"}


def plot_frontier_curves(points: Sequence[Mapping], ax=None, *, label_knobs: bool = True):
    """True reward against KL(π‖π_ref) for ``minialign frontier``'s points (summary.json).

    Every point is drawn faint; each method's **upper envelope** (the best true reward at
    KL ≤ c, `minialign.frontier.envelope`, one per seed) is drawn bold as the mean over
    seeds with a band of ± one standard deviation, up to the largest KL that every seed
    reached. ``label_knobs`` writes each knob (τ, β, n, α) at its runs' mean final point.
    Points of method "optimum" are drawn as one dashed curve. Points beyond twice the 98th
    percentile of the KLs (a diverged checkpoint) are left off the axis and counted in a note.
    Returns the axes.
    """
    import matplotlib.pyplot as plt

    from .frontier import KNOBS, seed_envelopes

    if not points:
        raise ValueError("plot_frontier_curves: points is empty")
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 5.5))
    for method in dict.fromkeys(p["method"] for p in points):
        mine = [p for p in points if p["method"] == method]
        color, marker, label = _FRONTIER_STYLE.get(method, (None, "o", method))
        kl, reward = (np.array([p[k] for p in mine]) for k in ("kl", "true_reward"))
        if method == "optimum":
            order = np.argsort(kl)
            ax.plot(kl[order], reward[order], "--", color=color, lw=1.5, label=label)
            continue
        ax.scatter(kl, reward, s=12, color=color, marker=marker, alpha=0.3, linewidths=0)
        reach = min(max(p["kl"] for p in mine if p["seed"] == s) for s in {p["seed"] for p in mine})
        grid = np.linspace(min(0.0, kl.min()), reach, 200)
        seeds, env = seed_envelopes(points, method, grid)  # (S, 200)
        ok = ~np.isnan(env).any(axis=0)
        mean = env[:, ok].mean(axis=0)
        seeds_text = f"{len(seeds)} seed" + ("s" if len(seeds) > 1 else "")
        ax.plot(grid[ok], mean, color=color, lw=2.2, label=f"{label}, {seeds_text}")
        if len(seeds) > 1:
            std = env[:, ok].std(axis=0, ddof=1)
            ax.fill_between(grid[ok], mean - std, mean + std, color=color, alpha=0.18, lw=0)
        if label_knobs and KNOBS.get(method):
            _label_knobs(ax, mine, KNOBS[method], color)
    kl_all = np.array([p["kl"] for p in points])
    usual = kl_all[
        kl_all <= 2 * np.quantile(kl_all, 0.98)
    ]  # a diverged checkpoint squashes the rest
    right = 1.05 * usual.max() if usual.max() > 0 else None
    if right is not None and (kl_all > right).any():
        ax.set_xlim(min(0.0, kl_all.min()) - 0.03 * right, right)
        ax.text(0.99, 0.01, f"{int((kl_all > right).sum())} point(s) beyond KL {right:.1f} not shown",
                transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="gray")  # fmt: skip
    ax.set_xlabel(r"KL($\pi \,\|\, \pi_{\rm ref}$)  (nats per response)")
    ax.set_ylabel("true reward")
    ax.set_title("Reward against KL: every checkpoint (faint) and each method's frontier")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 0.04))
    return ax


def _label_knobs(ax, points, knob: str, color) -> None:
    """Write ``knob=value`` at the mean (over seeds) of each run's last point."""
    for value in sorted({p[knob] for p in points}):
        last = {}
        for p in points:
            if p[knob] == value and p["step"] >= last.get(p["seed"], {"step": -1})["step"]:
                last[p["seed"]] = p
        x = np.mean([p["kl"] for p in last.values()])
        y = np.mean([p["true_reward"] for p in last.values()])
        ax.annotate(f"{_KNOB_SYMBOL.get(knob, knob)}={value:g}", (x, y), fontsize=6.5,
                    color=color, xytext=(3, -8), textcoords="offset points")  # fmt: skip
