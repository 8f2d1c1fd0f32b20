r"""The runs behind ``minialign frontier``: one function per method, each tracing a curve.

Every training run starts from a copy of the reference $\pi_{\rm ref}$ and is evaluated
every few steps by `minialign.train.make_eval_fn` on the same held-out prompts, so each
run contributes a *curve* of points (KL to the reference, true reward), as in the DPO
paper's Figure 2 (Rafailov et al. 2023, §6.1). The methods:

* ``dpo``: `train_dpo` on the preference pairs, one run per temperature $\tau$ (paper: $\beta = 1/\tau$).
* ``ppo``: `train_ppo` on a reward model learned from the same pairs, one run per $\beta$.
* ``ppo_gt``: `train_ppo` on the task's true reward (the paper's PPO-GT).
* ``grpo``: `train_grpo` on the same reward model ($\beta$ weighs $k_3$ in the loss).
* ``preferred_ft`` and ``unlikelihood``: `train_pair_ft` below, maximum likelihood on the
  chosen responses, plus (unlikelihood, Welleck et al. 2019) a push *down* on the
  tokens of the rejected ones.
* ``best_of_n``: no training; its KL is the analytic bound $\log n - (n-1)/n$.

The preference pairs are **on-policy** as in the paper (both responses sampled from
$\pi_{\rm ref}$, `reference_sampler`) or, for the ablations, drawn from the task's corpus
generator (``"off-policy"``, the demo's pairs) or from $\pi_{\rm ref}$ at temperature 2
(``"tempered"``); either way a Bradley–Terry annotator labels them with the true reward.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from .nn import generate, sequence_logprobs
from .optim import AdamW, LinearSchedule
from .tokenizer import PreferencePairs
from .train import (
    DPOConfig,
    GRPOConfig,
    PPOConfig,
    best_of_n,
    make_eval_fn,
    train_dpo,
    train_grpo,
    train_ppo,
)
from .train.config import LoopConfig, knob
from .train.run import Run, get_rng, optimizer_step

PAIR_SOURCES = {"on-policy": 1.0, "off-policy": None, "tempered": 2.0}  # sampling temperature


def reference_sampler(reference, sampling, temperature: float = 1.0):
    """A ``policy_sampler`` for `SentimentTask.make_preference_pairs`: responses from ``reference``."""

    def sample(prompts: np.ndarray, rng: np.random.Generator):
        gen = generate(reference, prompts, sampling.max_new_tokens, temperature=temperature,
                       rng=rng, stop_token=sampling.stop_token, pad_id=sampling.pad_id)  # fmt: skip
        P = gen.prompt_length
        return gen.tokens[:, P:], gen.response_mask[:, P:]  # (n, R) ids and mask

    return sample


def make_pairs(task, reference, sampling, n: int, rng, *, pairs: str, beta_bt: float):
    r"""``n`` labelled pairs whose responses come from ``pairs`` (a key of ``PAIR_SOURCES``):

    "on-policy" samples $\pi_{\rm ref}$, "off-policy" the corpus generator the reference was
    trained to imitate (the demo's pairs), "tempered" $\pi_{\rm ref}$ at temperature 2."""
    if pairs not in PAIR_SOURCES:
        raise ValueError(f"make_pairs: pairs must be one of {list(PAIR_SOURCES)}, got {pairs!r}")
    temperature = PAIR_SOURCES[pairs]
    sampler = reference_sampler(reference, sampling, temperature) if temperature else None
    return task.make_preference_pairs(n, rng, policy_sampler=sampler, beta_bt=beta_bt)


# -- Preferred-FT and unlikelihood -----------------------------------------------------


def unlikelihood_loss(logp_chosen, logp_rejected, mask_chosen, mask_rejected, alpha: float):
    r"""Maximum likelihood on $y^+$ plus token-level unlikelihood on $y^-$ (minimised):

    $$L = -\frac{\sum_t m^+_t \log\pi(y^+_t)}{\sum_t m^+_t}
          - \alpha\,\frac{\sum_t m^-_t \log\big(1 - \pi(y^-_t)\big)}{\sum_t m^-_t}$$

    summed over the batch's response tokens ($m$ the masks, (B, T-1)). ``alpha`` = 0 is
    Preferred-FT: next-token cross-entropy on the chosen responses. $\pi(y^-_t)$ is capped
    at $1 - 10^{-6}$ so the logarithm stays finite (no gradient past the cap).
    """
    if not alpha >= 0:
        raise ValueError(f"unlikelihood_loss: alpha must be >= 0, got {alpha}")
    dtype = getattr(logp_chosen, "dtype", np.float64)
    m_c, m_r = (np.asarray(m, dtype) for m in (mask_chosen, mask_rejected))
    if m_c.sum() == 0 or (alpha > 0 and m_r.sum() == 0):
        raise ValueError("unlikelihood_loss: a mask selects no token")
    likelihood = (logp_chosen * m_c).sum() * (1.0 / float(m_c.sum()))
    if alpha == 0:
        return -likelihood
    p_rejected = logp_rejected.clip(hi=float(np.log1p(-1e-6))).exp()  # (B, T-1)
    unlikely = ((1.0 - p_rejected).log() * m_r).sum() * (1.0 / float(m_r.sum()))
    return -likelihood - alpha * unlikely


@dataclass(frozen=True)
class PairFTConfig(LoopConfig):
    """`train_pair_ft`'s settings: DPO's optimiser (AdamW, linear decay, clipping)."""

    alpha: float = knob(0.0, "α, weight of the unlikelihood term (0: Preferred-FT)", min=0)
    steps: int = knob(300, "optimiser steps, one batch of pairs each", min=1)
    batch_size: int = knob(64, "pairs per step, drawn with replacement", min=1)
    learning_rate: float = knob(1e-3, "AdamW peak learning rate, linear decay to 0", gt=0)
    max_grad_norm: float | None = knob(1.0, "clip the gradient to this norm", gt=0)


def train_pair_ft(policy, pairs: PreferencePairs, config: PairFTConfig, *, rng=None,
                  eval_fn=None, progress: bool = True):  # fmt: skip
    """Train ``policy`` in place with `unlikelihood_loss` on ``pairs``; returns the History."""
    rng = get_rng(rng)
    optimizer = AdamW(policy.parameters(), lr=config.learning_rate, weight_decay=0.0)
    schedule = LinearSchedule(config.learning_rate, config.steps)
    name = "unlikelihood" if config.alpha > 0 else "preferred_ft"
    with Run(name, config, rng=rng, saved={"policy": policy, "optimizer": optimizer},
             eval_fn=eval_fn, progress=progress) as run:  # fmt: skip
        for step in run.steps():
            schedule.apply(optimizer, step)
            rows = rng.integers(0, len(pairs), size=config.batch_size)  # (B,)
            tokens = np.concatenate([pairs.chosen.ids[rows], pairs.rejected.ids[rows]])
            mask = np.concatenate([pairs.chosen.response_mask[rows],
                                   pairs.rejected.response_mask[rows]])  # fmt: skip
            logp = sequence_logprobs(policy, tokens, mask).per_token  # (2B, T-1)
            B, m = len(rows), mask[:, 1:]
            loss = unlikelihood_loss(logp[:B], logp[B:], m[:B], m[B:], config.alpha)
            [grad_norm] = optimizer_step(loss, [(optimizer, policy)], config.max_grad_norm)
            run.log(step, dict(loss=loss.item(), grad_norm=grad_norm, lr=optimizer.lr))
    return run.history


# -- one run of each method -------------------------------------------------------------


@dataclass
class Setup:
    """What every run of one seed shares: the world, the pairs, the proxy, the yardstick."""

    task: object
    reference: object
    sampling: object
    eval_prompts: np.ndarray  # (n, P): the held-out prompts of every evaluation
    pairs: PreferencePairs
    proxy: object  # the reward model learned from ``pairs``, as a reward function
    config: object  # a FrontierConfig
    seed: int
    progress: bool = True

    def policy(self):
        """A fresh trainable copy of the reference."""
        return copy.deepcopy(self.reference).train().requires_grad_(True)

    def eval_fn(self, policy, steps: int):
        """`make_eval_fn` on the held-out prompts, with its own generator per step."""
        fn = make_eval_fn(policy, self.reference, self.eval_prompts, self.task.true_reward,
                          self.sampling, seed=self.seed + 3, reward_model=self.proxy)  # fmt: skip
        return fn, max(1, steps // self.config.n_evals)


def run_training(setup: Setup, method: str, knob_value: float, rng):
    """One training run of ``method`` at its knob; returns its `History` (``eval_*`` points)."""
    c, policy = setup.config, setup.policy()
    steps = {"dpo": c.dpo_steps, "grpo": c.grpo_iterations}.get(method, c.ppo_iterations)
    steps = c.sft_steps if method in ("preferred_ft", "unlikelihood") else steps
    eval_fn, every = setup.eval_fn(policy, steps)
    shared = dict(steps=steps, batch_size=c.batch_size, learning_rate=c.lr, eval_steps=every)
    loop = dict(rng=rng, eval_fn=eval_fn, progress=setup.progress)
    task, ref, sampling = setup.task, setup.reference, setup.sampling
    if method == "dpo":
        return train_dpo(policy, ref, setup.pairs, DPOConfig(tau=knob_value, **shared), **loop)
    if method in ("ppo", "ppo_gt"):
        reward = setup.proxy if method == "ppo" else task.true_reward
        config = PPOConfig(beta=knob_value, **shared)
        return train_ppo(policy, ref, reward, task.sample_prompts, sampling, config, **loop)
    if method == "grpo":
        config = GRPOConfig(beta=knob_value, num_generations=c.group_size, **shared)
        return train_grpo(policy, ref, setup.proxy, task.sample_prompts, sampling, config, **loop)
    if method in ("preferred_ft", "unlikelihood"):
        return train_pair_ft(policy, setup.pairs, PairFTConfig(alpha=knob_value, **shared), **loop)
    raise ValueError(f"run_training: unknown method {method!r}")


def run_best_of_n(setup: Setup, n: int) -> dict:
    """Best-of-``n`` under the proxy on the held-out prompts; ``kl`` is the bound."""
    _, result = best_of_n(setup.reference, setup.proxy, setup.eval_prompts, n, setup.sampling,
                          rng=np.random.default_rng([setup.seed, n]),
                          true_reward=setup.task.true_reward)  # fmt: skip
    keys = ("true_reward", "kl", "proxy_reward", "length")
    return dict({k: result[k] for k in keys}, kl_is_bound=True)


def tilted(rewards, beta: float) -> tuple[float, float]:
    r"""$(\mathbb E_q[r], \mathrm{KL}(q \| p))$ for $p$ uniform on samples $r_i$ and $q_i \propto e^{r_i/\beta}$.

    $$\mathbb E_q[r] = \frac{\sum_i w_i r_i}{\sum_i w_i}, \qquad
      \mathrm{KL}(q \| p) = \frac{\mathbb E_q[r]}{\beta} - \log Z, \qquad
      w_i = e^{r_i/\beta},\ Z = \frac1n \sum_i w_i.$$

    With $r_i$ the rewards of samples from $\pi_{\rm ref}$ this is the self-normalised
    importance-sampling estimate of $\pi^*_\beta \propto \pi_{\rm ref}\,e^{r/\beta}$.
    """
    r = np.asarray(rewards, np.float64)
    if r.ndim != 1 or r.size == 0 or not np.isfinite(r).all():
        raise ValueError(f"tilted: rewards must be a non-empty finite 1-D array, got {r.shape}")
    if not beta > 0:
        raise ValueError(f"tilted: beta must be > 0, got {beta}")
    w = np.exp((r - r.max()) / beta)  # shifted by max(r): no overflow; the shift cancels
    mean_r = float(np.sum(w * r) / np.sum(w))
    log_z = r.max() / beta + np.log(np.mean(w))
    return mean_r, max(float(mean_r / beta - log_z), 0.0)  # >= 0 up to round-off


def kl_regularised_optimum(task, reference, prompts, sampling, betas, n_samples: int, rng):
    r"""The best any method can do: $\pi^*_\beta \propto \pi_{\rm ref}\,e^{r/\beta}$ on the true reward.

    For each distinct prompt, ``n_samples`` responses $y_i \sim \pi_{\rm ref}$ are reweighted
    by $e^{r_i/\beta}$ (`tilted`). Each $\pi^*_\beta$ maximises $\mathbb E[r]$ among policies
    with its KL, so the points trace the frontier (up to sampling error; at large KL, where
    $\pi^*$ sits on responses the samples missed, the estimate falls short). Averaged over
    ``prompts`` as they occur. Returns ``[{"beta", "true_reward", "kl"}]``.
    """
    unique, counts = np.unique(np.asarray(prompts), axis=0, return_counts=True)
    weights, rewards = counts / counts.sum(), []
    for prompt in unique:
        gen = generate(reference, np.repeat(prompt[None], n_samples, axis=0),
                       sampling.max_new_tokens, rng=rng, stop_token=sampling.stop_token,
                       pad_id=sampling.pad_id)  # fmt: skip
        rewards.append(task.true_reward(gen.tokens, gen.response_mask))  # (n_samples,)
    points = []
    for beta in betas:
        per_prompt = np.array([tilted(r, beta) for r in rewards])  # (prompts, 2)
        mean_r, kl = weights @ per_prompt
        points.append({"beta": float(beta), "true_reward": float(mean_r), "kl": float(kl)})
    return points


def history_points(history, **fields) -> list[dict]:
    """One point per evaluation of a training run: ``fields`` plus step and the ``eval_*`` values."""
    steps = history.steps("eval_kl")
    keys = [k for k in ("true_reward", "kl", "proxy_reward", "length") if f"eval_{k}" in history]
    values = {k: history[f"eval_{k}"] for k in keys}
    return [dict(fields, step=int(st), **{k: float(values[k][i]) for k in keys})
            for i, st in enumerate(steps)]  # fmt: skip


def metric_rows(history, run: str, seed: int) -> list[dict]:
    """Every logged metric of a run as ``{"run", "seed", "metric", "step", "value"}`` rows."""
    return [{"run": run, "seed": seed, "metric": key, "step": step, "value": value}
            for key, series in history.as_dict().items()
            for step, value in zip(series["step"], series["value"])]  # fmt: skip
