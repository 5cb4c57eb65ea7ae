"""Wake-ups for long polls: one :class:`asyncio.Event` per job, set when its status changes."""

from __future__ import annotations

import asyncio

__all__ = ["JobEvents"]


class JobEvents:
    """Per-job events, created by a waiter and set (then dropped) on the next status change."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def event(self, job_id: str) -> asyncio.Event:
        """The event the next status change of ``job_id`` will set."""
        return self._events.setdefault(job_id, asyncio.Event())

    def changed(self, job_id: str) -> None:
        """Wake every waiter of ``job_id``."""
        event = self._events.pop(job_id, None)
        if event is not None:
            event.set()

    async def wait(self, job_id: str, timeout: float) -> bool:
        """Wait for the next status change of ``job_id``; ``False`` after ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self.event(job_id).wait(), timeout)
        except TimeoutError:
            return False
        return True
