"""docs/trl.md maps every setting of every training loop, with its current default.

Each loop has a section headed ``## `loop_name` → ...`` holding a Markdown table whose rows
start ``| `setting` | default | ...``. The default cell is the setting's default as
``repr`` prints it, in backticks (``required`` when it has none). A loop that gains,
loses, renames or re-defaults a setting fails here until the map says so.

A loop's settings are the fields of its config dataclass (the ``config`` parameter's
type) and its keyword-only or optional parameters (``config`` itself excepted): each
has exactly one row. No row names anything else, except that required positional
parameters (like best_of_n's ``n``) may have a row; the fields of `Sampling` must, for
loops that take a ``sampling``.
"""

import dataclasses
import inspect
import re
from pathlib import Path

from minialign.train import (
    Sampling,
    best_of_n,
    train_dpo,
    train_grpo,
    train_ppo,
    train_reward_model,
    train_sft,
)

ROOT = Path(__file__).resolve().parents[1]
TRL_MD = ROOT / "docs" / "trl.md"
LOOPS = {f.__name__: f for f in (train_sft, train_reward_model, train_ppo, train_grpo,
                                 train_dpo, best_of_n)}  # fmt: skip

SECTION = re.compile(r"^## `(\w+)`", re.M)  # a loop's heading
ROW = re.compile(r"^\| `(\w+)` \| ([^|]*) \|", re.M)  # | `name` | default | ...


def sections(text: str) -> dict[str, str]:
    """{loop name: the text of its section}, for every ``## `name` ...`` heading."""
    found = {}
    starts = [(m.start(), m.group(1)) for m in SECTION.finditer(text)]
    for (start, name), (end, _) in zip(starts, starts[1:] + [(len(text), "")]):
        block = text[start:end].split("\n## ", 1)[0]  # stop at the next heading of any kind
        found[name] = found.get(name, "") + block
    return found


def settings(fn) -> dict[str, str]:
    """{name: expected default cell} of every setting that may have a row."""
    out = {}
    for name, p in inspect.signature(fn).parameters.items():
        if name == "config":
            out.update({f.name: f"`{f.default!r}`" for f in dataclasses.fields(p.default)})
        elif name == "sampling":
            out.update({f.name: "required" for f in dataclasses.fields(Sampling)})
        else:
            out[name] = "required" if p.default is p.empty else f"`{p.default!r}`"
    return out


def mapped_parameters(fn) -> set[str]:
    """The settings that must have a row: config and Sampling fields, keyword or optional
    parameters."""
    must = set()
    for name, p in inspect.signature(fn).parameters.items():
        if name == "config":
            must |= {f.name for f in dataclasses.fields(p.default)}
        elif name == "sampling":
            must |= {f.name for f in dataclasses.fields(Sampling)}
        elif p.kind is p.KEYWORD_ONLY or p.default is not p.empty:
            must.add(name)
    return must


def map_problems(text: str, loops: dict) -> list[str]:
    """Everything in ``text`` that disagrees with the settings of ``loops``; empty if none."""
    problems = []
    found = sections(text)
    for name in sorted(set(found) - set(loops)):
        problems.append(f"docs/trl.md has a section for `{name}`, which is not a training loop")
    for name, fn in loops.items():
        if name not in found:
            problems.append(f"docs/trl.md has no section headed ## `{name}`")
            continue
        known, seen = settings(fn), set()
        for arg, default in ROW.findall(found[name]):
            if arg in seen:
                problems.append(f"{name}: `{arg}` has more than one row")
            seen.add(arg)
            if arg not in known:
                problems.append(f"{name}: row `{arg}` names no setting of {name}")
            elif default.strip() != known[arg]:
                problems.append(f"{name}: row `{arg}` gives default {default.strip()}, "
                                f"the code has {known[arg]}")  # fmt: skip
        for arg in sorted(mapped_parameters(fn) - seen):
            problems.append(f"{name}: setting `{arg}` has no row in docs/trl.md")
    return problems


def test_every_setting_of_every_loop_has_a_row_with_its_default():
    text = TRL_MD.read_text(encoding="utf-8")
    found = sections(text)
    for name, fn in LOOPS.items():
        rows = ROW.findall(found.get(name, ""))
        assert len(rows) >= len(mapped_parameters(fn)) >= 6, (name, len(rows))
    problems = map_problems(text, LOOPS)
    assert not problems, "\n".join(problems)


def test_every_row_names_a_trl_setting_or_says_why_not():
    """Each row has five cells; a row without a TRL field uses — and explains itself."""
    found = sections(TRL_MD.read_text(encoding="utf-8"))
    problems = []
    for name in LOOPS:
        for line in found[name].splitlines():
            if not ROW.match(line):
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) != 5:
                problems.append(f"{name}: {len(cells)} cells, expected 5: {line}")
            elif cells[2].startswith("—") and len(cells[4]) < 20:
                problems.append(f"{name}: {cells[0]} has no TRL field and no reason: {line}")
    assert not problems, "\n".join(problems)


def _loop(model, tokens, mask=None, *, steps: int = 3, lr: float = 1e-3, rng=None):
    """A stand-in loop for checking the checker."""


def test_the_checker_catches_missing_extra_and_stale_rows():
    header = "## `_loop` → `SomeConfig`\n\n| minialign | default | TRL | TRL default | note |\n|---|---|---|---|---|\n"  # noqa: E501
    rows = {
        "mask": "| `mask` | `None` | x | x | x |",
        "steps": "| `steps` | `3` | x | x | x |",
        "lr": "| `lr` | `0.001` | x | x | x |",
        "rng": "| `rng` | `None` | x | x | x |",
    }
    loops = {"_loop": _loop}
    # rows under a heading that is not a loop (here "Differences") are not checked
    good = header + "\n".join(rows.values()) + "\n\n## Differences\n\n| `steps` | `99` | x |\n"
    assert map_problems(good, loops) == []
    # a parameter without a row (e.g. one just added to the loop)
    missing = header + "\n".join(v for k, v in rows.items() if k != "lr")
    assert map_problems(missing, loops) == ["_loop: setting `lr` has no row in docs/trl.md"]
    # a row for a parameter that does not exist (e.g. renamed or removed)
    extra = good.replace("| `rng` |", "| `seed` |")
    assert len(map_problems(extra, loops)) == 2  # `seed` is unknown, `rng` is missing
    # a stale default
    stale = good.replace("| `steps` | `3` |", "| `steps` | `300` |")
    assert map_problems(stale, loops) == [
        "_loop: row `steps` gives default `300`, the code has `3`"
    ]
    # a duplicated row, a missing section, a section for something that is not a loop
    assert map_problems(good.replace(rows["lr"], rows["lr"] + "\n" + rows["lr"]), loops) == [
        "_loop: `lr` has more than one row"
    ]
    assert map_problems("", loops) == ["docs/trl.md has no section headed ## `_loop`"]
    assert map_problems(good + "\n## `train_foo` x\n", loops) == [
        "docs/trl.md has a section for `train_foo`, which is not a training loop"
    ]
    # required positional parameters may have a row; required keyword-only ones must
    assert "model" not in mapped_parameters(_loop) and "mask" in mapped_parameters(_loop)
    # a config's fields are settings; so are Sampling's, where the loop takes one
    assert {"beta", "cliprange_value", "max_new_tokens"} <= set(settings(train_ppo))
    assert settings(train_ppo)["stop_token"] == "required" and "config" not in settings(train_ppo)


def test_trl_md_is_linked_from_the_readme_and_the_equation_sheet():
    assert "`docs/trl.md`" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(trl.md)" in (ROOT / "docs" / "equations.md").read_text(encoding="utf-8")
