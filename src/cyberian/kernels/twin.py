"""Find a spec's fused twin: the graph the runtime may load instead of the pinned one.

A twin is trusted only through a shipped recipe: the recipe that produces the
spec's pinned model also pins the twin's SHA-256, and the bytes loaded must
hash to it. The twin lies beside the model (``cyberian models build`` writes
it there) or in the shared model cache.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..models.cache import link_missing
from ..models.recipes import find_recipe
from .library import KernelLibrary, kernel_library, unavailable_reason

__all__ = ["FusedTwin", "find_fused_twin"]


@dataclass(frozen=True)
class FusedTwin:
    """A pinned twin's bytes and the kernel library that runs them."""

    model: bytes
    sha256: str
    library: KernelLibrary

    def describe(self) -> dict[str, Any]:
        """The manifest entry of a run on this twin."""
        return {"fused": True, "twin_sha256": self.sha256,
                "library_sha256": self.library.source_sha256}


def find_fused_twin(model_sha256: str, model_path: Path) -> tuple[FusedTwin | None, str | None]:
    """The usable twin of the pinned model ``model_sha256`` at ``model_path``, or why there is none.

    Returns ``(None, None)`` when no recipe pins a twin for this model (nothing to report),
    ``(None, reason)`` when one is pinned but cannot run here.
    """
    recipe = find_recipe(model_sha256=model_sha256)
    if recipe is None or recipe.fused is None:
        return None, None
    path = model_path.with_name(recipe.fused.file)
    with contextlib.suppress(OSError):  # a read-only model folder: the read below says so
        link_missing([(recipe.fused.sha256, path)])
    library = kernel_library()
    if library is None:
        return None, unavailable_reason()
    try:
        data = path.read_bytes()
    except OSError:
        return None, f"the fused twin {path.name} is not built (run: cyberian models build)"
    if hashlib.sha256(data).hexdigest() != recipe.fused.sha256:
        return None, f"{path.name} does not hash to the recipe's pin (rebuild it)"
    return FusedTwin(data, recipe.fused.sha256, library), None
