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
                f"purpose, rebuild it with `minialign pretrain {name}` and commit it."
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
