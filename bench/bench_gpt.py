"""TinyGPT training step and sampling: minialign against PyTorch CPU eager, same run.

    /tmp/venv/bin/python bench/bench_gpt.py            # both configs + sampling
    /tmp/venv/bin/python bench/bench_gpt.py --no-tune-malloc

One training step = forward, cross-entropy, backward, AdamW step (float32). The
two libraries' steps are *interleaved* (one minialign step, one torch step, ...) so
that load from other processes on a shared machine hits both equally; we report the
median over ``--steps`` steps after a warm-up, and the ratio minialign / torch.

Peak memory of the small step is measured with ``tracemalloc`` (NumPy reports its
array buffers to it), over one step, on top of the live model and optimiser state;
the process's ``ru_maxrss`` (which includes PyTorch) is printed for context.

``--threads N`` (default 2) gives both libraries N BLAS threads (threadpoolctl for
NumPy's OpenBLAS, ``torch.set_num_threads``). On a machine whose cores are busy with
other work, 2-thread BLAS in either library can be several times slower and very
noisy (threads wait on a descheduled sibling); ``--threads 1`` then measures the
libraries rather than the scheduler.

By default the bench calls `minialign.perf.tune_malloc()` first (see that module:
glibc otherwise returns every large temporary to the OS and page-faults it back).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
import tracemalloc

import numpy as np

import minialign.functional as F
from minialign import no_grad, perf
from minialign.nn import GPTConfig, TinyGPT, generate

try:
    from minialign.optim import AdamW
except ImportError:  # the optimiser lands in parallel; a minimal stand-in meanwhile
    AdamW = None

CONFIGS = {
    "tiny": GPTConfig(vocab_size=64, block_size=32, n_layer=2, n_head=4, n_embd=64),
    "small": GPTConfig(vocab_size=128, block_size=64, n_layer=4, n_head=4, n_embd=128),
}
BATCH, LR = 32, 1e-3


class _InlineAdamW:
    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        self.params, self.lr, self.betas, self.eps, self.wd, self.t = params, lr, betas, eps, weight_decay, 0  # fmt: skip
        self.m = [np.zeros_like(p.data) for p in params]
        self.v = [np.zeros_like(p.data) for p in params]

    def step(self):
        self.t += 1
        b1, b2 = self.betas
        for p, m, v in zip(self.params, self.m, self.v):
            p.data *= np.float32(1 - self.lr * self.wd)
            m *= np.float32(b1)
            m += np.float32(1 - b1) * p.grad
            v *= np.float32(b2)
            v += np.float32(1 - b2) * p.grad * p.grad
            step = np.float32(self.lr / (1 - b1**self.t))
            p.data -= step * m / (np.sqrt(v / np.float32(1 - b2**self.t)) + np.float32(self.eps))

    def zero_grad(self):
        for p in self.params:
            p.grad = None


def minialign_step_fn(cfg: GPTConfig, idx, targets):
    model = TinyGPT(cfg, rng=0)
    opt = (AdamW or _InlineAdamW)(model.parameters(), lr=LR)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(idx), targets)
        loss.backward()
        opt.step()
        return loss.item()

    return model, step


def torch_step_fn(cfg: GPTConfig, state: dict, idx, targets):
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            C = cfg.n_embd
            self.ln1, self.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
            self.qkv, self.proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
            self.fc, self.fc_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

        def forward(self, x):
            B, T, C = x.shape
            nh = cfg.n_head
            q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
            q, k, v = (t.view(B, T, nh, C // nh).transpose(1, 2) for t in (q, k, v))
            y = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
            h = nn.functional.gelu(self.fc(self.ln2(x)), approximate="tanh")
            return x + self.fc_proj(h)

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
            self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
            self.blocks = nn.ModuleList(Block() for _ in range(cfg.n_layer))
            self.ln_f = nn.LayerNorm(cfg.n_embd)

        def forward(self, idx):
            x = self.wte(idx) + self.wpe.weight[: idx.shape[1]]
            for b in self.blocks:
                x = b(x)
            return self.ln_f(x) @ self.wte.weight.T  # tied, as TinyGPT

    model = GPT()
    rename = {"attn.qkv": "qkv", "attn.proj": "proj", "mlp.fc": "fc", "mlp.proj": "fc_proj"}
    with torch.no_grad():
        params = dict(model.named_parameters())
        for name, value in state.items():
            tname = name
            for ours, theirs in rename.items():
                tname = tname.replace(ours, theirs)
            linear = name.endswith(".weight") and value.ndim == 2 and "wte" not in name and "wpe" not in name  # fmt: skip
            params[tname].copy_(torch.from_numpy(value.T.copy() if linear else value))
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    t_idx, t_targets = torch.from_numpy(idx), torch.from_numpy(targets)

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(t_idx)
        loss = nn.functional.cross_entropy(logits.view(-1, cfg.vocab_size), t_targets.view(-1))
        loss.backward()
        opt.step()
        return loss.item()

    return step


def time_interleaved(fns, steps: int, warmup: int = 3):
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for _ in range(steps):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [statistics.median(ts) for ts in times]


def bench_training(name: str, steps: int, with_torch: bool):
    cfg = CONFIGS[name]
    r = np.random.default_rng(0)
    idx = r.integers(0, cfg.vocab_size, (BATCH, cfg.block_size))
    targets = r.integers(0, cfg.vocab_size, (BATCH, cfg.block_size))
    model, ma_step = minialign_step_fn(cfg, idx, targets)
    fns = [ma_step]
    if with_torch:
        fns.append(torch_step_fn(cfg, model.state_dict(), idx, targets))
        l_ma, l_t = ma_step(), fns[1]()  # same weights, same data: losses should agree
        print(f"  first losses: minialign {l_ma:.5f}, torch {l_t:.5f}")
    medians = time_interleaved(fns, steps)
    flops = 6 * model.num_parameters() * BATCH * cfg.block_size  # rough, without attention
    line = f"{name:6s} step: minialign {medians[0] * 1e3:7.2f} ms ({flops / medians[0] / 1e9:5.1f} GFLOP/s)"  # fmt: skip
    if with_torch:
        line += f" | torch {medians[1] * 1e3:7.2f} ms | ratio {medians[0] / medians[1]:.2f}"
    print(line)
    if name == "small":
        tracemalloc.start()
        ma_step()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  peak memory of one small step (tracemalloc, NumPy buffers): {peak / 2**20:.1f} MiB;"
              f" process ru_maxrss {rss:.0f} MiB (includes torch)")  # fmt: skip


def bench_sampling(repeats: int = 5, B: int = 16, new: int = 32, T_prompt: int = 8):
    cfg = CONFIGS["small"]
    model = TinyGPT(cfg, rng=0)
    prompt = np.random.default_rng(0).integers(0, cfg.vocab_size, (B, T_prompt))
    rates = {}
    for use_cache in (True, False):
        times = []
        for i in range(repeats):
            t0 = time.perf_counter()
            with no_grad():
                generate(model, prompt, new, rng=np.random.default_rng(i), use_cache=use_cache)
            times.append(time.perf_counter() - t0)
        rates[use_cache] = B * new / statistics.median(times)
    print(f"sampling (small config, batch {B}, {new} new tokens after {T_prompt}): "
          f"{rates[True]:8.0f} tok/s with KV cache, {rates[False]:8.0f} tok/s without "
          f"({rates[True] / rates[False]:.1f}x)")  # fmt: skip


def _limit_threads(n: int) -> None:
    """The same number of BLAS threads for NumPy (OpenBLAS, via threadpoolctl) and torch."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n, user_api="blas")
    except ImportError:
        print("threadpoolctl not installed: NumPy's BLAS thread count left as it is")
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--configs", nargs="+", default=["tiny", "small"], choices=list(CONFIGS))
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-sampling", action="store_true")
    ap.add_argument("--no-tune-malloc", action="store_true")
    ap.add_argument("--threads", type=int, default=2, help="BLAS threads for both libraries")
    args = ap.parse_args(argv)
    _limit_threads(args.threads)
    if not args.no_tune_malloc:
        perf.tune_malloc()
    with_torch = not args.no_torch
    if with_torch:
        try:
            import torch

            print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ", end="")
        except ImportError:
            with_torch = False
    print(f"numpy {np.__version__}; python {sys.version.split()[0]}; "
          f"optimiser {'minialign.optim.AdamW' if AdamW else 'inline AdamW'}; "
          f"malloc tuned: {perf.malloc_tuned()}")  # fmt: skip
    for name in args.configs:
        bench_training(name, args.steps, with_torch)
    if not args.no_sampling:
        bench_sampling()


if __name__ == "__main__":
    main()
