"""Uploaded models (enterprise): validation, content-addressed storage, records, deletion.

An upload is raw ONNX bytes plus query parameters. The bytes stream to a
temporary file while being hashed; the tokenizer is a catalog model's name
(its tokenizer, ``max_length`` and ``chunk_size`` are used) or the SHA-256 of
a tokenizer the store holds. An executor process then checks the model with
ONNX Runtime (loads, BERT-style inputs, an output of the right rank, finite
rows of the promised width, the full ``max_length``) and writes its CES. Only
then does the file move into the store and the record appear; a rejected
upload leaves nothing behind.

Re-uploading the same bytes under the same name returns the existing model
(200); the same name with other bytes is refused (``model_name_taken``) until the
old model is deleted. Model ids are ``byom-<name>-<8 hex>``, fresh for every
upload, so a deleted model's id never comes back.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from ..spec import installed_engine_version, parse_spec
from .catalog import Catalog
from .errors import ModelInUseError, ModelNameTakenError, bad_request, not_found
from .store import Store
from .store.files import ModelFiles
from .store.jobs import open_job_using
from .store.models import (
    UploadedModel,
    get_upload,
    insert_upload,
    list_uploads,
    live_upload_named,
    mark_deleted,
)
from .uploadspec import UploadParams
from .workers.pool import WorkerPool
from .workers.tasks import TaskFailed, validate_upload

__all__ = ["UPLOAD_NAME", "UploadQuery", "Uploads"]

UPLOAD_NAME: Final = r"^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$"
_HEX64: Final = re.compile(r"^[0-9a-f]{64}$")
_DEFAULT_CHUNK_SIZE: Final = 32
_DEFAULT_MAX_LENGTH: Final = 512


@dataclass(frozen=True)
class UploadQuery:
    """The query parameters of ``POST /models/upload`` (already type-checked)."""

    name: str
    output_dimensions: int
    tokenizer: str
    max_sequence_length: int | None = None
    pooling_strategy: str | None = None
    normalize: bool | None = None
    description: str | None = None


class Uploads:
    """Accepts, lists and deletes uploaded models."""

    def __init__(self, store: Store, files: ModelFiles, catalog: Catalog,
                 pool: WorkerPool) -> None:
        self._store = store
        self._files = files
        self._catalog = catalog
        self._pool = pool

    def _tokenizer(self, account_id: str, given: str) -> tuple[str, int, int]:
        entry = self._catalog.get(given)
        if entry is not None:
            spec = entry.spec
            return spec.tokenizer_sha256, spec.max_length, spec.chunk_size
        sha = given.lower()
        known = self._catalog.tokenizer_hashes() | {
            upload.tokenizer_sha256 for upload in list_uploads(self._store, account_id)}
        if _HEX64.match(sha) and sha in known and self._files.has(sha):
            return sha, _DEFAULT_MAX_LENGTH, _DEFAULT_CHUNK_SIZE
        names = ", ".join(entry.name for entry in self._catalog)
        raise bad_request(f"unknown tokenizer {given!r}: give a catalog model's name "
                          f"({names}) or the SHA-256 of a tokenizer this server holds",
                          field="tokenizer")

    async def _receive(self, body: AsyncIterator[bytes]) -> tuple[Any, str, int]:
        handle, temp = self._files.new_temp()
        digest, size = hashlib.sha256(), 0
        try:
            with handle:
                async for block in body:
                    digest.update(block)
                    handle.write(block)
                    size += len(block)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return temp, digest.hexdigest(), size

    async def upload(self, account_id: str, query: UploadQuery, body: AsyncIterator[bytes],
                     now: datetime) -> tuple[int, dict[str, Any]]:
        """Store and register an upload; returns ``(201 | 200, answer)``."""
        tokenizer_sha, default_length, chunk_size = self._tokenizer(account_id, query.tokenizer)
        temp, sha, size = await self._receive(body)
        try:
            if size == 0:
                raise bad_request("the request body is empty: send the ONNX file's bytes")
            existing = live_upload_named(self._store, account_id, query.name)
            if existing is not None:
                return self._existing(existing, sha)
            params = UploadParams(
                name=query.name, model_sha256=sha, tokenizer_sha256=tokenizer_sha,
                dimensions=query.output_dimensions,
                max_length=query.max_sequence_length or default_length,
                pooling=query.pooling_strategy or "mean",
                normalize=True if query.normalize is None else query.normalize,
                chunk_size=chunk_size, engine_version=installed_engine_version())
            try:
                spec_text = await self._pool.on_executor(
                    validate_upload, params, str(temp), str(self._files.path(tokenizer_sha)))
            except TaskFailed as exc:
                raise bad_request(f"the uploaded model is not usable: {exc.message}",
                                  field="body") from None
            existing = live_upload_named(self._store, account_id, query.name)  # raced meanwhile?
            if existing is not None:
                return self._existing(existing, sha)
            self._files.adopt(temp, sha)
            record = self._insert(account_id, query, sha, size, tokenizer_sha, spec_text, now)
            return 201, record.answer()
        finally:
            temp.unlink(missing_ok=True)

    @staticmethod
    def _existing(existing: UploadedModel, sha: str) -> tuple[int, dict[str, Any]]:
        if existing.sha256 == sha:
            return 200, existing.answer()
        raise ModelNameTakenError(
            f"you already have a model called {existing.name!r} with other bytes "
            f"({existing.id}); delete it first or choose another name", model_id=existing.id)

    def _insert(self, account_id: str, query: UploadQuery, sha: str, size: int,
                tokenizer_sha: str, spec_text: str, now: datetime) -> UploadedModel:
        model_id = f"byom-{query.name}-{secrets.token_hex(4)}"
        insert_upload(self._store, model_id=model_id, account_id=account_id, name=query.name,
                      sha256=sha, size_bytes=size, tokenizer_sha256=tokenizer_sha,
                      spec=parse_spec(spec_text), spec_yaml=spec_text,
                      description=query.description, now=now)
        record = get_upload(self._store, model_id, account_id)
        assert record is not None
        return record

    def delete(self, account_id: str, model_id: str, now: datetime) -> None:
        """Soft-delete the account's upload; refused if it has none or while a job uses it."""
        record = get_upload(self._store, model_id, account_id)
        if record is None:
            raise not_found(f"model {model_id!r}")
        busy = open_job_using(self._store, model_id)
        if busy is not None:
            raise ModelInUseError(f"model {model_id} is used by job {busy}, which has not "
                                  "finished; delete it once the job is done", job_id=busy)
        mark_deleted(self._store, model_id, now)
