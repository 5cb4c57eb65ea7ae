"""fetch_trusted_keys: the keyless GET /keys that ``cyberian receipt verify --keys-url`` uses."""

from __future__ import annotations

import httpx
import pytest

from cyberian.client._keys import fetch_trusted_keys, split_keys_url
from cyberian.exceptions import ApiError, NetworkError
from cyberian.signing import generate_signing_key, keys_document


@pytest.mark.parametrize(
    ("url", "split"),
    [
        ("https://verifier.test", ("https://verifier.test", "/keys")),
        ("https://verifier.test/", ("https://verifier.test", "/keys")),
        ("http://127.0.0.1:8080/keys", ("http://127.0.0.1:8080", "/keys")),
        (
            "https://verifier.test/pub/keys.json?v=2",
            ("https://verifier.test", "/pub/keys.json?v=2"),
        ),
    ],
)
def test_a_bare_server_url_gets_keys_any_other_path_is_kept(
    url: str, split: tuple[str, str]
) -> None:
    assert split_keys_url(url) == split


@pytest.mark.parametrize("url", ["ftp://verifier.test/keys", "not a url", "http://", ""])
def test_only_http_urls(url: str) -> None:
    with pytest.raises(ValueError, match="not an http"):
        split_keys_url(url)


def test_fetches_and_parses_without_an_api_key() -> None:
    key = generate_signing_key()
    seen: list[httpx.Request] = []

    def serve(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=keys_document([key.public_key]))

    keys = fetch_trusted_keys("https://verifier.test", transport=httpx.MockTransport(serve))
    assert keys == {key.keyid: key.public_key}
    assert [str(request.url) for request in seen] == ["https://verifier.test/keys"]
    assert "authorization" not in seen[0].headers
    assert seen[0].headers["user-agent"].startswith("cyberian-python/")


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (httpx.Response(500, json={"error": "boom"}), "boom"),
        (httpx.Response(200, text="not json"), "not JSON"),
        (httpx.Response(200, json={"keys": []}), "/keys document is unusable"),
    ],
)
def test_unusable_answers_are_api_errors(response: httpx.Response, message: str) -> None:
    with pytest.raises(ApiError, match=message):
        fetch_trusted_keys(
            "https://verifier.test", transport=httpx.MockTransport(lambda _: response)
        )


def test_an_unreachable_server_is_a_network_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(NetworkError, match="GET /keys"):
        fetch_trusted_keys("https://verifier.test", transport=httpx.MockTransport(refuse))
