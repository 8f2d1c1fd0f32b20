"""The ``minialign`` command (also ``python -m minialign``).

    minialign demo [--quick] [--out DIR | --name NAME] [--force] [--seed N]
    minialign frontier [--quick] [--seeds N] [--out DIR | --name NAME] [--force] [--seed N]
    minialign train {sft,rm,ppo,grpo,dpo} [--steps N --learning-rate X --beta X ...]
    minialign pretrain {sentiment,arithmetic} [--out FILE]
    minialign plot RUN_DIR

Every flag of ``train METHOD`` is a field of that method's config dataclass
(`minialign.train.PPOConfig` ...): its name with dashes, its doc as help, its default,
and its range checked when the flag is parsed (`minialign.train.config.check_field`), so
a flag cannot drift from its field. Every command is seeded (``--seed``) and writes into
a run directory that it never overwrites without ``--force``. A mistake in the command
line or a file is one line on stderr and a non-zero exit; ``--debug`` (or
``MINIALIGN_DEBUG=1``) shows the Python traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

from .check.cli import add_check_parser, add_exercises_parser
from .flags import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Parser,
    add_config_arguments,
    config_from_args,
)
from .rundir import RunDir, UsageError, ignore_interrupts

# -- the parser -------------------------------------------------------------------------


def _add_run_options(p: argparse.ArgumentParser, resume: bool = False) -> None:
    p.add_argument("--out", metavar="DIR", help="run directory (default: runs/<command>-<time>)")
    p.add_argument("--name", help="run name: the directory runs/NAME (give --out or --name)")
    p.add_argument("--force", action="store_true",
                   help="replace the run already in --out/--name (only a minialign run directory)")  # fmt: skip
    if resume:
        p.add_argument("--resume", action="store_true",
                       help="continue the run in --out/--name from its run_state.npz (written "
                       "every --save-steps and at the end), bit for bit")  # fmt: skip
    p.add_argument("--seed", type=_seed, default=0, metavar="N",
                   help="seed for every random choice")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def _add_train_parsers(sub) -> None:
    from .runs import TaskOptions
    from .train import DPOConfig, GRPOConfig, PPOConfig, RewardConfig, SFTConfig

    train = sub.add_parser("train", help="one training run from the shipped reference model")
    methods = train.add_subparsers(dest="method", required=True, parser_class=Parser)
    specs = [("sft", "supervised pre-training of a fresh TinyGPT", SFTConfig),
             ("rm", "a reward model on Bradley–Terry preference pairs", RewardConfig),
             ("ppo", "PPO on a reward model (or the true reward)", PPOConfig),
             ("grpo", "GRPO on the task's reward", GRPOConfig),
             ("dpo", "DPO on preference pairs", DPOConfig)]  # fmt: skip
    for name, doc, config in specs:
        p = methods.add_parser(name, help=doc, description=doc)
        p.set_defaults(config_class=config, parser=p)
        add_config_arguments(p, config)
        add_config_arguments(p, TaskOptions, only=TaskOptions.FOR_METHOD[name])
        if name == "dpo":
            p.add_argument("--beta", type=_positive, default=None, metavar="FLOAT",
                           help="TRL's name for 1/τ; sets --tau to 1/beta (give one of the two)")  # fmt: skip
        _add_run_options(p, resume=True)


def _seeds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"expected an integer from 1 to 100, got {value}")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="minialign", description="Align a tiny GPT with PPO, GRPO and DPO, in NumPy."
    )
    parser.add_argument("--debug", action="store_true",
                        help="show Python tracebacks (also MINIALIGN_DEBUG=1)")  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    demo = sub.add_parser("demo", help="every method on the sentiment task, one table and plot")
    demo.add_argument("--quick", action="store_true", help="a smaller run (about 20 s)")
    _add_run_options(demo)

    front = sub.add_parser("frontier", help="the DPO paper's Figure 2 in miniature, over seeds")
    front.add_argument("--quick", action="store_true", help="a smaller run (about 1 min)")
    front.add_argument("--seeds", type=_seeds, default=3, metavar="N",
                       help="repeat every run with N seeds (1 to 100)")  # fmt: skip
    _add_run_options(front)

    _add_train_parsers(sub)

    pre = sub.add_parser("pretrain", help="rebuild a task's shipped reference model bit for bit")
    pre.add_argument("task", choices=["sentiment", "arithmetic"], help="which reference model")
    where = pre.add_mutually_exclusive_group()
    where.add_argument("--out", metavar="FILE",
                       help="write the model to FILE (default: runs/pretrain-<task>-<time>/model.npz)")  # fmt: skip
    where.add_argument("--replace-shipped", action="store_true",
                       help="overwrite the model shipped inside the installed package")  # fmt: skip
    pre.add_argument("--force", action="store_true", help="overwrite an existing --out FILE")
    pre.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    plot = sub.add_parser("plot", help="redraw the pictures of a run directory")
    plot.add_argument(
        "run_dir", help="a directory written by `minialign demo` or `minialign train`"
    )
    add_check_parser(sub)  # minialign check ...
    add_exercises_parser(sub)  # minialign exercises init ...
    return parser


# -- the commands -----------------------------------------------------------------------


def _run_dir(args, command: str) -> RunDir:
    """The command's run directory, also kept as ``args.run`` for `main`'s error handling."""
    args.run = RunDir.create(command, out=args.out, name=args.name, force=args.force,
                             resume=getattr(args, "resume", False))  # fmt: skip
    return args.run


def _demo(args) -> RunDir:
    from .demo import DemoConfig, demo_settings, run_demo

    run = _run_dir(args, "demo")
    config = DemoConfig.quick() if args.quick else DemoConfig()
    _announce(run.start("demo", demo_settings(config, args.seed)))
    t0 = time.perf_counter()
    run_demo(run, config, seed=args.seed, progress=not args.no_progress)
    run.finish("complete", seconds=round(time.perf_counter() - t0, 1))
    print(f"\nwrote {run.path}/ (summary.json, metrics.jsonl, frontier.png, curves.png) "
          f"in {time.perf_counter() - t0:.0f} s, peak memory {run.info['peak_memory_mb']} MB")  # fmt: skip
    return run


def _frontier(args) -> RunDir:
    from .frontier import FrontierConfig, frontier_command

    run = _run_dir(args, "frontier")
    config = FrontierConfig.quick() if args.quick else FrontierConfig()
    t0 = time.perf_counter()
    table = frontier_command(run, config, seeds=args.seeds, seed=args.seed,
                             progress=not args.no_progress)  # fmt: skip
    print(f"\nbest true reward at KL <= 1, 2, 4 nats (mean ± std over seeds):\n{table}")
    print(f"\nwrote {run.path}/ (summary.json, metrics.jsonl, frontier.png) in "
          f"{time.perf_counter() - t0:.0f} s, peak memory {run.info['peak_memory_mb']} MB")  # fmt: skip
    return run


def _train(args) -> RunDir:
    from .runs import TaskOptions, train_command, train_settings

    overrides = {}
    if args.method == "dpo" and args.beta is not None:
        if hasattr(args, "tau"):
            args.parser.error("give --tau or --beta (= 1/tau), not both")
        overrides["tau"] = 1.0 / args.beta
    if args.resume and args.out is None and args.name is None:
        args.parser.error("--resume needs the run's --out or --name")
    try:
        config = config_from_args(args.config_class, args, **overrides)
        options = config_from_args(TaskOptions, args)
    except ValueError as e:  # a rule that ties flags together, e.g. batch_size % num_mini_batches
        args.parser.error(str(e))
    if args.method == "grpo" and options.task == "sentiment" and options.process_weight is not None:
        args.parser.error("--process-weight applies to --task arithmetic only")
    run = _run_dir(args, args.method)
    _announce(
        run.start(f"train {args.method}", train_settings(args.method, config, options, args.seed))
    )
    result = train_command(args.method, config, options, run, seed=args.seed,
                           progress=not args.no_progress, resume=args.resume)  # fmt: skip
    run.finish("complete")
    print(json.dumps(result, indent=2))
    return run


def _pretrain(args) -> None:
    from .pretrained import pretrain, save_pretrained

    if args.out is not None and Path(args.out).is_dir():
        raise UsageError(f"--out {args.out} is a directory; give the model file's path")
    if args.out is not None and Path(args.out).exists() and not args.force:
        raise UsageError(f"--out {args.out} exists; pass --force to overwrite it")
    run = None
    if args.out is None and not args.replace_shipped:
        run = args.run = RunDir.create(f"pretrain-{args.task}")
        _announce(run.start("pretrain", {"task": args.task}))
    model = pretrain(args.task, progress=not args.no_progress)  # Ctrl-C: nothing is written
    path = run.path / "model.npz" if run else None
    print(save_pretrained(args.task, model, path or args.out, replace_shipped=args.replace_shipped))
    if run:
        run.written.add("model.npz")
        run.finish("complete")


def _plot(args) -> None:
    from .demo import draw_run
    from .frontier import draw_frontier_run, is_frontier_run
    from .runs import draw_history

    path = Path(args.run_dir)
    if not path.is_dir():
        raise UsageError(f"{path} {'is not a directory' if path.exists() else 'does not exist'}")
    if (path / "summary.json").exists() and is_frontier_run(path):
        written = draw_frontier_run(path)
    elif (path / "summary.json").exists():
        written = draw_run(path)
    elif (path / "history.json").exists():
        written = draw_history(path)
    else:
        names = sorted(p.name for p in path.iterdir())
        has = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "") if names else "nothing"
        raise UsageError(f"{path} is not a run directory: it has no summary.json (from `minialign "
                         f"demo`) and no history.json (from `minialign train`); it has {has}")  # fmt: skip
    for picture in written:
        print(f"wrote {picture}")


def _announce(run: RunDir) -> None:
    print(f"minialign: writing to {run.path}/", file=sys.stderr)


COMMANDS = {"demo": _demo, "frontier": _frontier, "train": _train, "pretrain": _pretrain, "plot": _plot}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 done, 1 failed, 2 usage, 130 Ctrl-C)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("MINIALIGN_DEBUG", "") not in ("", "0")
    if getattr(args, "check_command", None):  # minialign check / exercises: own exit codes
        return args.check_command(args)
    command = " ".join(filter(None, [args.command, getattr(args, "method", None)]))
    try:
        COMMANDS[args.command](args)
    except KeyboardInterrupt:
        _close(args, "interrupted")
        print(f"minialign {command}: interrupted; finished results are kept", file=sys.stderr)
        return EXIT_INTERRUPTED
    except UsageError as e:
        print(f"minialign {command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, OSError, FloatingPointError) as e:
        _close(args, "failed", error=str(e))
        if debug:
            raise
        print(f"minialign {command}: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def _close(args, status: str, **extra) -> None:
    """Mark the command's run directory (if it got one) interrupted or failed."""
    run = getattr(args, "run", None)
    if run is None or run.info.get("status") != "running":
        return
    if args.command == "demo" and run.records:  # draw what finished (SIGINT ignored meanwhile)
        with contextlib.suppress(Exception), ignore_interrupts():
            from .demo import draw_run

            draw_run(run.path)
    run.finish(status, **extra)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
