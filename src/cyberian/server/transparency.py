"""The server's transparency log: its key, its origin, signed checkpoints and proofs.

Entries are appended by the store (``store.jobs.store_receipt``); this
module answers for the log as a whole. The log key is an Ed25519 key of its
own, ``<data-dir>/keys/log-<keyid>.pem`` (0600), created on the first start
with the origin its checkpoints name (``log_origin``, default
``cyberian/<first 16 hex of the key id>``); both are then fixed for the
life of the data dir. Checkpoints are signed on request (the latest one is
kept); proofs are computed from every leaf hash up to the size asked for,
which is fine up to about 100,000 entries.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from .. import merkle
from ..signing import PublicKey, SigningKey
from ..tlog import Checkpoint, InclusionProof, LogKey, sign_checkpoint
from .config import ConfigError
from .errors import bad_request, not_found
from .signer import create_key_file, load_key_file
from .store import Store
from .store import log as logstore

__all__ = ["TransparencyLog"]

_log = logging.getLogger("cyberian.server")

_KEY_PREFIX = "log-"
"""The log key's file is ``<data-dir>/keys/log-<keyid>.pem``."""


class TransparencyLog:
    """The log of one data dir: create or load its key, sign checkpoints, make proofs."""

    def __init__(self, keys_dir: Path, store: Store, origin: str | None = None) -> None:
        self._dir = keys_dir
        self._store = store
        self._wanted_origin = origin
        self._key: SigningKey | None = None
        self._origin = ""
        self._latest: tuple[int, str] | None = None

    def ensure(self, now: datetime) -> str:
        """Create the log key on the first start, load it, log any receipt not yet logged;
        returns the origin."""
        record = logstore.log_key(self._store)
        if record is None:
            created = self._create(now)
            _log.info("created the transparency log %s (key %s)", created.origin,
                      created.keyid)
            # replicas starting at once may each create one: the first published wins
            record = logstore.log_key(self._store) or created
        if self._wanted_origin is not None and self._wanted_origin != record.origin:
            raise ConfigError(
                f"log_origin {self._wanted_origin!r} differs from this data dir's log origin "
                f"{record.origin!r}; a log's origin cannot change (unset log_origin)")
        self._key = load_key_file(self._dir, _KEY_PREFIX, record.keyid)
        self._origin = record.origin
        with self._store.transaction() as conn:
            added = logstore.append_missing(conn, now)
        if added:
            _log.info("appended %d receipts signed before the log existed", added)
        return record.origin

    def _create(self, now: datetime) -> logstore.LogKeyRecord:
        records: list[logstore.LogKeyRecord] = []

        def publish(key: SigningKey) -> None:
            origin = self._wanted_origin or f"cyberian/{key.keyid[:16]}"
            records.append(logstore.LogKeyRecord(key.keyid, origin,
                                                 key.public_key.to_base64()))
            logstore.add_log_key(self._store, records[0], now)

        create_key_file(self._dir, _KEY_PREFIX, publish)
        return records[0]

    @property
    def origin(self) -> str:
        """The log's origin: the first line of its checkpoints and its key's name."""
        return self._origin

    @property
    def key(self) -> LogKey:
        """The log's verifier key."""
        if self._key is None:
            raise RuntimeError("no log key: call ensure() first")
        return LogKey.of(self._origin, PublicKey.from_raw(self._key.public_key.raw))

    def published(self) -> dict[str, str]:
        """``{"origin", "key"}``: what ``GET /keys`` says of the log."""
        return {"origin": self._origin, "key": self.key.vkey()}

    def size(self) -> int:
        """How many entries the log has now."""
        return logstore.log_size(self._store)

    def checkpoint_note(self) -> str:
        """The signed note of the checkpoint at the current size."""
        if self._key is None:
            raise RuntimeError("no log key: call ensure() first")
        size = self.size()
        if self._latest is None or self._latest[0] != size:
            root = merkle.root_from_hashes(logstore.leaf_hashes(self._store, size))
            note = sign_checkpoint(Checkpoint(self._origin, size, root), self._key, self._origin)
            self._latest = (size, note)
        return self._latest[1]

    def entry(self, index: int) -> logstore.LogEntry:
        """The entry at ``index`` (not_found past the end)."""
        found = logstore.get_entry(self._store, index) if index < self.size() else None
        if found is None:
            raise not_found(f"log entry {index}")
        return found

    def _size_param(self, size: int | None, name: str = "size") -> int:
        current = self.size()
        if size is None:
            return current
        if size > current:
            raise bad_request(f"{name} {size} is larger than the log ({current} entries)",
                              field=name)
        return size

    def inclusion(self, *, index: int | None, receipt_hash: str | None,
                  size: int | None) -> InclusionProof:
        """The inclusion proof of an entry (by index or receipt hash) at ``size``
        (default: now)."""
        if (index is None) == (receipt_hash is None):
            raise bad_request("give exactly one of index and receipt_hash", field="index")
        if receipt_hash is not None:
            index = logstore.index_of(self._store, receipt_hash)
            if index is None:
                raise not_found("a log entry with this receipt_hash")
        assert index is not None
        tree_size = self._size_param(size)
        if index >= tree_size:
            raise bad_request(f"index {index} is not below the size {tree_size}", field="index")
        hashes = logstore.leaf_hashes(self._store, tree_size)
        proof = merkle.inclusion_proof_from_hashes(hashes, index)
        return InclusionProof(index, tree_size, hashes[index], tuple(proof))

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        """The proof that the log at ``old_size`` is a prefix of the log at ``new_size``
        (empty from size 0 or for equal sizes)."""
        new_size = self._size_param(new_size, "to")
        if old_size > new_size:
            raise bad_request(f"from {old_size} is larger than to {new_size}", field="from")
        if old_size == 0:
            return []
        return merkle.consistency_proof_from_hashes(
            logstore.leaf_hashes(self._store, new_size), old_size)
