"""``cyberian accounts``: create, list and update the server's accounts (admin).

``create`` prints the new API key once; only its SHA-256 is stored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ._common import CyberianGroup, fail
from ._server import data_dir_options, open_store

__all__ = ["group"]

_TIERS = click.Choice(["trial", "free", "enterprise"])


@click.group("accounts", cls=CyberianGroup)
def group() -> None:
    """Accounts of the verifier server (works while the server runs)."""


@group.command("create")
@click.option("--tier", type=_TIERS, default="trial", show_default=True)
@click.option("--label", help="A note for the operator (e.g. the customer's name).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@data_dir_options
def create(tier: str, label: str | None, as_json: bool, data_dir: Path | None,
           config: Path | None, database: str | None) -> None:
    """Create an account and print its first API key (shown once, never again)."""
    from ..server.accounts import create_account  # noqa: PLC0415
    from ..server.timeutil import iso, utcnow  # noqa: PLC0415

    settings, store = open_store(data_dir, config, database)
    try:
        account, key_id, secret = create_account(
            store, tier, now=utcnow(), trial_days=settings.tiers["trial"].period_days,
            label=label)
    finally:
        store.close()
    document = {"account_id": account.id, "tier": account.tier, "key_id": key_id,
                "api_key": secret,
                "trial_ends_at": iso(account.trial_ends_at) if account.trial_ends_at else None}
    if as_json:
        click.echo(json.dumps(document))
        return
    for name, value in document.items():
        click.echo(f"{name:<14} {value if value is not None else '-'}")
    click.echo("store the api_key now: the server keeps only its hash and cannot show it again",
               err=True)


def _summaries(data_dir: Path | None, config: Path | None,
               database: str | None) -> list[dict[str, Any]]:
    from ..server.quotas import derive_usage, standing_of  # noqa: PLC0415
    from ..server.store.accounts import list_accounts, list_keys  # noqa: PLC0415
    from ..server.timeutil import iso, utcnow  # noqa: PLC0415

    settings, store = open_store(data_dir, config, database)
    try:
        now, rows = utcnow(), []
        for account in list_accounts(store):
            standing = standing_of(account, settings.tiers, now)
            usage = derive_usage(store, account.id, standing)
            keys = list_keys(store, account.id)
            rows.append({
                "account_id": account.id, "tier": account.tier,
                "effective_tier": standing.effective_tier,
                "subscription_status": standing.subscription_status,
                "label": account.label, "created_at": iso(account.created_at),
                "trial_ends_at": iso(standing.trial_ends_at) if standing.trial_ends_at else None,
                "chunks_consumed_period": usage.period, "chunks_consumed_today": usage.today,
                "keys_active": sum(key.revoked_at is None for key in keys),
                "keys": [key.public() for key in keys],
            })
        return rows
    finally:
        store.close()


@group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@data_dir_options
def list_command(as_json: bool, data_dir: Path | None, config: Path | None,
                 database: str | None) -> None:
    """List accounts: tier, effective tier, usage and active keys."""
    rows = _summaries(data_dir, config, database)
    if as_json:
        click.echo(json.dumps({"accounts": rows}, indent=2))
        return
    click.echo(f"{'ACCOUNT':<22} {'TIER':<10} {'EFFECTIVE':<10} {'STATUS':<13} "
               f"{'PERIOD':>7} {'TODAY':>6} {'KEYS':>4}  LABEL")
    for row in rows:
        click.echo(f"{row['account_id']:<22} {row['tier']:<10} {row['effective_tier']:<10} "
                   f"{row['subscription_status']:<13} {row['chunks_consumed_period']:>7} "
                   f"{row['chunks_consumed_today']:>6} {row['keys_active']:>4}  "
                   f"{row['label'] or ''}")


@group.command("update")
@click.argument("account_id")
@click.option("--tier", type=_TIERS, help="Move the account to this tier (restarts its period).")
@click.option("--trial-ends-at", metavar="WHEN",
              help="New trial end: RFC 3339 UTC (2030-01-31T00:00:00Z) or 'now'.")
@data_dir_options
def update(account_id: str, tier: str | None, trial_ends_at: str | None,
           data_dir: Path | None, config: Path | None, database: str | None) -> None:
    """Change an account's tier or trial end."""
    from ..server.accounts import update_account  # noqa: PLC0415
    from ..server.timeutil import from_iso, utcnow  # noqa: PLC0415

    if tier is None and trial_ends_at is None:
        raise click.UsageError("give --tier and/or --trial-ends-at")
    ends = None
    if trial_ends_at is not None:
        try:
            ends = utcnow() if trial_ends_at == "now" else from_iso(trial_ends_at)
        except ValueError:
            raise click.BadParameter("not an RFC 3339 time or 'now'",
                                     param_hint="--trial-ends-at") from None
    _, store = open_store(data_dir, config, database)
    try:
        account = update_account(store, account_id, now=utcnow(), tier=tier, trial_ends_at=ends)
    finally:
        store.close()
    if account is None:
        fail(f"no account {account_id}")
    click.echo(f"{account.id} tier {account.tier}")
