"""``python -m store backup FILE``: a consistent copy of the quiz database while the app runs.
``python -m store export CODE DIR``: a session's judgments in the BAPPS layout (:mod:`store.export`).

The database is ``--db`` if given, else ``LPIPS_EXPLORER_QUIZ_DB``, else the default SQLite file
(:func:`store.default_db_path`). Exit status 0 when the copy is written, 2 with a message when not
(an existing file, an unreadable database, a PostgreSQL URL: use ``pg_dump`` there).
"""

from __future__ import annotations

import argparse
import os
import sys

from core.errors import LpipsExplorerError
from store import QuizError, open_store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m store", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    backup = commands.add_parser("backup", help="copy the whole database (the -wal file's votes included)")
    backup.add_argument("file", help="the new file to write (must not exist)")
    backup.add_argument("--db", default=None, help="the database (default: LPIPS_EXPLORER_QUIZ_DB or the default file)")
    export = commands.add_parser("export", help="a session's judgments as a BAPPS set (DIR/2afc/SPLIT/CODE, or "
                                                "DIR/jnd/SPLIT/CODE for a JND session)")
    export.add_argument("code", help="the session's join code")
    export.add_argument("dir", help="the BAPPS root to write into (created if missing)")
    export.add_argument("--split", default="val", help="val (default: what test_dataset_model.py reads) or train")
    export.add_argument("--db", default=None, help="the database (default: LPIPS_EXPLORER_QUIZ_DB or the default file)")
    args = parser.parse_args(argv)
    source = args.db or os.environ.get("LPIPS_EXPLORER_QUIZ_DB") or None
    try:
        with open_store(source) as store:
            if args.command == "backup":
                written = store.backup(args.file)
                print(f"backed up {getattr(store, 'path', source)} to {written}")
            else:
                from store.export import export_bapps

                done = export_bapps(store, args.code, args.dir, args.split)
                left = [f"{len(rounds)} {why}" for rounds, why in (
                    (done.without_votes, "without votes"), (done.not_prepared, "not prepared"),
                    (done.identical, "identical pairs (checks)")) if rounds]
                print(f"{len(done.rounds)} judged rounds → {', '.join(str(f) for f in done.folders)}"
                      + (f"; left out: {', '.join(left)}" if left else ""))
    except (QuizError, LpipsExplorerError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
