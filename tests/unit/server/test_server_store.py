"""The store: pragmas, migrations (fresh, repeated, ordered, failing, too new), constraints."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from cyberian.server.store import Store
from cyberian.server.store.migrations import MIGRATIONS, Migration, SchemaTooNewError, migrate

V1 = Migration(1, "notes", ("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)",))
V2 = Migration(2, "tags", ("ALTER TABLE notes ADD COLUMN tag TEXT NOT NULL DEFAULT 'none'",
                           "CREATE INDEX notes_tag ON notes(tag)"))


def connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_a_fresh_database_is_migrated_with_wal_and_foreign_keys(tmp_path: Path) -> None:
    store = Store(tmp_path / "db" / "cyberian.db")
    try:
        assert (store.migrated_from, store.schema_version) == (0, len(MIGRATIONS))
        assert store.query_one("PRAGMA journal_mode")[0] == "wal"  # type: ignore[index]
        assert store.query_one("PRAGMA foreign_keys")[0] == 1  # type: ignore[index]
        assert store.query_one("PRAGMA busy_timeout")[0] == 5000  # type: ignore[index]
        tables = {row[0] for row in store.query("SELECT name FROM sqlite_master "
                                                "WHERE type = 'table'")}
        assert {"accounts", "api_keys", "jobs", "chunks", "receipts", "idempotency_keys",
                "models", "signing_keys", "schema_version"} <= tables
    finally:
        store.close()
    again = Store(tmp_path / "db" / "cyberian.db")  # reopening migrates nothing
    assert (again.migrated_from, again.schema_version) == (len(MIGRATIONS), len(MIGRATIONS))
    again.close()


def test_migrations_apply_in_order_and_keep_data(tmp_path: Path) -> None:
    conn = connect(tmp_path / "x.db")
    assert migrate(conn, [V1]) == (0, 1)
    conn.execute("INSERT INTO notes (text) VALUES ('kept')")
    assert migrate(conn, [V1, V2]) == (1, 2)
    assert conn.execute("SELECT text, tag FROM notes").fetchall() == [("kept", "none")]
    assert migrate(conn, [V1, V2]) == (2, 2)
    conn.close()


def test_a_failing_migration_changes_nothing(tmp_path: Path) -> None:
    conn = connect(tmp_path / "x.db")
    migrate(conn, [V1])
    broken = Migration(2, "broken", ("ALTER TABLE notes ADD COLUMN ok TEXT",
                                     "THIS IS NOT SQL"))
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, [V1, broken])
    columns = [row[1] for row in conn.execute("PRAGMA table_info(notes)")]
    assert columns == ["id", "text"]
    assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == 1
    conn.close()


def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    conn = connect(tmp_path / "x.db")
    migrate(conn, [V1, V2])
    with pytest.raises(SchemaTooNewError, match="schema version 2"):
        migrate(conn, [V1])
    with pytest.raises(ValueError, match="numbered"):
        migrate(conn, [V2])
    conn.close()


def _job_row(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": "job_1", "account_id": "acct_1", "kind": "job", "status": "EXECUTING",
        "spec_hash": "h", "spec_yaml": "y", "input_count": 1, "chunk_count": 1, "nonce": "00",
        "created_at": "t", "updated_at": "t", "receipt_id": None}
    row.update(overrides)
    return row


def _insert_job(store: Store, row: dict[str, object]) -> None:
    with store.transaction() as conn:
        conn.execute(f"INSERT INTO jobs ({', '.join(row)}) "
                     f"VALUES ({', '.join('?' * len(row))})", list(row.values()))


def test_constraints_guard_the_invariants(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    try:
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            _insert_job(store, _job_row())  # no such account
        store.execute("INSERT INTO accounts (id, tier, created_at, period_anchor) "
                      "VALUES ('acct_1', 'trial', 't', 't')")
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            _insert_job(store, _job_row(status="SETTLED"))  # settled without a receipt
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            _insert_job(store, _job_row(status="DONE"))
        _insert_job(store, _job_row())
        assert store.query_one("SELECT status FROM jobs")[0] == "EXECUTING"  # type: ignore[index]
        with pytest.raises(RuntimeError, match="nest"), store.transaction(), \
                store.transaction():
            pass
    finally:
        store.close()
