"""Running the real server in a subprocess for the integration tests.

A :class:`LiveServer` is ``python -m cyberian.cli serve --port 0`` on
127.0.0.1 with its own data dir, in its own process group (so stopping it
also stops its worker processes). The bound port is read from
``<data-dir>/server.json``; the server is ready when ``/health`` answers.

The backend: every server a test starts uses the database :data:`BACKEND`
gives -- its SQLite file, or (while the suite runs on PostgreSQL, see
``conftest.py``) a fresh database of the session's PostgreSQL cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from cyberian.models.tiny import write_tiny_spec
from cyberian.server.accounts import create_account, update_account
from cyberian.server.store import Store, open_store
from cyberian.server.timeutil import utcnow

START_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0


@dataclass
class Backend:
    """Which database the servers of the running tests get."""

    name: str = "sqlite"
    new_database: Callable[[], str] | None = None  # a fresh PostgreSQL database's URL


BACKEND = Backend()


def write_catalog(folder: Path) -> Path:
    """A catalog folder with two tiny-model specs.

    ``tiny``: chunk_size 4, sample_rate 0.5, vaas_block 1000 (the default);
    ``tiny-all``: chunk_size 4, sample_rate 1.0 (every chunk replayed), vaas_block 3.
    """
    folder.mkdir(parents=True, exist_ok=True)
    write_tiny_spec(folder, name="tiny")
    strict = write_tiny_spec(folder, name="tiny-all")
    text = strict.read_text(encoding="utf-8").replace(
        "sample_rate: 0.5", "sample_rate: 1.0\n  vaas_block: 3")
    strict.write_text(text, encoding="utf-8")
    return folder


def cli(server: LiveServer, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the admin command ``cyberian <args>`` on ``server``'s data dir and database."""
    where = ["--data-dir", str(server.data_dir)]
    if server.database:
        where += ["--database", server.database]
    return subprocess.run([sys.executable, "-m", "cyberian.cli", *args, *where],
                          capture_output=True, text=True, check=check, timeout=120,
                          env=_clean_env({}))


def _clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYBERIAN_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass
class Account:
    """A test account: its id, key and key id."""

    id: str
    key: str
    key_id: str
    tier: str


@dataclass
class LiveServer:
    """A running server subprocess and what the tests need to talk to it."""

    data_dir: Path
    specs_dir: Path
    env: dict[str, str]
    args: tuple[str, ...]
    log_path: Path
    database: str | None = None  # a postgresql:// URL, else the data dir's SQLite file
    process: subprocess.Popen[bytes] | None = None
    url: str = ""
    _clients: list[httpx.Client] = field(default_factory=list)

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> LiveServer:
        """Start the server and wait until it answers /health."""
        state = self.data_dir / "server.json"
        state.unlink(missing_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cyberian.cli", "serve", "--host", "127.0.0.1", "--port", "0",
             "--data-dir", str(self.data_dir), "--specs-dir", str(self.specs_dir),
             *(("--database", self.database) if self.database else ()), *self.args],
            stdout=log, stderr=subprocess.STDOUT, env=_clean_env(self.env),
            start_new_session=True)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited ({self.process.returncode}):\n{self.log()}")
            if state.is_file():
                info = json.loads(state.read_text(encoding="utf-8"))
                self.url = f"http://127.0.0.1:{info['port']}"
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                        return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the server did not become ready:\n{self.log()}")

    def stop(self) -> int | None:
        """SIGTERM, wait, then make sure nothing of the process group is left."""
        if self.process is None:
            return None
        for client in self._clients:
            client.close()
        self._clients.clear()
        code = None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self.process.wait(STOP_TIMEOUT)
        else:
            code = self.process.returncode
        self._kill_group()
        self.process = None
        return code

    def kill(self) -> None:
        """``kill -9`` the server's main process only (its workers must notice and exit)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(STOP_TIMEOUT)

    def _kill_group(self) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def log(self) -> str:
        """Everything the server printed."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    # -- helpers ----------------------------------------------------------------

    @property
    def store_location(self) -> str | Path:
        """The server's database: its URL, or its SQLite file."""
        return self.database or self.data_dir / "cyberian.db"

    def store(self) -> Store:
        """A connection to the server's database (as the admin commands use it)."""
        return open_store(self.store_location)

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """One value read from the database."""
        store = self.store()
        try:
            row = store.query_one(sql, params)
            assert row is not None
            return row[0]
        finally:
            store.close()

    def account(self, tier: str = "trial", **changes: Any) -> Account:
        """A new account (created the way the admin command does it)."""
        store = self.store()
        try:
            account, key_id, key = create_account(store, tier, now=utcnow(), trial_days=14)
            if changes:
                update_account(store, account.id, now=utcnow(), **changes)
        finally:
            store.close()
        return Account(account.id, key, key_id, tier)

    def client(self, account: Account | str | None = None, **options: Any) -> httpx.Client:
        """An httpx client for this server (authenticated when given an account or key)."""
        headers = dict(options.pop("headers", {}))
        if account is not None:
            key = account.key if isinstance(account, Account) else account
            headers["Authorization"] = f"Bearer {key}"
        client = httpx.Client(base_url=self.url, headers=headers,
                              timeout=options.pop("timeout", 60), **options)
        self._clients.append(client)
        return client



@contextlib.contextmanager
def running_server(tmp: Path, specs_dir: Path, *, env: Mapping[str, str] | None = None,
                   args: Sequence[str] = ()) -> Iterator[LiveServer]:
    """A started server in ``tmp``, stopped afterwards."""
    database = BACKEND.new_database() if BACKEND.new_database is not None else None
    server = LiveServer(tmp / "data", specs_dir, dict(env or {}), tuple(args),
                        tmp / "server.log", database)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def wait_settled(client: httpx.Client, job_id: str, timeout: float = 60) -> dict[str, Any]:
    """Long-poll a job until it is terminal."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(f"/jobs/{job_id}/wait", params={"max_wait": 10})
        response.raise_for_status()
        job: dict[str, Any] = response.json()
        if job["status"] in ("SETTLED", "FAILED", "REFUNDED"):
            return job
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def texts(count: int, prefix: str = "text") -> list[str]:
    """``count`` distinct short texts."""
    return [f"{prefix} number {i} of the proof" for i in range(count)]
