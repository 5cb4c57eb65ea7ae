"""The fused int8 kernels: the standard graph's bytes, fewer passes, clear errors, a safe fallback.

The fused twin is checked against the standard int8 graph on the tiny model
(every kernel, batches of one, padding, threads); the shipped model's twin in
tests/integration/test_real_int8.py, and on every emulated CPU class in
tests/integration/test_cross_class.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from graph_helpers import op_types
from onnx import TensorProto, helper

from cyberian.cli import main
from cyberian.kernels import KERNEL_DOMAIN, KERNEL_OPS, KernelLibrary, kernel_library
from cyberian.models.bert import serialize_model
from cyberian.models.bert_int8 import build_bert_int8_graph
from cyberian.models.portable_ops import PORTABLE_INT8_OPS
from cyberian.models.recipes import find_recipe
from cyberian.models.tiny import TINY_CONFIG, random_bert_weights
from cyberian.runtime import Runtime
from cyberian.spec import Spec

KERNEL_SOURCE = Path(__file__).resolve().parents[2] / "src" / "cyberian" / "kernels" / "kernels.c"


@pytest.fixture(scope="module")
def library() -> KernelLibrary:
    found = kernel_library()
    assert found is not None, "no C compiler: run tools/setup-compilers.sh"
    return found


@pytest.fixture(scope="module")
def tiny_graphs() -> tuple[bytes, bytes]:
    weights = random_bert_weights(TINY_CONFIG, seed=3)
    return (serialize_model(build_bert_int8_graph(weights, TINY_CONFIG, name="tiny-int8")),
            serialize_model(build_bert_int8_graph(weights, TINY_CONFIG, name="tiny-int8",
                                                  fused=True)))


def _session(model: bytes, library: KernelLibrary | None, threads: int = 1) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.log_severity_level = 4
    if library is not None:
        options.register_custom_ops_library(str(library.path))
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _batches(seed: int) -> list[dict[str, np.ndarray]]:  # type: ignore[type-arg]
    rng = np.random.default_rng(seed)
    batches = []
    for size, length in [(1, 1), (1, 7), (3, 17), (5, 64), (2, 128), (7, 33)]:
        ids = rng.integers(5, TINY_CONFIG.vocab_size, size=(size, length), dtype=np.int64)
        mask = np.ones((size, length), np.int64)
        for row in range(size):
            mask[row, rng.integers(1, length + 1):] = 0  # padding, at least one real token
        batches.append({"input_ids": ids * mask, "attention_mask": mask,
                        "token_type_ids": np.zeros_like(ids)})
    return batches


@pytest.mark.parametrize("threads", [1, 2])
def test_the_fused_twin_gives_the_standard_graphs_bytes(tiny_graphs: tuple[bytes, bytes],
                                                        library: KernelLibrary,
                                                        threads: int) -> None:
    standard, fused = _session(tiny_graphs[0], None), _session(tiny_graphs[1], library, threads)
    for feed in _batches(seed=threads):
        expected = standard.run(None, feed)[0]
        got = fused.run(None, feed)[0]
        assert got.dtype == expected.dtype
        assert got.shape == expected.shape
        assert got.tobytes() == expected.tobytes(), (feed["input_ids"].shape,
                                                     np.abs(got - expected).max())


def test_the_twin_replaces_the_chains_with_every_kernel_and_adds_no_other_op(
        tiny_graphs: tuple[bytes, bytes]) -> None:
    standard = op_types(onnx.load_from_string(tiny_graphs[0]))
    twin = onnx.load_from_string(tiny_graphs[1])
    ops = op_types(twin)
    kernel_ops = {n.op_type for n in twin.graph.node if n.domain == KERNEL_DOMAIN}
    assert kernel_ops == set(KERNEL_OPS)  # the tiny twin uses every kernel
    assert set(ops) - kernel_ops <= set(PORTABLE_INT8_OPS)
    assert sum(ops.values()) < sum(standard.values()) / 2  # the point: far fewer passes
    assert ops["MatMulIntegerToFloat"] == standard["MatMulIntegerToFloat"]  # same GEMMs
    assert "Sqrt" not in ops  # every layer norm is in a kernel
    assert ops["ReduceMax"] < standard["ReduceMax"] / 4  # the value scales' peak stays ONNX
    assert {d.domain for d in twin.opset_import} >= {KERNEL_DOMAIN}


def test_every_kernel_op_is_documented_and_implemented() -> None:
    implemented = re.findall(r'^\s*OP\("(\w+)"', KERNEL_SOURCE.read_text(encoding="utf-8"),
                             re.MULTILINE)
    assert sorted(implemented) == sorted(KERNEL_OPS)
    assert all(len(what) > 20 for what in KERNEL_OPS.values())


def test_the_twin_builds_the_same_bytes_twice(tiny_graphs: tuple[bytes, bytes]) -> None:
    weights = random_bert_weights(TINY_CONFIG, seed=3)
    again = serialize_model(build_bert_int8_graph(weights, TINY_CONFIG, name="tiny-int8",
                                                  fused=True))
    assert again == tiny_graphs[1]
    assert again != tiny_graphs[0]


def _norm_model() -> bytes:
    float_info = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in "xgb"]
    node = helper.make_node("LayerNormQuantize", ["x", "g", "b"], ["y", "q", "s"],
                            domain=KERNEL_DOMAIN, epsilon=1e-12, inverse_width=0.125,
                            tiny=1e-30, quantize=1)
    outputs = [helper.make_tensor_value_info(n, t, None)
               for n, t in (("y", TensorProto.FLOAT), ("q", TensorProto.UINT8),
                            ("s", TensorProto.FLOAT))]
    graph = helper.make_graph([node], "norm", float_info, outputs)
    return helper.make_model(graph, ir_version=8, opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid(KERNEL_DOMAIN, 1)]).SerializeToString()


def test_a_kernel_given_wrong_shapes_fails_with_a_message_not_a_crash(
        library: KernelLibrary) -> None:
    session = _session(_norm_model(), library)
    rows = np.arange(24, dtype=np.float32).reshape(3, 8)
    normalised, values, scales = session.run(None, {"x": rows, "g": np.ones(8, np.float32),
                                                    "b": np.zeros(8, np.float32)})
    assert values.dtype == np.uint8
    assert values.shape == (3, 8)
    assert scales.shape == (3,)
    assert np.allclose(normalised.mean(axis=1), 0, atol=1e-6)
    with pytest.raises(Exception, match="cyberian kernel LayerNormQuantize: gamma and beta must "
                                        "have the rows' width"):
        session.run(None, {"x": rows, "g": np.ones(7, np.float32), "b": np.zeros(8, np.float32)})
    with pytest.raises(Exception, match=r"x must be \(rows, width\)"):
        session.run(None, {"x": rows.reshape(2, 3, 4), "g": np.ones(4, np.float32),
                           "b": np.zeros(4, np.float32)})
    again = session.run(None, {"x": rows, "g": np.ones(8, np.float32),
                               "b": np.zeros(8, np.float32)})  # the session still works
    assert again[1].tobytes() == values.tobytes()


def test_without_a_compiler_the_runtime_says_why_and_runs_the_standard_graph(
        tmp_path: Path) -> None:
    script = ("from cyberian.kernels import kernel_library, unavailable_reason\n"
              "print(kernel_library(), unavailable_reason(), sep='|')\n")
    env = {**os.environ, "PATH": str(tmp_path), "CYBERIAN_CACHE_DIR": str(tmp_path / "cache"),
           "CYBERIAN_CC": ""}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, check=True)
    library, reason = done.stdout.strip().split("|")
    assert library == "None"
    assert reason.startswith("no C compiler for ")
    assert "install gcc" in reason
    assert not (tmp_path / "cache" / "kernels").exists() or not any(
        (tmp_path / "cache" / "kernels").iterdir())


def test_the_switch_turns_the_kernels_off(tmp_path: Path) -> None:
    script = ("from cyberian.kernels import kernel_library, unavailable_reason\n"
              "print(kernel_library(), unavailable_reason(), sep='|')\n")
    env = {**os.environ, "CYBERIAN_FUSED_KERNELS": "0"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, check=True)
    assert done.stdout.strip() == "None|turned off by CYBERIAN_FUSED_KERNELS=0"


def test_the_library_is_compiled_once_and_reused(library: KernelLibrary) -> None:
    assert library.path.name == f"{library.source_sha256}.so"
    before = library.path.stat().st_mtime_ns
    script = "from cyberian.kernels import kernel_library\nprint(kernel_library().path)\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == str(library.path)
    assert library.path.stat().st_mtime_ns == before


def test_a_model_without_a_pinned_twin_runs_as_it_is(tiny_int8_spec: Spec) -> None:
    runtime = Runtime(tiny_int8_spec)
    assert "kernels" not in runtime.manifest  # no shipped recipe pins a twin: nothing to say
    with pytest.raises(RuntimeError, match="no shipped recipe pins one"):
        Runtime(tiny_int8_spec, fused=True)


def test_models_list_names_the_pinned_twin() -> None:
    recipe = find_recipe(name="all-MiniLM-L6-v2-int8")
    assert recipe is not None
    assert recipe.fused is not None
    result = CliRunner().invoke(main, ["models", "list"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert f"fused twin {recipe.fused.sha256}" in lines["all-MiniLM-L6-v2-int8"]
    assert "fused twin" not in lines["all-MiniLM-L6-v2"]
