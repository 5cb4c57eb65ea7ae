"""Fixtures of the server unit tests: a fresh store on each backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cyberian.server.store import Store, open_store


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where a fresh, empty database is: an SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "cyberian.db"
    return str(request.getfixturevalue("postgres_cluster").create_database())


@pytest.fixture
def any_store(store_location: str | Path) -> Iterator[Store]:
    """A fresh store, migrated, on each backend."""
    opened = open_store(store_location)
    yield opened
    opened.close()
