"""``GET /audit``: the receipt audit page (no authentication), under a strict CSP.

The page is :func:`~cyberian.receipts.audit.audit_page_html`, byte for byte
what ``cyberian receipt page`` writes. It is all inline, so the policy allows
inline script and style and nothing else but ``data:`` images and requests
to this server (the page reads ``/keys``). Not in the OpenAPI document: it is
a page for people, not an API operation.
"""

from __future__ import annotations

from functools import cache
from typing import Final

from fastapi import APIRouter, Response

from ....receipts.audit import audit_page_html

__all__ = ["CONTENT_SECURITY_POLICY", "PAGE_HEADERS", "router"]

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
"""The page's Content-Security-Policy: inline code only, no other origin, never framed."""

PAGE_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
"""The security headers every ``GET /audit`` answer carries."""

router = APIRouter(tags=["service"])


@cache
def _page() -> bytes:
    return audit_page_html().encode("utf-8")


@router.get("/audit", include_in_schema=False)
async def audit() -> Response:
    """The self-contained receipt audit page (it verifies in the browser, against ``/keys``)."""
    return Response(_page(), media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)
