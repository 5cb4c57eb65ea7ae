"""The bounded queue: open jobs plus in-flight VaaS requests may not exceed ``queue_size``.

Past it, new work is refused with ``service_busy``, saying when to retry;
idempotent replays of accepted work are never refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .errors import ServiceBusyError

__all__ = ["Capacity"]


class Capacity:
    """Counts queued work against ``size``."""

    def __init__(self, size: int, retry_after_sec: int, open_jobs: Callable[[], int]) -> None:
        self.size = size
        self._retry_after = retry_after_sec
        self._open_jobs = open_jobs
        self.vaas_in_flight = 0

    @property
    def used(self) -> int:
        """Open jobs plus in-flight VaaS requests."""
        return self._open_jobs() + self.vaas_in_flight

    def check(self) -> None:
        """Refuse new work (:class:`ServiceBusyError`) when the queue is full."""
        if self.used >= self.size:
            raise ServiceBusyError(
                f"the server's queue is full ({self.size} requests in flight); "
                f"retry in {self._retry_after} s", retry_after_sec=self._retry_after)

    @contextmanager
    def vaas_slot(self) -> Iterator[None]:
        """Count one VaaS request as in flight for the duration of the block."""
        self.vaas_in_flight += 1
        try:
            yield
        finally:
            self.vaas_in_flight -= 1
