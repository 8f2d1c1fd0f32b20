"""Regenerate the README's demo figure and table from a fresh ``minialign demo`` run.

    python tools/readme_figures.py            # the quick and the full demo (about 45 s)

Runs ``minialign demo --quick`` and ``minialign demo`` into a temporary directory (each in
its own process, so its peak memory is its own), copies ``frontier.png`` and
``curves.png`` to ``docs/img/`` and rewrites the table between the ``<!-- demo:start -->``
and ``<!-- demo:end -->`` markers of README.md, with the times and memory from ``run.json``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICK_SUMMARY = ROOT / "minialign" / "data" / "demo_quick_summary.json"
START, END = "<!-- demo:start -->", "<!-- demo:end -->"


def table(summary: list[dict], run: dict, quick: dict) -> str:
    lines = [
        "| method | β | τ | n | true reward | KL | proxy reward | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in summary:
        cells = [r["method"]]
        cells += [f"{r[k]:g}" if r.get(k) is not None else "" for k in ("beta", "tau", "n")]
        cells += [
            f"{r[k]:.2f}" if r.get(k) is not None else ""
            for k in ("true_reward", "kl", "proxy_reward")
        ]
        cells.append(f"{r['seconds']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    accuracy = summary[0].get("preference_accuracy")
    lines.append("")
    lines.append(
        f"Reward model held-out preference accuracy: {accuracy:.2f}. Whole demo: "
        f"{run['seconds']:.0f} s ({run['cpu_seconds']:.0f} s of CPU), peak memory "
        f"{run['peak_memory_mb']:.0f} MB; `--quick`: {quick['seconds']:.0f} s, "
        f"{quick['peak_memory_mb']:.0f} MB; on this project's 2-core machine. The reference row's "
        f"seconds are the reward model's training. KL for best-of-n is the analytic bound "
        f"log n − (n−1)/n; for every other row it is measured on 512 held-out prompts."
    )
    return "\n".join(lines)


def demo(out: Path, *flags: str) -> dict:
    """Run ``minialign demo`` in a fresh process (so its peak memory is its own)."""
    command = [
        sys.executable,
        "-m",
        "minialign",
        "demo",
        "--out",
        str(out),
        "--no-progress",
        *flags,
    ]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / "run.json").read_text())


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        quick = demo(Path(tmp) / "quick", "--quick")
        run = demo(Path(tmp) / "full")
        full = Path(tmp) / "full"
        summary = json.loads((full / "summary.json").read_text())
        (ROOT / "docs" / "img").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(full / "frontier.png", ROOT / "docs" / "img" / "frontier.png")
        shutil.copyfile(full / "curves.png", ROOT / "docs" / "img" / "curves.png")
        (ROOT / "docs" / "demo_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        # notebook 06 reads the quick run's summary in the browser instead of repeating it
        shutil.copyfile(Path(tmp) / "quick" / "summary.json", QUICK_SUMMARY)
    readme = (ROOT / "README.md").read_text()
    if START not in readme or END not in readme:
        print(f"README.md lacks the {START} ... {END} markers", file=sys.stderr)
        return 1
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    (ROOT / "README.md").write_text(f"{head}{START}\n{table(summary, run, quick)}\n{END}{tail}")
    print(
        "updated README.md, docs/img/frontier.png, docs/img/curves.png, docs/demo_summary.json, "
        "minialign/data/demo_quick_summary.json"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
