"""The transparency log in the store: append-only, dense, appended with the receipt."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from cyberian import merkle
from cyberian.server.accounts import create_account
from cyberian.server.store import Store, StoreIntegrityError
from cyberian.server.store import jobs as jobstore
from cyberian.server.store import log as logstore
from cyberian.server.timeutil import utcnow
from cyberian.tlog import entry_bytes, entry_leaf_hash


def _receipt(i: int) -> dict[str, Any]:
    return {"receipt_id": f"rcpt_{i}", "job_id": f"vaas_{i}", "kind": "vaas",
            "receipt_hash": hashlib.sha256(str(i).encode()).hexdigest(),
            "signature": {"alg": "ed25519", "sig": "x"}}


class _Outside:
    """A connection that is not in a transaction."""

    in_transaction = False


def _store_vaas(store: Store, account_id: str, receipt: dict[str, Any]) -> None:
    now = utcnow()
    with store.transaction() as conn:
        jobstore.store_receipt(conn, receipt, account_id=account_id, now=now)
        jobstore.insert_job(conn, job_id=receipt["job_id"], account_id=account_id,
                            kind="vaas", status="SETTLED", model_id=None, spec_hash="h",
                            spec_yaml="y", input_count=1, chunk_count=1, billed_chunks=1,
                            nonce=b"n", now=now, receipt_id=receipt["receipt_id"])


@pytest.fixture
def store(any_store: Store) -> Store:
    return any_store


def test_every_stored_receipt_is_appended_densely(store: Store) -> None:
    account, _, _ = create_account(store, "enterprise", now=utcnow(), trial_days=14)
    receipts = [_receipt(i) for i in range(5)]
    for receipt in receipts:
        _store_vaas(store, account.id, receipt)
    assert logstore.log_size(store) == 5
    for index, receipt in enumerate(receipts):
        entry = logstore.get_entry(store, index)
        assert entry is not None
        assert entry.entry == entry_bytes(receipt)
        assert entry.leaf_hash == entry_leaf_hash(entry.entry)
        assert entry.view()["receipt"] == receipt
        assert logstore.index_of(store, receipt["receipt_hash"].upper()) == index
    assert logstore.get_entry(store, 5) is None
    hashes = logstore.leaf_hashes(store, 5)
    assert merkle.root_from_hashes(hashes) == merkle.root(
        [entry_bytes(receipt) for receipt in receipts])


def test_a_failed_transaction_logs_nothing(store: Store) -> None:
    account, _, _ = create_account(store, "enterprise", now=utcnow(), trial_days=14)
    _store_vaas(store, account.id, _receipt(0))
    with pytest.raises(StoreIntegrityError):
        _store_vaas(store, account.id, {**_receipt(1), "receipt_hash": _receipt(0)["receipt_hash"]})
    with pytest.raises(RuntimeError, match="transaction"):
        jobstore.store_receipt(_Outside(), _receipt(2), account_id=account.id, now=utcnow())
    assert logstore.log_size(store) == 1
    _store_vaas(store, account.id, _receipt(3))
    assert [row[0] for row in store.query("SELECT idx FROM log_entries ORDER BY idx")] == [0, 1]


def test_update_delete_and_gaps_are_refused_by_the_store(store: Store) -> None:
    with store.transaction() as conn:
        for i in range(3):
            logstore.append_entry(conn, _receipt(i), utcnow())
    for sql in ("UPDATE log_entries SET receipt_id = 'x' WHERE idx = 1",
                "UPDATE log_entries SET idx = 7 WHERE idx = 2",
                "DELETE FROM log_entries WHERE idx = 2",
                "DELETE FROM log_entries"):
        with pytest.raises(StoreIntegrityError, match="append-only"):
            store.execute(sql)
    for index in (5, 2, -1):
        with pytest.raises(StoreIntegrityError):
            store.execute("INSERT INTO log_entries (idx, receipt_id, receipt_hash, entry, "
                          "leaf_hash, created_at) VALUES (?, 'r', 'h', ?, ?, 't')",
                          (index, b"\x00", bytes(32)))
    with pytest.raises(StoreIntegrityError):  # an upsert is an update too
        store.execute("INSERT INTO log_entries (idx, receipt_id, receipt_hash, entry, "
                      "leaf_hash, created_at) VALUES (1, 'r', 'h', ?, ?, 't') "
                      "ON CONFLICT (idx) DO UPDATE SET entry = excluded.entry",
                      (b"\x00", bytes(32)))
    if store.dialect == "sqlite":
        with pytest.raises(StoreIntegrityError):  # REPLACE is a delete too
            store.execute("INSERT OR REPLACE INTO log_entries (idx, receipt_id, receipt_hash, "
                          "entry, leaf_hash, created_at) VALUES (1, 'r', 'h', x'00', ?, 't')",
                          (bytes(32),))
    else:
        with pytest.raises(StoreIntegrityError, match="append-only"):
            store.execute("TRUNCATE log_entries")
    assert logstore.log_size(store) == 3
    assert logstore.get_entry(store, 1).entry == entry_bytes(_receipt(1))  # type: ignore[union-attr]


def test_receipts_signed_before_the_log_are_appended_once(store: Store) -> None:
    account, _, _ = create_account(store, "enterprise", now=utcnow(), trial_days=14)
    _store_vaas(store, account.id, _receipt(0))
    with store.transaction() as conn:  # as a v2 database had it: a receipt without entry
        conn.execute("INSERT INTO receipts (id, account_id, job_id, kind, body, created_at) "
                     "VALUES ('rcpt_old', ?, 'vaas_old', 'vaas', ?, '2000-01-01T00:00:00Z')",
                     (account.id, '{"receipt_id": "rcpt_old", "receipt_hash": "ab"}'))
        jobstore.insert_job(conn, job_id="vaas_old", account_id=account.id, kind="vaas",
                            status="SETTLED", model_id=None, spec_hash="h", spec_yaml="y",
                            input_count=1, chunk_count=1, billed_chunks=1, nonce=b"n",
                            now=utcnow(), receipt_id="rcpt_old")
    with store.transaction() as conn:
        assert logstore.append_missing(conn, utcnow()) == 1
    with store.transaction() as conn:
        assert logstore.append_missing(conn, utcnow()) == 0
    assert logstore.get_entry(store, 1).receipt_id == "rcpt_old"  # type: ignore[union-attr]
