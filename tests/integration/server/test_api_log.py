"""The transparency log: every receipt logged and proved, consistency, append-only, kill -9,
a rewritten entry caught, and the /log routes' refusals."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from log_tamper import rewrite_log_entry
from server_harness import LiveServer, running_server, texts, wait_settled

from cyberian import merkle
from cyberian.prover import Prover
from cyberian.server.store import StoreIntegrityError
from cyberian.spec import Spec
from cyberian.tlog import (
    EMPTY_ROOT,
    Checkpoint,
    InclusionProof,
    LogKey,
    TlogError,
    consistency_from_json,
    entry_bytes,
    make_bundle,
    open_checkpoint,
    parse_verifier_key,
    verify_bundle,
    verify_consistency,
)


def _claim(spec: Spec, inputs: list[str]) -> str:
    rows = Prover(spec).prove(inputs).embeddings
    assert rows is not None
    return hashlib.sha256(rows.astype("<f4").tobytes()).hexdigest()


def _log_key(client: httpx.Client) -> tuple[LogKey, str]:
    published = client.get("/keys").json()["log"]
    key = parse_verifier_key(published["key"])
    assert key.name == published["origin"]
    return key, published["key"]


def _checkpoint(client: httpx.Client, key: LogKey) -> tuple[Checkpoint, str]:
    response = client.get("/log/checkpoint")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    return open_checkpoint(response.text, [key], origin=key.name), response.text


def _verify_once(client: httpx.Client, spec: Spec, prefix: str) -> dict[str, Any]:
    inputs = texts(3, prefix)
    response = client.post("/verify", json={"model": "tiny", "inputs": inputs,
                                            "claimed_output_commitment": _claim(spec, inputs)})
    assert response.status_code == 200, response.text
    receipt: dict[str, Any] = response.json()
    return receipt


def _db_log(server: LiveServer) -> tuple[list[tuple[int, str, bytes, bytes]], list[str]]:
    store = server.store()
    try:
        entries = [(int(row[0]), str(row[1]), bytes(row[2]), bytes(row[3])) for row in
                   store.query("SELECT idx, receipt_id, entry, leaf_hash FROM log_entries "
                               "ORDER BY idx")]
        receipts = [str(row[0]) for row in store.query("SELECT id FROM receipts")]
    finally:
        store.close()
    return entries, receipts


def _refused_by_the_store(server: LiveServer, sql: str) -> None:
    store = server.store()
    try:
        with pytest.raises(StoreIntegrityError, match="append-only"):
            store.execute(sql)
    finally:
        store.close()


def test_every_receipt_is_logged_and_its_inclusion_verifies(server: LiveServer,
                                                             tiny: Spec) -> None:
    client = server.client(server.account("enterprise"))
    job = client.post("/jobs", json={"model": "tiny", "inputs": texts(9, "logged job")}).json()
    final = wait_settled(client, job["id"])
    assert final["status"] == "SETTLED"
    receipts = [client.get(f"/receipts/{final['receipt_id']}").json(),
                _verify_once(client, tiny, "logged vaas")]
    key, vkey = _log_key(client)
    checkpoint, note = _checkpoint(client, key)
    for receipt in receipts:
        response = client.get("/log/proof/inclusion",
                              params={"receipt_hash": receipt["receipt_hash"],
                                      "size": checkpoint.size})
        assert response.status_code == 200, response.text
        proof = InclusionProof.from_json(response.json())
        proof.verify(checkpoint)
        entry = client.get(f"/log/entries/{proof.index}").json()
        assert entry["receipt"] == receipt
        assert entry["receipt_id"] == receipt["receipt_id"]
        assert entry["receipt_hash"] == receipt["receipt_hash"]
        assert bytes.fromhex(entry["leaf_hash"]) == proof.leaf_hash
        by_index = client.get("/log/proof/inclusion", params={"index": proof.index,
                                                              "size": checkpoint.size})
        assert by_index.json() == response.json()
        assert verify_bundle(receipt, make_bundle(note, proof, vkey))[1] == proof
    # every receipt the server ever stored is in its log, once, at dense indices
    entries, stored = _db_log(server)
    assert [row[0] for row in entries] == list(range(len(entries)))
    assert sorted(row[1] for row in entries) == sorted(stored)
    assert all(merkle.leaf_hash(row[2]) == row[3] for row in entries)


def test_consistency_across_many_appends(server: LiveServer, tiny: Spec) -> None:
    client = server.client(server.account("enterprise"))
    key, _ = _log_key(client)
    checkpoints = [_checkpoint(client, key)[0]]
    for i in range(6):
        _verify_once(client, tiny, f"append {i}")
        checkpoints.append(_checkpoint(client, key)[0])
    assert [c.size for c in checkpoints] == sorted({c.size for c in checkpoints})
    for i, old in enumerate(checkpoints):
        for new in checkpoints[i:]:
            response = client.get("/log/proof/consistency", params={"from": old.size,
                                                                   "to": new.size})
            assert response.status_code == 200, response.text
            start, end, proof = consistency_from_json(response.json())
            assert (start, end) == (old.size, new.size)
            verify_consistency(old, new, proof)
    latest = checkpoints[-1]
    default = client.get("/log/proof/consistency", params={"from": checkpoints[0].size})
    assert default.json()["to"] >= latest.size


def test_update_and_delete_are_refused_by_the_store(server: LiveServer, tiny: Spec) -> None:
    client = server.client(server.account("enterprise"))
    _verify_once(client, tiny, "append-only")
    for sql in ("UPDATE log_entries SET receipt_id = 'x' WHERE idx = 0",
                "DELETE FROM log_entries WHERE idx = 0"):
        _refused_by_the_store(server, sql)


def test_a_receipt_hash_not_in_the_log_is_404(server: LiveServer) -> None:
    response = server.client().get("/log/proof/inclusion", params={"receipt_hash": "ab" * 32})
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "not_found"


@pytest.mark.parametrize(("path", "params", "field"), [
    ("/log/proof/inclusion", {}, "index"),
    ("/log/proof/inclusion", {"index": "x"}, "query.index"),
    ("/log/proof/inclusion", {"index": "-1"}, "query.index"),
    ("/log/proof/inclusion", {"index": "1.5"}, "query.index"),
    ("/log/proof/inclusion", {"index": str(10**30)}, "index"),
    ("/log/proof/inclusion", {"index": "0", "size": "0"}, "index"),
    ("/log/proof/inclusion", {"index": "0", "size": str(10**30)}, "size"),
    ("/log/proof/inclusion", {"index": "0", "size": "-3"}, "query.size"),
    ("/log/proof/inclusion", {"index": "0", "receipt_hash": "ab" * 32}, "index"),
    ("/log/proof/inclusion", {"receipt_hash": "zz"}, "query.receipt_hash"),
    ("/log/proof/consistency", {}, "query.from"),
    ("/log/proof/consistency", {"from": "a", "to": "1"}, "query.from"),
    ("/log/proof/consistency", {"from": "-1", "to": "1"}, "query.from"),
    ("/log/proof/consistency", {"from": "2", "to": "1"}, "from"),
    ("/log/proof/consistency", {"from": "1", "to": str(10**30)}, "to"),
    ("/log/proof/consistency", {"from": "1", "to": "x"}, "query.to"),
    ("/log/entries/-1", {}, "index"),
    ("/log/entries/abc", {}, "index"),
])
def test_bad_parameters_are_400_naming_the_parameter(server: LiveServer, path: str,
                                                     params: dict[str, str],
                                                     field: str) -> None:
    client = server.client()
    response = client.get(path, params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_request"
    assert body["field"].endswith(field), body


def test_an_entry_past_the_end_is_404(server: LiveServer) -> None:
    for index in ("1000000", str(10**30)):
        response = server.client().get(f"/log/entries/{index}")
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


def _burst(server: LiveServer, account_key: str, tiny: Spec, stop: threading.Event,
           got: list[dict[str, Any]], worker: int) -> None:
    client = httpx.Client(base_url=server.url, timeout=30,
                          headers={"Authorization": f"Bearer {account_key}"})
    try:
        for i in range(1000):
            if stop.is_set():
                return
            inputs = texts(2, f"burst {worker} {i}")
            try:
                response = client.post("/verify", json={
                    "model": "tiny", "inputs": inputs,
                    "claimed_output_commitment": _claim(tiny, inputs)})
            except httpx.HTTPError:
                return
            if response.status_code == 200:
                got.append(response.json())
    finally:
        client.close()


def test_kill_9_during_appends_then_restart(tmp_path: Path, catalog_dir: Path,
                                           tiny: Spec) -> None:
    with running_server(tmp_path, catalog_dir, args=("--workers", "2")) as live:
        client = live.client()
        key, _ = _log_key(client)
        empty, _ = _checkpoint(client, key)
        assert (empty.size, empty.root) == (0, EMPTY_ROOT)
        account = live.account("enterprise")
        stop = threading.Event()
        got: list[dict[str, Any]] = []
        threads = [threading.Thread(target=_burst, args=(live, account.key, tiny, stop, got, n))
                   for n in range(6)]
        jobs = [live.client(account).post("/jobs", json={
            "model": "tiny", "inputs": texts(12, f"job {n}")}).json()["id"] for n in range(3)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(got) < 12 and time.monotonic() < deadline:
            time.sleep(0.02)
        before, _ = _checkpoint(client, key)
        assert before.size > 0
        live.kill()  # mid-burst: appends are in flight
        stop.set()
        for thread in threads:
            thread.join(30)
        live._kill_group()
        live.start()
        client = live.client(account)
        for job_id in jobs:  # the jobs resume and settle into the log too
            wait_settled(client, job_id)
        after_key, _ = _log_key(client)
        assert after_key == key  # the same log key and origin after a restart
        after, _ = _checkpoint(client, key)
        entries, stored = _db_log(live)
        assert [row[0] for row in entries] == list(range(len(entries)))
        assert len({row[1] for row in entries}) == len(entries)
        assert sorted(row[1] for row in entries) == sorted(stored)
        logged = {row[1] for row in entries}
        assert {receipt["receipt_id"] for receipt in got} <= logged
        assert all(entry_bytes(receipt) in {row[2] for row in entries} for receipt in got)
        assert after.size == len(entries) >= before.size
        assert after.root == merkle.root([row[2] for row in entries])
        proof = client.get("/log/proof/consistency", params={"from": before.size,
                                                            "to": after.size}).json()["proof"]
        verify_consistency(before, after, [bytes.fromhex(node) for node in proof])

        # TEST-ONLY rewrite of an old entry (server stopped): the new checkpoint cannot be
        # proved consistent with the one taken before
        original = client.get("/log/entries/1").json()["receipt"]
        live.stop()
        rewrite_log_entry(live.store_location, 1,
                          {**original, "issued_at": "2000-01-01T00:00:00Z"})
        live.start()
        client = live.client()
        rewritten, _ = _checkpoint(client, key)
        assert client.get("/log/entries/1").json()["receipt"]["issued_at"].startswith("2000")
        assert rewritten.size == after.size
        assert rewritten.root != after.root
        proof = client.get("/log/proof/consistency", params={"from": before.size,
                                                            "to": rewritten.size}).json()["proof"]
        with pytest.raises(TlogError, match="inconsistent log"):
            verify_consistency(before, rewritten, [bytes.fromhex(node) for node in proof])
        _refused_by_the_store(live, "UPDATE log_entries SET receipt_id = 'x' WHERE idx = 0")
