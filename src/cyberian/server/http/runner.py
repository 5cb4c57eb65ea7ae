"""``cyberian serve``: one uvicorn server on one data dir.

The data dir is locked (``server.lock``, released by the kernel even on
``kill -9``) so two servers never share it. The listening socket is bound
here, so ``--port 0`` works: the bound address is written to
``<data-dir>/server.json`` (with the pid) and printed.
"""

from __future__ import annotations

import fcntl
import json
import logging.config
import os
import signal
import socket
from pathlib import Path

from ...exceptions import CyberianError
from ..config import Settings
from ..logs import log_config

__all__ = ["serve"]

_log = logging.getLogger("cyberian.server")


def _lock(data_dir: Path) -> int:
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / "server.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise CyberianError(f"another cyberian server is using {data_dir}") from None
    return fd


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CyberianError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _exit_quietly(signum: int, _frame: object) -> None:
    raise SystemExit(0)


def serve(settings: Settings) -> None:
    """Run the server until it is stopped (SIGINT / SIGTERM)."""
    import uvicorn  # noqa: PLC0415 - heavy import, only when serving

    from .app import create_app  # noqa: PLC0415

    config = log_config(settings.log_level)
    logging.config.dictConfig(config)
    lock = _lock(settings.data_dir)
    sock = _bind(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    state = settings.data_dir / "server.json"
    state.write_text(json.dumps({"pid": os.getpid(), "host": host, "port": port}) + "\n",
                     encoding="utf-8")
    _log.info("listening on http://%s:%d (data dir %s)", host, port, settings.data_dir)
    # uvicorn re-raises SIGINT/SIGTERM after its graceful shutdown; exit cleanly instead, so
    # the cleanup below runs.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _exit_quietly)
    try:
        server = uvicorn.Server(uvicorn.Config(
            create_app(settings), log_config=config, access_log=True, lifespan="on",
            timeout_graceful_shutdown=10, proxy_headers=False, server_header=False))
        server.run(sockets=[sock])
    finally:
        state.unlink(missing_ok=True)
        sock.close()
        os.close(lock)
