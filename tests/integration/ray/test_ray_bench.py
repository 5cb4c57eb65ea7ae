"""``cyberian bench ray``: 1 and 2 Ray workers beside the local prover, same commitments."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_ray_bench_reports_every_configuration(tiny_spec_path: Path, tmp_path: Path) -> None:
    report_path = tmp_path / "ray.json"
    done = subprocess.run(
        [sys.executable, "-m", "cyberian.cli", "bench", "ray", str(tiny_spec_path), "--quick",
         "--json", str(report_path)],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(report_path.read_text(encoding="utf-8"))
    configs = {config["name"]: config for config in report["configs"]}
    assert set(configs) == {"local prover", "ray, 1 worker", "ray, 2 workers"}
    assert (configs["ray, 1 worker"]["workers"], configs["ray, 1 worker"]["threads"]) == (1, 2)
    assert (configs["ray, 2 workers"]["workers"], configs["ray, 2 workers"]["threads"]) == (2, 1)
    assert all(config["same_commitments"] for config in configs.values())
    assert all(config["texts_per_second"] > 0 for config in configs.values())
    assert report["texts"] == 64
    assert "| ray, 2 workers | 2 x 1 |" in done.stdout
    assert f"class {report['cpu']['class']}" in done.stdout
