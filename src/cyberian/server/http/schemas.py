"""Request bodies of the JSON routes (their OpenAPI schemas come from these models).

Types are strict (a number is not a text); unknown fields are ignored, so
clients that send extra fields keep working. Lists stop at their first
wrong item (``fail_fast``), so a list of a million numbers costs one error,
not a million. Which fields must go together is
checked by :mod:`cyberian.server.model_resolver`, which can say exactly what
is missing.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["EmbeddingsRequest", "JobRequest", "RevokeRequest", "VerifyRequest"]


class JobRequest(BaseModel):
    """A batch to embed: ``model`` + ``inputs``, or ``spec_yaml`` + ``input_texts``."""

    model_config = ConfigDict(strict=True, extra="ignore")

    model: str | None = Field(default=None, max_length=200,
                              description="A catalog model's name or your uploaded model's id.")
    inputs: list[str] | None = Field(default=None, fail_fast=True,
                                     description="The texts (model dialect).")
    spec_yaml: str | None = Field(default=None,
                                  description="CES text naming its files by SHA-256 only.")
    input_texts: list[str] | None = Field(default=None, fail_fast=True,
                                          description="The texts (spec dialect).")


class VerifyRequest(JobRequest):
    """A VaaS request: a job body plus exactly one kind of claimed output commitment."""

    claimed_output_commitment: str | None = Field(
        default=None, description="SHA-256 (hex) of all output rows as little-endian float32.")
    claimed_output_commitments: list[str] | None = Field(
        default=None, fail_fast=True,
        description="One SHA-256 per block of the spec's vaas_block inputs.")
    environment: dict[str, Any] | None = Field(
        default=None,
        description="The claimant's environment manifest (as cyberian-prove records it); its "
                    "cpu.class is compared with the verifier's before any work: a class this "
                    "verifier cannot reproduce is refused with 409 cpu_class_mismatch.")


class RevokeRequest(BaseModel):
    """Which key to revoke."""

    model_config = ConfigDict(strict=True, extra="ignore")

    key_id: str = Field(min_length=1, max_length=64, description="The key's public key_id.")


_INPUT_SCHEMA: dict[str, Any] = {"anyOf": [
    {"type": "string", "minLength": 1},
    {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}]}


class EmbeddingsRequest(BaseModel):
    """OpenAI's embeddings request: ``model``, ``input`` and the options we honour."""

    model_config = ConfigDict(strict=True, extra="ignore")

    model: str = Field(max_length=200, description="A model id from GET /v1/models.")
    input: Any = Field(json_schema_extra=_INPUT_SCHEMA,
                       description="A text or a list of texts (token-id arrays are refused: "
                                   "the server must tokenize what it certifies).")
    encoding_format: Literal["float", "base64"] = Field(
        default="float", description="base64: each vector as little-endian float32 bytes.")
    dimensions: int | None = Field(
        default=None, ge=1, description="Only the model's own dimension count is accepted.")
    user: str | None = Field(default=None, max_length=1000,
                             description="Accepted and ignored.")
