"""The store on both backends: migrations (fresh, repeated, ordered, failing, too new),
constraints, placeholders, rows, concurrent writers; and SQLite's pragmas."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from cyberian.server.store import SqliteStore, Store, StoreIntegrityError, open_store
from cyberian.server.store.database import redact_url
from cyberian.server.store.migrations import (
    MIGRATIONS,
    Migration,
    SchemaTooNewError,
    postgresql_statement,
)
from cyberian.server.store.postgres import translate

V1 = Migration(1, "notes", ("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)",))
V2 = Migration(2, "tags", ("ALTER TABLE notes ADD COLUMN tag TEXT NOT NULL DEFAULT 'none'",
                           "CREATE INDEX notes_tag ON notes(tag)"))


def test_a_fresh_sqlite_database_has_wal_and_foreign_keys(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db" / "cyberian.db")
    try:
        assert store.query_one("PRAGMA journal_mode")[0] == "wal"  # type: ignore[index]
        assert store.query_one("PRAGMA foreign_keys")[0] == 1  # type: ignore[index]
        assert store.query_one("PRAGMA busy_timeout")[0] == 5000  # type: ignore[index]
        with pytest.raises(RuntimeError, match="nest"), store.transaction(), \
                store.transaction():
            pass
    finally:
        store.close()


def _tables(store: Store) -> set[str]:
    if store.dialect == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        sql = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    return {str(row[0]) for row in store.query(sql)}


def test_a_fresh_database_is_migrated_once(store_location: str | Path) -> None:
    store = open_store(store_location)
    try:
        assert (store.migrated_from, store.schema_version) == (0, len(MIGRATIONS))
        assert {"accounts", "api_keys", "jobs", "chunks", "receipts", "idempotency_keys",
                "models", "signing_keys", "schema_version", "log_entries", "job_inputs",
                "work_items", "workers", "rate_events", "quota_holds"} <= _tables(store)
    finally:
        store.close()
    again = open_store(store_location)  # reopening migrates nothing
    assert (again.migrated_from, again.schema_version) == (len(MIGRATIONS), len(MIGRATIONS))
    again.close()


def test_replicas_opening_a_fresh_database_at_once_migrate_it_once(
        store_location: str | Path) -> None:
    opened: list[Store] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(open_store(store_location))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []  # a migration applied twice would fail ("already exists")
    assert {store.schema_version for store in opened} == {len(MIGRATIONS)}
    assert opened[0].query_one("SELECT COUNT(*) FROM schema_version")[0] == 1  # type: ignore[index]
    for store in opened:
        store.close()


def test_migrations_apply_in_order_and_keep_data(store_location: str | Path) -> None:
    store = open_store(store_location, migrations=[V1])
    assert (store.migrated_from, store.schema_version) == (0, 1)
    store.execute("INSERT INTO notes (id, text) VALUES (1, 'kept')")
    store.close()
    store = open_store(store_location, migrations=[V1, V2])
    assert (store.migrated_from, store.schema_version) == (1, 2)
    assert [tuple(row) for row in store.query("SELECT text, tag FROM notes")] == [
        ("kept", "none")]
    store.close()
    again = open_store(store_location, migrations=[V1, V2])
    assert (again.migrated_from, again.schema_version) == (2, 2)
    again.close()


def test_a_failing_migration_changes_nothing(store_location: str | Path) -> None:
    open_store(store_location, migrations=[V1]).close()
    broken = Migration(2, "broken", ("ALTER TABLE notes ADD COLUMN ok TEXT",
                                     "THIS IS NOT SQL"))
    with pytest.raises(Exception, match="syntax error"):
        open_store(store_location, migrations=[V1, broken])
    store = open_store(store_location, migrations=[V1])
    try:
        assert store.schema_version == 1
        store.execute("INSERT INTO notes (id, text) VALUES (1, 'x')")
        with pytest.raises(Exception, match="ok"):  # the column was rolled back
            store.query("SELECT ok FROM notes")
    finally:
        store.close()


def test_a_newer_database_is_refused(store_location: str | Path) -> None:
    open_store(store_location, migrations=[V1, V2]).close()
    with pytest.raises(SchemaTooNewError, match="schema version 2"):
        open_store(store_location, migrations=[V1])
    with pytest.raises(ValueError, match="numbered"):
        open_store(store_location, migrations=[V2])


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


def test_constraints_guard_the_invariants(any_store: Store) -> None:
    store = any_store
    foreign, check = (("FOREIGN KEY", "CHECK") if store.dialect == "sqlite"
                      else ("foreign key", "check constraint"))
    with pytest.raises(StoreIntegrityError, match=foreign):
        _insert_job(store, _job_row())  # no such account
    store.execute("INSERT INTO accounts (id, tier, created_at, period_anchor) "
                  "VALUES ('acct_1', 'trial', 't', 't')")
    with pytest.raises(StoreIntegrityError, match=check):
        _insert_job(store, _job_row(status="SETTLED"))  # settled without a receipt
    with pytest.raises(StoreIntegrityError, match=check):
        _insert_job(store, _job_row(status="DONE"))
    _insert_job(store, _job_row())
    row = store.query_one("SELECT status, input_count FROM jobs")
    assert row is not None
    assert (row[0], row["status"], row[1], row["input_count"]) == ("EXECUTING", "EXECUTING", 1, 1)


def test_placeholders_percent_signs_and_quotes_survive_on_both_backends(any_store: Store) -> None:
    store = any_store
    store.execute("INSERT INTO accounts (id, tier, label, created_at, period_anchor) "
                  "VALUES (?, 'free', :label, 't', 't')".replace(":label", "?"),
                  ("acct_%?", "50% 'off' :x ?"))
    row = store.query_one("SELECT id, label FROM accounts WHERE id = :id AND label LIKE '50%'",
                          {"id": "acct_%?"})
    assert row is not None
    assert tuple(row) == ("acct_%?", "50% 'off' :x ?")
    assert store.query_one("SELECT 'a?b', '%', 'it''s :x'")[0:3] == (  # type: ignore[index]
        "a?b", "%", "it's :x")


def test_a_named_lock_lets_one_writer_in_at_a_time(any_store: Store) -> None:
    any_store.execute("CREATE TABLE counter (n INTEGER NOT NULL)")
    any_store.execute("INSERT INTO counter (n) VALUES (0)")

    def bump() -> None:
        for _ in range(25):
            with any_store.transaction() as conn:
                conn.lock("counter")
                value = int(conn.execute("SELECT n FROM counter").fetchone()[0])
                conn.execute("UPDATE counter SET n = ?", (value + 1,))

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert any_store.query_one("SELECT n FROM counter")[0] == 100  # type: ignore[index]


def test_sql_translation_and_url_redaction() -> None:
    assert translate("SELECT * FROM t WHERE a = ? AND b = :name AND c LIKE 'x%?' "
                     "AND d::text = '%'") == (
        "SELECT * FROM t WHERE a = %s AND b = %(name)s AND c LIKE 'x%%?' "
        "AND d::text = '%%'")
    assert postgresql_statement("CREATE TABLE t (a BLOB, b REAL) WITHOUT ROWID") == (
        "CREATE TABLE t (a BYTEA, b DOUBLE PRECISION)")
    assert redact_url("postgresql://u:s3cret@db.example:5433/x") == (
        "postgresql://u:***@db.example:5433/x")
    assert redact_url("postgresql://u@h/x") == "postgresql://u@h/x"


def test_an_unreachable_database_is_named_without_its_password() -> None:
    with pytest.raises(ConnectionError) as refused:
        open_store("postgresql://cyberian:s3cret-pw@127.0.0.1:1/nowhere", timeout=2.0)
    message = str(refused.value)
    assert "postgresql://cyberian:***@127.0.0.1:1/nowhere" in message
    assert "s3cret-pw" not in message
    assert "s3cret-pw" not in repr(refused.value)
