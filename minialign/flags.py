"""Command-line flags generated from config dataclasses, and the parser every command uses.

`add_config_arguments` gives every field of a frozen `knob` dataclass
(`minialign.train.config`) a flag: its name with dashes, its doc as help, its default
shown, and its range checked when the flag is parsed (by the same `check_field` that
checks the config), so a flag can never drift from its field. `config_from_args` builds
the config back from the parsed flags. `Parser` is argparse with one-line errors and no
prefix matching (``--beta`` is never read as ``--beta-bt``).
"""

from __future__ import annotations

import argparse
import dataclasses

from .settings import check_field, describe, field_type

EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 2, 1, 130


class _Formatter(argparse.HelpFormatter):
    """Adds "(default: X)" to every help line that has a default worth showing."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "(default:" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return text + " (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """argparse with defaults in every help line, no prefix matching (``--beta`` is never
    read as ``--beta-bt``), and one-line errors."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_known_args(self, args=None, namespace=None):
        """Unknown flags are an error of the (sub)command they follow, with its usage."""
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras


# -- flags generated from a config dataclass ------------------------------------------


def _field_parser(cls, name: str):
    """A ``type=`` for argparse: text -> a valid value of field ``name`` of ``cls``."""
    kind, optional = field_type(cls, name)

    def parse(text: str):
        if optional and text.strip().lower() == "none":
            value = None
        else:
            try:
                value = kind(text)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
                ) from None
        try:
            return check_field(cls, name, value)
        except ValueError as e:  # "PPOConfig.beta must be >= 0, got -1.0" -> "must be ..."
            raise argparse.ArgumentTypeError(str(e).split(" ", 1)[1]) from None

    parse.__name__ = kind.__name__
    return parse


def _config_fields(cls) -> list[dataclasses.Field]:
    """The fields of ``cls``, its own first (in the order written), then the shared ones."""
    own = list(vars(cls).get("__annotations__", {}))
    fields = dataclasses.fields(cls)
    return sorted(fields, key=lambda f: own.index(f.name) if f.name in own else len(own))


def add_config_arguments(parser: argparse.ArgumentParser, cls, only=None) -> None:
    """One ``--field-name`` per field of config ``cls``, with its doc, default and range.

    A flag that is not given leaves no attribute (``argparse.SUPPRESS``), so the config's
    own default applies and a command can tell which flags were given."""
    group = parser.add_argument_group(f"{cls.__name__} ({cls.__module__}.{cls.__name__})")
    for f in _config_fields(cls):
        if only is not None and f.name not in only:
            continue
        kind, optional = field_type(cls, f.name)
        flag = "--" + f.name.replace("_", "-")
        unset = " ('none' to unset)" if optional and f.default is not None else ""
        common = dict(dest=f.name, default=argparse.SUPPRESS,
                      help=f"{describe(cls, f.name)}{unset} (default: {f.default})")  # fmt: skip
        if kind is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **common)
        elif kind is str:
            group.add_argument(flag, choices=f.metadata["choices"], **common)
        else:
            group.add_argument(flag, type=_field_parser(cls, f.name),
                               metavar=kind.__name__.upper(), **common)  # fmt: skip


def config_from_args(cls, args: argparse.Namespace, **overrides):
    """The config ``cls`` with the fields given as flags (and ``overrides``) set."""
    given = {
        f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)
    }
    return cls(**{**given, **overrides})
