"""Logging for the server: one format, and no secret ever reaches a log line.

Access logs (uvicorn's) carry the client, the request line and the status,
never headers. But a request line can carry a secret (``?api_key=...``), and
so can an exception's text. So every line the server's handlers write --
message, arguments and traceback, access log included -- goes through
:func:`redact`: API-key-shaped strings become ``cyb_<label>_[redacted]``
(also percent-encoded), the values of secret-looking query parameters
(``api_key=``, ``key=``, ``token=``, ...) and of ``Authorization`` /
``Bearer`` credentials become ``[redacted]``.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final

__all__ = ["RedactSecrets", "RedactingFormatter", "log_config", "redact"]

_UNDERSCORE = r"(?:_|%5[Ff])"
_KEY: Final = re.compile(rf"cyb{_UNDERSCORE}([A-Za-z0-9]{{1,16}}){_UNDERSCORE}"
                         r"(?!\[redacted\])(?:[A-Za-z0-9_-]|%[0-9A-Fa-f]{2}){8,}")
_QUERY_SECRET: Final = re.compile(
    r"(?i)([?&;](?:[a-z0-9_.-]*(?:api|access|auth|refresh|session)[_-]?)?"
    r"(?:key|token|secret|password|passwd|signature|credentials?)=)"
    r"(?!cyb_[A-Za-z0-9]{1,16}_\[redacted\])[^&;#\s\"']+")
_CREDENTIAL: Final = re.compile(
    r"(?i)\b(bearer|basic|token)(\s+|%20|\+)(?!cyb_[A-Za-z0-9]{1,16}_\[redacted\])"
    r"[A-Za-z0-9._~+/=%-]{8,}")
_AUTH_HEADER: Final = re.compile(
    r"(?i)(\bauthorization['\"]?\s*[:=,]\s*['\"]?)(?!bearer|basic|token|cyb_)[^\s'\",]+")


def redact(text: str) -> str:
    """``text`` without secrets: API keys, secret query values and credentials redacted."""
    text = _KEY.sub(r"cyb_\1_[redacted]", text)
    text = _QUERY_SECRET.sub(r"\1[redacted]", text)
    text = _CREDENTIAL.sub(r"\1\2[redacted]", text)
    return _AUTH_HEADER.sub(r"\1[redacted]", text)


class RedactSecrets(logging.Filter):
    """A logging filter that redacts API keys from messages and their arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class RedactingFormatter(logging.Formatter):
    """A formatter whose every output line, tracebacks included, is :func:`redact`-ed."""

    def format(self, record: logging.LogRecord) -> str:
        """The formatted record, redacted."""
        return redact(super().format(record))


def log_config(level: str) -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` dict for the server and uvicorn."""
    level_name = level.upper()
    formatter = {"class": f"{__name__}.RedactingFormatter",
                 "format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"}
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
