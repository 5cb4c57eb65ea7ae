"""Writing output files whole, with the user's normal file mode.

Every file cyberian writes for the user (embeddings, commitments, golden
files, receipts, saved ``/keys`` documents, built model files) is written to
a staged sibling and renamed into place, so a reader sees the old file or the
whole new one, never a part. The staged file is created by the kernel with
mode ``0666`` minus the process umask -- what ``open(path, "w")`` would give
(0644 under the usual umask 022) -- not the 0600 of :func:`tempfile.mkstemp`:
these files are results to share. Private keys are not written here
(:mod:`cyberian.signing` creates them 0600, exclusively).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

__all__ = ["staged_file", "write_atomically"]

_PUBLIC_MODE: Final = 0o666
"""Requested mode of a staged file; the umask takes its bits away, as for any new file."""
_ATTEMPTS: Final = 100


def _create_sibling(path: Path) -> Path:
    """A new, empty, uniquely named sibling of ``path`` (mode 0666 minus the umask)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(_ATTEMPTS):
        candidate = path.with_name(f".{path.name}.{secrets.token_hex(6)}{path.suffix}")
        try:
            os.close(os.open(candidate, flags, _PUBLIC_MODE))
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"no free staging name beside {path}")


@contextmanager
def staged_file(path: Path) -> Iterator[Path]:
    """An empty sibling of ``path`` to write; it replaces ``path`` only if the block succeeds.

    The parent folder is created if needed; on any error the sibling is removed
    and ``path`` is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = _create_sibling(path)
    try:
        yield staged
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    with staged_file(path) as staged:
        staged.write_bytes(data)
