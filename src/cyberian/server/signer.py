"""The server's receipt-signing keys under ``<data-dir>/keys``.

Private keys are PKCS#8 PEM files named ``<keyid>.pem``, created with mode
0600 in a 0700 folder; the ``signing_keys`` table lists every public key with
its creation time. The newest key signs; every listed key stays published at
``GET /keys``, so receipts signed before a rotation still verify. Rotation
(``cyberian keys rotate-signing``) is safe while the server runs: the server
looks up the newest key id each time it signs.
"""

from __future__ import annotations

import logging
import stat
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from ..signing import (
    PublicKey,
    SigningKey,
    generate_signing_key,
    load_signing_key,
    save_signing_key,
)
from .config import ConfigError
from .store import Store
from .store import signing_keys as published

__all__ = ["Signer", "create_key_file", "load_key_file"]

_log = logging.getLogger("cyberian.server")


def _key_path(keys_dir: Path, prefix: str, keyid: str) -> Path:
    return keys_dir / f"{prefix}{keyid}.pem"


def create_key_file(keys_dir: Path, prefix: str,
                    publish: Callable[[SigningKey], None]) -> SigningKey:
    """A new key saved as ``<keys_dir>/<prefix><keyid>.pem`` (0600, folder 0700), then
    published with ``publish``; the file is removed again if publishing fails."""
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys_dir.chmod(0o700)
    key = generate_signing_key()
    path = _key_path(keys_dir, prefix, key.keyid)
    save_signing_key(key, path)
    try:
        publish(key)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return key


def load_key_file(keys_dir: Path, prefix: str, keyid: str) -> SigningKey:
    """The key ``<keys_dir>/<prefix><keyid>.pem`` (a warning if others may read it); it must
    be the key ``keyid``. A missing file -- the database names a key this replica does not
    hold -- is a :class:`~cyberian.server.config.ConfigError` saying where to look."""
    path = _key_path(keys_dir, prefix, keyid)
    if not path.is_file():
        raise ConfigError(
            f"the database names the key {keyid}, but {path} does not exist: replicas of one "
            "verifier share one keys folder (point --keys-dir / keys_dir at the folder that "
            f"holds {path.name})")
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        _log.warning("key file %s is readable by others (mode %o); chmod 600 it",
                     path, stat.S_IMODE(mode))
    key = load_signing_key(path)
    if key.keyid != keyid:
        raise RuntimeError(f"{path} does not hold key {keyid}")
    return key


class Signer:
    """Loads, creates and rotates the signing keys of one data dir."""

    def __init__(self, keys_dir: Path, store: Store) -> None:
        self._dir = keys_dir
        self._store = store
        self._loaded: dict[str, SigningKey] = {}

    def _create(self, now: datetime) -> SigningKey:
        key = create_key_file(self._dir, "", lambda key: published.add_signing_key(
            self._store, key.keyid, key.public_key.to_base64(), now))
        self._loaded[key.keyid] = key
        return key

    def ensure(self, now: datetime) -> str:
        """Create the first key if there is none; returns the current key id."""
        keyid = self._current_keyid()
        if keyid is None:
            keyid = self._create(now).keyid
            _log.info("generated receipt-signing key %s", keyid)
        self.current()  # load it now: a missing or unreadable key file fails at startup
        return keyid

    def rotate(self, now: datetime) -> str:
        """Create a new key that signs from now on; older keys stay published."""
        return self._create(now).keyid

    def _current_keyid(self) -> str | None:
        return published.newest_keyid(self._store)

    def current(self) -> SigningKey:
        """The key that signs now (the newest one)."""
        keyid = self._current_keyid()
        if keyid is None:
            raise RuntimeError("no signing key: call ensure() first")
        key = self._loaded.get(keyid)
        if key is None:
            key = load_key_file(self._dir, "", keyid)
            self._loaded[keyid] = key
        return key

    def public_keys(self) -> list[PublicKey]:
        """Every published public key, newest first."""
        return [PublicKey.from_base64(text) for text in published.public_keys(self._store)]
