"""``cyberian keys generate`` and ``cyberian receipt verify|show`` through click's CliRunner."""

from __future__ import annotations

import copy
import functools
import json
import stat
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from cli_helpers import one_error_line
from click.testing import CliRunner, Result
from receipt_helpers import make_receipt, make_spec

from cyberian.cli import main
from cyberian.cli import receipt as receipt_cli
from cyberian.commitments import ChunkCommitment, chunk_bounds, output_commitment
from cyberian.receipts import (
    CHECKS,
    ReplayRecord,
    build_receipt_body,
    check_embeddings,
    sign_receipt,
    to_dsse,
)
from cyberian.sampling import resolve_sampling
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


def test_show_calls_a_vaas_receipts_chunks_blocks(tmp_path: Path, key: SigningKey) -> None:
    job = _run("receipt", "show", str(_write(tmp_path, "j.json", make_receipt(key))))
    assert "31 texts in 8 chunks of up to 4 texts (chunk_size), 8 dimensions" in job.output
    vaas = _run("receipt", "show",
                str(_write(tmp_path, "v.json", make_receipt(key, kind="vaas"))))
    assert vaas.exit_code == 0, vaas.output
    for expected in ("31 texts in 8 blocks of up to 4 texts (verification.vaas_block)",
                     "2 of 8 blocks, rate 0.25", "yes: 2 block(s) re-executed by the verifier",
                     "share of blocks faked"):
        assert expected in vaas.output, expected
    assert "chunk" not in vaas.output
    one = _run("receipt", "show", str(_write(tmp_path, "one.json", make_receipt(
        key, kind="vaas", chunk_count=1, input_count=3))))
    assert "3 texts in 1 block of up to 4 texts (verification.vaas_block)" in one.output


# -- receipt verify --embeddings ----------------------------------------------------------

ROWS = np.random.default_rng(7).standard_normal((10, 8)).astype(np.float32)


def _rows_receipt(key: SigningKey, rows: np.ndarray, *, kind: str = "job",
                  size: int = 4) -> dict[str, Any]:
    """A signed receipt committing to ``rows`` in chunks (vaas: blocks) of ``size`` rows."""
    spec = make_spec(chunk_size=size, verification="{sample_rate: 1.0}")
    chunks = [ChunkCommitment(i, "ab" * 32, output_commitment(rows[start:stop]))
              for i, (start, stop) in enumerate(chunk_bounds(len(rows), size))]
    common: dict[str, Any] = {
        "spec": spec, "kind": kind, "job_id": f"{kind}-rows", "chunks": chunks,
        "input_count": len(rows), "issuer_keyid": key.keyid, "executor_environment": {},
    }
    if kind == "local":
        return sign_receipt(build_receipt_body(**common), key)
    plan = resolve_sampling(spec.verification, len(chunks))
    replays = [ReplayRecord(c.index, c.output_commitment, True) for c in chunks]
    return sign_receipt(build_receipt_body(**common, replayer_environment={}, plan=plan,
                                           nonce=bytes(32), replays=replays), key)


def _verify_rows(tmp_path: Path, pub: Path, receipt: dict[str, Any], rows: Any,
                 name: str = "emb.npy") -> Result:
    path = tmp_path / name
    if isinstance(rows, bytes):
        path.write_bytes(rows)
    elif name.endswith(".npy"):
        np.save(path, rows)
    else:
        rows.astype("<f4").tofile(path)
    receipt_path = _write(tmp_path, "r.json", receipt)
    return _run("receipt", "verify", str(receipt_path), "--key", str(pub),
                "--embeddings", str(path))


def _embeddings_line(result: Result) -> str:
    lines = [line for line in result.output.splitlines() if " embeddings: " in line]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize("name", ["emb.npy", "emb.f32"])
@pytest.mark.parametrize(("kind", "size", "unit"),
                         [("job", 4, "3 chunks"), ("local", 4, "3 chunks"),
                          ("vaas", 3, "4 blocks"), ("vaas", 1000, "1 block")])
def test_verify_embeddings_that_match(tmp_path: Path, key: SigningKey, pub: Path, name: str,
                                      kind: str, size: int, unit: str) -> None:
    result = _verify_rows(tmp_path, pub, _rows_receipt(key, ROWS, kind=kind, size=size), ROWS,
                          name)
    assert result.exit_code == 0, result.output
    assert _embeddings_line(result).startswith(
        "ok   embeddings: 10 rows of 8 float32 match the output commitment")
    assert _embeddings_line(result).endswith(f"of the {unit}")
    assert result.output.splitlines()[-1] == "VALID"


def _one_ulp_off(row: int) -> np.ndarray:
    changed = ROWS.copy()
    changed[row, 3] = np.nextafter(changed[row, 3], np.float32(9))
    return changed


@pytest.mark.parametrize(
    ("kind", "size", "rows", "expected"),
    [
        ("job", 4, _one_ulp_off(5),
         "FAIL embeddings: 1 of 3 chunks differs; the first is chunk 1 (rows 4-7) hashes to "),
        ("vaas", 3, _one_ulp_off(5),
         "FAIL embeddings: 1 of 4 blocks differs; the first is block 1 (rows 3-5) hashes to "),
        ("job", 4, ROWS[:9], "FAIL embeddings: 9 rows, but the receipt commits to 10 texts "
         "(input_count); 1 of 3 chunks differs; the first is chunk 2 (rows 8-9, of which the "
         "file has 1)"),
        ("job", 4, np.concatenate([ROWS, ROWS[:2]]), "FAIL embeddings: 12 rows, but the receipt "
         "commits to 10 texts (input_count); the first 10 rows match; 2 row(s) are extra"),
        ("job", 4, ROWS[::-1], "FAIL embeddings: 3 of 3 chunks differ; the first is chunk 0"),
        ("job", 4, ROWS[:, :4], "FAIL embeddings: the rows have shape (10, 4), not (10, 8) "
         "(input_count, dimensions): no chunk matches, from chunk 0 on"),
        ("vaas", 3, ROWS.astype(np.float64), "FAIL embeddings: the rows are float64, not "
         "float32: no block matches, from block 0 on"),
    ],
    ids=["one-ulp", "one-ulp-vaas", "a-row-short", "rows-extra", "reordered", "wrong-width",
         "float64"],
)
def test_verify_embeddings_that_differ_name_the_first_chunk(
        tmp_path: Path, key: SigningKey, pub: Path, kind: str, size: int, rows: np.ndarray,
        expected: str) -> None:
    result = _verify_rows(tmp_path, pub, _rows_receipt(key, ROWS, kind=kind, size=size), rows)
    assert result.exit_code == 1, result.output
    assert _embeddings_line(result).startswith(expected)
    assert result.output.splitlines()[-1] == "INVALID: 1 check(s) failed: embeddings"


def test_verify_raw_embeddings_of_no_whole_rows_fail(tmp_path: Path, key: SigningKey,
                                                     pub: Path) -> None:
    result = _verify_rows(tmp_path, pub, _rows_receipt(key, ROWS), ROWS.tobytes()[:-4],
                          "emb.f32")
    assert result.exit_code == 1, result.output
    assert _embeddings_line(result).startswith(
        f"FAIL embeddings: {tmp_path / 'emb.f32'} holds 316 bytes, not whole rows of 8 "
        "little-endian float32 (32 bytes each)")
    shaped = _verify_rows(tmp_path, pub, _rows_receipt(key, ROWS), ROWS[:9], "short.f32")
    assert "FAIL embeddings: 9 rows, but the receipt commits to 10 texts" in shaped.output


def test_verify_embeddings_of_a_tampered_receipt_is_still_invalid(
        tmp_path: Path, key: SigningKey, pub: Path) -> None:
    receipt = _rows_receipt(key, ROWS)
    receipt["input_count"] = 11
    result = _verify_rows(tmp_path, pub, receipt, ROWS)
    assert result.exit_code == 1
    assert "FAIL receipt_hash" in result.output
    assert "FAIL embeddings: 10 rows, but the receipt commits to 11 texts" in result.output


@pytest.mark.parametrize(
    "content", [None, b"\x93NUMPY garbage", "object"], ids=["missing", "broken-npy", "pickle"])
def test_verify_unreadable_embeddings_is_one_line_exit_2(
        tmp_path: Path, key: SigningKey, pub: Path, content: bytes | str | None) -> None:
    path = tmp_path / "emb.npy"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "object":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    receipt_path = _write(tmp_path, "r.json", _rows_receipt(key, ROWS))
    result = _run("receipt", "verify", str(receipt_path), "--key", str(pub),
                  "--embeddings", str(path))
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert str(path) in line
    assert "cannot read" in line or "not a readable .npy file" in line


def test_check_embeddings_is_public_and_never_raises(key: SigningKey) -> None:
    receipt = _rows_receipt(key, ROWS, kind="vaas", size=3)
    assert check_embeddings(receipt, ROWS).ok
    assert check_embeddings(receipt, ROWS.astype(">f4")).ok  # the values, in either byte order
    broken = check_embeddings({"kind": "vaas"}, ROWS)
    assert (broken.name, broken.ok) == ("embeddings", False)
    assert "missing" in broken.detail


# -- the keys file cyberian-prove --verify saves --------------------------------------------


def test_a_saved_keys_document_is_a_key_file(tmp_path: Path, key: SigningKey) -> None:
    keys = _write(tmp_path, "r.keys.json",
                  keys_document([generate_signing_key().public_key, key.public_key]))
    path = _write(tmp_path, "r.json", make_receipt(key, kind="vaas"))
    assert _run("receipt", "verify", str(path), "--key", str(keys)).exit_code == 0
