"""TEST-ONLY fault injection for the executor, read from ``$CYBERIAN_FAULT_INJECTION``.

Never set this in production: it makes the server produce wrong results on
purpose, so tests can watch the independent replayer catch them. The server
logs a loud warning at startup when it is set. Directives, comma-separated:

* ``corrupt-chunk:<index>`` -- the executor flips the lowest bit of the first
  value of chunk ``<index>`` of every job (in the output it writes and the
  commitment it reports), so the replay of that chunk disagrees and the job
  ends REFUNDED (when the chunk is sampled; use ``sample_rate: 1.0``).
* ``slow-chunk:<seconds>`` -- the executor and the replayer sleep this long
  per chunk (and per ``/verify`` block), so a job or a request stays in flight
  long enough to kill the server mid-way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

__all__ = ["ENV_VAR", "Faults", "faults_from_env", "parse_faults"]

ENV_VAR: Final = "CYBERIAN_FAULT_INJECTION"


@dataclass(frozen=True)
class Faults:
    """The faults to inject: chunks to corrupt and a per-chunk delay."""

    corrupt_chunks: frozenset[int] = field(default_factory=frozenset)
    chunk_delay: float = 0.0

    def describe(self) -> str:
        """A one-line description for the startup warning."""
        parts = [f"corrupt chunk {index}" for index in sorted(self.corrupt_chunks)]
        if self.chunk_delay:
            parts.append(f"sleep {self.chunk_delay} s per chunk")
        return ", ".join(parts) or "nothing"


def parse_faults(text: str) -> Faults:
    """Parse ``corrupt-chunk:<i>,slow-chunk:<s>``; ValueError for anything else."""
    corrupt: set[int] = set()
    delay = 0.0
    for directive in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = directive.partition(":")
        try:
            if name == "corrupt-chunk":
                index = int(value)
                if index < 0:
                    raise ValueError
                corrupt.add(index)
            elif name == "slow-chunk":
                delay = float(value)
                if not 0 <= delay <= 60:
                    raise ValueError
            else:
                raise ValueError
        except ValueError:
            raise ValueError(f"{ENV_VAR}: cannot understand {directive!r} (expected "
                             "corrupt-chunk:<index> or slow-chunk:<seconds>)") from None
    return Faults(frozenset(corrupt), delay)


def faults_from_env(environ: Mapping[str, str] | None = None) -> Faults | None:
    """The faults configured in the environment, or ``None`` when the variable is unset."""
    text = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
    return parse_faults(text) if text else None
