"""The catalog of shipped models: the specs this server offers to everyone, by name.

At startup every spec in the catalog folder (the shipped ``specs/`` by
default) is loaded; its two files are put in the model store -- hard-linked
from the shared model cache, else from next to the spec, else built from the
spec's shipped recipe and pinned weights (into the cache, never into the
possibly read-only package) -- each only once its bytes hash to its pin, and
the catalog lists it under its CES ``name``. A file whose bytes do not match
is refused, never stored. A spec whose files cannot be produced is left out
of the catalog with a warning instead of stopping the server.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..exceptions import CyberianError
from ..models.build import build_recipe
from ..models.recipes import find_recipe
from ..spec import Spec, load_spec
from .store.files import ModelFiles
from .store.models import spec_description

__all__ = ["Catalog", "CatalogEntry"]

_log = logging.getLogger("cyberian.server")


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

    def reference_for(self, model_sha256: str) -> Spec | None:
        """The catalog spec of this model that bills most per text (smallest chunks), if any."""
        specs = [entry.spec for entry in self if entry.spec.model_sha256 == model_sha256]
        return min(specs, key=lambda spec: (spec.chunk_size, spec.name), default=None)

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


def _build(spec: Spec, build_dir: Path) -> tuple[Path, Path]:
    """The spec's files built from its shipped recipe into ``build_dir`` (and the model cache)."""
    recipe = find_recipe(model_sha256=spec.model_sha256)
    if recipe is None or recipe.tokenizer.sha256 != spec.tokenizer_sha256:
        raise CyberianError(f"no intact copy of {spec.model_path} or {spec.tokenizer_path} "
                            "(missing, or not the pinned bytes) and no shipped recipe builds it")
    _log.info("catalog: building %s from its pinned weights (first start)", spec.name)
    built = build_recipe(recipe, build_dir)  # never writes next to the (maybe read-only) spec
    return built.model_path, built.tokenizer_path


def _stored_spec(spec: Spec, files: ModelFiles) -> Spec:
    model, tokenizer = spec.model_sha256, spec.tokenizer_sha256
    have_model = files.provide(model, [spec.model_path])
    have_tokenizer = files.provide(tokenizer, [spec.tokenizer_path])
    if not (have_model and have_tokenizer):
        build_dir = Path(tempfile.mkdtemp(prefix="build-", dir=files.tmp_dir))
        try:
            model_file, tokenizer_file = _build(spec, build_dir)
            files.add_link(model_file, model)  # both check the pinned hashes
            files.add_link(tokenizer_file, tokenizer)
        finally:
            shutil.rmtree(build_dir, ignore_errors=True)
    return spec.with_files(files.path(model), files.path(tokenizer))
