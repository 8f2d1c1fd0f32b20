"""Nothing lost, nothing silent: run directories, Ctrl-C and kills at any moment, bad flags.

The subprocess tests run the real command (``python -m minialign``) and interrupt it at
a moment chosen by watching its files (not by a timer), so the same phase is hit on a
fast or a slow machine.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minialign import checkpoint
from minialign.cli import build_parser, main
from minialign.rundir import RUN_FILES, RunDir, UsageError

ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")


def start(args, cwd, progress=False):
    argv = [sys.executable, "-m", "minialign", *args, *([] if progress else ["--no-progress"])]
    return subprocess.Popen(argv, cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


def wait_for(condition, proc, timeout=240.0):
    """Poll ``condition()`` until true; fail if the process ends or time runs out first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(
                f"the command ended before the moment to interrupt it: {proc.stderr.read()}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("timed out waiting for the moment to interrupt")
        time.sleep(0.05)


def records(path: Path) -> list:
    try:
        return json.loads((path / "summary.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return []


def status(path: Path) -> str:
    return json.loads((path / "run.json").read_text())["status"]


# -- run directories ---------------------------------------------------------------------


def test_default_run_directories_are_unique_even_within_one_second(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths = {RunDir.create("demo").path for _ in range(5)}
    assert len(paths) == 5 and all(p.parent == Path("runs") for p in paths)


@pytest.mark.parametrize("name", ["../escaped", "/abs/path", "a/b", "..", ".", "", " ", "-x"])
def test_a_name_is_one_plain_component_under_runs(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match="--name must be a plain name"):
        RunDir.create("demo", name=name)
    assert not (tmp_path / "escaped").exists() and not Path("/abs/path").exists()


def test_out_and_name_together_or_an_empty_out_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="not both"):
        RunDir.create("demo", out=str(tmp_path / "a"), name="b")
    with pytest.raises(UsageError, match="must not be empty"):
        RunDir.create("demo", out="")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is not a directory"):
        RunDir.create("demo", out=str(tmp_path / "file"))


def test_force_replaces_a_run_but_never_a_directory_of_yours(tmp_path):
    run_dir = tmp_path / "run"
    run = RunDir.create("demo", out=str(run_dir)).start("demo", {})
    run.add_results([{"method": "x"}])
    with pytest.raises(UsageError, match="pass --force"):
        RunDir.create("demo", out=str(run_dir))
    RunDir.create("demo", out=str(run_dir), force=True)
    assert list(run_dir.iterdir()) == []  # the old run's files are gone: no stale summary
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(UsageError, match="did not write"):
        RunDir.create("demo", out=str(mine), force=True)
    assert (mine / "thesis.tex").read_text() == "years of work"


def test_a_file_that_appears_during_the_run_is_not_overwritten(tmp_path):
    run = RunDir.create("demo", out=str(tmp_path / "run")).start("demo", {})
    (run.path / "summary.json").write_text("someone else's\n")
    with pytest.raises(FileExistsError, match="appeared while this run was going"):
        run.add_results([{"method": "x"}])
    assert (run.path / "summary.json").read_text() == "someone else's\n"


def test_orphaned_temp_files_are_cleaned_on_resume(tmp_path):
    run = RunDir.create("train", out=str(tmp_path / "run")).start("train", {})
    orphan = run.path / ".run_state.npz.x1y2.tmp"
    orphan.write_bytes(b"half a file")
    RunDir.create("train", out=str(run.path), resume=True)
    assert not orphan.exists()


def test_every_file_the_commands_write_is_a_known_run_file():
    assert {
        "summary.json",
        "metrics.jsonl",
        "model.npz",
        "run_state.npz",
        "curves.png",
    } <= RUN_FILES


# -- Ctrl-C and kills in a real process ---------------------------------------------------


def test_ctrl_c_in_the_demo_keeps_every_finished_run(tmp_path):
    out = tmp_path / "demo"
    proc = start(["demo", "--quick", "--out", str(out)], tmp_path)
    wait_for(lambda: len(records(out)) >= 2, proc)  # the reference and the first PPO run
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert status(out) == "interrupted"
    kept = records(out)
    assert len(kept) >= 2 and all({"true_reward", "kl"} <= r.keys() for r in kept)
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {m["run"] for m in metrics} >= {"reward_model", kept[1]["run"]}
    assert (out / "frontier.png").stat().st_size > 0  # drawn from what finished


def test_ctrl_c_in_the_reward_model_stage_stops_the_whole_train_command(tmp_path):
    out = tmp_path / "ppo"
    proc = start(["train", "ppo", "--steps", "2", "--out", str(out)], tmp_path, progress=True)
    seen = []

    def reward_model_started():  # tqdm draws "reward model" on stderr once its loop starts
        seen.append(os.read(proc.stderr.fileno(), 4096).decode(errors="replace"))
        return "reward model" in "".join(seen)

    wait_for(reward_model_started, proc)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert status(out) == "interrupted"
    assert not (out / "model.npz").exists() and not (out / "result.json").exists()  # PPO never ran


def run_ppo(out: Path, *extra) -> subprocess.Popen:
    args = ["train", "ppo", "--reward", "true", "--steps", "6", "--batch-size", "8",
            "--save-steps", "1", "--out", str(out), *extra]  # fmt: skip
    return start(args, out.parent)


def saved_step(path: Path) -> int:
    try:
        with np.load(path / "run_state.npz") as npz:
            return json.loads(str(npz["__run__"]))["step"]
    except (OSError, ValueError, KeyError):
        return -1


@pytest.mark.parametrize("kill_after_step", [2, 4])
def test_a_killed_run_looks_unfinished_and_resumes_bit_for_bit(tmp_path, kill_after_step):
    straight = tmp_path / "straight"
    assert run_ppo(straight).wait(timeout=240) == 0
    killed = tmp_path / "killed"
    proc = run_ppo(killed)
    wait_for(lambda: saved_step(killed) >= kill_after_step, proc)
    proc.kill()  # SIGKILL: no cleanup of any kind
    proc.wait()
    assert status(killed) == "running"  # never "complete"
    for name in ("run.json", "config.json"):
        json.loads((killed / name).read_text())  # whole files, never half
    assert not (killed / "result.json").exists()
    resumed = run_ppo(killed, "--resume")
    assert resumed.wait(timeout=240) == 0, resumed.stderr.read()
    assert status(killed) == "complete"
    a, b = (
        checkpoint.load_state(straight / "model.npz")[1],
        checkpoint.load_state(killed / "model.npz")[1],
    )
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    ha, hb = (json.loads((d / "history.json").read_text()) for d in (straight, killed))
    assert {k: v for k, v in ha.items() if k != "seconds"} == {
        k: v for k, v in hb.items() if k != "seconds"
    }
    assert not list(killed.glob(".*.tmp"))


# -- flags -----------------------------------------------------------------------------------

NASTY = [
    "0",
    "-1",
    "nan",
    "inf",
    "-inf",
    "1e309",
    "abc",
    "",
    "2.5",
    "1e12",
    "none",
    "None",
    "0x10",
    "7",
]
METHODS = ["sft", "rm", "ppo", "grpo", "dpo"]


def _flags(method):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["train"]
    methods = next(a for a in sub._actions if a.dest == "method").choices
    return [a.option_strings[0] for a in methods[method]._actions if a.option_strings and a.nargs is None
            and a.option_strings[0] not in ("--out", "--name")]  # fmt: skip


@given(st.data())
def test_any_flag_value_parses_to_a_valid_config_or_is_a_one_line_usage_error(data):
    from minialign.flags import config_from_args

    method = data.draw(st.sampled_from(METHODS))
    flag = data.draw(st.sampled_from(_flags(method)))
    value = data.draw(st.sampled_from(NASTY))
    try:
        args = build_parser().parse_args(["train", method, flag, value])
    except SystemExit as e:
        assert e.code == 2
        return
    config_from_args(args.config_class, args)  # what parsed is valid: the config accepts it


def exit_code(argv) -> int:
    """What the shell sees: main's return value, or argparse's exit status."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "ppo", "--batch-size", "10", "--num-mini-batches", "3"],
        ["train", "grpo", "--process-weight", "0.3"],
        ["train", "ppo", "--resume"],
        ["train", "dpo", "--name", "../x"],
        ["train", "sft", "--batch-size", "100000000"],
        ["plot", "/no/such/dir"],
        ["pretrain", "sentiment", "--out", "."],
    ],
)
def test_usage_errors_are_one_line_and_exit_2(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert exit_code(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err


def test_an_interrupted_pretrain_writes_nothing(tmp_path, monkeypatch, capsys):
    from minialign import pretrained

    monkeypatch.chdir(tmp_path)

    def interrupted(name, progress=True):
        raise KeyboardInterrupt

    monkeypatch.setattr(pretrained, "pretrain", interrupted)
    shipped = pretrained.reference_path("sentiment").read_bytes()
    assert main(["pretrain", "sentiment", "--out", "model.npz"]) == 130
    assert main(["pretrain", "sentiment", "--replace-shipped"]) == 130
    assert not (tmp_path / "model.npz").exists()
    assert pretrained.reference_path("sentiment").read_bytes() == shipped


def test_pretrain_writes_a_new_run_by_default_and_never_the_shipped_file(
    tmp_path, monkeypatch, capsys
):
    from minialign import pretrained

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        pretrained, "pretrain", lambda name, progress=True: pretrained.load_reference(name)
    )
    shipped = pretrained.reference_path("sentiment").read_bytes()
    assert main(["pretrain", "sentiment"]) == 0
    [written] = list((tmp_path / "runs").glob("pretrain-sentiment-*/model.npz"))
    assert "bit for bit the shipped model" in capsys.readouterr().out
    assert pretrained.fingerprint(written) == pretrained.SHIPPED_FINGERPRINTS["sentiment"]
    assert pretrained.reference_path("sentiment").read_bytes() == shipped
