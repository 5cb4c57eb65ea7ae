"""Several replicas and remote workers sharing one PostgreSQL database, on loopback.

A :class:`Deployment` starts replicas (``cyberian serve --database URL
--keys-dir K --job-workers remote``, each with its own data dir) and workers
(``cyberian worker --database URL --role ...``), each in its own process
group, and stops them all.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server_harness import LiveServer, _clean_env

from cyberian.server.store import Store, open_store


@dataclass
class Worker:
    """A ``cyberian worker`` subprocess."""

    role: str
    log_path: Path
    process: subprocess.Popen[bytes]
    ended: bool = False  # stopped or killed on purpose

    def kill(self) -> None:
        """``kill -9`` the worker."""
        self.ended = True
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(20)

    def stop(self) -> None:
        """SIGTERM (it finishes the item in hand), then make sure nothing is left."""
        self.ended = True
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(20)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def log(self) -> str:
        """What the worker printed."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@dataclass
class Deployment:
    """Replicas and workers of one verifier on one database."""

    root: Path
    database: str
    catalog_dir: Path
    config: Path
    replicas: list[LiveServer] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)

    def replica(self, env: Mapping[str, str] | None = None,
                args: tuple[str, ...] = ()) -> LiveServer:
        """Start one more replica."""
        index = len(self.replicas)
        server = LiveServer(self.root / f"replica{index}", self.catalog_dir, dict(env or {}),
                            ("--workers", "1", "--keys-dir", str(self.root / "keys"),
                             "--job-workers", "remote", "--config", str(self.config), *args),
                            self.root / f"replica{index}.log", self.database)
        self.replicas.append(server.start())
        return server

    def worker(self, role: str, env: Mapping[str, str] | None = None,
               lease_seconds: float = 2.0, args: tuple[str, ...] = ()) -> Worker:
        """Start one more worker of ``role``."""
        index = len(self.workers)
        log_path = self.root / f"worker{index}-{role}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "cyberian.cli", "worker", "--database", self.database,
                 "--role", role, "--data-dir", str(self.root / f"worker{index}"),
                 "--specs-dir", str(self.catalog_dir), "--lease-seconds", str(lease_seconds),
                 *args],
                stdout=log, stderr=subprocess.STDOUT, env=_clean_env(dict(env or {})),
                start_new_session=True)
        worker = Worker(role, log_path, process)
        self.workers.append(worker)
        return worker

    def store(self) -> Store:
        """A connection to the shared database."""
        return open_store(self.database)

    def query(self, sql: str, params: Any = ()) -> list[Any]:
        """Rows of a read from the shared database."""
        store = self.store()
        try:
            return [tuple(row) for row in store.query(sql, params)]
        finally:
            store.close()

    def wait_for_workers(self, count: int, timeout: float = 60) -> list[str]:
        """The ids of the registered workers, once ``count`` have registered."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ids = [row[0] for row in self.query("SELECT id FROM workers ORDER BY started_at")]
            if len(ids) >= count:
                return ids
            for worker in self.workers:
                if not worker.ended and worker.process.poll() is not None:
                    raise RuntimeError(f"a worker exited:\n{worker.log()}")
            time.sleep(0.1)
        raise AssertionError(f"only {len(ids)} of {count} workers registered")

    def close(self) -> None:
        """Stop every worker and replica."""
        for worker in self.workers:
            worker.stop()
        for replica in self.replicas:
            replica.stop()


@contextlib.contextmanager
def deployment(root: Path, database: str, catalog_dir: Path,
               config_text: str = "") -> Iterator[Deployment]:
    """A deployment in ``root``, closed afterwards."""
    config = root / "config.yaml"
    root.mkdir(parents=True, exist_ok=True)
    config.write_text(config_text or "{}\n", encoding="utf-8")
    made = Deployment(root, database, catalog_dir, config)
    try:
        yield made
    finally:
        made.close()
