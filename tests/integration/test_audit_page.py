"""The browser receipt-audit page in a real headless Chromium, and ``cyberian receipt page``.

- the page written by ``cyberian receipt page`` and opened from ``file://``
  with a real receipt and its keys in the URL fragment says VALID, every
  check ok, in Python's order; a screenshot of it is kept as an artefact;
- a DIFFERENTIAL: every tamper case of ``tests/unit/test_receipts_tamper.py``
  (``tamper_cases.py``) and 40 seeded random single-field tampers, each
  opened through the page's own UI, plus every case and the byte-flip family
  through ``window.cyberianVerify``: the set of failed checks must be the
  one :func:`cyberian.receipts.check_receipt` reports, and the verdict
  INVALID exactly when that set is not empty;
- the command itself: the page written verbatim with the user's mode, and
  the printed URL's fragment decodes back to the inputs.

The page served by the server (``GET /audit``) is tested in
``server/test_audit_server.py``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import tamper_cases as tc
from audit_batch import BatchCase, BatchOutcome, run_batch
from browser import (
    CHROMIUM_ENV,
    AuditView,
    chromium_binary,
    load_audit_page,
    parse_audit_dom,
    screenshot,
)
from cli_helpers import one_error_line
from click.testing import CliRunner, Result
from png_check import SIGNATURE, png_stats
from receipt_mutations import random_tampers

from cyberian.cli import main
from cyberian.cli.prove import main as prove_main
from cyberian.receipts import CHECKS, check_receipt, to_dsse
from cyberian.receipts.audit import audit_page_html
from cyberian.signing import (
    generate_signing_key,
    keys_document,
    load_trusted_keys,
    parse_keys_document,
)

SEED = 20251202
RANDOM_TAMPERS = {"original": 30, "original[local]": 10}
"""Seeded random single-field tampers per starting receipt (40 in all)."""
SCREEN = (1100, 1500)
ARTIFACTS_ENV = "CYBERIAN_ARTIFACTS"
REPORT_SHOWN = 40
"""Differing cases shown in the assertion message (all of them are in the written report)."""


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Issued:
    """A real ``local`` receipt from ``cyberian-prove`` and the files that trust its issuer."""

    receipt: Path
    public_pem: Path
    keys: Path


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory, tiny_spec_path: Path) -> Issued:
    folder = tmp_path_factory.mktemp("issued")
    key = folder / "issuer.pem"
    made = _run("keys", "generate", "--out", str(key))
    assert made.exit_code == 0, made.output
    texts = folder / "texts.txt"
    texts.write_text("".join(f"audit page text {i}\n" for i in range(9)), encoding="utf-8")
    receipt = folder / "receipt.json"
    proved = CliRunner().invoke(prove_main, [str(tiny_spec_path), str(texts), "--receipt",
                                             str(receipt), "--signing-key", str(key), "-q"])
    assert proved.exit_code == 0, proved.output
    public_pem = folder / "issuer.pem.pub"
    keys = folder / "keys.json"
    made = _run("receipt", "verify", str(receipt), "--key", str(public_pem))
    assert made.exit_code == 0, made.output  # the starting point is valid for Python
    trusted = load_trusted_keys(public_pem)
    keys.write_text(json.dumps(keys_document(trusted.values()), indent=2), encoding="utf-8")
    return Issued(receipt, public_pem, keys)


def _page_url(folder: Path, receipt: Path, keys: Path) -> str:
    """``cyberian receipt page`` into ``folder``; the URL it prints."""
    result = _run("receipt", "page", str(folder / "audit.html"), "--receipt", str(receipt),
                  "--keys", str(keys))
    assert result.exit_code == 0, result.output
    url = result.output.splitlines()[-1]
    assert url.startswith("file://"), result.output
    return url


def _assert_valid(view: AuditView) -> None:
    assert view.state == "done", view.summary()
    assert view.order == list(CHECKS), view.summary()
    assert all(raw == "true" for raw in view.raw_ok.values()), view.summary()
    assert (view.verdict or "").startswith("VALID"), view.summary()


# -- the command -------------------------------------------------------------------------------


@pytest.fixture
def umask_027() -> Iterator[None]:
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def test_page_command_writes_the_page_verbatim_with_the_users_mode(
        tmp_path: Path, umask_027: None) -> None:
    out = tmp_path / "sub" / "audit.html"
    result = _run("receipt", "page", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == audit_page_html().encode("utf-8")
    assert stat.S_IMODE(out.stat().st_mode) == 0o640  # 0666 minus the umask 027
    assert "file://" not in result.output  # no inputs, no URL
    assert [p.name for p in out.parent.iterdir()] == ["audit.html"]  # nothing staged is left
    again = _run("receipt", "page", str(out))  # replaces the file whole
    assert again.exit_code == 0, again.output
    assert out.read_bytes() == audit_page_html().encode("utf-8")


def test_page_command_prints_a_url_whose_fragment_is_the_inputs(
        tmp_path: Path, issued: Issued) -> None:
    url = _page_url(tmp_path, issued.receipt, issued.keys)
    parts = urlsplit(url)
    assert Path(parts.path) == (tmp_path / "audit.html").resolve()
    assert not parts.query
    carried = parse_qs(parts.fragment, strict_parsing=True)
    assert set(carried) == {"receipt", "keys"}
    assert _unb64url(carried["receipt"][0]) == issued.receipt.read_bytes()  # verbatim
    assert _unb64url(carried["keys"][0]) == issued.keys.read_bytes()
    assert "=" not in carried["receipt"][0] + carried["keys"][0]  # unpadded base64url
    assert audit_page_html() == (tmp_path / "audit.html").read_text(encoding="utf-8")


def test_page_command_makes_a_keys_document_of_a_pem_key(tmp_path: Path, issued: Issued) -> None:
    url = _page_url(tmp_path, issued.receipt, issued.public_pem)
    keys = _unb64url(parse_qs(urlsplit(url).fragment)["keys"][0])
    assert json.loads(keys) == json.loads(issued.keys.read_bytes())
    only_receipt = _run("receipt", "page", str(tmp_path / "a.html"), "--receipt",
                        str(issued.receipt))
    assert only_receipt.exit_code == 0, only_receipt.output
    assert set(parse_qs(urlsplit(only_receipt.output.splitlines()[-1]).fragment)) == {"receipt"}


def test_page_command_opens_a_dsse_envelope_to_its_receipt(
        tmp_path: Path, issued: Issued) -> None:
    receipt = json.loads(issued.receipt.read_bytes())
    envelope = tmp_path / "receipt.dsse.json"
    envelope.write_text(json.dumps(to_dsse(receipt)), encoding="utf-8")
    url = _page_url(tmp_path, envelope, issued.keys)
    carried = _unb64url(parse_qs(urlsplit(url).fragment)["receipt"][0])
    assert json.loads(carried) == receipt


@pytest.mark.parametrize(("name", "content", "option"), [
    ("missing.json", None, "--receipt"),
    ("text.json", "not json", "--receipt"),
    ("list.json", "[1, 2]", "--receipt"),
    ("missing.pub", None, "--keys"),
    ("bad-keys.json", '{"keys": [{"alg": "rsa"}]}', "--keys"),
    ("garbage.pub", "not a key", "--keys"),
])
def test_page_command_refuses_unreadable_inputs(tmp_path: Path, issued: Issued, name: str,
                                                content: str | None, option: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    other = ("--keys", str(issued.keys)) if option == "--receipt" else (
        "--receipt", str(issued.receipt))
    out = tmp_path / "audit.html"
    result = _run("receipt", "page", str(out), option, str(path), *other)
    assert result.exit_code == 2, result.output
    assert name in one_error_line(result) or "keys" in result.output
    assert not out.exists()


# -- the harness itself -------------------------------------------------------------------------


def test_harness_reads_the_dom_contract() -> None:
    view = parse_audit_dom(
        '<body data-state="done"><p id="verdict"><b>INVALID</b>: 1 check &amp; more</p>'
        '<ol id="checks"><li data-check="format" data-ok="true">ok <i>format</i></li>'
        '<li data-check="version" data-ok="false">FAIL</li><li data-check="x" data-ok="yes">'
        '</li></ol><ul><li data-check="outside" data-ok="true"></li></ul></body>')
    assert view.state == "done"
    assert view.verdict == "INVALID: 1 check & more"
    assert view.order == ["format", "version", "x"]  # only the items of <ol id="checks">
    assert view.checks == {"format": True, "version": False, "x": None}
    assert view.failed == {"version", "x"}
    assert view.details["format"] == "ok format"


def test_a_missing_browser_fails_the_test_rather_than_skipping(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CHROMIUM_ENV, str(tmp_path / "no-chromium"))
    with pytest.raises(pytest.fail.Exception, match="not an executable"):
        chromium_binary()
    monkeypatch.delenv(CHROMIUM_ENV)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match=r"tools/setup-chromium\.sh"):
        chromium_binary()


# -- the page in the browser --------------------------------------------------------------------


def test_page_from_a_file_with_the_inputs_in_the_fragment_is_valid(
        tmp_path: Path, issued: Issued) -> None:
    view = load_audit_page(_page_url(tmp_path, issued.receipt, issued.keys))
    _assert_valid(view)
    python = check_receipt(issued.receipt.read_bytes(),
                           parse_keys_document(issued.keys.read_bytes()))
    assert all(result.ok for result in python.values())


def test_screenshot_of_a_valid_receipt(tmp_path: Path, issued: Issued) -> None:
    url = _page_url(tmp_path, issued.receipt, issued.keys)
    shot = screenshot(url, tmp_path / "audit-page-valid.png", width=SCREEN[0], height=SCREEN[1])
    _keep(shot)
    assert shot.read_bytes().startswith(SIGNATURE)
    stats = png_stats(shot)
    assert (stats.width, stats.height) == SCREEN
    assert stats.colours >= 16, stats  # text, not a blank page
    assert stats.foreground_share >= 0.003, stats


# -- the differential ---------------------------------------------------------------------------


def _expected(case: BatchCase) -> set[str]:
    results = check_receipt(case.receipt, parse_keys_document(case.keys))
    assert list(results) == list(CHECKS)
    return {name for name, result in results.items() if not result.ok}


def _cases() -> list[BatchCase]:
    keys = tc.TamperKeys(generate_signing_key(), generate_signing_key(), generate_signing_key())
    named = tc.tamper_cases(keys)
    cases = [BatchCase(c.name, c.receipt_bytes(), c.keys_bytes()) for c in named]
    starts = tc.case_names(named)
    for start, count in RANDOM_TAMPERS.items():
        base = starts[start]
        assert isinstance(base.receipt, dict)
        for number, mutation in enumerate(random_tampers(base.receipt, count, SEED)):
            cases.append(BatchCase(f"random[{start} #{number}] {mutation.description}",
                                   mutation.data, base.keys_bytes()))
    cases += [BatchCase(c.name, c.receipt_bytes(), c.keys_bytes(), ui=False)
              for c in tc.byte_flip_cases(keys.key)]
    return cases


def _mismatches(case: BatchCase, outcome: BatchOutcome, expected: set[str]) -> list[str]:
    found = []
    if outcome.error:
        found.append(f"browser error: {outcome.error[:300]}")
    if case.ui:
        view = outcome.view
        if view is None:
            found.append("page: no view")
        else:
            if view.state != "done" or view.order != list(CHECKS):
                found.append(f"page: {view.summary()}")
            if any(raw not in ("true", "false") for raw in view.raw_ok.values()):
                found.append(f"page: data-ok values {view.raw_ok}")
            if view.failed != expected:
                found.append(f"page failed {sorted(view.failed)}; details: "
                             + "; ".join(f"{n}: {view.details.get(n, '')[:120]}"
                                         for n in sorted(view.failed ^ expected)))
            verdict = view.verdict or ""
            if not verdict.startswith("INVALID" if expected else "VALID"):
                found.append(f"page verdict {verdict[:80]!r}")
    found += _answer_mismatches("cyberianVerify", outcome.function, expected)
    if case.ui and outcome.pure_js is not None:
        found += _answer_mismatches("cyberianVerify (pureJs)", outcome.pure_js, expected)
    return found


def _answer_mismatches(label: str, answer: list[dict[str, Any]] | None,
                       expected: set[str]) -> list[str]:
    if answer is None:
        return [f"{label}: no answer"]
    found = []
    names = [entry.get("name") for entry in answer]
    failed = {entry.get("name") for entry in answer if entry.get("ok") is not True}
    if names != list(CHECKS):
        found.append(f"{label} names {names}")
    if failed != expected:
        details = {entry.get("name"): str(entry.get("detail"))[:120] for entry in answer}
        found.append(f"{label} failed {sorted(failed, key=str)}; details: "
                     + "; ".join(f"{n}: {details.get(n, '')}"
                                 for n in sorted(failed ^ expected, key=str)))
    return found


def _keep(path: Path) -> None:
    """Copy ``path`` into ``$CYBERIAN_ARTIFACTS`` when that is set."""
    artifacts = os.environ.get(ARTIFACTS_ENV)
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(artifacts) / path.name)


def test_browser_and_python_agree_on_every_tamper_case(tmp_path: Path) -> None:
    cases = _cases()
    assert sum(c.name.startswith("random[") for c in cases) == sum(RANDOM_TAMPERS.values())
    outcomes = run_batch(tmp_path / "batch", cases)
    report = []
    for case in cases:
        expected = _expected(case)
        problems = _mismatches(case, outcomes[case.name], expected)
        if problems:
            report.append(f"- {case.name}: python failed {sorted(expected)}\n    "
                          + "\n    ".join(problems))
    ui = sum(c.ui for c in cases)
    pure = sum(outcomes[c.name].pure_js is not None for c in cases)
    summary = (f"{len(report)} of {len(cases)} cases differ ({ui} through the page, all "
               f"through cyberianVerify, {pure} also with its pure-JS fallback)")
    written = tmp_path / "audit-page-differential.txt"
    written.write_text(summary + "\n" + "\n".join(report) + "\n", encoding="utf-8")
    _keep(written)
    if report:
        hidden = len(report) - REPORT_SHOWN
        more = f"\n… {hidden} more in {written}" if hidden > 0 else ""
        pytest.fail(f"{summary}:\n" + "\n".join(report[:REPORT_SHOWN]) + more)
