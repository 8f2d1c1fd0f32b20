"""The ``minialign`` command (also ``python -m minialign``).

    minialign demo [--quick] [--out DIR | --name NAME] [--force]
    minialign train {sft,rm,ppo,grpo,dpo} [hyper-parameters...]
    minialign pretrain {sentiment,arithmetic} [--out FILE]
    minialign plot RUN_DIR

Every command is seeded (``--seed``) and writes into a run directory that it never
overwrites without ``--force``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .check.cli import add_check_parser, add_exercises_parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def _nonneg_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def _run_dir(args, default_name: str) -> Path:
    """``--out`` or ``runs/<name>``; an existing non-empty directory needs ``--force``."""
    name = args.name or f"{default_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    out = Path(args.out) if args.out else Path("runs") / name
    if out.exists() and any(out.iterdir()) and not args.force:
        raise SystemExit(
            f"minialign: {out} already exists and is not empty; pass --force to overwrite "
            f"it, or choose another --out/--name"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="run directory (default: runs/<name>)")
    p.add_argument("--name", help="run name under runs/ (default: command and time)")
    p.add_argument("--force", action="store_true", help="overwrite an existing run directory")
    p.add_argument("--seed", type=int, default=0, help="seed for every random choice")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minialign", description="Align a tiny GPT with PPO, GRPO and DPO, in NumPy."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="every method on the sentiment task, one table and plot")
    demo.add_argument("--quick", action="store_true", help="a smaller run (< 45 s)")
    _add_run_options(demo)

    train = sub.add_parser("train", help="one training run")
    methods = train.add_subparsers(dest="method", required=True)
    for name, doc in [("sft", "supervised pre-training"), ("rm", "reward model"),
                      ("ppo", "PPO"), ("grpo", "GRPO"), ("dpo", "DPO")]:  # fmt: skip
        p = methods.add_parser(name, help=doc)
        _add_run_options(p)
        p.add_argument("--lr", type=_positive_float, default=1e-3 if name != "sft" else 3e-3)
        p.add_argument("--batch-size", type=_positive_int, default=64 if name != "sft" else 32)
        if name in ("sft", "grpo"):
            p.add_argument("--task", choices=["sentiment", "arithmetic"], default="sentiment")
        if name in ("sft", "rm", "dpo"):
            p.add_argument("--steps", type=_positive_int, default=300)
        if name in ("rm", "dpo"):
            p.add_argument("--pairs", type=_positive_int, default=2000, help="preference pairs")
            p.add_argument("--beta-bt", type=_nonneg_float, default=8.0,
                           help="annotator sharpness: P(chosen) = sigmoid(beta_bt * du)")  # fmt: skip
        if name in ("ppo", "grpo"):
            p.add_argument("--iterations", type=_positive_int, default=40)
            p.add_argument("--beta", type=_nonneg_float, default=0.1, help="KL coefficient")
            p.add_argument("--epsilon", type=_nonneg_float, default=0.2, help="clip range")
        if name == "ppo":
            p.add_argument("--epochs", type=_positive_int, default=2)
            p.add_argument("--lam", type=_nonneg_float, default=0.95, help="GAE lambda")
            p.add_argument("--reward", choices=["rm", "true"], default="rm",
                           help="optimise a trained reward model (proxy) or the true reward")  # fmt: skip
            p.add_argument("--target-kl", type=_positive_float, default=None)
        if name == "grpo":
            p.add_argument("--group-size", type=int, default=8)
            p.add_argument("--level", choices=["sequence", "token"], default="token")
            p.add_argument("--aggregation", choices=["grpo", "bnpo", "dr_grpo", "dapo"],
                           default="grpo")  # fmt: skip
            p.add_argument("--process-weight", type=float, default=0.5,
                           help="arithmetic: 1 - lambda, the weight of the process reward")  # fmt: skip
        if name == "dpo":
            p.add_argument(
                "--tau", type=_positive_float, default=2.0, help="temperature (beta = 1/tau)"
            )
            p.add_argument("--loss-type", choices=["sigmoid", "ipo", "hinge", "robust"],
                           default="sigmoid")  # fmt: skip
            p.add_argument("--label-smoothing", type=float, default=0.0)

    pre = sub.add_parser("pretrain", help="rebuild a task's shipped reference model bit for bit")
    pre.add_argument("task", choices=["sentiment", "arithmetic"])
    pre.add_argument("--out", help="where to write (default: the package's shipped file)")
    pre.add_argument("--no-progress", action="store_true")

    plot = sub.add_parser("plot", help="redraw frontier.png and curves.png of a run directory")
    plot.add_argument("run_dir")
    add_check_parser(sub)  # minialign check ...
    add_exercises_parser(sub)  # minialign exercises init ...
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "check_command", None):  # minialign check / exercises
        return args.check_command(args)
    from .perf import tune_malloc

    tune_malloc()  # keep NumPy's temporaries in the process (see minialign.perf)
    if args.command == "demo":
        from .demo import DemoConfig, run_demo

        out = _run_dir(args, "demo")
        config = DemoConfig.quick() if args.quick else DemoConfig()
        t0 = time.perf_counter()
        run_demo(out, config, seed=args.seed, progress=not args.no_progress)
        print(f"\nwrote {out}/ (summary.json, metrics.jsonl, frontier.png, curves.png) "
              f"in {time.perf_counter() - t0:.0f} s")  # fmt: skip
    elif args.command == "train":
        from .runs import train_command

        result = train_command(args, _run_dir(args, args.method))
        print(json.dumps(result, indent=2))
    elif args.command == "pretrain":
        from .pretrained import pretrain, save_reference

        model = pretrain(args.task, progress=not args.no_progress)
        print(f"wrote {save_reference(args.task, model, args.out)}")
    elif args.command == "plot":
        from .demo import draw_run

        run_dir = Path(args.run_dir)
        if not (run_dir / "summary.json").exists():
            raise SystemExit(f"minialign plot: {run_dir} has no summary.json (not a demo run?)")
        draw_run(run_dir)
        print(f"wrote {run_dir / 'frontier.png'} and {run_dir / 'curves.png'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
