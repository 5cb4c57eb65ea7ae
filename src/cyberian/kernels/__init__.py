"""Fused kernels for the int8 graph: the same bits as its standard operations, fewer passes.

The int8 graph (:mod:`cyberian.models.bert_int8`) spends half its time in
chains of element-wise ONNX operations -- a layer norm is some twenty of
them, each a pass over memory. Its *fused twin*, built by the same recipe
and pinned beside it, replaces each chain with one node of the domain
``ai.cyberian.int8``, computed by ``kernels.c``: the same correctly rounded
float32 operations in the same order, one pass. The runtime loads the twin
when the recipe pins one and the kernels compile here
(:func:`kernel_library`); otherwise the standard graph runs. Either way the
spec's pin check is on the standard graph's bytes, and the output bytes are
the same (the tests compare them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from .library import (
    KernelLibrary,
    kernel_library,
    kernel_source_sha256,
    kernels_enabled,
    unavailable_reason,
)

__all__ = ["KERNEL_DOMAIN", "KERNEL_OPS", "KernelLibrary", "kernel_library", "kernel_source_sha256",
           "kernels_enabled", "unavailable_reason"]

KERNEL_DOMAIN: Final = "ai.cyberian.int8"
"""The ONNX domain (version 1) of the fused kernels' operations."""

KERNEL_OPS: Final[Mapping[str, str]] = {
    "QuantizeRowsSigned": "a row's peak (ReduceMax, ReduceMin), its scale (Div) and the "
                          "rounding to signed operands -63..63 (QuantizeLinear)",
    "LayerNormQuantize": "the layer norm of element-wise ops and exact-integer sums, then "
                         "the rounding of its rows to unsigned operands 1..255 about 128",
    "ResidualNorm1": "a projection's scaling (Mul), bias and residual Add, then "
                     "LayerNormQuantize",
    "ResidualNorm4": "the four feed-forward slices' scalings, summed in slice order, then "
                     "ResidualNorm1's chain",
    "GeluQuantize": "scaling, bias, the GELU polynomial of element-wise ops, then the rounding "
                    "of each row to unsigned operands",
    "AttentionWeights": "score scaling and mask (Mul, Add), the row peak (ReduceMax), the exp "
                        "polynomial of element-wise ops and QuantizeLinear",
    "QueryQuantize": "the query's scaling and bias (Mul, Add), then per head the rounding to "
                     "unsigned operands 1..255 about 128 on the head's own scale",
    "ValueQuantize": "the value's scaling (Mul), the transpose to columns, the padding mask "
                     "(Mul), each column's peak over the real tokens (Div by 63) and its "
                     "rounding (QuantizeLinear), with the column of ones appended (Concat)",
    "ContextQuantize": "the split of numerator and denominator, the value scales (Mul), the "
                       "softmax division (Div), the heads side by side (Transpose) and the "
                       "rounding of each token's row to unsigned operands",
}
"""The operations of :data:`KERNEL_DOMAIN`, each with the standard chain it computes."""
