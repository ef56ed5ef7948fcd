"""A throwaway PostgreSQL server for the tests: ``initdb`` into a temporary folder, ``pg_ctl start``
on a free loopback port, stopped and deleted at the end.

PostgreSQL refuses to run as root; as root (here and in CI) the server runs as the ``postgres``
user that Debian's package creates (else ``nobody``) through ``runuser``, and its folder belongs
to that user. The superuser ``lpips`` logs in with a random password over TCP (scram-sha-256),
so a wrong password is really refused. ``make postgres`` installs Debian's ``postgresql``.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

SKIP_VARIABLE = "LPIPS_EXPLORER_SKIP_POSTGRES"
SUPERUSER = "lpips"


class PostgresNotFound(RuntimeError):
    """No PostgreSQL server programs on this machine."""


def find_bindir() -> Path:
    """The folder of ``initdb``/``pg_ctl``: the newest ``/usr/lib/postgresql/*/bin``, else ``$PATH``."""
    def version(path: str) -> tuple[int, ...]:
        part = Path(path).parents[1].name
        return tuple(int(x) for x in part.split(".") if x.isdigit())

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    raise PostgresNotFound(
        "PostgreSQL's server programs (initdb, pg_ctl) were not found in /usr/lib/postgresql/*/bin or on PATH. "
        f"Run `make postgres` (installs Debian's postgresql), or set {SKIP_VARIABLE}=1 to skip the PostgreSQL tests."
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One server: :meth:`start`, then :attr:`url` and :meth:`create_database`; :meth:`stop` at the end."""

    def __init__(self) -> None:
        self.bindir = find_bindir()
        self.password = secrets.token_urlsafe(18)
        self.port = 0
        self.root: Path | None = None
        self.running = False
        self.user: str | None = None  # the unprivileged user the server runs as (None: ourselves)
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    pwd.getpwnam(name)
                except KeyError:
                    continue
                self.user = name
                break
            else:  # pragma: no cover - every Debian has nobody
                raise RuntimeError("running as root, and neither user 'postgres' nor 'nobody' exists to run PostgreSQL")

    # -- running the server programs ------------------------------------------------------

    def _command(self, program: str, *args: str) -> list[str]:
        cmd = [str(self.bindir / program), *args]
        if self.user is None:
            return cmd
        runuser = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
        if runuser:
            return [runuser, "-u", self.user, "--", *cmd]
        entry = pwd.getpwnam(self.user)
        setpriv = shutil.which("setpriv") or shutil.which("setpriv", path="/usr/bin:/bin") or "setpriv"
        return [setpriv, f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups", *cmd]

    def _run(self, program: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "LANG": "C", "TZ": "UTC"}
        result = subprocess.run(self._command(program, *args), cwd=self.root, env=env, capture_output=True,
                                text=True, timeout=timeout)
        if result.returncode != 0:
            log = ""
            if self.root is not None and (self.root / "server.log").exists():
                log = (self.root / "server.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{program} {' '.join(args)} failed ({result.returncode}):\n"
                               f"{result.stdout}\n{result.stderr}\n{log}")
        return result

    def _give(self, path: Path) -> None:
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> "PostgresServer":
        self.root = Path(tempfile.mkdtemp(prefix="lpips-pg-"))
        self._give(self.root)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        self._give(pwfile)
        socket_dir = self.root / "socket"
        socket_dir.mkdir()
        self._give(socket_dir)
        self._run("initdb", "-D", str(self.root / "data"), "-U", SUPERUSER, f"--pwfile={pwfile}",
                  "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync")
        pwfile.unlink()
        for attempt in range(3):  # the port is free when chosen; another program may take it first
            self.port = free_port()
            try:
                self._run("pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "server.log"),
                          "-w", "-t", "60", "start",
                          "-o", f"-p {self.port} -k {socket_dir} -c listen_addresses=127.0.0.1")
            except RuntimeError:
                if attempt == 2:
                    raise
                continue
            self.running = True
            return self
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self) -> None:
        try:
            if self.running:
                self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "-t", "60", "stop")
                self.running = False
        finally:
            if self.root is not None:
                shutil.rmtree(self.root, ignore_errors=True)
                self.root = None

    # -- databases ----------------------------------------------------------------------------

    def url(self, dbname: str = "postgres", password: str | None = None) -> str:
        return (f"postgresql://{SUPERUSER}:{self.password if password is None else password}"
                f"@127.0.0.1:{self.port}/{dbname}")

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql)

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its URL."""
        name = name or f"quiz_{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
