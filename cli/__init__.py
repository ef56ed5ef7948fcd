"""The command line, ``lpips-explorer`` (also ``python -m cli``, and ``python -m core`` for
existing users): one module per command family, the shared parser helpers and exit statuses in
:mod:`.common`. Building the parser imports no PyTorch: ``--help``, ``metrics`` and usage errors
answer at once; each command imports what it uses when it runs."""

from .common import EXIT_STATUSES, Progress, UsageError
from .entry import build_parser, console_main, main

__all__ = ["EXIT_STATUSES", "Progress", "UsageError", "build_parser", "console_main", "main"]
