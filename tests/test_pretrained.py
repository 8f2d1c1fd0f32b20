"""The shipped reference models load, are good at their tasks, and rebuild bit for bit."""

import numpy as np
import pytest

from minialign import pretrained
from minialign.train import evaluate_loss, unigram_entropy


@pytest.mark.parametrize("name", ["sentiment", "arithmetic"])
def test_shipped_reference_rebuilds_bit_for_bit(name):
    shipped = pretrained.load_reference(name)
    rebuilt = pretrained.pretrain(name, progress=False)
    for (n, p), (m, q) in zip(shipped.named_parameters(), rebuilt.named_parameters()):
        assert n == m
        assert p.dtype == q.dtype == np.float32
        if not np.array_equal(p.data, q.data):
            pytest.fail(
                f"{name}: parameter {n} differs from the shipped one (max |diff| "
                f"{np.abs(p.data - q.data).max():.3g}). If the engine's arithmetic changed on "
                f"purpose, rebuild it with `minialign pretrain {name} --replace-shipped`, update SHIPPED_FINGERPRINTS and commit both."
            )


@pytest.mark.parametrize("name", ["sentiment", "arithmetic"])
def test_reference_has_learned_its_corpus(name):
    task = pretrained.make_task(name)
    held_out = task.corpus(300, np.random.default_rng(123))
    model = pretrained.load_reference(name)
    loss = evaluate_loss(model, held_out.ids, held_out.mask)
    assert loss < 0.6 * unigram_entropy(held_out.ids, held_out.mask)
    assert not model.training


def test_unknown_task_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown task 'chess'"):
        pretrained.make_task("chess")
    with pytest.raises(ValueError, match="unknown task"):
        pretrained.load_reference("chess")


def test_a_changed_shipped_model_is_refused_naming_the_command_that_restores_it(
    tmp_path, monkeypatch
):
    from minialign import checkpoint

    original = pretrained.reference_path("sentiment")
    model = checkpoint.load(original)
    first = model.parameters()[0]
    first.data.flat[0] += 1e-3  # one weight, slightly
    changed = checkpoint.save(model, tmp_path / "sentiment_reference.npz")
    monkeypatch.setattr(pretrained, "reference_path", lambda name: changed)
    with pytest.raises(
        ValueError, match=r"has been changed.*minialign pretrain sentiment --replace-shipped"
    ):
        pretrained.load_reference("sentiment")
    changed.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="cannot be read"):
        pretrained.load_reference("sentiment")
    changed.unlink()
    with pytest.raises(FileNotFoundError, match="is missing.*--replace-shipped"):
        pretrained.load_reference("sentiment")


def test_fingerprint_is_of_the_contents_not_the_file(tmp_path):
    """Saving the same model twice gives different zip bytes (timestamps) but one fingerprint."""
    from minialign import checkpoint

    model = pretrained.load_reference("sentiment")
    a = checkpoint.save(model, tmp_path / "a.npz")
    b = checkpoint.save(model, tmp_path / "b.npz")
    assert (
        pretrained.fingerprint(a)
        == pretrained.fingerprint(b)
        == pretrained.SHIPPED_FINGERPRINTS["sentiment"]
    )
    report = pretrained.save_pretrained("sentiment", model, tmp_path / "c.npz")
    assert "bit for bit the shipped model" in report
    with pytest.raises(ValueError, match="not both"):
        pretrained.save_pretrained("sentiment", model, tmp_path / "d.npz", replace_shipped=True)
