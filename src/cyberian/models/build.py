"""Build a recipe's model and tokenizer files, and build them on first use for a spec."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..exceptions import ModelBuildError
from ..spec import Spec
from .recipes import Recipe, find_recipe
from .weights import fetch_weights

__all__ = ["BuiltModel", "build_recipe", "ensure_model_files", "write_atomically"]


@dataclass(frozen=True)
class BuiltModel:
    """The files a build wrote and their SHA-256."""

    model_path: Path
    model_sha256: str
    tokenizer_path: Path
    tokenizer_sha256: str


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            os.fchmod(handle.fileno(), 0o644)  # mkstemp makes 0600; these files are public
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check(what: str, data: bytes, expected: str) -> str:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ModelBuildError(
            f"the built {what} has SHA-256 {actual}, but the recipe pins {expected}: "
            "the build is not reproducible on this machine (check the onnx version)"
        )
    return actual


_BUILDERS: dict[str, tuple[str, str, str]] = {
    # builder name: (module, its version constant, its graph function)
    "bert": ("bert", "BUILDER_VERSION", "build_bert_graph"),
    "bert-int8": ("bert_int8", "INT8_BUILDER_VERSION", "build_bert_int8_graph"),
}


def _graph_builder(recipe: Recipe) -> Callable[..., Any]:
    """The recipe's graph function, once its builder name and version match this cyberian."""
    known = _BUILDERS.get(recipe.builder)
    if known is None:
        raise ModelBuildError(f"recipe {recipe.name} needs builder {recipe.builder!r}; this "
                              f"cyberian has {', '.join(sorted(_BUILDERS))}")
    module = importlib.import_module(f".{known[0]}", __package__)  # imports onnx: only to build
    version = getattr(module, known[1])
    if recipe.builder_version != version:
        raise ModelBuildError(
            f"recipe {recipe.name} needs builder {recipe.builder} v{recipe.builder_version}; "
            f"this cyberian has {recipe.builder} v{version}"
        )
    builder: Callable[..., Any] = getattr(module, known[2])
    return builder


def build_recipe(recipe: Recipe, out_dir: Path, *, weights_dir: Path | None = None) -> BuiltModel:
    """Build ``recipe`` into ``out_dir``; refuses to write files that miss their pins."""
    from safetensors.numpy import load as load_safetensors  # noqa: PLC0415 - only to build

    from .bert import BertConfig, serialize_model  # noqa: PLC0415 - imports onnx: only to build

    build_graph = _graph_builder(recipe)
    files = fetch_weights(recipe.source, folder=weights_dir)
    config = BertConfig.from_hf(json.loads(files["config.json"]))
    graph = build_graph(load_safetensors(files["model.safetensors"]), config, name=recipe.name)
    model_bytes = serialize_model(graph)
    tokenizer_bytes = files["tokenizer.json"]
    model_sha = _check("model", model_bytes, recipe.model.sha256)
    tokenizer_sha = _check("tokenizer", tokenizer_bytes, recipe.tokenizer.sha256)
    model_path = out_dir / recipe.model.file
    tokenizer_path = out_dir / recipe.tokenizer.file
    write_atomically(model_path, model_bytes)
    write_atomically(tokenizer_path, tokenizer_bytes)
    return BuiltModel(model_path, model_sha, tokenizer_path, tokenizer_sha)


def ensure_model_files(spec: Spec, *, weights_dir: Path | None = None) -> BuiltModel | None:
    """Build a spec's missing model/tokenizer files when a shipped recipe produces them.

    Returns what was built, or ``None`` when both files already exist (their
    hashes are checked later, on the very bytes the runtime loads:
    :meth:`Spec.pinned_bytes`) or no recipe makes them.
    """
    model_path, tokenizer_path = spec.model_path, spec.tokenizer_path
    if model_path.is_file() and tokenizer_path.is_file():
        return None
    recipe = find_recipe(model_sha256=spec.model_sha256)
    if recipe is None or recipe.tokenizer.sha256 != spec.tokenizer_sha256:
        return None
    built = build_recipe(recipe, model_path.parent, weights_dir=weights_dir)
    if built.model_path != model_path:
        os.replace(built.model_path, model_path)
    if built.tokenizer_path != tokenizer_path:
        os.replace(built.tokenizer_path, tokenizer_path)
    return BuiltModel(model_path, built.model_sha256, tokenizer_path, built.tokenizer_sha256)
