"""A pinned file's bytes under a second name without a second copy: a hard link, checked by hash.

A model or tokenizer file reaches another place -- the shared model cache, a
checkout's ``models/``, a server's model store -- as a hard link to the same
inode, so its bytes exist once on disk however many names it has. Only where
the kernel cannot make a hard link (another filesystem, a filesystem without
them, a file this user may not link) is it copied. Never a symbolic link: a
symlink names a path, and a later rebuild at that path would change the
bytes behind a name that stands for a hash; a hard link keeps the inode it
was checked on (a rebuild writes a new file and renames it into place).

Either way the new name appears atomically, and only after the bytes behind
it hashed to the expected SHA-256. Loading a file checks its hash again
(:meth:`cyberian.spec.Spec.pinned_bytes`), so sharing an inode weakens no pin.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
from pathlib import Path
from typing import Final

from ..exceptions import FileHashMismatchError

__all__ = ["link_verified", "sha256_file"]

_BLOCK: Final = 1 << 20
_COPY_MODE: Final = 0o644
_CANNOT_LINK: Final = frozenset({errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP,
                                 errno.EOPNOTSUPP, errno.ENOSYS})
"""``link(2)`` failures after which a copy is made: the names are fine, a link is impossible."""


def sha256_file(path: Path) -> str:
    """The SHA-256 (hex) of a file's bytes."""
    with path.open("rb") as reader:
        return hashlib.file_digest(reader, "sha256").hexdigest()


def _copy_hashing(source: Path, staged: Path) -> str:
    """Copy ``source`` to the new file ``staged``; the SHA-256 of the bytes written."""
    digest = hashlib.sha256()
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _COPY_MODE)
    with os.fdopen(fd, "wb") as writer, source.open("rb") as reader:
        os.fchmod(writer.fileno(), _COPY_MODE)  # the umask does not make a shared file private
        while block := reader.read(_BLOCK):
            digest.update(block)
            writer.write(block)
    return digest.hexdigest()


def link_verified(source: Path, target: Path, sha256: str, *,
                  staging_dir: Path | None = None) -> bool:
    """Make ``target`` name the bytes of ``source`` once they hash to ``sha256``.

    A hard link where one can be made, else a copy (none when ``target``
    already holds those bytes intact); returns whether it is a link.
    ``target`` is replaced atomically, and only after the check: on a
    mismatch :class:`~cyberian.exceptions.FileHashMismatchError` is raised and
    ``target`` is left as it was. ``staging_dir`` (default: ``target``'s
    folder) holds the new name until then; it must be on ``target``'s
    filesystem.
    """
    folder = staging_dir if staging_dir is not None else target.parent
    folder.mkdir(parents=True, exist_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = folder / f".{target.name}.{secrets.token_hex(6)}.staged"
    try:
        try:
            os.link(source, staged)  # follows a symlinked source: the link is to its inode
            linked, actual = True, sha256_file(staged)
        except OSError as exc:
            if exc.errno not in _CANNOT_LINK:
                raise
            if target.is_file() and sha256_file(target) == sha256:
                return False  # an intact copy is there already: copying again adds nothing
            linked, actual = False, _copy_hashing(source, staged)
        if actual != sha256:
            raise FileHashMismatchError(str(source), sha256, actual)
        os.replace(staged, target)  # a no-op when both already name the same inode
    finally:
        staged.unlink(missing_ok=True)
    return linked
