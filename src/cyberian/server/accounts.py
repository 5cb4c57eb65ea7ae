"""Account rules: opening accounts, minting and revoking keys, changing tiers.

Used by the routes and the admin commands; the rows themselves are
:mod:`cyberian.server.store.accounts`'. A trial account's trial ends
``trial_days`` after it opens; a key's label follows its account's tier
(``trial`` or ``live``); a tier change restarts the account's quota period;
revoking a key twice keeps its first revocation time.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from .apikeys import hash_api_key, mint_api_key
from .config import TIERS, Tier
from .store import Connection, Store
from .store import accounts as rows
from .store.accounts import Account, KeyRecord

__all__ = ["add_key", "create_account", "revoke_key", "rotate_key", "update_account"]


def _key_label(tier: Tier) -> str:
    return "trial" if tier == "trial" else "live"


def _check_tier(tier: str) -> Tier:
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r} (known: {', '.join(TIERS)})")
    return tier


def add_key(conn: Connection, account_id: str, tier: Tier,
            now: datetime) -> tuple[str, str]:
    """Mint a key for an account inside a transaction; returns ``(key_id, secret)``."""
    while True:
        minted = mint_api_key(_key_label(tier))
        if rows.insert_key(conn, key_id=minted.key_id, account_id=account_id,
                           key_sha256=hash_api_key(minted.secret), label=_key_label(tier),
                           now=now):
            return minted.key_id, minted.secret
        # else a key_id collision (72 random bits): mint again


def rotate_key(store: Store, account: Account, now: datetime) -> tuple[str, str]:
    """Mint another key for ``account`` (the others stay valid); returns ``(key_id, secret)``."""
    with store.transaction() as conn:
        return add_key(conn, account.id, account.tier, now)


def create_account(store: Store, tier: str, *, now: datetime, trial_days: int,
                   label: str | None = None) -> tuple[Account, str, str]:
    """A new account with its first key; returns ``(account, key_id, secret)``."""
    checked = _check_tier(tier)
    account_id = f"acct_{secrets.token_hex(8)}"
    trial_ends = now + timedelta(days=trial_days) if checked == "trial" else None
    with store.transaction() as conn:
        rows.insert_account(conn, account_id, checked, label=label, now=now,
                            trial_ends_at=trial_ends)
        key_id, secret = add_key(conn, account_id, checked, now)
    account = rows.get_account(store, account_id)
    assert account is not None
    return account, key_id, secret


def update_account(store: Store, account_id: str, *, now: datetime, tier: str | None = None,
                   trial_ends_at: datetime | None = None) -> Account | None:
    """Change an account's tier and/or trial end; a tier change restarts its quota period."""
    account = rows.get_account(store, account_id)
    if account is None:
        return None
    with store.transaction() as conn:
        if tier is not None and tier != account.tier:
            rows.set_tier(conn, account_id, _check_tier(tier), period_anchor=now)
        if trial_ends_at is not None:
            rows.set_trial_end(conn, account_id, trial_ends_at)
    return rows.get_account(store, account_id)


def revoke_key(store: Store, key_id: str, *, now: datetime,
               account_id: str | None = None) -> KeyRecord | None:
    """Revoke a key (idempotent: an already revoked key keeps its first revocation time).

    With ``account_id`` only that account's key is found. Returns the key, or
    ``None`` when there is no such key.
    """
    found = rows.find_key(store, key_id)
    if found is None or (account_id is not None and found.account_id != account_id):
        return None
    rows.mark_key_revoked(store, key_id, now)
    return rows.find_key(store, key_id)
