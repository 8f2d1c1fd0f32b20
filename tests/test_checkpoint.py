"""Checkpoints: bitwise round trips, atomic writes, clear errors on damaged files, no pickle."""

import json
import zipfile

import numpy as np
import pytest

from minialign import checkpoint
from minialign.nn import GPTConfig, Module, Parameter, TinyGPT
from minialign.optim import SGD, AdamW


class Bigram(Module):
    """A registered non-GPT model: logits of the next token given the current one."""

    def __init__(self, vocab_size, rng=0):
        self.config = {"vocab_size": vocab_size}
        self.table = Parameter(np.random.default_rng(rng).normal(size=(vocab_size, vocab_size)))

    def forward(self, idx):
        return self.table[np.asarray(idx)]


checkpoint.register_model("Bigram", lambda cfg: Bigram(**cfg))

CONFIG = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)


def trained_gpt(rng, steps=2):
    """A TinyGPT and AdamW after a few updates, so the optimiser has non-trivial state."""
    import minialign.functional as F

    model = TinyGPT(CONFIG, rng=rng)
    opt = AdamW(model.parameters(), lr=1e-2)
    idx = rng.integers(0, CONFIG.vocab_size, size=(4, 8))
    for _ in range(steps):
        model.zero_grad()
        F.cross_entropy(model(idx[:, :-1]), idx[:, 1:]).backward()
        opt.step()
    return model, opt


def assert_same_params(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].dtype == sb[k].dtype, k
        assert np.array_equal(sa[k], sb[k]), k


# ---------------------------------------------------------------------------- round trips


def test_tinygpt_round_trip_is_bitwise(tmp_path, rng):
    model, opt = trained_gpt(rng)
    path = checkpoint.save(model, tmp_path / "gpt.npz", optimizer=opt, extra={"step": 2})
    loaded = checkpoint.load(path)
    assert isinstance(loaded, TinyGPT) and loaded.config == model.config
    assert_same_params(model, loaded)
    idx = rng.integers(0, 11, size=(2, 8))
    assert np.array_equal(model(idx).data, loaded(idx).data)
    meta = checkpoint.read_meta(path)
    assert meta["format"] == checkpoint.FORMAT_VERSION
    assert (meta["model_class"], meta["optimizer_class"]) == ("TinyGPT", "AdamW")


def test_file_loads_without_pickle(tmp_path, rng):
    model, opt = trained_gpt(rng, steps=1)
    path = checkpoint.save(model, tmp_path / "gpt.npz", optimizer=opt)
    with np.load(path, allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)
        meta = json.loads(str(npz["__meta__"]))
    assert meta["config"] == CONFIG.to_dict()


def test_dtype_is_kept(tmp_path):
    model = Bigram(5).to_dtype(np.float64)
    loaded = checkpoint.load(checkpoint.save(model, tmp_path / "b.npz"))
    assert loaded.table.dtype == np.float64
    assert_same_params(model, loaded)
    model32 = Bigram(5)
    checkpoint.load_into(model32, tmp_path / "b.npz")
    assert model32.table.dtype == np.float64  # the file's dtype wins


def test_load_state_and_optimizer_resume_is_bitwise(tmp_path, rng):
    """Save mid-training, restore into fresh objects, continue: same result as never stopping."""
    import minialign.functional as F

    idx = rng.integers(0, CONFIG.vocab_size, size=(3, 4, 8))

    def train(model, opt, batches):
        for b in batches:
            model.zero_grad()
            F.cross_entropy(model(b[:, :-1]), b[:, 1:]).backward()
            opt.step()

    straight = TinyGPT(CONFIG, rng=1)
    opt = AdamW(straight.parameters(), lr=1e-2)
    train(straight, opt, idx)

    first = TinyGPT(CONFIG, rng=1)
    opt1 = AdamW(first.parameters(), lr=1e-2)
    train(first, opt1, idx[:2])
    checkpoint.save(first, tmp_path / "mid.npz", optimizer=opt1, extra={"step": 2})
    config, state, optim_state, extra = checkpoint.load_state(tmp_path / "mid.npz")
    assert config == CONFIG.to_dict() and extra == {"step": 2}
    assert set(state) == set(first.state_dict()) and optim_state["param0.step"] == 2

    resumed = TinyGPT(CONFIG, rng=99)  # different init: everything must come from the file
    opt2 = AdamW(resumed.parameters(), lr=1e-2)
    assert checkpoint.load_into(resumed, tmp_path / "mid.npz", optimizer=opt2) == {"step": 2}
    train(resumed, opt2, idx[2:])
    assert_same_params(straight, resumed)


def test_overwrite_replaces_old_checkpoint(tmp_path):
    path = tmp_path / "b.npz"
    checkpoint.save(Bigram(4, rng=0), path)
    checkpoint.save(Bigram(4, rng=1), path)
    assert_same_params(checkpoint.load(path), Bigram(4, rng=1))
    assert [p.name for p in tmp_path.iterdir()] == ["b.npz"]


# ---------------------------------------------------------------------------- atomic writes


def test_failed_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "b.npz"
    checkpoint.save(Bigram(4, rng=0), path)
    before = path.read_bytes()

    def half_write(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")  # start writing, then crash
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", half_write)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(Bigram(4, rng=1), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["b.npz"]


def test_interrupt_mid_write_also_cleans_up(tmp_path, monkeypatch):
    def interrupted(f, **arrays):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(Bigram(4), tmp_path / "b.npz")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- damaged files


def test_truncated_file_is_a_clear_error(tmp_path, rng):
    path = checkpoint.save(trained_gpt(rng, steps=1)[0], tmp_path / "gpt.npz")
    data = path.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 5):
        (tmp_path / "cut.npz").write_bytes(data[:cut])
        with pytest.raises(ValueError, match=r"cut\.npz.*(truncated|corrupted)"):
            checkpoint.load(tmp_path / "cut.npz")


def _rewrite(path, out, drop=(), replace=None):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files if k not in drop}
    arrays.update(replace or {})
    np.savez(out, **arrays)
    return out


def test_wrong_keys_are_named(tmp_path):
    path = checkpoint.save(Bigram(4), tmp_path / "b.npz")
    bad = _rewrite(path, tmp_path / "nometa.npz", drop=("__meta__",))
    with pytest.raises(ValueError, match=r"nometa\.npz.*not a minialign checkpoint"):
        checkpoint.load(bad)
    bad = _rewrite(path, tmp_path / "noparam.npz", drop=("param/table",))
    with pytest.raises(ValueError, match=r"noparam\.npz.*missing keys \['table'\]"):
        checkpoint.load(bad)
    bad = _rewrite(path, tmp_path / "extra.npz", replace={"junk": np.zeros(2)})
    with pytest.raises(ValueError, match=r"extra\.npz.*unexpected entries \['junk'\]"):
        checkpoint.load(bad)


def test_shapes_that_do_not_match_the_config(tmp_path):
    path = checkpoint.save(Bigram(4), tmp_path / "b.npz")
    bad = _rewrite(path, tmp_path / "shape.npz", replace={"param/table": np.zeros((5, 5))})
    with pytest.raises(ValueError, match=r"shape\.npz.*table has shape \(5, 5\)"):
        checkpoint.load(bad)


def test_bad_header(tmp_path):
    path = checkpoint.save(Bigram(4), tmp_path / "b.npz")
    meta = checkpoint.read_meta(path)
    future = _rewrite(
        path, tmp_path / "v9.npz", replace={"__meta__": np.array(json.dumps({**meta, "format": 9}))}
    )
    with pytest.raises(ValueError, match=r"v9\.npz.*format 9"):
        checkpoint.load(future)
    garbage = _rewrite(path, tmp_path / "g.npz", replace={"__meta__": np.array("{not json")})
    with pytest.raises(ValueError, match=r"g\.npz.*not valid JSON"):
        checkpoint.load(garbage)
    unknown = _rewrite(
        path,
        tmp_path / "u.npz",
        replace={"__meta__": np.array(json.dumps({**meta, "model_class": "Mystery"}))},
    )
    with pytest.raises(ValueError, match=r"u\.npz.*'Mystery' is not registered"):
        checkpoint.load(unknown)


def test_pickled_object_arrays_are_refused(tmp_path):
    path = checkpoint.save(Bigram(4), tmp_path / "b.npz")
    obj = np.empty(1, dtype=object)
    obj[0] = {"evil": 1}
    bad = _rewrite(path, tmp_path / "obj.npz", replace={"param/table": obj})
    with pytest.raises(ValueError, match=r"obj\.npz"):
        checkpoint.load(bad)


def test_not_a_zip_at_all(tmp_path):
    (tmp_path / "x.npz").write_bytes(b"hello")
    with pytest.raises(ValueError, match=r"x\.npz"):
        checkpoint.load(tmp_path / "x.npz")
    assert not zipfile.is_zipfile(tmp_path / "x.npz")


def test_mismatched_targets(tmp_path, rng):
    model, opt = trained_gpt(rng, steps=1)
    path = checkpoint.save(model, tmp_path / "gpt.npz", optimizer=opt)
    with pytest.raises(ValueError, match="holds a TinyGPT, cannot load it into a Bigram"):
        checkpoint.load_into(Bigram(4), path)
    with pytest.raises(ValueError, match="holds AdamW state, cannot load it into SGD"):
        checkpoint.load_into(model, path, optimizer=SGD(model.parameters(), lr=0.1))
    no_opt = checkpoint.save(model, tmp_path / "plain.npz")
    with pytest.raises(ValueError, match="no optimiser state"):
        checkpoint.load_into(model, no_opt, optimizer=opt)
    with pytest.raises(ValueError, match="JSON"):
        checkpoint.save(model, tmp_path / "e.npz", extra={"array": np.zeros(2)})


def test_atomic_writes_stay_readable_under_any_umask(tmp_path):
    """Pyodide's umask is 0o777: a file written there must still be readable by its owner."""
    import os

    previous = os.umask(0o777)
    try:
        path = checkpoint.write_text_atomic(tmp_path / "x.json", "{}\n")
    finally:
        os.umask(previous)
    assert path.read_text() == "{}\n" and path.stat().st_mode & 0o600 == 0o600
