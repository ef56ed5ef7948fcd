"""``python -m store backup FILE``: a consistent copy of the quiz database while the app runs.

The database is ``--db`` if given, else ``LPIPS_EXPLORER_QUIZ_DB``, else the default SQLite file
(:func:`store.default_db_path`). Exit status 0 when the copy is written, 2 with a message when not
(an existing file, an unreadable database, a PostgreSQL URL: use ``pg_dump`` there).
"""

from __future__ import annotations

import argparse
import os
import sys

from store import QuizError, open_store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m store", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    backup = commands.add_parser("backup", help="copy the whole database (the -wal file's votes included)")
    backup.add_argument("file", help="the new file to write (must not exist)")
    backup.add_argument("--db", default=None, help="the database (default: LPIPS_EXPLORER_QUIZ_DB or the default file)")
    args = parser.parse_args(argv)
    source = args.db or os.environ.get("LPIPS_EXPLORER_QUIZ_DB") or None
    try:
        with open_store(source) as store:
            written = store.backup(args.file)
            print(f"backed up {getattr(store, 'path', source)} to {written}")
    except QuizError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
