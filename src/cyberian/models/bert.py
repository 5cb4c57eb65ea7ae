"""Build the ONNX graph of a BERT-family encoder from its weights, deterministically.

The graph is written out op by op with :mod:`onnx.helper` -- no exporter, no
torch -- so every machine that feeds it the same weights gets the same bytes:
node names are derived from the layer structure, initializers are stored as
little-endian raw data in a fixed order, and the IR version, opset and
producer fields are fixed constants (never "whatever the installed onnx
says").

Layout (``B`` batch, ``L`` tokens, ``H`` hidden, ``h`` heads, ``d = H / h``,
``T = L * B`` token rows)::

    inputs   input_ids, attention_mask, token_type_ids      int64 (B, L)
    embed    ids read sequence-major (L, B):
             word[ids] + position[0..L) + type[types] -> LayerNormalization
             -> token rows x (T, H), row t = position t // B of text t % B
    mask     (1 - attention_mask) * -10000, shaped (B, 1, 1, L)
    layer i  qkv  = Gemm(x, W_qkv, b_qkv)                   one (H, 3H + h) GEMM
             q, k, v viewed as (L, B, h, d); their per-head transposes are
             folded into the attention GEMMs by the optimiser (strided reads)
             e    = Exp(s - ReduceMax(s)),  s = q @ k / sqrt(d) + mask
             ctx  = numerator / denominator of e @ [v | 1]  -> (T, H)
             x    = LayerNorm(x + Gemm(ctx, W_o, b_o))
             x    = LayerNorm(x + Gemm(GELU_erf(Gemm(x, W_1, b_1)), W_2, b_2))
    output   last_hidden_state                               float32 (B, L, H)

Why this shape (builder v3; measured in docs/BENCHMARKS.md): in the
sequence-major order ``(L, B, h, d)`` is a free view of the token rows, and
ONNX Runtime's MatMul reads ``[M, batch..., K]`` operands in place, so no
per-head tensor is ever copied; and every projection is one ``Gemm`` whose
bias is its starting value, so no separate pass adds it. Each output element
is still one fixed-order FMA chain, so the bytes stay portable (docs/DETERMINISM.md).

GELU is the exact ``0.5 * x * (1 + erf(x / sqrt(2)))``; no tanh approximation
appears in the graph, and the runtime forbids the optimiser from introducing one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..exceptions import ModelBuildError

__all__ = [
    "BUILDER_VERSION",
    "IR_VERSION",
    "OPSET",
    "BertConfig",
    "build_bert_graph",
    "random_bert_weights",
    "serialize_model",
]

BUILDER_VERSION: Final = "3"
"""Bumped whenever the graph layout changes (it changes every built file's hash)."""

OPSET: Final = 17
IR_VERSION: Final = 8
_MASK_FILL: Final = -10000.0

Weights = Mapping[str, npt.NDArray[Any]]


@dataclass(frozen=True)
class BertConfig:
    """The shape of a BERT-family encoder (the fields of a Hugging Face ``config.json``)."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ModelBuildError(
                f"hidden_size {self.hidden_size} is not a multiple of "
                f"num_attention_heads {self.num_attention_heads}"
            )

    @property
    def head_size(self) -> int:
        """Width of one attention head."""
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_hf(cls, config: Mapping[str, Any]) -> BertConfig:
        """Read the encoder shape from a Hugging Face ``config.json`` mapping."""
        if config.get("hidden_act", "gelu") != "gelu":
            raise ModelBuildError(f"unsupported hidden_act {config.get('hidden_act')!r}")
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise ModelBuildError("only absolute position embeddings are supported")
        try:
            return cls(
                vocab_size=int(config["vocab_size"]),
                hidden_size=int(config["hidden_size"]),
                num_hidden_layers=int(config["num_hidden_layers"]),
                num_attention_heads=int(config["num_attention_heads"]),
                intermediate_size=int(config["intermediate_size"]),
                max_position_embeddings=int(config.get("max_position_embeddings", 512)),
                type_vocab_size=int(config.get("type_vocab_size", 2)),
                layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
            )
        except KeyError as exc:
            raise ModelBuildError(f"config.json lacks {exc.args[0]!r}") from None

    def as_dict(self) -> dict[str, Any]:
        """The config as a plain mapping (recorded in the model's metadata)."""
        return asdict(self)


class _Graph:
    """Accumulates nodes and initializers with stable, structural names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []

    def const(self, name: str, array: npt.NDArray[Any]) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str, **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attrs))
        return name


def _tensor(weights: Weights, key: str, shape: tuple[int, ...]) -> npt.NDArray[np.float32]:
    for prefix in ("", "bert."):
        if prefix + key in weights:
            array = np.asarray(weights[prefix + key], dtype=np.float32)
            if array.shape != shape:
                raise ModelBuildError(f"weight {key} has shape {array.shape}, expected {shape}")
            return array
    raise ModelBuildError(f"weight {key} is missing from the checkpoint")


def _layer_norm(g: _Graph, weights: Weights, x: str, key: str, name: str, cfg: BertConfig) -> str:
    h = cfg.hidden_size
    gamma = g.const(f"{name}.gamma", _tensor(weights, f"{key}.weight", (h,)))
    beta = g.const(f"{name}.beta", _tensor(weights, f"{key}.bias", (h,)))
    return g.op("LayerNormalization", [x, gamma, beta], name, axis=-1, epsilon=cfg.layer_norm_eps)


def _gemm(g: _Graph, x: str, weight: npt.NDArray[np.float32], bias: npt.NDArray[np.float32],
          name: str) -> str:
    """``x @ weight + bias`` as one Gemm on token rows (T, n_in): the bias is C, added in."""
    return g.op("Gemm", [x, g.const(f"{name}.weight", weight), g.const(f"{name}.bias", bias)],
                name)


def _dense(g: _Graph, weights: Weights, x: str, key: str, name: str, n_in: int,
           n_out: int) -> str:
    weight = _tensor(weights, f"{key}.weight", (n_out, n_in)).T
    return _gemm(g, x, weight, _tensor(weights, f"{key}.bias", (n_out,)), name)


@dataclass(frozen=True)
class _Shapes:
    """Shape tensors computed once per run from the inputs."""

    heads: str
    values: str
    states: str
    rows: str


def _shapes(g: _Graph, cfg: BertConfig) -> _Shapes:
    h, heads, d = cfg.hidden_size, cfg.num_attention_heads, cfg.head_size
    outer = g.op("Shape", ["embed.ids"], "shape.outer")  # the ids as read: (L, B) or (B, L)
    g.const("shape.heads_tail", np.array([heads, d], dtype=np.int64))
    g.const("shape.values_tail", np.array([heads, d + 1], dtype=np.int64))
    g.const("shape.hidden_tail", np.array([h], dtype=np.int64))
    rows = g.const("shape.rows", np.array([-1, h], dtype=np.int64))

    def outer_plus(tail: str, name: str) -> str:
        return g.op("Concat", [outer, tail], name, axis=0)

    return _Shapes(outer_plus("shape.heads_tail", "shape.heads"),
                   outer_plus("shape.values_tail", "shape.values"),
                   outer_plus("shape.hidden_tail", "shape.states"), rows)


def _embedding_tables(g: _Graph, weights: Weights, cfg: BertConfig) -> tuple[str, str, str]:
    """The word, position and token-type tables as initializers (also the int8 builder's)."""
    h = cfg.hidden_size
    word = g.const("embed.word", _tensor(weights, "embeddings.word_embeddings.weight",
                                         (cfg.vocab_size, h)))
    position = g.const("embed.position", _tensor(
        weights, "embeddings.position_embeddings.weight", (cfg.max_position_embeddings, h)))
    types = g.const("embed.type", _tensor(weights, "embeddings.token_type_embeddings.weight",
                                          (cfg.type_vocab_size, h)))
    return word, position, types


def _embeddings(g: _Graph, weights: Weights, cfg: BertConfig, *, sequence_major: bool) -> str:
    word, position, types = _embedding_tables(g, weights, cfg)
    g.const("embed.slice_start", np.array([0], dtype=np.int64))
    g.const("embed.slice_axis", np.array([0], dtype=np.int64))
    length = g.op("Shape", ["input_ids"], "embed.length", start=1, end=2)
    positions = g.op("Slice", [position, "embed.slice_start", length, "embed.slice_axis"],
                     "embed.position_rows")
    if sequence_major:  # (L, B) ids; position rows broadcast as (L, 1, H)
        ids = g.op("Transpose", ["input_ids"], "embed.ids", perm=[1, 0])
        type_ids = g.op("Transpose", ["token_type_ids"], "embed.type_ids", perm=[1, 0])
        g.const("embed.position_axes", np.array([1], dtype=np.int64))
        positions = g.op("Unsqueeze", [positions, "embed.position_axes"], "embed.position_column")
    else:
        ids = g.op("Identity", ["input_ids"], "embed.ids")
        type_ids = "token_type_ids"
    summed = g.op("Add", [
        g.op("Add", [
            g.op("Gather", [word, ids], "embed.word_lookup", axis=0),
            positions,
        ], "embed.word_plus_position"),
        g.op("Gather", [types, type_ids], "embed.type_lookup", axis=0),
    ], "embed.sum")
    return _layer_norm(g, weights, summed, "embeddings.LayerNorm", "embed.norm", cfg)


def _additive_mask(g: _Graph) -> str:
    mask = g.op("Cast", ["attention_mask"], "mask.float", to=TensorProto.FLOAT)
    g.const("mask.one", np.array(1.0, dtype=np.float32))
    g.const("mask.fill", np.array(_MASK_FILL, dtype=np.float32))
    g.const("mask.axes", np.array([1, 2], dtype=np.int64))
    inverted = g.op("Sub", ["mask.one", mask], "mask.inverted")
    additive = g.op("Mul", [inverted, "mask.fill"], "mask.additive")
    return g.op("Unsqueeze", [additive, "mask.axes"], "mask.broadcast")


def _packed_qkv(weights: Weights, key: str,
                h: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Q, K and V projections side by side: one (H, 3H) weight and one 3H bias."""
    parts = ("query", "key", "value")
    weight = np.concatenate([_tensor(weights, f"{key}.self.{p}.weight", (h, h)).T for p in parts],
                            axis=1)
    bias = np.concatenate([_tensor(weights, f"{key}.self.{p}.bias", (h,)) for p in parts])
    return weight, bias


def _packed_qkv_with_ones(weights: Weights, key: str, cfg: BertConfig,
                          ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Q, K and V side by side, each V head followed by a column that is exactly 1.

    The extra column has zero weights and bias 1, so ``x @ W + b`` gives
    ``0 * x`` summed (an exact 0) plus 1: a ones column per head that turns
    ``exp(scores) @ V`` into numerator and softmax denominator in one GEMM.
    Shape (H, 3H + heads) and (3H + heads,).
    """
    h, heads, d = cfg.hidden_size, cfg.num_attention_heads, cfg.head_size
    weight, bias = _packed_qkv(weights, key, h)
    v_weight = weight[:, 2 * h:].reshape(h, heads, d)
    v_bias = bias[2 * h:].reshape(heads, d)
    v_weight = np.concatenate([v_weight, np.zeros((h, heads, 1), np.float32)], axis=2)
    v_bias = np.concatenate([v_bias, np.ones((heads, 1), np.float32)], axis=1)
    return (np.concatenate([weight[:, :2 * h], v_weight.reshape(h, heads * (d + 1))], axis=1),
            np.concatenate([bias[:2 * h], v_bias.reshape(heads * (d + 1))]))


def _attention(g: _Graph, weights: Weights, x: str, mask: str, i: int, cfg: BertConfig,
               shapes: _Shapes) -> str:
    """Self-attention from ops that give the same bits on every x86-64 CPU with FMA.

    ONNX Runtime's ``Softmax`` sums its exponentials in SIMD lanes as wide as
    the CPU's vectors, so AVX2 and AVX-512 round differently; and a
    ``ReduceSum`` is no better (its lanes also regroup the real terms when
    padding changes the row length). So the softmax is spelled out:
    ``e = Exp(scores - ReduceMax(scores))`` (max is exact in any order), then
    one GEMM ``e @ [V | 1]`` whose every output element is a sequential sum in
    key order -- the context numerators and, in the ones column, the
    denominator, with padded keys adding exact zeros at the end -- then one
    division.
    """
    h, heads, d = cfg.hidden_size, cfg.num_attention_heads, cfg.head_size
    key = f"encoder.layer.{i}.attention"
    name = f"layer{i}.attn"
    w_qkv, b_qkv = _packed_qkv_with_ones(weights, key, cfg)
    qkv = _gemm(g, x, w_qkv, b_qkv, f"{name}.qkv")
    split = g.const(f"{name}.split", np.array([h, h, h + heads], dtype=np.int64))
    g.nodes.append(helper.make_node("Split", [qkv, split],
                                    [f"{name}.q", f"{name}.k", f"{name}.v"],
                                    name=f"{name}.split_qkv", axis=1))

    def per_head(part: str, shape: str, perm: list[int]) -> str:
        shaped = g.op("Reshape", [f"{name}.{part}", shape], f"{name}.{part}_heads")
        return g.op("Transpose", [shaped], f"{name}.{part}_t", perm=perm)

    q = per_head("q", shapes.heads, [1, 2, 0, 3])  # (L, B, h, d) -> (B, h, L, d)
    k = per_head("k", shapes.heads, [1, 2, 3, 0])  # -> (B, h, d, L)
    v = per_head("v", shapes.values, [1, 2, 0, 3])  # -> (B, h, L, d + 1)
    scale = g.const(f"{name}.scale", np.array(1.0 / math.sqrt(d), dtype=np.float32))
    scores = g.op("Add", [
        g.op("Mul", [g.op("MatMul", [q, k], f"{name}.qk"), scale], f"{name}.scaled"),
        mask,
    ], f"{name}.masked")
    peak = g.op("ReduceMax", [scores], f"{name}.peak", axes=[-1], keepdims=1)
    weights_exp = g.op("Exp", [g.op("Sub", [scores, peak], f"{name}.shifted")], f"{name}.exp")
    weighted = g.op("MatMul", [weights_exp, v], f"{name}.pv")
    sizes = g.const(f"{name}.pv_split", np.array([d, 1], dtype=np.int64))
    g.nodes.append(helper.make_node("Split", [weighted, sizes],
                                    [f"{name}.numerator", f"{name}.denominator"],
                                    name=f"{name}.split_pv", axis=3))
    normalised = g.op("Div", [f"{name}.numerator", f"{name}.denominator"], f"{name}.ctx")
    context = g.op("Transpose", [normalised], f"{name}.context_t", perm=[2, 0, 1, 3])
    merged = g.op("Reshape", [context, shapes.rows], f"{name}.context")
    return _attention_output(g, weights, x, merged, i, cfg)


def _attention_output(g: _Graph, weights: Weights, x: str, context: str, i: int,
                      cfg: BertConfig) -> str:
    h = cfg.hidden_size
    key = f"encoder.layer.{i}.attention"
    name = f"layer{i}.attn"
    projected = _dense(g, weights, context, f"{key}.output.dense", f"{name}.out", h, h)
    residual = g.op("Add", [projected, x], f"{name}.residual")
    return _layer_norm(g, weights, residual, f"{key}.output.LayerNorm", f"{name}.norm", cfg)


def _fused_attention(g: _Graph, weights: Weights, x: str, mask: str, i: int, cfg: BertConfig,
                     shapes: _Shapes) -> str:
    """ONNX Runtime's fused ``Attention`` kernel on batch-major rows (benchmarks only)."""
    h = cfg.hidden_size
    key = f"encoder.layer.{i}.attention"
    name = f"layer{i}.attn"
    w_qkv, b_qkv = _packed_qkv(weights, key, h)
    states = g.op("Reshape", [x, shapes.states], f"{name}.states")
    context = g.op("Attention", [states, g.const(f"{name}.qkv.weight", w_qkv),
                                 g.const(f"{name}.qkv.bias", b_qkv), mask],
                   f"{name}.fused", domain="com.microsoft",
                   num_heads=cfg.num_attention_heads)
    merged = g.op("Reshape", [context, shapes.rows], f"{name}.context")
    return _attention_output(g, weights, x, merged, i, cfg)


def _feed_forward(g: _Graph, weights: Weights, x: str, i: int, cfg: BertConfig) -> str:
    h, inner = cfg.hidden_size, cfg.intermediate_size
    name = f"layer{i}.ffn"
    up = _dense(g, weights, x, f"encoder.layer.{i}.intermediate.dense", f"{name}.up", h, inner)
    g.const(f"{name}.sqrt2", np.array(math.sqrt(2.0), dtype=np.float32))
    g.const(f"{name}.one", np.array(1.0, dtype=np.float32))
    g.const(f"{name}.half", np.array(0.5, dtype=np.float32))
    scaled = g.op("Div", [up, f"{name}.sqrt2"], f"{name}.gelu_div")
    one_plus_erf = g.op("Add", [g.op("Erf", [scaled], f"{name}.gelu_erf"), f"{name}.one"],
                        f"{name}.gelu_add")
    gelu = g.op("Mul", [g.op("Mul", [up, one_plus_erf], f"{name}.gelu_mul"), f"{name}.half"],
                f"{name}.gelu")
    down = _dense(g, weights, gelu, f"encoder.layer.{i}.output.dense", f"{name}.down", inner, h)
    residual = g.op("Add", [down, x], f"{name}.residual")
    return _layer_norm(g, weights, residual, f"encoder.layer.{i}.output.LayerNorm",
                       f"{name}.norm", cfg)


def build_bert_graph(weights: Weights, cfg: BertConfig, *, name: str,
                     fused_attention: bool = False) -> onnx.ModelProto:
    """The ONNX model of the encoder described by ``cfg`` with ``weights`` (HF key names).

    ``fused_attention`` swaps each layer's attention block for ONNX Runtime's
    ``com.microsoft.Attention`` contrib kernel on batch-major rows: a
    benchmark variant only (runs on ONNX Runtime alone; never what a recipe
    ships).
    """
    g = _Graph()
    sequence_major = not fused_attention  # the fused kernel wants batch-major (B, L, H)
    embedded = _embeddings(g, weights, cfg, sequence_major=sequence_major)
    shapes = _shapes(g, cfg)
    x = g.op("Reshape", [embedded, shapes.rows], "embed.rows")
    if fused_attention:
        mask = g.op("Cast", ["attention_mask"], "mask.int32", to=TensorProto.INT32)
    else:
        mask = _additive_mask(g)
    attention = _fused_attention if fused_attention else _attention
    for i in range(cfg.num_hidden_layers):
        x = _feed_forward(g, weights, attention(g, weights, x, mask, i, cfg, shapes), i, cfg)
    states = g.op("Reshape", [x, shapes.states], "states")
    if sequence_major:
        g.nodes.append(helper.make_node("Transpose", [states], ["last_hidden_state"],
                                        name="output", perm=[1, 0, 2]))
    else:
        g.nodes.append(helper.make_node("Identity", [states], ["last_hidden_state"],
                                        name="output"))

    def int_input(input_name: str) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(input_name, TensorProto.INT64, ["batch", "sequence"])

    graph = helper.make_graph(
        g.nodes,
        name,
        [int_input("input_ids"), int_input("attention_mask"), int_input("token_type_ids")],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                       ["batch", "sequence", cfg.hidden_size])],
        initializer=g.initializers,
    )
    opsets = [helper.make_opsetid("", OPSET)]
    if fused_attention:
        opsets.append(helper.make_opsetid("com.microsoft", 1))
    model = helper.make_model(
        graph,
        opset_imports=opsets,
        producer_name="cyberian.models.bert",
        producer_version=BUILDER_VERSION,
        ir_version=IR_VERSION,
    )
    meta = {"builder_version": BUILDER_VERSION, **{k: str(v) for k, v in cfg.as_dict().items()}}
    helper.set_model_props(model, meta)
    if not fused_attention:  # the checker does not know ONNX Runtime's contrib ops
        onnx.checker.check_model(model, full_check=True)
    return model


def serialize_model(model: onnx.ModelProto) -> bytes:
    """The model's protobuf bytes (deterministic for a given graph)."""
    data: bytes = model.SerializeToString(deterministic=True)
    return data


def random_bert_weights(cfg: BertConfig, *, seed: int) -> dict[str, npt.NDArray[np.float32]]:
    """Random weights (HF key names) for ``cfg``: fast test models with the real layout."""
    rng = np.random.default_rng(seed)
    h, inner = cfg.hidden_size, cfg.intermediate_size

    def normal(*shape: int, scale: float = 0.02) -> npt.NDArray[np.float32]:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    weights: dict[str, npt.NDArray[np.float32]] = {
        "embeddings.word_embeddings.weight": normal(cfg.vocab_size, h, scale=0.5),
        "embeddings.position_embeddings.weight": normal(cfg.max_position_embeddings, h, scale=0.1),
        "embeddings.token_type_embeddings.weight": normal(cfg.type_vocab_size, h, scale=0.1),
        "embeddings.LayerNorm.weight": 1.0 + normal(h, scale=0.1),
        "embeddings.LayerNorm.bias": normal(h, scale=0.1),
    }
    for i in range(cfg.num_hidden_layers):
        base = f"encoder.layer.{i}"
        shapes = {
            "attention.self.query": (h, h), "attention.self.key": (h, h),
            "attention.self.value": (h, h), "attention.output.dense": (h, h),
            "intermediate.dense": (inner, h), "output.dense": (h, inner),
        }
        for part, (n_out, n_in) in shapes.items():
            weights[f"{base}.{part}.weight"] = normal(n_out, n_in, scale=1.0 / math.sqrt(n_in))
            weights[f"{base}.{part}.bias"] = normal(n_out, scale=0.05)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            weights[f"{base}.{norm}.weight"] = 1.0 + normal(h, scale=0.1)
            weights[f"{base}.{norm}.bias"] = normal(h, scale=0.1)
    return weights
