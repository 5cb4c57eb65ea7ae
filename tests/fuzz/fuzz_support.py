"""What the fuzz tests share: the bounds, a /health prober, raw JSON requests.

The bounds are the properties' numbers (docs/FUZZING.md):

* ``REQUEST_BOUND``: every hostile request is answered within 5 s (a 4xx for
  a 2 MB body must not take the 13 s of issue 11 item 1);
* ``HEALTH_BOUND``: while it runs, another client's ``GET /health`` on its own
  connection is answered within 2 s;
* an error never amplifies its input: a response body (or a ``SpecError``
  message) is at most ``AMPLIFICATION_SLACK`` bytes longer than the request
  (the alias bomb of item 2 answered 1.3 KB with 312 MB).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

REQUEST_BOUND = 5.0
HEALTH_BOUND = 2.0
AMPLIFICATION_SLACK = 64 * 1024

PROBE_INTERVAL = 0.05
PROBE_TIMEOUT = 5.0
PROBE_MAX_SECONDS = 240.0
PROBE_MAX_COUNT = 5000


def json_bytes(body: Any) -> bytes:
    """``body`` as JSON bytes: lone surrogates become ``\\ud800`` escapes, NaN stays ``NaN``."""
    return json.dumps(body, ensure_ascii=True, allow_nan=True).encode("ascii")


@dataclass
class Answer:
    """One request's outcome: the status (``None`` when none came), its time and size."""

    status: int | None
    seconds: float
    body: bytes
    request_size: int
    error: str = ""

    def describe(self) -> str:
        head = self.body[:300].decode("utf-8", "replace")
        status = self.status if self.status is not None else f"no answer ({self.error})"
        return (f"{status} after {self.seconds:.2f} s, {len(self.body)} bytes "
                f"for a {self.request_size}-byte request: {head!r}")


def post_raw(client: httpx.Client, path: str, content: bytes, *,
             headers: dict[str, str] | None = None,
             timeout: float = 4 * REQUEST_BOUND) -> Answer:
    """POST ``content`` as JSON; a timeout or a dropped connection is an answer too."""
    start = time.monotonic()
    try:
        response = client.post(path, content=content, timeout=timeout,
                               headers={"content-type": "application/json", **(headers or {})})
    except httpx.HTTPError as exc:
        return Answer(None, time.monotonic() - start, b"", len(content), type(exc).__name__)
    return Answer(response.status_code, time.monotonic() - start, response.content,
                  len(content))


def post_json(client: httpx.Client, path: str, body: Any, *,
              headers: dict[str, str] | None = None) -> Answer:
    """POST ``body`` (any JSON-able value, hostile strings included)."""
    return post_raw(client, path, json_bytes(body), headers=headers)


def answer_problems(answer: Answer, *, allowed: range = range(200, 500)) -> list[str]:
    """What is wrong with a hostile request's answer: status, time, size."""
    problems = []
    if answer.status is None or answer.status not in allowed:
        problems.append(f"status not in {allowed.start}..{allowed.stop - 1}")
    if answer.seconds > REQUEST_BOUND:
        problems.append(f"slower than {REQUEST_BOUND} s")
    if len(answer.body) > answer.request_size + AMPLIFICATION_SLACK:
        problems.append("the answer amplifies the request")
    return problems


@dataclass
class Probe:
    start: float
    end: float
    ok: bool
    detail: str


@dataclass
class HealthProber:
    """A thread that GETs ``/health`` every ``PROBE_INTERVAL`` s on its own connection.

    Bounded: it stops after ``PROBE_MAX_COUNT`` probes or ``PROBE_MAX_SECONDS``,
    whichever comes first, and each probe waits at most ``PROBE_TIMEOUT`` s.
    Loopback only (the URL is the live server's 127.0.0.1 address).
    """

    url: str
    probes: list[Probe] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        assert self.url.startswith("http://127.0.0.1:"), self.url

    def start(self) -> HealthProber:
        self._thread = threading.Thread(target=self._run, name="health-prober", daemon=True)
        self._thread.start()
        self.wait_for_probe_after(time.monotonic())
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(PROBE_TIMEOUT + 1)

    def _run(self) -> None:
        deadline = time.monotonic() + PROBE_MAX_SECONDS
        with httpx.Client(base_url=self.url, timeout=PROBE_TIMEOUT) as client:
            for _ in range(PROBE_MAX_COUNT):
                if self._stop.is_set() or time.monotonic() > deadline:
                    return
                start = time.monotonic()
                try:
                    response = client.get("/health")
                    ok, detail = response.status_code == 200, f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    ok, detail = False, type(exc).__name__
                with self._lock:
                    self.probes.append(Probe(start, time.monotonic(), ok, detail))
                self._stop.wait(PROBE_INTERVAL)

    def wait_for_probe_after(self, moment: float) -> bool:
        """Wait (bounded) until a probe that started after ``moment`` has finished."""
        deadline = time.monotonic() + PROBE_TIMEOUT + 2 * PROBE_INTERVAL + 1
        while time.monotonic() < deadline:
            with self._lock:
                if self.probes and self.probes[-1].start >= moment:
                    return True
            if self._thread is None or not self._thread.is_alive():
                return False
            time.sleep(PROBE_INTERVAL / 5)
        return False

    def around(self, since: float, until: float) -> list[Probe]:
        """The probes that overlap ``[since, until]``, and the first one that began after it."""
        with self._lock:
            during = [p for p in self.probes if p.start <= until and p.end >= since]
            after = [p for p in self.probes if p.start > until][:1]
        return during + after

    def problems(self, since: float, until: float) -> list[str]:
        """What went wrong with the probes around ``[since, until]`` (none: all answered)."""
        if not self.wait_for_probe_after(until):
            return ["no GET /health answered afterwards (prober stalled or stopped)"]
        probes = self.around(since, until)
        worst = max(p.end - p.start for p in probes)
        failed = [p for p in probes if not p.ok]
        out = []
        if failed:
            out.append(f"GET /health failed ({failed[0].detail} after "
                       f"{failed[0].end - failed[0].start:.1f} s)")
        if worst > HEALTH_BOUND:
            out.append(f"GET /health took {worst:.2f} s (bound {HEALTH_BOUND} s)")
        return out

    def check(self, since: float, until: float, what: str = "") -> None:
        """Every probe around ``[since, until]`` succeeded within ``HEALTH_BOUND``."""
        problems = self.problems(since, until)
        assert not problems, f"{'; '.join(problems)}{f' while {what}' if what else ''}"

    def request(self, client: httpx.Client, path: str, body: Any, *,
                allowed: range = range(200, 500), headers: dict[str, str] | None = None) -> Answer:
        """POST ``body`` and check it and the probes around it: one assertion, every problem."""
        since = time.monotonic()
        answer = post_json(client, path, body, headers=headers)
        problems = answer_problems(answer, allowed=allowed) + self.problems(
            since, time.monotonic())
        assert not problems, f"POST {path}: {'; '.join(problems)}: {answer.describe()}"
        return answer

    @contextlib.contextmanager
    def watching(self, what: str = "") -> Iterator[None]:
        """Check the probes that overlap the block (after it ran without raising)."""
        since = time.monotonic()
        yield
        self.check(since, time.monotonic(), what)

    def summary(self) -> str:
        with self._lock:
            latencies = sorted(p.end - p.start for p in self.probes)
        if not latencies:
            return "no probes"
        return (f"{len(latencies)} probes, median {latencies[len(latencies) // 2] * 1000:.0f} ms, "
                f"max {latencies[-1] * 1000:.0f} ms")
