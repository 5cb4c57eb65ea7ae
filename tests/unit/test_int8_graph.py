"""The int8 graph: only CPU-independent ops, exact integer ranges, and the usual invariances.

The same-bits-on-every-class claim itself is checked under emulation in
tests/integration/test_cross_class.py; here are the properties that make it
true by construction, checked fast on the tiny int8 model.
"""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from graph_helpers import OPTIMISATION_LEVELS, op_types, optimised_op_types
from onnx import TensorProto, helper

from cyberian.bench.crossclass import INT8_GRAPH_CASES
from cyberian.models.bert_int8 import (
    _GELU_CLAMP,
    _GELU_MINIMUM,
    _SIGNED_LEVELS,
    GELU_TAIL,
    _Int8Graph,
    _with_value_bias,
    quantize_weight,
)
from cyberian.models.portable_ops import PORTABLE_FP32_OPS, PORTABLE_INT8_OPS
from cyberian.models.recipes import cpu_independent, find_recipe
from cyberian.runtime import Runtime
from cyberian.spec import Spec, load_spec

TEXTS = ["hello world", "the proof of the model is in the text", "a", "",
         "Numbers 12345 and punctuation!?", "x " * 40, "the the the the", "zz" * 25]

_ARITHMETIC_FREE = {"Gather", "Shape", "Slice", "Cast", "Unsqueeze", "Reshape", "Flatten",
                    "Transpose", "Split", "Concat", "ConstantOfShape", "Neg"}


@pytest.fixture(scope="module")
def tiny_model(tiny_int8_spec: Spec) -> onnx.ModelProto:
    return onnx.load(str(tiny_int8_spec.model_path))


def test_every_int8_op_says_why_and_the_risky_float_ops_are_out() -> None:
    assert all(len(reason) > 10 for reason in PORTABLE_INT8_OPS.values())
    for forbidden in ("MatMul", "Gemm", "Exp", "Erf", "Tanh", "Softmax", "LayerNormalization",
                      "MatMulInteger", "ReduceMean", "Gelu", "FusedMatMul"):
        assert forbidden not in PORTABLE_INT8_OPS


def test_every_arithmetic_op_of_the_int8_graph_was_measured_on_every_class() -> None:
    measured = {case.split()[0] for case in INT8_GRAPH_CASES}
    assert set(PORTABLE_INT8_OPS) - _ARITHMETIC_FREE <= measured


def test_tiny_int8_graph_uses_only_allowed_ops(tiny_model: onnx.ModelProto) -> None:
    ops = op_types(tiny_model)
    assert set(ops) <= set(PORTABLE_INT8_OPS), set(ops) - set(PORTABLE_INT8_OPS)
    assert ops["MatMulIntegerToFloat"] > 0
    assert not set(ops) & {"MatMul", "Gemm", "Exp", "Erf", "LayerNormalization"}


@pytest.mark.parametrize("level", sorted(set(OPTIMISATION_LEVELS) - {"disabled"}))
def test_the_optimiser_adds_no_kernel_at_any_level(tiny_int8_spec: Spec, tmp_path: Path,
                                                    level: str) -> None:
    ops = optimised_op_types(tiny_int8_spec.model_path, level, tmp_path)
    assert ops <= set(PORTABLE_INT8_OPS), ops - set(PORTABLE_INT8_OPS)


def test_integer_operands_stay_in_the_ranges_that_cannot_saturate(
        tiny_model: onnx.ModelProto) -> None:
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in tiny_model.graph.initializer}
    gemms = [n for n in tiny_model.graph.node if n.op_type == "MatMulIntegerToFloat"]
    constant_b = [weights[n.input[1]] for n in gemms if n.input[1] in weights]
    assert constant_b
    assert all(w.dtype == np.int8 and np.abs(w).max() <= 63 for w in constant_b)
    zeros = {int(weights[n.input[4]].reshape(-1)[0]) for n in gemms}
    assert zeros <= {0, 128}
    assert 2 * 255 * 63 < 2 ** 15  # the AVX2 pair-sum bound the ranges buy


def test_weight_quantisation_is_per_column_and_within_half_a_step() -> None:
    rng = np.random.default_rng(1)
    weight = (rng.standard_normal((48, 20)) * rng.uniform(0.01, 3, 20)).astype(np.float32)
    values, scale = quantize_weight(weight)
    assert values.dtype == np.int8
    assert scale.shape == (20,)
    assert np.abs(values).max(axis=0).tolist() == [int(_SIGNED_LEVELS)] * 20
    error = np.abs(values.astype(np.float64) * scale - weight)
    assert (error <= scale * 0.5 * (1 + 1e-6)).all()
    again = quantize_weight(weight.copy())
    assert again[0].tobytes() == values.tobytes()
    assert again[1].tobytes() == scale.tobytes()


def test_gelu_polynomial_is_within_3e_3_and_bounded_below() -> None:
    x = np.linspace(-12.0, 12.0, 48001)
    a = np.minimum(np.abs(x), _GELU_CLAMP)
    tail = sum(c * a ** i for i, c in enumerate(GELU_TAIL))
    approx = np.maximum(x, 0) - tail
    exact = np.array([v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x])
    assert np.abs(approx - exact).max() < 4.1e-3
    assert approx.min() >= -_GELU_MINIMUM  # the bound the GELU-output quantisation relies on
    assert GELU_TAIL[0] == 0.0  # GELU(0) is exactly 0


def _run_exp(values: np.ndarray) -> np.ndarray:  # type: ignore[type-arg]
    g = _Int8Graph()
    out = g.exp_nonpositive("y", "exp")
    g.nodes.append(helper.make_node("Identity", [out], ["e"]))
    graph = helper.make_graph(g.nodes, "exp",
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])],
                              [helper.make_tensor_value_info("e", TensorProto.FLOAT, [None])],
                              initializer=g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    result: np.ndarray = session.run(None, {"y": values})[0]  # type: ignore[type-arg]
    return result


def test_exp_polynomial_is_within_a_fiftieth_of_a_weight_step() -> None:
    z = np.linspace(-6.5, 0.0, 20001)
    e = _run_exp((z / 16).astype(np.float32))
    assert np.abs(255 * (e - np.exp(z))).max() < 0.02
    assert _run_exp(np.array([0.0], np.float32))[0] == 1.0  # the row maximum weighs exactly 255
    masked = _run_exp(np.array([-1e4 / 16, -7 / 16], np.float32))
    assert (np.rint(255 * masked) == 0).all()  # padded keys weigh exactly 0


def test_value_bias_folds_into_the_output_bias_exactly_rounded() -> None:
    rng = np.random.default_rng(2)
    weight = rng.standard_normal((6, 4)).astype(np.float32)
    bias, value_bias = (rng.standard_normal(n).astype(np.float32) for n in (4, 6))
    folded = _with_value_bias(bias, weight, value_bias)
    for j in range(4):
        exact = Fraction(float(bias[j])) + sum(Fraction(float(value_bias[i])) *
                                               Fraction(float(weight[i, j])) for i in range(6))
        assert folded[j] == np.float32(float(exact))


def test_a_text_alone_equals_it_in_any_batch_and_padding(tiny_int8_spec: Spec) -> None:
    runtime = Runtime(tiny_int8_spec)
    encoded = runtime.tokenizer.encode(TEXTS)
    batch = runtime.run_batch(encoded)
    for index, ids in enumerate(encoded):
        alone = runtime.run_batch([ids])
        assert alone.tobytes() == batch[index:index + 1].tobytes(), TEXTS[index]
        padded = runtime.run_batch([ids], pad_to=len(ids) + 9)
        assert padded.tobytes() == alone.tobytes(), TEXTS[index]
    assert np.isfinite(batch).all()


@pytest.mark.parametrize(("threads", "lanes", "budget"), [(1, 1, 64), (2, 1, 512), (2, 2, 128)])
def test_threads_lanes_and_budget_do_not_change_bytes(tiny_int8_spec: Spec, threads: int,
                                                      lanes: int, budget: int) -> None:
    reference = Runtime(tiny_int8_spec, threads=1, lanes=1).embed(TEXTS * 3)
    rows = Runtime(tiny_int8_spec, threads=threads, lanes=lanes,
                   max_batch_tokens=budget).embed(TEXTS * 3)
    assert rows.tobytes() == reference.tobytes()


def test_two_processes_build_and_run_the_same_bytes(tiny_int8_spec_path: Path,
                                                    tmp_path: Path) -> None:
    script = ("import sys, hashlib; from pathlib import Path\n"
              "from cyberian.models.tiny import write_tiny_spec\n"
              "from cyberian.runtime import Runtime\nfrom cyberian.spec import load_spec\n"
              "spec = load_spec(write_tiny_spec(Path(sys.argv[1]), name='tiny-int8', int8=True))\n"
              f"rows = Runtime(spec).embed({TEXTS!r})\n"
              "print(spec.model_sha256, hashlib.sha256(rows.tobytes()).hexdigest())\n")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True,
                         capture_output=True, text=True).stdout.split()
    spec = load_spec(tiny_int8_spec_path)
    assert out == [spec.model_sha256,
                   hashlib.sha256(Runtime(spec).embed(TEXTS).tobytes()).hexdigest()]


def test_only_a_shipped_int8_recipe_claims_every_class(tiny_int8_spec: Spec) -> None:
    int8 = find_recipe(name="all-MiniLM-L6-v2-int8")
    fp32 = find_recipe(name="all-MiniLM-L6-v2")
    assert int8 is not None
    assert fp32 is not None
    assert int8.cpu_independent
    assert cpu_independent(int8.model.sha256)
    assert not fp32.cpu_independent
    assert not cpu_independent(fp32.model.sha256)
    assert not cpu_independent(tiny_int8_spec.model_sha256)  # not a measured shipped build
    assert int8.source == fp32.source
    assert int8.tokenizer == fp32.tokenizer


def test_fp32_and_int8_allow_lists_agree_on_what_moves_no_bits() -> None:
    for op in ("Gather", "Shape", "Reshape", "Transpose", "Split"):
        assert op in PORTABLE_FP32_OPS
        assert op in PORTABLE_INT8_OPS
