"""Fixtures of the client tests (the fakes live in ``client_fakes``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from client_fakes import Harness


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CYBERIAN_API_KEY", raising=False)
    monkeypatch.delenv("CYBERIAN_API_BASE", raising=False)


@pytest.fixture
def harness_factory() -> Iterator[Callable[[str], Harness]]:
    made: list[Harness] = []

    def make(mode: str) -> Harness:
        harness = Harness(mode)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()
