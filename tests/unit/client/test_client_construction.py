"""Construction, configuration, lifecycle and key hygiene of Client / AsyncClient."""

from __future__ import annotations

import asyncio
import logging
import pickle

import httpx
import pytest
from client_fakes import KEY, SECRET, Harness, Twin, fail, reply

from cyberian.client import DEFAULT_BASE_URL, AsyncClient, Client
from cyberian.exceptions import AuthError, NetworkError


def _close(client: Client | AsyncClient) -> None:
    if isinstance(client, AsyncClient):
        asyncio.run(client.close())
    else:
        client.close()


class _Construction(Twin):
    def test_key_from_argument_is_sent_as_bearer(self, h: Harness) -> None:
        h.server.add("GET", "/account", reply(json={"tier": "trial"}))
        assert h.call("get_account") == {"tier": "trial"}
        assert h.last.headers["authorization"] == f"Bearer {KEY}"

    def test_key_falls_back_to_environment(
        self, h: Harness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        env_key = "cyb_env_" + "e" * 40
        monkeypatch.setenv("CYBERIAN_API_KEY", env_key)
        client = h.new_client(None)
        h.server.add("GET", "/account", reply(json={}))
        h.call("get_account", client=client)
        assert h.last.headers["authorization"] == f"Bearer {env_key}"

    def test_explicit_key_wins_over_environment(
        self, h: Harness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("CYBERIAN_API_KEY", "cyb_env_" + "e" * 40)
        client = h.new_client(KEY)
        h.server.add("GET", "/account", reply(json={}))
        h.call("get_account", client=client)
        assert h.last.headers["authorization"] == f"Bearer {KEY}"

    def test_surrounding_whitespace_is_stripped(self, h: Harness) -> None:
        client = h.new_client(f"  {KEY}\n")
        h.server.add("GET", "/account", reply(json={}))
        h.call("get_account", client=client)
        assert h.last.headers["authorization"] == f"Bearer {KEY}"

    @pytest.mark.parametrize(
        "bad", [None, "", "sk_live_" + "x" * 40, "CYB_live_" + "x" * 40, "cyb_live_a b", "cyb_é"]
    )
    def test_missing_or_malformed_key_raises_auth_error(self, h: Harness, bad: str | None) -> None:
        with pytest.raises(AuthError) as info:
            h.client_cls(bad, http_client=h.http)
        if bad:
            assert bad.strip() not in str(info.value)
        assert "CYBERIAN_API_KEY" in str(info.value) or "characters" in str(info.value)

    def test_injected_client_keeps_its_base_url_and_headers(self, h: Harness) -> None:
        http = h.new_http(base_url="http://other.test/prefix", headers={"X-Team": "blue"})
        client = h.new_client(http_client=http, base_url="http://ignored.test")
        h.server.add("GET", "/prefix/models", reply(json={"models": [{"id": "m"}]}))
        assert h.call("list_models", client=client) == [{"id": "m"}]
        assert str(h.last.url) == "http://other.test/prefix/models"
        assert h.last.headers["x-team"] == "blue"
        assert client.base_url == "http://other.test/prefix"

    def test_legacy_private_http_client_keyword(self, h: Harness) -> None:
        client = h.client_cls(KEY, _http_client=h.http)
        h.wire(client)
        h.server.add("GET", "/health", reply(json={"ok": True}))
        assert h.call("health", client=client) == {"ok": True}
        assert h.last.url.host == "verifier.test"

    def test_both_http_client_keywords_is_an_error(self, h: Harness) -> None:
        with pytest.raises(TypeError, match="not both"):
            h.client_cls(KEY, http_client=h.http, _http_client=h.http)

    def test_http_client_of_the_wrong_flavour_is_an_error(self, h: Harness) -> None:
        other: httpx.Client | httpx.AsyncClient
        other = httpx.Client() if h.is_async else httpx.AsyncClient()
        try:
            with pytest.raises(TypeError, match="needs an httpx"):
                h.client_cls(KEY, http_client=other)  # type: ignore[arg-type]
        finally:
            if isinstance(other, httpx.Client):
                other.close()
            else:
                asyncio.run(other.aclose())

    def test_injected_client_without_base_url_gets_ours(self, h: Harness) -> None:
        http = h.new_http(base_url="")
        client = h.new_client(http_client=http, base_url="http://mine.test:9000/")
        h.server.add("GET", "/health", reply(json={"ok": True}))
        h.call("health", client=client)
        assert str(h.last.url) == "http://mine.test:9000/health"

    def test_injected_client_is_never_closed(self, h: Harness) -> None:
        _close(h.client)
        assert not h.http.is_closed

    def test_own_client_is_closed(self, h: Harness) -> None:
        client = h.client_cls(KEY)
        assert not client._http.is_closed
        _close(client)
        assert client._http.is_closed

    def test_context_manager_closes_own_client(self, h: Harness) -> None:
        if h.is_async:

            async def use() -> httpx.AsyncClient:
                async with AsyncClient(KEY) as async_client:
                    assert isinstance(async_client, AsyncClient)
                    return async_client._http

            http: httpx.Client | httpx.AsyncClient = asyncio.run(use())
        else:
            with Client(KEY) as client:
                assert isinstance(client, Client)
                http = client._http
        assert http.is_closed

    def test_base_url_argument_environment_and_default(
        self, h: Harness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        clients = [h.client_cls(KEY)]
        monkeypatch.setenv("CYBERIAN_API_BASE", "http://from-env.test:1234/")
        clients.append(h.client_cls(KEY))
        clients.append(h.client_cls(KEY, base_url="http://explicit.test/"))
        try:
            assert [c.base_url for c in clients] == [
                DEFAULT_BASE_URL,
                "http://from-env.test:1234",
                "http://explicit.test",
            ]
            assert DEFAULT_BASE_URL == "http://127.0.0.1:8080"
        finally:
            for client in clients:
                _close(client)

    def test_own_client_timeout_and_user_agent(self, h: Harness) -> None:
        client = h.client_cls(KEY, timeout=12.5)
        try:
            assert client._http.timeout.read == 12.5
            assert client._http.headers["user-agent"].startswith("cyberian-python/")
        finally:
            _close(client)

    def test_negative_retry_settings_are_rejected(self, h: Harness) -> None:
        with pytest.raises(ValueError, match="max_retries"):
            h.client_cls(KEY, http_client=h.http, max_retries=-1)
        with pytest.raises(ValueError, match="max_retry_wait"):
            h.client_cls(KEY, http_client=h.http, max_retry_wait=-1)


class _KeyHygiene(Twin):
    def test_repr_and_str_show_only_the_label(self, h: Harness) -> None:
        name = h.client_cls.__name__
        assert repr(h.client) == f"{name}(api_key='cyb_test_…')"
        assert str(h.client) == repr(h.client)
        # The released clients' rsplit("_") showed the random part up to its last "_".
        assert SECRET.split("_")[0] not in repr(h.client)

    def test_key_without_label_shows_only_the_prefix(self, h: Harness) -> None:
        client = h.new_client("cyb_" + "z" * 44)
        assert repr(client) == f"{h.client_cls.__name__}(api_key='cyb_…')"

    def test_key_is_not_in_client_state_or_shared_headers(self, h: Harness) -> None:
        own = h.client_cls(KEY)
        try:
            for client in (h.client, own):
                assert "authorization" not in client._http.headers
                assert SECRET not in repr(vars(client))
                assert SECRET not in repr(client._http.headers)
        finally:
            _close(own)

    def test_key_is_sent_per_request_and_not_on_public_routes(self, h: Harness) -> None:
        h.server.add("GET", "/health", reply(json={"ok": True}))
        h.server.add("GET", "/keys", reply(json={"keys": []}))
        h.server.add("GET", "/account", reply(json={}))
        h.call("health")
        h.call("get_keys")
        h.call("get_account")
        assert [("authorization" in r.headers) for r in h.sent] == [False, False, True]

    def test_key_is_not_in_http_errors(self, h: Harness) -> None:
        h.server.add("GET", "/account", reply(401, {"error": "unauthorized", "message": "bad key"}))
        with pytest.raises(AuthError) as info:
            h.call("get_account")
        assert SECRET not in f"{info.value} {info.value!r} {info.value.body}"

    def test_network_error_does_not_chain_to_the_request(self, h: Harness) -> None:
        client = h.new_client(max_retries=0)
        h.server.add("GET", "/account", fail(httpx.ConnectError))
        with pytest.raises(NetworkError) as info:
            h.call("get_account", client=client)
        error = info.value
        assert "ConnectError" in str(error)
        assert SECRET not in f"{error} {error!r}"
        assert error.__cause__ is None
        assert error.__context__ is None

    def test_key_is_not_logged(self, h: Harness, caplog: pytest.LogCaptureFixture) -> None:
        h.server.add("GET", "/account", reply(503, {"error": "service_busy"}), reply(json={}))
        with caplog.at_level(logging.DEBUG):
            h.call("get_account")
        assert "retrying GET /account" in caplog.text
        assert SECRET not in caplog.text

    def test_key_cannot_leak_through_pickle(self, h: Harness) -> None:
        for obj in (h.client, h.client._auth):
            with pytest.raises(TypeError, match="API key") as info:
                pickle.dumps(obj)
            assert SECRET not in str(info.value)


class TestConstructionSync(_Construction):
    mode = "sync"


class TestConstructionAsync(_Construction):
    mode = "async"


class TestKeyHygieneSync(_KeyHygiene):
    mode = "sync"


class TestKeyHygieneAsync(_KeyHygiene):
    mode = "async"
