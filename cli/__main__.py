"""``python -m cli``: the same as the installed ``lpips-explorer`` command."""

import sys

from .entry import main

sys.exit(main(prog="lpips-explorer"))
