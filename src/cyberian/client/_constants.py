"""The client's fixed values: where it connects, what it is called, how long it waits.

The environment variable names are written here and nowhere else: the
client, ``cyberian-prove --verify`` and the benchmarks all read them from
this module.
"""

from __future__ import annotations

from typing import Final

from .._version import __version__

DEFAULT_BASE_URL: Final = "http://127.0.0.1:8080"
"""The server URL used when neither an argument nor the environment names one."""
API_KEY_ENV: Final = "CYBERIAN_API_KEY"
"""The environment variable holding the API key."""
BASE_URL_ENV: Final = "CYBERIAN_API_BASE"
"""The environment variable holding the server URL."""
KEY_PREFIX: Final = "cyb_"
"""Every cyberian API key starts with this."""
USER_AGENT: Final = f"cyberian-python/{__version__}"
KEYS_PATH: Final = "/keys"
"""The public route serving the server's receipt-signing keys."""

DEFAULT_TIMEOUT: Final = 60.0
"""Seconds a request may take (connect, read, write and pool)."""
KEYS_TIMEOUT: Final = 10.0
"""Seconds a keyless ``GET /keys`` may take (:func:`~cyberian.client._keys.fetch_trusted_keys`)."""
DEFAULT_MAX_RETRIES: Final = 2
DEFAULT_MAX_RETRY_WAIT: Final = 10.0
"""The longest ``Retry-After`` (seconds) the client sleeps through by itself."""

LONG_POLL_CAP: Final = 30
"""The server holds ``/jobs/{id}/wait`` at most this many seconds."""
LONG_POLL_SLACK: Final = 10.0
"""Seconds a long poll's read timeout allows beyond the server's hold."""
TERMINAL_STATES: Final = frozenset({"SETTLED", "FAILED", "REFUNDED"})
NO_RECEIPT: Final = "(no receipt issued)"
"""The receipt id a :class:`~cyberian.exceptions.VerificationFailedError` names when none exists."""
