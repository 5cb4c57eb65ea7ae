"""``cyberian keys generate`` and ``cyberian receipt verify|show`` through click's CliRunner."""

from __future__ import annotations

import copy
import functools
import json
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_helpers import one_error_line
from click.testing import CliRunner, Result
from receipt_helpers import make_receipt

from cyberian.cli import main
from cyberian.cli import receipt as receipt_cli
from cyberian.receipts import CHECKS, to_dsse
from cyberian.signing import (
    SigningKey,
    generate_signing_key,
    keys_document,
    load_signing_key,
    load_trusted_keys,
    save_public_key,
)


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return generate_signing_key()


@pytest.fixture
def pub(tmp_path: Path, key: SigningKey) -> Path:
    path = tmp_path / "issuer.pub"
    save_public_key(key.public_key, path)
    return path


def _write(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
    return path


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_both_groups_are_registered() -> None:
    result = _run("--help")
    assert result.exit_code == 0
    assert "keys" in result.output
    assert "receipt" in result.output


# -- keys generate ---------------------------------------------------------------------


def test_keys_generate_writes_a_private_and_a_public_file(tmp_path: Path) -> None:
    out = tmp_path / "signing.key"
    result = _run("keys", "generate", "--out", str(out))
    assert result.exit_code == 0, result.output
    keyid = result.output.strip()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert load_signing_key(out).keyid == keyid
    assert set(load_trusted_keys(tmp_path / "signing.key.pub")) == {keyid}
    assert "PRIVATE" not in result.output


def test_keys_generate_never_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "signing.key"
    out.write_text("precious")
    result = _run("keys", "generate", "--out", str(out))
    assert result.exit_code == 2
    assert "already exists" in result.output
    assert out.read_text() == "precious"
    assert not (tmp_path / "signing.key.pub").exists()


def test_keys_generate_refuses_an_existing_public_file(tmp_path: Path) -> None:
    (tmp_path / "k.pub").write_text("old")
    result = _run("keys", "generate", "--out", str(tmp_path / "k"))
    assert result.exit_code == 2
    assert not (tmp_path / "k").exists()


def test_keys_generate_into_a_missing_directory_is_exit_2(tmp_path: Path) -> None:
    result = _run("keys", "generate", "--out", str(tmp_path / "nope" / "k"))
    assert result.exit_code == 2
    assert "cannot create" in result.output


# -- receipt verify ---------------------------------------------------------------------


def test_verify_a_valid_receipt(tmp_path: Path, key: SigningKey, pub: Path) -> None:
    path = _write(tmp_path, "r.json", make_receipt(key))
    result = _run("receipt", "verify", str(path), "--key", str(pub))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split(":")[0] for line in lines[: len(CHECKS)]] == [f"ok   {c}" for c in CHECKS]
    assert lines[-1] == "VALID"


def test_verify_a_tampered_receipt_names_the_check(
    tmp_path: Path, key: SigningKey, pub: Path
) -> None:
    forged = make_receipt(key)
    forged["replays"][0]["output_commitment"] = "0" * 64
    path = _write(tmp_path, "r.json", forged)
    result = _run("receipt", "verify", str(path), "--key", str(pub))
    assert result.exit_code == 1
    assert "FAIL proof_root: " in result.output
    assert "FAIL signature: " in result.output
    assert "ok   input_root: " in result.output
    assert result.output.splitlines()[-1].startswith("INVALID")


def test_verify_a_local_receipt_says_not_replayed(
    tmp_path: Path, key: SigningKey, pub: Path
) -> None:
    path = _write(tmp_path, "r.json", make_receipt(key, kind="local"))
    result = _run("receipt", "verify", str(path), "--key", str(pub))
    assert result.exit_code == 0, result.output
    assert "ok   replays: not replayed" in result.output


def test_verify_a_dsse_envelope(tmp_path: Path, key: SigningKey, pub: Path) -> None:
    path = _write(tmp_path, "r.dsse.json", to_dsse(make_receipt(key)))
    result = _run("receipt", "verify", str(path), "--key", str(pub))
    assert result.exit_code == 0, result.output


def test_verify_a_broken_dsse_envelope_is_invalid(
    tmp_path: Path, key: SigningKey, pub: Path
) -> None:
    envelope = to_dsse(make_receipt(key))
    envelope["signatures"] = []
    path = _write(tmp_path, "r.dsse.json", envelope)
    result = _run("receipt", "verify", str(path), "--key", str(pub))
    assert result.exit_code == 1
    assert "FAIL signature" in result.output


def test_verify_with_the_wrong_key_fails(tmp_path: Path, key: SigningKey) -> None:
    other = tmp_path / "other.pub"
    save_public_key(generate_signing_key().public_key, other)
    path = _write(tmp_path, "r.json", make_receipt(key))
    result = _run("receipt", "verify", str(path), "--key", str(other))
    assert result.exit_code == 1
    assert "FAIL trusted_key" in result.output


def test_verify_invalid_json_is_exit_1(tmp_path: Path, pub: Path) -> None:
    path = _write(tmp_path, "r.json", '{"version": "1", "version": "1"}')
    result = _run("receipt", "verify", str(path), "--key", str(pub))
    assert result.exit_code == 1
    assert "FAIL format: not valid JSON: duplicate key" in result.output


def test_verify_unreadable_receipt_is_exit_2(tmp_path: Path, pub: Path) -> None:
    result = _run("receipt", "verify", str(tmp_path / "missing.json"), "--key", str(pub))
    assert result.exit_code == 2
    assert "cannot read" in result.output


def test_verify_unreadable_key_is_exit_2(tmp_path: Path, key: SigningKey) -> None:
    path = _write(tmp_path, "r.json", make_receipt(key))
    result = _run("receipt", "verify", str(path), "--key", str(tmp_path / "missing.pub"))
    assert result.exit_code == 2
    junk = _write(tmp_path, "junk.pub", "not a key")
    result = _run("receipt", "verify", str(path), "--key", str(junk))
    assert result.exit_code == 2


@pytest.mark.parametrize("options", [[], ["--key", "a", "--keys-url", "http://x/keys"]])
def test_verify_needs_exactly_one_key_source(
    tmp_path: Path, key: SigningKey, options: list[str]
) -> None:
    path = _write(tmp_path, "r.json", make_receipt(key))
    result = _run("receipt", "verify", str(path), *options)
    assert result.exit_code == 2
    assert "exactly one of --key or --keys-url" in result.output


def _serve_keys(
    monkeypatch: pytest.MonkeyPatch, handler: Any, seen: list[httpx.Request] | None = None
) -> None:
    def record(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        response: httpx.Response = handler(request)
        return response

    transport = httpx.MockTransport(record)
    patched = functools.partial(receipt_cli.fetch_keys, transport=transport)
    monkeypatch.setattr(receipt_cli, "fetch_keys", patched)


def test_verify_with_keys_from_a_url(
    tmp_path: Path, key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[httpx.Request] = []
    document = keys_document([generate_signing_key().public_key, key.public_key])
    _serve_keys(monkeypatch, lambda request: httpx.Response(200, json=document), seen)
    path = _write(tmp_path, "r.json", make_receipt(key))
    result = _run("receipt", "verify", str(path), "--keys-url", "https://verifier.test")
    assert result.exit_code == 0, result.output
    assert [str(r.url) for r in seen] == ["https://verifier.test/keys"]


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(500, json={"error": "boom"}),
        httpx.Response(200, text="not json"),
        httpx.Response(
            200, json={"keys": [{"keyid": "0" * 64, "alg": "ed25519", "public_key": "AAAA"}]}
        ),
    ],
    ids=["server-error", "not-json", "bad-document"],
)
def test_verify_with_an_unusable_keys_url_is_exit_2(
    tmp_path: Path, key: SigningKey, monkeypatch: pytest.MonkeyPatch, response: httpx.Response
) -> None:
    _serve_keys(monkeypatch, lambda request: response)
    path = _write(tmp_path, "r.json", make_receipt(key))
    result = _run("receipt", "verify", str(path), "--keys-url", "https://verifier.test/keys")
    assert result.exit_code == 2
    assert "cannot fetch trusted keys" in result.output


@pytest.mark.parametrize("url", ["ftp://verifier.test/keys", "not a url", "http://"])
def test_verify_with_a_bad_url_is_exit_2(tmp_path: Path, key: SigningKey, url: str) -> None:
    path = _write(tmp_path, "r.json", make_receipt(key))
    result = _run("receipt", "verify", str(path), "--keys-url", url)
    assert result.exit_code == 2
    assert "cannot fetch trusted keys" in result.output


# -- receipt show ---------------------------------------------------------------------


def test_show_summarises_what_was_proven(tmp_path: Path, key: SigningKey) -> None:
    receipt = make_receipt(key)
    result = _run("receipt", "show", str(_write(tmp_path, "r.json", receipt)))
    assert result.exit_code == 0, result.output
    out = result.output
    for expected in (
        receipt["model_sha256"],
        receipt["spec_hash"],
        receipt["input_root"],
        receipt["output_root"],
        receipt["proof_root"],
        key.keyid,
        "2025-03-01T12:30:05Z",
        "31 texts in 8 chunks of up to 4",
        "2 of 8 chunks, rate 0.25",
        "1 % faked -> 75 %",
        "yes: 2 chunk(s) re-run by an independent replayer",
        "not verified here",
    ):
        assert expected in out, expected


def test_show_a_local_receipt(tmp_path: Path, key: SigningKey) -> None:
    result = _run(
        "receipt", "show", str(_write(tmp_path, "r.json", make_receipt(key, kind="local")))
    )
    assert result.exit_code == 0
    assert "no: a local receipt" in result.output


def test_show_survives_a_mangled_receipt(tmp_path: Path, key: SigningKey) -> None:
    mangled = copy.deepcopy(make_receipt(key))
    mangled["sampling"] = "nonsense"
    del mangled["chunk_count"]
    result = _run("receipt", "show", str(_write(tmp_path, "r.json", mangled)))
    assert result.exit_code == 0
    assert "texts in ? chunks" in result.output


@pytest.mark.parametrize("content", ["[1, 2]", "{broken"])
def test_show_refuses_what_is_not_a_receipt(tmp_path: Path, content: str) -> None:
    result = _run("receipt", "show", str(_write(tmp_path, "r.json", content)))
    assert result.exit_code == 2
    assert "not a receipt" in result.output


# -- hostile and clumsy input: one line, exit 2 -----------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("content", [DEEP, '{"version": "1", "chunks": ' + DEEP + "}"],
                         ids=["bare", "inside-a-receipt"])
def test_verify_deeply_nested_json_is_one_line_exit_2(
    tmp_path: Path, pub: Path, content: str
) -> None:
    result = _run("receipt", "verify", str(_write(tmp_path, "r.json", content)), "--key", str(pub))
    assert result.exit_code == 2
    assert "nested deeper than 64 levels" in one_error_line(result)


def test_deeply_nested_keys_are_one_line_exit_2(
    tmp_path: Path, key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, "r.json", make_receipt(key))
    keys = _write(tmp_path, "keys.json", '{"keys": ' + DEEP + "}")
    result = _run("receipt", "verify", str(path), "--key", str(keys))
    assert result.exit_code == 2
    assert "nested deeper" in one_error_line(result)
    _serve_keys(monkeypatch, lambda request: httpx.Response(200, text='{"keys": ' + DEEP + "}"))
    result = _run("receipt", "verify", str(path), "--keys-url", "https://verifier.test")
    assert result.exit_code == 2
    assert "nested deeper" in one_error_line(result)


_DOC_LINK = ("Server error '500 Internal Server Error' for url 'https://verifier.test/keys'\n"
             "For more information check: https://developer.mozilla.org/en-US/docs/Web/HTTP/500")


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (httpx.Response(404, text="<html>\n<h1>Not Found</h1>\n</html>"), "HTTP 404 Not Found"),
        (httpx.Response(500, json={"error": "internal", "message": _DOC_LINK}), "HTTP 500: "),
        (httpx.Response(302, headers={"Location": "https://elsewhere.test/keys"}),
         "HTTP 302: a redirect to https://elsewhere.test/keys, not followed"),
    ],
    ids=["404", "500", "302"],
)
def test_keys_url_http_errors_are_one_line_exit_2(
    tmp_path: Path, key: SigningKey, monkeypatch: pytest.MonkeyPatch,
    response: httpx.Response, expected: str,
) -> None:
    _serve_keys(monkeypatch, lambda request: response)
    path = _write(tmp_path, "r.json", make_receipt(key))
    result = _run("receipt", "verify", str(path), "--keys-url", "https://verifier.test/keys")
    assert result.exit_code == 2
    line = one_error_line(result)
    assert line.startswith("error: cannot fetch trusted keys from https://verifier.test/keys: ")
    assert expected in line
    assert "HTTP 404: HTTP 404" not in line


@pytest.mark.parametrize(
    "content",
    [b"this is not json\nat all\n", b"\xff\xfe\x00garbage", b"[1, 2]", b'"a receipt"',
     b'{"hello": "world"}', b""],
    ids=["text", "binary", "array", "string", "other-object", "empty"],
)
def test_verify_what_is_no_receipt_at_all_is_one_line_exit_2(
    tmp_path: Path, pub: Path, content: bytes
) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(content)
    result = _run("receipt", "verify", str(path), "--key", str(pub))
    assert result.exit_code == 2
    assert f"{path} is not a receipt" in one_error_line(result)
