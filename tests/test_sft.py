"""Supervised training: it learns a structured corpus, is bitwise repeatable and resumable."""

import json

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minialign.functional as F
from minialign.nn import GPTConfig, Module, Parameter, TinyGPT
from minialign.plots import plot_history
from minialign.train import History, SFTConfig, evaluate_loss, train_sft, unigram_entropy

V, T = 12, 16
CONFIG = GPTConfig(vocab_size=V, block_size=T, n_layer=2, n_head=2, n_embd=32)


def motif_corpus(n, rng, period=3):
    """Rows repeat a random motif of ``period`` tokens (ids 1..V-1), right-padded with 0.

    Only the first ``period`` tokens are unpredictable; every later token copies the one
    ``period`` places back, which a model can learn only by attending to that position.
    """
    motif = rng.integers(1, V, size=(n, period))
    repeated = np.tile(motif, (1, T // period + 1))[:, :T]  # (n, T)
    lengths = rng.integers(T // 2, T + 1, size=n)
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(np.float32)  # (n, T)
    return np.where(mask > 0, repeated, 0).astype(np.int64), mask


class Bigram(Module):
    """Next-token logits from the current token only; ``poison_at`` makes call k misbehave."""

    def __init__(self, vocab_size=V, poison_at=None, poison=None):
        self.config = {"vocab_size": vocab_size}
        self.table = Parameter(np.zeros((vocab_size, vocab_size)))
        self.calls, self.poison_at, self.poison = 0, poison_at, poison

    def forward(self, idx):
        self.calls += 1
        if self.calls == self.poison_at:
            if self.poison == "interrupt":
                raise KeyboardInterrupt
            return F.embedding(self.table, idx) * np.float32(np.nan)
        return F.embedding(self.table, idx)  # (B, T, V)


# ---------------------------------------------------------------------------- learning


def test_tinygpt_loss_falls_well_below_unigram_entropy():
    rng = np.random.default_rng(0)
    tokens, mask = motif_corpus(512, rng)
    held_tokens, held_mask = motif_corpus(128, rng)
    entropy = unigram_entropy(tokens[:, 1:], mask[:, 1:])
    assert entropy > 2.0  # ~log(11): the context-free baseline is poor

    model = TinyGPT(GPTConfig(vocab_size=V, block_size=T, n_layer=1, n_head=2, n_embd=32), rng=0)
    before = evaluate_loss(model, held_tokens, held_mask)
    config = SFTConfig(steps=150, batch_size=16, learning_rate=1e-2, eval_steps=75)
    history = train_sft(model, tokens, mask, config, rng=1, progress=False,
                        eval_tokens=held_tokens, eval_mask=held_mask)  # fmt: skip
    final_train = history["loss"][-20:].mean()
    assert before > 0.9 * entropy  # an untrained model is no better than the unigram baseline
    assert final_train < 0.5 * entropy, (final_train, entropy)
    assert history["eval_loss"][-1] < 0.5 * entropy  # and it generalises to unseen motifs
    assert list(history.steps("eval_loss")) == [74, 149]
    assert history.keys() == ["loss", "lr", "grad_norm", "seconds", "eval_loss"]
    assert not history.interrupted


def _run(seed, steps=12, **kwargs):
    rng = np.random.default_rng(3)
    tokens, mask = motif_corpus(64, rng)
    model = TinyGPT(CONFIG, rng=0)
    config = SFTConfig(steps=steps, batch_size=8)
    history = train_sft(model, tokens, mask, config, rng=seed, progress=False, **kwargs)
    return model, history


def test_same_seed_is_bitwise_identical():
    (m1, h1), (m2, h2) = _run(5), _run(5)
    for key in ("loss", "lr", "grad_norm"):
        assert np.array_equal(h1[key], h2[key]), key
    for (name, a), b in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert a.dtype == np.float32 and np.array_equal(a, b), name
    _, h3 = _run(6)  # and the seed matters: other batches, other losses
    assert not np.array_equal(h1["loss"], h3["loss"])


def test_resume_from_checkpoint_is_bitwise_identical(tmp_path):
    rng = np.random.default_rng(3)
    tokens, mask = motif_corpus(64, rng)
    config = SFTConfig(steps=10, batch_size=8, warmup_steps=3, save_steps=4)
    eval_tokens = motif_corpus(8, np.random.default_rng(1))[0]
    path = tmp_path / "sft.npz"

    def run(model, **options):
        return train_sft(model, tokens, mask, config, rng=5, progress=False,
                         eval_tokens=eval_tokens, checkpoint_path=path, **options)  # fmt: skip

    straight = TinyGPT(CONFIG, rng=0)
    h_straight = run(straight)
    path.unlink()
    stopped = TinyGPT(CONFIG, rng=0)
    forward = stopped.forward
    calls = []

    def interrupt_in_step_5(*args):  # 2 forward passes a step: training, then evaluation
        calls.append(1)
        if len(calls) == 11:  # Ctrl-C in step 5, after the step-4 checkpoint
            raise KeyboardInterrupt
        return forward(*args)

    stopped.forward = interrupt_in_step_5
    assert run(stopped).interrupted
    with np.load(path) as saved:
        assert json.loads(str(saved["__run__"]))["step"] == 4  # resumes mid-run, not from 0
    model = TinyGPT(CONFIG, rng=0)
    h_rest = run(model, resume=True)  # from step 4: the model, AdamW and the generator
    for key in h_straight.keys():
        if key != "seconds":
            assert np.array_equal(h_rest[key], h_straight[key]), key
    for (name, a), b in zip(straight.state_dict().items(), model.state_dict().values()):
        assert np.array_equal(a, b), name


@given(seed=st.integers(0, 2**32 - 1))
def test_padding_content_never_changes_training(seed):
    """Tokens under mask 0 are junk: replacing them must not change a single loss."""
    r = np.random.default_rng(seed)
    tokens, mask = motif_corpus(16, r)
    junk = np.where(mask > 0, tokens, r.integers(0, V, size=tokens.shape))
    runs = []
    for toks in (tokens, junk):
        model = TinyGPT(GPTConfig(vocab_size=V, block_size=T, n_layer=1, n_head=1, n_embd=8), rng=0)
        config = SFTConfig(steps=3, batch_size=4)
        runs.append(train_sft(model, toks, mask, config, rng=seed, progress=False))
    np.testing.assert_allclose(runs[0]["loss"], runs[1]["loss"], rtol=1e-6)


# ---------------------------------------------------------------------------- stopping


def test_nan_loss_names_the_step():
    tokens, mask = motif_corpus(8, np.random.default_rng(0))
    with pytest.raises(FloatingPointError, match="loss is nan at step 3"):
        train_sft(Bigram(poison_at=4), tokens, mask, SFTConfig(steps=10, batch_size=2), rng=0,
                  progress=False)  # fmt: skip


def test_ctrl_c_returns_history_so_far():
    tokens, mask = motif_corpus(8, np.random.default_rng(0))
    model = Bigram(poison_at=6, poison="interrupt")
    history = train_sft(model, tokens, mask, SFTConfig(steps=10, batch_size=2), rng=0,
                        progress=False)  # fmt: skip
    assert history.interrupted and list(history.steps("loss")) == [0, 1, 2, 3, 4]
    assert model.training


def test_progress_bar_and_log_every(capsys):
    tokens, mask = motif_corpus(8, np.random.default_rng(0))
    config = SFTConfig(steps=7, batch_size=2, logging_steps=3)
    history = train_sft(Bigram(), tokens, mask, config, rng=0)
    assert list(history.steps("loss")) == [0, 3, 6]
    assert "sft" in capsys.readouterr().err  # tqdm draws on stderr


@pytest.mark.parametrize(
    "tokens, mask, message",
    [
        (np.zeros((4, 8)), None, "integer array"),
        (np.zeros((4, 1), np.int64), None, "T >= 2"),
        (np.full((4, 8), V), None, r"\[0, 12\)"),
        (np.zeros((4, T + 2), np.int64), None, "block_size=16"),
        (np.zeros((4, 8), np.int64), np.zeros((4, 7)), "mask shape"),
        (np.zeros((2, 8), np.int64), np.array([[1] * 8, [1] + [0] * 7]), r"rows \[1\]"),
    ],
)
def test_bad_tokens_are_rejected(tokens, mask, message):
    with pytest.raises(ValueError, match=message):
        train_sft(TinyGPT(CONFIG, rng=0), tokens, mask, SFTConfig(steps=1), progress=False)


# ---------------------------------------------------------------------------- helpers


@given(n_types=st.integers(1, 20), reps=st.integers(1, 5))
def test_unigram_entropy_closed_forms(n_types, reps):
    uniform = np.repeat(np.arange(n_types), reps)[None, :]
    assert unigram_entropy(uniform) == pytest.approx(np.log(n_types), abs=1e-12)
    padded = np.concatenate([uniform, np.zeros((1, 7), np.int64) + 99], axis=1)
    mask = np.concatenate([np.ones_like(uniform), np.zeros((1, 7), np.int64)], axis=1)
    assert unigram_entropy(padded, mask) == pytest.approx(np.log(n_types), abs=1e-12)


def test_history_round_trip_and_plot():
    _, h = _run(5, steps=6, eval_tokens=motif_corpus(8, np.random.default_rng(1))[0])
    again = History.from_dict(h.as_dict())
    assert again.as_dict() == h.as_dict() and len(again) == 6
    ax = plot_history(h, ["loss", "eval_loss"], smooth=2)
    assert ax.get_xlabel() == "step" and "loss" in ax.get_title()
    assert [
        line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")
    ] == [
        "loss",
        "eval_loss",
    ]
    ax = plot_history(h.as_dict(), "lr", title="schedule")
    assert ax.get_title() == "schedule" and ax.get_ylabel() == "lr"
    plot_history({"loss": [3.0, 2.0, 1.0]}, "loss")
    with pytest.raises(ValueError, match="no metric 'reward'"):
        plot_history({"loss": [1.0]}, "reward")
    with pytest.raises(KeyError, match="no metric 'reward'"):
        h["reward"]
