"""``cyberian-prove --verify`` against a scripted verifier on loopback: how its failures read."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

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
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Verifier)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


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
