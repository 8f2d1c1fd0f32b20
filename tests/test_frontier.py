"""``minialign frontier``: the smoke run end to end, the envelope and table math, the pairs."""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minialign as ma
from minialign.cli import main
from minialign.frontier import (
    METHODS,
    FrontierConfig,
    envelope,
    frontier_table,
    seed_envelopes,
    table_markdown,
)
from minialign.frontier_curves import plot_frontier_curves
from minialign.frontier_methods import make_pairs, tilted, unlikelihood_loss
from minialign.gradcheck import gradcheck
from minialign.nn import generate
from minialign.pretrained import load_reference, make_task
from minialign.train import Sampling

finite = st.floats(-5, 5, allow_nan=False, width=64)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """``minialign frontier --quick`` end to end, with the quick config swapped for the tiny one."""
    out = tmp_path_factory.mktemp("runs") / "frontier"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(FrontierConfig, "quick", classmethod(lambda cls: cls.smoke()))
        argv = ["frontier", "--quick", "--seeds", "2", "--out", str(out), "--no-progress"]
        assert main(argv) == 0
    return out


def test_smoke_run_writes_every_file_and_every_method_traces_a_curve(smoke_run):
    assert json.loads((smoke_run / "run.json").read_text())["status"] == "complete"
    for name in ("summary.json", "metrics.jsonl", "config.json", "frontier.png"):
        assert (smoke_run / name).stat().st_size > 0, name
    points = json.loads((smoke_run / "summary.json").read_text())
    assert {p["method"] for p in points} == {*METHODS, "optimum"}
    for method in METHODS:
        for seed in (0, 1):
            mine = [p for p in points if p["method"] == method and p["seed"] == seed]
            assert len(mine) > 1, (method, seed)
            assert all(np.isfinite([p["kl"], p["true_reward"]]).all() for p in mine)
    for p in points:
        assert (p.get("pairs") == "on-policy") == (p["method"] not in ("ppo_gt", "optimum")), p
    dpo_steps = sorted({p["step"] for p in points if p["method"] == "dpo"})
    assert dpo_steps[0] == 0 and len(dpo_steps) > 1  # checkpoints along training
    assert all(p["kl_is_bound"] for p in points if p["method"] == "best_of_n")
    rows = [json.loads(line) for line in (smoke_run / "metrics.jsonl").read_text().splitlines()]
    assert {"run", "seed", "metric", "step", "value"} <= rows[0].keys()
    assert any(r["metric"] == "eval_accuracy" for r in rows)  # the reward model's
    assert not list(smoke_run.glob(".*tmp*")), "a temporary file was left behind"


def test_plot_redraws_a_frontier_run(smoke_run, capsys):
    (smoke_run / "frontier.png").unlink()
    assert main(["plot", str(smoke_run)]) == 0
    assert (smoke_run / "frontier.png").stat().st_size > 0
    assert "frontier.png" in capsys.readouterr().out


def test_frontier_never_overwrites_a_run_without_force(smoke_run, capsys):
    before = (smoke_run / "summary.json").read_bytes()
    assert main(["frontier", "--quick", "--out", str(smoke_run), "--no-progress"]) == 2
    assert "--force" in capsys.readouterr().err
    assert (smoke_run / "summary.json").read_bytes() == before


# -- the envelope and the table ---------------------------------------------------------


@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=30), st.lists(finite, max_size=10))
def test_envelope_is_the_best_reward_within_each_budget(pts, budgets):
    kl, reward = map(np.array, zip(*pts))
    got = envelope(kl, reward, budgets)
    for c, e in zip(budgets, got):
        inside = reward[kl <= c]
        assert (np.isnan(e) and inside.size == 0) or e == inside.max()
    ordered = envelope(kl, reward, np.sort(budgets))
    assert np.all(np.diff(ordered[~np.isnan(ordered)]) >= 0)  # more budget never hurts


def test_envelope_rejects_bad_input():
    with pytest.raises(ValueError, match="one length"):
        envelope([0.0, 1.0], [0.0], [1.0])
    with pytest.raises(ValueError, match="finite"):
        envelope([np.nan], [0.0], [1.0])
    assert np.isnan(envelope([], [], [1.0])).all()


def _points(method, seed, kl_reward):
    return [dict(method=method, seed=seed, step=i, kl=k, true_reward=r)
            for i, (k, r) in enumerate(kl_reward)]  # fmt: skip


def test_frontier_table_on_hand_built_points():
    points = (
        _points("a", 0, [(0.0, 0.0), (0.5, 0.3), (1.5, 0.6), (3.0, 0.9)])
        + _points("a", 1, [(0.0, 0.1), (0.9, 0.5), (2.5, 0.7)])
        + _points("b", 0, [(0.0, 0.0), (0.8, 0.2), (1.2, 0.1)])  # never beyond KL 1.2
    )
    table = {row["method"]: row for row in frontier_table(points, budgets=(1.0, 2.0, 4.0))}
    # seed 0 of a: 0.3, 0.6, 0.9; seed 1: 0.5, 0.5, 0.7
    np.testing.assert_allclose(table["a"]["mean"], [0.4, 0.55, 0.8])
    np.testing.assert_allclose(table["a"]["std"], np.std([[0.3, 0.6, 0.9], [0.5, 0.5, 0.7]],
                                                         axis=0, ddof=1))  # fmt: skip
    np.testing.assert_allclose(table["b"]["mean"], [0.2, 0.2, 0.2])  # its best, at any budget
    assert table["b"]["seeds"] == 1 and np.isnan(table["b"]["std"]).all()
    seeds, env = seed_envelopes(points, "a", [1.0, 2.0])
    assert seeds == [0, 1] and env.shape == (2, 2)
    text = table_markdown(frontier_table(points))
    assert "| a | 2 | +0.40 ± 0.14 | +0.55 ± 0.07 | +0.80 ± 0.14 |" in text
    assert "| b | 1 | +0.20 | +0.20 | +0.20 |" in text


def test_plot_frontier_curves_draws_every_method():
    points = _points("dpo", 0, [(0.0, 0.0), (1.0, 0.5)]) + _points(
        "dpo", 1, [(0.0, 0.1), (2.0, 0.6)]
    )
    points += _points("optimum", 0, [(0.0, 0.0), (1.0, 0.7), (2.0, 0.9)])
    for p in points:
        p["tau"] = 1.0
    ax = plot_frontier_curves(points)
    labels = ax.get_legend_handles_labels()[1]
    assert any(label.startswith("DPO, 2 seeds") for label in labels)
    assert any("optimum" in label for label in labels)
    assert any(t.get_text() == "τ=1" for t in ax.texts)  # the knob is labelled
    with pytest.raises(ValueError, match="empty"):
        plot_frontier_curves([])


# -- the ideal curve ----------------------------------------------------------------------


@given(st.lists(st.floats(-1, 1, width=64), min_size=1, max_size=40), st.floats(0.05, 20))
def test_tilted_matches_the_reweighted_empirical_distribution(rewards, beta):
    r = np.array(rewards)
    q = np.exp(r / beta) / np.exp(r / beta).sum()  # q_i on the samples, p_i = 1/n
    mean_r, kl = tilted(r, beta)
    np.testing.assert_allclose(mean_r, q @ r, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(kl, max(float(q @ np.log(q * len(r))), 0.0), atol=1e-9)


def test_tilted_at_extreme_beta():
    r = np.array([0.0, 0.5, 1.0, 1.0])
    assert tilted(r, 1e6)[0] == pytest.approx(r.mean()) and tilted(r, 1e6)[1] < 1e-9
    mean_r, kl = tilted(r, 1e-4)  # all mass on the two best samples: KL = log(4/2)
    assert mean_r == pytest.approx(1.0) and kl == pytest.approx(np.log(2))
    with pytest.raises(ValueError, match="beta"):
        tilted(r, 0.0)


# -- the pairs ------------------------------------------------------------------------------


def test_on_policy_pairs_are_samples_of_the_reference():
    task, reference = make_task("sentiment"), load_reference("sentiment")
    sampling = Sampling.for_task(task)
    pairs = make_pairs(task, reference, sampling, 64, np.random.default_rng(7),
                       pairs="on-policy", beta_bt=10.0)  # fmt: skip
    # Replay the generator: prompts, then two batches of responses from the reference.
    rng = np.random.default_rng(7)
    prompts = task.sample_prompts(64, rng)
    draws = [generate(reference, prompts, sampling.max_new_tokens, rng=rng, pad_id=sampling.pad_id,
                      stop_token=sampling.stop_token) for _ in range(2)]  # fmt: skip
    chosen = np.where(pairs.chosen.response_mask, pairs.chosen.ids, -1)  # (64, 16)
    rejected = np.where(pairs.rejected.response_mask, pairs.rejected.ids, -1)
    a, b = (np.full(chosen.shape, -1) for _ in draws)  # the draws, padded to the same width
    for out, d in zip((a, b), draws):
        out[:, : d.tokens.shape[1]] = np.where(d.response_mask, d.tokens, -1)
    a_won = (chosen == a).all(axis=1) & (rejected == b).all(axis=1)
    b_won = (chosen == b).all(axis=1) & (rejected == a).all(axis=1)
    assert np.all(a_won | b_won)  # every pair is the two reference samples, in some order
    assert a_won.any() and b_won.any()
    off = make_pairs(task, reference, sampling, 64, np.random.default_rng(7),
                     pairs="off-policy", beta_bt=10.0)  # fmt: skip
    assert not np.array_equal(off.chosen.ids, pairs.chosen.ids)


# -- Preferred-FT and unlikelihood ----------------------------------------------------------


@given(st.integers(1, 4), st.integers(2, 6), st.floats(0, 2), st.integers(0, 2**31 - 1))
def test_unlikelihood_loss_is_its_equation(B, T, alpha, seed):
    rng = np.random.default_rng(seed)
    logp = np.log(rng.uniform(0.01, 0.99, size=(2, B, T)))
    m = rng.random((2, B, T)) < 0.7
    m[:, 0, 0] = True  # at least one token each
    got = unlikelihood_loss(*(ma.tensor(x, np.float64) for x in logp), m[0], m[1], alpha).item()
    want = -(logp[0] * m[0]).sum() / m[0].sum()
    want -= alpha * (np.log1p(-np.exp(logp[1])) * m[1]).sum() / m[1].sum()
    np.testing.assert_allclose(got, want, rtol=1e-9)


def test_unlikelihood_loss_gradient_and_errors():
    rng = np.random.default_rng(0)
    logp = [ma.tensor(np.log(rng.uniform(0.05, 0.95, (3, 4))), requires_grad=True) for _ in "ab"]
    m = rng.random((2, 3, 4)) < 0.7
    assert gradcheck(lambda c, r: unlikelihood_loss(c, r, m[0], m[1], 0.5), logp)
    with pytest.raises(ValueError, match="alpha"):
        unlikelihood_loss(logp[0], logp[1], m[0], m[1], -1.0)
    with pytest.raises(ValueError, match="no token"):
        unlikelihood_loss(logp[0], logp[1], np.zeros((3, 4)), m[1], 0.0)
    sure = ma.tensor(np.zeros((1, 2)))  # pi(y-) = 1: capped, finite, no gradient past the cap
    assert np.isfinite(unlikelihood_loss(sure, sure, np.ones((1, 2)), np.ones((1, 2)), 1.0).item())


def test_frontier_config_rejects_bad_settings():
    with pytest.raises(ValueError, match="methods"):
        FrontierConfig(methods=("dpo", "magic"))
    with pytest.raises(ValueError, match="pairs"):
        FrontierConfig(pairs="sideways")
    with pytest.raises(ValueError, match="n_pairs"):
        FrontierConfig(n_pairs=0)
    assert FrontierConfig.quick().runs()[0] == ("dpo", 0.25)


def test_ctrl_c_keeps_the_finished_runs(tmp_path, monkeypatch):
    import minialign.frontier as frontier

    calls, real = [], frontier.run_training

    def stop_on_the_third_run(*args):
        calls.append(args[1])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(FrontierConfig, "quick", classmethod(lambda cls: cls.smoke()))
    monkeypatch.setattr(frontier, "run_training", stop_on_the_third_run)
    out = tmp_path / "stopped"
    assert main(["frontier", "--quick", "--seeds", "1", "--out", str(out), "--no-progress"]) == 130
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    points = json.loads((out / "summary.json").read_text())
    assert {p["method"] for p in points} == {"optimum", *calls[:2]}  # the two finished runs
    assert (out / "frontier.png").exists()


@pytest.mark.parametrize("argv", [["frontier", "--seeds", "0"], ["frontier", "--seeds", "x"]])
def test_bad_frontier_flags_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and "--seeds" in capsys.readouterr().err
