r"""A method's frontier from its points (``minialign frontier``'s summary.json): the envelope,
the table at a few KL budgets, and the figure.

A point is a dict with ``method``, ``seed``, ``kl`` and ``true_reward`` (and the run's knob).
A method's frontier is the **upper envelope** of its points, $E(c) = \max\{r_i : \mathrm{KL}_i \le c\}$,
one per seed (`envelope`, `seed_envelopes`); `frontier_table` reads it at a few budgets as mean
± standard deviation over seeds; `plot_frontier_curves` draws every point and every frontier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

KNOBS = {"dpo": "tau", "ppo": "beta", "ppo_gt": "beta", "grpo": "beta", "preferred_ft": None,
         "unlikelihood": "alpha", "best_of_n": "n", "optimum": "beta"}  # fmt: skip


def envelope(kl, reward, budgets) -> np.ndarray:
    r"""$E(c) = \max\{r_i : \mathrm{KL}_i \le c\}$ for each budget $c$ (NaN where no point fits)."""
    kl, reward, budgets = (np.asarray(a, np.float64) for a in (kl, reward, budgets))
    if kl.shape != reward.shape or kl.ndim != 1:
        raise ValueError(
            f"envelope: kl and reward must be 1-D of one length, got {kl.shape}, {reward.shape}"
        )
    if not (np.isfinite(kl).all() and np.isfinite(reward).all()):
        raise ValueError("envelope: kl and reward must be finite")
    if len(kl) == 0:
        return np.full(budgets.shape, np.nan)
    order = np.argsort(kl, kind="stable")
    best = np.maximum.accumulate(reward[order])  # best reward among the i smallest KLs
    last = np.searchsorted(kl[order], budgets, side="right") - 1  # last point with KL <= c
    return np.where(last >= 0, best[np.maximum(last, 0)], np.nan)


def seed_envelopes(points, method: str, budgets) -> tuple[list[int], np.ndarray]:
    """(seeds, (S, len(budgets)) envelopes), one row per seed of ``method``."""
    seeds = sorted({p["seed"] for p in points if p["method"] == method})
    rows = []
    for s in seeds:
        mine = [p for p in points if p["method"] == method and p["seed"] == s]
        rows.append(envelope([p["kl"] for p in mine], [p["true_reward"] for p in mine], budgets))
    return seeds, np.array(rows).reshape(len(seeds), len(np.atleast_1d(budgets)))


def frontier_table(points, budgets=(1.0, 2.0, 4.0)) -> list[dict]:
    """Per method, the best true reward at KL ≤ each budget: mean, std over seeds (ddof 1), n."""
    table = []
    for method in dict.fromkeys(p["method"] for p in points):
        seeds, env = seed_envelopes(points, method, budgets)
        spread = env.std(axis=0, ddof=1) if len(seeds) > 1 else np.full(len(budgets), np.nan)
        table.append({"method": method, "seeds": len(seeds), "budgets": list(budgets),
                      "mean": env.mean(axis=0).tolist(), "std": spread.tolist()})  # fmt: skip
    return table


def table_markdown(table: list[dict]) -> str:
    """`frontier_table` as a Markdown table: "mean ± std" per budget."""
    budgets = table[0]["budgets"]
    head = "| method | seeds | " + " | ".join(f"KL ≤ {b:g}" for b in budgets) + " |"
    lines = [head, "|---|---:|" + "---:|" * len(budgets)]
    for row in table:
        cells = [f"{m:+.2f}" + (f" ± {s:.2f}" if np.isfinite(s) else "") if np.isfinite(m) else "–"
                 for m, s in zip(row["mean"], row["std"])]  # fmt: skip
        lines.append(f"| {row['method']} | {row['seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- the figure -----------------------------------------------------------------------------


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
