"""Checkpoints: a model (and optionally its optimiser) in one ``.npz`` file, no pickle.

Layout of the file (every entry a plain array, so ``np.load(allow_pickle=False)`` works):

=====================  ===========================================================
``__meta__``           0-d unicode array: JSON ``{"format", "model_class", "config",
                       "optimizer_class", "extra"}``
``param/<name>``       each parameter, by its dotted name, dtype kept
``optim/<key>``        the optimiser's `state_dict` (moments, step counts, lr, ...)
=====================  ===========================================================

Saving writes to a temporary file in the same directory, flushes it to disk, then
``os.replace``-s it over the target: a crash mid-write leaves the old checkpoint
untouched. The model class is found by name in a small registry (`register_model`),
never by unpickling code.

    save(model, "ckpt.npz", optimizer=opt, extra={"step": 100})
    model = load("ckpt.npz")                       # builds a fresh TinyGPT from the config
    extra = load_into(model, "ckpt.npz", optimizer=opt)   # resume in place
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .nn.module import Module

FORMAT_VERSION = 1
_META, _PARAM, _OPTIM = "__meta__", "param/", "optim/"

# name -> function(config dict) -> Module. TinyGPT is imported lazily (see _registry).
_REGISTRY: dict[str, Callable[[dict], Module]] = {}


def register_model(name: str, from_config: Callable[[dict], Module]) -> None:
    """Make ``load`` able to rebuild models whose class is called ``name``.

    ``from_config(config_dict)`` must return a fresh model; the model's ``.config``
    must be a dict or have ``to_dict()``. Example for a new class::

        register_model("Bigram", lambda cfg: Bigram(**cfg))
    """
    _REGISTRY[name] = from_config


def _registry() -> dict[str, Callable[[dict], Module]]:
    if "TinyGPT" not in _REGISTRY:
        from .nn.critics import RewardModel, ValueModel
        from .nn.gpt import GPTConfig, TinyGPT

        _REGISTRY["TinyGPT"] = lambda cfg: TinyGPT(GPTConfig.from_dict(cfg))
        _REGISTRY["RewardModel"] = lambda cfg: RewardModel(GPTConfig.from_dict(cfg))
        _REGISTRY["ValueModel"] = lambda cfg: ValueModel(GPTConfig.from_dict(cfg))
    return _REGISTRY


def _config_of(model: Module) -> dict:
    config = getattr(model, "config", None)
    if hasattr(config, "to_dict"):
        config = config.to_dict()
    if not isinstance(config, dict):
        raise ValueError(
            f"save: {type(model).__name__}.config must be a dict or have to_dict(), "
            f"got {type(config).__name__}"
        )
    return config


def save(model: Module, path, optimizer=None, extra: dict | None = None) -> Path:
    """Write ``model`` (and ``optimizer``'s state, and a JSON-able ``extra``) to ``path`` atomically."""
    path = Path(path)
    meta = {
        "format": FORMAT_VERSION,
        "model_class": type(model).__name__,
        "config": _config_of(model),
        "optimizer_class": None if optimizer is None else type(optimizer).__name__,
        "extra": extra or {},
    }
    try:
        meta_json = json.dumps(meta, sort_keys=True)
    except TypeError as e:
        raise ValueError(f"save: config and extra must be JSON-serialisable ({e})") from e
    arrays = {_META: np.array(meta_json)}
    arrays.update({_PARAM + k: v for k, v in model.state_dict().items()})
    if optimizer is not None:
        arrays.update({_OPTIM + k: np.asarray(v) for k, v in optimizer.state_dict().items()})

    return write_npz_atomic(path, arrays)


def atomic_write(path, write: Callable[[object], None]) -> Path:
    """Write a file so that a crash leaves either the old version or the new one.

    ``write(f)`` fills a binary temp file beside ``path``; it is flushed and fsync-ed, then
    renamed over ``path``, and the directory is fsync-ed so the rename survives a power
    cut. On any error (Ctrl-C included) the temp file is removed. A process killed
    outright can leave ``.<name>.<random>.tmp`` behind: `remove_orphans` cleans those up.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_directory(path.parent)
    return path


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory or ".", os.O_RDONLY)
    except OSError:  # not possible on every platform (Windows): the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_orphans(path) -> int:
    """Delete the temp files that killed writes of ``path`` left behind; returns how many."""
    path = Path(path)
    if not path.parent.is_dir():
        return 0
    orphans = list(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))
    for orphan in orphans:
        orphan.unlink(missing_ok=True)
    return len(orphans)


def write_text_atomic(path, text: str) -> Path:
    """``text`` (UTF-8) to ``path`` with `atomic_write`."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def write_npz_atomic(path, arrays: dict[str, np.ndarray]) -> Path:
    """``np.savez`` of ``arrays`` to ``path`` with `atomic_write`."""
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def load_state(path) -> tuple[dict, dict[str, np.ndarray], dict[str, np.ndarray] | None, dict]:
    """Read a checkpoint without building a model: ``(config, state, optimizer_state, extra)``.

    ``state`` maps parameter names to arrays; ``optimizer_state`` is None if none was saved.
    `read_meta` gives the class name and format version.
    """
    return _split(*_read(path))


def _split(meta: dict, arrays: dict[str, np.ndarray]):
    state = {k[len(_PARAM) :]: v for k, v in arrays.items() if k.startswith(_PARAM)}
    optim = {k[len(_OPTIM) :]: v for k, v in arrays.items() if k.startswith(_OPTIM)}
    return meta["config"], state, (optim if meta["optimizer_class"] else None), meta["extra"]


def read_meta(path) -> dict:
    """The JSON header: format version, model class name, config, optimiser class, extra."""
    return _read(path)[0]


def load(path) -> Module:
    """Build the registered model class from the stored config and fill in its parameters."""
    meta, arrays = _read(path)
    name = meta["model_class"]
    registry = _registry()
    if name not in registry:
        raise ValueError(
            f"{path}: model class {name!r} is not registered (known: {sorted(registry)}); "
            f"call minialign.checkpoint.register_model({name!r}, from_config) first"
        )
    try:
        model = registry[name](meta["config"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: cannot build {name} from the stored config ({e})") from e
    _fill(model, path, meta, arrays)
    return model


def load_into(model: Module, path, optimizer=None) -> dict:
    """Copy a checkpoint's parameters (and optimiser state) into existing objects; return extra.

    Parameters take the stored dtype, so a float64 checkpoint gives a float64 model.
    """
    return _fill(model, path, *_read(path), optimizer=optimizer)


def _fill(model, path, meta, arrays, optimizer=None) -> dict:
    if meta["model_class"] != type(model).__name__:
        raise ValueError(
            f"{path}: holds a {meta['model_class']}, cannot load it into a {type(model).__name__}"
        )
    _, state, optim_state, extra = _split(meta, arrays)
    try:
        model.load_state_dict(state)  # checks names and shapes
    except ValueError as e:
        raise ValueError(f"{path}: parameters do not match the model ({e})") from e
    for name, p in model.named_parameters():
        if p.data.dtype != state[name].dtype:
            p.data = np.array(state[name], copy=True)
    if optimizer is not None:
        if optim_state is None:
            raise ValueError(f"{path}: no optimiser state was saved, cannot restore {optimizer}")
        if meta["optimizer_class"] != type(optimizer).__name__:
            raise ValueError(
                f"{path}: holds {meta['optimizer_class']} state, "
                f"cannot load it into {type(optimizer).__name__}"
            )
        try:
            optimizer.load_state_dict(optim_state)
        except ValueError as e:
            raise ValueError(f"{path}: optimiser state does not match ({e})") from e
    return extra


def _read(path) -> tuple[dict, dict[str, np.ndarray]]:
    """Load every array eagerly and validate the header; any damage becomes a ValueError."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise ValueError(f"{path}: not a readable checkpoint (truncated or corrupted?): {e}") from e
    if _META not in arrays:
        raise ValueError(f"{path}: no {_META!r} entry; not a minialign checkpoint")
    try:
        meta = json.loads(str(arrays.pop(_META)))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: the {_META!r} header is not valid JSON ({e})") from e
    required = {"format", "model_class", "config", "optimizer_class", "extra"}
    if not isinstance(meta, dict) or not required <= meta.keys():
        raise ValueError(f"{path}: header lacks keys {sorted(required - set(meta or {}))}")
    if meta["format"] != FORMAT_VERSION:
        raise ValueError(
            f"{path}: checkpoint format {meta['format']}, this minialign reads {FORMAT_VERSION}"
        )
    unknown = [k for k in arrays if not k.startswith((_PARAM, _OPTIM))]
    if unknown:
        raise ValueError(f"{path}: unexpected entries {sorted(unknown)}")
    return meta, arrays
