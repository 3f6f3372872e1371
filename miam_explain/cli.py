"""The ``miam-explain`` command line: a thin layer over the library.

Each sub-command lives in its own module under :mod:`miam_explain.commands`,
which exposes ``register(subparsers)``; the parser it adds sets ``func`` to a
callable taking the parsed :class:`argparse.Namespace`. User errors
(:class:`~miam_explain.errors.MiamError`) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from miam_explain._version import __version__
from miam_explain.errors import MiamError

__all__ = ["build_parser", "main"]

#: Sub-command modules under :mod:`miam_explain.commands`, in help order.
COMMAND_MODULES: tuple[str, ...] = ("demo", "data", "masks", "train", "evaluate", "shapley", "report", "map")


class _UsageError(MiamError):
    """A command line that argparse cannot parse (unknown option, missing or malformed value)."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one-line :class:`_UsageError`, not usage text plus ``SystemExit``.

    Sub-command parsers inherit the class (``add_subparsers`` uses the parent's type).
    """

    def error(self, message: str) -> None:  # type: ignore[override]
        message = " ".join(message.split())
        raise _UsageError(f"{self.prog}: error: {message}; see '{self.prog} --help'")


def build_parser() -> argparse.ArgumentParser:
    """Return the full argument parser with every sub-command registered."""
    parser = _Parser(
        prog="miam-explain",
        description="Which inputs drive a multimodal ecological model, and by how much?",
    )
    parser.add_argument("--version", action="version", version=f"miam-explain {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"miam_explain.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``miam-explain`` console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        print(f"{exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        print(f"miam-explain: error: no command given; choose one of {', '.join(COMMAND_MODULES)}", file=sys.stderr)
        return 2
    try:
        func(args)
    except MiamError as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"miam-explain: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("miam-explain: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
