"""TinyGPT training step and sampling: minialign against PyTorch CPU eager, same process.

    python bench/bench_gpt.py                    # what `import minialign` gives, 1 BLAS thread
    python bench/bench_gpt.py --threads 2        # both libraries on 2 BLAS threads
    python bench/bench_gpt.py --no-tune          # the same with MINIALIGN_TUNE_MALLOC=0
    python bench/bench_gpt.py --configs tiny small medium --sampling-batches 1 4 16 64 256

**Training step** = forward, cross-entropy, backward, AdamW step, float32, the same
weights and batch in both libraries. The two libraries' steps are *interleaved* (one
minialign step, one torch step, ...) so that load from other processes hits both alike;
we report each library's median and the median of the per-pair ratios minialign/torch.

**GEMM floor.** The step's matrix products (every Linear and the tied head: 6 flops per
weight per row; attention: $12 B T^2 C$ per layer, masked half included) divided by the
one-thread float32 matmul rate NumPy reaches on this machine (measured here on 512^3).
"floor fraction" = floor / minialign's step time: 1.0 would be nothing but GEMMs.

**Peak memory** is measured in a fresh process per (library, config): the growth of the
resident set (VmHWM, Linux) over three steps, from after the model and optimiser exist.

**Sampling** = `minialign.nn.generate` with its KV cache against the same model in
PyTorch sampling with its own KV cache under ``torch.inference_mode`` (log-softmax,
``torch.multinomial``, the chosen token's log-prob), 8-token prompts, 24 new tokens,
interleaved, at each batch size; tokens per second and the time ratio minialign/torch.

Run it on an idle machine if you can; ``os.getloadavg()`` is printed with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CONFIGS = {  # name: (GPTConfig kwargs, batch size)
    "tiny": (dict(vocab_size=64, block_size=32, n_layer=2, n_head=4, n_embd=64), 32),
    "small": (dict(vocab_size=128, block_size=64, n_layer=4, n_head=4, n_embd=128), 32),
    "medium": (dict(vocab_size=256, block_size=128, n_layer=6, n_head=8, n_embd=256), 16),
}
LR = 1e-3


def step_flops(cfg, B: int) -> int:
    """Matrix-product flops of one training step (forward 1x, backward 2x)."""
    C, L, V, T = cfg.n_embd, cfg.n_layer, cfg.vocab_size, cfg.block_size
    N = B * T
    linear = 6 * N * (12 * C * C * L + C * V)  # qkv 3C², proj C², fc 4C², proj 4C², head CV
    attention = L * 12 * B * T * T * C  # S = QKᵀ and PV, each 2BT²C; backward twice that
    return linear + attention


def _data(cfg, B: int):
    import numpy as np

    r = np.random.default_rng(0)
    idx = r.integers(0, cfg.vocab_size, (B, cfg.block_size))
    return idx, r.integers(0, cfg.vocab_size, (B, cfg.block_size))


def minialign_step_fn(cfg, idx, targets):
    import minialign.functional as F
    from minialign.nn import TinyGPT
    from minialign.optim import AdamW

    model = TinyGPT(cfg, rng=0)
    opt = AdamW(model.parameters(), lr=LR)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(idx), targets)
        loss.backward()
        opt.step()
        return loss.item()

    return model, step


def torch_model(cfg, state: dict):
    """TinyGPT in PyTorch (tied head, pre-LN, tanh GELU) with minialign's weights copied in."""
    import torch
    from torch import nn

    nh, C = cfg.n_head, cfg.n_embd

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
            self.qkv, self.proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
            self.fc, self.fc_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

        def forward(self, x, cache=None, layer=0):
            B, T, _ = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
            q, k, v = (t.view(B, T, nh, C // nh).transpose(1, 2) for t in (q, k, v))
            if cache is not None:  # sampling: append to the cache, attend to all of it
                end = cache["length"] + T
                cache["k"][layer][:, :, cache["length"] : end] = k
                cache["v"][layer][:, :, cache["length"] : end] = v
                k, v = cache["k"][layer][:, :, :end], cache["v"][layer][:, :, :end]
            # one new query sees every cached key; a whole sequence needs the causal mask
            y = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=T > 1)
            x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
            h = nn.functional.gelu(self.fc(self.ln2(x)), approximate="tanh")
            return x + self.fc_proj(h)

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(cfg.vocab_size, C)
            self.wpe = nn.Embedding(cfg.block_size, C)
            self.blocks = nn.ModuleList(Block() for _ in range(cfg.n_layer))
            self.ln_f = nn.LayerNorm(C)

        def forward(self, idx, cache=None):
            start = 0 if cache is None else cache["length"]
            x = self.wte(idx) + self.wpe.weight[start : start + idx.shape[1]]
            for layer, b in enumerate(self.blocks):
                x = b(x, cache, layer)
            if cache is not None:
                cache["length"] += idx.shape[1]
            return self.ln_f(x) @ self.wte.weight.T  # tied, as TinyGPT

    model = GPT()
    rename = {"attn.qkv": "qkv", "attn.proj": "proj", "mlp.fc": "fc", "mlp.proj": "fc_proj"}
    with torch.no_grad():
        params = dict(model.named_parameters())
        for name, value in state.items():
            tname = name
            for ours, theirs in rename.items():
                tname = tname.replace(ours, theirs)
            linear = value.ndim == 2 and "wte" not in name and "wpe" not in name
            params[tname].copy_(torch.from_numpy(value.T.copy() if linear else value))
    return model


def torch_step_fn(cfg, state: dict, idx, targets):
    import torch

    model = torch_model(cfg, state)
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    t_idx, t_targets = torch.from_numpy(idx), torch.from_numpy(targets)

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(t_idx)
        loss = torch.nn.functional.cross_entropy(
            logits.view(-1, cfg.vocab_size), t_targets.view(-1)
        )
        loss.backward()
        opt.step()
        return loss.item()

    return step


def torch_sample_fn(cfg, model, prompt, new_tokens: int):
    """PyTorch's KV-cache sampling loop for the same model: one position per step."""
    import torch

    nh, hs = cfg.n_head, cfg.n_embd // cfg.n_head
    B, P = prompt.shape
    t_prompt = torch.from_numpy(prompt)

    def sample(seed: int):
        gen = torch.Generator().manual_seed(seed)
        with torch.inference_mode():
            shape = (B, nh, cfg.block_size, hs)
            cache = {"length": 0, "k": [torch.zeros(shape) for _ in range(cfg.n_layer)],
                     "v": [torch.zeros(shape) for _ in range(cfg.n_layer)]}  # fmt: skip
            tokens = torch.zeros((B, P + new_tokens), dtype=torch.long)
            tokens[:, :P] = t_prompt
            logprobs = torch.zeros((B, new_tokens))
            logits = model(t_prompt, cache)[:, -1]  # (B, V)
            for i in range(new_tokens):
                logp = torch.log_softmax(logits, dim=-1)
                new = torch.multinomial(logp.exp(), 1, generator=gen)  # (B, 1)
                tokens[:, P + i] = new[:, 0]
                logprobs[:, i] = logp.gather(1, new)[:, 0]
                if i + 1 < new_tokens:
                    logits = model(new, cache)[:, -1]
        return tokens, logprobs

    return sample


def time_interleaved(fns, steps: int, warmup: int = 2):
    """Median seconds of each function and the median of per-round ratios fns[0]/fns[1]."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for _ in range(steps):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    ratios = [a / b for a, b in zip(*times[:2])] if len(fns) > 1 else [float("nan")]
    return [statistics.median(ts) for ts in times], statistics.median(ratios)


def matmul_peak() -> float:
    """FLOP/s of NumPy's float32 matmul on 512 x 512 x 512 (best of 20)."""
    import numpy as np

    a = np.random.default_rng(0).standard_normal((512, 512)).astype(np.float32)
    best = float("inf")
    for _ in range(20):
        t0 = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - t0)
    return 2 * 512**3 / best


def bench_training(name: str, steps: int, with_torch: bool, peak: float) -> dict:
    from minialign.nn import GPTConfig

    kwargs, B = CONFIGS[name]
    cfg = GPTConfig(**kwargs)
    idx, targets = _data(cfg, B)
    model, ma_step = minialign_step_fn(cfg, idx, targets)
    fns = [ma_step]
    if with_torch:
        fns.append(torch_step_fn(cfg, model.state_dict(), idx, targets))
        l_ma, l_t = ma_step(), fns[1]()  # same weights, same data: losses should agree
        print(f"  {name}: first losses minialign {l_ma:.5f}, torch {l_t:.5f}")
    (t_ma, *t_torch), ratio = time_interleaved(fns, steps)
    floor = step_flops(cfg, B) / peak
    line = (f"{name:6s} step (B={B}): minialign {t_ma * 1e3:8.2f} ms, GEMM floor "
            f"{floor * 1e3:7.2f} ms (fraction {floor / t_ma:.2f})")  # fmt: skip
    if with_torch:
        line += f" | torch {t_torch[0] * 1e3:8.2f} ms | ratio {ratio:.2f}"
    print(line, flush=True)
    return dict(config=name, minialign_ms=t_ma * 1e3, torch_ms=t_torch[0] * 1e3 if t_torch else None,
                ratio=ratio, floor_ms=floor * 1e3, floor_fraction=floor / t_ma)  # fmt: skip


def _vm(key: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key)) / 1024


def memory_probe(library: str, name: str) -> None:
    """Run in a fresh process: print the resident-set growth (MiB) over three steps."""
    from minialign.nn import GPTConfig

    kwargs, B = CONFIGS[name]
    cfg = GPTConfig(**kwargs)
    idx, targets = _data(cfg, B)
    model, step = minialign_step_fn(cfg, idx, targets)
    if library == "torch":
        step = torch_step_fn(cfg, model.state_dict(), idx, targets)
        del model
    before = _vm("VmRSS")
    for _ in range(3):
        step()
    print(json.dumps({"growth_mib": _vm("VmHWM") - before, "rss_before_mib": before}))


def bench_memory(name: str, with_torch: bool, env: dict) -> dict:
    out = {}
    for library in ["minialign"] + (["torch"] if with_torch else []):
        cmd = [sys.executable, __file__, "--_memory-probe", library, name]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        out[library] = json.loads(done.stdout.strip().splitlines()[-1])["growth_mib"]
    print(f"{name:6s} peak memory of training (RSS growth over 3 steps): "
          + ", ".join(f"{lib} {mib:6.1f} MiB" for lib, mib in out.items()), flush=True)  # fmt: skip
    return out


def _sampling_fns(cfg, B: int, new: int, P: int, with_torch: bool) -> list:
    import numpy as np

    from minialign.nn import generate

    prompt = np.random.default_rng(B).integers(0, cfg.vocab_size, (B, P))
    model, _ = minialign_step_fn(cfg, *_data(cfg, 1))
    seeds = iter(range(10**6))
    fns = [lambda: generate(model, prompt, new, rng=np.random.default_rng(next(seeds)))]
    if with_torch:
        t_sample = torch_sample_fn(cfg, torch_model(cfg, model.state_dict()), prompt, new)
        fns.append(lambda: t_sample(next(seeds)))
    return fns


def bench_sampling(batches, with_torch: bool, repeats: int, new: int = 24, P: int = 8) -> list:
    from minialign.nn import GPTConfig

    cfg = GPTConfig(**CONFIGS["tiny"][0])
    rows = []
    for B in batches:
        fns = _sampling_fns(cfg, B, new, P, with_torch)
        (t_ma, *t_torch), ratio = time_interleaved(fns, repeats)
        row = dict(batch=B, minialign_tok_s=B * new / t_ma)
        line = f"sampling tiny, batch {B:4d}: minialign {row['minialign_tok_s']:9.0f} tok/s"
        if with_torch:
            row.update(torch_tok_s=B * new / t_torch[0], ratio=ratio)
            line += f" | torch {row['torch_tok_s']:9.0f} tok/s | time ratio {ratio:.2f}"
        print(line, flush=True)
        rows.append(row)
    return rows


def _limit_threads(n: int) -> None:
    """The same number of BLAS threads for NumPy (OpenBLAS, via threadpoolctl) and torch."""
    import numpy  # noqa: F401 - threadpoolctl limits only libraries already loaded
    from threadpoolctl import threadpool_limits

    threadpool_limits(n, user_api="blas")
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=20, help="timed steps (medium: a quarter)")
    ap.add_argument("--configs", nargs="*", default=["tiny", "small"], choices=list(CONFIGS),
                    help="training-step configs (medium: V256 T128 d256 L6 H8 B16)")  # fmt: skip
    ap.add_argument("--sampling-batches", nargs="*", type=int, default=[16],
                    help="batch sizes for sampling (tiny config, 8 + 24 tokens)")  # fmt: skip
    ap.add_argument("--sampling-repeats", type=int, default=20)
    ap.add_argument("--memory", action="store_true", help="also measure peak memory per config")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-tune", action="store_true", help="set MINIALIGN_TUNE_MALLOC=0")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads for both libraries")
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--_memory-probe", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.no_tune:
        os.environ["MINIALIGN_TUNE_MALLOC"] = "0"  # read when minialign is imported, below
    _limit_threads(args.threads)
    if args._memory_probe:
        return memory_probe(*args._memory_probe)

    import numpy as np

    from minialign import perf

    with_torch = not args.no_torch
    try:
        import torch

        print(f"torch {torch.__version__} ({torch.get_num_threads()} threads); ", end="")
    except ImportError:
        with_torch = False
    peak = matmul_peak()
    print(f"numpy {np.__version__}; python {sys.version.split()[0]}; malloc tuned: "
          f"{perf.malloc_tuned()}; float32 matmul {peak / 1e9:.0f} GFLOP/s; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    results = {"threads": args.threads, "tuned": perf.malloc_tuned(), "gflops": peak / 1e9}
    results["training"] = [
        bench_training(name, args.steps if name != "medium" else max(3, args.steps // 4),
                       with_torch, peak)
        for name in args.configs
    ]  # fmt: skip
    if args.memory:
        results["memory"] = {n: bench_memory(n, with_torch, dict(os.environ)) for n in args.configs}
    if args.sampling_batches:
        results["sampling"] = bench_sampling(
            args.sampling_batches, with_torch, args.sampling_repeats
        )
    results["load_average_after"] = os.getloadavg()[0]
    print(f"load average after: {results['load_average_after']:.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
