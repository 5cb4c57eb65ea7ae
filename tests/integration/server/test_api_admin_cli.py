"""The admin commands against a live server's data dir: accounts, key revocation, rotation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from server_harness import LiveServer, cli, texts, wait_settled


def test_accounts_create_prints_a_working_key_once(server: LiveServer) -> None:
    made = cli(server, "accounts", "create", "--tier", "enterprise", "--label", "acme")
    lines = dict(line.split(None, 1) for line in made.stdout.splitlines())
    assert lines["tier"] == "enterprise"
    assert "only its hash" in made.stderr
    account = server.client(lines["api_key"]).get("/account").json()
    assert account["account_id"] == lines["account_id"]
    assert account["tier"] == "enterprise"
    listed = json.loads(cli(server, "accounts", "list", "--json").stdout)
    entry = next(row for row in listed["accounts"] if row["account_id"] == lines["account_id"])
    assert entry["label"] == "acme"
    assert entry["keys_active"] == 1
    assert lines["api_key"] not in json.dumps(listed)
    table = cli(server, "accounts", "list").stdout
    assert lines["account_id"] in table
    assert lines["api_key"] not in table


def test_accounts_update_changes_the_tier(server: LiveServer) -> None:
    account = server.account("trial")
    updated = cli(server, "accounts", "update", account.id, "--tier", "enterprise")
    assert "enterprise" in updated.stdout
    assert server.client(account).get("/account").json()["effective_tier"] == "enterprise"
    missing = cli(server, "accounts", "update", "acct_nope", "--tier", "free",
                  check=False)
    assert missing.returncode == 2
    assert missing.stderr.strip() == "error: no account acct_nope"
    bad = cli(server, "accounts", "update", account.id, "--trial-ends-at", "soon",
              check=False)
    assert bad.returncode == 2


def test_keys_revoke_locks_the_key_out_at_once(server: LiveServer) -> None:
    account = server.account()
    assert server.client(account).get("/account").status_code == 200
    first = cli(server, "keys", "revoke", account.key_id)
    assert first.stdout.startswith(f"revoked {account.key_id} (account {account.id})")
    assert server.client(account).get("/account").status_code == 401
    again = cli(server, "keys", "revoke", account.key_id)
    assert again.stdout.startswith("already revoked")
    unknown = cli(server, "keys", "revoke", "nosuchkey123", check=False)
    assert unknown.returncode == 2
    assert "no API key" in unknown.stderr


def test_signing_key_rotation_keeps_old_receipts_valid(server: LiveServer) -> None:
    client = server.client(server.account())
    before = wait_settled(client, client.post(
        "/jobs", json={"model": "tiny", "inputs": texts(3)}).json()["id"])
    old_receipt = client.get(f"/receipts/{before['receipt_id']}").json()
    new_keyid = cli(server, "keys", "rotate-signing").stdout.strip()
    assert new_keyid != old_receipt["issuer"]["keyid"]
    published = [key["keyid"] for key in client.get("/keys").json()["keys"]]
    assert published[0] == new_keyid
    assert old_receipt["issuer"]["keyid"] in published
    assert client.get(f"/receipts/{before['receipt_id']}/verify").json()["valid"] is True
    after = wait_settled(client, client.post(
        "/jobs", json={"model": "tiny", "inputs": texts(3)}).json()["id"])
    new_receipt = client.get(f"/receipts/{after['receipt_id']}").json()
    assert new_receipt["signature"]["keyid"] == new_keyid
    assert client.get(f"/receipts/{after['receipt_id']}/verify").json()["valid"] is True
    key_file = server.data_dir / "keys" / f"{new_keyid}.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_serve_refuses_a_data_dir_in_use_and_bad_settings(server: LiveServer,
                                                          tmp_path: Path) -> None:
    def serve(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cyberian.cli", "serve", "--port", "0",
                               *args], capture_output=True, text=True, timeout=60, check=False)

    busy = serve("--data-dir", str(server.data_dir))
    assert busy.returncode == 2
    assert "another cyberian server is using" in busy.stderr
    config = tmp_path / "bad.yaml"
    config.write_text("tiers:\n  gold: {}\n", encoding="utf-8")
    bad = serve("--data-dir", str(tmp_path / "d"), "--config", str(config))
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: tiers.gold: unknown tier (known: trial, free, enterprise)"
