"""A tiny random-weight BERT and tokenizer, built by the real builder, for fast tests.

Same graph layout as the shipped model (so every property the tests prove
about the layout holds for both), two layers of width 32 instead of six of
384, and a ~140-token WordPiece vocabulary that spells any ASCII text.
"""

from __future__ import annotations

import hashlib
import string
from pathlib import Path

from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from .._files import write_atomically
from ..spec import installed_engine_version
from .bert import BertConfig, build_bert_graph, random_bert_weights, serialize_model
from .build import BuiltModel

__all__ = ["TINY_CONFIG", "build_tiny_model", "tiny_tokenizer_json", "write_tiny_spec"]

_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_WORDS = ("the", "a", "of", "and", "to", "in", "is", "it", "that", "model", "text", "proof")


def _vocab() -> dict[str, int]:
    symbols = string.ascii_lowercase + string.digits + string.punctuation
    tokens = [*_SPECIALS, *symbols, *(f"##{c}" for c in string.ascii_lowercase + string.digits),
              *_WORDS]
    return {token: index for index, token in enumerate(dict.fromkeys(tokens))}


TINY_CONFIG = BertConfig(
    vocab_size=len(_vocab()),
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=128,
    type_vocab_size=2,
    layer_norm_eps=1e-12,
)


def tiny_tokenizer_json() -> str:
    """The tiny BERT-style WordPiece tokenizer as tokenizer.json text."""
    vocab = _vocab()
    tokenizer = Tokenizer(WordPiece(vocab, unk_token="[UNK]",  # noqa: S106 - not a password
                                    max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    text: str = tokenizer.to_str()
    return text


def build_tiny_model(out_dir: Path, *, seed: int = 0, int8: bool = False) -> BuiltModel:
    """Write ``tiny.onnx`` (``tiny-int8.onnx``: the int8 builder's) and ``tiny.tokenizer.json``."""
    weights = random_bert_weights(TINY_CONFIG, seed=seed)
    if int8:
        from .bert_int8 import build_bert_int8_graph  # noqa: PLC0415

        graph = build_bert_int8_graph(weights, TINY_CONFIG, name="tiny-int8")
    else:
        graph = build_bert_graph(weights, TINY_CONFIG, name="tiny")
    model_bytes = serialize_model(graph)
    tokenizer_bytes = tiny_tokenizer_json().encode("utf-8")
    model_path = out_dir / ("tiny-int8.onnx" if int8 else "tiny.onnx")
    tokenizer_path = out_dir / "tiny.tokenizer.json"
    write_atomically(model_path, model_bytes)
    write_atomically(tokenizer_path, tokenizer_bytes)
    return BuiltModel(model_path, hashlib.sha256(model_bytes).hexdigest(),
                      tokenizer_path, hashlib.sha256(tokenizer_bytes).hexdigest())


def write_tiny_spec(out_dir: Path, *, seed: int = 0, chunk_size: int = 4, max_length: int = 64,
                    name: str = "tiny", int8: bool = False) -> Path:
    """Build the tiny model into ``out_dir`` and write a pinned CES for it; returns its path."""
    built = build_tiny_model(out_dir, seed=seed, int8=int8)
    spec = f"""\
version: "1.0"
name: {name}
task: embedding
model:
  file: {built.model_path.name}
  sha256: "{built.model_sha256}"
  output: last_hidden_state
tokenizer:
  file: {built.tokenizer_path.name}
  sha256: "{built.tokenizer_sha256}"
  max_length: {max_length}
pooling: mean
normalize: true
output:
  dimensions: {TINY_CONFIG.hidden_size}
  dtype: float32
runtime:
  engine: onnxruntime
  version: "{installed_engine_version()}"
  provider: CPUExecutionProvider
  intra_op_threads: 1
  inter_op_threads: 1
  graph_optimization: {"basic" if int8 else "extended"}
chunking:
  chunk_size: {chunk_size}
verification:
  sample_rate: 0.5
"""
    path = out_dir / f"{name}.yaml"
    path.write_text(spec, encoding="utf-8")
    return path
