"""The throwaway PostgreSQL the tests start themselves: tests/postgres_cluster.py and its setup."""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

import psycopg
import pytest

from postgres_cluster import SETUP_SCRIPT, TemporaryCluster, find_bindir

REPO = Path(__file__).resolve().parents[2]


def test_cluster_is_up_and_is_ours(postgres_cluster: TemporaryCluster) -> None:
    assert postgres_cluster.port > 0
    assert postgres_cluster.url() == f"postgresql://postgres@127.0.0.1:{postgres_cluster.port}/postgres"
    with psycopg.connect(postgres_cluster.url()) as conn:
        row = conn.execute(
            "SELECT current_user, current_setting('data_directory'), current_setting('fsync'),"
            " current_setting('max_connections'), pg_encoding_to_char(encoding)"
            " FROM pg_database WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    user, data_directory, fsync, max_connections, encoding = row
    assert user == "postgres"
    assert Path(data_directory).resolve() == postgres_cluster.datadir.resolve()
    assert (fsync, max_connections, encoding) == ("off", "300", "UTF8")


def test_create_database_gives_distinct_isolated_databases(
    postgres_cluster: TemporaryCluster,
) -> None:
    first = postgres_cluster.create_database()
    second = postgres_cluster.create_database()
    assert first != second
    with psycopg.connect(first) as conn:
        conn.execute("CREATE TABLE only_here (x int)")
        conn.execute("INSERT INTO only_here VALUES (1)")
    with psycopg.connect(second) as conn:
        found = conn.execute("SELECT to_regclass('only_here')").fetchone()
        assert found == (None,)
    with psycopg.connect(first) as conn:
        assert conn.execute("SELECT x FROM only_here").fetchall() == [(1,)]

    name = first.rsplit("/", 1)[1]
    assert name.startswith("cy_")
    postgres_cluster.drop_database(name)
    with psycopg.connect(postgres_cluster.url()) as conn:
        left = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [name])
        assert left.fetchone() == (0,)
    postgres_cluster.drop_database(name)  # IF EXISTS: a second drop is fine


def test_create_database_by_name(postgres_cluster: TemporaryCluster) -> None:
    url = postgres_cluster.create_database("named_db")
    assert url == postgres_cluster.url("named_db")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("named_db",)
    postgres_cluster.drop_database("named_db")


def test_missing_binaries_name_the_setup_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CYBERIAN_PG_BINDIR", str(tmp_path))
    with pytest.raises(RuntimeError, match=re.escape(SETUP_SCRIPT)) as info:
        find_bindir()
    assert "CYBERIAN_PG_BINDIR" in str(info.value)
    with pytest.raises(RuntimeError, match=re.escape(SETUP_SCRIPT)):
        TemporaryCluster(tmp_path / "cluster")  # what the fixture fails with


def test_setup_script_is_a_no_op_when_binaries_exist(tmp_path: Path) -> None:
    script = REPO / SETUP_SCRIPT
    ok = subprocess.run(
        [str(script)], env={"PATH": "/usr/bin:/bin", "CYBERIAN_PG_BINDIR": str(find_bindir())},
        capture_output=True, text=True, check=False, timeout=30,
    )
    assert (ok.returncode, ok.stderr) == (0, "")
    bad = subprocess.run(
        [str(script)], env={"PATH": "/usr/bin:/bin", "CYBERIAN_PG_BINDIR": str(tmp_path)},
        capture_output=True, text=True, check=False, timeout=30,
    )
    assert bad.returncode == 1
    assert "[setup-postgresql] ERROR" in bad.stderr


def test_stop_shuts_the_server_down_and_removes_it(tmp_path: Path) -> None:
    cluster = TemporaryCluster(tmp_path / "small")
    with cluster:
        port = cluster.port
        with psycopg.connect(cluster.url()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    assert not cluster.root.exists()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(cluster.url(), connect_timeout=2)
    cluster.stop()  # idempotent
