"""The reference models every alignment method starts from, shipped and reproducible.

Each task has a small TinyGPT pre-trained with next-token cross-entropy on the task's
generated corpus (`minialign.train.train_sft`). It plays three parts at once: the
starting policy, the frozen reference $\\pi_{\\rm ref}$ of the KL penalty, and the
initial trunk of the reward and value models.

The weights ship in the package (``minialign/data/<task>_reference.npz``, ~100-300 KB)
so that notebooks and ``minialign demo`` start in a second, and `pretrain` rebuilds
them **bit for bit**: ``minialign pretrain sentiment`` writes the same bytes of
parameters (a test checks it). Bitwise repeatability needs the same arithmetic, so
`pretrain` runs BLAS on one thread (multi-threaded matrix products may sum in a
different order) — which is also the fastest setting for matrices this small.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from . import checkpoint
from .nn import GPTConfig, TinyGPT
from .tasks import ArithmeticTask, SentimentTask
from .train.sft import SFTConfig, train_sft


@dataclass(frozen=True)
class Recipe:
    """How a task's reference model is made: model size, data and SFT settings."""

    model: dict
    corpus_size: int
    steps: int
    batch_size: int
    lr: float
    seed: int = 0
    task_kwargs: dict = field(default_factory=dict)


RECIPES: dict[str, Recipe] = {
    "sentiment": Recipe(
        model=dict(n_layer=2, n_head=2, n_embd=32),
        corpus_size=4000,
        steps=800,
        batch_size=32,
        lr=3e-3,
    ),
    "arithmetic": Recipe(
        model=dict(n_layer=2, n_head=2, n_embd=48),
        corpus_size=4000,
        steps=1200,
        batch_size=32,
        lr=3e-3,
    ),
}

TASKS = {"sentiment": SentimentTask, "arithmetic": ArithmeticTask}


def make_task(name: str):
    """A fresh task object by name (``"sentiment"`` or ``"arithmetic"``)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {sorted(TASKS)}")
    return TASKS[name](**RECIPES[name].task_kwargs)


def single_thread_blas():
    """A context manager limiting BLAS to one thread (threadpoolctl), for bitwise repeatability."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def pretrain(name: str, progress: bool = True) -> TinyGPT:
    """Train task ``name``'s reference model from scratch, deterministically."""
    recipe, task = RECIPES[name], make_task(name)
    rng = np.random.default_rng(recipe.seed)
    config = GPTConfig(
        vocab_size=task.tokenizer.vocab_size, block_size=task.block_size, **recipe.model
    )
    with single_thread_blas():
        corpus = task.corpus(recipe.corpus_size, rng)
        model = TinyGPT(config, rng=rng)
        config = SFTConfig(steps=recipe.steps, batch_size=recipe.batch_size,
                           learning_rate=recipe.lr, logging_steps=10)  # fmt: skip
        train_sft(model, corpus.ids, corpus.mask, config, rng=rng, progress=progress)
    return model.eval()


def reference_path(name: str) -> Path:
    """Where the shipped reference of task ``name`` lives inside the package."""
    if name not in RECIPES:
        raise ValueError(f"unknown task {name!r}; choose one of {sorted(RECIPES)}")
    return Path(str(resources.files("minialign") / "data" / f"{name}_reference.npz"))


def load_reference(name: str) -> TinyGPT:
    """The shipped pre-trained reference model of task ``name`` (in eval mode)."""
    path = reference_path(name)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing; rebuild it with `minialign pretrain {name}` "
            f"(or `python -m minialign pretrain {name}`)"
        )
    return checkpoint.load(path).eval()


def save_reference(name: str, model: TinyGPT, path: Path | None = None) -> Path:
    """Write ``model`` as task ``name``'s reference (atomically; see `minialign.checkpoint`)."""
    path = reference_path(name) if path is None else Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return checkpoint.save(model, path, extra={"task": name, "recipe": _recipe_dict(name)})


def _recipe_dict(name: str) -> dict:
    r = RECIPES[name]
    return dict(model=r.model, corpus_size=r.corpus_size, steps=r.steps,
                batch_size=r.batch_size, lr=r.lr, seed=r.seed)  # fmt: skip
