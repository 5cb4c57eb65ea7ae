"""Fixtures shared by every test: the tiny model's spec, the real shipped spec, a PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cyberian.spec import Spec, load_spec

if TYPE_CHECKING:
    from postgres_cluster import TemporaryCluster

REPO = Path(__file__).resolve().parents[1]
SHIPPED_SPEC = REPO / "specs" / "all-minilm-l6-v2.yaml"
SHIPPED_INT8_SPEC = REPO / "specs" / "all-minilm-l6-v2-int8.yaml"


@pytest.fixture(scope="session")
def tiny_spec_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CES for the tiny random-weight model (chunk_size 4), built once per session."""
    from cyberian.models.tiny import write_tiny_spec

    return write_tiny_spec(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tiny_spec(tiny_spec_path: Path) -> Spec:
    """The tiny model's spec, loaded."""
    return load_spec(tiny_spec_path)


@pytest.fixture(scope="session")
def tiny_int8_spec_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CES for the tiny random-weight model built by the int8 builder."""
    from cyberian.models.tiny import write_tiny_spec

    return write_tiny_spec(tmp_path_factory.mktemp("tiny-int8"), name="tiny-int8", int8=True)


@pytest.fixture(scope="session")
def tiny_int8_spec(tiny_int8_spec_path: Path) -> Spec:
    """The tiny int8 model's spec, loaded."""
    return load_spec(tiny_int8_spec_path)


@pytest.fixture(scope="session")
def real_int8_spec() -> Spec:
    """The shipped int8 spec with its model built (first use builds it)."""
    return _built(SHIPPED_INT8_SPEC)


@pytest.fixture(scope="session")
def real_int8_spec_path(real_int8_spec: Spec) -> Path:
    """The shipped int8 spec's path, its model built."""
    return SHIPPED_INT8_SPEC


@pytest.fixture(scope="session")
def real_spec() -> Spec:
    """The shipped all-MiniLM-L6-v2 spec with its model built (first use builds it)."""
    return _built(SHIPPED_SPEC)


def _built(path: Path) -> Spec:
    from cyberian.models.build import ensure_model_files

    spec = load_spec(path)
    ensure_model_files(spec)
    spec.check_pins()
    return spec


@pytest.fixture(scope="session")
def real_spec_path(real_spec: Spec) -> Path:
    """The shipped spec's path, its model built."""
    return SHIPPED_SPEC


@pytest.fixture(scope="session")
def postgres_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporaryCluster]:
    """A throwaway PostgreSQL server started for this session (tests/postgres_cluster.py).

    Make a database per test with ``postgres_cluster.create_database()`` (it returns
    the URL). Fails, naming tools/setup-postgresql.sh, when the server binaries are
    missing. As root the cluster may live in a /tmp/cyberian-pg-* directory instead
    of the session's temp dir (the ``postgres`` OS user cannot reach that one).
    """
    from postgres_cluster import TemporaryCluster

    cluster = TemporaryCluster(tmp_path_factory.mktemp("postgres"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
