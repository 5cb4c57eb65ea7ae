"""UTC timestamps as the server stores and serves them (RFC 3339, microseconds, ``Z``).

One fixed-width format everywhere, so stored timestamps also sort and compare
correctly as text inside SQLite.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

__all__ = ["day_start", "from_iso", "iso", "utcnow"]

_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """``moment`` as RFC 3339 UTC text, e.g. ``2026-01-31T12:00:00.000000Z``."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime(_FORMAT)


def from_iso(text: str) -> datetime:
    """Parse RFC 3339 text (``Z`` or an offset, with or without fractions) to aware UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def day_start(moment: datetime) -> datetime:
    """Midnight UTC of ``moment``'s day."""
    utc = moment.astimezone(UTC)
    return utc.replace(hour=0, minute=0, second=0, microsecond=0)
