"""Issue 16, the client half, against the live server: ``cyberian log monitor``,
``cyberian receipt verify --log`` and the log bundle ``cyberian-prove --verify`` saves."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from log_tamper import rewrite_log_entry
from server_harness import LiveServer, running_server, texts, wait_settled

from cyberian.tlog import open_checkpoint, parse_verifier_key


def cyberian(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``cyberian <args>`` in a fresh process."""
    return subprocess.run([sys.executable, "-m", "cyberian.cli", *args], capture_output=True,
                          text=True, timeout=120, check=False, env=env)


def run_job(server: LiveServer, client: Any, prefix: str) -> dict[str, Any]:
    """A settled ``tiny`` job's receipt."""
    response = client.post("/jobs", json={"model": "tiny", "inputs": texts(5, prefix)})
    assert response.status_code == 201, response.text
    final = wait_settled(client, response.json()["id"])
    assert final["status"] == "SETTLED", final
    receipt: dict[str, Any] = client.get(f"/receipts/{final['receipt_id']}").json()
    return receipt


def sizes(stdout: str) -> list[int]:
    """The log sizes a monitor run printed (``size N`` or ``size A -> B``)."""
    match = re.search(r"size (\d+)(?: -> (\d+))?", stdout)
    assert match, stdout
    return [int(group) for group in match.groups() if group is not None]


def test_monitor_twice_and_verify_receipts_with_the_log(server: LiveServer,
                                                        tmp_path: Path) -> None:
    client = server.client(server.account())
    run_job(server, client, "log one")
    state = tmp_path / "monitor.json"
    first = cyberian("log", "monitor", "--server", server.url, "--state", str(state))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "trusted on first use" in first.stdout
    (before,) = sizes(first.stdout)
    assert before >= 1

    second_receipt = run_job(server, client, "log two")
    receipt_path = tmp_path / "r.json"
    receipt_path.write_text(json.dumps(second_receipt), encoding="utf-8")
    keys_path = tmp_path / "k.json"
    keys_path.write_text(client.get("/keys").text, encoding="utf-8")
    second = cyberian("log", "monitor", "--server", server.url, "--state", str(state),
                      "--receipt", str(receipt_path))
    assert second.returncode == 0, second.stdout + second.stderr
    old, new = sizes(second.stdout)
    assert old == before
    assert new > before
    assert f"ok   receipt {receipt_path}: entry " in second.stdout
    document = json.loads(state.read_text(encoding="utf-8"))
    assert [c["size"] for c in document["checkpoints"]] == [old, new]

    # the log key of the saved /keys, the proof fetched from the server
    fetched = cyberian("receipt", "verify", str(receipt_path), "--key", str(keys_path),
                       "--log", "--log-server", server.url)
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    assert re.search(r"^ok   log: entry \d+ of \d+, checkpoint [0-9a-f]{16} signed by \S+ "
                     rf"\(log key from {re.escape(str(keys_path))};", fetched.stdout, re.M)
    assert fetched.stdout.splitlines()[-1] == "VALID"

    # the keys and the proof from the server's URL
    by_url = cyberian("receipt", "verify", str(receipt_path), "--keys-url", server.url, "--log")
    assert by_url.returncode == 0, by_url.stdout + by_url.stderr
    assert f"log key from GET /keys of {server.url}" in by_url.stdout


def test_prove_verify_saves_the_log_bundle_and_the_later_command_passes(
        server: LiveServer, catalog_dir: Path, tmp_path: Path) -> None:
    account = server.account("enterprise")
    env = {**os.environ, "CYBERIAN_API_BASE": server.url, "CYBERIAN_API_KEY": account.key}
    receipt_path = tmp_path / "r.json"
    texts_file = tmp_path / "texts.txt"
    texts_file.write_text("\n".join(texts(6, "logged proof")) + "\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "cyberian.cli.prove", str(catalog_dir / "tiny.yaml"),
         str(texts_file), "--verify", "--receipt", str(receipt_path)],
        capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    bundle_path = tmp_path / "r.log.json"
    assert re.search(rf"^log +{re.escape(str(bundle_path))} \(entry \d+ of \d+, checkpoint "
                     r"[0-9a-f]{16} signed by \S+\)$", done.stdout, re.M), done.stdout
    bundle = json.loads(bundle_path.read_text(encoding="utf-8"))
    assert bundle["format"] == "cyberian-log-bundle/v1"
    keys = json.loads((tmp_path / "r.keys.json").read_text(encoding="utf-8"))
    assert keys["log"]["key"] == bundle["log_key"]

    (line,) = [x for x in done.stdout.splitlines() if x.startswith("check it later ")]
    words = shlex.split(line.removeprefix("check it later"))
    assert words == ["cyberian", "receipt", "verify", str(receipt_path), "--log", "--key",
                     str(tmp_path / "r.keys.json")]
    offline = {k: v for k, v in env.items() if not k.startswith("CYBERIAN_")}
    later = cyberian(*words[1:], env=offline)
    assert later.returncode == 0, later.stdout + later.stderr
    assert f"(log key from {tmp_path / 'r.keys.json'}; {bundle_path})" in later.stdout
    assert later.stdout.splitlines()[-1] == "VALID"


def test_monitor_catches_a_rewritten_old_entry(tmp_path: Path, catalog_dir: Path) -> None:
    with running_server(tmp_path, catalog_dir, args=("--workers", "1")) as live:
        account = live.account()
        client = live.client(account)
        run_job(live, client, "rewrite one")
        run_job(live, client, "rewrite two")
        state = tmp_path / "monitor.json"
        first = cyberian("log", "monitor", "--server", live.url, "--state", str(state))
        assert first.returncode == 0, first.stdout + first.stderr
        (old_size,) = sizes(first.stdout)
        old_root = json.loads(state.read_text(encoding="utf-8"))["checkpoints"][-1]["root"]

        # TEST-ONLY: the server stopped, an old entry rewritten, the server started again
        original = client.get("/log/entries/0").json()["receipt"]
        live.stop()
        rewrite_log_entry(live.store_location, 0,
                          {**original, "issued_at": "2000-01-01T00:00:00Z"})
        live.start()
        client = live.client(account)
        run_job(live, client, "rewrite three")
        log = client.get("/keys").json()["log"]
        new = open_checkpoint(client.get("/log/checkpoint").text,
                              [parse_verifier_key(log["key"])], origin=log["origin"])
        assert new.size == old_size + 1

        caught = cyberian("log", "monitor", "--server", live.url, "--state", str(state))
    assert caught.returncode == 1, caught.stdout + caught.stderr
    assert (f"FAIL the log was rewritten: earlier size {old_size} root {old_root} is not a "
            f"prefix of size {new.size} root {new.root.hex()}") in caught.stdout
    document = json.loads(state.read_text(encoding="utf-8"))
    assert [c["size"] for c in document["checkpoints"]] == [old_size]
    assert len(document["alarms"]) == 1
