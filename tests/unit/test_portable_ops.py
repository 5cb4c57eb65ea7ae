"""The FP32 graph is built, and runs, only from ops measured to be portable across x86-64 FMA."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import onnx
import onnxruntime as ort
import pytest

from cyberian.models.portable_ops import FUSED_FP32_OPS, PORTABLE_FP32_OPS
from cyberian.spec import Spec

_LEVELS = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def _op_types(model: onnx.ModelProto) -> Counter[str]:
    return Counter(node.op_type for node in model.graph.node)


def test_every_allowed_op_says_why() -> None:
    for table in (PORTABLE_FP32_OPS, FUSED_FP32_OPS):
        assert all(len(reason) > 20 for reason in table.values())
    assert not set(PORTABLE_FP32_OPS) & set(FUSED_FP32_OPS)


@pytest.mark.parametrize("forbidden", ["Softmax", "ReduceSum", "ReduceMean", "Tanh"])
def test_ops_that_differ_across_fma_classes_are_not_allowed(forbidden: str) -> None:
    assert forbidden not in PORTABLE_FP32_OPS
    assert forbidden not in FUSED_FP32_OPS


def test_built_graph_uses_only_allowed_ops(tiny_spec: Spec) -> None:
    ops = _op_types(onnx.load(str(tiny_spec.model_path)))
    assert set(ops) <= set(PORTABLE_FP32_OPS), set(ops) - set(PORTABLE_FP32_OPS)
    assert "Softmax" not in ops
    assert ops["ReduceMax"] == ops["Exp"] > 0  # the spelled-out softmax, once per layer


@pytest.mark.parametrize("level", sorted(_LEVELS))
def test_optimised_graph_runs_only_allowed_kernels(tiny_spec: Spec, tmp_path: Path,
                                                   level: str) -> None:
    options = ort.SessionOptions()
    options.graph_optimization_level = _LEVELS[level]
    options.log_severity_level = 3
    options.add_session_config_entry("optimization.enable_gelu_approximation", "0")
    options.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    ort.InferenceSession(str(tiny_spec.model_path), options, providers=["CPUExecutionProvider"])
    ops = set(_op_types(onnx.load(options.optimized_model_filepath)))
    allowed = set(PORTABLE_FP32_OPS) | set(FUSED_FP32_OPS)
    assert ops <= allowed, ops - allowed


@pytest.mark.real_model
def test_shipped_model_uses_only_allowed_ops(real_spec: Spec) -> None:
    model = onnx.load(str(real_spec.model_path), load_external_data=False)
    assert set(_op_types(model)) <= set(PORTABLE_FP32_OPS)
