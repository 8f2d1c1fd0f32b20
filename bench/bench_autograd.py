"""How much does minialign's autograd cost per op, and per small training step, vs PyTorch CPU?

    python bench/bench_autograd.py [--repeats 15]

Per-op rows time forward + backward of one op on 8x8 float32 tensors, so they
measure Python overhead (graph recording, closures, the backward walk), not FLOPs.
The MLP row times a full training step: batch 64, 784 -> 128 -> 10, float32,
forward + cross-entropy + backward + an SGD update. Each number is the median
over repeats (each repeat averages many calls) after a warm-up. The ratio column
is minialign / PyTorch, measured in the same run (torch uses all of the machine's
cores; skipped if torch is not installed).

On a machine shared with other jobs, multi-threaded BLAS is erratic (a thread that
waits for a descheduled sibling stalls for a whole time slice); pin it with
``OPENBLAS_NUM_THREADS=1 python bench/bench_autograd.py --torch-threads 1`` for steadier
numbers (tiny ops gain nothing from threads anyway).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import minialign as ma
import minialign.functional as F

try:
    import torch
except ImportError:  # the benchmark still runs, without the comparison
    torch = None


def median_seconds(step, repeats: int, min_time: float = 0.02) -> float:
    """Median seconds per call of ``step()``; each repeat runs enough calls to last ``min_time``."""
    for _ in range(3):
        step()  # warm-up
    calls, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_time:
        step()
        calls += 1
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            step()
        times.append((time.perf_counter() - t0) / calls)
    return statistics.median(times)


# -- per-op cases: forward + backward of one op on 8x8 float32 --------------------------

OPS = {
    "add": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "matmul": lambda a, b: a @ b,
    "sum": lambda a, b: a.sum(),
    "softmax": lambda a, b: F.softmax(a) if isinstance(a, ma.Tensor) else torch.softmax(a, -1),
}


def op_step_minialign(op, rng):
    a = ma.tensor(rng.standard_normal((8, 8), dtype=np.float32), requires_grad=True)
    b = ma.tensor(rng.standard_normal((8, 8), dtype=np.float32), requires_grad=True)
    g = np.ones((8, 8), np.float32)

    def step():
        a.grad = b.grad = None
        out = op(a, b)
        out.backward(g if out.shape else None)

    return step


def op_step_torch(op):
    a = torch.randn(8, 8, requires_grad=True)
    b = torch.randn(8, 8, requires_grad=True)
    g = torch.ones(8, 8)

    def step():
        a.grad = b.grad = None
        out = op(a, b)
        out.backward(g if out.dim() else None)

    return step


# -- one MLP training step ---------------------------------------------------------------

B, D_IN, H, D_OUT, LR = 64, 784, 128, 10, 0.01


def mlp_step_minialign(rng):
    x = rng.standard_normal((B, D_IN), dtype=np.float32)
    y = rng.integers(0, D_OUT, B)
    params = [
        ma.tensor(rng.standard_normal((D_IN, H), dtype=np.float32) * 0.03, requires_grad=True),
        ma.tensor(np.zeros(H, np.float32), requires_grad=True),
        ma.tensor(rng.standard_normal((H, D_OUT), dtype=np.float32) * 0.1, requires_grad=True),
        ma.tensor(np.zeros(D_OUT, np.float32), requires_grad=True),
    ]
    W1, b1, W2, b2 = params

    def step():
        for p in params:
            p.grad = None
        loss = F.cross_entropy(ma.relu(x @ W1 + b1) @ W2 + b2, y)
        loss.backward()
        for p in params:
            p.data -= LR * p.grad
        return loss

    return step


def mlp_step_torch():
    x = torch.randn(B, D_IN)
    y = torch.randint(0, D_OUT, (B,))
    model = torch.nn.Sequential(
        torch.nn.Linear(D_IN, H), torch.nn.ReLU(), torch.nn.Linear(H, D_OUT)
    )
    opt = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--torch-threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    if torch is not None:
        torch.manual_seed(0)
        torch.set_num_threads(args.torch_threads)

    # All minialign timings first, then all torch ones: torch's worker threads keep spinning
    # for a while after each op and would steal cores from NumPy's BLAS if interleaved.
    cases = [(f"{name} 8x8 fwd+bwd", op) for name, op in OPS.items()]
    cases.append((f"MLP step {B}x{D_IN}->{H}->{D_OUT}", None))
    ours = [
        median_seconds(op_step_minialign(op, rng) if op else mlp_step_minialign(rng), args.repeats)
        for _, op in cases
    ]
    theirs = [
        (
            median_seconds(op_step_torch(op) if op else mlp_step_torch(), args.repeats)
            if torch
            else None
        )
        for _, op in cases
    ]
    rows = [(name, o, t) for (name, _), o, t in zip(cases, ours, theirs)]

    threads = (
        f"torch {torch.__version__}, {torch.get_num_threads()} threads" if torch else "no torch"
    )
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(
        f"numpy {np.__version__} (OPENBLAS_NUM_THREADS={blas}); {threads}; "
        f"{os.cpu_count()} cores; median of {args.repeats}"
    )
    print(f"{'case':<30} {'minialign':>12} {'torch':>12} {'ratio':>7}")
    for name, ours, theirs in rows:
        t = f"{theirs * 1e6:10.1f}us" if theirs else f"{'-':>12}"
        ratio = f"{ours / theirs:6.1f}x" if theirs else f"{'-':>7}"
        print(f"{name:<30} {ours * 1e6:10.1f}us {t} {ratio}")


if __name__ == "__main__":
    main()
