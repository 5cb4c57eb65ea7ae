"""The pinned tokenizer: fixed truncation, no padding, no dependence on the batch.

Truncation and padding settings stored inside a tokenizer.json (the shipped
one says "pad every text to 128") are overridden here, explicitly, every
time: a text is truncated at ``max_length`` tokens (special tokens included,
from the right) and never padded. Each text's token ids therefore depend on
that text alone; padding to a batch's longest text happens later, in the
runtime, where the graph is proven padding-invariant.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from .exceptions import SpecError

__all__ = ["PinnedTokenizer", "TokenIds"]

TokenIds = npt.NDArray[np.int64]


class PinnedTokenizer:
    """A ``tokenizers`` tokenizer with its truncation and padding fixed by the spec."""

    def __init__(self, tokenizer: Tokenizer, *, max_length: int) -> None:
        """Wrap ``tokenizer``, overriding whatever truncation and padding it carries."""
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length, stride=0, strategy="longest_first",
                                    direction="right")
        self._tokenizer = tokenizer
        self.max_length = max_length

    @classmethod
    def from_file(cls, path: Path, *, max_length: int) -> PinnedTokenizer:
        """The tokenizer in the tokenizer.json at ``path``."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SpecError(f"cannot load {path}: {exc}", path="tokenizer.file") from None
        return cls.from_json(data, max_length=max_length, source=str(path))

    @classmethod
    def from_json(cls, data: bytes, *, max_length: int,
                  source: str = "the tokenizer") -> PinnedTokenizer:
        """The tokenizer in the bytes of a tokenizer.json (checked against its pin first).

        ``source`` names where the bytes came from, in the error for bad JSON.
        """
        try:
            return cls(Tokenizer.from_str(data.decode("utf-8")), max_length=max_length)
        except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
            raise SpecError(f"cannot load {source}: {exc}", path="tokenizer.file") from None

    def encode(self, texts: Sequence[str]) -> list[TokenIds]:
        """Token ids of each text (special tokens added, truncated, unpadded)."""
        return self.encode_flagged(texts)[0]

    def encode_flagged(self, texts: Sequence[str]) -> tuple[list[TokenIds], list[bool]]:
        """Token ids of each text, and for each whether it was cut at ``max_length`` tokens.

        A text that fits exactly is not cut: only one with tokens past the limit is.
        """
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=True)
        ids = [np.asarray(encoding.ids, dtype=np.int64) for encoding in encodings]
        # only a text at the limit can have been cut, so only its overflow is looked at
        cut = [len(row) >= self.max_length and bool(encoding.overflowing)
               for row, encoding in zip(ids, encodings, strict=True)]
        return ids, cut
