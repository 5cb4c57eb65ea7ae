"""Regenerate benchmarks/corpus/sentences.txt (committed; this script is its provenance).

The corpus is real English prose from the Python 3.11 standard library's own
documentation (``pydoc_data.topics`` and the module, class and function
docstrings of ``Lib/*.py``; PSF licence): 2,200 sentences plus every long
paragraph (over 650 characters, about 30), shuffled with a fixed seed. With
the shipped tokenizer the median text is about 20 tokens and a few dozen run
past 128 (some past the 256-token truncation). Run with Python 3.11 to
reproduce the committed file.
"""

from __future__ import annotations

import ast
import random
import re
import sysconfig
from pathlib import Path

OUT = Path(__file__).resolve().parent / "corpus" / "sentences.txt"
_CODEY = re.compile(r"[{}=<>|]|\.\.\.|>>>|\*\*|::|--")


def _docs() -> list[str]:
    from pydoc_data.topics import topics

    texts = [topics[key] for key in sorted(topics)]
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef):
                doc = ast.get_docstring(node)
                if doc:
                    texts.append(doc)
    return texts


def main() -> None:
    paragraphs = []
    for text in _docs():
        for block in re.split(r"\n\s*\n", text):
            paragraph = " ".join(block.split())
            if len(paragraph) > 40 and paragraph[0].isupper() and not _CODEY.search(paragraph):
                paragraphs.append(paragraph)
    sentences = sorted({
        s for p in paragraphs for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", p)
        if len(s) >= 20 and s[-1] in ".!?" and " " in s
    })
    long_ones = sorted({p for p in paragraphs if len(p) > 650} - set(sentences))
    rng = random.Random(0)
    rng.shuffle(sentences)
    rng.shuffle(long_ones)
    corpus = sentences[:2200] + long_ones[:100]
    rng.shuffle(corpus)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text("\n".join(corpus) + "\n", encoding="utf-8")
    print(f"wrote {len(corpus)} texts to {OUT}")


if __name__ == "__main__":
    main()
