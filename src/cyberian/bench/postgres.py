"""A real, throwaway PostgreSQL server: ``initdb`` + ``pg_ctl`` in a temp dir.

The tests start one per session (``tests/conftest.py``), and ``cyberian
bench vaas --scaling`` one per run when it is given no database.

The server binaries come from :func:`find_bindir` (``tools/setup-postgresql.sh``
installs them). Nothing here touches a system cluster: each
:class:`TemporaryCluster` is a private data directory, listening on
``127.0.0.1`` on a free port (and on a Unix socket inside its own directory),
with trust authentication for the ``postgres`` superuser and durability
switched off (``fsync``, ``synchronous_commit``, ``full_page_writes``) since
the data is thrown away.

The tests import it as ``postgres_cluster`` (``tests/postgres_cluster.py``
re-exports it).

Running as root: PostgreSQL refuses to run as root, so ``initdb``, ``pg_ctl``
and the server run as the ``postgres`` OS user (created with ``useradd
--system --no-create-home`` if missing) through ``runuser -u postgres --``.
That user must be able to reach the cluster directory, and pytest's temp dirs
are not reachable by it (``/tmp/pytest-of-root`` is mode 0700). Rather than
loosening permissions on directories the cluster does not own, the cluster
then lives in a fresh ``tempfile.mkdtemp(prefix="cyberian-pg-")`` directory
in the system temp dir (``/tmp``, world-traversable), owned by ``postgres``;
``TemporaryCluster.root`` is where it actually lives, and :meth:`stop`
removes it. The requested directory is used as is whenever ``postgres`` can
reach it (checked by running ``test`` as that user), and always when not root.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import LiteralString

SETUP_SCRIPT = "tools/setup-postgresql.sh"
PG_USER = "postgres"  # both the superuser role and, when root, the OS user
HOST = "127.0.0.1"

_MISSING = (
    "PostgreSQL server binaries (initdb, pg_ctl, postgres) are missing: "
    f"run {SETUP_SCRIPT} (as root) to install them, "
    "or set CYBERIAN_PG_BINDIR to a directory holding them"
)
_SOCKET_PATH_MAX = 107  # sun_path is 108 bytes on Linux, NUL included
_PORT_CLASH = ("Address already in use", "could not create any TCP/IP sockets")


def find_bindir() -> Path:
    """The directory holding the PostgreSQL server binaries (``initdb``, ``pg_ctl``, ``postgres``).

    ``$CYBERIAN_PG_BINDIR`` if set (it must hold an executable ``initdb``), else
    the newest ``/usr/lib/postgresql/<version>/bin`` with an ``initdb`` (Debian),
    else the folder of ``initdb`` on ``PATH`` (symlinks resolved).

    Raises:
        RuntimeError: no server binaries; the message names ``tools/setup-postgresql.sh``.
    """
    env = os.environ.get("CYBERIAN_PG_BINDIR")
    if env:
        bindir = Path(env)
        if _is_exe(bindir / "initdb"):
            return bindir
        raise RuntimeError(f"CYBERIAN_PG_BINDIR={env} has no executable initdb. {_MISSING}")
    debian = [
        Path(p).parent
        for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")
        if _is_exe(Path(p))
    ]
    if debian:
        return max(debian, key=lambda b: _version_key(b.parent.name))
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    raise RuntimeError(_MISSING)


def _is_exe(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _version_key(version: str) -> tuple[int, ...]:
    """``"15"`` -> ``(15,)``, ``"9.6"`` -> ``(9, 6)``; non-numeric parts sort first."""
    return tuple(int(part) if part.isdigit() else -1 for part in version.split("."))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class TemporaryCluster:
    """A private PostgreSQL cluster under ``root``: start it, make databases, stop and delete it.

    Use as a context manager (``with TemporaryCluster(path) as pg: ...``) or
    call :meth:`start` and :meth:`stop`. :meth:`stop` is idempotent and also
    registered with :mod:`atexit` once started, so a crashed test session does
    not leave a server running. See the module docstring for how root is handled.

    Attributes:
        root: the directory the cluster lives in (``data/``, ``postgres.log``,
            ``sock/``); differs from the requested one when root had to fall back.
        host: ``"127.0.0.1"``.
        port: the TCP port the server listens on (``0`` until started).
        bindir: where ``initdb`` / ``pg_ctl`` come from.
    """

    host: str = HOST

    def __init__(self, root: Path) -> None:
        """Prepare (but do not start) a cluster in ``root``, created if missing."""
        self.requested_root = Path(root)
        self.root = self.requested_root
        self.port = 0
        self.bindir = find_bindir()
        self._as_postgres = os.geteuid() == 0
        self._sockdir: Path | None = None
        self._own_sockdir = False
        self._running = False

    # -- paths -----------------------------------------------------------------

    @property
    def datadir(self) -> Path:
        """The cluster's data directory (``<root>/data``)."""
        return self.root / "data"

    @property
    def logfile(self) -> Path:
        """The server log (``<root>/postgres.log``)."""
        return self.root / "postgres.log"

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> TemporaryCluster:
        """``initdb`` the cluster and start the server; returns ``self``.

        Raises:
            RuntimeError: ``initdb`` or the server start failed (with the tail
                of ``postgres.log`` / the tool's output).
        """
        if self._running:
            return self
        self._prepare_root()
        atexit.register(self.stop)
        self._running = True  # from here on stop() has something to clean up
        try:
            self._initdb()
            for attempt in (1, 2):
                self.port = free_port()
                result = self._pg_ctl_start()
                if result.returncode == 0:
                    return self
                log = self._log_tail()
                if attempt == 1 and any(marker in log for marker in _PORT_CLASH):
                    continue  # someone took the port between free_port() and bind: once more
                raise RuntimeError(
                    f"PostgreSQL did not start (pg_ctl exit {result.returncode}) on port "
                    f"{self.port} in {self.root}\n--- pg_ctl output ---\n{result.stdout}"
                    f"--- tail of {self.logfile} ---\n{log}"
                )
        except BaseException:
            self.stop()
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self) -> None:
        """Stop the server (``pg_ctl stop -m fast -w``) and delete the cluster directory.

        Idempotent; safe to call on a cluster that never started or failed to.
        """
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        if not self._running:
            return
        self._running = False
        if (self.datadir / "postmaster.pid").exists():
            result = self._run([self._tool("pg_ctl"), "-D", str(self.datadir),
                                "-m", "fast", "-w", "-t", "60", "stop"])
            if result.returncode != 0:
                self._kill_postmaster()
        shutil.rmtree(self.root, ignore_errors=True)
        if self._own_sockdir and self._sockdir is not None:
            shutil.rmtree(self._sockdir, ignore_errors=True)

    def __enter__(self) -> TemporaryCluster:
        """Start the cluster."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the cluster and delete its directory."""
        self.stop()

    # -- databases -------------------------------------------------------------

    def url(self, dbname: str = "postgres") -> str:
        """A libpq URL for ``dbname`` as the ``postgres`` superuser over TCP (trust auth)."""
        return f"postgresql://{PG_USER}@{self.host}:{self.port}/{dbname}"

    def create_database(self, name: str | None = None) -> str:
        """Create a fresh, empty database (``cy_<hex>`` if ``name`` is None); return its URL."""
        name = name or f"cy_{uuid.uuid4().hex}"
        self._admin("CREATE DATABASE {}", name)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, disconnecting any sessions still on it."""
        self._admin("DROP DATABASE IF EXISTS {} WITH (FORCE)", name)

    def _admin(self, statement: LiteralString, name: str) -> None:
        import psycopg  # noqa: PLC0415 - an optional dependency, imported when used
        from psycopg import sql  # noqa: PLC0415

        query = sql.SQL(statement).format(sql.Identifier(name))
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(query)

    # -- internals -------------------------------------------------------------

    def _tool(self, name: str) -> str:
        return str(self.bindir / name)

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool (as ``postgres`` when root), output captured, exit not checked."""
        if self._as_postgres:
            argv = ["runuser", "-u", PG_USER, "--", *argv]
        return subprocess.run(
            argv,
            cwd=self.root,  # postgres may not be able to enter the caller's cwd
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
            timeout=120,
        )

    def _prepare_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            _ensure_postgres_user()
            if not self._reachable_by_postgres(self.root):
                self.root = Path(tempfile.mkdtemp(prefix="cyberian-pg-"))
                if not self._reachable_by_postgres(self.root):
                    raise RuntimeError(
                        f"neither {self.requested_root} nor {self.root} is reachable by the "
                        f"{PG_USER} OS user; set TMPDIR to a world-traversable directory"
                    )
        sockdir = self.root / "sock"
        if len(str(sockdir)) + len("/.s.PGSQL.65535") > _SOCKET_PATH_MAX:
            sockdir = Path(tempfile.mkdtemp(prefix="cypg-", dir="/tmp"))  # short enough
            self._own_sockdir = True
        sockdir.mkdir(exist_ok=True)
        self._sockdir = sockdir
        if self._as_postgres:
            for path in (self.root, sockdir):
                shutil.chown(path, user=PG_USER, group=_postgres_group())

    def _reachable_by_postgres(self, path: Path) -> bool:
        """Whether the ``postgres`` OS user can enter ``path`` (once it owns it)."""
        shutil.chown(path, user=PG_USER, group=_postgres_group())
        probe = subprocess.run(
            ["runuser", "-u", PG_USER, "--", "test", "-x", str(path), "-a", "-w", str(path)],
            cwd="/",
            check=False,
            capture_output=True,
        )
        return probe.returncode == 0

    def _initdb(self) -> None:
        base = [self._tool("initdb"), "-D", str(self.datadir), "-U", PG_USER,
                "--auth=trust", "-E", "UTF8", "--no-sync"]
        first = self._run([*base, "--locale=C.UTF-8"])
        if first.returncode == 0:
            return
        shutil.rmtree(self.datadir, ignore_errors=True)  # initdb may leave a half-made dir
        second = self._run([*base, "--no-locale"])
        if second.returncode != 0:
            raise RuntimeError(
                f"initdb failed in {self.datadir}\n--- with --locale=C.UTF-8 ---\n{first.stdout}"
                f"--- with --no-locale ---\n{second.stdout}"
            )

    def _pg_ctl_start(self) -> subprocess.CompletedProcess[str]:
        options = (
            f"-c listen_addresses={self.host} -p {self.port} -k {self._sockdir}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c max_connections=300 -c shared_buffers=128MB"
        )
        return self._run(
            [self._tool("pg_ctl"), "-D", str(self.datadir), "-l", str(self.logfile),
             "-w", "-t", "60", "-o", options, "start"]
        )

    def _log_tail(self, lines: int = 40) -> str:
        try:
            text = self.logfile.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})\n"
        return "\n".join(text.splitlines()[-lines:]) + "\n"

    def _kill_postmaster(self) -> None:
        """Last resort when ``pg_ctl stop`` fails: SIGQUIT (immediate shutdown) the postmaster."""
        try:
            pid = int((self.datadir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGQUIT)
            for _ in range(100):
                os.kill(pid, 0)  # raises ProcessLookupError once it is gone
                time.sleep(0.05)


def _ensure_postgres_user() -> None:
    """Create the ``postgres`` system user if it does not exist (root only)."""
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", PG_USER], check=True)


def _postgres_group() -> int:
    return pwd.getpwnam(PG_USER).pw_gid
