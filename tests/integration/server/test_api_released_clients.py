"""The released cyberian-client 0.2.6 and 0.4.2, unchanged, against the live server.

Each runs in its own virtualenv (``pip install cyberian-client==X`` from
PyPI), cached under ``~/.cache/cyberian/test-venvs/<version>`` so reruns are
fast.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from server_harness import LiveServer

from cyberian._paths import cache_dir
from cyberian.models.tiny import build_tiny_model
from cyberian.prover import Prover
from cyberian.receipts import verify_receipt
from cyberian.signing import parse_keys_document
from cyberian.spec import Spec

SCRIPT = Path(__file__).parent / "released" / "exercise_client.py"
TEXTS = ["the model is a proof", "a text to embed", "and another one", "four", "five"]


def client_venv(version: str) -> Path:
    """A virtualenv with cyberian-client==version (built once, then reused)."""
    target = cache_dir("test-venvs") / f"cyberian-client-{version}"
    python = target / "bin" / "python"
    if python.is_file():
        return python
    staging = Path(tempfile.mkdtemp(prefix=f".venv-{version}-", dir=target.parent))
    try:
        subprocess.run([sys.executable, "-m", "venv", str(staging)], check=True, timeout=300)
        subprocess.run([str(staging / "bin" / "python"), "-m", "pip", "install", "-q",
                        "--disable-pip-version-check", f"cyberian-client=={version}"],
                       check=True, timeout=600)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    # only bin/python is ever run, and it finds its prefix from its own location, so the
    # renamed venv works although its scripts' shebangs name the staging folder
    return python


def run_released(version: str, server: LiveServer, key: str, model_file: Path) -> dict[str, Any]:
    python = client_venv(version)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CYBERIAN_", "PYTHON"))}
    env.update(CYBERIAN_API_BASE=server.url, CYBERIAN_API_KEY=key)
    done = subprocess.run([str(python), str(SCRIPT), str(model_file)], capture_output=True,
                          text=True, env=env, timeout=300, check=False, cwd=model_file.parent)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize(("version", "tier"), [("0.2.6", "trial"), ("0.4.2", "enterprise")])
def test_released_client(version: str, tier: str, server: LiveServer, tiny: Spec,
                         tmp_path: Path) -> None:
    account = server.account(tier)
    model_file = build_tiny_model(tmp_path, seed=5).model_path
    out = run_released(version, server, account.key, model_file)
    expected = Prover(tiny).prove(TEXTS)
    assert out["health"]["ok"] is True
    assert out["job"]["status"] == "SETTLED"
    assert out["valid"] is True
    assert out["shape"] == [5, 32]
    assert out["embeddings_sha256"] == expected.output_commitment
    keys = parse_keys_document(server.client().get("/keys").json())
    verify_receipt(out["receipt"], keys, spec=tiny)
    assert len(out["results"]["chunks"]) == 2
    assert out["models"][:2] == ["tiny", "tiny-all"]
    assert out["vaas"]["kind"] == "vaas"
    verify_receipt(out["vaas"], keys)
    assert "block 0" in out["vaas_failure"][0]
    assert out["unknown_model"] == [400, "invalid_request"]
    assert out["too_large"] == [413, "request_too_large"]
    assert out["account"]["account_id"] == account.id
    assert out["rotated_account"] == account.id
    assert out["revoked"] == 401
    if version == "0.4.2":
        byom = out["byom"]
        uploaded = byom["uploaded"]
        assert uploaded["hash"] == hashlib.sha256(model_file.read_bytes()).hexdigest()
        assert byom["again"] == uploaded["model_id"]
        assert byom["listed"] == [uploaded["model_id"]]
        assert byom["job_status"] == "SETTLED"
        assert byom["job_embeddings_sha256"] != expected.output_commitment  # other weights
        assert byom["blocks_kind"] == "vaas"
        assert byom["deleted"] is None
        assert byom["after_delete"] == []
    else:
        assert "byom" not in out
