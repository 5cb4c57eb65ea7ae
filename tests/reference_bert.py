"""An independent float64 numpy forward pass of a BERT encoder, for checking the ONNX graph.

Written from the BERT paper / Hugging Face semantics, sharing no code with
cyberian.models: it reads the weights by their Hugging Face names and uses
math.erf for the exact GELU.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _w(weights: Mapping[str, Any], key: str) -> np.ndarray:
    return np.asarray(weights[key], dtype=np.float64)


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _dense(weights: Mapping[str, Any], x: np.ndarray, key: str) -> np.ndarray:
    return x @ _w(weights, f"{key}.weight").T + _w(weights, f"{key}.bias")


def reference_forward(weights: Mapping[str, Any], config: Mapping[str, Any],
                      input_ids: list[int]) -> np.ndarray:
    """Token states (L, H) of one unpadded sequence, in float64."""
    heads = int(config["num_attention_heads"])
    eps = float(config.get("layer_norm_eps", 1e-12))
    length = len(input_ids)
    x = (_w(weights, "embeddings.word_embeddings.weight")[input_ids]
         + _w(weights, "embeddings.position_embeddings.weight")[:length]
         + _w(weights, "embeddings.token_type_embeddings.weight")[0])
    x = _layer_norm(x, _w(weights, "embeddings.LayerNorm.weight"),
                    _w(weights, "embeddings.LayerNorm.bias"), eps)
    hidden = x.shape[1]
    size = hidden // heads
    for i in range(int(config["num_hidden_layers"])):
        base = f"encoder.layer.{i}"
        q = _dense(weights, x, f"{base}.attention.self.query").reshape(length, heads, size)
        k = _dense(weights, x, f"{base}.attention.self.key").reshape(length, heads, size)
        v = _dense(weights, x, f"{base}.attention.self.value").reshape(length, heads, size)
        scores = np.einsum("qhd,khd->hqk", q, k) / math.sqrt(size)
        scores -= scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=-1, keepdims=True)
        context = np.einsum("hqk,khd->qhd", probs, v).reshape(length, hidden)
        attn = _dense(weights, context, f"{base}.attention.output.dense")
        x = _layer_norm(attn + x, _w(weights, f"{base}.attention.output.LayerNorm.weight"),
                        _w(weights, f"{base}.attention.output.LayerNorm.bias"), eps)
        inner = _dense(weights, x, f"{base}.intermediate.dense")
        inner = 0.5 * inner * (1.0 + _erf(inner / math.sqrt(2.0)))
        out = _dense(weights, inner, f"{base}.output.dense")
        x = _layer_norm(out + x, _w(weights, f"{base}.output.LayerNorm.weight"),
                        _w(weights, f"{base}.output.LayerNorm.bias"), eps)
    return x
