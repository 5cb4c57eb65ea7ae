"""Model building: the BERT ONNX builder, recipes, pinned weights and the tiny test model."""

from __future__ import annotations

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
