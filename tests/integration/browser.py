"""A real headless Chromium for the audit-page tests: load a URL, dump its DOM, take a screenshot.

Every run is ``chromium --headless --dump-dom`` (or ``--screenshot``) with a
fresh ``--user-data-dir``, a virtual-time budget (timers fast-forward; the
dump waits for pending work such as WebCrypto and ``fetch``) and a hard
wall-clock timeout. The browser runs in its own session and its whole
process group is killed afterwards, so nothing is left behind.

The binary is ``$CYBERIAN_CHROMIUM`` or ``chromium`` on the PATH (Debian's
package; ``tools/setup-chromium.sh`` installs it). Without one the tests
FAIL naming that script: a missing browser never passes for a tested page.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM_ENV = "CYBERIAN_CHROMIUM"
VIRTUAL_TIME_BUDGET_MS = 15_000
RUN_TIMEOUT = 60.0
MISSING = ("headless Chromium is needed for the audit-page tests and was not found: run "
           "tools/setup-chromium.sh as root (apt-get install -y --no-install-recommends "
           f"chromium), or set {CHROMIUM_ENV} to a Chromium / Chrome binary")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--no-first-run", "--no-default-browser-check", "--disable-extensions",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-breakpad", "--mute-audio", "--hide-scrollbars",
)


def chromium_binary() -> str:
    """The Chromium to run; the calling test fails (never skips) when there is none."""
    given = os.environ.get(CHROMIUM_ENV)
    if given:
        if not os.access(given, os.X_OK):
            pytest.fail(f"{CHROMIUM_ENV}={given} is not an executable")
        return given
    found = shutil.which("chromium")
    if found is None:
        pytest.fail(MISSING)
    return found


def run_chromium(url: str, *extra: str, timeout: float = RUN_TIMEOUT,
                 budget_ms: int = VIRTUAL_TIME_BUDGET_MS) -> str:
    """Run headless Chromium on ``url`` with ``extra`` flags; its stdout.

    Fails the test when the browser exits non-zero or outlives ``timeout``
    seconds; its process group is killed either way.
    """
    binary = chromium_binary()
    with tempfile.TemporaryDirectory(prefix="cyberian-chromium-",
                                     ignore_cleanup_errors=True) as profile:
        command = [binary, *FLAGS, f"--user-data-dir={profile}",
                   f"--virtual-time-budget={budget_ms}", *extra, url]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            process.communicate()
            pytest.fail(f"chromium did not finish within {timeout:.0f} s on {url[:200]}")
        finally:
            _kill_group(process)
    if process.returncode != 0:
        pytest.fail(f"chromium exited {process.returncode} on {url[:200]}:\n"
                    f"{err.decode(errors='replace')[-3000:]}")
    return out.decode("utf-8", errors="replace")


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(10)


def dump_dom(url: str, *extra: str, timeout: float = RUN_TIMEOUT,
             budget_ms: int = VIRTUAL_TIME_BUDGET_MS) -> str:
    """The page's DOM, serialised, once its work is done (or the time budget is spent)."""
    html = run_chromium(url, "--dump-dom", *extra, timeout=timeout, budget_ms=budget_ms)
    if "<html" not in html.lower():
        pytest.fail(f"chromium dumped no document for {url[:200]}: {html[:500]!r}")
    return html


def screenshot(url: str, out: Path, *, width: int = 1100, height: int = 1500,
               timeout: float = RUN_TIMEOUT) -> Path:
    """A PNG of the page at ``width`` × ``height`` CSS pixels, written to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    run_chromium(url, f"--screenshot={out}", f"--window-size={width},{height}",
                 timeout=timeout)
    if not out.is_file():
        pytest.fail(f"chromium wrote no screenshot to {out}")
    return out


# -- reading the audit page's DOM contract -------------------------------------------------


@dataclass
class AuditView:
    """What the audit page shows: state, verdict and one ``ok`` per check, in page order."""

    state: str | None = None
    verdict: str | None = None
    checks: dict[str, bool | None] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    raw_ok: dict[str, str | None] = field(default_factory=dict)

    @property
    def failed(self) -> set[str]:
        """The checks the page marks as not ok (``data-ok`` other than ``"true"``)."""
        return {name for name, ok in self.checks.items() if ok is not True}

    def summary(self) -> str:
        """A one-line account for assertion messages."""
        return (f"state={self.state!r} verdict={(self.verdict or '')[:120]!r} "
                f"failed={sorted(self.failed)} order={self.order}")


class _AuditParser(HTMLParser):
    """Collects ``body[data-state]``, ``#verdict`` text and ``ol#checks > li[data-check]``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.view = AuditView()
        self._verdict: list[str] | None = None
        self._verdict_tag: str | None = None
        self._verdict_depth = 0
        self._checks_depth = 0  # > 0 while inside <ol id="checks">
        self._item: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "body":
            self.view.state = attributes.get("data-state")
        if tag == "ol" and (self._checks_depth or attributes.get("id") == "checks"):
            self._checks_depth += 1
        if tag == "li" and self._checks_depth and "data-check" in attributes:
            name = attributes["data-check"] or ""
            raw = attributes.get("data-ok")
            self.view.order.append(name)
            self.view.raw_ok[name] = raw
            self.view.checks[name] = {"true": True, "false": False}.get(raw or "")
            self._item = (name, [])
        if self._verdict is not None and tag == self._verdict_tag:
            self._verdict_depth += 1
        elif self._verdict is None and attributes.get("id") == "verdict":
            self._verdict, self._verdict_tag, self._verdict_depth = [], tag, 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "ol" and self._checks_depth:
            self._checks_depth -= 1
        if tag == "li" and self._item is not None:
            name, text = self._item
            self.view.details[name] = " ".join("".join(text).split())
            self._item = None
        if self._verdict is not None and tag == self._verdict_tag:
            self._verdict_depth -= 1
            if self._verdict_depth == 0:
                self.view.verdict = " ".join("".join(self._verdict).split())
                self._verdict_tag = None

    def handle_data(self, data: str) -> None:
        if self._verdict is not None and self._verdict_tag is not None:
            self._verdict.append(data)
        if self._item is not None:
            self._item[1].append(data)


def parse_audit_dom(html: str) -> AuditView:
    """The audit page's state, verdict and checks from a serialised DOM."""
    parser = _AuditParser()
    parser.feed(html)
    parser.close()
    view = parser.view
    if view.verdict is None and parser._verdict is not None:  # an unclosed verdict element
        view.verdict = " ".join("".join(parser._verdict).split())
    return view


def load_audit_page(url: str, *, timeout: float = RUN_TIMEOUT) -> AuditView:
    """Open ``url`` in headless Chromium and read the audit page's verdict and checks."""
    return parse_audit_dom(dump_dom(url, timeout=timeout))
