"""The tabular bandit: alignment with one prompt and K possible answers, solved exactly.

A "language model" here is just a distribution $\\pi$ over K responses, the
reference model is $\\pi_{\\rm ref}$ and the true reward is a known vector $r$.
Everything the big methods approximate has a closed form on this table: the
KL-regularised optimum that PPO and DPO aim for, the exact KL, and the
distribution of best-of-n sampling. Train an objective on a bandit and compare
the result with these numbers: it is the cheapest correctness test there is.

All functions take probabilities on the last axis (``(..., K)``) unless noted. The
closed forms themselves live in `minialign.objectives.kl` (which works on logits);
these wrappers validate probabilities and pass $\\log \\pi$ (``-inf`` for a zero) on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..autograd import functional as F
from ..autograd.engine import Tensor, get_rng
from ..objectives.kl import best_of_n_policy, categorical_kl, kl_regularized_optimum


def _check_dist(p, name: str) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    if p.ndim == 0 or not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(f"{name} must be finite, non-negative probabilities, got {p}")
    if not np.allclose(p.sum(-1), 1.0, atol=1e-6):
        raise ValueError(f"{name} must sum to 1 over the last axis, sums are {p.sum(-1)}")
    return p


def _log(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(p)  # log 0 = -inf: a response of probability 0


def softmax(logits) -> np.ndarray:
    """$\\pi_k = e^{z_k} / \\sum_j e^{z_j}$ over the last axis (float64)."""
    return F.softmax(Tensor(np.asarray(logits, dtype=np.float64))).data


def kl(p, q) -> np.ndarray:
    """Exact $\\mathrm{KL}(p\\,\\|\\,q) = \\sum_k p_k \\log(p_k / q_k)$, with $0 \\log 0 = 0$.

    Non-negative, zero iff $p = q$; $+\\infty$ if $q_k = 0 < p_k$.
    """
    p, q = _check_dist(p, "p"), _check_dist(q, "q")
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape, got {p.shape} and {q.shape}")
    return np.maximum(categorical_kl(_log(p), _log(q)).data, 0.0)  # clamp -1e-17 round-off


def expected_reward(p, r) -> np.ndarray:
    """$\\mathbb{E}_{y \\sim p}[r(y)] = \\sum_k p_k r_k$."""
    return np.sum(_check_dist(p, "p") * np.asarray(r, dtype=np.float64), -1)


def _optimum(pi_ref, r, beta: float) -> tuple[np.ndarray, np.ndarray]:
    log_ref = _log(_check_dist(pi_ref, "pi_ref"))
    log_ref, r = np.broadcast_arrays(log_ref, np.asarray(r, dtype=np.float64))
    return kl_regularized_optimum(log_ref, r, beta)  # (pi*, beta log Z); checks beta > 0


def log_partition(pi_ref, r, beta: float) -> np.ndarray:
    """$\\log Z = \\log \\sum_k \\pi_{\\rm ref}(k)\\, e^{r_k/\\beta}$ (computed stably)."""
    return _optimum(pi_ref, r, beta)[1] / beta


def optimal_policy(pi_ref, r, beta: float) -> np.ndarray:
    """The maximiser of $J(\\pi) = \\mathbb{E}_\\pi[r] - \\beta\\,\\mathrm{KL}(\\pi\\|\\pi_{\\rm ref})$:

    $$\\pi^*(y) = \\frac{1}{Z}\\,\\pi_{\\rm ref}(y)\\, e^{r(y)/\\beta},\\qquad
      J(\\pi^*) = \\beta \\log Z .$$

    Small $\\beta$ puts all mass on the best response; large $\\beta$ stays at $\\pi_{\\rm ref}$.
    """
    return _optimum(pi_ref, r, beta)[0]


def best_of_n_distribution(pi_ref, r, n: int) -> np.ndarray:
    """Exact distribution of best-of-n: draw n responses from $\\pi_{\\rm ref}$, keep the best.

    With $F(v) = P_{\\rm ref}(r \\le v)$ and $F_<(v) = P_{\\rm ref}(r < v)$,

    $$\\pi_n(y) = \\big[F(r_y)^n - F_<(r_y)^n\\big]\\;
                 \\frac{\\pi_{\\rm ref}(y)}{F(r_y) - F_<(r_y)} .$$

    For distinct rewards the fraction is 1 and $\\pi_n(y) = F(r_y)^n - F_<(r_y)^n$.
    **Ties:** among drawn samples sharing the top reward, the first one drawn is
    kept (the same as a uniform choice), so tied responses split their class's
    probability in proportion to $\\pi_{\\rm ref}$. ``pi_ref`` and ``r`` are 1-D here.
    """
    if not (isinstance(n, int | np.integer) and n >= 1):
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    p, r = _check_dist(pi_ref, "pi_ref"), np.asarray(r, dtype=np.float64)
    if p.ndim != 1 or r.shape != p.shape:
        raise ValueError(f"pi_ref and r must be 1-D of equal length, got {p.shape}, {r.shape}")
    return best_of_n_policy(p, r, n)


def best_of_n_kl_bound(n: int) -> float:
    """$\\mathrm{KL}(\\pi_n \\| \\pi_{\\rm ref}) \\le \\log n - (n-1)/n$ (Beirami et al. 2024)."""
    if not n >= 1:
        raise ValueError(f"n must be >= 1, got {n!r}")
    return float(np.log(n) - (n - 1) / n)


def win_rate(p, q, r) -> np.ndarray:
    """$P(r(Y) > r(Y')) + \\tfrac12 P(r(Y) = r(Y'))$ for independent $Y \\sim p$, $Y' \\sim q$.

    Best-of-n against its own reference wins at most $n/(n+1)$ of the time.
    """
    p, q, r = _check_dist(p, "p"), _check_dist(q, "q"), np.asarray(r, dtype=np.float64)
    beats = (r[:, None] > r[None, :]) + 0.5 * (r[:, None] == r[None, :])  # (K, K)
    return np.einsum("...i,ij,...j->...", p, beats, q)


@dataclass(frozen=True)
class Bandit:
    """One prompt, K responses: reference logits (K,) and true rewards (K,)."""

    ref_logits: np.ndarray
    rewards: np.ndarray

    @property
    def K(self) -> int:
        return self.rewards.shape[0]

    @property
    def pi_ref(self) -> np.ndarray:
        return softmax(self.ref_logits)

    def optimal_policy(self, beta: float) -> np.ndarray:
        return optimal_policy(self.pi_ref, self.rewards, beta)

    def objective(self, p, beta: float) -> float:
        """$J(p) = \\mathbb{E}_p[r] - \\beta\\,\\mathrm{KL}(p \\| \\pi_{\\rm ref})$."""
        return float(expected_reward(p, self.rewards) - beta * kl(p, self.pi_ref))

    def kl_to_ref(self, p) -> float:
        return float(kl(p, self.pi_ref))

    def expected_reward(self, p) -> float:
        return float(expected_reward(p, self.rewards))

    def best_of_n(self, n: int) -> np.ndarray:
        return best_of_n_distribution(self.pi_ref, self.rewards, n)

    def win_rate_over_ref(self, p) -> float:
        return float(win_rate(p, self.pi_ref, self.rewards))

    def sample(self, n: int, rng: np.random.Generator | None = None, p=None) -> np.ndarray:
        """``n`` response indices drawn from ``p`` (default $\\pi_{\\rm ref}$), int64."""
        p = self.pi_ref if p is None else _check_dist(p, "p")
        return get_rng(rng).choice(self.K, size=n, p=p).astype(np.int64)

    def sample_preferences(
        self, n: int, rng: np.random.Generator | None = None, beta_bt: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pairs from $\\pi_{\\rm ref}$ labelled by Bradley–Terry: $P(y_1 \\succ y_2) =
        \\sigma(\\beta_{BT}(r_1 - r_2))$. Returns ``(chosen, rejected)`` index arrays (n,).

        DPO with temperature $\\tau$ on such data targets $\\pi_{\\rm ref} e^{\\tau \\beta_{BT} r}/Z$,
        i.e. ``optimal_policy(1 / (tau * beta_bt))``.
        """
        rng = get_rng(rng)
        y1, y2 = self.sample(n, rng), self.sample(n, rng)
        p_first = 1.0 / (1.0 + np.exp(-beta_bt * (self.rewards[y1] - self.rewards[y2])))
        first = rng.random(n) < p_first
        return np.where(first, y1, y2), np.where(first, y2, y1)


def make_bandit(
    K: int, rng: np.random.Generator | None = None, ref_scale: float = 1.0, reward_scale=1.0
) -> Bandit:
    """A random bandit: logits ~ N(0, ref_scale²), rewards ~ N(0, reward_scale²) (distinct a.s.)."""
    if not (isinstance(K, int | np.integer) and K >= 2):
        raise ValueError(f"K must be an integer >= 2, got {K!r}")
    rng = get_rng(rng)
    return Bandit(ref_scale * rng.standard_normal(K), reward_scale * rng.standard_normal(K))
