"""Who may read ``GET /metrics``: the ``metrics`` setting, the bind address and a bearer token.

Modes (the ``metrics`` setting):

* ``auto`` (default): gated by ``metrics_token`` when one is set; otherwise
  open on a loopback bind (``127.0.0.0/8``, ``::1``, ``localhost``) and
  refused (403 ``forbidden``) on any other bind address;
* ``open``: anyone who can reach the server;
* ``token``: only ``Authorization: Bearer <metrics_token>`` (401 otherwise);
* ``off``: the route does not exist (404 ``not_found``, as an unknown route).

The rule depends on the address the server binds, not on the client's
address: behind a reverse proxy on the same host every client would look
local. The token is compared in constant time and never logged, echoed in an
error or shown in a repr. An account's API key does not open the route:
metrics are the operator's, not a tenant's.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass, field
from typing import Literal

from pydantic import SecretStr

from .config import Settings
from .errors import ForbiddenError, NotFoundError, UnauthorizedError

__all__ = ["MetricsGate", "is_loopback"]

Rule = Literal["open", "token", "refused", "off"]


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` listens on the loopback interface only."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # another host name: it may resolve to anything


def _bearer(authorization: str | None) -> str | None:
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


@dataclass(frozen=True)
class MetricsGate:
    """The rule ``/metrics`` answers by, and the token it needs (if any)."""

    rule: Rule
    host: str
    token: SecretStr | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> MetricsGate:
        """The gate ``settings`` ask for."""
        token = settings.metrics_token
        mode = settings.metrics
        rule: Rule
        if mode == "auto":
            rule = "token" if token is not None else (
                "open" if is_loopback(settings.host) else "refused")
        else:
            rule = "refused" if mode == "token" and token is None else mode
        return cls(rule, settings.host, token)

    def check(self, authorization: str | None) -> None:
        """Let the request through, or raise the refusal (404, 403 or 401)."""
        if self.rule == "open":
            return
        if self.rule == "off":
            raise NotFoundError("no such route (see /docs)")
        if self.rule == "refused":
            raise ForbiddenError(
                f"/metrics is not served on the non-loopback bind address {self.host}: set "
                "metrics_token (and send it as a Bearer token) or metrics: open")
        assert self.token is not None
        given = _bearer(authorization)
        expected = self.token.get_secret_value().encode()
        if given is None or not hmac.compare_digest(given.encode(), expected):
            raise UnauthorizedError("/metrics needs the metrics token as "
                                    "'Authorization: Bearer <metrics_token>'")
