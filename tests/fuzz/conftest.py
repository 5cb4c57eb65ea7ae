"""Fixtures of the fuzzing suite: the tiny catalog, live servers and the /health prober.

The live servers are :mod:`server_harness` servers (tests/integration/server):
``python -m cyberian.cli serve`` on 127.0.0.1, port 0, a data dir of their own.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration" / "server"))

from fuzz_support import HealthProber
from server_harness import LiveServer, running_server, write_catalog


@pytest.fixture(scope="session")
def fuzz_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny-model catalog (``tiny``: chunk_size 4; ``tiny-all``: every chunk replayed)."""
    return write_catalog(tmp_path_factory.mktemp("fuzz-catalog"))


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory,
                fuzz_catalog: Path) -> Iterator[LiveServer]:
    """A server of the module's own (one executor), stopped after the module."""
    with running_server(tmp_path_factory.mktemp("fuzz-server"), fuzz_catalog,
                        args=("--workers", "1")) as live:
        yield live


@pytest.fixture
def health(fuzz_server: LiveServer) -> Iterator[HealthProber]:
    """A concurrent ``GET /health`` prober on the live server for the test's duration."""
    prober = HealthProber(fuzz_server.url).start()
    try:
        yield prober
    finally:
        prober.stop()
