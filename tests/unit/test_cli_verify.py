"""``cyberian-prove --verify`` against a scripted verifier on loopback: how its failures read."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from loopback import serve_on_loopback

from cyberian.cli._verify import keys_file_for, later_command
from cyberian.cli.prove import main
from cyberian.client._constants import API_KEY_ENV, BASE_URL_ENV

KEY = "cyb_test_" + "k" * 40


class _Verifier(BaseHTTPRequestHandler):
    """Certifies any claim with a (bare) receipt, and publishes the ``/keys`` it is told to."""

    keys_document: Any = None

    def _answer(self, document: Any) -> None:
        data = json.dumps(document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self._answer({"receipt_id": "rcpt_test", "kind": "vaas"})

    def do_GET(self) -> None:
        self._answer(self.keys_document)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def verifier_url() -> Iterator[str]:
    yield from serve_on_loopback(_Verifier)


@pytest.mark.parametrize(
    "document",
    [{"keys": []}, {"keys": [{"keyid": "0" * 64, "alg": "ed25519", "public_key": "AAAA"}]}, []],
    ids=["no-keys", "bad-key", "not-an-object"],
)
def test_an_unusable_keys_document_is_one_error_line_and_exit_2(
    tiny_spec_path: Path,
    tmp_path: Path,
    verifier_url: str,
    monkeypatch: pytest.MonkeyPatch,
    document: Any,
) -> None:
    monkeypatch.setattr(_Verifier, "keys_document", document)
    monkeypatch.setenv(API_KEY_ENV, KEY)
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    texts = tmp_path / "texts.txt"
    texts.write_text("one\ntwo\nthree\n", encoding="utf-8")
    receipt = tmp_path / "r.json"
    result = CliRunner().invoke(main, [str(tiny_spec_path), str(texts), "--verify", "--server",
                                       verifier_url, "--receipt", str(receipt), "-q"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "/keys" in errors[0]
    assert verifier_url in errors[0]
    assert KEY not in result.output
    assert json.loads(receipt.read_text(encoding="utf-8"))["receipt_id"] == "rcpt_test"
    assert not (tmp_path / "r.keys.json").exists()  # an unusable document is not saved


# -- the verifier does not answer, or refuses: the local proof is kept, and said so --------


class _Refuser(BaseHTTPRequestHandler):
    """Answers every claim with the status it is told to (a bad key, over quota)."""

    status = 401

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        data = json.dumps({"error": "refused", "message": f"status {self.status}"}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def refusing_url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from serve_on_loopback(type("_Answer", (_Refuser,), {"status": request.param}))


def _prove_and_fail(tiny_spec_path: Path, tmp_path: Path, url: str,
                    monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path, Path]:
    monkeypatch.setenv(API_KEY_ENV, KEY)
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    texts = tmp_path / "texts.txt"
    texts.write_text("one\ntwo\nthree\n", encoding="utf-8")
    out, commitments = tmp_path / "o.npy", tmp_path / "c.json"
    result = CliRunner().invoke(main, [str(tiny_spec_path), str(texts), "--out", str(out),
                                       "--commitments", str(commitments), "--verify",
                                       "--server", url, "-q"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert KEY not in result.output
    return errors[0], out, commitments


def _assert_kept(line: str, out: Path, commitments: Path) -> None:
    assert line.endswith(f"; the local proof was kept in {out} and {commitments} "
                         "(valid on its own, without a receipt)")
    assert np.load(out).shape == (3, 32)
    assert json.loads(commitments.read_text(encoding="utf-8"))["input_count"] == 3


@pytest.mark.parametrize("refusing_url", [401, 402], indirect=True, ids=["bad-key", "quota"])
def test_a_refused_claim_keeps_the_local_proof_and_says_so(
    tiny_spec_path: Path, tmp_path: Path, refusing_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    line, out, commitments = _prove_and_fail(tiny_spec_path, tmp_path, refusing_url, monkeypatch)
    assert line.startswith(f"error: the verifier at {refusing_url} refused the claim: status 40")
    _assert_kept(line, out, commitments)


def test_an_unreachable_verifier_keeps_the_local_proof_and_says_so(
    tiny_spec_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "http://127.0.0.1:1"
    line, out, commitments = _prove_and_fail(tiny_spec_path, tmp_path, url, monkeypatch)
    assert line.startswith(f"error: cannot reach the verifier at {url}: ")
    _assert_kept(line, out, commitments)


# -- where the keys are saved, and the command that checks the receipt later ----------------


@pytest.mark.parametrize(
    ("receipt", "keys"),
    [("rcpt_ab.json", "rcpt_ab.keys.json"), ("out/r.json", "out/r.keys.json"),
     ("receipt", "receipt.keys.json"), ("r.txt", "r.txt.keys.json")],
)
def test_the_keys_file_sits_beside_the_receipt(receipt: str, keys: str) -> None:
    assert keys_file_for(Path(receipt)) == Path(keys)


def test_the_later_command_is_quoted_for_a_shell() -> None:
    command = later_command(Path("my dir/r.json"), Path("my dir/r.keys.json"), None)
    assert command == "cyberian receipt verify 'my dir/r.json' --key 'my dir/r.keys.json'"
    assert shlex.split(later_command(Path("r.json"), Path("r.keys.json"), Path("o.npy"))) == [
        "cyberian", "receipt", "verify", "r.json", "--key", "r.keys.json", "--embeddings", "o.npy"]
