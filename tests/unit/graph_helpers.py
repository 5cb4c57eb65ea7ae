"""What the graph tests look at: op types, before and after ONNX Runtime optimises a model."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import onnx
import onnxruntime as ort

OPTIMISATION_LEVELS = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def op_types(model: onnx.ModelProto) -> Counter[str]:
    """How many nodes of each op type ``model`` has."""
    return Counter(node.op_type for node in model.graph.node)


def optimised_op_types(model_path: Path, level: str, tmp_path: Path) -> set[str]:
    """The op types of ``model_path`` after ONNX Runtime's optimiser at ``level`` (no GELU
    approximation, as every spec runs)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = OPTIMISATION_LEVELS[level]
    options.log_severity_level = 3
    options.add_session_config_entry("optimization.enable_gelu_approximation", "0")
    options.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    return set(op_types(onnx.load(options.optimized_model_filepath)))
