"""Where cyberian finds its shipped files and keeps its caches.

Shipped specs and model recipes live in the repository's top-level ``specs/``
and ``models/`` folders; a wheel carries copies under ``cyberian/_shipped/``.
The cache (downloaded weights, the embedded verifier's data) lives under
``$CYBERIAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/cyberian``, else
``~/.cache/cyberian``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "shipped_dir"]

_PACKAGE = Path(__file__).resolve().parent


def shipped_dir(kind: str) -> Path:
    """The folder of shipped ``specs`` or ``models`` (wheel copy first, then the checkout)."""
    for candidate in (_PACKAGE / "_shipped" / kind, _PACKAGE.parents[1] / kind):
        if candidate.is_dir():
            return candidate
    return _PACKAGE.parents[1] / kind


def cache_dir(*parts: str) -> Path:
    """A folder under cyberian's cache directory (created on demand)."""
    root = os.environ.get("CYBERIAN_CACHE_DIR")
    if root:
        base = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "cyberian"
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
