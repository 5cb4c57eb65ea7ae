"""Accounts and their API keys in the store (used by the routes and the admin commands)."""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .apikeys import hash_api_key, mint_api_key
from .config import TIERS, Tier
from .store import Store
from .timeutil import from_iso, iso

__all__ = [
    "Account",
    "KeyRecord",
    "add_key",
    "create_account",
    "find_key",
    "get_account",
    "list_accounts",
    "list_keys",
    "revoke_key",
    "update_account",
]


@dataclass(frozen=True)
class Account:
    """An account: tier, creation time, trial end and the anchor its quota periods count from."""

    id: str
    tier: Tier
    label: str | None
    created_at: datetime
    trial_ends_at: datetime | None
    period_anchor: datetime

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Account:
        """The account stored in ``row``."""
        return cls(
            id=row["id"],
            tier=row["tier"],
            label=row["label"],
            created_at=from_iso(row["created_at"]),
            trial_ends_at=from_iso(row["trial_ends_at"]) if row["trial_ends_at"] else None,
            period_anchor=from_iso(row["period_anchor"]),
        )


@dataclass(frozen=True)
class KeyRecord:
    """A stored API key: public id, owner, hash, timestamps (never the key itself)."""

    key_id: str
    account_id: str
    key_sha256: str
    created_at: datetime
    revoked_at: datetime | None

    def __repr__(self) -> str:
        return f"KeyRecord(key_id={self.key_id!r}, account_id={self.account_id!r})"

    def public(self) -> dict[str, Any]:
        """The ``/account`` form ``{key_id, created_at, revoked_at}``."""
        return {
            "key_id": self.key_id,
            "created_at": iso(self.created_at),
            "revoked_at": iso(self.revoked_at) if self.revoked_at else None,
        }


def _key_label(tier: Tier) -> str:
    return "trial" if tier == "trial" else "live"


def _check_tier(tier: str) -> Tier:
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r} (known: {', '.join(TIERS)})")
    return tier


def add_key(conn: sqlite3.Connection, account_id: str, tier: Tier,
            now: datetime) -> tuple[str, str]:
    """Mint a key for an account inside a transaction; returns ``(key_id, secret)``."""
    while True:
        minted = mint_api_key(_key_label(tier))
        try:
            conn.execute(
                "INSERT INTO api_keys (key_id, account_id, key_sha256, label, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (minted.key_id, account_id, hash_api_key(minted.secret), _key_label(tier),
                 iso(now)))
        except sqlite3.IntegrityError:  # a key_id collision (72 random bits): mint again
            continue
        return minted.key_id, minted.secret


def create_account(store: Store, tier: str, *, now: datetime, trial_days: int,
                   label: str | None = None) -> tuple[Account, str, str]:
    """A new account with its first key; returns ``(account, key_id, secret)``."""
    checked = _check_tier(tier)
    account_id = f"acct_{secrets.token_hex(8)}"
    trial_ends = now + timedelta(days=trial_days) if checked == "trial" else None
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO accounts (id, tier, label, created_at, trial_ends_at, period_anchor) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (account_id, checked, label, iso(now), iso(trial_ends) if trial_ends else None,
             iso(now)))
        key_id, secret = add_key(conn, account_id, checked, now)
    account = get_account(store, account_id)
    assert account is not None
    return account, key_id, secret


def get_account(store: Store, account_id: str) -> Account | None:
    """The account with this id, or ``None``."""
    row = store.query_one("SELECT * FROM accounts WHERE id = ?", (account_id,))
    return Account.from_row(row) if row is not None else None


def list_accounts(store: Store) -> list[Account]:
    """Every account, oldest first."""
    return [Account.from_row(row)
            for row in store.query("SELECT * FROM accounts ORDER BY created_at, id")]


def update_account(store: Store, account_id: str, *, now: datetime, tier: str | None = None,
                   trial_ends_at: datetime | None = None) -> Account | None:
    """Change an account's tier and/or trial end; a tier change restarts its quota period."""
    account = get_account(store, account_id)
    if account is None:
        return None
    with store.transaction() as conn:
        if tier is not None and tier != account.tier:
            checked = _check_tier(tier)
            conn.execute("UPDATE accounts SET tier = ?, period_anchor = ? WHERE id = ?",
                         (checked, iso(now), account_id))
        if trial_ends_at is not None:
            conn.execute("UPDATE accounts SET trial_ends_at = ? WHERE id = ?",
                         (iso(trial_ends_at), account_id))
    return get_account(store, account_id)


def _key_from_row(row: sqlite3.Row) -> KeyRecord:
    return KeyRecord(
        key_id=row["key_id"],
        account_id=row["account_id"],
        key_sha256=row["key_sha256"],
        created_at=from_iso(row["created_at"]),
        revoked_at=from_iso(row["revoked_at"]) if row["revoked_at"] else None,
    )


def find_key(store: Store, key_id: str) -> KeyRecord | None:
    """The stored key with this public id, or ``None``."""
    row = store.query_one("SELECT * FROM api_keys WHERE key_id = ?", (key_id,))
    return _key_from_row(row) if row is not None else None


def list_keys(store: Store, account_id: str) -> list[KeyRecord]:
    """An account's keys, oldest first (revoked ones included)."""
    rows = store.query("SELECT * FROM api_keys WHERE account_id = ? ORDER BY created_at, key_id",
                       (account_id,))
    return [_key_from_row(row) for row in rows]


def revoke_key(store: Store, key_id: str, *, now: datetime,
               account_id: str | None = None) -> KeyRecord | None:
    """Revoke a key (idempotent: an already revoked key keeps its first revocation time).

    With ``account_id`` only that account's key is found. Returns the key, or
    ``None`` when there is no such key.
    """
    found = find_key(store, key_id)
    if found is None or (account_id is not None and found.account_id != account_id):
        return None
    store.execute("UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                  (iso(now), key_id))
    return find_key(store, key_id)
