"""Build the int8 BERT graph: the same bits on every CPU, by construction.

The FP32 graph is portable only within one CPU class: its float GEMMs,
``Exp``, ``Erf`` and ``LayerNormalization`` round differently without FMA or
on ARM. This graph uses only operations whose result cannot depend on the CPU
(docs/DETERMINISM.md, "The int8 spec"):

* every matrix product is an exact integer GEMM of unsigned 8-bit values
  (1..255, zero point 128) by signed values of at most 6 bits and a sign
  (-63..63): a pair of products never exceeds 2 * 255 * 63 = 32,130, so even
  AVX2's 16-bit ``vpmaddubsw`` cannot saturate, and no int32 sum can
  overflow or lose a bit when converted to float (all stay below 2^24).
  ``MatMulIntegerToFloat`` converts each sum and multiplies it by one scale
  per column in the GEMM's epilogue: one correctly rounded multiply;
* every float operation is element-wise and correctly rounded (``Add``,
  ``Sub``, ``Mul``, ``Div``, ``Sqrt``, ``Round``, ``Abs``, ``Neg``, ``Relu``,
  ``Max``, ``Clip``), a maximum or minimum (exact in any order), or
  ``QuantizeLinear`` (one division and one round-half-to-even per element);
* the only float sums that are not GEMMs -- a layer norm's mean and variance
  -- are sums of whole numbers below 2^24 (each row rounded to a grid of its
  own), so every order and every SIMD grouping gives the same exact result;
* ``exp`` and GELU are polynomials of element-wise operations, their
  coefficients fixed in this file.

Quantisation is part of the builder (no calibration data, nothing fitted at
build time; the numbers in docs/BENCHMARKS.md):

* weights: symmetric, per output column, ``round(w / s)``, ``s = max|w| / 63``;
  biases, embeddings and layer-norm parameters stay float32;
* activations entering a GEMM: symmetric, per token row (per token and head for
  q and k), ``128 + round(x / s)``, ``s = max|row| / 127``;
* v: per text, head and column, over the text's real tokens only;
* attention weights: ``round(255 * exp(s - max s))``; the softmax denominator is
  the exact integer sum of those weights, from the same GEMM through a column
  of ones appended to v;
* the feed-forward block runs in 4 slices of its inner width, each with its
  own scales, summed in slice order.

Every row is computed from its own token (or, for v's scales, its own text's
real tokens) only, so, as for the FP32 graph, a text's bits depend neither on
its batch nor on padding.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper

from ..kernels import KERNEL_DOMAIN
from .bert import IR_VERSION, BertConfig, Weights, _embedding_tables, _Graph, _tensor

__all__ = ["GELU_TAIL", "INT8_BUILDER_VERSION", "build_bert_int8_graph", "quantize_weight"]

INT8_BUILDER_VERSION: Final = "1"
"""Bumped whenever the int8 graph or its quantisation changes."""

OPSET: Final = 17
_ACTIVATION_LEVELS: Final = 127.0  # unsigned operands: 128 + round(x / s), values 1..255
_ACTIVATION_ZERO: Final = 128
_SIGNED_LEVELS: Final = 63.0  # signed operands: round(x / s) in -63..63
_PROBABILITY_LEVELS: Final = 255.0  # attention weights round(255 * exp(s - max s)), 0..255
_TINY: Final = 1e-30  # floor of a quantisation scale, so an all-zero row divides cleanly
_EXP_SQUARINGS: Final = 4  # exp(y) = p(y / 2^4) ^ (2^4)
_EXP_FLOOR: Final = -6.5  # 255 * exp(-6.5) = 0.38 rounds to 0: weights below are exact zeros
_GELU_CLAMP: Final = 3.0
GELU_TAIL: Final = (0.0, 0.5374338030815125, -0.5466828346252441, 0.18867458403110504,
                    -0.02201070450246334)
"""p(a) ~ a * Phi(-a) on [0, 3]: the least-squares quartic through 0 (max error 3.0e-3),
rounded to float32 -- fixed here, not fitted at build time (a LAPACK fit's last bits depend
on the CPU, and the built file must not)."""
_FFN_SLICES: Final = 4
_GELU_MINIMUM: Final = 0.18  # the approximate GELU is >= -max p = -0.1682 (test checks)


def _f32(value: float) -> float:
    """``value`` rounded to float32, as the graph's scalar constants are."""
    return float(np.float32(value))


def _floor(magnitude_below: float | None) -> float:
    """The floor :meth:`_Int8Graph.peak` puts under a row's peak, as a float32 attribute."""
    return _f32(max(magnitude_below or 0.0, _TINY))


def quantize_weight(weight: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.int8],
                                                               npt.NDArray[np.float32]]:
    """A (K, N) float weight as int8 values and one float32 scale per output column."""
    peak = np.abs(weight).max(axis=0)
    scale = np.maximum(peak, np.float32(_TINY)) / np.float32(_SIGNED_LEVELS)
    values = np.clip(np.rint(weight / scale), -_SIGNED_LEVELS, _SIGNED_LEVELS)
    return values.astype(np.int8), scale.astype(np.float32)


class _Int8Graph(_Graph):
    """The FP32 builder's node list, plus scalar constants and the int8 building blocks."""

    def __init__(self, *, fused: bool = False) -> None:
        super().__init__()
        self.fused = fused
        self._scalars: dict[tuple[str, float], str] = {}
        self._axes: set[str] = set()

    def kernel(self, op_type: str, inputs: list[str], outputs: list[str], name: str,
               **attrs: Any) -> list[str]:
        """One node of the fused-kernel domain (:mod:`cyberian.kernels`), several outputs."""
        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=name,
                                           domain=KERNEL_DOMAIN, **attrs))
        return outputs

    def scalar(self, value: float, dtype: Any = np.float32) -> str:
        key = (np.dtype(dtype).name, float(value))
        if key not in self._scalars:
            name = f"const.{key[0]}.{len(self._scalars)}"
            self._scalars[key] = self.const(name, np.array(value, dtype=dtype))
        return self._scalars[key]

    def axes(self, *axes: int) -> str:
        name = "const.axes." + "_".join(str(a).replace("-", "m") for a in axes)
        if name not in self._axes:
            self._axes.add(self.const(name, np.array(axes, dtype=np.int64)))
        return name

    def peak(self, x: str, name: str, axis: int, *, magnitude_below: float | None = None) -> str:
        """max |x| along ``axis`` (reduced away), floored at a tiny positive value.

        Per-row scalars are kept without a trailing axis of 1 until they meet
        the rows: ONNX Runtime broadcasts a scalar over an ``(R, 1)`` tensor one
        element at a time, 10x slower than over ``(R,)``.

        ``magnitude_below`` promises ``x >= -magnitude_below`` everywhere (0 for
        non-negative ``x``): then ``max(max x, magnitude_below)`` bounds |x| with
        one reduction instead of two.
        """
        peak = self.op("ReduceMax", [x], f"{name}.max", axes=[axis], keepdims=0)
        if magnitude_below is None:
            low = self.op("ReduceMin", [x], f"{name}.min", axes=[axis], keepdims=0)
            peak = self.op("Max", [peak, self.op("Neg", [low], f"{name}.neg")], f"{name}.abs")
        floor = max(magnitude_below or 0.0, _TINY)
        return self.op("Max", [peak, self.scalar(floor)], f"{name}.floor")

    def column(self, x: str) -> str:
        """``x`` with a trailing axis of 1, to broadcast one value over each row."""
        return self.op("Unsqueeze", [x, self.axes(-1)], f"{x}.column")

    def quantize_rows(self, x: str, name: str, *, signed: bool, scale: str | None = None,
                      magnitude_below: float | None = None) -> tuple[str, str]:
        """Rows of 2-D ``x`` quantised on their own scale: (values, scale per row (R,)).

        Unsigned: ``128 + round(x / s)`` with ``s = max|row| / 127`` (values 1..255).
        Signed: ``round(x / s)`` with ``s = max|row| / 63`` (values -63..63). A
        given ``scale`` (one per row, any shape) is used instead of the row's
        own.
        """
        if scale is None and self.fused:
            if not signed:  # the twin's kernels quantise unsigned rows where they make them
                raise AssertionError(f"{name}: no unsigned row quantisation in the fused twin")
            values, row_scale = self.kernel(
                "QuantizeRowsSigned", [x], [f"{name}.q", f"{name}.scale"], f"{name}.quantize",
                has_min=int(magnitude_below is None), floor=_floor(magnitude_below))
            return values, row_scale
        if scale is None:
            levels = _SIGNED_LEVELS if signed else _ACTIVATION_LEVELS
            peak = self.peak(x, name, -1, magnitude_below=magnitude_below)
            scale = flat = self.op("Div", [peak, self.scalar(levels)], f"{name}.scale")
        else:
            flat = self.op("Reshape", [scale, self.axes(-1)], f"{name}.scale_flat")
        zero_type, zero_value = ((TensorProto.INT8, 0) if signed
                                 else (TensorProto.UINT8, _ACTIVATION_ZERO))
        zero = self.op("ConstantOfShape", [self.op("Shape", [flat], f"{name}.rows")],
                       f"{name}.zero",
                       value=helper.make_tensor("value", zero_type, [1], [zero_value]))
        values = self.op("QuantizeLinear", [x, flat, zero], f"{name}.q", axis=0)
        return values, scale

    def project(self, values: str, weight: npt.NDArray[np.float32], name: str) -> str:
        """Quantised rows times ``weight`` quantised per column, each column times its scale.

        ``MatMulIntegerToFloat`` converts each exact int32 sum to float and
        multiplies it by the column's scale in the GEMM's epilogue: one
        rounding, and no bias there, so nothing a compiler could fuse.
        """
        w_values, w_scale = quantize_weight(weight)
        return self.op("MatMulIntegerToFloat", [
            values, self.const(f"{name}.weight", w_values), self.scalar(1.0),
            self.const(f"{name}.scale", w_scale), self.scalar(_ACTIVATION_ZERO, np.uint8),
        ], f"{name}.gemm", domain="com.microsoft")

    def integer_product(self, a: str, b: str, name: str, *, zero: int) -> str:
        """The exact integer product of two quantised tensors, as float (exact below 2^24)."""
        one = self.scalar(1.0)
        return self.op("MatMulIntegerToFloat", [a, b, one, one, self.scalar(zero, np.uint8)],
                       name, domain="com.microsoft")

    def dense(self, x: str, weight: npt.NDArray[np.float32], bias: npt.NDArray[np.float32],
              name: str, *, magnitude_below: float | None = None) -> str:
        """``x @ weight + bias`` on token rows: quantised rows times int8 columns, rescaled."""
        values, row_scale = self.quantize_rows(x, f"{name}.in", signed=False,
                                               magnitude_below=magnitude_below)
        scaled = self.op("Mul", [self.project(values, weight, name), self.column(row_scale)],
                         f"{name}.scaled")
        return self.op("Add", [scaled, self.const(f"{name}.bias", bias)], name)

    def row_sum(self, x: str, name: str, width: int, *, nonnegative: bool = False) -> str:
        """The sum of each row of ``x`` (R, width), shape (R,), exact in any order.

        Each row is rounded to a grid of ``2^24 / width`` steps per its largest
        magnitude, so every value, and every partial sum in any order or SIMD
        grouping, is an integer below 2^24, which float32 holds exactly.
        """
        steps = float(2 ** 24 // width)
        grid = self.op("Div", [self.scalar(steps), self.peak(
            x, name, -1, magnitude_below=0.0 if nonnegative else None)],
                       f"{name}.grid")
        whole = self.op("Round", [self.op("Mul", [x, self.column(grid)], f"{name}.scaled")],
                        f"{name}.whole")
        total = self.op("ReduceSum", [whole, self.axes(-1)], f"{name}.sum", keepdims=0)
        return self.op("Div", [total, grid], name)

    def layer_norm(self, weights: Weights, x: str, key: str, name: str, cfg: BertConfig) -> str:
        """LayerNorm over the last axis with exact row sums: the same bits on every CPU."""
        h = cfg.hidden_size
        gamma = self.const(f"{name}.gamma", _tensor(weights, f"{key}.weight", (h,)))
        beta = self.const(f"{name}.beta", _tensor(weights, f"{key}.bias", (h,)))
        inverse_width = self.scalar(1.0 / h)
        mean = self.op("Mul", [self.row_sum(x, f"{name}.sum", h), inverse_width], f"{name}.mean")
        centred = self.op("Sub", [x, self.column(mean)], f"{name}.centred")
        square = self.op("Mul", [centred, centred], f"{name}.square")
        variance = self.op("Mul", [self.row_sum(square, f"{name}.square_sum", h, nonnegative=True),
                                   inverse_width], f"{name}.var")
        std = self.op("Sqrt", [self.op("Add", [variance, self.scalar(cfg.layer_norm_eps)],
                                       f"{name}.var_eps")], f"{name}.std")
        normalised = self.op("Div", [centred, self.column(std)], f"{name}.normalised")
        return self.op("Add", [self.op("Mul", [normalised, gamma], f"{name}.scaled"), beta], name)

    def residual_norm(self, weights: Weights, parts: list[tuple[str, str]], bias: str | None,
                      x: str, key: str, name: str, cfg: BertConfig, *,
                      quantize: bool = True) -> tuple[str, str, str]:
        """Fused: ``layer_norm(sum(mm * scale) + bias + x)`` and its quantised rows.

        Returns (normalised rows, their unsigned values, their row scales); the
        kernel computes exactly what :meth:`dense`, the residual ``Add`` and
        :meth:`layer_norm` compute op by op.
        """
        h = cfg.hidden_size
        gamma = self.const(f"{name}.gamma", _tensor(weights, f"{key}.weight", (h,)))
        beta = self.const(f"{name}.beta", _tensor(weights, f"{key}.bias", (h,)))
        inputs = [x, gamma, beta]
        if parts:
            inputs += [bias or "", *[t for part in parts for t in part]]
        op_type = {0: "LayerNormQuantize", 1: "ResidualNorm1", 4: "ResidualNorm4"}[len(parts)]
        outputs = self.kernel(op_type, inputs, [name, f"{name}.q", f"{name}.scale"],
                              f"{name}.fused", epsilon=_f32(cfg.layer_norm_eps),
                              inverse_width=_f32(1.0 / h), tiny=_f32(_TINY),
                              quantize=int(quantize))
        return outputs[0], outputs[1], outputs[2]

    def horner(self, x: str, coefficients: list[float], name: str) -> str:
        """``sum(c[i] * x^i)`` as a fixed Horner chain of element-wise Mul and Add.

        A zero term is skipped (no ``Add`` of 0).
        """
        acc = self.scalar(coefficients[-1])
        for i, c in reversed(list(enumerate(coefficients[:-1]))):
            acc = self.op("Mul", [acc, x], f"{name}.mul{i}")
            if c != 0.0:
                acc = self.op("Add", [acc, self.scalar(c)], f"{name}.add{i}")
        return acc

    def exp_nonpositive(self, y: str, name: str) -> str:
        """``exp(16 y)`` for ``y <= 0`` (the caller has divided by 16), floored at exp(-6.5).

        The third-order Taylor polynomial of the small argument, squared four
        times: within 0.015 of a step of the 1/255 grid that follows.
        """
        clamped = self.op("Max", [y, self.scalar(_EXP_FLOOR / 2 ** _EXP_SQUARINGS)],
                          f"{name}.clamp")
        acc = self.horner(clamped, [1.0, 1.0, 0.5, 1.0 / 6.0], f"{name}.poly")
        for i in range(_EXP_SQUARINGS):
            acc = self.op("Mul", [acc, acc], f"{name}.square{i}")
        return acc

    def gelu(self, x: str, name: str) -> str:
        """GELU ``x * Phi(x)`` as ``relu(x) - p(min(|x|, 3))``, ``p`` = :data:`GELU_TAIL`."""
        magnitude = self.op("Clip", [self.op("Abs", [x], f"{name}.abs"), "",
                                     self.scalar(_GELU_CLAMP)], f"{name}.clamp")
        tail = self.horner(magnitude, list(GELU_TAIL), f"{name}.tail")
        return self.op("Sub", [self.op("Relu", [x], f"{name}.relu"), tail], name)


_State = tuple[str, str | None, str | None]
"""Token rows between blocks, with their quantised values and row scales when a fused layer
norm made them already (else ``None``)."""


def _entering(g: _Int8Graph, state: _State, name: str) -> tuple[str, str, str]:
    """A block's input rows, their unsigned values and row scales (quantised here if needed)."""
    x, values, scale = state
    if values is None or scale is None:
        values, scale = g.quantize_rows(x, name, signed=False)
    return x, values, scale


def _embeddings(g: _Int8Graph, weights: Weights, cfg: BertConfig) -> _State:
    h = cfg.hidden_size
    word, position, types = _embedding_tables(g, weights, cfg)
    length = g.op("Shape", ["input_ids"], "embed.length", start=1, end=2)
    positions = g.op("Slice", [position, g.axes(0), length, g.axes(0)], "embed.position_rows")
    summed = g.op("Add", [
        g.op("Add", [g.op("Gather", [word, "input_ids"], "embed.word_lookup", axis=0),
                     positions], "embed.word_plus_position"),
        g.op("Gather", [types, "token_type_ids"], "embed.type_lookup", axis=0),
    ], "embed.sum")
    rows = g.op("Reshape", [summed, g.const("shape.rows", np.array([-1, h], np.int64))],
                "embed.rows")
    if g.fused:
        return g.residual_norm(weights, [], None, rows, "embeddings.LayerNorm", "embed.norm", cfg)
    return g.layer_norm(weights, rows, "embeddings.LayerNorm", "embed.norm", cfg), None, None


def _attention(g: _Int8Graph, weights: Weights, state: _State, masks: tuple[str, str], i: int,
               cfg: BertConfig) -> _State:
    """Self-attention with integer GEMMs, an exact-integer softmax denominator, and no bias passes.

    Two biases cost nothing: the key bias adds ``q . b_k`` to every score of a
    query, which the softmax cancels, so it is dropped; the value bias comes
    out of the softmax-weighted average unchanged, so it is folded into the
    output projection's bias. And the row scale of the token, common to a
    key's whole row, rides on the key's quantisation scale instead of on
    every element.
    """
    h, d = cfg.hidden_size, cfg.head_size
    key = f"encoder.layer.{i}.attention"
    name = f"layer{i}.attn"
    additive, keep = masks
    x, values, row_scale = _entering(g, state, f"{name}.in")
    row_column = g.column(row_scale)

    def project(part: str) -> str:
        weight = _tensor(weights, f"{key}.self.{part}.weight", (h, h)).T
        return g.project(values, weight, f"{name}.{part}")

    def query_bias() -> str:
        return g.const(f"{name}.query.bias", _tensor(weights, f"{key}.self.query.bias", (h,)))

    if not g.fused:  # the twin's kernels below take the projections themselves
        query = g.op("Add", [g.op("Mul", [project("query"), row_column],
                                  f"{name}.query_scaled"), query_bias()], f"{name}.q")
        value = g.op("Mul", [project("value"), row_column], f"{name}.v")
    per_head_rows = g.const(f"{name}.head_rows", np.array([-1, d], np.int64))

    def head_values(part: str, rows: str, *, signed: bool) -> tuple[str, str]:
        """Per (token, head) quantised values (B, L, h, d) and scales (B, L, h)."""
        shaped = g.op("Reshape", [rows, per_head_rows], f"{name}.{part}_rows")
        quantised, scale = g.quantize_rows(shaped, f"{name}.{part}", signed=signed)
        return (g.op("Reshape", [quantised, "shape.heads"], f"{name}.{part}_heads"),
                g.op("Reshape", [scale, "shape.head_scales"], f"{name}.{part}_scale_heads"))

    if g.fused:
        q_rows, q_row_scale = g.kernel("QueryQuantize", [project("query"), row_scale, query_bias()],
                                       [f"{name}.q.q", f"{name}.q.scale"], f"{name}.q.quantize",
                                       group=d, floor=_floor(None))
        q = g.op("Reshape", [q_rows, "shape.heads"], f"{name}.q_heads")
        q_scale = g.op("Reshape", [q_row_scale, "shape.head_scales"], f"{name}.q_scale_heads")
    else:
        q, q_scale = head_values("q", query, signed=False)
    k, k_unit_scale = head_values("k", project("key"), signed=True)
    token_scale = g.op("Reshape", [row_scale, "shape.token_scales"], f"{name}.token_scale")
    k_scale = g.op("Mul", [k_unit_scale, token_scale], f"{name}.k_scale")  # (B, L, h)
    q_t = g.op("Transpose", [q], f"{name}.q_t", perm=[0, 2, 1, 3])  # (B, h, L, d)
    k_t = g.op("Transpose", [k], f"{name}.k_t", perm=[0, 2, 3, 1])  # (B, h, d, L)
    # y = (scores - max) / 2^squarings: 1/sqrt(d) and the exp's scaling ride on the q scales
    q_scale_t = g.column(g.op("Mul", [
        g.op("Transpose", [q_scale], f"{name}.q_scale_t", perm=[0, 2, 1]),
        g.scalar(1.0 / (math.sqrt(d) * 2 ** _EXP_SQUARINGS))], f"{name}.q_scale_exp"))
    k_scale_t = g.op("Unsqueeze", [g.op("Transpose", [k_scale], f"{name}.k_scale_t",
                                        perm=[0, 2, 1]), g.axes(2)], f"{name}.k_scale_keys")
    scores = g.integer_product(q_t, k_t, f"{name}.qk", zero=_ACTIVATION_ZERO)
    if g.fused:
        weights_q = g.kernel("AttentionWeights", [scores, q_scale_t, k_scale_t, additive],
                             [f"{name}.p_q"], f"{name}.softmax",
                             exp_floor=_f32(_EXP_FLOOR / 2 ** _EXP_SQUARINGS),
                             c3=_f32(1.0 / 6.0), probability_scale=_f32(1.0 / _PROBABILITY_LEVELS),
                             )[0]
    else:
        logits = g.op("Add", [g.op("Mul", [g.op("Mul", [scores, q_scale_t], f"{name}.qk_rows"),
                                           k_scale_t], f"{name}.qk_scaled"), additive],
                      f"{name}.masked")
        shifted = g.op("Sub", [logits, g.op("ReduceMax", [logits], f"{name}.peak", axes=[-1],
                                            keepdims=1)], f"{name}.shifted")
        probabilities = g.exp_nonpositive(shifted, f"{name}.exp")
        weights_q = g.op("QuantizeLinear", [probabilities, g.scalar(1.0 / _PROBABILITY_LEVELS),
                                            g.scalar(0, np.uint8)], f"{name}.p_q")
    out_weight = _tensor(weights, f"{key}.output.dense.weight", (h, h)).T
    out_bias = _with_value_bias(_tensor(weights, f"{key}.output.dense.bias", (h,)), out_weight,
                                _tensor(weights, f"{key}.self.value.bias", (h,)))
    if g.fused:
        v_ext, v_scale = g.kernel("ValueQuantize", [project("value"), row_scale, keep],
                                  [f"{name}.v_ext", f"{name}.v_scale"], f"{name}.v.quantize",
                                  heads=cfg.num_attention_heads, floor=_floor(None))
        weighted = g.integer_product(weights_q, v_ext, f"{name}.pv", zero=0)
        merged_values, merged_scale = g.kernel(
            "ContextQuantize", [weighted, v_scale], [f"{name}.out.in.q", f"{name}.out.in.scale"],
            f"{name}.context.quantize", floor=_floor(None))
        return g.residual_norm(
            weights, [(g.project(merged_values, out_weight, f"{name}.out"), merged_scale)],
            g.const(f"{name}.out.bias", out_bias), x, f"{key}.output.LayerNorm",
            f"{name}.norm", cfg)
    # v: one scale per text, head and column, over the text's real tokens only
    v_heads = g.op("Reshape", [value, "shape.heads"], f"{name}.v_heads")
    v_t = g.op("Mul", [g.op("Transpose", [v_heads], f"{name}.v_t", perm=[0, 2, 3, 1]), keep],
               f"{name}.v_real")  # (B, h, d, L), padded keys exactly 0
    v_scale = g.op("Div", [g.peak(v_t, f"{name}.v", -1), g.scalar(_SIGNED_LEVELS)],
                   f"{name}.v_scale")  # (B, h, d)
    v_q_rows, _ = g.quantize_rows(g.op("Flatten", [v_t], f"{name}.v_rows", axis=3),
                                  f"{name}.vq", signed=True, scale=v_scale)
    v_q = g.op("Transpose", [g.op("Reshape", [v_q_rows, g.op("Shape", [v_t], f"{name}.v_shape")],
                                  f"{name}.v_q_t")], f"{name}.v_q", perm=[0, 1, 3, 2])
    ones = g.op("ConstantOfShape", [g.op("Concat", [
        g.op("Shape", [v_q], f"{name}.v_q_shape", end=3), g.axes(1)], f"{name}.ones_shape",
        axis=0)], f"{name}.ones", value=helper.make_tensor("value", TensorProto.INT8, [1], [1]))
    v_ext = g.op("Concat", [v_q, ones], f"{name}.v_ext", axis=3)
    weighted = g.integer_product(weights_q, v_ext, f"{name}.pv", zero=0)
    g.nodes.append(helper.make_node("Split", [weighted, g.const(f"{name}.pv_split", np.array(
        [d, 1], np.int64))], [f"{name}.numerator", f"{name}.denominator"],
        name=f"{name}.split_pv", axis=3))
    v_scale_row = g.op("Unsqueeze", [v_scale, g.axes(2)], f"{name}.v_scale_row")  # (B,h,1,d)
    numerator = g.op("Mul", [f"{name}.numerator", v_scale_row], f"{name}.num_scaled")
    context = g.op("Div", [numerator, f"{name}.denominator"], f"{name}.ctx")
    context_t = g.op("Transpose", [context], f"{name}.context_t", perm=[0, 2, 1, 3])
    merged = g.op("Reshape", [context_t, "shape.rows"], f"{name}.context")
    projected = g.dense(merged, out_weight, out_bias, f"{name}.out")
    residual = g.op("Add", [projected, x], f"{name}.residual")
    return g.layer_norm(weights, residual, f"{key}.output.LayerNorm", f"{name}.norm", cfg), \
        None, None


def _with_value_bias(bias: npt.NDArray[np.float32], weight: npt.NDArray[np.float32],
                     value_bias: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """``bias + value_bias @ weight``, each sum exact then rounded once (no BLAS: its order
    depends on the CPU, and so would the built file's hash)."""
    products = value_bias.astype(np.float64)[:, None] * weight.astype(np.float64)  # exact
    folded = [math.fsum([float(b), *column]) for b, column in zip(bias, products.T, strict=True)]
    return np.array(folded, dtype=np.float32)


def _feed_forward(g: _Int8Graph, weights: Weights, state: _State, i: int, cfg: BertConfig, *,
                  last: bool = False) -> _State:
    """The feed-forward block in ``_FFN_SLICES`` slices of the inner width, summed in order.

    Each slice is up-projection, GELU and down-projection of its own inner
    columns, with its own quantisation scales (finer scales: mean cosine to
    FP32 0.9957 with one slice, 0.9967 with four, at the same speed); the
    slices' float outputs are added in slice order (fixed, element-wise).
    """
    h, inner = cfg.hidden_size, cfg.intermediate_size
    key = f"encoder.layer.{i}"
    name = f"layer{i}.ffn"
    x, values, row_scale = _entering(g, state, f"{name}.in")
    row_column = g.column(row_scale)
    up_weight = _tensor(weights, f"{key}.intermediate.dense.weight", (inner, h)).T
    up_bias = _tensor(weights, f"{key}.intermediate.dense.bias", (inner,))
    down_weight = _tensor(weights, f"{key}.output.dense.weight", (h, inner)).T
    width = inner // _FFN_SLICES
    total = ""
    parts: list[tuple[str, str]] = []
    for part in range(_FFN_SLICES):
        cols = slice(part * width, (part + 1) * width)
        slice_name = f"{name}.slice{part}"
        if g.fused:
            down_values, down_scale = g.kernel(
                "GeluQuantize", [g.project(values, up_weight[:, cols], f"{slice_name}.up"),
                                 row_scale, g.const(f"{slice_name}.up.bias", up_bias[cols])],
                [f"{slice_name}.down.in.q", f"{slice_name}.down.in.scale"],
                f"{slice_name}.gelu", floor=_floor(_GELU_MINIMUM), clamp=_f32(_GELU_CLAMP),
                **{f"c{i}": _f32(c) for i, c in enumerate(GELU_TAIL) if i})
            parts.append((g.project(down_values, down_weight[cols], f"{slice_name}.down"),
                          down_scale))
            continue
        up = g.op("Add", [g.op("Mul", [g.project(values, up_weight[:, cols], f"{slice_name}.up"),
                                       row_column], f"{slice_name}.up_scaled"),
                          g.const(f"{slice_name}.up.bias", up_bias[cols])], f"{slice_name}.up")
        activated = g.gelu(up, f"{slice_name}.gelu")
        down_values, down_scale = g.quantize_rows(activated, f"{slice_name}.down.in",
                                                  signed=False, magnitude_below=_GELU_MINIMUM)
        down = g.op("Mul", [g.project(down_values, down_weight[cols], f"{slice_name}.down"),
                            g.column(down_scale)], f"{slice_name}.down_scaled")
        total = down if not total else g.op("Add", [total, down], f"{slice_name}.sum")
    down_bias = g.const(f"{name}.down.bias", _tensor(weights, f"{key}.output.dense.bias", (h,)))
    if g.fused:
        return g.residual_norm(weights, parts, down_bias, x, f"{key}.output.LayerNorm",
                               f"{name}.norm", cfg, quantize=not last)
    biased = g.op("Add", [total, down_bias], f"{name}.down")
    residual = g.op("Add", [biased, x], f"{name}.residual")
    return g.layer_norm(weights, residual, f"{key}.output.LayerNorm", f"{name}.norm", cfg), \
        None, None


def _masks(g: _Int8Graph) -> tuple[str, str]:
    """(additive key mask for the logits, 0/1 key mask), both (B, 1, 1, L)."""
    keep = g.op("Unsqueeze", [g.op("Cast", ["attention_mask"], "mask.float",
                                   to=TensorProto.FLOAT), g.axes(1, 2)], "mask.keep")
    additive = g.op("Mul", [g.op("Sub", [g.scalar(1.0), keep], "mask.inverted"),
                            g.scalar(-10000.0)], "mask.additive")
    return additive, keep


def build_bert_int8_graph(weights: Weights, cfg: BertConfig, *, name: str,
                          fused: bool = False) -> onnx.ModelProto:
    """The int8 ONNX model of the encoder ``cfg`` with float ``weights`` (HF key names).

    ``fused`` builds its twin: the same computation with each element-wise chain
    as one node of :mod:`cyberian.kernels` (same bits, fewer passes over memory).
    """
    g = _Int8Graph(fused=fused)
    h, heads, d = cfg.hidden_size, cfg.num_attention_heads, cfg.head_size
    batch_length = g.op("Shape", ["input_ids"], "shape.outer")
    g.op("Concat", [batch_length, g.const("shape.heads_tail", np.array([heads, d], np.int64))],
         "shape.heads", axis=0)
    g.op("Concat", [batch_length, g.const("shape.scales_tail", np.array([heads], np.int64))],
         "shape.head_scales", axis=0)
    g.op("Concat", [batch_length, g.const("shape.token_tail", np.array([1], np.int64))],
         "shape.token_scales", axis=0)
    g.op("Concat", [batch_length, g.const("shape.hidden_tail", np.array([h], np.int64))],
         "shape.states", axis=0)
    state = _embeddings(g, weights, cfg)
    masks = _masks(g)
    for i in range(cfg.num_hidden_layers):
        state = _feed_forward(g, weights, _attention(g, weights, state, masks, i, cfg), i, cfg,
                              last=i == cfg.num_hidden_layers - 1)
    g.nodes.append(helper.make_node("Reshape", [state[0], "shape.states"], ["last_hidden_state"],
                                    name="output"))

    def int_input(input_name: str) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(input_name, TensorProto.INT64, ["batch", "sequence"])

    graph = helper.make_graph(
        g.nodes, name,
        [int_input("input_ids"), int_input("attention_mask"), int_input("token_type_ids")],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                       ["batch", "sequence", h])],
        initializer=g.initializers,
    )
    domains = [helper.make_opsetid(KERNEL_DOMAIN, 1)] if fused else []
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET),
                                                  helper.make_opsetid("com.microsoft", 1),
                                                  *domains],
                              producer_name="cyberian.models.bert_int8",
                              producer_version=INT8_BUILDER_VERSION, ir_version=IR_VERSION)
    helper.set_model_props(model, {"builder_version": INT8_BUILDER_VERSION, "quantization":
                                   "int8", **{k: str(v) for k, v in cfg.as_dict().items()}})
    return model
