"""The steps an operation asks its client to carry out, and what each step produced.

Each API operation of :class:`~cyberian.client._base.BaseClient` is a
generator (an :data:`Operation`) that yields steps -- :class:`Send` one HTTP
request, :class:`Sleep`, :class:`Notify` a progress callback -- and is
resumed with their :data:`Outcome`. Only the sync and the async client's
``_run`` carry steps out, so the two can't drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

import httpx

__all__ = ["Notify", "Operation", "Outcome", "ProgressCallback", "Send", "Sleep", "Step"]

_T = TypeVar("_T")

ProgressCallback: TypeAlias = Callable[[dict[str, Any]], object]
"""Called with every job state observed while waiting (an async client awaits awaitables)."""


@dataclass(frozen=True, eq=False)
class Send:
    """Step: send one HTTP request; ``options`` are keyword arguments of ``httpx``'s ``request``."""

    method: str
    url: str
    options: dict[str, Any]


@dataclass(frozen=True)
class Sleep:
    """Step: pause for ``seconds``."""

    seconds: float


@dataclass(frozen=True, eq=False)
class Notify:
    """Step: hand an observed job state to the caller's progress callback."""

    callback: ProgressCallback
    job: dict[str, Any]


Step: TypeAlias = Send | Sleep | Notify
Outcome: TypeAlias = httpx.Response | httpx.RequestError | None
"""What a step produced: the response or transport error of a :class:`Send`, else ``None``."""
Operation: TypeAlias = Generator[Step, Outcome, _T]
"""An API operation: yields steps, is sent their outcomes, returns its result."""
