"""``minialign demo``: PPO, GRPO, DPO and best-of-n on one task, judged by one yardstick.

The miniature of the DPO paper's Figure 2 (IMDb sentiment, GPT-2): every method starts
from the same pre-trained reference on the sentiment task, and every result is a point
(KL to the reference, *true* reward), measured the same way (`evaluate_policy`).

1. Preference pairs are labelled by a Bradley–Terry annotator on the true reward.
2. A reward model (the *proxy*) is trained on them; its held-out accuracy is reported.
3. PPO and GRPO maximise the proxy at three KL strengths $\\beta$; DPO learns from the
   pairs directly at three temperatures $\\tau$ (the paper's $\\beta = 1/\\tau$);
   best-of-n picks the proxy's favourite of n reference samples.
4. ``summary.json`` (one record per run) and ``metrics.jsonl`` (every logged metric) are
   rewritten after every finished run, so an interrupted demo keeps what it finished;
   ``frontier.png`` (true reward against KL) and ``curves.png`` are drawn at the end.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import plots
from .nn import RewardModel
from .pretrained import load_reference, make_task, single_thread_blas
from .rundir import RunDir, finished
from .train import (
    DPOConfig,
    GRPOConfig,
    PPOConfig,
    RewardConfig,
    Sampling,
    best_of_n,
    evaluate_policy,
    make_eval_fn,
    reward_fn,
    train_dpo,
    train_grpo,
    train_ppo,
    train_reward_model,
)

CURVE_PROMPTS = 128  # the curves in curves.png use the first 128 evaluation prompts


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of every stage. ``DemoConfig.quick()`` is the ~20 s version."""

    n_pairs: int = 4000
    n_eval_pairs: int = 500
    n_eval_prompts: int = 512
    beta_bt: float = 10.0
    rm_steps: int = 400
    ppo_steps: int = 60
    ppo_betas: tuple[float, ...] = (0.05, 0.3, 1.5)
    grpo_steps: int = 60
    grpo_betas: tuple[float, ...] = (0.05, 0.5, 2.0)
    group_size: int = 8
    dpo_steps: int = 300
    dpo_taus: tuple[float, ...] = (0.5, 2.0, 8.0)
    bon_ns: tuple[int, ...] = (2, 4, 16, 64)
    batch_size: int = 64
    learning_rate: float = 1e-3

    @classmethod
    def quick(cls) -> DemoConfig:
        return cls(n_pairs=2000, n_eval_pairs=300, n_eval_prompts=256, rm_steps=200,
                   ppo_steps=30, grpo_steps=30, dpo_steps=150, bon_ns=(2, 4, 16))  # fmt: skip

    def trainer_config(self, method: str, knob: float):
        """The config of one training run of the demo: ``method`` at setting ``knob``."""
        common = dict(batch_size=self.batch_size, learning_rate=self.learning_rate)
        if method == "ppo":
            return PPOConfig(steps=self.ppo_steps, beta=knob, eval_steps=self.ppo_steps // 10,
                             **common)  # fmt: skip
        if method == "grpo":
            return GRPOConfig(steps=self.grpo_steps, beta=knob, num_generations=self.group_size,
                              eval_steps=self.grpo_steps // 10, **common)  # fmt: skip
        return DPOConfig(tau=knob, steps=self.dpo_steps, eval_steps=self.dpo_steps // 10, **common)

    def runs(self) -> list[tuple[str, float]]:
        """Every (method, setting) the demo trains, in order."""
        return ([("ppo", b) for b in self.ppo_betas] + [("grpo", b) for b in self.grpo_betas]
                + [("dpo", t) for t in self.dpo_taus])  # fmt: skip


@dataclass
class Bench:
    """What every stage of the demo shares: the task, the reference and the yardstick."""

    task: object
    reference: object
    sampling: Sampling
    eval_prompts: np.ndarray
    seed: int

    def evaluate(self, policy, proxy=None) -> dict:
        """The same prompts and the same sampling seed for every method: one yardstick."""
        return evaluate_policy(policy, self.reference, self.eval_prompts, self.task.true_reward,
                               self.sampling, rng=np.random.default_rng(self.seed + 2),
                               reward_model=proxy)  # fmt: skip


def run_demo(out_dir, config: DemoConfig | None = None, seed: int = 0, progress: bool = True,
             log=print) -> list[dict]:  # fmt: skip
    """Run every method, writing the run directory as it goes; return the summary records.

    ``out_dir`` is a directory (created if needed) or a `RunDir`. Ctrl-C stops the demo
    with a KeyboardInterrupt; every run finished before it is already on disk."""
    config = config or DemoConfig()
    run = out_dir if isinstance(out_dir, RunDir) else RunDir(Path(out_dir))
    run.path.mkdir(parents=True, exist_ok=True)
    task = make_task("sentiment")
    bench = Bench(task, load_reference("sentiment"), Sampling.for_task(task),
                  task.sample_prompts(config.n_eval_prompts, np.random.default_rng(seed + 1)),
                  seed)  # fmt: skip
    rng = np.random.default_rng(seed)
    with single_thread_blas():
        proxy, pairs = _reward_model_stage(bench, config, rng, run, progress, log)
        for method, knob in config.runs():
            t0 = time.perf_counter()
            name, knobs = f"{method}-{knob:g}", _knobs(method, knob)
            policy, history = _train(bench, config, method, knob, proxy, pairs, rng, progress)
            record = dict(
                method=method, run=name, **knobs, **_timed(t0, bench.evaluate(policy, proxy))
            )
            _add(run, log, record, _metric_rows(name, finished(history)))
        for n in config.bon_ns:
            _add(run, log, _best_of_n_stage(bench, proxy, n))
    draw_run(run.path)
    return run.records


def _knobs(method: str, knob: float) -> dict:
    return dict(tau=knob, beta=1.0 / knob) if method == "dpo" else dict(beta=knob)


def _timed(t0: float, result: dict) -> dict:
    return dict(seconds=round(time.perf_counter() - t0, 2), **result)


def _reward_model_stage(bench: Bench, config: DemoConfig, rng, run: RunDir, progress, log):
    """Pairs from the annotator, the reward model on them, and the reference's record."""
    t0, task = time.perf_counter(), bench.task
    pairs = task.make_preference_pairs(config.n_pairs, rng, beta_bt=config.beta_bt)
    eval_pairs = task.make_preference_pairs(config.n_eval_pairs, rng, beta_bt=config.beta_bt)
    rm = RewardModel.from_policy(bench.reference, rng=rng)
    rm_config = RewardConfig(steps=config.rm_steps, batch_size=config.batch_size,
                             learning_rate=config.learning_rate)  # fmt: skip
    history = finished(train_reward_model(rm, pairs, rm_config, eval_pairs=eval_pairs, rng=rng,
                                          progress=progress))  # fmt: skip
    proxy, accuracy = reward_fn(rm), history.last("eval_accuracy")
    log(f"reward model: held-out preference accuracy {accuracy:.3f}\n")
    log(_header())
    record = dict(method="reference", run="reference", preference_accuracy=accuracy,
                  **_timed(t0, bench.evaluate(bench.reference, proxy)))  # fmt: skip
    _add(run, log, record, _metric_rows("reward_model", history))
    return proxy, pairs


def _train(bench: Bench, config: DemoConfig, method, knob, proxy, pairs, rng, progress):
    """One training run from a fresh copy of the reference; returns (policy, history)."""
    policy = copy.deepcopy(bench.reference).train().requires_grad_(True)
    curve_prompts = bench.eval_prompts[:CURVE_PROMPTS]
    eval_fn = make_eval_fn(policy, bench.reference, curve_prompts, bench.task.true_reward,
                           bench.sampling, seed=bench.seed + 3, reward_model=proxy)  # fmt: skip
    options = dict(rng=rng, progress=progress, eval_fn=eval_fn)
    trainer_config = config.trainer_config(method, knob)
    if method == "dpo":
        return policy, train_dpo(policy, bench.reference, pairs, trainer_config, **options)
    train = train_ppo if method == "ppo" else train_grpo
    prompts = bench.task.sample_prompts
    return policy, train(policy, bench.reference, proxy, prompts, bench.sampling, trainer_config,
                         **options)  # fmt: skip


def _best_of_n_stage(bench: Bench, proxy, n: int) -> dict:
    t0 = time.perf_counter()
    _, result = best_of_n(bench.reference, proxy, bench.eval_prompts, n, bench.sampling,
                          rng=np.random.default_rng(bench.seed + 2),
                          true_reward=bench.task.true_reward)  # fmt: skip
    keep = {k: result[k] for k in ("true_reward", "kl", "proxy_reward", "length")}
    return dict(method="best_of_n", run=f"best_of_n-{n}", n=n, **_timed(t0, keep))


def _metric_rows(run: str, history) -> list[dict]:
    return [{"run": run, "metric": key, "step": step, "value": value}
            for key, series in history.as_dict().items()
            for step, value in zip(series["step"], series["value"])]  # fmt: skip


def _add(run: RunDir, log, record: dict, metric_rows=()) -> None:
    """Keep one finished run: print its row, rewrite summary.json and metrics.jsonl."""
    run.add_results([record], metric_rows)
    log(_row(record))


# -- the run directory -------------------------------------------------------------


def draw_run(out_dir) -> list:
    """(Re)draw frontier.png and curves.png from a demo directory's JSON files."""
    run = RunDir(out_dir)
    summary, metrics = run.read_results()
    for i, record in enumerate(summary):
        missing = (
            {"method", "kl", "true_reward"} - set(record) if isinstance(record, dict) else {"*"}
        )
        if missing:
            raise ValueError(f"{run.path / 'summary.json'}: record {i} lacks {sorted(missing)}")
    run.written |= {"frontier.png", "curves.png"}  # redrawing replaces our own pictures
    note = (f"Curves: true reward, proxy reward and KL on the first {CURVE_PROMPTS} held-out "
            "prompts, 11 times per run; the table and frontier.png use all of them at the end.")  # fmt: skip
    return [run.save_figure("frontier.png", plots.plot_frontier(summary).figure),
            run.save_figure("curves.png", plots.plot_run_curves(metrics, note=note))]  # fmt: skip


_COLUMNS = [("method", 10, "s"), ("beta", 6, ".3g"), ("tau", 5, ".3g"), ("n", 3, "d"),
            ("true_reward", 11, ".3f"), ("kl", 7, ".3f"), ("proxy_reward", 12, ".3f"),
            ("seconds", 7, ".1f")]  # fmt: skip


def _header() -> str:
    return "  ".join(f"{name:>{width}}" for name, width, _ in _COLUMNS)


def _row(rec: dict) -> str:
    cells = []
    for name, width, fmt in _COLUMNS:
        value = rec.get(name)
        cells.append(f"{value:>{width}{fmt}}" if value is not None else " " * (width - 1) + "-")
    return "  ".join(cells)


def demo_settings(config: DemoConfig, seed: int) -> dict:
    """Every setting of a demo run, for ``config.json``."""
    return dict(config=asdict(config), seed=seed, curve_prompts=CURVE_PROMPTS)
