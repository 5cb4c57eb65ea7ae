"""The CES of an uploaded model: which graph output it reads and the spec text itself.

Pure functions, shared by the upload route and the worker that validates an
upload with ONNX Runtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import yaml

__all__ = ["GraphOutput", "UploadParams", "choose_output", "upload_spec_text"]


@dataclass(frozen=True)
class GraphOutput:
    """One output of an ONNX graph: its name and shape (``None`` / str for dynamic dims)."""

    name: str
    shape: tuple[int | str | None, ...] | None


@dataclass(frozen=True)
class UploadParams:
    """What an upload's query parameters and the chosen tokenizer pin."""

    name: str
    model_sha256: str
    tokenizer_sha256: str
    dimensions: int
    max_length: int
    pooling: str
    normalize: bool
    chunk_size: int
    engine_version: str


def choose_output(outputs: Sequence[GraphOutput], pooling: str) -> str:
    """The graph output a spec should read: token states (rank 3), or pooled rows for ``none``.

    Prefers ``last_hidden_state`` (or ``sentence_embedding`` for ``none``), then the
    first output of the right rank. ValueError when there is none.
    """
    rank = 2 if pooling == "none" else 3
    preferred = "sentence_embedding" if pooling == "none" else "last_hidden_state"
    names = [output.name for output in outputs]
    if preferred in names:
        return preferred
    for output in outputs:
        if output.shape is not None and len(output.shape) == rank:
            return output.name
    wanted = ("pooled rows (batch, dims)" if pooling == "none"
              else "token states (batch, tokens, dims)")
    raise ValueError(f"the model has no output of {wanted}; its outputs are {names}")


def upload_spec_text(params: UploadParams, output: str) -> str:
    """The CES text of an uploaded model (no file paths: the store resolves the hashes)."""
    document = {
        "version": "1.0",
        "name": params.name,
        "task": "embedding",
        "model": {"sha256": params.model_sha256, "output": output},
        "tokenizer": {"sha256": params.tokenizer_sha256, "max_length": params.max_length},
        "pooling": params.pooling,
        "normalize": params.normalize,
        "output": {"dimensions": params.dimensions, "dtype": "float32"},
        "runtime": {"engine": "onnxruntime", "version": params.engine_version},
        "chunking": {"chunk_size": params.chunk_size},
    }
    return yaml.safe_dump(document, sort_keys=False)
