"""``python -m core``: see :mod:`cli.entry`."""

import sys

from cli import main

sys.exit(main())
