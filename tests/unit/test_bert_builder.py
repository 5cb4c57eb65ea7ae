"""The ONNX builder: deterministic bytes, and the graph computes what BERT computes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from cyberian.exceptions import ModelBuildError
from cyberian.models.bert import (
    BUILDER_VERSION,
    IR_VERSION,
    OPSET,
    BertConfig,
    build_bert_graph,
    random_bert_weights,
    serialize_model,
)
from cyberian.models.tiny import TINY_CONFIG, build_tiny_model
from reference_bert import reference_forward


def tiny_bytes(seed: int = 0) -> bytes:
    return serialize_model(build_bert_graph(random_bert_weights(TINY_CONFIG, seed=seed),
                                            TINY_CONFIG, name="tiny"))


def test_two_builds_give_identical_bytes() -> None:
    assert tiny_bytes() == tiny_bytes()
    assert tiny_bytes(0) != tiny_bytes(1)


def test_a_build_in_another_process_gives_the_same_sha256(tmp_path: Path) -> None:
    script = (
        "import hashlib, sys; from pathlib import Path;"
        "from cyberian.models.tiny import build_tiny_model;"
        "print(build_tiny_model(Path(sys.argv[1])).model_sha256)"
    )
    other = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True,
                           text=True, check=True).stdout.strip()
    assert other == hashlib.sha256(tiny_bytes()).hexdigest()
    assert build_tiny_model(tmp_path / "again").model_sha256 == other


def test_model_header_fields_are_fixed_constants() -> None:
    model = onnx.load_from_string(tiny_bytes())
    assert model.ir_version == IR_VERSION
    assert [(o.domain, o.version) for o in model.opset_import] == [("", OPSET)]
    assert model.producer_name == "cyberian.models.bert"
    assert model.producer_version == BUILDER_VERSION
    props = {p.key: p.value for p in model.metadata_props}
    assert props["hidden_size"] == str(TINY_CONFIG.hidden_size)
    assert props["layer_norm_eps"] == str(TINY_CONFIG.layer_norm_eps)


def test_graph_uses_exact_erf_gelu_and_no_approximation() -> None:
    ops = {node.op_type for node in onnx.load_from_string(tiny_bytes()).graph.node}
    assert "Erf" in ops
    assert "Tanh" not in ops
    assert {"LayerNormalization", "ReduceMax", "Exp", "MatMul", "Gemm"} <= ops
    assert "Softmax" not in ops  # spelled out: MLAS's Softmax rounds per SIMD width


def test_each_value_head_carries_an_exact_ones_column() -> None:
    from onnx import numpy_helper

    graph = onnx.load_from_string(tiny_bytes()).graph
    tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    h, heads = TINY_CONFIG.hidden_size, TINY_CONFIG.num_attention_heads
    d = h // heads
    weight, bias = tensors["layer0.attn.qkv.weight"], tensors["layer0.attn.qkv.bias"]
    assert weight.shape == (h, 3 * h + heads)
    v_weight = weight[:, 2 * h:].reshape(h, heads, d + 1)
    v_bias = bias[2 * h:].reshape(heads, d + 1)
    assert (v_weight[:, :, d] == 0).all()
    assert (v_bias[:, d] == 1).all()


def test_layer_norm_epsilon_comes_from_the_config() -> None:
    cfg = BertConfig(**{**TINY_CONFIG.as_dict(), "layer_norm_eps": 1e-5})
    model = build_bert_graph(random_bert_weights(cfg, seed=0), cfg, name="t")
    eps = [attr.f for node in model.graph.node if node.op_type == "LayerNormalization"
           for attr in node.attribute if attr.name == "epsilon"]
    assert len(eps) == 1 + 2 * cfg.num_hidden_layers
    assert eps == pytest.approx([1e-5] * len(eps))


def test_missing_or_misshapen_weights_are_named() -> None:
    weights = random_bert_weights(TINY_CONFIG, seed=0)
    del weights["encoder.layer.1.output.dense.bias"]
    with pytest.raises(ModelBuildError, match=r"encoder\.layer\.1\.output\.dense\.bias is missing"):
        build_bert_graph(weights, TINY_CONFIG, name="t")
    weights = random_bert_weights(TINY_CONFIG, seed=0)
    weights["embeddings.LayerNorm.weight"] = np.ones(3, dtype=np.float32)
    with pytest.raises(ModelBuildError, match="has shape"):
        build_bert_graph(weights, TINY_CONFIG, name="t")


def test_bert_prefixed_checkpoints_are_accepted() -> None:
    weights = {f"bert.{k}": v for k, v in random_bert_weights(TINY_CONFIG, seed=0).items()}
    assert serialize_model(build_bert_graph(weights, TINY_CONFIG, name="tiny")) == tiny_bytes()


def test_config_from_hf_refuses_unsupported_models() -> None:
    base = {"vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 16}
    assert BertConfig.from_hf(base).head_size == 4
    with pytest.raises(ModelBuildError, match="hidden_act"):
        BertConfig.from_hf({**base, "hidden_act": "relu"})
    with pytest.raises(ModelBuildError, match="multiple"):
        BertConfig.from_hf({**base, "num_attention_heads": 3})
    with pytest.raises(ModelBuildError, match="vocab_size"):
        BertConfig.from_hf({k: v for k, v in base.items() if k != "vocab_size"})


@pytest.mark.parametrize("length", [2, 7, 30])
def test_onnx_token_states_match_an_independent_numpy_forward(length: int) -> None:
    weights = random_bert_weights(TINY_CONFIG, seed=3)
    session = ort.InferenceSession(
        serialize_model(build_bert_graph(weights, TINY_CONFIG, name="tiny")),
        providers=["CPUExecutionProvider"])
    ids = np.random.default_rng(length).integers(0, TINY_CONFIG.vocab_size, size=length)
    feeds = {"input_ids": ids[None].astype(np.int64),
             "attention_mask": np.ones((1, length), np.int64),
             "token_type_ids": np.zeros((1, length), np.int64)}
    (states,) = session.run(["last_hidden_state"], feeds)
    expected = reference_forward(weights, json.loads(json.dumps(TINY_CONFIG.as_dict())),
                                 ids.tolist())
    assert np.abs(states[0] - expected).max() <= 1e-5


def test_the_optimiser_reads_every_per_head_operand_in_place(tmp_path: Path) -> None:
    # builder v3's layout: sequence-major token rows, so ONNX Runtime folds the q, k and v
    # transposes into the attention GEMMs (FusedMatMul with transBatch): one Transpose per
    # layer is left (the context), plus the ids, the type ids and the output
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.log_severity_level = 3
    options.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    ort.InferenceSession(tiny_bytes(), options, providers=["CPUExecutionProvider"])
    nodes = onnx.load(options.optimized_model_filepath).graph.node
    layers = TINY_CONFIG.num_hidden_layers
    assert sum(node.op_type == "Transpose" for node in nodes) == layers + 3
    fused = [node for node in nodes if node.op_type == "FusedMatMul"]
    assert len(fused) == 2 * layers
    for node in fused:
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attributes["transBatchB"] == 1
    assert not any(node.op_type == "MatMul" for node in nodes)  # projections are Gemm


def test_the_fused_attention_benchmark_variant_computes_the_same_encoder() -> None:
    weights = random_bert_weights(TINY_CONFIG, seed=4)
    sessions = [ort.InferenceSession(serialize_model(build_bert_graph(
        weights, TINY_CONFIG, name="tiny", fused_attention=fused)),
        providers=["CPUExecutionProvider"]) for fused in (False, True)]
    rng = np.random.default_rng(5)
    ids = rng.integers(0, TINY_CONFIG.vocab_size, size=(3, 9)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[1, 6:] = 0  # one padded row: both variants must mask it the same way
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    portable, fused = (s.run(["last_hidden_state"], feeds)[0] for s in sessions)
    assert portable.shape == fused.shape == (3, 9, TINY_CONFIG.hidden_size)
    real = mask.astype(bool)
    assert np.abs(portable[real] - fused[real]).max() <= 1e-5
