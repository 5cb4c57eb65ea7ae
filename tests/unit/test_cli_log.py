"""``cyberian receipt verify --log`` and ``cyberian log monitor`` against a fake log server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from log_helpers import FakeLog, serving
from receipt_helpers import make_receipt, resign

from cyberian.cli import main
from cyberian.cli._monitor import STATE_FORMAT, load_state, monitor_once
from cyberian.cli._verify import later_command, log_file_for
from cyberian.signing import SigningKey, generate_signing_key, save_public_key
from cyberian.tlog import Checkpoint, sign_checkpoint


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return generate_signing_key()


@pytest.fixture
def log(key: SigningKey) -> FakeLog:
    fake = FakeLog([key])
    for salt in ("a", "b", "c"):
        fake.append(_receipt(key, salt))
    return fake


def _receipt(key: SigningKey, salt: str) -> dict[str, Any]:
    """A distinct valid receipt per ``salt`` (the same one for the same salt)."""
    receipt = make_receipt(key)
    receipt["job_id"] = f"job_{salt}"
    return resign(receipt, key)


def _write(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return path


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _receipt_at(log: FakeLog, key: SigningKey, tmp_path: Path, index: int) -> Path:
    receipt = _receipt(key, "abc"[index])
    assert receipt["receipt_hash"] == log.hashes[index]
    return _write(tmp_path / "r.json", receipt)


# -- the saved files ------------------------------------------------------------


@pytest.mark.parametrize(("receipt", "bundle"), [("r.json", "r.log.json"),
                                                 ("d/rcpt_1.json", "d/rcpt_1.log.json"),
                                                 ("receipt", "receipt.log.json")])
def test_the_log_bundle_sits_beside_the_receipt(receipt: str, bundle: str) -> None:
    assert log_file_for(Path(receipt)) == Path(bundle)


def test_the_later_command_gains_log() -> None:
    assert later_command(Path("r.json"), Path("r.keys.json"), None, log=True) == (
        "cyberian receipt verify r.json --log --key r.keys.json")


# -- receipt verify --log with a saved bundle ------------------------------------


def test_verify_log_with_the_saved_bundle_and_the_keys_document(
        tmp_path: Path, key: SigningKey, log: FakeLog) -> None:
    path = _receipt_at(log, key, tmp_path, 1)
    _write(log_file_for(path), log.bundle(1))
    keys = _write(tmp_path / "r.keys.json", log.keys())
    result = _run("receipt", "verify", str(path), "--key", str(keys), "--log")
    assert result.exit_code == 0, result.output
    root = log.checkpoint().root.hex()[:16]
    assert (f"ok   log: entry 1 of 3, checkpoint {root} signed by {log.origin} "
            f"(log key from {keys}; {log_file_for(path)})") in result.output
    assert result.output.splitlines()[-1] == "VALID"


def test_verify_log_with_only_the_bundles_own_key_says_so(
        tmp_path: Path, key: SigningKey, log: FakeLog) -> None:
    path = _receipt_at(log, key, tmp_path, 0)
    bundle = _write(tmp_path / "elsewhere.json", log.bundle(0))
    pub = tmp_path / "issuer.pub"
    save_public_key(key.public_key, pub)
    result = _run("receipt", "verify", str(path), "--key", str(pub), "--log-bundle", str(bundle))
    assert result.exit_code == 0, result.output
    assert "ok   log: entry 0 of 3" in result.output
    assert "log key from the bundle itself, not independently trusted" in result.output


def test_verify_log_fails_for_another_receipts_bundle(
        tmp_path: Path, key: SigningKey, log: FakeLog) -> None:
    path = _receipt_at(log, key, tmp_path, 1)
    _write(log_file_for(path), log.bundle(2))
    keys = _write(tmp_path / "keys.json", log.keys())
    result = _run("receipt", "verify", str(path), "--key", str(keys), "--log")
    assert result.exit_code == 1, result.output
    assert "FAIL log: " in result.output
    assert "the receipt's log entry hashes to" in result.output
    assert "INVALID: 1 check(s) failed: log" in result.output


def test_verify_log_fails_for_a_checkpoint_of_another_log_key(
        tmp_path: Path, key: SigningKey, log: FakeLog) -> None:
    path = _receipt_at(log, key, tmp_path, 1)
    forged = FakeLog([key], origin=log.origin)
    forged.entries, forged.hashes = list(log.entries), list(log.hashes)
    _write(log_file_for(path), forged.bundle(1))  # signed by a key the keys document lacks
    keys = _write(tmp_path / "keys.json", log.keys())
    result = _run("receipt", "verify", str(path), "--key", str(keys), "--log")
    assert result.exit_code == 1, result.output
    assert "FAIL log: " in result.output
    assert "no signature by a trusted log key" in result.output


def test_verify_log_without_evidence_is_exit_2(tmp_path: Path, key: SigningKey,
                                               log: FakeLog) -> None:
    path = _receipt_at(log, key, tmp_path, 1)
    keys = _write(tmp_path / "keys.json", log.keys())
    result = _run("receipt", "verify", str(path), "--key", str(keys), "--log")
    assert result.exit_code == 2
    assert "no log bundle at" in result.output


def test_verify_log_bundle_and_server_together_is_exit_2(tmp_path: Path, key: SigningKey,
                                                         log: FakeLog) -> None:
    path = _receipt_at(log, key, tmp_path, 1)
    keys = _write(tmp_path / "keys.json", log.keys())
    result = _run("receipt", "verify", str(path), "--key", str(keys), "--log-bundle",
                  str(tmp_path / "b.json"), "--log-server", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert "at most one of --log-bundle or --log-server" in result.output


def test_verify_log_with_an_unreadable_bundle_is_exit_2(tmp_path: Path, key: SigningKey,
                                                        log: FakeLog) -> None:
    path = _receipt_at(log, key, tmp_path, 1)
    log_file_for(path).write_text("{not json", encoding="utf-8")
    keys = _write(tmp_path / "keys.json", log.keys())
    result = _run("receipt", "verify", str(path), "--key", str(keys), "--log")
    assert result.exit_code == 2
    assert "is not a log bundle" in result.output


# -- receipt verify --log fetching from a server --------------------------------


def test_verify_log_fetched_from_the_keys_url(tmp_path: Path, key: SigningKey,
                                              log: FakeLog) -> None:
    path = _receipt_at(log, key, tmp_path, 2)
    with serving(log) as url:
        result = _run("receipt", "verify", str(path), "--keys-url", url + "/keys", "--log")
    assert result.exit_code == 0, result.output
    assert (f"ok   log: entry 2 of 3, checkpoint {log.checkpoint().root.hex()[:16]} signed by "
            f"{log.origin} (log key from GET /keys of {url}/keys; fetched from "
            f"{url}/keys)") in result.output


def test_verify_log_server_with_a_receipt_not_in_the_log_fails(
        tmp_path: Path, key: SigningKey, log: FakeLog) -> None:
    path = _write(tmp_path / "r.json", _receipt(key, "never logged"))
    keys = _write(tmp_path / "keys.json", log.keys())
    with serving(log) as url:
        result = _run("receipt", "verify", str(path), "--key", str(keys), "--log-server", url)
    assert result.exit_code == 1, result.output
    assert f"FAIL log: the log of {url} has no entry for this receipt" in result.output


def test_verify_log_server_with_a_forged_checkpoint_fails(
        tmp_path: Path, key: SigningKey, log: FakeLog) -> None:
    path = _receipt_at(log, key, tmp_path, 1)
    keys = _write(tmp_path / "keys.json", log.keys())
    log.forced_note = sign_checkpoint(log.checkpoint(), generate_signing_key(), log.origin)
    with serving(log) as url:
        result = _run("receipt", "verify", str(path), "--key", str(keys), "--log-server", url)
    assert result.exit_code == 1, result.output
    assert f"FAIL log: the checkpoint of {url}: " in result.output


def test_verify_log_server_unreachable_is_exit_2(tmp_path: Path, key: SigningKey,
                                                 log: FakeLog) -> None:
    path = _receipt_at(log, key, tmp_path, 1)
    keys = _write(tmp_path / "keys.json", log.keys())
    with serving(log) as url:
        pass  # stopped: nothing listens there any more
    result = _run("receipt", "verify", str(path), "--key", str(keys), "--log-server", url)
    assert result.exit_code == 2, result.output
    assert "cannot fetch the log proof from" in result.output


# -- log monitor ------------------------------------------------------------------


def _monitor(url: str, state: Path, *receipts: Path) -> Result:
    words = ["log", "monitor", "--server", url, "--state", str(state)]
    for receipt in receipts:
        words += ["--receipt", str(receipt)]
    return _run(*words)


def test_monitor_records_the_key_then_sees_the_log_grow(tmp_path: Path, key: SigningKey,
                                                        log: FakeLog) -> None:
    state = tmp_path / "state.json"
    with serving(log) as url:
        first = _monitor(url, state)
        assert first.exit_code == 0, first.output
        assert "trusted on first use" in first.output
        assert f"ok   log {log.origin}: size 3, first checkpoint recorded" in first.output
        log.append(_receipt(key, "d"))
        log.append(_receipt(key, "e"))
        second = _monitor(url, state)
        assert second.exit_code == 0, second.output
        assert f"ok   log {log.origin}: size 3 -> 5, consistent" in second.output
        third = _monitor(url, state)
        assert third.exit_code == 0, third.output
        assert "size 5, unchanged" in third.output
    document = json.loads(state.read_text(encoding="utf-8"))
    assert document["format"] == STATE_FORMAT
    assert document["log"] == {"origin": log.origin, "key": log.vkey}
    assert [c["size"] for c in document["checkpoints"]] == [3, 5]
    assert document["alarms"] == []


def test_monitor_catches_a_rewritten_entry(tmp_path: Path, key: SigningKey,
                                           log: FakeLog) -> None:
    state = tmp_path / "state.json"
    with serving(log) as url:
        assert _monitor(url, state).exit_code == 0
        old = log.checkpoint()
        log.entries[0] = b"a different story"
        log.append(_receipt(key, "d"))
        new = log.checkpoint()
        result = _monitor(url, state)
    assert result.exit_code == 1, result.output
    assert (f"FAIL the log was rewritten: earlier size 3 root {old.root.hex()} is not a "
            f"prefix of size 4 root {new.root.hex()}") in result.output
    document = json.loads(state.read_text(encoding="utf-8"))
    assert [c["size"] for c in document["checkpoints"]] == [3]  # the bad one is not kept
    (alarm,) = document["alarms"]
    assert alarm["earlier"] == document["checkpoints"][0]["note"]
    assert alarm["served"] == log.note()


def test_monitor_catches_a_fork_of_the_same_size(tmp_path: Path, key: SigningKey,
                                                 log: FakeLog) -> None:
    state = tmp_path / "state.json"
    with serving(log) as url:
        assert _monitor(url, state).exit_code == 0
        old = log.checkpoint()
        other = Checkpoint(log.origin, 3, bytes(32))
        log.forced_note = sign_checkpoint(other, log.key, log.origin)  # validly signed
        result = _monitor(url, state)
        again = _monitor(url, state)  # still compared with the last good checkpoint
    assert result.exit_code == 1, result.output
    assert (f"FAIL the log forked: two checkpoints of size 3 with different roots: earlier "
            f"size 3 root {old.root.hex()}, now size 3 root {'00' * 32}") in result.output
    assert again.exit_code == 1


def test_monitor_catches_a_shrunk_log(tmp_path: Path, key: SigningKey, log: FakeLog) -> None:
    state = tmp_path / "state.json"
    with serving(log) as url:
        assert _monitor(url, state).exit_code == 0
        old = log.checkpoint()
        log.forced_note = log.note(2)
        result = _monitor(url, state)
    assert result.exit_code == 1, result.output
    assert (f"FAIL the log shrank: earlier size 3 root {old.root.hex()}, now size 2 root "
            f"{log.checkpoint(2).root.hex()}") in result.output


def test_monitor_refuses_a_changed_log_key(tmp_path: Path, key: SigningKey,
                                           log: FakeLog) -> None:
    state = tmp_path / "state.json"
    with serving(log) as url:
        assert _monitor(url, state).exit_code == 0
        log.key = generate_signing_key()
        result = _monitor(url, state)
    assert result.exit_code == 1, result.output
    assert "FAIL the log key changed" in result.output


def test_monitor_refuses_a_badly_signed_checkpoint(tmp_path: Path, log: FakeLog) -> None:
    log.forced_note = sign_checkpoint(log.checkpoint(), generate_signing_key(), log.origin)
    with serving(log) as url:
        result = _monitor(url, tmp_path / "state.json")
    assert result.exit_code == 1, result.output
    assert "FAIL the checkpoint served does not verify" in result.output


def test_monitor_checks_receipts_are_in_the_log(tmp_path: Path, key: SigningKey,
                                                log: FakeLog) -> None:
    logged = _receipt_at(log, key, tmp_path, 1)
    missing = _write(tmp_path / "missing.json", _receipt(key, "never"))
    with serving(log) as url:
        good = _monitor(url, tmp_path / "s1.json", logged)
        bad = _monitor(url, tmp_path / "s2.json", logged, missing)
    assert good.exit_code == 0, good.output
    assert f"ok   receipt {logged}: entry 1 of 3" in good.output
    assert bad.exit_code == 1, bad.output
    assert f"FAIL receipt {missing}: not in the log at size 3" in bad.output


def test_monitor_of_an_unreachable_server_is_exit_2(tmp_path: Path, log: FakeLog) -> None:
    with serving(log) as url:
        pass
    state = tmp_path / "state.json"
    result = _monitor(url, state)
    assert result.exit_code == 2, result.output
    assert f"cannot watch the log of {url}" in result.output
    assert not state.exists()


def test_monitor_of_a_server_without_a_log_is_exit_2(tmp_path: Path, log: FakeLog) -> None:
    log.publish_log = False
    with serving(log) as url:
        result = _monitor(url, tmp_path / "state.json")
    assert result.exit_code == 2, result.output
    assert "publishes no log key" in result.output


@pytest.mark.parametrize("content", ["not json", '{"format": "other"}',
                                     f'{{"format": "{STATE_FORMAT}"}}'])
def test_monitor_with_a_broken_state_file_is_exit_2(tmp_path: Path, log: FakeLog,
                                                    content: str) -> None:
    state = tmp_path / "state.json"
    state.write_text(content, encoding="utf-8")
    with serving(log) as url:
        result = _monitor(url, state)
    assert result.exit_code == 2, result.output
    assert "is not a log monitor state file" in result.output
    assert state.read_text(encoding="utf-8") == content


def test_monitor_once_without_http(log: FakeLog) -> None:
    """The core function against any source: a same-size fork found without the network."""

    class Source:
        note = log.note()

        def keys_document(self) -> dict[str, Any]:
            return log.keys()

        def checkpoint(self) -> str:
            return self.note

        def consistency(self, old_size: int, new_size: int) -> list[bytes]:
            raise AssertionError("not needed")

        def inclusion(self, receipt_hash: str, size: int) -> Any:
            raise AssertionError("not needed")

    source = Source()
    first = monitor_once(source, None, server="fake", now="t0")
    assert not first.problems
    source.note = sign_checkpoint(Checkpoint(log.origin, 3, b"\x01" * 32), log.key, log.origin)
    second = monitor_once(source, first.state, server="fake", now="t1")
    assert len(second.problems) == 1
    assert second.problems[0].startswith("the log forked: two checkpoints of size 3")
    assert second.state.alarms[0]["served"] == source.note


def test_load_state_of_a_missing_file_is_none(tmp_path: Path) -> None:
    assert load_state(tmp_path / "nothing.json") is None
