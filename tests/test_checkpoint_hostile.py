"""Hostile and damaged files: every one is a ValueError naming the file (and the entry at
fault), before anything is built, allocated, unpickled or copied into a model.

Covers checkpoints (`checkpoint.load`, `load_into`, `load_state`) and the building blocks a
training run's state file is read with (`read_npz`, `read_json_entry`, `restore_module`,
`restore_optimizer`, `restore_rng`), on files written by `train.run.save_run_state`.
"""

import io
import json
import pathlib
import pickle
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minialign import checkpoint
from minialign.nn import GPTConfig, TinyGPT
from minialign.optim import SGD, AdamW
from minialign.train.history import History
from minialign.train.run import load_run_state, save_run_state

CONFIG = GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=4)


def tiny_gpt_file(path, optimizer=True):
    """A TinyGPT (and AdamW after one step) saved to ``path``; returns (model, opt)."""
    model = TinyGPT(CONFIG, rng=0)
    opt = AdamW(model.parameters(), lr=1e-2)
    for p in model.parameters():
        p.grad = np.ones_like(p.data)
    opt.step()
    checkpoint.save(model, path, optimizer=opt if optimizer else None, extra={"step": 1})
    return model, opt


def entries(path) -> dict:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def rewrite(path, out, drop=(), **replace) -> pathlib.Path:
    """A copy of the .npz at ``path`` with entries dropped or replaced."""
    arrays = {k: v for k, v in entries(path).items() if k not in drop}
    arrays.update(replace)
    np.savez(out, **arrays)
    return pathlib.Path(out)


def fails_naming(call, path, *fragments):
    """``call()`` raises a ValueError whose message names the file and every fragment."""
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert pathlib.Path(path).name in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def same_params(a, b) -> bool:
    return all(np.array_equal(x.data, y.data) for x, y in zip(a.parameters(), b.parameters()))


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "gpt.npz"
    model, opt = tiny_gpt_file(path)
    return path, model, opt


# ---------------------------------------------------------------------------- weights

WEIGHT = "param/wte.weight"
BAD_WEIGHTS = {
    "complex": lambda w: w.astype(np.complex64) + 1j,
    "int": lambda w: np.round(w * 10).astype(np.int64),
    "bool": lambda w: w > 0,
    "string": lambda w: np.full(w.shape, "x"),
    "bytes": lambda w: np.full(w.shape, b"xy"),
    "float16": lambda w: w.astype(np.float16),
}


@pytest.mark.parametrize("kind", BAD_WEIGHTS)
def test_weights_of_a_wrong_dtype_are_refused(tmp_path, saved, kind):
    path, model, _ = saved
    w = entries(path)[WEIGHT]
    bad = rewrite(path, tmp_path / f"{kind}.npz", **{WEIGHT: BAD_WEIGHTS[kind](w)})
    for call in (
        lambda: checkpoint.load(bad),
        lambda: checkpoint.load_state(bad),
        lambda: checkpoint.load_into(model, bad),
    ):
        fails_naming(call, bad, "'param/wte.weight'", "dtype", "float32 or float64")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused_and_nothing_is_copied(tmp_path, saved, value):
    path, model, opt = saved
    w = entries(path)[WEIGHT].copy()
    w[2, 1] = value
    bad = rewrite(path, tmp_path / "nan.npz", **{WEIGHT: w})
    target = TinyGPT(CONFIG, rng=7)
    before = TinyGPT(CONFIG, rng=7)
    fails_naming(lambda: checkpoint.load(bad), bad, "'param/wte.weight'", "(2, 1)")
    fails_naming(lambda: checkpoint.load_into(target, bad), bad, "'param/wte.weight'")
    assert same_params(target, before)


OPTIMIZER_ATTACKS = {
    "nan moment": ("optim/param0.exp_avg", lambda v: np.full_like(v, np.nan), "exp_avg' holds nan"),
    "negative second moment": (
        "optim/param0.exp_avg_sq",
        lambda v: -np.ones_like(v),
        "finite and >= 0",
    ),
    "int moment": ("optim/param0.exp_avg", lambda v: v.astype(np.int32), "not a float"),
    "nan lr": ("optim/lr", lambda v: np.array(np.nan), "'optim/lr' holds nan"),
    "string lr": ("optim/lr", lambda v: np.array("0.1"), "'optim/lr' has dtype <U3"),
    "vector lr": ("optim/lr", lambda v: np.zeros(3), "lr must be a finite 0-d number"),
    "negative lr": ("optim/lr", lambda v: np.array(-1.0), "lr must be >= 0"),
    "beta1 = 1.5": ("optim/beta1", lambda v: np.array(1.5), "beta1 must be in [0, 1)"),
    "step 0": ("optim/param0.step", lambda v: np.array(0), "param0.step must be a 0-d integer"),
    "step -3": ("optim/param0.step", lambda v: np.array(-3), "param0.step must be a 0-d int"),
    "float step": ("optim/param0.step", lambda v: np.array(2.0), "param0.step must be a 0-d"),
    "vector step": ("optim/param0.step", lambda v: np.ones(2, int), "param0.step must be a 0"),
}


@pytest.mark.parametrize("attack", OPTIMIZER_ATTACKS)
def test_bad_optimizer_state_is_refused_and_the_optimizer_kept(tmp_path, saved, attack):
    path, model, _ = saved
    key, corrupt, fragment = OPTIMIZER_ATTACKS[attack]
    bad = rewrite(path, tmp_path / "opt.npz", **{key: corrupt(entries(path)[key])})
    fresh = TinyGPT(CONFIG, rng=0)
    opt = AdamW(fresh.parameters(), lr=0.5)
    message = fails_naming(lambda: checkpoint.load_into(fresh, bad, optimizer=opt), bad)
    assert fragment in message, message
    assert opt.lr == 0.5 and opt.state == {}


def test_optimizer_load_state_dict_itself_checks_values():
    model = TinyGPT(CONFIG, rng=0)
    opt = AdamW(model.parameters(), lr=1e-2)
    for p in model.parameters():
        p.grad = np.ones_like(p.data)
    opt.step()
    state = opt.state_dict()
    for key, value, fragment in [
        ("lr", np.array(np.nan), "lr must be a finite 0-d number"),
        ("eps", np.array(-1.0), "eps must be >= 0"),
        (
            "param0.exp_avg",
            np.full_like(state["param0.exp_avg"], np.nan),
            "param0.exp_avg holds nan",
        ),
        ("param1.exp_avg_sq", -state["param1.exp_avg_sq"] - 1, "param1.exp_avg_sq holds -"),
    ]:
        with pytest.raises(ValueError, match=f"AdamW.load_state_dict: {fragment}"):
            opt.load_state_dict({**state, key: value})


def test_sgd_nesterov_must_be_a_boolean(tmp_path):
    model = TinyGPT(CONFIG, rng=0)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    path = checkpoint.save(model, tmp_path / "sgd.npz", optimizer=opt)
    bad = rewrite(path, tmp_path / "n.npz", **{"optim/nesterov": np.array(0.5)})
    fails_naming(lambda: checkpoint.load_into(model, bad, optimizer=opt), bad, "nesterov")


def test_load_state_dict_itself_checks_dtype_shape_and_values():
    model = TinyGPT(CONFIG, rng=0)
    state = model.state_dict()
    for value, fragment in [
        (state["wte.weight"].astype(np.int64), "wte.weight has dtype int64"),
        (state["wte.weight"].astype(np.complex128), "wte.weight has dtype complex128"),
        (np.full_like(state["wte.weight"], np.inf), "wte.weight holds inf at index (0, 0)"),
        (state["wte.weight"][:2], "wte.weight has shape (2, 4)"),
    ]:
        with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
            model.load_state_dict({**state, "wte.weight": value})


# ---------------------------------------------------------------------------- headers


def with_meta(path, out, text):
    return rewrite(path, out, __meta__=np.array(text))


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("5", "must be a JSON object, got an integer 5"),
        ("true", "must be a JSON object, got true/false true"),
        ("[[1]]", "must be a JSON object, got a JSON list [[1]]"),
        ("null", "must be a JSON object, got null"),
        ('"TinyGPT"', "must be a JSON object, got a string"),
        ("{}", "lacks the keys ['config', 'extra', 'format', 'model_class', 'optimizer_class']"),
        ("{not json", "not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "not valid JSON"),
        ("1" * 5000, "not valid JSON"),
        ("", "not valid JSON"),
    ],
)
def test_malformed_headers_name_the_file_and_the_entry(tmp_path, saved, text, fragment):
    path = saved[0]
    bad = with_meta(path, tmp_path / "h.npz", text)
    for call in (lambda: checkpoint.load(bad), lambda: checkpoint.read_meta(bad)):
        fails_naming(call, bad, "'__meta__'", fragment)


@pytest.mark.parametrize(
    "key, value, fragment",
    [
        ("format", "1", "key 'format' must be an integer"),
        ("format", True, "key 'format' must be an integer"),
        ("format", 9, "checkpoint format 9"),
        ("model_class", None, "key 'model_class' must be a string"),
        ("config", [1], "key 'config' must be a JSON object"),
        ("optimizer_class", 3, "key 'optimizer_class' must be a string or null"),
        ("extra", 5, "key 'extra' must be a JSON object"),
    ],
)
def test_header_keys_of_the_wrong_type(tmp_path, saved, key, value, fragment):
    path = saved[0]
    meta = {**checkpoint.read_meta(path), key: value}
    bad = with_meta(path, tmp_path / "k.npz", json.dumps(meta))
    fails_naming(lambda: checkpoint.load(bad), bad, fragment)


@pytest.mark.parametrize("missing", ["format", "model_class", "config", "extra"])
def test_a_missing_header_key_is_named(tmp_path, saved, missing):
    path = saved[0]
    meta = {k: v for k, v in checkpoint.read_meta(path).items() if k != missing}
    bad = with_meta(path, tmp_path / "m.npz", json.dumps(meta))
    fails_naming(lambda: checkpoint.load(bad), bad, "lacks the keys", repr(missing))


def test_the_header_must_be_a_0d_text_entry(tmp_path, saved):
    path = saved[0]
    for value in (np.zeros(3), np.array(["{}", "{}"]), np.array(b"{}")):
        bad = rewrite(path, tmp_path / "t.npz", __meta__=value)
        fails_naming(lambda bad=bad: checkpoint.load(bad), bad, "'__meta__'", "0-d text array")


@pytest.mark.parametrize(
    "change",
    [
        {"vocab_size": 10**12},
        {"block_size": 10**12},
        {"n_layer": 10**9},
        {"n_embd": 2**40, "n_head": 1},
        {"vocab_size": -1},
        {"vocab_size": 2.5},
        {"vocab_size": "5"},
        {"vocab_size": True},
        {"surprise": 1},
    ],
)
def test_a_config_that_disagrees_with_the_arrays_fails_before_allocating(tmp_path, saved, change):
    path = saved[0]
    meta = checkpoint.read_meta(path)
    meta["config"] = {**meta["config"], **change}
    bad = with_meta(path, tmp_path / "big.npz", json.dumps(meta))
    tracemalloc.start()
    try:
        fails_naming(lambda: checkpoint.load(bad), bad, "config")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000  # the file is a few kB; nothing model-sized was allocated


def test_critics_are_checked_against_their_trunk(tmp_path):
    from minialign.nn.critics import RewardModel

    path = checkpoint.save(RewardModel(CONFIG, rng=0), tmp_path / "rm.npz")
    meta = checkpoint.read_meta(path)
    meta["config"]["vocab_size"] = 10**12
    bad = with_meta(path, tmp_path / "rm_big.npz", json.dumps(meta))
    fails_naming(lambda: checkpoint.load(bad), bad, "param/trunk.wte.weight")


# ---------------------------------------------------------------------------- whole files


def loaders(path):
    """Every public way to read a checkpoint file."""
    model = TinyGPT(CONFIG, rng=3)
    return [
        lambda: checkpoint.load(path),
        lambda: checkpoint.read_meta(path),
        lambda: checkpoint.load_state(path),
        lambda: checkpoint.load_into(model, path, optimizer=AdamW(model.parameters())),
        lambda: checkpoint.read_npz(path),
    ]


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"", "it is empty"),
        (b"hello world\n", "not an .npz archive"),
        (b"\x93NUMPY\x01\x00", "not an .npz archive"),  # a bare .npy, not an archive
        (b"\x80\x04K\x05.", "not an .npz archive"),  # a pickle
        (b"PK\x03\x04" + b"\x00" * 40, "damaged .npz archive"),
        (b"PK\x05\x06" + b"\x00" * 18, "no '__meta__' entry"),  # an empty zip
    ],
)
def test_files_that_are_not_checkpoints(tmp_path, content, fragment):
    path = tmp_path / "f.npz"
    path.write_bytes(content)
    for call in loaders(path)[:4]:
        fails_naming(call, path, fragment)


def test_a_missing_file_stays_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        checkpoint.load(tmp_path / "absent.npz")


def test_truncated_at_every_offset(tmp_path):
    """Cut a valid file anywhere (every byte near both ends, where the zip headers are):
    a ValueError naming the file, never anything else."""
    path = tmp_path / "whole.npz"
    tiny_gpt_file(path, optimizer=False)
    data = path.read_bytes()
    cut = tmp_path / "cut.npz"
    ends = set(range(0, 100)) | set(range(len(data) - 300, len(data)))
    for n in sorted(ends | set(range(100, len(data), 23))):
        cut.write_bytes(data[:n])
        fails_naming(lambda: checkpoint.load(cut), cut)


@given(st.data())
def test_corrupted_bytes_load_or_fail_cleanly(tmp_path_factory, data):
    """Random bytes overwritten: either a valid model comes back or a ValueError naming the
    file; never BadZipFile, EOFError, KeyError, MemoryError or a NaN model."""
    folder = tmp_path_factory.mktemp("flip")
    path = folder / "flip.npz"
    tiny_gpt_file(path)
    raw = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    path.write_bytes(bytes(raw))
    try:
        model = checkpoint.load(path)
    except ValueError as e:
        assert "flip.npz" in str(e), e
        return
    assert all(np.isfinite(p.data).all() for p in model.parameters())


# ---------------------------------------------------------------------------- hand-made archives


def npy_bytes(header: dict | str, payload: bytes = b"", version=(1, 0)) -> bytes:
    text = header if isinstance(header, str) else repr(header)
    text = text + " " * ((64 - (len(text) + 11) % 64) % 64) + "\n"
    length = struct.pack("<H" if version == (1, 0) else "<I", len(text))
    return b"\x93NUMPY" + bytes(version) + length + text.encode("latin1") + payload


def archive(path, members: dict[str, bytes]) -> pathlib.Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, content in members.items():
            z.writestr(name, content)
    return pathlib.Path(path)


GIANT = [
    ({"descr": "<f4", "fortran_order": False, "shape": (10**12,)}, "shape (1000000000000,)"),
    ({"descr": "<f8", "fortran_order": False, "shape": (2**31, 2**31)}, "bytes) but it holds"),
    ({"descr": "<f4", "fortran_order": False, "shape": (-2, -2)}, "impossible shape (-2, -2)"),
    ({"descr": "|V8", "fortran_order": False, "shape": (1,)}, "unsupported dtype"),
    ({"descr": [("a", "<f4")], "fortran_order": False, "shape": (1,)}, "unsupported dtype"),
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (__import__('os'),)}", "unreadable"),
    ("not a dict at all", "unreadable .npy header"),
]


@pytest.mark.parametrize("header, fragment", GIANT, ids=[f for _, f in GIANT])
def test_giant_or_malformed_npy_headers_fail_before_allocating(tmp_path, header, fragment):
    path = archive(tmp_path / "g.npz", {"param/x.npy": npy_bytes(header, b"\x00" * 16)})
    tracemalloc.start()
    try:
        fails_naming(lambda: checkpoint.read_npz(path), path, "'param/x'", fragment)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000


def test_unknown_npy_version_and_junk_members(tmp_path):
    header = {"descr": "<f4", "fortran_order": False, "shape": (1,)}
    path = archive(tmp_path / "v.npz", {"x.npy": npy_bytes(header, b"\0" * 4, version=(9, 9))})
    fails_naming(lambda: checkpoint.read_npz(path), path, "'x'", "unreadable .npy header")
    path = archive(tmp_path / "j.npz", {"readme.txt": b"hello"})
    fails_naming(lambda: checkpoint.read_npz(path), path, "'readme.txt' is not an .npy array")
    path = archive(tmp_path / "d.npz", {"x.npy": npy_bytes(header, b"\0" * 4)})
    with zipfile.ZipFile(path, "a") as z, pytest.warns(UserWarning, match="Duplicate name"):
        z.writestr("x.npy", npy_bytes(header, b"\1" * 4))
    fails_naming(lambda: checkpoint.read_npz(path), path, "'x' appears twice")


def test_a_member_claiming_to_be_larger_than_the_file(tmp_path):
    """Sizes in the zip directory are patched to 2**40: refused before zipfile reads them."""
    header = {"descr": "<f4", "fortran_order": False, "shape": (4,)}
    path = archive(tmp_path / "z.npz", {"x.npy": npy_bytes(header, b"\0" * 16)})
    raw = bytearray(path.read_bytes())
    central = raw.rindex(b"PK\x01\x02")  # the central directory entry: sizes at +20 and +24
    raw[central + 20 : central + 28] = struct.pack("<II", 2**32 - 2, 2**32 - 2)
    path.write_bytes(bytes(raw))
    fails_naming(lambda: checkpoint.read_npz(path), path)


def test_read_npz_equals_np_load_on_what_savez_writes(tmp_path):
    arrays = {
        "a": np.arange(12, dtype=np.float32).reshape(3, 4),
        "b/c": np.asfortranarray(np.random.default_rng(0).normal(size=(3, 5))),
        "s": np.array("text é"),
        "n": np.array(3, dtype=np.int64),
        "e": np.zeros((0, 4)),
        "bool": np.array([True, False]),
    }
    np.savez(tmp_path / "ok.npz", **arrays)
    np.savez_compressed(tmp_path / "okz.npz", **arrays)
    for name in ("ok.npz", "okz.npz"):
        got = checkpoint.read_npz(tmp_path / name)
        assert got.keys() == arrays.keys()
        for k, v in arrays.items():
            assert got[k].dtype == v.dtype and got[k].shape == v.shape
            assert np.array_equal(got[k], v) and got[k].flags.writeable
            assert got[k].flags.f_contiguous == v.flags.f_contiguous


# ---------------------------------------------------------------------------- pickle payloads


class Payload:
    """Unpickling this touches a file: the test checks the file never appears."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def object_npy(marker) -> bytes:
    buffer = io.BytesIO()
    obj = np.empty(1, dtype=object)
    obj[0] = Payload(marker)
    np.save(buffer, obj, allow_pickle=True)
    return buffer.getvalue()


@pytest.mark.parametrize("entry", ["param/wte.weight", "__meta__", "optim/lr", "__run__"])
def test_pickle_payloads_never_run(tmp_path, saved, entry):
    marker = tmp_path / "pwned"
    assert pickle.loads(pickle.dumps(Payload(marker))) is None and marker.exists()  # it is live
    marker.unlink()
    path = saved[0]
    members = {f"{k}.npy": _npy(v) for k, v in entries(path).items()}
    members[f"{entry}.npy"] = object_npy(marker)
    bad = archive(tmp_path / "evil.npz", members)
    for call in loaders(bad):
        message = fails_naming(call, bad, f"'{entry}'", "Python objects")
        assert "allow_pickle" not in message
    assert not marker.exists()


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


# ---------------------------------------------------------------------------- run-state files


def load_run(path, modules, optimizers, rng):
    """A run state read by the loops' own loader (`minialign.train.run.load_run_state`)."""
    saved = {f"model/{k}": m for k, m in modules.items()}
    saved.update({f"optim/{k}": o for k, o in optimizers.items()})
    return load_run_state(path, saved=saved, rng=rng)


@pytest.fixture
def run_file(tmp_path):
    model = TinyGPT(CONFIG, rng=0)
    opt = AdamW(model.parameters(), lr=1e-2)
    for p in model.parameters():
        p.grad = np.ones_like(p.data)
    opt.step()
    history = History()
    history.log(0, loss=1.5)
    path = tmp_path / "run.npz"
    rng = np.random.default_rng(5)
    save_run_state(path, step=3, saved={"model/policy": model, "optim/policy": opt}, rng=rng,
                   history=history)  # fmt: skip
    return path


def fresh_run():
    model = TinyGPT(CONFIG, rng=9)
    return {"policy": model}, {"policy": AdamW(model.parameters())}, np.random.default_rng(0)


def test_a_valid_run_state_round_trips(run_file):
    modules, optimizers, rng = fresh_run()
    step, history = load_run(run_file, modules, optimizers, rng)
    assert (step, list(history["loss"])) == (3, [1.5])
    assert rng.random() == np.random.default_rng(5).random()  # the generator's state too


def run_meta(path):
    return json.loads(str(entries(path)["__run__"]))


@pytest.mark.parametrize(
    "change, fragment",
    [
        (lambda m: 5, "must be a JSON object, got an integer 5"),
        (lambda m: [[1]], "must be a JSON object"),
        (lambda m: {k: v for k, v in m.items() if k != "rng"}, "lacks the keys ['rng']"),
        (lambda m: {**m, "step": "3"}, "key 'step' must be an integer"),
        (lambda m: {**m, "rng": {"bit_generator": "MT19937"}}, "must be the state of a PCG64"),
        (lambda m: {**m, "rng": {**m["rng"], "state": {"state": "x"}}}, "not a valid PCG64"),
        (lambda m: {**m, "rng": {**m["rng"], "state": 7}}, "not a valid PCG64 state"),
        (lambda m: {**m, "history": []}, "key 'history' must be a JSON object"),
    ],
)
def test_run_state_headers(tmp_path, run_file, change, fragment):
    bad = rewrite(
        run_file, tmp_path / "r.npz", __run__=np.array(json.dumps(change(run_meta(run_file))))
    )
    fails_naming(lambda: load_run(bad, *fresh_run()), bad, fragment)


def test_run_state_files_that_are_damaged(tmp_path, run_file):
    bad = tmp_path / "bad.npz"
    for content in (b"", b"step=3\n", run_file.read_bytes()[:200], run_file.read_bytes()[:-30]):
        bad.write_bytes(content)
        fails_naming(lambda: load_run(bad, *fresh_run()), bad)
    nometa = rewrite(run_file, tmp_path / "n.npz", drop=("__run__",))
    fails_naming(lambda: load_run(nometa, *fresh_run()), nometa, "no '__run__' entry")
    text = rewrite(run_file, tmp_path / "t.npz", __run__=np.array("{step: 3"))
    fails_naming(lambda: load_run(text, *fresh_run()), text, "'__run__'", "not valid JSON")


def test_run_state_arrays(tmp_path, run_file):
    arrays = entries(run_file)
    w = arrays["model/policy/wte.weight"].copy()
    w[0, 0] = np.nan
    bad = rewrite(run_file, tmp_path / "w.npz", **{"model/policy/wte.weight": w})
    fails_naming(lambda: load_run(bad, *fresh_run()), bad, "model/policy/", "wte.weight holds nan")
    moment = np.full_like(arrays["optim/policy/param0.exp_avg"], np.inf)
    bad = rewrite(run_file, tmp_path / "o.npz", **{"optim/policy/param0.exp_avg": moment})
    fails_naming(lambda: load_run(bad, *fresh_run()), bad, "optim/policy/", "param0.exp_avg")
    bad = rewrite(run_file, tmp_path / "m.npz", drop=("model/policy/wpe.weight",))
    fails_naming(lambda: load_run(bad, *fresh_run()), bad, "missing keys ['wpe.weight']")
