"""The receipt audit page: one self-contained HTML file that verifies a receipt in a browser.

The page (``audit_page.html`` in this package, inline JavaScript, no network
but the serving server's ``/keys``) runs the same checks as
:func:`~cyberian.receipts.check_receipt`. ``cyberian receipt page`` writes it
to a file and ``GET /audit`` serves it; both get it from
:func:`audit_page_html`. Inputs can ride in the URL fragment
(:func:`fragment_url`), which a browser never sends to any server.
"""

from __future__ import annotations

import base64
from importlib.resources import files
from pathlib import Path
from typing import Final
from urllib.parse import urlencode

__all__ = ["PAGE_RESOURCE", "audit_page_html", "b64url", "fragment", "fragment_url"]

PAGE_RESOURCE: Final = "audit_page.html"
"""The page's file name inside the ``cyberian.receipts`` package."""


def audit_page_html() -> str:
    """The audit page's HTML, exactly as shipped in the package."""
    return (files("cyberian.receipts") / PAGE_RESOURCE).read_text(encoding="utf-8")


def b64url(data: bytes) -> str:
    """``data`` as base64url (RFC 4648 §5) without ``=`` padding, as a fragment carries it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def fragment(receipt_bytes: bytes | None = None, keys_bytes: bytes | None = None) -> str:
    """The fragment (without ``#``) ``receipt=<b64url>&keys=<b64url>`` of the inputs given."""
    fields = {"receipt": receipt_bytes, "keys": keys_bytes}
    return urlencode({name: b64url(data) for name, data in fields.items() if data is not None})


def fragment_url(page_path: Path | str, receipt_bytes: bytes | None = None,
                 keys_bytes: bytes | None = None) -> str:
    """The ``file://`` URL that opens the page at ``page_path`` with these inputs loaded.

    Either input may be left out (the page then asks for it); with neither the
    URL has no fragment.
    """
    url = Path(page_path).resolve().as_uri()
    carried = fragment(receipt_bytes, keys_bytes)
    return f"{url}#{carried}" if carried else url
