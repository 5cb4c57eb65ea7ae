"""Fixtures of the server integration tests: the backend, the tiny catalog, shared servers.

The whole server suite runs twice: on SQLite (the embedded default) and on
PostgreSQL (a throwaway cluster the session starts, a fresh database per
server). ``server_backend`` is session-scoped and parametrized, so pytest
runs every test of this folder once per backend, one backend after the
other.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from server_harness import BACKEND, LiveServer, running_server, write_catalog

from cyberian.spec import Spec, load_spec


@pytest.fixture(scope="session", params=["sqlite", "postgresql"], autouse=True)
def server_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """The database the servers of these tests use: ``sqlite`` or ``postgresql``."""
    BACKEND.name = request.param
    BACKEND.new_database = (request.getfixturevalue("postgres_cluster").create_database
                            if request.param == "postgresql" else None)
    yield request.param
    BACKEND.name, BACKEND.new_database = "sqlite", None


@pytest.fixture(scope="session")
def catalog_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny-model catalog folder (``tiny`` and ``tiny-all``)."""
    return write_catalog(tmp_path_factory.mktemp("catalog"))


@pytest.fixture(scope="session")
def tiny(catalog_dir: Path) -> Spec:
    """The ``tiny`` catalog spec (chunk_size 4, sample_rate 0.5)."""
    return load_spec(catalog_dir / "tiny.yaml")


@pytest.fixture(scope="session")
def tiny_all(catalog_dir: Path) -> Spec:
    """The ``tiny-all`` catalog spec (sample_rate 1.0, vaas_block 3)."""
    return load_spec(catalog_dir / "tiny-all.yaml")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, catalog_dir: Path,
           server_backend: str) -> Iterator[LiveServer]:
    """One server shared by the tests that need no special configuration (2 executors)."""
    with running_server(tmp_path_factory.mktemp("shared"), catalog_dir,
                        args=("--workers", "2")) as live:
        yield live


@pytest.fixture(scope="session")
def open_server(tmp_path_factory: pytest.TempPathFactory, catalog_dir: Path,
                server_backend: str) -> Iterator[LiveServer]:
    """A server started with ``--open-registration``, for the tests of ``POST /auth/register``.

    (Open registration is off by default; the other servers get their accounts
    the way an operator makes them, :meth:`LiveServer.account`.)
    """
    with running_server(tmp_path_factory.mktemp("open"), catalog_dir,
                        args=("--workers", "1", "--open-registration")) as live:
        yield live
