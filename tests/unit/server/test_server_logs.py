"""No API key reaches a log line."""

from __future__ import annotations

import logging
import sys

import pytest

from cyberian.server.apikeys import mint_api_key
from cyberian.server.logs import RedactingFormatter, RedactSecrets, redact


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


@pytest.mark.parametrize(("line", "secret"), [
    ('127.0.0.1:1 - "GET /account?api_key={key} HTTP/1.1" 401', "{key}"),
    ('127.0.0.1:1 - "GET /health?token=abcdef123456&x=1 HTTP/1.1" 200', "abcdef123456"),
    ("GET /x?access_token=zzzzzzzzzz", "zzzzzzzzzz"),
    ("Authorization: Bearer sk-not-ours-0123456789", "sk-not-ours-0123456789"),
    ("headers={{'authorization': 'opaque-credential'}}", "opaque-credential"),
    ("GET /x?k={quoted}", "{quoted}"),
])
def test_secret_query_values_and_credentials_are_redacted(line: str, secret: str) -> None:
    key = mint_api_key("trial").secret
    quoted = key.replace("_", "%5F")
    text = line.format(key=key, quoted=quoted)
    assert secret.format(key=key, quoted=quoted) not in redact(text)
    assert "[redacted]" in redact(text)


def test_every_formatted_line_is_redacted_tracebacks_included() -> None:
    key = mint_api_key("live").secret
    try:
        raise ValueError(f"bad key {key}")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None,
                                   sys.exc_info())
    line = RedactingFormatter("%(message)s").format(record)
    assert key not in line
    assert "cyb_live_[redacted]" in line


def test_ordinary_query_strings_are_kept() -> None:
    line = "GET /jobs/job_1/wait?max_wait=3&tokenizer=tiny&name=acme HTTP/1.1"
    assert redact(line) == line
