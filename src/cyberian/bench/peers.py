"""The tools people use today, run the way people run them, for the throughput comparison.

* :func:`naive_onnxruntime` — plain ONNX Runtime, default session options
  (only the thread count set, to compare like with like), the texts in file
  order in fixed batches of 32, each padded to its longest text, float32
  mean pooling with numpy.
* :func:`tuned_onnxruntime` — ONNX Runtime with determinism traded for speed
  (all graph optimisations, the tanh GELU approximation, optionally the fused
  ``Attention`` contrib kernel), sorted length-bucketed batches, optionally in
  lanes (one batch per thread at a time, as our runtime does).
* :func:`sentence_transformers_rows` — ``sentence-transformers`` on PyTorch
  CPU (the optional ``bench`` extra), default settings (it sorts by length
  and uses batches of 32).

Each returns the rows so the report can compare vectors, not only speed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..runtime import in_lanes, plan_batches

__all__ = ["OrtVariant", "Timed", "naive_onnxruntime", "sentence_transformers_rows",
           "timed", "tuned_onnxruntime"]

Rows = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Timed:
    """Rows and the best wall time over the repeats."""

    rows: Rows
    seconds: float


def timed(run: Callable[[], Rows], repeats: int) -> Timed:
    """Run ``run`` ``repeats`` times (after it was warmed up by the caller); keep the fastest."""
    best, rows = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        rows = run()
        best = min(best, time.perf_counter() - start)
    assert rows is not None
    return Timed(rows, best)


def _tokenizer(path: Path, max_length: int, *, pad: bool) -> Any:
    from tokenizers import Tokenizer  # noqa: PLC0415

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length)
    if pad:
        tokenizer.enable_padding()
    else:
        tokenizer.no_padding()
    return tokenizer


def _float32_mean_pool(states: Rows, mask: npt.NDArray[np.int64]) -> Rows:
    weights = mask[..., None].astype(np.float32)
    pooled = (states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    normalised: Rows = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
    return normalised


def naive_onnxruntime(model: Path, tokenizer_path: Path, max_length: int, threads: int,
                      texts: Sequence[str]) -> Callable[[], Rows]:
    """A runner for the naive baseline (session built now, texts run on each call)."""
    import onnxruntime as ort  # noqa: PLC0415

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    tokenizer = _tokenizer(tokenizer_path, max_length, pad=True)
    names = {node.name for node in session.get_inputs()}

    def run() -> Rows:
        out = []
        for start in range(0, len(texts), 32):
            encodings = tokenizer.encode_batch(list(texts[start:start + 32]))
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            (states,) = session.run(["last_hidden_state"], {k: feeds[k] for k in names})
            out.append(_float32_mean_pool(states, mask))
        return np.concatenate(out)

    return run


@dataclass(frozen=True)
class OrtVariant:
    """One non-deterministic ONNX Runtime configuration to try."""

    name: str
    model: Path
    level: str = "all"
    gelu_approximation: bool = True
    max_batch_tokens: int = 512
    lanes: bool = False
    """Run batches concurrently, one per thread, each with one intra-op thread."""


def tuned_onnxruntime(variant: OrtVariant, tokenizer_path: Path, max_length: int, threads: int,
                      texts: Sequence[str]) -> Callable[[], Rows]:
    """A runner for one tuned, non-deterministic configuration."""
    import onnxruntime as ort  # noqa: PLC0415

    levels = {"extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1 if variant.lanes else threads
    options.graph_optimization_level = levels[variant.level]
    if variant.gelu_approximation:
        options.add_session_config_entry("optimization.enable_gelu_approximation", "1")
    session = ort.InferenceSession(str(variant.model), options,
                                   providers=["CPUExecutionProvider"])
    tokenizer = _tokenizer(tokenizer_path, max_length, pad=False)

    def run() -> Rows:
        encoded = [e.ids for e in tokenizer.encode_batch(list(texts))]
        lengths = [len(ids) for ids in encoded]

        def one(batch: list[int]) -> Rows:
            ids = np.zeros((len(batch), max(lengths[i] for i in batch)), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, index in enumerate(batch):
                ids[row, : lengths[index]] = encoded[index]
                mask[row, : lengths[index]] = 1
            (states,) = session.run(["last_hidden_state"], {
                "input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
            return _float32_mean_pool(states, mask)

        out = np.empty((len(texts), 0), dtype=np.float32)
        batches = plan_batches(lengths, max_batch_tokens=variant.max_batch_tokens)
        for batch, pooled in in_lanes(one, batches, lengths, threads if variant.lanes else 1):
            if out.shape[1] == 0:
                out = np.empty((len(texts), pooled.shape[1]), dtype=np.float32)
            out[batch] = pooled
        return out

    return run


def sentence_transformers_rows(model_dir: Path, threads: int,
                               texts: Sequence[str]) -> Callable[[], Rows]:
    """A runner for sentence-transformers on PyTorch CPU (ImportError without the extra)."""
    import torch  # noqa: PLC0415
    from sentence_transformers import SentenceTransformer  # noqa: PLC0415

    torch.set_num_threads(threads)
    model = SentenceTransformer(str(model_dir), device="cpu")

    def run() -> Rows:
        rows = model.encode(list(texts), batch_size=32, convert_to_numpy=True,
                            show_progress_bar=False)
        return np.asarray(rows, dtype=np.float32)

    return run
