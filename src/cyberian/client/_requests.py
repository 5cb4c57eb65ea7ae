"""Request bodies: the JSON of a job or a ``/verify`` claim, and the parameters of an upload.

Each builder checks what the caller gave (one dialect, lists not strings)
and raises :class:`ValueError` / :class:`TypeError` before anything is sent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

__all__ = [
    "SpecSource",
    "UploadSource",
    "job_body",
    "read_spec_yaml",
    "read_upload",
    "upload_params",
    "verify_body",
]

SpecSource: TypeAlias = str | os.PathLike[str]
"""A CES given as YAML text, a path, or a string naming an existing file."""
UploadSource: TypeAlias = str | os.PathLike[str] | bytes | bytearray | memoryview
"""An ONNX model given as a file path or as its bytes."""


def read_spec_yaml(spec_yaml: SpecSource) -> str:
    """CES text from YAML text, a :class:`~pathlib.Path`, or a string naming an existing file."""
    if not isinstance(spec_yaml, str):
        return Path(spec_yaml).read_text(encoding="utf-8")
    if "\n" in spec_yaml or not spec_yaml.strip():
        return spec_yaml
    candidate = Path(spec_yaml.strip()).expanduser()
    try:
        is_file = candidate.is_file()
    except (OSError, ValueError):  # too long, NUL byte: not a path
        is_file = False
    if is_file:
        return candidate.read_text(encoding="utf-8")
    if candidate.suffix.lower() in (".yaml", ".yml"):
        raise FileNotFoundError(f"spec file not found: {spec_yaml}")
    return spec_yaml


def _text_list(values: Sequence[str], name: str) -> list[str]:
    if isinstance(values, str | bytes):
        raise TypeError(f"{name} must be a list of strings, not a single string")
    return list(values)


def job_body(
    *,
    model: str | None,
    inputs: Sequence[str] | None,
    spec_yaml: SpecSource | None,
    input_texts: Sequence[str] | None,
) -> dict[str, Any]:
    """The JSON body of a job in exactly one dialect: ``model``+``inputs`` or
    ``spec_yaml``+``input_texts``; :class:`ValueError` otherwise."""
    spec_dialect = spec_yaml is not None or input_texts is not None
    model_dialect = model is not None or inputs is not None
    if spec_dialect == model_dialect:
        raise ValueError(
            "pass either model= and inputs= or spec_yaml= and input_texts= (exactly one dialect)"
        )
    if spec_dialect:
        if spec_yaml is None or input_texts is None:
            raise ValueError("spec_yaml= and input_texts= must be given together")
        return {
            "spec_yaml": read_spec_yaml(spec_yaml),
            "input_texts": _text_list(input_texts, "input_texts"),
        }
    if model is None or inputs is None:
        raise ValueError("model= and inputs= must be given together")
    return {"model": model, "inputs": _text_list(inputs, "inputs")}


def verify_body(
    *,
    model: str | None,
    inputs: Sequence[str] | None,
    spec_yaml: SpecSource | None,
    input_texts: Sequence[str] | None,
    claimed_output_commitment: str | None,
    claimed_output_commitments: Sequence[str] | None,
    environment: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body of ``POST /verify``: a job body plus exactly one kind of claim (and
    the claimant's environment manifest, when given)."""
    if (claimed_output_commitment is None) == (claimed_output_commitments is None):
        raise ValueError(
            "pass exactly one of claimed_output_commitment (one block) or "
            "claimed_output_commitments (one per block)"
        )
    body = job_body(model=model, inputs=inputs, spec_yaml=spec_yaml, input_texts=input_texts)
    if claimed_output_commitments is not None:
        body["claimed_output_commitments"] = _text_list(
            claimed_output_commitments, "claimed_output_commitments"
        )
    else:
        body["claimed_output_commitment"] = claimed_output_commitment
    if environment is not None:
        body["environment"] = dict(environment)
    return body


def read_upload(file: UploadSource) -> bytes:
    """The bytes of an ONNX model given as bytes or as a file path."""
    if isinstance(file, bytes | bytearray | memoryview):
        return bytes(file)
    return Path(file).read_bytes()


def upload_params(
    *,
    name: str,
    output_dimensions: int,
    tokenizer: str,
    max_sequence_length: int | None,
    pooling_strategy: str | None,
    normalize: bool | None,
    description: str | None,
) -> dict[str, str | int]:
    """Query parameters of ``POST /models/upload`` (optional ones only when given)."""
    params: dict[str, str | int] = {
        "name": name,
        "output_dimensions": int(output_dimensions),
        "tokenizer": tokenizer,
    }
    if max_sequence_length is not None:
        params["max_sequence_length"] = int(max_sequence_length)
    if pooling_strategy is not None:
        params["pooling_strategy"] = pooling_strategy
    if normalize is not None:
        params["normalize"] = "true" if normalize else "false"
    if description is not None:
        params["description"] = description
    return params
