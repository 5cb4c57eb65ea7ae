"""A new user's first start: the log names the command that makes the first account, and it works.

Open registration is off by default, so on a fresh data dir the server says
how to make an account; the test runs exactly the command it printed, uses
the key, and checks that a restart with an account says nothing of the kind.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from server_harness import LiveServer, _clean_env

HINT = re.compile(r"no accounts yet: create one with  (cyberian accounts create [^\n]*?)  \(")


def _run_printed(command: str) -> dict[str, str]:
    """Run a printed ``cyberian ...`` command (as ``python -m cyberian.cli``); its text output."""
    argv = shlex.split(command)
    assert argv[0] == "cyberian"
    done = subprocess.run([sys.executable, "-m", "cyberian.cli", *argv[1:]], capture_output=True,
                          text=True, timeout=120, check=True, env=_clean_env({}))
    return dict(line.split(None, 1) for line in done.stdout.splitlines())


def test_first_start_names_the_first_account_command(tmp_path: Path, catalog_dir: Path) -> None:
    server = LiveServer(tmp_path / "data", catalog_dir, {}, ("--workers", "1"),
                        tmp_path / "server.log").start()
    try:
        first_log = server.log()
        found = HINT.search(first_log)
        assert found, first_log
        assert found.group(1) == (f"cyberian accounts create --data-dir {tmp_path / 'data'} "
                                  "--tier enterprise")
        assert "open registration (POST /auth/register) is off" in first_log
        refused = server.client().post("/auth/register")
        assert refused.status_code == 403
        assert refused.json()["error"] == "registration_disabled"

        created = _run_printed(found.group(1))  # exactly what the log told the operator
        assert created["tier"] == "enterprise"
        account = server.client(created["api_key"]).get("/account")
        assert account.status_code == 200
        assert account.json()["tier"] == "enterprise"
        assert created["api_key"] not in server.log()

        server.stop()
        server.start()  # the same data dir, now with an account
        restart_log = server.log()[len(first_log):]
        assert "listening on" in restart_log
        assert "no accounts yet" not in restart_log
        assert "open registration" not in restart_log
    finally:
        server.stop()
