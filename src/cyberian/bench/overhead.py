"""``cyberian bench verify-overhead``: what ``--verify`` costs on top of a plain prove.

Runs the real commands on the same texts, alternately: ``cyberian-prove SPEC
TEXTS`` and ``cyberian-prove SPEC TEXTS --verify`` with the embedded verifier
(a fresh cache dir, so the first ``--verify`` also pays for setting up its
data dir). Each keeps its fastest run; the split of the ``--verify`` run
(local prove, verifier start -- in parallel with the prove --, re-execution and
receipt, offline check) comes from the command's own ``timing`` line.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..client._constants import API_KEY_ENV, BASE_URL_ENV

__all__ = ["OverheadReport", "render_overhead", "run_overhead"]

_TIMING = re.compile(r"timing\s+prove ([\d.]+) s, verifier start ([\d.]+) s .*?"
                     r"re-execution \+ receipt ([\d.]+) s, offline check ([\d.]+) s")


@dataclass
class OverheadReport:
    """Wall times of plain and verified proving, and where the verified time went."""

    texts: int
    plain_seconds: float = float("inf")
    verify_seconds: float = float("inf")
    ratio: float = 0.0
    split: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _prove_command() -> list[str]:
    sibling = Path(sys.executable).with_name("cyberian-prove")
    return [str(sibling)] if sibling.is_file() else [sys.executable, "-m", "cyberian.cli.prove"]


def run_overhead(spec_path: Path, texts: Sequence[str], *, repeats: int = 2,
                 log: Callable[[str], None] = lambda _: None) -> OverheadReport:
    """Time plain and ``--verify`` runs of ``cyberian-prove`` on ``texts``."""
    report = OverheadReport(len(texts))
    with tempfile.TemporaryDirectory(prefix="cyberian-bench-overhead-") as tmp:
        folder = Path(tmp)
        texts_path = folder / "texts.jsonl"
        texts_path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts),
                              encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k not in {BASE_URL_ENV, API_KEY_ENV}}
        env["CYBERIAN_CACHE_DIR"] = str(folder / "cache")
        base = [*_prove_command(), str(spec_path), str(texts_path), "-q"]
        for round_number in range(repeats):
            log(f"round {round_number + 1} of {repeats}: plain, then --verify")
            start = time.perf_counter()
            subprocess.run(base, check=True, capture_output=True, env=env)
            report.plain_seconds = min(report.plain_seconds, time.perf_counter() - start)
            start = time.perf_counter()
            done = subprocess.run([*base, "--verify", "--receipt", str(folder / "r.json")],
                                  check=True, capture_output=True, text=True, env=env)
            seconds = time.perf_counter() - start
            if seconds < report.verify_seconds:
                report.verify_seconds = seconds
                match = _TIMING.search(done.stdout)
                if match:
                    prove, start_up, verify, check = map(float, match.groups())
                    report.split = {"local_prove": prove, "verifier_start": start_up,
                                    "re_execution_and_receipt": verify, "offline_check": check,
                                    "rest": seconds - prove - verify - check}
    report.ratio = report.verify_seconds / report.plain_seconds
    return report


def render_overhead(report: OverheadReport) -> str:
    """The report as a short markdown summary."""
    split = report.split
    lines = [
        f"--verify overhead on {report.texts} texts (whole commands, fastest of the runs):",
        "",
        f"- plain `cyberian-prove`: {report.plain_seconds:.1f} s",
        f"- `cyberian-prove --verify` (embedded verifier): {report.verify_seconds:.1f} s: "
        f"**{report.ratio:.2f}x**",
    ]
    if split:
        lines.append(
            f"- split: local prove {split['local_prove']:.1f} s; verifier start "
            f"{split['verifier_start']:.1f} s, in parallel with the prove; re-execution and "
            f"receipt {split['re_execution_and_receipt']:.1f} s; offline check "
            f"{split['offline_check']:.3f} s; start-up, reading and the rest "
            f"{split['rest']:.1f} s")
    return "\n".join(lines) + "\n"
