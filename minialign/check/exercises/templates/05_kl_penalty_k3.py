r"""Exercise 5: estimating KL(π‖π_ref) from samples, with Schulman's k3.

For samples $y \sim \pi_\theta$ and $\rho = \pi_{\rm ref}(y)/\pi_\theta(y)$:

$$k_3 = (\rho - 1) - \log\rho, \qquad \log\rho = \log\pi_{\rm ref}(y) - \log\pi_\theta(y)$$

$\mathbb{E}_{y\sim\pi_\theta}[\rho] = 1$, so $k_3$ has the same expectation as
$k_1 = -\log\rho$, i.e. $\mathrm{KL}(\pi_\theta\|\pi_{\rm ref})$; unlike $k_1$ it is never
negative. GRPO adds $\beta\,k_3$ per token to its loss.

``logp`` ($\log\pi_\theta$, requires grad) and ``logp_ref`` are (B, T) Tensors; return the
(B, T) Tensor of per-token estimates. The grader also computes $\sum_y \pi(y) k_3(y)$ over
a whole categorical $\pi$ and compares it with the exact KL; a ratio taken the wrong way
round fails there.

Grade this file:  minialign check --exercises 05_kl_penalty_k3.py

Notebook: notebooks/03_ppo.ipynb, §8 "The KL-penalised reward"
"""

import minialign as ma


def kl_penalty(logp, logp_ref):
    """Per-token $k_3 = (\\rho - 1) - \\log\\rho$ (a Tensor shaped like ``logp``)."""
    # --- solution ---
    log_ratio = logp_ref - logp  # log ρ
    return (ma.exp(log_ratio) - 1) - log_ratio
    # --- exercise ---
    # raise NotImplementedError("exercise: log ρ = logp_ref - logp, then (ρ - 1) - log ρ")
    # --- end ---
