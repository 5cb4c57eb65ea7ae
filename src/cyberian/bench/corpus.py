"""The benchmark texts: 2,231 real English sentences and a stress set.

``benchmarks/corpus/sentences.txt`` is prose from the Python 3.11 standard
library's documentation (see ``benchmarks/make_corpus.py``): median ~20
tokens, a tail past 128. ``stress.jsonl`` has the awkward cases: empty and
one-character texts, texts far past truncation, non-Latin scripts, emoji,
zero-width and combining characters, control characters, embedded newlines.
"""

from __future__ import annotations

from pathlib import Path

from .._paths import shipped_dir
from ..inputs import read_texts

__all__ = ["corpus_dir", "determinism_texts", "sentences", "stress_texts"]


def corpus_dir() -> Path:
    """The folder holding the shipped benchmark corpus."""
    return shipped_dir("benchmarks") / "corpus"


def sentences(limit: int | None = None) -> list[str]:
    """The English sentence corpus (optionally only the first ``limit``)."""
    texts = read_texts(corpus_dir() / "sentences.txt")
    return texts[:limit] if limit is not None else texts


def stress_texts() -> list[str]:
    """The stress set (empty-ish, very long, non-Latin, emoji, odd code points)."""
    return read_texts(corpus_dir() / "stress.jsonl")


def determinism_texts(sentence_count: int = 96) -> list[str]:
    """The default determinism inputs: the whole stress set plus a slice of the corpus."""
    return stress_texts() + sentences(sentence_count)
