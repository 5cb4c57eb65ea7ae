"""The throwaway PostgreSQL server of the tests: :mod:`cyberian.bench.postgres`.

Importable as ``import postgres_cluster`` from every test (pytest puts this
folder on ``sys.path``).
"""

from cyberian.bench.postgres import (
    HOST,
    PG_USER,
    SETUP_SCRIPT,
    TemporaryCluster,
    find_bindir,
    free_port,
)

__all__ = ["HOST", "PG_USER", "SETUP_SCRIPT", "TemporaryCluster", "find_bindir", "free_port"]
