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

import hashlib
import json
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


#: sha256 of the shipped models' contents (`fingerprint`): what `load_reference` checks.
SHIPPED_FINGERPRINTS = {
    "sentiment": "b767d25f180a28c6c3cb262cbc44b59228044de9dc861c121ad628ead680fbed",
    "arithmetic": "ad95c81aaf45108f1e37fc2dd5f75084d7288940f242858d40409d5866fb155c",
}


def fingerprint(path) -> str:
    """sha256 of a model checkpoint's config and parameters (not of the zip file's bytes,
    which hold timestamps): equal fingerprints mean bit-for-bit equal models."""
    config, state, _, _ = checkpoint.load_state(path)
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for key in sorted(state):
        array = np.ascontiguousarray(state[key])
        digest.update(f"{key}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def load_reference(name: str) -> TinyGPT:
    """The shipped pre-trained reference model of task ``name`` (in eval mode), verified."""
    path = reference_path(name)
    restore = (f"restore it with `minialign pretrain {name} --replace-shipped` (a few "
               f"minutes, bit for bit) or reinstall minialign")  # fmt: skip
    if not path.exists():
        raise FileNotFoundError(f"the shipped model {path} is missing; {restore}")
    try:
        found = fingerprint(path)
    except ValueError as e:
        raise ValueError(f"the shipped model {path} cannot be read ({e}); {restore}") from e
    if found != SHIPPED_FINGERPRINTS[name]:
        raise ValueError(f"the shipped model {path} has been changed (its contents are not "
                         f"the released ones); {restore}")  # fmt: skip
    return checkpoint.load(path).eval()


def save_pretrained(name: str, model: TinyGPT, path=None, *, replace_shipped=False) -> str:
    """Write a freshly pre-trained ``model`` of task ``name``; returns a one-line report.

    ``path`` is where to write; the shipped file is replaced only with ``replace_shipped``.
    The report says whether the model is bit for bit the shipped one."""
    if replace_shipped == (path is not None):
        raise ValueError("save_pretrained: give a path, or replace_shipped=True, not both")
    path = reference_path(name) if replace_shipped else Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.save(model, path, extra={"task": name, "recipe": _recipe_dict(name)})
    same = fingerprint(path) == SHIPPED_FINGERPRINTS[name]
    return f"wrote {path} ({'bit for bit the shipped model' if same else 'DIFFERS from the shipped model'})"


def _recipe_dict(name: str) -> dict:
    r = RECIPES[name]
    return dict(model=r.model, corpus_size=r.corpus_size, steps=r.steps,
                batch_size=r.batch_size, lr=r.lr, seed=r.seed)  # fmt: skip
