"""Model recipes: how each shipped model file is built, and the hashes it must come out with.

A recipe (``models/<name>.recipe.json``) names the builder, the pinned source
weights (:class:`~cyberian.models.weights.WeightSource`) and the SHA-256 of
each output file. Building the same recipe on any machine must reproduce
those hashes exactly; a build that does not is refused.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._paths import shipped_dir
from ..exceptions import ModelBuildError
from .weights import WeightSource

__all__ = ["CPU_INDEPENDENT_BUILDERS", "OutputPin", "Recipe", "cpu_independent", "find_recipe",
           "load_recipes"]

CPU_INDEPENDENT_BUILDERS: frozenset[str] = frozenset({"bert-int8"})
"""Builders whose graphs give the same bits on every CPU class (docs/DETERMINISM.md, "The
int8 spec"): exact integer GEMMs and correctly rounded element-wise float operations only."""


@dataclass(frozen=True)
class OutputPin:
    """One file a recipe produces: its file name and pinned SHA-256."""

    file: str
    sha256: str


@dataclass(frozen=True)
class Recipe:
    """How to build one model: builder, source weights and pinned outputs."""

    name: str
    builder: str
    builder_version: str
    source: WeightSource
    model: OutputPin
    tokenizer: OutputPin
    fused: OutputPin | None = None
    """The model's fused twin (:mod:`cyberian.kernels`): the same computation, fewer passes."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recipe:
        """Read a recipe from its JSON mapping."""
        try:
            outputs = data["outputs"]
            return cls(
                name=str(data["name"]),
                builder=str(data["builder"]),
                builder_version=str(data["builder_version"]),
                source=WeightSource.from_dict(data["source"]),
                model=OutputPin(**outputs["model"]),
                tokenizer=OutputPin(**outputs["tokenizer"]),
                fused=OutputPin(**outputs["fused"]) if "fused" in outputs else None,
            )
        except (KeyError, TypeError) as exc:
            raise ModelBuildError(f"malformed recipe {data.get('name')!r}: {exc}") from None

    @property
    def cpu_independent(self) -> bool:
        """Whether the built model gives the same bits on every CPU class."""
        return self.builder in CPU_INDEPENDENT_BUILDERS


def load_recipes(folder: Path | None = None) -> list[Recipe]:
    """Every recipe in ``folder`` (default: the shipped ``models/`` folder), by name."""
    root = folder or shipped_dir("models")
    return [Recipe.from_dict(json.loads(path.read_text(encoding="utf-8")))
            for path in sorted(root.glob("*.recipe.json"))]


def find_recipe(*, name: str | None = None, model_sha256: str | None = None) -> Recipe | None:
    """The shipped recipe with this name (case-insensitive) or producing this model hash."""
    for recipe in load_recipes():
        if name is not None and recipe.name.lower() == name.lower():
            return recipe
        if model_sha256 is not None and recipe.model.sha256 == model_sha256:
            return recipe
    return None


@functools.lru_cache(maxsize=256)  # asked per /verify request; the shipped recipes are fixed
def cpu_independent(model_sha256: str) -> bool:
    """Whether this model is a shipped build that gives the same bits on every CPU class.

    Only a shipped recipe can say so: its builder was measured on every class.
    Any other model (an upload, a hand-made spec) is taken to be bound to the
    CPU class it ran on.
    """
    recipe = find_recipe(model_sha256=model_sha256)
    return recipe is not None and recipe.cpu_independent
