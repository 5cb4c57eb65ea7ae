"""Idempotency helpers: fingerprints, key validation, single flight of duplicates."""

from __future__ import annotations

import asyncio

import pytest

from cyberian.server.errors import ApiProblem
from cyberian.server.idempotency import SingleFlight, check_key, fingerprint


def test_fingerprint_ignores_key_order_but_not_content() -> None:
    assert fingerprint({"a": 1, "b": ["x", "é"]}) == fingerprint({"b": ["x", "é"], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})
    assert fingerprint({"inputs": ["a", "b"]}) != fingerprint({"inputs": ["b", "a"]})


def test_keys_are_visible_ascii_up_to_255() -> None:
    assert check_key(None) is None
    assert check_key("k" * 255) == "k" * 255
    for bad in ("", "k" * 256, "with space", "tab\t"):
        with pytest.raises(ApiProblem):
            check_key(bad)


def test_duplicates_share_one_call_and_other_bodies_are_409() -> None:
    calls = []

    async def work() -> str:
        calls.append(1)
        await asyncio.sleep(0.05)
        return "receipt"

    async def scenario() -> None:
        flight: SingleFlight[str] = SingleFlight()
        results = await asyncio.gather(*(flight.run(("acct", "k"), "sha", work, "k")
                                         for _ in range(3)))
        assert results == ["receipt"] * 3
        assert len(calls) == 1
        first = asyncio.create_task(flight.run(("acct", "k2"), "sha", work, "k2"))
        await asyncio.sleep(0)
        with pytest.raises(ApiProblem) as clash:
            await flight.run(("acct", "k2"), "other", work, "k2")
        assert clash.value.code == "idempotency_key_reused"
        assert await first == "receipt"

    asyncio.run(scenario())


def test_a_failure_is_shared_too() -> None:
    async def refuse() -> str:
        await asyncio.sleep(0.01)
        raise ApiProblem(422, "verification_failed", "no")

    async def scenario() -> None:
        flight: SingleFlight[str] = SingleFlight()
        outcomes = await asyncio.gather(*(flight.run(("a", "k"), "s", refuse, "k")
                                          for _ in range(2)), return_exceptions=True)
        assert [getattr(o, "code", None) for o in outcomes] == ["verification_failed"] * 2

    asyncio.run(scenario())
