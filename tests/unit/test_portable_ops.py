"""The FP32 graph is built, and runs, only from ops measured to be portable across x86-64 FMA."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from graph_helpers import OPTIMISATION_LEVELS, op_types, optimised_op_types

from cyberian.models.portable_ops import FUSED_FP32_OPS, PORTABLE_FP32_OPS
from cyberian.spec import Spec


def test_every_allowed_op_says_why() -> None:
    for table in (PORTABLE_FP32_OPS, FUSED_FP32_OPS):
        assert all(len(reason) > 20 for reason in table.values())
    assert not set(PORTABLE_FP32_OPS) & set(FUSED_FP32_OPS)


@pytest.mark.parametrize("forbidden", ["Softmax", "ReduceSum", "ReduceMean", "Tanh"])
def test_ops_that_differ_across_fma_classes_are_not_allowed(forbidden: str) -> None:
    assert forbidden not in PORTABLE_FP32_OPS
    assert forbidden not in FUSED_FP32_OPS


def test_built_graph_uses_only_allowed_ops(tiny_spec: Spec) -> None:
    ops = op_types(onnx.load(str(tiny_spec.model_path)))
    assert set(ops) <= set(PORTABLE_FP32_OPS), set(ops) - set(PORTABLE_FP32_OPS)
    assert "Softmax" not in ops
    assert ops["ReduceMax"] == ops["Exp"] > 0  # the spelled-out softmax, once per layer


@pytest.mark.parametrize("level", sorted(OPTIMISATION_LEVELS))
def test_optimised_graph_runs_only_allowed_kernels(tiny_spec: Spec, tmp_path: Path,
                                                   level: str) -> None:
    ops = optimised_op_types(tiny_spec.model_path, level, tmp_path)
    allowed = set(PORTABLE_FP32_OPS) | set(FUSED_FP32_OPS)
    assert ops <= allowed, ops - allowed


@pytest.mark.real_model
def test_shipped_model_uses_only_allowed_ops(real_spec: Spec) -> None:
    model = onnx.load(str(real_spec.model_path), load_external_data=False)
    assert set(op_types(model)) <= set(PORTABLE_FP32_OPS)
