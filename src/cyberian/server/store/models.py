"""Uploaded models in the store (the ``models`` table), and how any model is described.

A record is live until it is soft-deleted (``deleted_at``); an account has
at most one live model of a name. The files are in the model store
(:mod:`.files`), named by hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ...spec import Spec, parse_spec
from ..timeutil import from_iso, iso
from .database import Row, Store

__all__ = ["UploadedModel", "get_upload", "insert_upload", "list_uploads", "live_upload_named",
           "mark_deleted", "spec_description"]


def spec_description(spec: Spec) -> dict[str, Any]:
    """The fields every model descriptor shares (catalog entries and uploads)."""
    return {
        "dimensions": spec.dimensions,
        "spec_hash": spec.spec_hash,
        "model_sha256": spec.model_sha256,
        "tokenizer_sha256": spec.tokenizer_sha256,
        "chunk_size": spec.chunk_size,
        "max_length": spec.max_length,
        "pooling": spec.pooling,
        "normalize": spec.normalize,
        "sample_rate": spec.verification["sample_rate"],
        "vaas_block": spec.verification["vaas_block"],
        "engine_version": spec.runtime["version"],
    }


@dataclass(frozen=True)
class UploadedModel:
    """A stored upload record."""

    id: str
    account_id: str
    name: str
    sha256: str
    size_bytes: int
    tokenizer_sha256: str
    spec_yaml: str
    description: str | None
    created_at: datetime
    deleted_at: datetime | None

    @classmethod
    def from_row(cls, row: Row) -> UploadedModel:
        """The record in ``row``."""
        return cls(row["id"], row["account_id"], row["name"], row["sha256"], row["size_bytes"],
                   row["tokenizer_sha256"], row["spec_yaml"], row["description"],
                   from_iso(row["created_at"]),
                   from_iso(row["deleted_at"]) if row["deleted_at"] else None)

    def describe(self) -> dict[str, Any]:
        """The descriptor in ``GET /models`` and ``GET /models/uploads``."""
        return {"id": self.id, "name": self.name, "source": "upload",
                **spec_description(parse_spec(self.spec_yaml)),
                "size_bytes": self.size_bytes, "description": self.description,
                "created_at": iso(self.created_at)}

    def answer(self) -> dict[str, Any]:
        """The ``POST /models/upload`` answer."""
        return {"model_id": self.id, "hash": self.sha256, "size_bytes": self.size_bytes,
                "stored_at": iso(self.created_at), "ready_for_use": True, "name": self.name,
                "spec_hash": parse_spec(self.spec_yaml).spec_hash}


def list_uploads(store: Store, account_id: str) -> list[UploadedModel]:
    """The account's live (not deleted) uploads, oldest first."""
    rows = store.query("SELECT * FROM models WHERE account_id = ? AND deleted_at IS NULL "
                       "ORDER BY created_at, id", (account_id,))
    return [UploadedModel.from_row(row) for row in rows]


def get_upload(store: Store, model_id: str, account_id: str) -> UploadedModel | None:
    """The account's live upload with this id, or ``None``."""
    row = store.query_one("SELECT * FROM models WHERE id = ? AND account_id = ? "
                          "AND deleted_at IS NULL", (model_id, account_id))
    return UploadedModel.from_row(row) if row is not None else None


def live_upload_named(store: Store, account_id: str, name: str) -> UploadedModel | None:
    """The account's live upload called ``name``, or ``None``."""
    row = store.query_one("SELECT * FROM models WHERE account_id = ? AND name = ? "
                          "AND deleted_at IS NULL", (account_id, name))
    return UploadedModel.from_row(row) if row is not None else None


def insert_upload(store: Store, *, model_id: str, account_id: str, name: str, sha256: str,
                  size_bytes: int, tokenizer_sha256: str, spec: Spec, spec_yaml: str,
                  description: str | None, now: datetime) -> None:
    """Insert the record of an accepted upload whose CES is ``spec_yaml``."""
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO models (id, account_id, name, sha256, size_bytes, tokenizer_sha256, "
            "dimensions, spec_hash, spec_yaml, description, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (model_id, account_id, name, sha256, size_bytes, tokenizer_sha256, spec.dimensions,
             spec.spec_hash, spec_yaml, description, iso(now)))


def mark_deleted(store: Store, model_id: str, now: datetime) -> None:
    """Soft-delete an upload: its record stays, no longer live."""
    store.execute("UPDATE models SET deleted_at = ? WHERE id = ?", (iso(now), model_id))
