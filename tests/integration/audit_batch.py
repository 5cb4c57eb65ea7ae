"""Many receipts through the audit page in ONE Chromium launch.

:func:`run_batch` writes the page (verbatim) and a runner page beside it and
opens the runner from ``file://`` (with ``--allow-file-access-from-files``,
so the runner may read its frames). The runner

1. loads the audit page once per ``ui`` case in an iframe, the inputs in the
   fragment (``#receipt=…&keys=…``, as a user would open it), waits for
   ``body[data-state="done"]`` and keeps the frame's ``<body>`` (scripts and
   styles dropped) for :func:`browser.parse_audit_dom`;
2. calls ``window.cyberianVerify(receiptText, keysText)`` of one more frame
   on EVERY case and keeps its ``[{name, ok, detail}]``;
3. when the page offers ``cyberianVerify.options.pureJs`` (its pure-JS
   SHA-256 and Ed25519, for browsers without WebCrypto's), calls it again
   on every ``ui`` case with that fallback forced;

then writes everything as JSON into ``<pre id="results">`` and sets
``body[data-batch]`` to ``done`` (or ``error``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from browser import AuditView, dump_dom, parse_audit_dom

from cyberian.receipts.audit import audit_page_html, fragment

WINDOW = 16
"""Frames loaded at once."""
POLL_MS = 20
CASE_POLLS = 500
"""Polls (of POLL_MS virtual ms: 10 s) one frame may take before it counts as hung."""
SPARE_MS = 120_000
"""Virtual time for the ``cyberianVerify`` pass and loading, beyond every frame's polls.

Idle waits fast-forward, so virtual time is not wall time: even a page that
never finishes costs seconds, and the wall-clock timeout stays the real bound.
"""

_RUNNER = """<!doctype html>
<html><head><meta charset="utf-8"><title>cyberian audit-page batch</title></head>
<body data-batch="running">
<pre id="results"></pre>
<script type="application/json" id="cases">@CASES@</script>
<script>
"use strict";
(async () => {
  const PAGE = "audit.html", WINDOW = @WINDOW@, POLL_MS = @POLL_MS@, CASE_POLLS = @CASE_POLLS@;
  const cases = JSON.parse(document.getElementById("cases").textContent);
  const results = {};
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const publish = (status) => {
    document.getElementById("results").textContent = JSON.stringify(results);
    document.body.dataset.batch = status;
  };
  const load = (src) => {
    const frame = document.createElement("iframe");
    frame.style.width = "900px";
    frame.style.height = "700px";
    frame.src = src;
    document.body.appendChild(frame);
    return frame;
  };
  const stateOf = (frame) => {
    const doc = frame.contentDocument;
    return doc && doc.body ? doc.body.dataset.state : undefined;
  };
  const body = (frame) => {
    const copy = frame.contentDocument.body.cloneNode(true);
    copy.querySelectorAll("script, style, template, textarea").forEach((node) => node.remove());
    return copy.outerHTML;
  };
  try {
    const ui = cases.filter((c) => c.ui);
    for (let start = 0; start < ui.length; start += WINDOW) {
      const group = ui.slice(start, start + WINDOW).map((c) => [c, load(PAGE + "#" + c.fragment)]);
      for (const [c, frame] of group) {
        let polls = 0;
        while (stateOf(frame) !== "done" && polls++ < CASE_POLLS) await sleep(POLL_MS);
        results[c.name] = stateOf(frame) === "done" ? {html: body(frame)}
          : {error: "the page never reached data-state=done (state " + stateOf(frame) + ")",
             html: frame.contentDocument && frame.contentDocument.body ? body(frame) : null};
        frame.remove();
      }
      publish("running");
    }
    const host = load(PAGE);
    let polls = 0;
    while (!(host.contentWindow && typeof host.contentWindow.cyberianVerify === "function")
           && polls++ < CASE_POLLS) await sleep(POLL_MS);
    if (typeof host.contentWindow.cyberianVerify !== "function") {
      throw new Error("the page defines no window.cyberianVerify");
    }
    for (const c of cases) {
      const entry = results[c.name] || (results[c.name] = {});
      try {
        entry.function = JSON.parse(JSON.stringify(
          await host.contentWindow.cyberianVerify(c.receipt, c.keys)));
      } catch (error) {
        entry.function_error = String((error && error.stack) || error);
      }
    }
    const options = host.contentWindow.cyberianVerify.options;
    if (options && typeof options === "object" && "pureJs" in options) {
      options.pureJs = true;  // the page's own fallback for browsers without WebCrypto Ed25519
      for (const c of ui) {
        const entry = results[c.name];
        try {
          entry.pure_js = JSON.parse(JSON.stringify(
            await host.contentWindow.cyberianVerify(c.receipt, c.keys)));
        } catch (error) {
          entry.pure_js_error = String((error && error.stack) || error);
        }
      }
      options.pureJs = false;
    }
    publish("done");
  } catch (error) {
    results.__error__ = String((error && error.stack) || error);
    publish("error");
  }
})();
</script>
</body></html>
"""


@dataclass(frozen=True)
class BatchCase:
    """One receipt and keys document; ``ui``: also open the page with them in the fragment."""

    name: str
    receipt: bytes
    keys: bytes
    ui: bool = True


@dataclass
class BatchOutcome:
    """What the browser made of one case: the page's view and ``cyberianVerify``'s answer.

    ``error`` says what went wrong for this case: the page never finished,
    ``cyberianVerify`` threw, or the batch stopped before reaching it.
    """

    name: str
    view: AuditView | None
    function: list[dict[str, Any]] | None
    error: str | None
    pure_js: list[dict[str, Any]] | None = None


class _Results(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.state: str | None = None
        self.text: list[str] | None = None
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "body":
            self.state = attributes.get("data-batch")
        if tag == "pre" and attributes.get("id") == "results":
            self._inside, self.text = True, []

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre":
            self._inside = False

    def handle_data(self, data: str) -> None:
        if self._inside and self.text is not None:
            self.text.append(data)


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element (no ``</script>``, no ``<!--``)."""
    return json.dumps(value).replace("<", "\\u003c")


def write_runner(folder: Path, cases: list[BatchCase]) -> Path:
    """Write ``audit.html`` (the page, verbatim) and ``runner.html`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "audit.html").write_text(audit_page_html(), encoding="utf-8")
    data = [{"name": c.name, "ui": c.ui, "fragment": fragment(c.receipt, c.keys),
             "receipt": c.receipt.decode("utf-8", errors="replace"),
             "keys": c.keys.decode("utf-8", errors="replace")} for c in cases]
    runner = (_RUNNER.replace("@CASES@", _script_json(data)).replace("@WINDOW@", str(WINDOW))
              .replace("@POLL_MS@", str(POLL_MS)).replace("@CASE_POLLS@", str(CASE_POLLS)))
    path = folder / "runner.html"
    path.write_text(runner, encoding="utf-8")
    return path


def run_batch(folder: Path, cases: list[BatchCase], *, timeout: float = 150) -> dict[
        str, BatchOutcome]:
    """Every case through the page in one headless Chromium; the outcome of each, by name.

    A batch cut short (the page threw outside a case, or the time budget ran
    out) still reports every case it reached; the others carry the reason.
    """
    runner = write_runner(folder, cases)
    budget = sum(c.ui for c in cases) * CASE_POLLS * POLL_MS + SPARE_MS
    html = dump_dom(runner.as_uri(), "--allow-file-access-from-files", timeout=timeout,
                    budget_ms=budget)
    parser = _Results()
    parser.feed(html)
    if parser.text is None:
        pytest.fail("the batch runner page has no results element")
    results: dict[str, Any] = json.loads("".join(parser.text) or "{}")
    stopped = None if parser.state == "done" else (
        f"the batch stopped before this case (data-batch={parser.state!r}: "
        f"{results.get('__error__', 'virtual time budget spent')})")
    outcomes = {}
    for case in cases:
        entry = results.get(case.name, {})
        errors = [f"{key}: {entry[key]}" for key in ("error", "function_error", "pure_js_error")
                  if entry.get(key)]
        if stopped and "function" not in entry and "function_error" not in entry:
            errors.append(stopped)
        html_body = entry.get("html")
        outcomes[case.name] = BatchOutcome(
            case.name, parse_audit_dom(html_body) if html_body else None,
            entry.get("function"), "; ".join(errors) or None, entry.get("pure_js"))
    return outcomes
