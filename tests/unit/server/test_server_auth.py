"""API keys: format, key ids, hashing, and authentication against the store."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from cyberian.server.accounts import create_account, revoke_key
from cyberian.server.apikeys import hash_api_key, key_id_of, mint_api_key
from cyberian.server.auth import authenticate
from cyberian.server.errors import ApiProblem
from cyberian.server.store import SqliteStore as Store
from cyberian.server.timeutil import utcnow


def test_minted_keys_have_the_api_md_shape() -> None:
    minted = mint_api_key("live")
    assert re.fullmatch(r"cyb_live_[A-Za-z0-9_-]{43}", minted.secret)
    assert minted.key_id == minted.secret.removeprefix("cyb_live_")[:12]
    assert key_id_of(minted.secret) == minted.key_id
    assert minted.secret not in repr(minted)
    assert mint_api_key("live").secret != minted.secret
    with pytest.raises(ValueError, match="label"):
        mint_api_key("Bad_Label")


def test_key_ids_never_start_with_a_dash() -> None:
    ids = [mint_api_key("live").key_id for _ in range(2000)]
    assert not [key_id for key_id in ids if key_id.startswith("-")]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{12}", key_id) for key_id in ids)
    assert any("-" in key_id for key_id in ids)  # the dash is still in the alphabet


@pytest.mark.parametrize("key", ["", "cyb_live_short", "sk_live_" + "a" * 43,
                                 "cyb__" + "a" * 43, "cyb_live_" + "a" * 42 + "!"])
def test_malformed_keys_have_no_key_id(key: str) -> None:
    assert key_id_of(key) is None


def test_only_the_sha256_is_stored() -> None:
    key = mint_api_key("trial").secret
    assert hash_api_key(key) == hashlib.sha256(key.encode()).hexdigest()


def test_authenticate_accepts_only_the_live_exact_key(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.db")
    try:
        account, key_id, key = create_account(store, "enterprise", now=utcnow(), trial_days=14)
        assert key.startswith("cyb_live_")
        principal = authenticate(store, key)
        assert (principal.account.id, principal.key_id) == (account.id, key_id)
        stored = store.query_one("SELECT key_sha256 FROM api_keys")[0]  # type: ignore[index]
        assert stored == hash_api_key(key)
        tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
        unknown = "cyb_live_" + "Z" * 43
        for presented in (None, "", "nonsense", tampered, unknown):
            with pytest.raises(ApiProblem) as refused:
                authenticate(store, presented)
            assert (refused.value.status, refused.value.code) == (401, "unauthorized")
            assert key not in refused.value.message
        revoke_key(store, key_id, now=utcnow())
        with pytest.raises(ApiProblem, match="revoked"):
            authenticate(store, key)
    finally:
        store.close()
