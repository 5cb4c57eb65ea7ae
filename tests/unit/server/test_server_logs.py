"""No API key reaches a log line."""

from __future__ import annotations

import logging

import pytest

from cyberian.server.apikeys import mint_api_key
from cyberian.server.logs import RedactSecrets, redact


def test_keys_are_redacted_in_messages_and_arguments() -> None:
    key = mint_api_key("live").secret
    assert redact(f"Authorization: Bearer {key} sent") == \
        "Authorization: Bearer cyb_live_[redacted] sent"
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "got %s from %s",
                               (key, "client"), None)
    assert RedactSecrets().filter(record) is True
    assert record.getMessage() == "got cyb_live_[redacted] from client"
    assert key not in record.getMessage()


def test_other_messages_are_untouched(caplog: pytest.LogCaptureFixture) -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "job %s settled", ("job_1",),
                               None)
    RedactSecrets().filter(record)
    assert (record.msg, record.args) == ("job %s settled", ("job_1",))
