"""Server-wide limits on what one work request (``POST /jobs``, ``POST /verify``) may carry.

These hold for every tier and are checked first, before the request is
hashed, resolved or admitted: the number of texts, one text's length, the
size of ``spec_yaml``, and that every string is valid Unicode (a lone
surrogate such as ``"\\ud800"`` is valid JSON but no Unicode scalar value, and
could be neither hashed nor tokenised). The body's size, value count and
nesting depth were already bounded before it was parsed
(:mod:`cyberian.server.http.middleware`). The tiers' own per-request limits
(``max_input_texts``, ``max_chunks_per_request``) are applied later, with the
quotas.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .._text import lone_surrogate
from .config import Settings
from .errors import InvalidRequestError, RequestTooLargeError
from .model_resolver import WorkBody

__all__ = ["RequestLimits"]

_TEXT_FIELDS = ("inputs", "input_texts")


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string in plain JSON data (keys included), with its dotted path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{key}" if isinstance(key, str) and key.isascii() else path
            yield where, str(key)
            yield from _strings(item, where)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}.{index}")


def _refuse_surrogate(field: str, text: str, position: int) -> InvalidRequestError:
    return InvalidRequestError(
        f"{field}: texts must be valid Unicode scalar values; the lone surrogate "
        f"U+{ord(text[position]):04X} at character {position} is not one", field=field)


@dataclass(frozen=True)
class RequestLimits:
    """The server-wide limits of a work request (settings of the same names)."""

    max_texts_per_request: int
    max_text_chars: int
    max_spec_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> RequestLimits:
        """The limits ``settings`` configure."""
        return cls(settings.max_texts_per_request, settings.max_text_chars,
                   settings.max_spec_bytes)

    def check(self, body: WorkBody) -> None:
        """Refuse (raise) a body over a limit, naming the field, the limit and its setting."""
        for field in _TEXT_FIELDS:
            texts = getattr(body, field)
            if texts is not None and len(texts) > self.max_texts_per_request:
                raise RequestTooLargeError(
                    f"{field}: {len(texts)} texts; this server takes at most "
                    f"{self.max_texts_per_request} per request (setting max_texts_per_request)",
                    field=field, limit=self.max_texts_per_request, requested=len(texts),
                    setting="max_texts_per_request")
        if body.spec_yaml is not None:
            size = len(body.spec_yaml.encode("utf-8", "surrogatepass"))
            if size > self.max_spec_bytes:
                raise RequestTooLargeError(
                    f"spec_yaml: {size} bytes; the limit is {self.max_spec_bytes} bytes "
                    "(setting max_spec_bytes)", field="spec_yaml", limit=self.max_spec_bytes,
                    requested=size, setting="max_spec_bytes")
        for field in _TEXT_FIELDS:
            self._check_texts(field, getattr(body, field) or ())
        for name, value in body.model_dump(exclude_none=True).items():
            if name in _TEXT_FIELDS:
                continue
            for where, text in _strings(value, name):
                position = lone_surrogate(text)
                if position is not None:
                    raise _refuse_surrogate(where, text, position)

    def _check_texts(self, field: str, texts: Any) -> None:
        for index, text in enumerate(texts):
            if len(text) > self.max_text_chars:
                raise RequestTooLargeError(
                    f"{field}.{index}: a text of {len(text)} characters; the limit is "
                    f"{self.max_text_chars} (setting max_text_chars)", field=f"{field}.{index}",
                    limit=self.max_text_chars, requested=len(text), setting="max_text_chars")
            position = lone_surrogate(text)
            if position is not None:
                raise _refuse_surrogate(f"{field}.{index}", text, position)
