"""Fixtures of the many-machine tests: replicas and remote workers on one PostgreSQL.

They reuse the server tests' harness (``tests/integration/server/server_harness.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from server_harness import write_catalog


@pytest.fixture(scope="session")
def catalog_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny-model catalog folder (``tiny`` and ``tiny-all``)."""
    return write_catalog(tmp_path_factory.mktemp("catalog"))
