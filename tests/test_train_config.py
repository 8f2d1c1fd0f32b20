"""Configs: one frozen dataclass per trainer, validated once, mirrored flag by flag by the CLI."""

import dataclasses
import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minialign.cli import build_parser
from minialign.settings import field_type
from minialign.train import DPOConfig, GRPOConfig, PPOConfig, RewardConfig, SFTConfig

CONFIGS = {"sft": SFTConfig, "rm": RewardConfig, "ppo": PPOConfig, "grpo": GRPOConfig,
           "dpo": DPOConfig}  # fmt: skip
FIELDS = [(cls, f) for cls in CONFIGS.values() for f in dataclasses.fields(cls)]


@pytest.mark.parametrize("cls", CONFIGS.values(), ids=CONFIGS)
def test_defaults_are_valid_and_frozen(cls):
    config = cls()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.steps = 3


@pytest.mark.parametrize(("cls", "field"), FIELDS, ids=lambda x: getattr(x, "name", None))
def test_every_field_has_a_doc_and_rejects_non_finite_numbers(cls, field):
    assert len(field.metadata["doc"]) > 10, f"{cls.__name__}.{field.name} needs a one-line doc"
    kind, _ = field_type(cls, field.name)
    if kind in (int, float):
        for bad in (math.nan, math.inf, -math.inf):
            with pytest.raises(ValueError, match=rf"{cls.__name__}\.{field.name} must be"):
                cls(**{field.name: bad})
        with pytest.raises(ValueError, match=rf"{cls.__name__}\.{field.name}"):
            cls(**{field.name: "3"})  # a string is not a number
    if kind is str:
        with pytest.raises(ValueError, match="must be one of"):
            cls(**{field.name: "no-such-choice"})


@given(st.data())
def test_bounds_are_enforced_exactly(data):
    cls, field = data.draw(
        st.sampled_from([(c, f) for c, f in FIELDS if field_type(c, f.name)[0] in (int, float)])
    )
    meta, (kind, _) = field.metadata, field_type(cls, field.name)
    below = [meta["min"] - 1 if meta["min"] is not None else None,
             meta["gt"] if meta["gt"] is not None else None]  # fmt: skip
    for value in [v for v in below if v is not None]:
        with pytest.raises(ValueError, match=rf"{cls.__name__}\.{field.name} must be"):
            cls(**{field.name: kind(value)})
    if meta["max"] is not None:
        with pytest.raises(ValueError, match=rf"{cls.__name__}\.{field.name} must be <="):
            cls(**{field.name: kind(meta["max"] + 1)})


def test_fields_that_tie_together():
    with pytest.raises(ValueError, match="multiple of num_mini_batches"):
        PPOConfig(batch_size=10, num_mini_batches=3)
    with pytest.raises(ValueError, match="multiple of num_generations"):
        GRPOConfig(batch_size=20, num_generations=8)
    assert PPOConfig(batch_size=12, num_mini_batches=3).mini_batch_size == 4
    assert GRPOConfig(batch_size=24, num_generations=6).num_prompts == 4


def test_one_name_per_knob_across_trainers():
    """The same knob has the same name everywhere (grad_clip/lr/iterations are gone)."""
    names = {f.name for _, f in FIELDS}
    assert not names & {"lr", "grad_clip", "iterations", "eval_every", "checkpoint_every", "warmup"}
    for knob in ("steps", "learning_rate", "max_grad_norm", "eval_steps", "save_steps"):
        assert all(knob in {f.name for f in dataclasses.fields(c)} for c in CONFIGS.values()), knob


@pytest.mark.parametrize("method", CONFIGS)
def test_every_field_is_a_flag_with_help_and_default(method, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", method, "--help"])
    entries = re.split(r"\n(?=  -|\S)", capsys.readouterr().out)  # one entry per option
    helps = {e.split()[0].rstrip(","): " ".join(e.split()) for e in entries if e.startswith("  -")}
    for f in dataclasses.fields(CONFIGS[method]):
        flag = "--" + f.name.replace("_", "-")
        assert flag in helps, flag
        assert f.metadata["doc"].split()[0] in helps[flag], flag
        assert helps[flag].endswith(f"(default: {f.default})"), helps[flag]


@pytest.mark.parametrize(
    ("argv", "field", "value"),
    [
        (["--beta", "0.3"], "beta", 0.3),
        (["--cliprange-value", "none"], "cliprange_value", None),
        (["--no-whiten-advantages"], "whiten_advantages", False),
        (["--truncation", "bootstrap"], "truncation", "bootstrap"),
        (["--steps", "7"], "steps", 7),
    ],
)
def test_flags_set_their_fields(argv, field, value):
    from minialign.flags import config_from_args

    args = build_parser().parse_args(["train", "ppo", *argv])
    config = config_from_args(PPOConfig, args)
    assert getattr(config, field) == value
    untouched = {f.name for f in dataclasses.fields(PPOConfig)} - {field}
    assert all(getattr(config, n) == getattr(PPOConfig(), n) for n in untouched)


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "ppo", "--learning-rate", "nan"],
        ["train", "ppo", "--learning-rate", "abc"],
        ["train", "ppo", "--lam", "1.5"],
        ["train", "ppo", "--steps", "2.5"],
        ["train", "grpo", "--num-generations", "1"],
        ["train", "dpo", "--tau", "inf"],
        ["train", "dpo", "--label-smoothing", "0.7"],
        ["train", "dpo", "--bet", "0.1"],  # no prefix matching: not --beta, not --beta-bt
        ["train", "dpo", "--tau", "2", "--beta", "0.5"],
        ["train", "sft", "--seed", "-1"],
    ],
)
def test_bad_flags_are_one_line_usage_errors(argv, capsys):
    from minialign.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error" in err and "Traceback" not in err, err


def test_dpo_accepts_trls_beta_as_one_over_tau():
    from minialign.flags import config_from_args

    args = build_parser().parse_args(["train", "dpo", "--beta", "0.25"])
    assert config_from_args(DPOConfig, args, tau=1 / args.beta).tau == 4.0
