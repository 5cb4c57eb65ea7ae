"""A server's receipt-signing keys fetched without an API key (``GET /keys`` is public).

:func:`fetch_trusted_keys` is for callers that hold no key, such as
``cyberian receipt verify --keys-url``; it runs the very operation the
clients' ``get_keys`` and ``verify_receipt_offline`` run, so the request,
its retries, the error mapping and the document check exist once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from ._constants import KEYS_PATH, KEYS_TIMEOUT
from ._sync import Client

if TYPE_CHECKING:
    from ..signing import PublicKey

__all__ = ["fetch_trusted_keys", "split_keys_url"]


class _KeylessClient(Client):
    """A blocking client that sends no API key: only unauthenticated routes answer it."""

    def __init__(
        self, base_url: str, *, timeout: float, transport: httpx.BaseTransport | None
    ) -> None:
        self._transport = transport
        super().__init__(base_url=base_url, timeout=timeout)

    def _credentials(self, api_key: str | None) -> tuple[httpx.Auth, str]:
        return httpx.Auth(), "none"  # httpx.Auth itself adds nothing to a request

    def _new_http(self, timeout: float | httpx.Timeout | None) -> httpx.Client:
        return httpx.Client(transport=self._transport, **self._http_options(timeout))


def split_keys_url(url: str) -> tuple[str, str]:
    """The server's base URL and the keys path of ``url``, a server's ``/keys`` URL or its
    base URL (which gets ``/keys``); :class:`ValueError` unless it is an http(s) URL."""
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"not an http(s) URL: {url} ({exc})") from None
    if target.scheme not in ("http", "https") or not target.host:
        raise ValueError(f"not an http(s) URL: {url}")
    path = target.raw_path.decode("ascii")
    base = str(target.copy_with(raw_path=b"/", fragment=None)).rstrip("/")
    return base, KEYS_PATH if path in ("", "/") else path


def fetch_trusted_keys(
    url: str, *, transport: httpx.BaseTransport | None = None, timeout: float = KEYS_TIMEOUT
) -> dict[str, PublicKey]:
    """Trusted keys by keyid from the ``GET /keys`` at ``url`` (see :func:`split_keys_url`).

    No API key is sent. Raises :class:`ValueError` for a URL that is not
    http(s), :class:`~cyberian.exceptions.ApiError` (or its subclass
    ``NetworkError``) when the server cannot be reached, answers an error or
    serves an unusable document. ``transport`` replaces httpx's network
    transport (tests pass an ``httpx.MockTransport``).
    """
    base, path = split_keys_url(url)
    with _KeylessClient(base, timeout=timeout, transport=transport) as client:
        return client._run(client._op_trusted_keys(path))
