"""Issue 5 end to end: multi-block VaaS with our clients, and `cyberian-prove --verify`."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from server_harness import LiveServer, texts

from cyberian.cli.prove import main as prove_main
from cyberian.client import AsyncClient, Client
from cyberian.exceptions import VerificationFailedError
from cyberian.prover import Prover
from cyberian.receipts import verify_receipt
from cyberian.runtime import Runtime
from cyberian.signing import load_signing_key
from cyberian.spec import Spec


def block_commitments(spec: Spec, inputs: list[str]) -> list[str]:
    return list(Prover(spec).prove(inputs, block_size=spec.verification["vaas_block"])
                .block_commitments)


def test_multi_block_claims_verify_sync_and_async(server: LiveServer, tiny_all: Spec,
                                                  catalog_dir: Path) -> None:
    account = server.account("enterprise")
    inputs = texts(8, "multi block")  # vaas_block 3 -> blocks of 3, 3, 2
    blocks = block_commitments(tiny_all, inputs)
    assert len(blocks) == 3
    with Client(account.key, base_url=server.url) as client:
        receipt = client.verify_outputs(spec_yaml=catalog_dir / "tiny-all.yaml",
                                        input_texts=inputs, claimed_output_commitments=blocks)
        assert receipt["kind"] == "vaas"
        assert [c["output_commitment"] for c in receipt["chunks"]] == blocks
        assert client.verify_receipt_offline(receipt).kind == "vaas"
        tampered = [*blocks[:2], "f" * 64]
        with pytest.raises(VerificationFailedError) as failed:
            client.verify_outputs(model="tiny-all", inputs=inputs,
                                  claimed_output_commitments=tampered)
        assert failed.value.status_code == 422
        assert "block 2" in str(failed.value.errors[0])

    async def scenario() -> dict[str, object]:
        async with AsyncClient(account.key, base_url=server.url) as client:
            receipt = await client.verify_outputs(model="tiny-all", inputs=inputs,
                                                  claimed_output_commitments=blocks)
            await client.verify_receipt_offline(receipt)
            return receipt

    assert asyncio.run(scenario())["chunk_count"] == 3


def write_texts(folder: Path, count: int) -> Path:
    path = folder / "texts.txt"
    path.write_text("\n".join(texts(count, "prove and verify")) + "\n", encoding="utf-8")
    return path


def issuer_keys(cache: Path) -> list[object]:
    return [load_signing_key(p).public_key
            for p in (cache / "embedded-verifier" / "keys").glob("*.pem")]


def _later(stdout: str) -> list[str]:
    """The printed ``cyberian receipt verify ...`` command, as a fresh process runs it."""
    (line,) = [line for line in stdout.splitlines() if line.startswith("check it later ")]
    words = shlex.split(line.removeprefix("check it later"))
    assert words[:3] == ["cyberian", "receipt", "verify"]
    return [sys.executable, "-m", "cyberian.cli", *words[1:]]


def test_prove_verify_with_the_embedded_verifier(catalog_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {**os.environ, "CYBERIAN_CACHE_DIR": str(cache)}
    env.pop("CYBERIAN_API_BASE", None)
    receipt_path, rows_path = tmp_path / "receipt.json", tmp_path / "emb.npy"
    done = subprocess.run(
        [sys.executable, "-m", "cyberian.cli.prove", str(catalog_dir / "tiny-all.yaml"),
         str(write_texts(tmp_path, 10)), "--verify", "--receipt", str(receipt_path),
         "--out", str(rows_path)],
        capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert ("verified           yes: 10 texts in 4 blocks of up to 3 texts "
            "(verification.vaas_block), re-executed and matched") in done.stdout
    assert "embedded" in done.stdout
    assert done.stderr.startswith("starting the embedded verifier on 127.0.0.1 in the "
                                  f"background (data in {cache / 'embedded-verifier'}; "
                                  "first run: making its account)…\n")
    receipt = json.loads(receipt_path.read_text(encoding="utf-8"))
    verified = verify_receipt(receipt, issuer_keys(cache))
    assert verified.kind == "vaas"
    assert receipt["input_count"] == 10
    assert verified.keyid in done.stdout
    # the server was stopped: nothing listens on its port any more
    assert not (cache / "embedded-verifier" / "server.json").exists()

    # ... and the saved receipt still verifies, offline, with the command it printed
    keys_path = tmp_path / "receipt.keys.json"
    assert f"keys               {keys_path} " in done.stdout
    command = _later(done.stdout)
    assert command[-6:] == [str(receipt_path), "--log", "--key", str(keys_path),
                            "--embeddings", str(rows_path)]
    assert (tmp_path / "receipt.log.json").is_file()  # the log bundle, beside the receipt
    later = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False,
                           env={**env, "CYBERIAN_CACHE_DIR": str(tmp_path / "elsewhere")})
    assert later.returncode == 0, later.stdout + later.stderr
    assert "ok   embeddings: 10 rows of 32 float32" in later.stdout
    assert "ok   log: entry " in later.stdout
    assert later.stdout.splitlines()[-1] == "VALID"

    receipt["chunks"][1]["output_commitment"] = "0" * 64  # tampered after signing
    receipt_path.write_text(json.dumps(receipt), encoding="utf-8")
    tampered = subprocess.run(command, capture_output=True, text=True, timeout=120,
                              check=False)
    assert tampered.returncode == 1, tampered.stdout + tampered.stderr
    assert "FAIL receipt_hash" in tampered.stdout
    assert "FAIL embeddings: 1 of 4 blocks differs; the first is block 1 (rows 3-5)" in (
        tampered.stdout)
    assert tampered.stdout.splitlines()[-1].startswith("INVALID")


def test_prove_verify_with_one_flipped_byte_exits_1(catalog_dir: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CYBERIAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CYBERIAN_API_BASE", raising=False)
    real_run_batch = Runtime.run_batch
    calls = {"n": 0}

    def flip_one_byte(self: Runtime, encoded: list[np.ndarray], **kwargs: object) -> np.ndarray:
        rows = real_run_batch(self, encoded, **kwargs)  # type: ignore[arg-type]
        calls["n"] += 1
        if calls["n"] == 1:
            rows.view(np.uint8)[-1, 0] ^= 0x01  # the local prover only; the verifier is clean
        return rows

    monkeypatch.setattr(Runtime, "run_batch", flip_one_byte)
    result = CliRunner().invoke(prove_main, [str(catalog_dir / "tiny-all.yaml"),
                                             str(write_texts(tmp_path, 10)), "--verify"])
    assert result.exit_code == 1, result.output
    assert "NOT VERIFIED" in result.output
    assert "block" in result.output
    assert not list(Path.cwd().glob("rcpt_*.json"))


def test_prove_verify_against_a_remote_server(server: LiveServer, catalog_dir: Path,
                                              tmp_path: Path) -> None:
    account = server.account("enterprise")
    env = {**os.environ, "CYBERIAN_API_BASE": server.url, "CYBERIAN_API_KEY": account.key}
    receipt_path = tmp_path / "r.json"
    done = subprocess.run(
        [sys.executable, "-m", "cyberian.cli.prove", str(catalog_dir / "tiny.yaml"),
         str(write_texts(tmp_path, 6)), "--verify", "--receipt", str(receipt_path)],
        capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert server.url in done.stdout
    assert account.key not in done.stdout + done.stderr
    assert json.loads(receipt_path.read_text(encoding="utf-8"))["kind"] == "vaas"


def test_prove_verify_usage_and_connection_errors(catalog_dir: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    texts_file = write_texts(tmp_path, 3)
    spec = str(catalog_dir / "tiny.yaml")
    monkeypatch.delenv("CYBERIAN_API_KEY", raising=False)
    no_key = CliRunner().invoke(prove_main, [spec, str(texts_file), "--verify",
                                             "--server", "http://127.0.0.1:9"])
    assert no_key.exit_code == 2
    assert "CYBERIAN_API_KEY" in no_key.output
    monkeypatch.setenv("CYBERIAN_API_KEY", "cyb_live_" + "x" * 43)
    unreachable = CliRunner().invoke(prove_main, [spec, str(texts_file), "--verify",
                                                  "--server", "http://127.0.0.1:9"])
    assert unreachable.exit_code == 2
    assert "error:" in unreachable.output
    assert "Traceback" not in unreachable.output
    assert "x" * 43 not in unreachable.output
    lonely = CliRunner().invoke(prove_main, [spec, str(texts_file), "--server", "http://x"])
    assert lonely.exit_code == 2


def test_prove_verify_from_an_emulated_cpu_of_another_class_is_refused_clearly(
        server: LiveServer, catalog_dir: Path, tmp_path: Path) -> None:
    """The prover runs under qemu as an SSE4.2 CPU (class x86_64-nofma); the verifier runs
    natively (x86_64-fma): the claim is refused with both classes named, before any work."""
    import shutil

    from cyberian.environment import cpu_class

    qemu = shutil.which("qemu-x86_64")
    assert qemu is not None, "install Debian's qemu-user (.ci/run does)"
    assert cpu_class() == "x86_64-fma", "this test needs a native x86-64 FMA machine"
    account = server.account("enterprise")
    env = {**os.environ, "CYBERIAN_API_BASE": server.url, "CYBERIAN_API_KEY": account.key}
    done = subprocess.run(
        [qemu, "-cpu", "Nehalem-v2", sys.executable, "-m", "cyberian.cli.prove",
         str(catalog_dir / "tiny.yaml"), str(write_texts(tmp_path, 4)), "--verify",
         "--receipt", str(tmp_path / "r.json")],
        capture_output=True, text=True, env=env, timeout=600, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "x86_64-nofma" in done.stderr
    assert "x86_64-fma" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "r.json").exists()
    assert server.scalar("SELECT COUNT(*) FROM jobs WHERE account_id = ?", (account.id,)) == 0
