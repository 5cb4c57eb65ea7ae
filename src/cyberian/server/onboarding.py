"""What a starting server tells its operator: how to make the first account, and who may register.

A fresh data dir has no account, and open registration (``POST
/auth/register``) is off by default, so nobody can use a new server until its
operator makes an account: the start-up log says how, with the real command
for this data dir. While registration is on, every start says so, since
anyone who can reach the port can then open a trial account.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from .config import Settings
from .store import Store
from .store.accounts import has_accounts
from .store.database import redact_url

__all__ = ["first_account_command", "startup_notes"]


def first_account_command(data_dir: Path, database: str | None = None) -> str:
    """The admin command that creates an enterprise account in ``data_dir`` (or in the
    ``database`` URL, whose password is left out: the command then names it as ``***``
    and the operator sets it in PGPASSWORD), shell-quoted."""
    where = ["--data-dir", str(data_dir)] if database is None else [
        "--database", redact_url(database)]
    return shlex.join(["cyberian", "accounts", "create", *where, "--tier", "enterprise"])


def startup_notes(settings: Settings, store: Store) -> list[str]:
    """The lines to log at start-up about accounts and registration (none when all is set)."""
    notes: list[str] = []
    if not has_accounts(store):
        database = settings.database.get_secret_value() if settings.database else None
        command = first_account_command(settings.data_dir, database)
        notes.append(f"no accounts yet: create one with  {command}  (it prints the API key "
                     "once)")
        if not settings.registration_enabled:
            notes.append("open registration (POST /auth/register) is off; start with "
                         "--open-registration (or set registration_enabled: true) to let anyone "
                         "who can reach this server open a trial account")
    if settings.registration_enabled:
        notes.append("open registration is ON: anyone who can reach this server can open a "
                     "trial account (POST /auth/register); --no-registration turns it off")
    return notes
