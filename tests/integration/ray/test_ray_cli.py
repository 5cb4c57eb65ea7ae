"""``cyberian-prove SPEC TEXTS --ray``: the files a local run writes, and --verify on top."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cyberian.bench.corpus import sentences
from cyberian.cli.prove import main as prove_main
from cyberian.receipts import verify_receipt
from cyberian.signing import load_signing_key

pytestmark = pytest.mark.usefixtures("ray_cluster")


def write_texts(folder: Path, count: int) -> Path:
    path = folder / "texts.txt"
    path.write_text("\n".join(sentences(count)) + "\n", encoding="utf-8")
    return path


def prove(spec: Path, texts: Path, out: Path, *extra: str) -> tuple[str, bytes, dict[str, Any]]:
    """Run cyberian-prove in this process: (stdout, rows file, commitments document)."""
    commitments = out.with_suffix(".json")
    result = CliRunner().invoke(prove_main, [str(spec), str(texts), "--out", str(out),
                                             "--commitments", str(commitments), *extra])
    assert result.exit_code == 0, result.output
    return result.stdout, out.read_bytes(), json.loads(commitments.read_text(encoding="utf-8"))


def test_prove_on_ray_writes_what_a_local_run_writes(tiny_spec_path: Path,
                                                     tmp_path: Path) -> None:
    texts = write_texts(tmp_path, 200)
    local_out, local_rows, local_doc = prove(tiny_spec_path, texts, tmp_path / "local.npy")
    ray_out, ray_rows, ray_doc = prove(tiny_spec_path, texts, tmp_path / "ray.npy",
                                       "--ray", "--ray-workers", "2", "--threads", "1")
    assert ray_rows == local_rows
    local_env, ray_env = local_doc.pop("environment"), ray_doc.pop("environment")
    assert ray_doc == local_doc  # chunks, output commitment, both roots, counts
    assert ray_env["cluster"]["workers"] == 2
    assert "cluster" not in local_env
    assert ray_env["cpu"]["class"] == local_env["cpu"]["class"]
    summary = [line for line in ray_out.splitlines() if not line.startswith(("wrote", "env"))]
    assert summary == [line for line in local_out.splitlines()
                       if not line.startswith(("wrote", "env"))]
    assert "; ray 2." in ray_out
    assert "2 workers on 1 host" in ray_out


def test_ray_options_are_checked_before_anything_runs(tiny_spec_path: Path,
                                                      tmp_path: Path) -> None:
    texts = write_texts(tmp_path, 8)
    alone = CliRunner().invoke(prove_main, [str(tiny_spec_path), str(texts),
                                            "--ray-workers", "2"])
    assert alone.exit_code == 2
    assert "--ray-workers goes with --ray" in alone.output
    crowded = CliRunner().invoke(prove_main, [str(tiny_spec_path), str(texts), "--ray",
                                              "--ray-workers", "5", "--threads", "1"])
    assert crowded.exit_code == 2
    assert crowded.output.strip().splitlines()[-1] == (
        "error: 5 workers of 1 thread need 5 CPUs; the Ray cluster has 2")
    assert "Traceback" not in crowded.output


def test_prove_on_ray_with_verify_gets_a_receipt(real_spec_path: Path, tmp_path: Path,
                                                 ray_cluster: Any) -> None:
    cache = tmp_path / "cache"
    env = {**os.environ, "CYBERIAN_CACHE_DIR": str(cache),
           "RAY_ADDRESS": ray_cluster.get_runtime_context().gcs_address}
    env.pop("CYBERIAN_API_BASE", None)
    receipt_path = tmp_path / "receipt.json"
    done = subprocess.run(
        [sys.executable, "-m", "cyberian.cli.prove", str(real_spec_path),
         str(write_texts(tmp_path, 40)), "--receipt", str(receipt_path), "--verify",
         "--ray", "--ray-workers", "2", "--threads", "1"],
        capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verified           yes: 40 texts" in done.stdout
    assert "ray worker 1 on" in done.stderr
    receipt = json.loads(receipt_path.read_text(encoding="utf-8"))
    keys = [load_signing_key(p).public_key
            for p in (cache / "embedded-verifier" / "keys").glob("*.pem")]
    assert verify_receipt(receipt, keys).kind == "vaas"
    assert receipt["input_count"] == 40


def test_without_ray_installed_the_error_says_how_to_get_it(tiny_spec_path: Path,
                                                            tmp_path: Path) -> None:
    blocked = ("import sys; sys.modules['ray'] = None; "
               "from cyberian.cli.prove import main; main()")
    done = subprocess.run([sys.executable, "-c", blocked, str(tiny_spec_path),
                           str(write_texts(tmp_path, 4)), "--ray"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: Ray is not installed: "
                                   "pip install 'cyberian[ray]'")


@pytest.mark.parametrize(("address", "error"), [
    ("127.0.0.1:1", "error: cannot reach the Ray cluster at 127.0.0.1:1: Connection refused"),
    ("ray://127.0.0.1:1", "error: cannot reach the Ray cluster at ray://127.0.0.1:1: "
                          "Connection refused"),
    ("no-port", "error: 'no-port' is not a Ray address (HOST:PORT, ray://HOST:PORT or auto)"),
])
def test_a_wrong_ray_address_is_one_line_at_once(tiny_spec_path: Path, tmp_path: Path,
                                                 address: str, error: str) -> None:
    # a process of its own: a driver already in a Ray session joins it and asks no address
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    done = subprocess.run([sys.executable, "-m", "cyberian.cli.prove", str(tiny_spec_path),
                           str(write_texts(tmp_path, 4)), f"--ray={address}"],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == error
    assert done.stdout == ""
