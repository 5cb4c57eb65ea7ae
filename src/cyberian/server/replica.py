"""This replica's identity: a stable id per data dir, naming it as the driver of its jobs.

The id is made on the first start (``rep_`` and 16 hex digits) and kept in
``<data-dir>/replica.id``; a replica restarted on the same data dir is the
same replica and takes back the jobs it drove at once, while another replica
waits for their claims to expire.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Final

from .._files import write_atomically

__all__ = ["replica_id"]

_FILE: Final = "replica.id"
_ID: Final = re.compile(r"^rep_[0-9a-f]{16}$")


def replica_id(data_dir: Path) -> str:
    """The replica id of ``data_dir`` (created on first use)."""
    path = data_dir / _FILE
    if path.is_file():
        text = path.read_text(encoding="ascii").strip()
        if _ID.match(text):
            return text
    made = f"rep_{secrets.token_hex(8)}"
    write_atomically(path, (made + "\n").encode("ascii"))
    return made
