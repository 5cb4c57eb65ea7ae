"""The content-addressed model store: files under ``<data-dir>/models`` named by their SHA-256.

A file is only ever added once its bytes hashed to its name: linked from the
shared model cache or another file (a hard link where the filesystem allows
one, else a copy -- :func:`cyberian.models.linking.link_verified`), or by
adopting a temporary file whose hash was taken while it was written. A
catalog file thus shares its inode with the cache and the checkout, so the
same model is on disk once. Temporary files live in ``<data-dir>/tmp``, on
the same filesystem, so adopting one is a rename.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from ...exceptions import FileHashMismatchError
from ...models.cache import ModelCache
from ...models.linking import link_verified, sha256_file

__all__ = ["ModelFiles"]

_log = logging.getLogger("cyberian.server")


class ModelFiles:
    """Files named by their SHA-256 under one folder."""

    def __init__(self, root: Path, tmp_dir: Path, *, cache: ModelCache | None = None) -> None:
        self.root = root
        self.tmp_dir = tmp_dir
        self.cache = cache
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

    def add_link(self, source: Path, sha256: str) -> Path:
        """Store the bytes of ``source`` under ``sha256`` (hard link, else copy), once they match.

        Replaces a stored file of another inode (the same bytes are then kept
        once); raises :class:`~cyberian.exceptions.FileHashMismatchError`,
        storing nothing, when ``source`` hashes to something else.
        """
        target = self.path(sha256)
        link_verified(source, target, sha256, staging_dir=self.tmp_dir)
        return target

    def provide(self, sha256: str, sources: Iterable[Path] = ()) -> bool:
        """Make the store hold the file ``sha256``; whether it does.

        Linked from the shared model cache, else from the first of
        ``sources`` whose bytes match, else the store's own copy if it is
        intact. A candidate whose bytes do not match is refused, with a
        warning (a cache entry is removed, a damaged stored copy too), and
        never stored.
        """
        if self.cache is not None and self.cache.link_to(sha256, self.path(sha256),
                                                         staging_dir=self.tmp_dir):
            return True
        for source in sources:
            if not source.is_file():
                continue
            try:
                self.add_link(source, sha256)
            except FileHashMismatchError as exc:
                _log.warning("model store: refusing %s: %s", source, exc.message)
                continue
            return True
        return self._intact(sha256)

    def _intact(self, sha256: str) -> bool:
        """Whether the stored file hashes to its name; a damaged one is removed."""
        stored = self.path(sha256)
        if not stored.is_file():
            return False
        actual = sha256_file(stored)
        if actual == sha256:
            return True
        _log.warning("model store: %s hashes to %s, not its name; removed it", stored, actual)
        stored.unlink(missing_ok=True)
        return False
