r"""``minialign frontier``: the DPO paper's Figure 2 (left), reproduced faithfully in miniature.

The paper (Rafailov et al. 2023, §6.1): prompts are IMDb prefixes; the SFT model samples
pairs of completions per prompt; a sentiment classifier (the ground-truth reward) labels
them; DPO, PPO on a reward model learned from those pairs, PPO on the true reward
(PPO-GT), Unlikelihood and Preferred-FT are compared by expected true reward against the
sequence-level $\mathrm{KL}(\pi \| \pi_{\rm ref})$, over several $\beta$, with points taken
along training. Here, on the sentiment task:

1. **Pairs**: ``n_pairs`` prompts, two responses each sampled from $\pi_{\rm ref}$ (the
   shipped reference), labelled by a Bradley–Terry annotator on the true reward,
   $P(y_1 \succ y_2) = \sigma(\beta_{BT}(r_1 - r_2))$. For the ablations, ``pairs`` draws the
   responses from the corpus generator ("off-policy") or $\pi_{\rm ref}$ at temperature 2
   ("tempered") instead.
2. **Proxy**: a reward model trained on the same pairs (PPO, GRPO and best-of-n use it).
3. **Runs**: every (method, knob, seed) of `minialign.frontier_methods`, each evaluated
   ``n_evals`` times along training on the same held-out prompts (true reward and the
   sequence-level k1 KL, `minialign.train.evaluate_policy`): a curve per run.
4. **The ideal**: the KL-regularised optimum on the true reward, estimated by importance
   sampling from $\pi_{\rm ref}$ (`kl_regularised_optimum`), the curve no method can beat.

A method's frontier is the **upper envelope** of its points, $E(c) = \max\{r_i : \mathrm{KL}_i \le c\}$,
one per seed; `frontier_table` reports it at a few KL budgets as mean ± standard deviation
over seeds (`minialign.frontier_curves`, re-exported here, also draws the figure). Knobs are
matched so that each asks for the same optimum $\pi_{\rm ref}\,e^{\beta_{BT} r/\beta}$ (if the
reward model learned $\beta_{BT} r$): PPO's $\beta$ = 1/DPO's $\tau$, PPO-GT's $\beta$ = PPO's / $\beta_{BT}$.

``frontier_command`` is the command line's ``minialign frontier``: it writes a run directory
(`minialign.rundir.RunDir`) as results come in; ``tools/frontier_figures.py`` regenerates the
README's figure and table and the ablations of notebook 06.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .frontier_curves import KNOBS, envelope, frontier_table, seed_envelopes, table_markdown
from .frontier_methods import (
    PAIR_SOURCES,
    Setup,
    history_points,
    kl_regularised_optimum,
    make_pairs,
    metric_rows,
    run_best_of_n,
    run_training,
)
from .nn import RewardModel
from .pretrained import load_reference, make_task, single_thread_blas
from .train import RewardConfig, Sampling, reward_fn, train_reward_model

METHODS = ("dpo", "ppo", "ppo_gt", "preferred_ft", "unlikelihood", "grpo", "best_of_n")
FROM_PAIRS = {"dpo", "ppo", "grpo", "preferred_ft", "unlikelihood", "best_of_n"}


@dataclass(frozen=True)
class FrontierConfig:
    """Every setting of the frontier experiment. ``quick()``: minutes; ``smoke()``: seconds."""

    methods: tuple[str, ...] = METHODS
    pairs: str = "on-policy"  # "off-policy": the corpus generator; "tempered": pi_ref at T = 2
    n_pairs: int = 4000
    n_eval_pairs: int = 500  # held-out pairs: the reward model's accuracy
    n_eval_prompts: int = 512  # the yardstick's held-out prompts (as the demo's)
    beta_bt: float = 10.0  # the annotator: P(chosen) = sigmoid(beta_bt * Δr)
    batch_size: int = 64
    lr: float = 1e-3
    rm_steps: int = 400
    n_evals: int = 10  # evaluations along each training run (plus one at step 0)
    dpo_steps: int = 300
    dpo_taus: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
    ppo_iterations: int = 60
    ppo_betas: tuple[float, ...] = (4.0, 2.0, 1.0, 0.5, 0.25, 0.125)  # 1 / dpo_taus
    ppo_gt_betas: tuple[float, ...] = (0.4, 0.2, 0.1, 0.05, 0.025, 0.0125)  # / beta_bt
    grpo_iterations: int = 60
    grpo_betas: tuple[float, ...] = (0.05, 0.5, 2.0)
    group_size: int = 8
    sft_steps: int = 300  # preferred_ft and unlikelihood
    unlikelihood_alphas: tuple[float, ...] = (0.25, 1.0)
    bon_ns: tuple[int, ...] = (2, 4, 8, 16, 32, 64)
    optimum_samples: int = 8192  # reference samples per prompt for the ideal (0: skip it)
    optimum_betas: tuple[float, ...] = field(
        default_factory=lambda: tuple(float(b) for b in np.geomspace(0.03, 3.0, 21))
    )

    def __post_init__(self):
        if not self.methods or set(self.methods) - set(METHODS):
            raise ValueError(f"FrontierConfig.methods: expected some of {METHODS}, got {self.methods}")  # fmt: skip
        if self.pairs not in PAIR_SOURCES:
            raise ValueError(f"FrontierConfig.pairs: expected one of {list(PAIR_SOURCES)}, got {self.pairs!r}")  # fmt: skip
        for name in ("n_pairs", "n_eval_pairs", "n_eval_prompts", "batch_size", "rm_steps", "n_evals",
                     "dpo_steps", "ppo_iterations", "grpo_iterations", "sft_steps"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"FrontierConfig.{name} must be an integer >= 1, got {value!r}")
        if not self.beta_bt >= 0:
            raise ValueError(f"FrontierConfig.beta_bt must be >= 0, got {self.beta_bt}")

    @classmethod
    def quick(cls) -> FrontierConfig:
        """Half the pairs and steps, three knobs per method: a few minutes for 3 seeds."""
        return cls(n_pairs=2000, n_eval_prompts=256, rm_steps=200, dpo_steps=150, ppo_iterations=30,
                   grpo_iterations=30, sft_steps=150, dpo_taus=(0.25, 1.0, 4.0),
                   ppo_betas=(4.0, 1.0, 0.25), ppo_gt_betas=(0.4, 0.1, 0.025), grpo_betas=(0.05, 0.5),
                   unlikelihood_alphas=(1.0,), bon_ns=(2, 4, 16, 64), optimum_samples=2048)  # fmt: skip

    @classmethod
    def smoke(cls) -> FrontierConfig:
        """Every method, tiny: seconds (the CI test)."""
        return cls(n_pairs=64, n_eval_pairs=32, n_eval_prompts=32, batch_size=16, rm_steps=4,
                   n_evals=2, dpo_steps=4, dpo_taus=(1.0,), ppo_iterations=4, ppo_betas=(1.0,),
                   ppo_gt_betas=(0.1,), grpo_iterations=4, grpo_betas=(0.5,), group_size=4,
                   sft_steps=4, unlikelihood_alphas=(1.0,), bon_ns=(2, 4), optimum_samples=64,
                   optimum_betas=(0.1, 1.0))  # fmt: skip

    def runs(self) -> list[tuple[str, float | None]]:
        """Every (method, knob value) to run for each seed, in order."""
        knobs = {"dpo": self.dpo_taus, "ppo": self.ppo_betas, "ppo_gt": self.ppo_gt_betas,
                 "grpo": self.grpo_betas, "preferred_ft": (0.0,),
                 "unlikelihood": self.unlikelihood_alphas, "best_of_n": self.bon_ns}  # fmt: skip
        return [(m, k) for m in self.methods for k in knobs[m]]


def run_frontier(config: FrontierConfig | None = None, *, seeds: int = 3, seed: int = 0,
                 on_result=None, progress: bool = True, log=print) -> list[dict]:  # fmt: skip
    """Run every (method, knob, seed); return the points (see the module docstring).

    Seeds ``seed .. seed + seeds - 1`` each draw their own pairs, reward model and training
    randomness; the held-out prompts are the same for all (drawn with ``seed + 1``, as the
    demo's yardstick). ``on_result(points, metric_rows)`` gets each finished run's new
    points and metric rows (e.g. `minialign.rundir.RunDir.add_results`). Ctrl-C raises
    KeyboardInterrupt once the current loop has stopped; finished runs were already handed
    to ``on_result``.
    """
    config = config or FrontierConfig()
    if not (isinstance(seeds, int) and seeds >= 1):
        raise ValueError(f"run_frontier: seeds must be an integer >= 1, got {seeds!r}")
    task, reference = make_task("sentiment"), load_reference("sentiment")
    sampling = Sampling.for_task(task)
    eval_prompts = task.sample_prompts(config.n_eval_prompts, np.random.default_rng(seed + 1))
    points = []

    def emit(new_points, new_rows):
        points.extend(new_points)
        if on_result is not None:
            on_result(new_points, new_rows)

    with single_thread_blas():
        if config.optimum_samples:
            ideal = kl_regularised_optimum(task, reference, eval_prompts, sampling,
                                           config.optimum_betas, config.optimum_samples,
                                           np.random.default_rng([seed, 99]))  # fmt: skip
            emit([dict(p, method="optimum", seed=seed, run="optimum") for p in ideal], [])
        for s in range(seed, seed + seeds):
            setup, rows = _prepare(
                config, task, reference, sampling, eval_prompts, s, progress, log
            )
            emit([], rows)
            for i, (method, knob_value) in enumerate(config.runs()):
                emit(*_run_one(setup, method, knob_value, i, log))
    return points


def frontier_command(run, config: FrontierConfig, *, seeds: int, seed: int, progress: bool) -> str:
    """``minialign frontier`` into the `minialign.rundir.RunDir` ``run``; returns the table.

    ``summary.json`` (the points) and ``metrics.jsonl`` are rewritten after every run,
    ``frontier.png`` at most every 30 s and at the end (also after Ctrl-C)."""
    from .frontier_curves import plot_frontier_curves
    from .rundir import ignore_interrupts

    run.start("frontier", dict(config=asdict(config), seeds=seeds, seed=seed))
    print(f"minialign: writing to {run.path}/", file=sys.stderr)
    t0, drawn = time.perf_counter(), [time.perf_counter()]

    def draw():
        if any(p["method"] != "optimum" for p in run.records):
            run.save_figure("frontier.png", plot_frontier_curves(run.records).figure)
        drawn[0] = time.perf_counter()

    def on_result(points, metric_rows):
        run.add_results(points, metric_rows)
        if time.perf_counter() - drawn[0] > 30:
            draw()

    try:
        run_frontier(config, seeds=seeds, seed=seed, on_result=on_result, progress=progress)
    except KeyboardInterrupt:
        with ignore_interrupts():
            draw()
        raise
    draw()
    run.finish("complete", seconds=round(time.perf_counter() - t0, 1))
    return table_markdown(frontier_table(run.records))


def is_frontier_run(path) -> bool:
    """Whether run directory ``path`` was written by ``minialign frontier`` (its run.json)."""
    info = Path(path) / "run.json"
    return info.is_file() and json.loads(info.read_text()).get("command") == "frontier"


def draw_frontier_run(path) -> list:
    """(Re)draw ``frontier.png`` of a ``minialign frontier`` directory from its summary.json."""
    from .frontier_curves import plot_frontier_curves
    from .rundir import RunDir

    run = RunDir(path)
    points, _ = run.read_results()
    run.written.add("frontier.png")  # redrawing replaces our own picture
    return [run.save_figure("frontier.png", plot_frontier_curves(points).figure)]


def _prepare(config, task, reference, sampling, eval_prompts, s, progress, log):
    """Seed ``s``'s pairs and reward model: a `Setup` and the reward model's metric rows."""
    rng = np.random.default_rng(s)
    pair_kw = dict(pairs=config.pairs, beta_bt=config.beta_bt)
    pairs = make_pairs(task, reference, sampling, config.n_pairs, rng, **pair_kw)
    eval_pairs = make_pairs(task, reference, sampling, config.n_eval_pairs, rng, **pair_kw)
    rm = RewardModel.from_policy(reference, rng=rng)
    rm_config = RewardConfig(steps=config.rm_steps, batch_size=config.batch_size,
                             learning_rate=config.lr)  # fmt: skip
    history = train_reward_model(rm, pairs, rm_config, eval_pairs=eval_pairs, rng=rng,
                                 progress=progress)  # fmt: skip
    log(f"seed {s}: {config.n_pairs} {config.pairs} pairs; reward model held-out accuracy "
        f"{history.last('eval_accuracy'):.3f} (vs the true order {history.last('eval_true_accuracy'):.3f})")  # fmt: skip
    setup = Setup(
        task, reference, sampling, eval_prompts, pairs, reward_fn(rm), config, s, progress
    )
    return setup, metric_rows(history, run=f"reward_model-s{s}", seed=s)


def _run_one(setup: Setup, method: str, knob_value, index: int, log):
    """One (method, knob) for ``setup.seed``: (points, metric rows)."""
    t0, s, knob = time.perf_counter(), setup.seed, KNOBS[method]
    fields = {"method": method, "seed": s}
    if knob is not None:
        fields[knob] = int(knob_value) if knob == "n" else float(knob_value)
    fields["run"] = f"{method}-{knob_value:g}-s{s}" if knob else f"{method}-s{s}"
    if method in FROM_PAIRS:
        fields["pairs"] = setup.config.pairs
    if method == "best_of_n":
        points, rows = [dict(fields, step=0, **run_best_of_n(setup, int(knob_value)))], []
    else:
        rng = np.random.default_rng([s, METHODS.index(method), index])
        history = run_training(setup, method, knob_value, rng)
        if history.interrupted:  # Ctrl-C stopped the loop: a partial curve is not a result
            raise KeyboardInterrupt
        points, rows = history_points(history, **fields), metric_rows(history, fields["run"], s)
    best = max(points, key=lambda p: p["true_reward"])
    log(f"{fields['run']:>22s}: {len(points)} points, best true reward {best['true_reward']:+.3f} "
        f"at KL {best['kl']:.2f}; {time.perf_counter() - t0:.1f} s")  # fmt: skip
    return points, rows


__all__ = ["FrontierConfig", "run_frontier", "frontier_command", "draw_frontier_run", "is_frontier_run", "envelope", "seed_envelopes",
           "frontier_table", "table_markdown", "KNOBS", "METHODS"]  # fmt: skip
