"""The content-addressed model store: files under ``<data-dir>/models`` named by their SHA-256.

A file is only ever added by copying it while hashing (or by adopting a
temporary file whose hash was taken while it was written), so a name always
matches its content. Temporary files live in ``<data-dir>/tmp``, on the same
filesystem, so adopting one is a rename.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import IO, Final

from ...exceptions import CyberianError

__all__ = ["ModelFiles"]

_BLOCK: Final = 1 << 20


class ModelFiles:
    """Files named by their SHA-256 under one folder."""

    def __init__(self, root: Path, tmp_dir: Path) -> None:
        self.root = root
        self.tmp_dir = tmp_dir
        root.mkdir(parents=True, exist_ok=True)
        tmp_dir.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        """Where the file with this hash lives (it may not exist)."""
        return self.root / sha256

    def has(self, sha256: str) -> bool:
        """Whether the store holds the file with this hash."""
        return self.path(sha256).is_file()

    def new_temp(self) -> tuple[IO[bytes], Path]:
        """An open temporary file inside the store's filesystem, and its path."""
        fd, name = tempfile.mkstemp(prefix="upload-", dir=self.tmp_dir)
        return os.fdopen(fd, "wb"), Path(name)

    def adopt(self, temp: Path, sha256: str) -> Path:
        """Move a temp file whose content hashes to ``sha256`` into place (or drop a duplicate)."""
        target = self.path(sha256)
        if target.is_file():
            temp.unlink(missing_ok=True)
        else:
            temp.chmod(0o644)
            os.replace(temp, target)
        return target

    def add_copy(self, source: Path, sha256: str) -> Path:
        """Copy ``source`` into the store, checking that it hashes to ``sha256``."""
        if self.has(sha256):
            return self.path(sha256)
        handle, temp = self.new_temp()
        digest = hashlib.sha256()
        try:
            with handle, source.open("rb") as reader:
                while block := reader.read(_BLOCK):
                    digest.update(block)
                    handle.write(block)
            if digest.hexdigest() != sha256:
                raise CyberianError(f"{source} hashes to {digest.hexdigest()}, not {sha256}")
            return self.adopt(temp, sha256)
        finally:
            temp.unlink(missing_ok=True)
