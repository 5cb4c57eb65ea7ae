"""TEST-ONLY: rewrite an old transparency-log entry in a stopped server's database.

A real log never does this: ``log_entries`` has triggers that refuse every
UPDATE and DELETE. A test that must show a rewritten log is *caught* (the
monitor) stops the server, calls :func:`rewrite_log_entry` (which drops the
update trigger -- on PostgreSQL: disables it -- rewrites the row, and puts
the trigger back exactly as it was), then starts the server again: its next
checkpoint is not consistent with any taken before. Never point this at a
production database.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cyberian.tlog import entry_bytes, entry_leaf_hash

_TRIGGER = "log_entries_no_update"


def rewrite_log_entry(location: str | Path, index: int, receipt: Mapping[str, Any]) -> None:
    """Replace the bytes of entry ``index`` with ``receipt``'s (the server must be stopped).

    ``location``: the SQLite file or the PostgreSQL URL. The row keeps its
    ``receipt_id`` and ``receipt_hash``, so the server sees nothing missing
    and re-appends nothing: only the old entry changed.
    """
    entry = entry_bytes(receipt)
    if isinstance(location, str):
        import psycopg

        with psycopg.connect(location) as pg, pg.transaction():
            pg.execute(f"ALTER TABLE log_entries DISABLE TRIGGER {_TRIGGER}")
            changed = pg.execute(
                "UPDATE log_entries SET entry = %s, leaf_hash = %s WHERE idx = %s",
                (entry, entry_leaf_hash(entry), index)).rowcount
            assert changed == 1, f"no log entry {index}"
            pg.execute(f"ALTER TABLE log_entries ENABLE TRIGGER {_TRIGGER}")
        return
    conn = sqlite3.connect(location, isolation_level=None)
    try:
        row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?",
                           (_TRIGGER,)).fetchone()
        assert row is not None, "no append-only trigger to lift"
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(f"DROP TRIGGER {_TRIGGER}")
        changed = conn.execute(
            "UPDATE log_entries SET entry = ?, leaf_hash = ? WHERE idx = ?",
            (entry, entry_leaf_hash(entry), index)).rowcount
        assert changed == 1, f"no log entry {index}"
        conn.execute(row[0])
        conn.execute("COMMIT")
    finally:
        conn.close()
