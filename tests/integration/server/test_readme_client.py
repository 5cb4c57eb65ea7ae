"""The README's Python examples run as written, against a live server with the real model.

The code blocks under "## Python client" (our client) and "## Run the verifier
server" (the OpenAI SDK) are taken from README.md verbatim and run in fresh
interpreters from the checkout, configured the way the README tells a user
to: ``CYBERIAN_API_BASE`` and ``CYBERIAN_API_KEY``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from server_harness import running_server

from cyberian.spec import Spec

REPO = Path(__file__).resolve().parents[3]


def readme_block(heading: str) -> str:
    """The first ```python block after ``heading`` in README.md."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index(f"\n{heading}\n"):]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found, f"no python block under {heading!r}"
    return found.group(1)


def test_the_readme_python_examples_are_extracted() -> None:
    code = readme_block("## Python client")
    compile(code, "README.md", "exec")  # valid Python as printed
    assert "Client()" in code
    assert "asyncio.run(" in code
    openai_code = readme_block("## Run the verifier server")
    compile(openai_code, "README.md", "exec")
    assert "from openai import OpenAI" in openai_code


@pytest.mark.real_model
@pytest.mark.slow
def test_the_readme_python_client_example_runs(real_spec: Spec, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"  # the shipped FP32 spec only, reading the checkout's files
    catalog.mkdir()
    placed = real_spec.with_files(real_spec.model_path, real_spec.tokenizer_path)
    (catalog / "all-minilm-l6-v2.yaml").write_text(placed.to_yaml(), encoding="utf-8")
    script = tmp_path / "readme_example.py"
    script.write_text(readme_block("## Python client"), encoding="utf-8")
    openai_script = tmp_path / "readme_openai.py"
    openai_script.write_text(readme_block("## Run the verifier server"), encoding="utf-8")
    with running_server(tmp_path, catalog, args=("--workers", "1")) as live:
        account = live.account("enterprise")
        env = {k: v for k, v in os.environ.items() if not k.startswith("CYBERIAN_")}
        env.update(CYBERIAN_API_BASE=live.url, CYBERIAN_API_KEY=account.key)
        done = subprocess.run([sys.executable, str(script)], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        with_openai = subprocess.run([sys.executable, str(openai_script)], cwd=REPO, env=env,
                                     capture_output=True, text=True, timeout=300, check=False)
    assert with_openai.returncode == 0, with_openai.stdout + with_openai.stderr
    assert re.fullmatch(r"384 rcpt_[0-9a-f]+\n", with_openai.stdout), with_openai.stdout
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "(2, 384)"
    assert any(line.startswith("certified rcpt_") for line in lines), done.stdout
    assert re.fullmatch(r"rcpt_[0-9a-f]+", lines[-1]), done.stdout
    assert "not certified" not in done.stdout
    assert account.key not in done.stdout + done.stderr
