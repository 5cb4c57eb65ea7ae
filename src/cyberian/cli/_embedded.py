"""The embedded verifier: the real server in a subprocess on a free loopback port.

A client-side launcher (it runs ``python -m cyberian.cli serve``, it is not
part of the server): ``cyberian-prove --verify`` uses it when no verifier
URL is given (``--server`` or the client's base-URL variable), and the
``/verify`` benchmarks use it with a data dir of their own.

By default its data dir lives under the user's cache directory
(``~/.cache/cyberian/embedded-verifier``) and survives between runs, so the
model store, the signing key and a local enterprise account are made once.
Its model store hard-links the files of the shared model cache (the server
does that for every catalog file), so the model is not copied again; the
server is started with the caller's ``$CYBERIAN_CACHE_DIR`` for that reason.
The account's key is kept in that data dir (file mode 0600), never printed.
The server is stopped (its whole process group) when the block exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from .._paths import cache_dir
from ..exceptions import NetworkError
from ..spec import Spec

__all__ = ["EmbeddedVerifier", "embedded_verifier"]

_START_TIMEOUT = 180.0
_STOP_TIMEOUT = 20.0
_KEY_FILE = "embedded-account.key"
_CACHE_ENV = "CYBERIAN_CACHE_DIR"


@dataclass(frozen=True)
class EmbeddedVerifier:
    """A running embedded verifier: where it listens and the local account's key."""

    url: str
    api_key: str
    data_dir: Path
    started_seconds: float

    def __repr__(self) -> str:
        return f"EmbeddedVerifier(url={self.url!r}, data_dir={str(self.data_dir)!r})"


def _account_key(data_dir: Path, database: str | None) -> str:
    """The local enterprise account's key, created on first use."""
    from ..server.accounts import create_account  # noqa: PLC0415
    from ..server.timeutil import utcnow  # noqa: PLC0415
    from ._server import open_store  # noqa: PLC0415

    key_file = data_dir / _KEY_FILE
    if key_file.is_file():
        return key_file.read_text(encoding="ascii").strip()
    settings, store = open_store(data_dir, None, database)
    try:
        _, _, secret = create_account(store, "enterprise", now=utcnow(),
                                      trial_days=settings.tiers["trial"].period_days,
                                      label="embedded verifier (cyberian-prove --verify)")
    finally:
        store.close()
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secret + "\n")
    return secret


def _catalog(spec: Spec, folder: Path) -> Path:
    """A catalog folder holding just this spec, with absolute file paths."""
    placed = spec.with_files(spec.model_path, spec.tokenizer_path)
    (folder / f"{spec.name}.yaml").write_text(placed.to_yaml(), encoding="utf-8")
    return folder


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(_STOP_TIMEOUT)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(_STOP_TIMEOUT)


@contextlib.contextmanager
def embedded_verifier(
    spec: Spec, *, threads: int | None = None, workers: int = 1, data_dir: Path | None = None,
    progress: Callable[[str], None] | None = None, database: str | None = None,
) -> Iterator[Callable[[], EmbeddedVerifier]]:
    """Start the real server for ``spec`` on 127.0.0.1, and stop it when the block exits.

    The server starts in the background: entering the block returns at once,
    and the :class:`EmbeddedVerifier` is produced by calling the yielded
    function, which waits until the server answers ``/health`` -- so the
    caller can prove locally while the verifier boots. A background thread
    watches for readiness, so ``started_seconds`` is the real boot time even
    when nobody was waiting. ``progress`` is told, in one line, that it starts.
    ``database``: a ``postgresql://`` URL for the server (default: the SQLite
    file of its data dir; the benchmarks use it).
    """
    started = time.perf_counter()
    data_dir = data_dir or cache_dir("embedded-verifier")
    data_dir.mkdir(parents=True, exist_ok=True)
    if progress is not None:
        first = "" if (data_dir / _KEY_FILE).is_file() else "; first run: making its account"
        progress(f"starting the embedded verifier on 127.0.0.1 in the background "
                 f"(data in {data_dir}{first})…")
    key = _account_key(data_dir, database)
    state = data_dir / "server.json"
    state.unlink(missing_ok=True)
    log_path = data_dir / "server.log"
    with tempfile.TemporaryDirectory(prefix="cyberian-catalog-") as catalog:
        command = [sys.executable, "-m", "cyberian.cli", "serve", "--host", "127.0.0.1",
                   "--port", "0", "--data-dir", str(data_dir),
                   "--specs-dir", str(_catalog(spec, Path(catalog))), "--no-registration",
                   "--workers", str(workers), *(("--database", database) if database else ())]
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("CYBERIAN_") or k == _CACHE_ENV}  # the same model cache
        env["CYBERIAN_WORKER_THREADS"] = str(threads or int(spec.runtime["intra_op_threads"]))
        with log_path.open("wb") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                       start_new_session=True)
        def watch() -> EmbeddedVerifier:
            url = _wait_ready(process, state, log_path)
            return EmbeddedVerifier(url, key, data_dir, time.perf_counter() - started)

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedded-verifier") as pool:
            ready = pool.submit(watch)
            try:
                yield ready.result
            finally:
                _stop(process)


def _wait_ready(process: subprocess.Popen[bytes], state: Path, log_path: Path) -> str:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
            raise NetworkError("the embedded verifier exited during start-up: "
                               + (" | ".join(tail) or f"exit code {process.returncode}"))
        if state.is_file():
            with contextlib.suppress(ValueError, KeyError, OSError):
                url = f"http://127.0.0.1:{json.loads(state.read_text(encoding='utf-8'))['port']}"
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url + "/health", timeout=2).status_code == 200:
                        return url
        time.sleep(0.05)
    raise NetworkError(f"the embedded verifier did not start within {_START_TIMEOUT:.0f} s "
                       f"(log: {log_path})")
