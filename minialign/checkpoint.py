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

Loading trusts nothing in the file (`minialign.archive.read_npz` reads it): the header
must be a JSON object with the five keys of the right types, every parameter a finite
float32/float64 array, every optimiser entry a finite number, and a TinyGPT-family
config must agree with the stored shapes *before* the model is built (a header claiming
``vocab_size=10**12`` fails without allocating). Errors are ValueErrors naming the file
and the entry; `restore_module`, `restore_optimizer` and `restore_rng` give the same
checks and messages to other files of named arrays (a training run's state).

    save(model, "ckpt.npz", optimizer=opt, extra={"step": 100})
    model = load("ckpt.npz")                       # builds a fresh TinyGPT from the config
    extra = load_into(model, "ckpt.npz", optimizer=opt)   # resume in place
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .archive import read_json_entry, read_npz
from .nn.module import Module

__all__ = [
    "save", "load", "load_into", "load_state", "read_meta", "register_model",
    "write_npz_atomic", "write_text_atomic", "read_npz", "read_json_entry",
    "restore_module", "restore_optimizer", "restore_rng",
]  # fmt: skip

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
        # mkstemp makes 0600; give the file the umask's permissions, but never fewer than
        # the owner's read and write (Pyodide's umask is 0o777, which would leave mode 0)
        os.chmod(tmp, (0o666 & ~umask) | 0o600)
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
    if name in ("TinyGPT", "RewardModel", "ValueModel"):
        state = {k[len(_PARAM) :]: v for k, v in arrays.items() if k.startswith(_PARAM)}
        _check_gpt_shapes(path, meta["config"], state, "" if name == "TinyGPT" else "trunk.")
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


_HEADER = {"format": int, "model_class": str, "config": dict, "optimizer_class": (str, None),
           "extra": dict}  # fmt: skip


def _read(path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and check the header and every array; any damage becomes a ValueError."""
    arrays = read_npz(path)
    meta = read_json_entry(path, arrays, _META, _HEADER, "a minialign checkpoint")
    del arrays[_META]
    if meta["format"] != FORMAT_VERSION:
        raise ValueError(
            f"{path}: checkpoint format {meta['format']}, this minialign reads {FORMAT_VERSION}"
        )
    unknown = [k for k in arrays if not k.startswith((_PARAM, _OPTIM))]
    if unknown:
        raise ValueError(f"{path}: unexpected entries {sorted(unknown)}")
    for key, value in arrays.items():
        _check_array(path, key, value, floats_only=key.startswith(_PARAM))
    return meta, arrays


def _check_array(path, key: str, value: np.ndarray, floats_only: bool) -> None:
    """Parameters: finite float32/float64; optimiser state: finite real numbers."""
    allowed = (np.float32, np.float64) if floats_only else None
    if (allowed and value.dtype not in allowed) or value.dtype.kind not in "biuf":
        raise ValueError(
            f"{path}: entry {key!r} has dtype {value.dtype}, expected "
            f"{'float32 or float64' if floats_only else 'real numbers'}"
        )
    if value.dtype.kind == "f" and not np.isfinite(value).all():
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(value))[0])
        raise ValueError(f"{path}: entry {key!r} holds {value[index]} at index {index}")


def _check_gpt_shapes(path, config: dict, state: dict[str, np.ndarray], prefix: str) -> None:
    """A GPTConfig must match the stored embeddings and layers, checked before building."""
    from .nn.gpt import GPTConfig

    try:
        cfg = GPTConfig.from_dict(config)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: entry {_META!r}: bad config ({e})") from None
    expected = {
        "wte.weight": (cfg.vocab_size, cfg.n_embd),
        "wpe.weight": (cfg.block_size, cfg.n_embd),
    }
    for name, shape in expected.items():
        stored = state.get(prefix + name)
        if stored is None or stored.shape != shape:
            raise ValueError(
                f"{path}: the config {config} implies {_PARAM}{prefix}{name} of shape {shape}, "
                f"the file holds {'none' if stored is None else stored.shape}"
            )
    layers = {k[len(prefix) :].split(".")[1] for k in state if k.startswith(prefix + "blocks.")}
    indices = sorted(int(i) for i in layers if i.isdigit())  # never range(n_layer): 10**9?
    if len(layers) != cfg.n_layer or indices != list(range(len(layers))):
        raise ValueError(
            f"{path}: the config has n_layer={cfg.n_layer}, the file holds {len(layers)} blocks"
        )


# ---------------------------------------------------------------------------- other files


def restore_module(path, module: Module, arrays: dict[str, np.ndarray], prefix: str) -> None:
    """``module.load_state_dict`` of the entries under ``prefix`` (e.g. ``"model/policy/"``),
    with its checks (names, shapes, real floats, finite); errors name ``path`` and ``prefix``."""
    state = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
    try:
        module.load_state_dict(state)
    except ValueError as e:
        raise ValueError(f"{path}: entries {prefix}*: {e}") from None


def restore_optimizer(path, optimizer, arrays: dict[str, np.ndarray], prefix: str) -> None:
    """``optimizer.load_state_dict`` of the entries under ``prefix``, errors naming the file."""
    state = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
    try:
        optimizer.load_state_dict(state)
    except ValueError as e:
        raise ValueError(f"{path}: entries {prefix}*: {e}") from None


def restore_rng(path, rng: np.random.Generator, state, entry: str) -> None:
    """Set ``rng``'s bit-generator state from a saved ``bit_generator.state`` dict."""
    name = type(rng.bit_generator).__name__
    if not isinstance(state, dict) or state.get("bit_generator") != name:
        raise ValueError(
            f"{path}: {entry} must be the state of a {name} generator, got {state!r:.80}"
        )
    try:
        rng.bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as e:
        raise ValueError(f"{path}: {entry} is not a valid {name} state ({e!r})") from None
