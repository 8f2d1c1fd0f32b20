r"""Best-of-n sampling: no training at all, just draw n responses and keep the best.

For each prompt $x$, draw $y_1, \dots, y_n \sim \pi_{\rm ref}(\cdot \mid x)$ and return

$$y^\star = \arg\max_{i} \; \hat r(x, y_i)$$

under a (proxy) reward $\hat r$, e.g. a reward model. The induced policy $\pi_n$ stays
close to $\pi_{\rm ref}$; the usual formula for its divergence is

$$\mathrm{KL}(\pi_n \,\|\, \pi_{\rm ref}) \;\le\; \log n - \frac{n-1}{n},$$

exact when every response is distinct with negligible probability mass, and only an
**upper bound** otherwise (Beirami et al. 2024, "Theoretical guarantees on the best-of-n
alignment policy"): on a toy task where responses repeat, the true KL is smaller. It is
the x-axis of best-of-n in reward-vs-KL plots (Gao, Schulman & Hilton 2022).

Implementation details:

1. Vectorised: every prompt is repeated ``n + 1`` times and all ``B·(n + 1)`` responses
   are sampled in one `generate` call. Samples ``0..n-1`` of a prompt compete; sample
   ``n`` is an independent draw from $\pi_{\rm ref}$ used only to measure the win rate.
2. Ties in the proxy reward go to the first sample drawn (``argmax``), which is the same
   as a uniform choice among the tied samples since the draws are exchangeable.
3. Metrics (batch means): ``proxy_reward`` of the selected responses and
   ``proxy_reward_ref`` of plain samples (all n candidates); with ``true_reward``,
   ``true_reward`` and ``true_reward_ref`` likewise; ``kl`` $= \log n - (n-1)/n$ with
   ``kl_is_bound`` $= 1$ to say it is the analytic bound, not a measurement;
   ``win_rate``: $P(r(y^\star) > r(y')) + \frac12 P(r(y^\star) = r(y'))$ against the
   independent draw $y'$, measured with the true reward if given, else the proxy (at
   most $n/(n+1)$ for a reward without ties), and ``proxy_win_rate`` always with the
   proxy; ``length`` of the selected responses.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..nn import Generation, generate
from ..nn.module import Module
from .rollout import Sampling
from .run import get_rng

Reward = Callable[[np.ndarray, np.ndarray], np.ndarray]


def best_of_n_kl(n: int) -> float:
    r"""$\log n - (n-1)/n$: the standard best-of-n KL, an upper bound on the true one."""
    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise ValueError(f"best_of_n_kl: n must be an integer >= 1, got {n!r}")
    return float(np.log(n) - (n - 1) / n)


def _win_rate(selected: np.ndarray, other: np.ndarray) -> float:
    return float(np.mean((selected > other) + 0.5 * (selected == other)))


def best_of_n(
    reference: Module,
    reward_fn: Reward,
    prompts: np.ndarray,
    n: int,
    sampling: Sampling,
    *,
    rng: np.random.Generator | int | None = None,
    temperature: float = 1.0,
    true_reward: Reward | None = None,
) -> tuple[Generation, dict[str, float]]:
    """The best of ``n`` samples per prompt under ``reward_fn``; see the module doc.

    ``prompts`` (B, P) int; ``reward_fn(tokens, response_mask) -> (B,)`` is the proxy and
    ``true_reward`` (same signature, optional) the task's true reward. Returns the selected
    `Generation` (B rows, same layout as `generate`'s, log-probs under $\\pi_{\\rm ref}$) and
    the metrics dict.
    """
    best_of_n_kl(n)  # validates n
    prompts = np.asarray(prompts)
    if prompts.ndim != 2:
        raise ValueError(f"best_of_n: prompts must be (B, P), got shape {prompts.shape}")
    B = prompts.shape[0]
    gen = generate(
        reference,
        np.repeat(prompts, n + 1, axis=0),  # (B·(n+1), P): row b·(n+1) + i is sample i of prompt b
        sampling.max_new_tokens,
        temperature=temperature,
        rng=get_rng(rng),
        stop_token=sampling.stop_token,
        pad_id=sampling.pad_id,
    )

    def score(fn: Reward) -> np.ndarray:
        r = np.asarray(fn(gen.tokens, gen.response_mask), dtype=np.float64)
        if r.shape != (B * (n + 1),):
            raise ValueError(
                f"best_of_n: a reward must return shape ({B * (n + 1)},), got {r.shape}"
            )
        return r.reshape(B, n + 1)  # (B, n+1)

    proxy = score(reward_fn)  # (B, n+1)
    best = np.argmax(proxy[:, :n], axis=1)  # (B,) first maximum among the n candidates
    rows = np.arange(B) * (n + 1) + best  # (B,) rows of the selected samples in gen
    selected = Generation(
        gen.tokens[rows], gen.response_mask[rows], gen.logprobs[rows], gen.prompt_length
    )

    pick = np.arange(B), best
    metrics = {
        "proxy_reward": float(proxy[pick].mean()),
        "proxy_reward_ref": float(proxy[:, :n].mean()),
        "kl": best_of_n_kl(n),
        "kl_is_bound": 1.0,
        "win_rate": _win_rate(proxy[pick], proxy[:, n]),
        "proxy_win_rate": _win_rate(proxy[pick], proxy[:, n]),
        "length": float(selected.response_mask.sum(axis=1).mean()),
    }
    if true_reward is not None:
        true = score(true_reward)  # (B, n+1)
        metrics["true_reward"] = float(true[pick].mean())
        metrics["true_reward_ref"] = float(true[:, :n].mean())
        metrics["win_rate"] = _win_rate(true[pick], true[:, n])
    return selected, metrics
