r"""Exercise 8: the DPO loss.

$$\Delta = \big[\log\pi_\theta(y^+) - \log\pi_{\rm ref}(y^+)\big]
         - \big[\log\pi_\theta(y^-) - \log\pi_{\rm ref}(y^-)\big], \qquad
  L_{\rm DPO} = -\mathbb{E}\Big[\log\sigma\big(\tfrac{1}{\tau}\Delta\big)\Big]$$

The four arguments are (B,) Tensors of log-probs of whole responses (summed over tokens);
the two policy ones require grad. ``tau`` is the temperature $\tau$ (the DPO paper's
$\beta$ is $1/\tau$). Return a scalar Tensor. When the policy equals the reference,
$\Delta = 0$ and the loss is $\log 2 \approx 0.693$; margins $\Delta/\tau$ of $\pm 10^4$
must stay finite.

Grade this file:  minialign check --exercises 08_dpo_loss.py

Notebook: notebooks/05_dpo.ipynb, §3 "The log-ratio margin" and §4 "The DPO loss"
"""

import minialign.functional as F


def dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, tau):
    """$L_{\\rm DPO}$, the mean over pairs (a scalar Tensor)."""
    # --- solution ---
    chosen = policy_chosen_logps - ref_chosen_logps  # log π/π_ref of y+
    rejected = policy_rejected_logps - ref_rejected_logps  # ... and of y-
    return -F.logsigmoid((chosen - rejected) / tau).mean()
    # --- exercise ---
    # raise NotImplementedError("exercise: Δ from the four log-probs, then -mean(log σ(Δ/τ))")
    # --- end ---
