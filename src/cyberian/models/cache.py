"""The shared model cache: each built model or tokenizer file once per machine, named by SHA-256.

``<cache>/models/<sha256>``, where ``<cache>`` is ``$CYBERIAN_CACHE_DIR``,
else ``$XDG_CACHE_HOME/cyberian``, else ``~/.cache/cyberian``. A build keeps
its files here and hard-links them where they were asked for (the checkout's
``models/``); a missing spec file is linked back from here instead of being
rebuilt; and every server's model store -- the embedded verifier's included
-- links its catalog files from here (:mod:`.linking`). So a model exists
once on disk however many places name it.

Entries this cache writes are read-only (0444), so an in-place write fails
instead of changing a file that stands for a hash. An entry is only handed
out after its bytes hash to its name: a damaged or tampered one is removed
with a warning and counts as absent, so it is rebuilt, never used.

Deleting the folder is always safe: every other name keeps its bytes (the
disk space is freed with the last name) and the next build refills it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from .._files import staged_file, write_atomically
from .._paths import cache_dir
from ..exceptions import FileHashMismatchError
from .linking import link_verified, sha256_file

__all__ = ["ModelCache", "keep_built", "link_missing"]

_log = logging.getLogger("cyberian.models")

_ENTRY_MODE: Final = 0o444


class ModelCache:
    """Files named by their SHA-256 in one folder, shared by everything on this machine."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"ModelCache({str(self.root)!r})"

    @classmethod
    def default(cls) -> ModelCache | None:
        """The cache under cyberian's cache directory, or ``None`` where it cannot be made."""
        try:
            return cls(cache_dir("models"))
        except OSError as exc:
            _log.warning("the shared model cache is unavailable (%s); model files are kept "
                         "only where they are used", exc.strerror or exc)
            return None

    def path(self, sha256: str) -> Path:
        """Where the entry for this hash lives (it may not exist)."""
        return self.root / sha256

    def discard(self, sha256: str) -> None:
        """Remove the entry for this hash, if any (other names keep their bytes)."""
        self.path(sha256).unlink(missing_ok=True)

    def refuse(self, sha256: str, problem: FileHashMismatchError) -> None:
        """Remove an entry whose bytes do not hash to its name, saying so."""
        _log.warning("model cache: refusing %s (%s); removed it", self.path(sha256),
                     problem.message)
        self.discard(sha256)

    def put(self, data: bytes, sha256: str) -> Path:
        """Keep ``data``, which must hash to ``sha256``; returns its entry.

        An intact entry is kept as it is (its other names stay links of it);
        a damaged one is replaced.
        """
        entry = self.path(sha256)
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise FileHashMismatchError(f"the bytes meant for {entry}", sha256, actual)
        if entry.is_file():
            found = sha256_file(entry)
            if found == sha256:
                return entry
            self.refuse(sha256, FileHashMismatchError(str(entry), sha256, found))
        with staged_file(entry) as staged:
            staged.write_bytes(data)
            staged.chmod(_ENTRY_MODE)
        return entry

    def link_to(self, sha256: str, target: Path, *, staging_dir: Path | None = None) -> bool:
        """Give ``target`` the cached bytes of ``sha256`` (hard link; a copy across filesystems).

        ``False`` when the cache has no such entry, or had a damaged one
        (removed, with a warning); ``target`` is then left as it was.
        """
        entry = self.path(sha256)
        if not entry.is_file():
            return False
        try:
            link_verified(entry, target, sha256, staging_dir=staging_dir)
        except FileHashMismatchError as exc:
            self.refuse(sha256, exc)
            return False
        return True


def keep_built(path: Path, data: bytes, sha256: str) -> None:
    """Write a freshly built, pin-checked file at ``path``: kept once in the cache, linked here.

    Without a usable cache the bytes are written straight to ``path``.
    """
    cache = ModelCache.default()
    if cache is not None:
        try:
            entry = cache.put(data, sha256)
        except OSError as exc:
            _log.warning("model cache: cannot keep %s there (%s)", path.name, exc.strerror or exc)
        else:
            link_verified(entry, path, sha256)
            return
    write_atomically(path, data)


def link_missing(files: Iterable[tuple[str, Path]]) -> bool:
    """Link each missing ``(sha256, path)`` from the shared cache; whether all exist afterwards."""
    wanted = [(sha256, path) for sha256, path in files if not path.is_file()]
    cache = ModelCache.default() if wanted else None
    for sha256, path in wanted:
        if cache is not None:
            cache.link_to(sha256, path)
    return all(path.is_file() for _, path in wanted)
