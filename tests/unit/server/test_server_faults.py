"""The test-only fault-injection directives."""

from __future__ import annotations

import pytest

from cyberian.server.workers.faults import ENV_VAR, Faults, faults_from_env, parse_faults


def test_directives_parse() -> None:
    faults = parse_faults("corrupt-chunk:3, corrupt-chunk:0,slow-chunk:0.25")
    assert faults == Faults(frozenset({0, 3}), 0.25)
    assert faults.describe() == "corrupt chunk 0, corrupt chunk 3, sleep 0.25 s per chunk"


def test_unset_means_no_faults() -> None:
    assert faults_from_env({}) is None
    assert faults_from_env({ENV_VAR: "  "}) is None
    assert faults_from_env({ENV_VAR: "corrupt-chunk:1"}) == Faults(frozenset({1}))


@pytest.mark.parametrize("text", ["corrupt-chunk:-1", "corrupt-chunk:x", "slow-chunk:999",
                                  "explode:1", "corrupt-chunk"])
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=ENV_VAR):
        parse_faults(text)
