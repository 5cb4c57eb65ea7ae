"""Accounts and API keys: register, /account, rotate, revoke, authentication, rate limits."""

from __future__ import annotations

import re

from server_harness import LiveServer

from cyberian.server.apikeys import hash_api_key

API_MD_TIERS = {
    "trial": {"period_days": 14, "chunks_per_period": 400, "chunks_per_day": 100,
              "requests_per_minute": 60, "max_chunks_per_request": 100,
              "max_input_texts": 1000, "model_upload": False},
    "free": {"period_days": 30, "chunks_per_period": 100, "chunks_per_day": 25,
             "requests_per_minute": 10, "max_chunks_per_request": 50,
             "max_input_texts": 500, "model_upload": False},
    "enterprise": {"period_days": 30, "chunks_per_period": None, "chunks_per_day": None,
                   "requests_per_minute": 6000, "max_chunks_per_request": 10000,
                   "max_input_texts": 100000, "model_upload": True},
}


def test_register_opens_a_trial_account(open_server: LiveServer) -> None:
    response = open_server.client().post("/auth/register")  # --open-registration
    assert response.status_code == 201
    body = response.json()
    assert re.fullmatch(r"cyb_trial_[A-Za-z0-9_-]{43}", body["api_key"])
    assert body["key_id"] == body["api_key"].removeprefix("cyb_trial_")[:12]
    assert body["tier"] == "trial"
    account = open_server.client(body["api_key"]).get("/account").json()
    assert account["account_id"] == body["account_id"]
    assert account["subscription_status"] == "trialing"
    # only the hash is stored
    stored = open_server.scalar("SELECT key_sha256 FROM api_keys WHERE key_id = ?",
                                (body["key_id"],))
    assert stored == hash_api_key(body["api_key"])
    assert open_server.scalar("SELECT COUNT(*) FROM api_keys WHERE key_sha256 = ?",
                              (body["api_key"],)) == 0
    assert body["api_key"] not in open_server.log()
    assert "open registration is ON" in open_server.log()


def test_registration_is_refused_by_default(server: LiveServer) -> None:
    accounts = server.scalar("SELECT COUNT(*) FROM accounts")
    response = server.client().post("/auth/register")
    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "registration_disabled"
    assert "--open-registration" in body["message"]
    assert "registration_enabled" in body["message"]
    assert body["setting"] == "registration_enabled"
    assert server.scalar("SELECT COUNT(*) FROM accounts") == accounts  # nothing was opened


def test_account_shows_tier_usage_limits_and_keys(server: LiveServer) -> None:
    for tier, limits in API_MD_TIERS.items():
        account = server.account(tier)
        body = server.client(account).get("/account").json()
        assert body["account_id"] == account.id
        assert body["tier"] == body["effective_tier"] == tier
        assert body["chunks_consumed_period"] == body["chunks_consumed_today"] == 0
        assert body["limits"] == limits
        assert body["keys"] == [{"key_id": account.key_id, "created_at": body["created_at"],
                                 "revoked_at": None}]
        assert (body["trial_ends_at"] is None) == (tier != "trial")


def test_rotate_mints_a_second_working_key(server: LiveServer) -> None:
    account = server.account()
    first = server.client(account)
    response = first.post("/auth/keys/rotate")
    assert response.status_code == 201
    new_key = response.json()["api_key"]
    assert new_key != account.key
    second = server.client(new_key)
    assert second.get("/account").json()["account_id"] == account.id
    assert first.get("/account").status_code == 200  # the old key stays valid
    key_ids = [key["key_id"] for key in first.get("/account").json()["keys"]]
    assert key_ids == [account.key_id, response.json()["key_id"]]


def test_revoke_is_idempotent_and_takes_effect_at_once(server: LiveServer) -> None:
    account = server.account()
    client = server.client(account)
    new = client.post("/auth/keys/rotate").json()
    for _ in range(2):
        response = client.post("/auth/keys/revoke", json={"key_id": new["key_id"]})
        assert response.status_code == 200
        assert response.json() == {"revoked": new["key_id"]}
    refused = server.client(new["api_key"]).get("/account")
    assert refused.status_code == 401
    assert refused.json()["error"] == "unauthorized"
    keys = {key["key_id"]: key for key in client.get("/account").json()["keys"]}
    assert keys[new["key_id"]]["revoked_at"] is not None
    assert keys[account.key_id]["revoked_at"] is None


def test_revoking_an_unknown_key_is_404(server: LiveServer) -> None:
    client = server.client(server.account())
    response = client.post("/auth/keys/revoke", json={"key_id": "nosuchkey123"})
    assert response.status_code == 404
    assert client.post("/auth/keys/revoke", json={}).status_code == 400


def test_bad_keys_are_401_and_never_echoed(server: LiveServer) -> None:
    account = server.account()
    wrong_secret = account.key[:-4] + ("AAAA" if not account.key.endswith("AAAA") else "BBBB")
    for headers in ({}, {"Authorization": "Bearer nonsense"},
                    {"Authorization": f"Basic {account.key}"},
                    {"Authorization": f"Bearer {wrong_secret}"}):
        response = server.client(headers=headers).get("/account")
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"
        assert wrong_secret not in response.text
        assert account.key not in response.text


def test_rate_limit_is_429_with_retry_after(server: LiveServer) -> None:
    client = server.client(server.account("free"))  # 10 requests per minute
    statuses = [client.get("/account").status_code for _ in range(10)]
    assert statuses == [200] * 10
    refused = client.get("/account")
    assert refused.status_code == 429
    body = refused.json()
    assert body["error"] == "rate_limited"
    assert 1 <= body["retry_after_sec"] <= 60
    assert refused.headers["Retry-After"] == str(body["retry_after_sec"])
