"""Rate-limit windows in the store (``rate_events``), so every replica counts the same requests.

One row per counted request: its bucket (an account, or a client address for
registrations) and when it came (seconds since the epoch). Counting takes
the bucket's lock, so concurrent requests on any replicas are counted one
after another.
"""

from __future__ import annotations

from .database import Store

__all__ = ["forget_before", "hit"]


def hit(store: Store, bucket: str, limit: int, now: float, window: float) -> float | None:
    """Count a request in ``bucket`` unless ``limit`` were already counted in the last
    ``window`` seconds; ``None`` when counted, else the seconds until one would be."""
    with store.transaction() as conn:
        conn.lock(f"rate:{bucket}")
        conn.execute("DELETE FROM rate_events WHERE bucket = ? AND at <= ?",
                     (bucket, now - window))
        row = conn.execute("SELECT COUNT(*) FROM rate_events WHERE bucket = ?",
                           (bucket,)).fetchone()
        count = int(row[0])
        if count >= limit:
            oldest = conn.execute("SELECT at FROM rate_events WHERE bucket = ? ORDER BY at "
                                  "LIMIT 1 OFFSET ?", (bucket, count - limit)).fetchone()
            return max(0.001, float(oldest[0]) + window - now)
        conn.execute("INSERT INTO rate_events (bucket, at) VALUES (?, ?)", (bucket, now))
        return None


def forget_before(store: Store, moment: float) -> int:
    """Drop every counted request older than ``moment``; how many."""
    return store.execute("DELETE FROM rate_events WHERE at < ?", (moment,))
