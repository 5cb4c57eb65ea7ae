"""Logging for the server: one format, and no secret ever reaches a log line.

Access logs (uvicorn's) carry the client, the request line and the status,
never headers, so the ``Authorization`` header is not logged. As a second
line of defence a filter on every handler rewrites anything shaped like an
API key to ``cyb_<label>_[redacted]``.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final

__all__ = ["RedactSecrets", "log_config", "redact"]

_KEY: Final = re.compile(r"cyb_([a-z0-9]{1,16})_[A-Za-z0-9_-]{8,}")


def redact(text: str) -> str:
    """``text`` with every API-key-shaped string replaced by ``cyb_<label>_[redacted]``."""
    return _KEY.sub(r"cyb_\1_[redacted]", text)


class RedactSecrets(logging.Filter):
    """A logging filter that redacts API keys from messages and their arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def log_config(level: str) -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` dict for the server and uvicorn."""
    level_name = level.upper()
    formatter = {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"}
    handler = {"class": "logging.StreamHandler", "formatter": "plain",
               "filters": ["redact"], "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactSecrets}},
        "formatters": {"plain": formatter},
        "handlers": {"stderr": handler},
        "loggers": {
            "cyberian": {"handlers": ["stderr"], "level": level_name, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level_name, "propagate": False},
            "uvicorn.error": {"level": level_name},
            "uvicorn.access": {"handlers": ["stderr"], "level": level_name,
                               "propagate": False},
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }
