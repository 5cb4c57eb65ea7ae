"""Which key and which server: API key and base-URL resolution from arguments or the environment.

The key is checked here and then lives only inside a :class:`BearerAuth`,
whose repr never shows it; what may be printed is :func:`key_label`.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import httpx

from ..exceptions import AuthError
from ._constants import API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL, KEY_PREFIX

__all__ = ["BearerAuth", "configured_base_url", "key_label", "resolve_api_key", "resolve_base_url"]


class BearerAuth(httpx.Auth):
    """Adds ``Authorization: Bearer <key>`` to one request; its repr never shows the key."""

    def __init__(self, key: str) -> None:
        self.__key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Set the Authorization header on ``request``."""
        request.headers["Authorization"] = f"Bearer {self.__key}"
        yield request

    def __repr__(self) -> str:
        return "<BearerAuth [redacted]>"

    def __reduce__(self) -> str | tuple[Any, ...]:
        raise TypeError("a cyberian client holds an API key and is not pickled")


def resolve_api_key(api_key: str | None, *, remedy: str | None = None) -> str:
    """The key to use: ``api_key``, else ``$CYBERIAN_API_KEY``; :class:`AuthError` if unusable.

    ``remedy`` ends the error message (default: how to give the client a key).
    """
    key = (api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")).strip()
    # The message never quotes the key: a near-miss is still a secret.
    if not key.startswith(KEY_PREFIX):
        raise AuthError(
            f"api_key must be a cyberian key (it starts with {KEY_PREFIX}): "
            + (remedy or f"pass Client(api_key=...) or set {API_KEY_ENV}")
        )
    if not (key.isascii() and key.isprintable()) or " " in key:
        raise AuthError("api_key contains characters a cyberian key never has")
    return key


def key_label(key: str) -> str:
    """The public part of a key, ``cyb_<label>_…``, safe to print."""
    parts = key.split("_", 2)
    # split, not rsplit: the random part may itself contain "_".
    return f"{KEY_PREFIX}{parts[1]}_…" if len(parts) == 3 and parts[1] else f"{KEY_PREFIX}…"


def configured_base_url(base_url: str | None) -> str | None:
    """The server URL given as ``base_url`` or ``$CYBERIAN_API_BASE``; ``None`` when neither is."""
    url = base_url or os.environ.get(BASE_URL_ENV)
    return url.rstrip("/") if url else None


def resolve_base_url(base_url: str | None) -> str:
    """The server URL: ``base_url``, else ``$CYBERIAN_API_BASE``, else the local default."""
    configured = configured_base_url(base_url)
    return DEFAULT_BASE_URL if configured is None else configured
