"""Which graph output an uploaded model's spec reads, and the spec it gets."""

from __future__ import annotations

import pytest

from cyberian.server.uploadspec import GraphOutput, UploadParams, choose_output, upload_spec_text
from cyberian.spec import parse_spec

STATES = GraphOutput("token_states", ("batch", "tokens", 32))
POOLED = GraphOutput("pooled", ("batch", 32))


def test_prefers_the_conventional_names_then_the_rank() -> None:
    assert choose_output([POOLED, STATES], "mean") == "token_states"
    assert choose_output([POOLED, STATES], "none") == "pooled"
    named = GraphOutput("last_hidden_state", None)
    assert choose_output([STATES, named], "cls") == "last_hidden_state"
    with pytest.raises(ValueError, match="no output of pooled rows"):
        choose_output([STATES], "none")


def test_the_spec_text_is_a_valid_ces_without_paths() -> None:
    params = UploadParams(name="acme", model_sha256="a" * 64, tokenizer_sha256="b" * 64,
                          dimensions=32, max_length=64, pooling="cls", normalize=False,
                          chunk_size=8, engine_version="1.32.0")
    spec = parse_spec(upload_spec_text(params, "token_states"))
    assert (spec.name, spec.model_sha256, spec.tokenizer_sha256) == ("acme", "a" * 64, "b" * 64)
    assert (spec.model_output, spec.pooling, spec.normalize) == ("token_states", "cls", False)
    assert (spec.dimensions, spec.max_length, spec.chunk_size) == (32, 64, 8)
    assert "file" not in spec.data["model"]
