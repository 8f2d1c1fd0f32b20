"""The ``minialign`` command: the quick demo end to end, run directories, bad flags."""

import json

import numpy as np
import pytest

from minialign import checkpoint
from minialign.cli import build_parser, main

METHODS = {"ppo", "grpo", "dpo", "best_of_n"}


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "quick"
    assert main(["demo", "--quick", "--out", str(out), "--no-progress"]) == 0
    return out


def test_quick_demo_beats_the_reference_with_every_method(quick_demo):
    summary = json.loads((quick_demo / "summary.json").read_text())
    reference = [r for r in summary if r["method"] == "reference"]
    assert len(reference) == 1
    assert reference[0]["preference_accuracy"] > 0.8  # the reward model learned the pairs
    runs = [r for r in summary if r["method"] != "reference"]
    assert {r["method"] for r in runs} == METHODS
    for r in runs:
        assert {"true_reward", "kl", "seconds"} <= r.keys()
        assert np.isfinite(r["true_reward"]) and np.isfinite(r["kl"])
        assert r["true_reward"] > reference[0]["true_reward"] + 0.1, r


def test_the_shipped_quick_summary_is_this_run(quick_demo):
    """Notebook 06 reads minialign/data/demo_quick_summary.json in the browser instead of
    repeating the quick demo: it must be what the quick demo gives (tools/readme_figures.py)."""
    from importlib import resources

    shipped = resources.files("minialign") / "data" / "demo_quick_summary.json"
    fresh = json.loads((quick_demo / "summary.json").read_text())
    drop = lambda records: [{k: v for k, v in r.items() if k != "seconds"} for r in records]  # noqa: E731
    assert drop(json.loads(shipped.read_text())) == drop(fresh)


def test_quick_demo_writes_every_artifact(quick_demo):
    for name in ("summary.json", "metrics.jsonl", "config.json", "frontier.png", "curves.png"):
        assert (quick_demo / name).stat().st_size > 0, name
    lines = (quick_demo / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert {"run", "metric", "step", "value"} <= records[0].keys()
    assert any(r["metric"] == "eval_true_reward" for r in records)
    assert not list(quick_demo.glob(".*tmp*")), "a temporary file was left behind"


def test_plot_redraws_a_run(quick_demo, capsys):
    (quick_demo / "frontier.png").unlink()
    assert main(["plot", str(quick_demo)]) == 0
    assert (quick_demo / "frontier.png").exists()


def test_an_existing_run_directory_is_never_overwritten_without_force(quick_demo, capsys):
    before = (quick_demo / "summary.json").read_bytes()
    assert main(["demo", "--quick", "--out", str(quick_demo), "--no-progress"]) == 2
    assert "--force" in capsys.readouterr().err
    assert (quick_demo / "summary.json").read_bytes() == before


def test_the_demo_records_its_status_and_settings(quick_demo):
    run = json.loads((quick_demo / "run.json").read_text())
    assert run["status"] == "complete" and run["command"] == "demo"
    config = json.loads((quick_demo / "config.json").read_text())
    assert config["config"]["n_eval_prompts"] == 256 and config["seed"] == 0


def test_train_dpo_writes_a_loadable_model(tmp_path):
    out = tmp_path / "dpo"
    args = ["train", "dpo", "--steps", "3", "--pairs", "64", "--batch-size", "8"]
    assert main([*args, "--out", str(out), "--no-progress"]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["method"] == "dpo" and np.isfinite(result["true_reward"])
    model = checkpoint.load(out / "model.npz")
    assert model.config.vocab_size == 58
    assert "loss" in json.loads((out / "history.json").read_text())
    settings = json.loads((out / "config.json").read_text())
    assert settings["config"]["steps"] == 3 and settings["options"]["pairs"] == 64  # all saved
    assert (out / "curves.png").stat().st_size > 0
    assert main(["plot", str(out)]) == 0  # a train run can be redrawn too


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "dpo", "--tau", "0"],
        ["train", "ppo", "--learning-rate", "-1"],
        ["train", "grpo", "--task", "chess"],
        ["demo", "--bogus"],
        ["pretrain", "poetry"],
        [],
    ],
)
def test_bad_flags_are_argparse_errors(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_plot_names_what_a_directory_lacks(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    assert "no summary.json" in capsys.readouterr().err
    assert main(["plot", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "summary.json").write_text("{not json")
    assert main(["plot", str(tmp_path)]) == 1
    assert "not valid JSON" in capsys.readouterr().err
