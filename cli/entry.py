"""The parser and the dispatch: ``lpips-explorer COMMAND …`` (also ``python -m cli`` and, for
existing users, ``python -m core``).

The parser is built from the command modules and the metric catalog without importing PyTorch,
so ``--help``, ``metrics`` and usage errors answer at once. Every option is checked by the parser
(its type and range), so a bad value is a usage message, never a traceback.

Exit statuses: 0 success; 1 a comparison or file failed (the run goes on, writes every good row
and an error row for each failure) or there was nothing to compare; 2 bad usage (an option, a
folder that does not exist, an output that cannot be written) or missing weights.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from core.errors import LpipsExplorerError, WeightsError

from . import app, bapps, compare, folders, metrics, synthesis, weights
from .common import EXIT_STATUSES, UsageError, check_device

__all__ = ["build_parser", "console_main", "main"]


def _description() -> str:
    from core import metrics as registry

    labels = ", ".join(spec.label for spec in registry.specs())
    return (f"LPIPS Explorer: how a perceptual metric judges images. Scores pairs and folders with "
            f"{labels}; synthesizes images that pit them against each other; serves the app. "
            "Higher LPIPS = more different; higher PSNR/SSIM = more similar.")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog or "lpips-explorer", description=_description(), epilog=EXIT_STATUSES)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    compare.add_parser(sub)
    folders.add_parsers(sub)
    weights.add_parser(sub)
    metrics.add_parser(sub)
    synthesis.add_parsers(sub, EXIT_STATUSES)
    bapps.add_parsers(sub)
    app.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    check_device(parser, getattr(args, "device", "auto"))
    try:
        return args.func(args)
    except (WeightsError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (LpipsExplorerError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `lpips-explorer metrics | head`: the reader left; not an error of ours
        sys.stdout = open(os.devnull, "w")  # so that the interpreter's final flush does not fail again
        return 0


def console_main() -> int:
    """The installed ``lpips-explorer`` command."""
    return main(prog="lpips-explorer")
