"""FLOPs of a BERT encoder pass, and the machine's measured FP32 matrix-multiply rate.

FLOPs per text of ``L`` real tokens (multiply-add = 2 FLOPs), per layer::

    2 * L * (4 * H^2 + 2 * H * I)      Q, K, V and output projections; the two FFN GEMMs
  + 4 * L^2 * H                        attention scores (Q K^T) and context (P V)

times the number of layers. Embedding lookups, LayerNorm, softmax, GELU and
pooling are O(L * H) and left out; padding is not counted (it is waste, not
work), so the figure is *useful* FLOPs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["EncoderShape", "encoder_flops", "matmul_rate"]


@dataclass(frozen=True)
class EncoderShape:
    """The dimensions that decide an encoder's FLOPs."""

    layers: int
    hidden: int
    intermediate: int

    def flops(self, tokens: int) -> int:
        """Useful FLOPs of one forward pass over ``tokens`` real tokens."""
        h, i = self.hidden, self.intermediate
        per_layer = 2 * tokens * (4 * h * h + 2 * h * i) + 4 * tokens * tokens * h
        return self.layers * per_layer

    def formula(self) -> str:
        """The formula with this model's numbers filled in."""
        h, i = self.hidden, self.intermediate
        return (f"{self.layers} x (2 L (4 H^2 + 2 H I) + 4 L^2 H), H={h}, I={i} "
                f"= {self.layers * 2 * (4 * h * h + 2 * h * i):,} L + "
                f"{self.layers * 4 * h:,} L^2")


def encoder_flops(shape: EncoderShape, token_counts: Sequence[int]) -> int:
    """Useful FLOPs to embed texts with these token counts."""
    return sum(shape.flops(count) for count in token_counts)


_MATMUL_SCRIPT = """
import json, time, numpy as np
n = 2048
rng = np.random.default_rng(0)
a = rng.standard_normal((n, n), dtype=np.float32)
b = rng.standard_normal((n, n), dtype=np.float32)
a @ b
best = float("inf")
for _ in range(REPEATS):
    start = time.perf_counter()
    a @ b
    best = min(best, time.perf_counter() - start)
print(json.dumps({"seconds": best, "flops_per_second": 2 * n ** 3 / best}))
"""


def matmul_rate(threads: int, *, repeats: int = 5) -> float:
    """FP32 FLOP/s of numpy's 2048x2048 matmul with ``threads`` BLAS threads (best of runs).

    Measured in a child process, because a BLAS library reads its thread
    count once, when numpy is first imported.
    """
    env = dict(os.environ)
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                 "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
        env[name] = str(threads)
    script = _MATMUL_SCRIPT.replace("REPEATS", str(repeats))
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, check=True)
    rate: float = json.loads(result.stdout)["flops_per_second"]
    return rate
