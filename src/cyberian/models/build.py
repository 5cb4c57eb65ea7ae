"""Build a recipe's model and tokenizer files, and build them on first use for a spec."""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..exceptions import ModelBuildError
from ..kernels import kernels_enabled
from ..spec import Spec
from .cache import keep_built, link_missing
from .recipes import Recipe, find_recipe
from .weights import fetch_weights

__all__ = ["BuiltModel", "build_recipe", "ensure_model_files"]

_log = logging.getLogger("cyberian.models")


@dataclass(frozen=True)
class BuiltModel:
    """The files a build wrote and their SHA-256."""

    model_path: Path
    model_sha256: str
    tokenizer_path: Path
    tokenizer_sha256: str
    fused_path: Path | None = None
    """The model's fused twin, when the recipe has one (:mod:`cyberian.kernels`)."""


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


@dataclass(frozen=True)
class _Inputs:
    """What a recipe's graphs are built from: the builder, the weights, their config."""

    build_graph: Callable[..., Any]
    files: dict[str, bytes]
    weights: Any
    config: Any


def _inputs(recipe: Recipe, weights_dir: Path | None,
            progress: Callable[[str], None] | None) -> _Inputs:
    from safetensors.numpy import load as load_safetensors  # noqa: PLC0415 - only to build

    from .bert import BertConfig  # noqa: PLC0415 - imports onnx: only to build

    build_graph = _graph_builder(recipe)
    files = fetch_weights(recipe.source, folder=weights_dir, progress=progress)
    return _Inputs(build_graph, files, load_safetensors(files["model.safetensors"]),
                   BertConfig.from_hf(json.loads(files["config.json"])))


def _build_twin(recipe: Recipe, inputs: _Inputs, out_dir: Path) -> Path | None:
    """Build and keep ``recipe``'s fused twin in ``out_dir`` (``None``: the recipe has none)."""
    from .bert import serialize_model  # noqa: PLC0415 - imports onnx: only to build

    if recipe.fused is None:
        return None
    fused_bytes = serialize_model(inputs.build_graph(inputs.weights, inputs.config,
                                                     name=recipe.name, fused=True))
    fused_path = out_dir / recipe.fused.file
    keep_built(fused_path, fused_bytes, _check("fused twin", fused_bytes, recipe.fused.sha256))
    return fused_path


def build_recipe(recipe: Recipe, out_dir: Path, *, weights_dir: Path | None = None,
                 progress: Callable[[str], None] | None = None) -> BuiltModel:
    """Build ``recipe`` into ``out_dir``; refuses to write files that miss their pins.

    The files are kept once in the shared model cache and hard-linked into
    ``out_dir`` (:func:`cyberian.models.cache.keep_built`).

    ``progress`` is told, in one line each, when the weights are downloaded.
    """
    from .bert import serialize_model  # noqa: PLC0415 - imports onnx: only to build

    inputs = _inputs(recipe, weights_dir, progress)
    model_bytes = serialize_model(inputs.build_graph(inputs.weights, inputs.config,
                                                     name=recipe.name))
    tokenizer_bytes = inputs.files["tokenizer.json"]
    model_sha = _check("model", model_bytes, recipe.model.sha256)
    tokenizer_sha = _check("tokenizer", tokenizer_bytes, recipe.tokenizer.sha256)
    model_path = out_dir / recipe.model.file
    tokenizer_path = out_dir / recipe.tokenizer.file
    keep_built(model_path, model_bytes, model_sha)  # once in the shared cache, linked here
    keep_built(tokenizer_path, tokenizer_bytes, tokenizer_sha)
    del model_bytes
    return BuiltModel(model_path, model_sha, tokenizer_path, tokenizer_sha,
                      _build_twin(recipe, inputs, out_dir))


def ensure_model_files(spec: Spec, *, weights_dir: Path | None = None,
                       progress: Callable[[str], None] | None = None) -> BuiltModel | None:
    """Build a spec's missing model/tokenizer files when a shipped recipe produces them.

    A missing file the shared model cache holds is linked from there
    (:mod:`cyberian.models.cache`) instead of being rebuilt. Returns what was
    built, or ``None`` when both files exist now (their hashes are checked
    later, on the very bytes the runtime loads: :meth:`Spec.pinned_bytes`) or
    no recipe makes them. ``progress`` is told,
    in one line each, that a build starts and when the weights are downloaded.
    """
    model_path, tokenizer_path = spec.model_path, spec.tokenizer_path
    recipe = find_recipe(model_sha256=spec.model_sha256)
    if link_missing([(spec.model_sha256, model_path), (spec.tokenizer_sha256, tokenizer_path)]):
        if recipe is not None:
            _ensure_fused_twin(recipe, model_path.parent, weights_dir, progress)
        return None
    if recipe is None or recipe.tokenizer.sha256 != spec.tokenizer_sha256:
        return None
    if progress is not None:
        source = (f"in {weights_dir}" if weights_dir is not None
                  else f"of {recipe.source.requirement}")
        progress(f"building the pinned model {recipe.name} from the weights {source} "
                 "(first run only, ~5 s)…")
    built = build_recipe(recipe, model_path.parent, weights_dir=weights_dir, progress=progress)
    if built.model_path != model_path:
        os.replace(built.model_path, model_path)
    if built.tokenizer_path != tokenizer_path:
        os.replace(built.tokenizer_path, tokenizer_path)
    return BuiltModel(model_path, built.model_sha256, tokenizer_path, built.tokenizer_sha256,
                      built.fused_path)


def _ensure_fused_twin(recipe: Recipe, folder: Path, weights_dir: Path | None,
                       progress: Callable[[str], None] | None) -> None:
    """Build the recipe's missing fused twin beside its model (an older build made none).

    Never fatal: without the twin the runtime runs the standard graph, the same bits. Not
    tried where it could not be used or kept (kernels turned off, a read-only folder).
    """
    if recipe.fused is None or not kernels_enabled() or not os.access(folder, os.W_OK):
        return
    try:
        if link_missing([(recipe.fused.sha256, folder / recipe.fused.file)]):
            return
    except OSError:
        return
    if progress is not None:
        progress(f"building the fused twin of {recipe.name} (first run only, ~5 s)…")
    try:  # the twin alone: the model and tokenizer are there already
        _build_twin(recipe, _inputs(recipe, weights_dir, progress), folder)
    except (ModelBuildError, OSError) as exc:
        _log.warning("the fused twin of %s was not built (%s); runs use the standard graph, "
                     "the same bits, slower", recipe.name, exc)
