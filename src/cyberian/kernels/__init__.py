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
    "QuantizeRows": "a row's peak (ReduceMax/ReduceMin), its scale (Div) and the rounding to "
                    "unsigned operands 1..255 about 128",
    "QuantizeRowsSigned": "the same to signed operands -63..63",
    "LayerNormQuantize": "the layer norm of element-wise ops and exact-integer sums, then "
                         "QuantizeRows of its result",
    "ResidualNorm1": "a projection's scaling (Mul), bias and residual Add, then "
                     "LayerNormQuantize",
    "ResidualNorm4": "the four feed-forward slices' scalings, summed in slice order, then "
                     "ResidualNorm1's chain",
    "GeluQuantize": "scaling, bias, the GELU polynomial of element-wise ops, then QuantizeRows",
    "AttentionWeights": "score scaling and mask (Mul, Add), the row peak (ReduceMax), the exp "
                        "polynomial of element-wise ops and QuantizeLinear",
}
"""The operations of :data:`KERNEL_DOMAIN`, each with the standard chain it computes."""
