"""TinyGPT against the same network written in PyTorch, from the same state dict, float64.

The PyTorch side is written independently with torch's own ops (scaled_dot_product_attention,
layer_norm, tanh-GELU, cross_entropy), so agreement checks our forward *and* every
hand-derived backward at once.
"""

import numpy as np
import pytest

import minialign.functional as F
from minialign.nn import GPTConfig, TinyGPT, sequence_logprobs

torch = pytest.importorskip("torch")
tF = torch.nn.functional

SMALL = GPTConfig(vocab_size=128, block_size=64, n_layer=4, n_head=4, n_embd=128)


def torch_gpt(params: dict, idx, cfg: GPTConfig):
    """The TinyGPT forward in PyTorch. ``params`` maps our names to torch tensors.

    Our Linear weights are (in, out), so ``x @ W`` here (``nn.Linear`` would need W.T).
    """
    B, T = idx.shape
    C, nh = cfg.n_embd, cfg.n_head
    lin = lambda x, name: x @ params[name + ".weight"] + params[name + ".bias"]  # noqa: E731
    ln = lambda x, name: tF.layer_norm(  # noqa: E731
        x, (C,), params[name + ".weight"], params[name + ".bias"], eps=1e-5
    )
    x = params["wte.weight"][idx] + params["wpe.weight"][:T]
    for i in range(cfg.n_layer):
        p = f"blocks.{i}."
        q, k, v = lin(ln(x, p + "ln1"), p + "attn.qkv").split(C, dim=-1)
        q, k, v = (t.view(B, T, nh, C // nh).transpose(1, 2) for t in (q, k, v))
        y = tF.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + lin(y.transpose(1, 2).reshape(B, T, C), p + "attn.proj")
        h = tF.gelu(lin(ln(x, p + "ln2"), p + "mlp.fc"), approximate="tanh")
        x = x + lin(h, p + "mlp.proj")
    return ln(x, "ln_f") @ params["wte.weight"].T


def _pair(seed=0):
    model = TinyGPT(SMALL, rng=seed).to_dtype(np.float64)
    r = np.random.default_rng(seed + 1)
    for p in model.parameters():  # off the init, so every parameter shapes the output
        p.data += r.normal(0, 0.05, p.shape)
    params = {
        name: torch.tensor(value, dtype=torch.float64, requires_grad=True)
        for name, value in model.state_dict().items()
    }
    return model, params


def test_logits_and_every_parameter_gradient_match_pytorch():
    model, params = _pair()
    r = np.random.default_rng(5)
    idx = r.integers(0, SMALL.vocab_size, (3, 17))
    targets = r.integers(0, SMALL.vocab_size, (3, 17))
    mask = (r.random((3, 17)) < 0.7).astype(np.float64)

    logits = model(idx)
    loss = F.cross_entropy(logits, targets, mask)
    loss.backward()

    t_logits = torch_gpt(params, torch.as_tensor(idx), SMALL)
    per_pos = tF.cross_entropy(
        t_logits.reshape(-1, SMALL.vocab_size), torch.as_tensor(targets).reshape(-1),
        reduction="none",
    )  # fmt: skip
    t_mask = torch.as_tensor(mask).reshape(-1)
    t_loss = (per_pos * t_mask).sum() / t_mask.sum()
    t_loss.backward()

    np.testing.assert_allclose(logits.data, t_logits.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(loss.item(), t_loss.item(), rtol=1e-12)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(
            p.grad, params[name].grad.numpy(), rtol=1e-8, atol=1e-12, err_msg=name
        )


def test_sequence_logprobs_and_their_gradient_match_pytorch():
    model, params = _pair(seed=3)
    r = np.random.default_rng(9)
    tokens = r.integers(0, SMALL.vocab_size, (2, 12))
    mask = np.zeros((2, 12), bool)
    mask[:, 4:] = True
    mask[0, 9:] = False
    tau = 0.8

    out = sequence_logprobs(model, tokens, mask, temperature=tau)
    out.total.sum().backward()

    t_tokens = torch.as_tensor(tokens)
    logp = tF.log_softmax(torch_gpt(params, t_tokens[:, :-1], SMALL) / tau, dim=-1)
    picked = logp.gather(-1, t_tokens[:, 1:, None])[..., 0] * torch.as_tensor(mask[:, 1:])
    picked.sum().backward()

    np.testing.assert_allclose(out.per_token.data, picked.detach().numpy(), rtol=1e-10, atol=1e-12)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(
            p.grad, params[name].grad.numpy(), rtol=1e-8, atol=1e-12, err_msg=name
        )
