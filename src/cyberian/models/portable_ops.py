"""The ops the BERT graphs may contain, and why each one keeps the bytes portable.

Every op below was measured (``cyberian bench ops``; table in
docs/DETERMINISM.md) to give the same bytes on AVX2+FMA3 and AVX-512, or does
no floating-point arithmetic at all. Whatever is not listed is refused by the
builder's test -- notably ``Softmax`` (MLAS sums its exponentials in lanes as
wide as the vector registers, so AVX2 and AVX-512 round differently) and
``ReduceSum``/``ReduceMean`` (their SIMD lanes regroup the real terms when
padding changes a row's length, which breaks padding invariance).

:data:`PORTABLE_FP32_OPS` covers the graph as built; ONNX Runtime's optimiser
at the spec's level fuses some of them, and :data:`FUSED_FP32_OPS` lists the
kernels that then run instead, each measured the same way.

:data:`PORTABLE_INT8_OPS` is the stricter list of the int8 graph, which must
give the same bytes on *every* class (x86-64 with and without FMA, ARM64): no
float GEMM, no transcendental kernel, no float reduction except maxima,
minima and sums of whole numbers below 2^24. ONNX Runtime's optimiser adds no
kernel to that graph at any level (a test checks).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

__all__ = ["FUSED_FP32_OPS", "PORTABLE_FP32_OPS", "PORTABLE_INT8_OPS"]

_NO_ARITHMETIC: Final = "moves, selects or reshapes values: no floating-point arithmetic"
_ELEMENTWISE: Final = ("one correctly rounded IEEE operation per element, the same on every "
                       "class measured")

_MOVES: Final[Mapping[str, str]] = {
    "Gather": _NO_ARITHMETIC + " (embedding rows)",
    "Shape": _NO_ARITHMETIC,
    "Slice": _NO_ARITHMETIC + " (position rows)",
    "Cast": "int64 mask to float: 0 and 1 are exact",
    "Unsqueeze": _NO_ARITHMETIC,
    "Reshape": _NO_ARITHMETIC,
    "Transpose": _NO_ARITHMETIC,
    "Split": _NO_ARITHMETIC,
}

PORTABLE_FP32_OPS: Final[Mapping[str, str]] = {
    **_MOVES,
    "Concat": _NO_ARITHMETIC + " (shape vectors)",
    "Identity": _NO_ARITHMETIC,
    "Add": _ELEMENTWISE,
    "Sub": _ELEMENTWISE,
    "Mul": _ELEMENTWISE,
    "Div": _ELEMENTWISE,
    "ReduceMax": "a maximum is exact in any order and any lane grouping",
    "MatMul": ("MLAS SGEMM: each output element is one FMA chain in K order; the AVX2 and "
               "AVX-512 kernels differ only in how many columns share a register (measured "
               "equal); the K order also makes padded keys add exact zeros last"),
    "Gemm": ("MLAS SGEMM with the bias as C: each output starts at its bias and each K block "
             "of the FMA chain is added onto it, in K order; the same driver on AVX2 and "
             "AVX-512 (measured equal)"),
    "Exp": ("MLAS exp: the same FMA polynomial per element on AVX2 and AVX-512 (measured "
            "equal); only ever applied to scores minus their row maximum"),
    "Erf": "MLAS erf: one FMA3 kernel serves AVX2 and AVX-512 (measured equal)",
    "LayerNormalization": ("per token, the same code on AVX2 and AVX-512 (measured equal); "
                           "padding never enters a real token's statistics"),
}

FUSED_FP32_OPS: Final[Mapping[str, str]] = {
    "FusedMatMul": ("MatMul with its operands' per-head transposes and the following Mul by a "
                    "constant folded in by the optimiser: the operands are read in place "
                    "(strided, no copy) and the scale is applied to the finished FMA chain "
                    "(measured equal on AVX2 and AVX-512)"),
    "Gelu": ("the exact erf GELU (Div, Erf, Add, Mul, Mul) fused by the optimiser: "
             "x * (1/sqrt 2), MLAS erf, then 0.5 * x * (1 + erf) in a plain loop (measured "
             "equal on AVX2 and AVX-512)"),
}

_EXACT_EVERYWHERE: Final = ("one correctly rounded IEEE operation per element: the same on "
                            "AVX-512, AVX2, AVX, SSE4.2 and ARM64 (measured)")

PORTABLE_INT8_OPS: Final[Mapping[str, str]] = {
    **_MOVES,
    "Flatten": _NO_ARITHMETIC,
    "Concat": _NO_ARITHMETIC + " (shape vectors; v's column of ones)",
    "ConstantOfShape": _NO_ARITHMETIC + " (zero points)",
    "Add": _EXACT_EVERYWHERE,
    "Sub": _EXACT_EVERYWHERE,
    "Mul": _EXACT_EVERYWHERE,
    "Div": _EXACT_EVERYWHERE,
    "Sqrt": _EXACT_EVERYWHERE,
    "Round": "round half to even: exact on every class (measured)",
    "Abs": "exact (sign bit)",
    "Neg": "exact (sign bit)",
    "Relu": "exact (a comparison)",
    "Max": "exact (a comparison), any order",
    "Clip": "exact (comparisons)",
    "ReduceMax": "a maximum is exact in any order and any lane grouping",
    "ReduceMin": "a minimum is exact in any order and any lane grouping",
    "ReduceSum": ("only over whole numbers whose total stays below 2^24 (each row rounded to a "
                  "grid of its own first): every partial sum is exact, so every order and "
                  "lane grouping agrees -- a float ReduceSum of arbitrary values differs on "
                  "ARM64 (measured)"),
    "QuantizeLinear": ("one division by the row's scale, round half to even, saturate: the "
                       "same on every class (measured)"),
    "MatMulIntegerToFloat": ("exact int32 sums of u8 (1..255) by s8 (-63..63) operands -- no "
                             "pair of products reaches AVX2's 16-bit saturation (2 * 255 * 63 "
                             "= 32,130), no sum reaches 2^24 -- converted exactly to float and "
                             "multiplied by one scale per column, no bias in the epilogue (the "
                             "same on every class, measured)"),
}
