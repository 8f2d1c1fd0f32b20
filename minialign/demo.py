"""``minialign demo``: PPO, GRPO, DPO and best-of-n on one task, judged by one yardstick.

The miniature of the DPO paper's Figure 2 (IMDb sentiment, GPT-2): every method starts
from the same pre-trained reference on the sentiment task, and every result is a point
(KL to the reference, *true* reward), measured the same way (`evaluate_policy`).

1. Preference pairs are labelled by a Bradley–Terry annotator on the true reward.
2. A reward model (the *proxy*) is trained on them; its held-out accuracy is reported.
3. PPO and GRPO maximise the proxy at three KL strengths $\\beta$; DPO learns from the
   pairs directly at three temperatures $\\tau$ (the paper's $\\beta = 1/\\tau$);
   best-of-n picks the proxy's favourite of n reference samples.
4. ``summary.json`` (one record per run), ``metrics.jsonl`` (every logged metric),
   ``frontier.png`` (true reward against KL) and ``curves.png`` go to the run directory.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import plots
from .checkpoint import write_text_atomic
from .nn import RewardModel
from .pretrained import load_reference, make_task, single_thread_blas
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


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of every stage. ``DemoConfig.quick()`` is the < 45 s version."""

    n_pairs: int = 4000
    n_eval_pairs: int = 500
    n_eval_prompts: int = 512
    beta_bt: float = 10.0
    rm_steps: int = 400
    ppo_iterations: int = 60
    ppo_betas: tuple[float, ...] = (0.05, 0.3, 1.5)
    grpo_iterations: int = 60
    grpo_betas: tuple[float, ...] = (0.05, 0.5, 2.0)
    group_size: int = 8
    dpo_steps: int = 300
    dpo_taus: tuple[float, ...] = (0.5, 2.0, 8.0)
    bon_ns: tuple[int, ...] = (2, 4, 16, 64)
    batch_size: int = 64
    lr: float = 1e-3

    @classmethod
    def quick(cls) -> DemoConfig:
        return cls(n_pairs=2000, n_eval_pairs=300, n_eval_prompts=256, rm_steps=200,
                   ppo_iterations=30, grpo_iterations=30, dpo_steps=150, bon_ns=(2, 4, 16))  # fmt: skip


def _trainable_copy(reference):
    return copy.deepcopy(reference).train().requires_grad_(True)


def run_demo(out_dir, config: DemoConfig | None = None, seed: int = 0, progress: bool = True,
             log=print) -> list[dict]:  # fmt: skip
    """Run every method, write the run directory, return the summary records."""
    config = config or DemoConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    task, reference = make_task("sentiment"), load_reference("sentiment")
    sampling = Sampling.for_task(task)
    rng = np.random.default_rng(seed)
    eval_prompts = task.sample_prompts(config.n_eval_prompts, np.random.default_rng(seed + 1))
    curve_prompts = eval_prompts[:128]  # the curves in curves.png: a cheaper, smaller set
    records, metrics = [], []

    def evaluate(policy, proxy=None) -> dict:
        # The same prompts and the same sampling seed for every method: one yardstick.
        return evaluate_policy(policy, reference, eval_prompts, task.true_reward, sampling,
                               rng=np.random.default_rng(seed + 2), reward_model=proxy)  # fmt: skip

    def record(method, run, seconds, result, **knobs):
        rec = dict(method=method, run=run, **knobs, seconds=round(seconds, 2), **result)
        records.append(rec)
        log(_row(rec))

    def keep_history(run, history):
        for key, series in history.as_dict().items():
            for step, value in zip(series["step"], series["value"]):
                metrics.append({"run": run, "metric": key, "step": step, "value": value})
        return history.interrupted

    with single_thread_blas():
        log(_header())
        record("reference", "reference", 0.0, evaluate(reference))

        t0 = time.perf_counter()
        pairs = task.make_preference_pairs(config.n_pairs, rng, beta_bt=config.beta_bt)
        eval_pairs = task.make_preference_pairs(config.n_eval_pairs, rng, beta_bt=config.beta_bt)
        rm = RewardModel.from_policy(reference, rng=rng)
        rm_config = RewardConfig(steps=config.rm_steps, batch_size=config.batch_size,
                                 learning_rate=config.lr)  # fmt: skip
        history = train_reward_model(rm, pairs, rm_config, eval_pairs=eval_pairs, rng=rng,
                                     progress=progress)  # fmt: skip
        proxy = reward_fn(rm)
        accuracy = history.last("eval_accuracy") if "eval_accuracy" in history else float("nan")
        log(f"reward model: held-out preference accuracy {accuracy:.3f}")
        interrupted = keep_history("reward_model", history)
        records[0].update(evaluate(reference, proxy), preference_accuracy=accuracy)
        t_rm = time.perf_counter() - t0

        runs = [("ppo", b) for b in config.ppo_betas] + [("grpo", b) for b in config.grpo_betas]
        runs += [("dpo", t) for t in config.dpo_taus]
        for method, knob in runs:
            if interrupted:
                break
            name, t0 = f"{method}-{knob:g}", time.perf_counter()
            policy = _trainable_copy(reference)
            eval_fn = make_eval_fn(policy, reference, curve_prompts, task.true_reward, sampling,
                                   seed=seed + 3, reward_model=proxy)  # fmt: skip
            loop_kw = dict(rng=rng, progress=progress, eval_fn=eval_fn)
            if method == "ppo":
                ppo = PPOConfig(steps=config.ppo_iterations, batch_size=config.batch_size,
                                beta=knob, learning_rate=config.lr,
                                eval_steps=config.ppo_iterations // 10)  # fmt: skip
                history = train_ppo(policy, reference, proxy, task.sample_prompts, sampling, ppo,
                                    **loop_kw)  # fmt: skip
                knobs = dict(beta=knob)
            elif method == "grpo":
                grpo = GRPOConfig(steps=config.grpo_iterations, batch_size=config.batch_size,
                                  num_generations=config.group_size, beta=knob,
                                  learning_rate=config.lr,
                                  eval_steps=config.grpo_iterations // 10)  # fmt: skip
                history = train_grpo(policy, reference, proxy, task.sample_prompts, sampling, grpo,
                                     **loop_kw)  # fmt: skip
                knobs = dict(beta=knob)
            else:
                dpo = DPOConfig(tau=knob, steps=config.dpo_steps, batch_size=config.batch_size,
                                learning_rate=config.lr, eval_steps=config.dpo_steps // 10)  # fmt: skip
                history = train_dpo(policy, reference, pairs, dpo, **loop_kw)
                knobs = dict(tau=knob, beta=1.0 / knob)
            interrupted = keep_history(name, history)
            seconds = time.perf_counter() - t0
            record(method, name, seconds, evaluate(policy, proxy), **knobs)

        for n in config.bon_ns if not interrupted else ():
            t0 = time.perf_counter()
            _, result = best_of_n(reference, proxy, eval_prompts, n, sampling,
                                  rng=np.random.default_rng(seed + 2), true_reward=task.true_reward)  # fmt: skip
            keep = {
                k: result[k] for k in ("true_reward", "kl", "proxy_reward", "length") if k in result
            }
            record("best_of_n", f"best_of_n-{n}", time.perf_counter() - t0, keep, n=n)

    records[0]["seconds"] = round(t_rm, 2)  # the reference's cost: training the reward model
    write_run(out_dir, records, metrics, config=asdict(config), seed=seed)
    return records


# -- the run directory -------------------------------------------------------------


def write_run(out_dir: Path, records: list[dict], metrics: list[dict], **meta) -> None:
    """summary.json, metrics.jsonl, config.json, frontier.png and curves.png, each atomically."""
    write_text_atomic(out_dir / "summary.json", json.dumps(records, indent=2) + "\n")
    write_text_atomic(out_dir / "metrics.jsonl", "".join(json.dumps(m) + "\n" for m in metrics))
    write_text_atomic(out_dir / "config.json", json.dumps(meta, indent=2) + "\n")
    draw_run(out_dir)


def draw_run(out_dir) -> None:
    """(Re)draw frontier.png and curves.png from a run directory's JSON files."""
    out_dir = Path(out_dir)
    summary = json.loads((out_dir / "summary.json").read_text())
    lines = (out_dir / "metrics.jsonl").read_text().splitlines()
    metrics = [json.loads(line) for line in lines if line.strip()]
    plots.save_figure(plots.plot_frontier(summary).figure, out_dir / "frontier.png")
    plots.save_figure(plots.plot_run_curves(metrics), out_dir / "curves.png")


_COLUMNS = [("method", 10, "s"), ("beta", 6, ".3g"), ("tau", 5, ".3g"), ("n", 3, "d"),
            ("true_reward", 11, ".3f"), ("kl", 7, ".3f"), ("proxy_reward", 12, ".3f"),
            ("preference_accuracy", 19, ".3f"), ("seconds", 7, ".1f")]  # fmt: skip


def _header() -> str:
    return "  ".join(f"{name:>{width}}" for name, width, _ in _COLUMNS)


def _row(rec: dict) -> str:
    cells = []
    for name, width, fmt in _COLUMNS:
        value = rec.get(name)
        cells.append(f"{value:>{width}{fmt}}" if value is not None else " " * (width - 1) + "-")
    return "  ".join(cells)
