"""Regenerate the frontier results that README.md and notebook 06 read.

    python tools/frontier_figures.py                   # the full frontier, then every ablation
    python tools/frontier_figures.py --main            # only the full frontier (3 seeds)
    python tools/frontier_figures.py --variant NAME    # only this ablation (repeatable)

The full run is ``minialign frontier --seeds 3`` (`FrontierConfig()`): its points go to
``minialign/data/frontier_summary.json`` (package data, so notebook 06 finds it in any
install, the browser included), its figure to ``docs/img/frontier_curves.png``, and its
table (best true reward at KL ≤ 1, 2, 4, mean ± std over seeds) between the
``<!-- frontier:start -->`` and ``<!-- frontier:end -->`` markers of README.md.

The ablations rerun DPO (and PPO where its reward model changes) with one setting changed
at a time, on the same seeds, and write ``minialign/data/frontier_ablations.json``: per
variant, its settings, every seed's envelope on a KL grid, the table, and DPO − PPO per
seed at each budget (paired by seed: the same pairs and reward model).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "minialign" / "data"
SUMMARY, ABLATIONS = DATA / "frontier_summary.json", DATA / "frontier_ablations.json"
START, END = "<!-- frontier:start -->", "<!-- frontier:end -->"
SEEDS, BUDGETS, GRID = 3, (1.0, 2.0, 4.0), np.round(np.arange(0.0, 6.01, 0.1), 2)

# name -> (what changes, the FrontierConfig fields, methods rerun; the rest come from "main")
VARIANTS = {
    "off-policy pairs": ("responses from the corpus generator, not from π_ref",
                         dict(pairs="off-policy"), ("dpo", "ppo")),
    "tempered pairs": ("responses from π_ref at sampling temperature 2",
                       dict(pairs="tempered"), ("dpo", "ppo")),
    "1000 pairs": ("a quarter of the pairs", dict(n_pairs=1000), ("dpo", "ppo")),
    "16000 pairs": ("four times the pairs", dict(n_pairs=16000), ("dpo", "ppo")),
    "3x DPO steps": ("900 DPO steps instead of 300", dict(dpo_steps=900), ("dpo",)),
    "16000 pairs, 3x DPO steps": ("both", dict(n_pairs=16000, dpo_steps=900), ("dpo",)),
    "16000 pairs, 10x DPO steps": ("3000 DPO steps", dict(n_pairs=16000, dpo_steps=3000), ("dpo",)),
    "16000 pairs, 10x PPO iterations": ("600 PPO iterations", dict(n_pairs=16000, ppo_iterations=600),
                                        ("ppo",)),
    "beta_bt = 2": ("noisier labels", dict(beta_bt=2.0), ("dpo", "ppo")),
    "beta_bt = 100": ("nearly deterministic labels, like the paper's classifier",
                      dict(beta_bt=100.0), ("dpo", "ppo")),
    "tau up to 32": ("τ ∈ {16, 32} added to DPO's six", dict(dpo_taus=(16.0, 32.0)), ("dpo",)),
}  # fmt: skip
EXTENDS_MAIN = {"tau up to 32"}  # variants whose new runs join main's, not replace them


def run(config, seeds=SEEDS):
    """(points, meta): the run's points; its times and each seed's reward-model accuracies."""
    from minialign.frontier import run_frontier

    accuracy = {}

    def keep_reward_model(points, rows):
        for r in rows:
            if r["run"].startswith("reward_model") and r["metric"].startswith("eval_"):
                accuracy.setdefault(r["metric"].removeprefix("eval_"), {})[r["seed"]] = r["value"]

    t0, c0 = time.perf_counter(), time.process_time()
    points = run_frontier(config, seeds=seeds, progress=False, on_result=keep_reward_model)
    meta = dict(wall_seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - c0)
    meta["reward_model"] = {k: [v[s] for s in sorted(v)] for k, v in accuracy.items()}  # last eval
    return points, meta


def main_run() -> None:
    from minialign import plots
    from minialign.frontier import FrontierConfig, frontier_table, table_markdown
    from minialign.frontier_curves import plot_frontier_curves

    config = FrontierConfig()
    points, seconds = run(config)
    meta = dict(config=asdict(config), seeds=SEEDS, **seconds)
    body = ",\n".join(json.dumps(_rounded(p)) for p in points)
    SUMMARY.write_text(f'{{"meta": {json.dumps(meta)},\n"points": [\n{body}\n]}}\n')
    ax = plot_frontier_curves(points)
    plots.save_figure(ax.figure, ROOT / "docs" / "img" / "frontier_curves.png")
    table = table_markdown(frontier_table(points, BUDGETS))
    note = (
        f"Best true reward reached at KL ≤ 1, 2 and 4 nats (the upper envelope of every "
        f"checkpoint of every knob), mean ± standard deviation over {SEEDS} seeds; best-of-n "
        f"uses its KL bound. `minialign frontier` (the full run): {seconds['wall_seconds'] / 60:.0f} min "
        f"wall, {seconds['cpu_seconds'] / 60:.0f} min CPU on this project's shared 2-core machine."
    )
    _readme_section(f"{table}\n\n{note}")


def ablations(names) -> None:
    from minialign.frontier import FrontierConfig, frontier_table, seed_envelopes

    main_points = json.loads(SUMMARY.read_text())["points"]
    result = {"budgets": list(BUDGETS), "grid": GRID.tolist(), "variants": {}}
    if ABLATIONS.exists() and names != list(VARIANTS):  # keep the variants not rerun
        result["variants"] = json.loads(ABLATIONS.read_text())["variants"]
    base = FrontierConfig(optimum_samples=0)
    variants = {"main": ("none: section 3, the README's run", {}, ()), **VARIANTS}
    for name in ["main", *names]:
        what, fields, methods = variants[name]
        points, seconds = run(replace(base, methods=methods, **fields)) if methods else ([], {})
        keep = ("dpo", "ppo") if name in EXTENDS_MAIN else set(("dpo", "ppo")) - set(methods)
        points += [p for p in main_points if p["method"] in keep]
        entry = dict(what=what, fields=fields, rerun=list(methods), **seconds)
        entry["table"] = frontier_table(
            [p for p in points if p["method"] in ("dpo", "ppo")], BUDGETS
        )
        entry["envelopes"] = {
            m: seed_envelopes(points, m, GRID)[1].tolist() for m in ("dpo", "ppo")
        }
        dpo, ppo = (seed_envelopes(points, m, BUDGETS)[1] for m in ("dpo", "ppo"))
        entry["dpo_minus_ppo"] = (dpo - ppo).tolist()  # (seeds, budgets), paired by seed
        result["variants"][name] = entry
        print(
            f"{name}: DPO - PPO at KL <= {BUDGETS}: {np.round((dpo - ppo).mean(0), 3)}", flush=True
        )
        ABLATIONS.write_text(json.dumps(_rounded(result), indent=1) + "\n")


def _rounded(obj, digits: int = 5):
    """``obj`` with every float rounded to ``digits`` significant digits (smaller files)."""
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}")
    if isinstance(obj, dict):
        return {k: _rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_rounded(v, digits) for v in obj]
    return obj


def _readme_section(text: str) -> None:
    readme = (ROOT / "README.md").read_text()
    if START not in readme or END not in readme:
        raise SystemExit(f"README.md lacks the {START} ... {END} markers")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    (ROOT / "README.md").write_text(f"{head}{START}\n{text}\n{END}{tail}")


def main(argv: list[str]) -> int:
    import argparse

    from minialign.pretrained import single_thread_blas

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--main", action="store_true", help="only the full frontier")
    parser.add_argument("--variant", action="append", choices=list(VARIANTS),
                        help="only this ablation (repeatable); the others are kept")  # fmt: skip
    args = parser.parse_args(argv)
    with single_thread_blas():
        if not args.variant:
            main_run()
            print(f"updated {SUMMARY}, docs/img/frontier_curves.png, README.md")
        if not args.main:
            ablations(args.variant or list(VARIANTS))
            print(f"updated {ABLATIONS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
