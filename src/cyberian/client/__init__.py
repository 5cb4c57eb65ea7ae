"""HTTP clients of the cyberian verifier API (see ``API.md``).

:class:`Client` blocks, :class:`AsyncClient` awaits; both expose the same
methods, raise the errors of :mod:`cyberian.exceptions`, and are drop-ins for
the released ``cyberian-client`` packages (``Cyberian`` and ``AsyncCyberian``
are aliases kept for them).
"""

from __future__ import annotations

from ._async import AsyncClient
from ._constants import DEFAULT_BASE_URL
from ._responses import JobResult
from ._sync import Client

Cyberian = Client
AsyncCyberian = AsyncClient

__all__ = ["DEFAULT_BASE_URL", "AsyncClient", "AsyncCyberian", "Client", "Cyberian", "JobResult"]
