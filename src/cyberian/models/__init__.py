"""Model building: the BERT ONNX builder, recipes, pinned weights and the tiny test model.

The names below are loaded on first use: the builder needs ``onnx`` (about
0.7 s to import), which running an already-built model never does.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .bert import BUILDER_VERSION, BertConfig, build_bert_graph, serialize_model
    from .build import BuiltModel, build_recipe, ensure_model_files
    from .recipes import Recipe, find_recipe, load_recipes

__all__ = [
    "BUILDER_VERSION",
    "BertConfig",
    "BuiltModel",
    "Recipe",
    "build_bert_graph",
    "build_recipe",
    "ensure_model_files",
    "find_recipe",
    "load_recipes",
    "serialize_model",
]

_HOMES = {
    "BUILDER_VERSION": "bert", "BertConfig": "bert", "build_bert_graph": "bert",
    "serialize_model": "bert", "BuiltModel": "build", "build_recipe": "build",
    "ensure_model_files": "build", "Recipe": "recipes", "find_recipe": "recipes",
    "load_recipes": "recipes",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
