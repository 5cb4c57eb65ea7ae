"""The content-addressed model store and the catalog of shipped models.

Files live under ``<data-dir>/models`` named by their SHA-256 (no extension);
a file is only ever added by copying it while hashing, so a name always
matches its content. At startup every spec in the catalog folder (the shipped
``specs/`` by default) is loaded; its two files are copied into the store
(from next to the spec, or -- when they are not there -- built from the
spec's shipped recipe and pinned weights into the data dir, never into the
possibly read-only package), and the catalog lists it under its CES
``name``. A
spec whose files cannot be produced is left out of the catalog with a
warning instead of stopping the server.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from ..exceptions import CyberianError
from ..models.build import build_recipe
from ..models.recipes import find_recipe
from ..spec import Spec, load_spec

__all__ = ["Catalog", "CatalogEntry", "ModelFiles", "spec_description"]

_log = logging.getLogger("cyberian.server")
_BLOCK: Final = 1 << 20


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


@dataclass(frozen=True)
class CatalogEntry:
    """A shipped model: its spec, reading its files from the store."""

    spec: Spec

    @property
    def name(self) -> str:
        """The model id clients use (the CES ``name``)."""
        return self.spec.name

    def describe(self) -> dict[str, Any]:
        """The ``GET /models`` descriptor."""
        return {"id": self.name, "name": self.name, "source": "catalog",
                **spec_description(self.spec)}


class Catalog:
    """The shipped models, by name (iterated in name order)."""

    def __init__(self, entries: dict[str, CatalogEntry]) -> None:
        self._entries = dict(entries)

    def __iter__(self) -> Iterator[CatalogEntry]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: str) -> CatalogEntry | None:
        """The entry called ``name``, or ``None``."""
        return self._entries.get(name)

    def specs(self) -> list[Spec]:
        """Every catalog spec (what the workers preload)."""
        return [entry.spec for entry in self]

    def model_hashes(self) -> set[str]:
        """SHA-256 of every catalog model."""
        return {entry.spec.model_sha256 for entry in self}

    def tokenizer_hashes(self) -> set[str]:
        """SHA-256 of every catalog tokenizer."""
        return {entry.spec.tokenizer_sha256 for entry in self}

    @classmethod
    def seed(cls, specs_dir: Path, files: ModelFiles) -> Catalog:
        """Load every spec in ``specs_dir`` and put its files in the store."""
        entries: dict[str, CatalogEntry] = {}
        paths = sorted([*specs_dir.glob("*.yaml"), *specs_dir.glob("*.yml")])
        for path in paths:
            try:
                spec = _stored_spec(load_spec(path), files)
            except (CyberianError, OSError) as exc:
                _log.warning("catalog: leaving out %s: %s", path.name, exc)
                continue
            if spec.name in entries:
                _log.warning("catalog: %s repeats the name %s; leaving it out", path.name,
                             spec.name)
                continue
            entries[spec.name] = CatalogEntry(spec)
        ordered = dict(sorted(entries.items()))
        _log.info("catalog: %s", ", ".join(ordered) or "(empty)")
        return cls(ordered)


def _source_files(spec: Spec, build_dir: Path) -> tuple[Path, Path]:
    """The spec's files: next to it, or built from its shipped recipe into ``build_dir``."""
    if spec.model_path.is_file() and spec.tokenizer_path.is_file():
        return spec.model_path, spec.tokenizer_path
    recipe = find_recipe(model_sha256=spec.model_sha256)
    if recipe is None or recipe.tokenizer.sha256 != spec.tokenizer_sha256:
        raise CyberianError(f"{spec.model_path} is missing and no shipped recipe builds it")
    _log.info("catalog: building %s from its pinned weights (first start)", spec.name)
    built = build_recipe(recipe, build_dir)  # never writes next to the (maybe read-only) spec
    return built.model_path, built.tokenizer_path


def _stored_spec(spec: Spec, files: ModelFiles) -> Spec:
    model, tokenizer = spec.model_sha256, spec.tokenizer_sha256
    if not (files.has(model) and files.has(tokenizer)):
        build_dir = Path(tempfile.mkdtemp(prefix="build-", dir=files.tmp_dir))
        try:
            model_file, tokenizer_file = _source_files(spec, build_dir)
            files.add_copy(model_file, model)  # both copies check the pinned hashes
            files.add_copy(tokenizer_file, tokenizer)
        finally:
            shutil.rmtree(build_dir, ignore_errors=True)
    return spec.with_files(files.path(model), files.path(tokenizer))
