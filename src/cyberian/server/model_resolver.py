""":class:`ModelResolver`: either request dialect of the work routes, resolved to a spec.

Both ``POST /jobs`` and ``POST /verify`` accept two dialects:

* model dialect: ``{"model": <id>, "inputs": [...]}``; the id is a catalog
  model's CES ``name`` or one of the caller's uploaded models;
* spec dialect: ``{"spec_yaml": <CES text>, "input_texts": [...]}``; the spec
  names its model and tokenizer by SHA-256 only (file paths in it are never
  opened); each hash must be one the store holds for this caller (a catalog
  model, or one of the caller's uploads), and ``runtime.version`` must be the
  installed engine's.

Either way the result is a :class:`Resolved`: the spec reading its files from
the store, the texts, the model id (``None`` for a spec naming no upload) and
the server's own spec of that model, which fixes what the request is billed
(:func:`billed_chunks`): a chunk is the server's chunk of that model, whatever
``chunk_size`` a client's spec chooses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..commitments import chunk_count
from ..exceptions import SpecError
from ..spec import (
    DEFAULT_SPEC_LIMITS,
    Spec,
    SpecLimits,
    installed_engine_version,
    parse_spec,
)
from .catalog import Catalog
from .errors import bad_request, invalid_spec
from .store import Store
from .store.files import ModelFiles
from .store.models import get_upload, list_uploads

__all__ = ["ModelResolver", "Resolved", "WorkBody", "billed_chunks"]


class WorkBody(Protocol):
    """What a job or verify request body carries (either dialect)."""

    model: str | None
    inputs: list[str] | None
    spec_yaml: str | None
    input_texts: list[str] | None

    def model_dump(self, *, exclude_none: bool = ...) -> dict[str, Any]:
        """Every field of the body as plain data (only those set, with ``exclude_none``)."""
        ...


def billed_chunks(texts: int, spec: Spec, reference: Spec) -> int:
    """The chunks ``texts`` texts run under ``spec`` are charged: the server's own chunks.

    ``reference`` is the server's spec of the same model (the catalog's, or the
    upload's): the texts are counted in its ``chunk_size``, and a spec that
    lets texts run longer than the reference's ``max_length`` is charged that
    many times more (``ceil(max_length / reference max_length)`` per text).
    """
    weight = chunk_count(spec.max_length, reference.max_length)
    return chunk_count(texts * weight, reference.chunk_size)


@dataclass(frozen=True)
class Resolved:
    """A request ready to run: spec (files in the store), texts, model id, billing reference."""

    spec: Spec
    texts: Sequence[str]
    model_id: str | None
    reference: Spec

    @property
    def chunk_count(self) -> int:
        """Chunks of the spec's ``chunk_size`` (the unit of commitment and sampling)."""
        return chunk_count(len(self.texts), self.spec.chunk_size)

    @property
    def billed_chunks(self) -> int:
        """The chunks the request is charged (the quota unit): see :func:`billed_chunks`."""
        return billed_chunks(len(self.texts), self.spec, self.reference)


class ModelResolver:
    """Resolves model ids and spec texts against the catalog and the caller's uploads."""

    def __init__(self, store: Store, catalog: Catalog, files: ModelFiles, *,
                 spec_limits: SpecLimits = DEFAULT_SPEC_LIMITS) -> None:
        self._store = store
        self._catalog = catalog
        self._files = files
        self._spec_limits = spec_limits

    def stored(self, spec: Spec) -> Spec:
        """``spec`` reading its files from the store (no permission check: for resumed jobs)."""
        return spec.with_files(self._files.path(spec.model_sha256),
                               self._files.path(spec.tokenizer_sha256))

    def by_model_id(self, model_id: str, account_id: str) -> tuple[Spec, str]:
        """The spec of a catalog model or of the caller's upload; ``invalid_request`` if unknown."""
        entry = self._catalog.get(model_id)
        if entry is not None:
            return entry.spec, entry.name
        upload = get_upload(self._store, model_id, account_id)
        if upload is not None:
            return self.stored(parse_spec(upload.spec_yaml)), upload.id
        raise bad_request(f"unknown model {model_id!r} (GET /models lists the models you can "
                          "use)", field="model")

    def by_spec_text(self, text: str, account_id: str) -> tuple[Spec, str | None, Spec]:
        """A client's CES text, validated and resolved, with the server's spec of its model.

        Refusals are ``invalid_spec`` naming the field.
        """
        try:
            spec = parse_spec(text, limits=self._spec_limits)
        except SpecError as exc:
            raise invalid_spec(exc.message, field=exc.path) from None
        installed = installed_engine_version()
        if str(spec.runtime["version"]) != installed:
            raise invalid_spec(f"runtime.version: the spec pins onnxruntime "
                               f"{spec.runtime['version']}; this server runs {installed}",
                               field="runtime.version")
        uploads = {upload.sha256: upload for upload in list_uploads(self._store, account_id)}
        if spec.model_sha256 not in self._catalog.model_hashes() | set(uploads):
            raise invalid_spec(f"model.sha256: no model {spec.model_sha256} in this server's "
                               "store (use a catalog model's hash or one you uploaded)",
                               field="model.sha256")
        tokenizers = self._catalog.tokenizer_hashes() | {
            upload.tokenizer_sha256 for upload in uploads.values()}
        if spec.tokenizer_sha256 not in tokenizers:
            raise invalid_spec(f"tokenizer.sha256: no tokenizer {spec.tokenizer_sha256} in "
                               "this server's store", field="tokenizer.sha256")
        upload = uploads.get(spec.model_sha256)
        reference = self._catalog.reference_for(spec.model_sha256)
        if reference is None:
            assert upload is not None  # the hash is a catalog model's or an upload's
            reference = parse_spec(upload.spec_yaml)
        if spec.dimensions != reference.dimensions:
            raise invalid_spec(f"output.dimensions: the spec says {spec.dimensions}, but model "
                               f"{spec.model_sha256[:16]}… gives {reference.dimensions} "
                               "dimensions", field="output.dimensions")
        return self.stored(spec), upload.id if upload is not None else None, reference

    def resolve(self, body: WorkBody, account_id: str) -> Resolved:
        """Resolve a request in either dialect (exactly one); ``invalid_request`` otherwise."""
        model_dialect = body.model is not None or body.inputs is not None
        spec_dialect = body.spec_yaml is not None or body.input_texts is not None
        if model_dialect == spec_dialect:
            raise bad_request("give either model and inputs, or spec_yaml and input_texts "
                              "(exactly one dialect)")
        model_id: str | None
        if model_dialect:
            if body.model is None or body.inputs is None:
                missing = "model" if body.model is None else "inputs"
                raise bad_request(f"{missing} is required with the model dialect", field=missing)
            spec, model_id = self.by_model_id(body.model, account_id)
            reference, texts, field = spec, body.inputs, "inputs"
        else:
            if body.spec_yaml is None or body.input_texts is None:
                missing = "spec_yaml" if body.spec_yaml is None else "input_texts"
                raise bad_request(f"{missing} is required with the spec dialect", field=missing)
            spec, model_id, reference = self.by_spec_text(body.spec_yaml, account_id)
            texts, field = body.input_texts, "input_texts"
        if not texts:
            raise bad_request(f"{field} must hold at least one text", field=field)
        return Resolved(spec, texts, model_id, reference)
