"""The pinned ONNX Runtime session, pooling and normalisation.

Session settings come from the spec (threads, graph optimisation level) or are
fixed here, explicitly, because each can change bits: CPU provider only,
sequential execution, weight prepacking on, GELU approximation off,
denormals kept (no flush-to-zero), ARM bf16 fast-math off.

Texts are sorted by token length and cut into batches of at most
``max_batch_tokens`` padded tokens, purely for speed. That is allowed only
because every row is independent of its batch: the graph is
padding-invariant and each GEMM row is computed alone (the test suite checks
a text alone against the same text inside batches, at several positions and
padded to several lengths, bit for bit).

The run's threads are spent as *lanes*: by default each thread runs whole
batches of its own through the one shared session (``session.run`` is
thread-safe and releases the GIL), with one intra-op thread per call. On two
cores that measured 9-15 % faster, and far steadier, than two intra-op threads
synchronising at every operator (docs/BENCHMARKS.md). It cannot change bits:
a row depends neither on its batch nor on the intra-op thread count.

The model file is read once: its SHA-256 is checked on the very bytes the
session is then built from, so what runs is exactly what was pinned. The one
exception is a pinned model whose shipped recipe also pins a *fused twin*
(:mod:`cyberian.kernels`): the same computation with its element-wise chains
fused into single kernels. After the pin check on the model's bytes, the
session is built from the twin's bytes, checked against the recipe's pin,
with the kernel library registered; the output bytes are the same (the tests
compare them) and the manifest's ``kernels`` entry says which ran.

Pooling and normalisation use one fixed summation order, independent of SIMD
width and library dispatch:

* ``mean``: the token states of the text's real tokens, in float64, summed
  sequentially in token order (``numpy.cumsum`` along the token axis is a
  running sum by definition), divided by the token count;
* ``cls``: the first token's state, in float64;
* L2 normalisation: the sum of squares, sequential in dimension order, in
  float64, then one division;
* one cast to float32 at the end.

A pooled row that is not finite (NaN or infinity) is an execution error, not
an embedding: it is refused before normalisation, which would otherwise turn
it into a row of zeros.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, TypeVar

import numpy as np
import numpy.typing as npt

from .environment import environment_manifest
from .exceptions import SpecError
from .kernels.twin import find_fused_twin
from .spec import Spec, check_engine, installed_engine_version
from .tokenization import PinnedTokenizer, TokenIds

__all__ = ["DEFAULT_MAX_BATCH_TOKENS", "Runtime", "in_lanes", "plan_batches", "pool_rows"]

DEFAULT_MAX_BATCH_TOKENS: Final = 512
"""Padded tokens per inference batch: measured best, or within noise of the best, on
2-core AVX2 (Zen 1) and AVX-512 (Zen 4) machines, with and without lanes."""

_MAX_BATCH_ROWS: Final = 64
_KNOWN_INPUTS: Final = ("input_ids", "attention_mask", "token_type_ids")
Rows = npt.NDArray[np.float32]
_Result = TypeVar("_Result")


def plan_batches(lengths: Sequence[int], *, max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
                 max_batch_rows: int = _MAX_BATCH_ROWS, min_batches: int = 1) -> list[list[int]]:
    """Indices grouped into batches: sorted by length, each within the padded-token budget.

    When that gives fewer than ``min_batches`` batches (one per lane), the
    largest are halved until there are enough, or every batch is one text.
    """
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        # sorted ascending, so this text is the longest in the batch it joins
        if current and ((len(current) + 1) * lengths[index] > max_batch_tokens
                        or len(current) >= max_batch_rows):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    while len(batches) < min_batches:
        splittable = [b for b in batches if len(b) > 1]
        if not splittable:
            break
        largest = max(splittable, key=lambda b: len(b) * lengths[b[-1]])
        at = batches.index(largest)
        batches[at:at + 1] = [largest[:len(largest) // 2], largest[len(largest) // 2:]]
    return batches


def in_lanes(run: Callable[[list[int]], _Result], batches: Sequence[list[int]],
             lengths: Sequence[int], lanes: int) -> Iterator[tuple[list[int], _Result]]:
    """``(batch, run(batch))`` for every batch, ``lanes`` of them running at a time.

    Batches start largest first (padded tokens, from ``lengths``), so the
    lanes finish together; with one lane, or one batch, they run in turn here.
    """
    if lanes == 1 or len(batches) <= 1:
        for batch in batches:
            yield batch, run(batch)
        return
    ordered = sorted(batches, key=lambda batch: -len(batch) * max(lengths[i] for i in batch))
    with ThreadPoolExecutor(lanes, thread_name_prefix="cyberian-lane") as pool:
        futures = [pool.submit(run, batch) for batch in ordered]
        try:
            for batch, future in zip(ordered, futures, strict=True):
                yield batch, future.result()
        finally:  # an error, or a consumer that stops early: drop what has not started
            for future in futures:
                future.cancel()


def _l2_normalise(rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    norms = np.sqrt(np.cumsum(rows * rows, axis=1)[:, -1:])
    return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)


def pool_rows(states: npt.NDArray[np.float32], lengths: Sequence[int], *, pooling: str,
              normalize: bool) -> Rows:
    """Pooled (and optionally L2-normalised) float32 rows from token states (B, L, H).

    Row ``r`` reads only ``states[r, :lengths[r]]``, so padding never enters the sum:
    the running sum is read at the row's last real token.
    A non-finite pooled value raises :class:`SpecError` (``model.output``).
    """
    if pooling == "none":
        pooled = np.asarray(states, dtype=np.float64)
    elif pooling == "cls":
        pooled = np.asarray(states[:, 0, :], dtype=np.float64)
    else:
        counts = np.asarray(lengths, dtype=np.int64)
        if (counts < 1).any():
            raise SpecError("the tokenizer gave a text no tokens at all, so it has no mean; "
                            "a BERT tokenizer adds [CLS] and [SEP]", path="tokenizer.file")
        running = np.cumsum(np.asarray(states, dtype=np.float64), axis=1)
        pooled = running[np.arange(len(counts)), counts - 1] / counts[:, None]
    if not np.isfinite(pooled).all():
        rows = int(np.count_nonzero(~np.isfinite(pooled).reshape(len(pooled), -1).all(axis=1)))
        raise SpecError(f"the model produced non-finite values (NaN or infinity) for {rows} of "
                        f"{len(pooled)} texts; its output is not an embedding",
                        path="model.output")
    if normalize:
        pooled = _l2_normalise(pooled)
    return pooled.astype(np.float32)


class Runtime:
    """One ONNX Runtime CPU session built from a spec, plus its pinned tokenizer."""

    def __init__(self, spec: Spec, *, allow_engine_drift: bool = False,
                 max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
                 threads: int | None = None, lanes: int | None = None,
                 fused: bool | None = None) -> None:
        """Check the engine and file pins, then open the session.

        ``threads`` overrides ``runtime.intra_op_threads``: the CPU threads the
        run uses. ``lanes`` of them (default: all) run batches concurrently,
        each call with ``threads // lanes`` intra-op threads. Both are for
        speed only: the output bytes depend on neither (the determinism tests
        prove it).

        ``fused`` chooses the model's fused twin: ``None`` (default) uses it
        when one is pinned and the kernels compile here, ``False`` never,
        ``True`` insists (``RuntimeError`` when it cannot).
        """
        drift = check_engine(spec, allow_drift=allow_engine_drift)
        self.threads = int(spec.runtime["intra_op_threads"]) if threads is None else threads
        self.lanes = self.threads if lanes is None else lanes
        if not 1 <= self.lanes <= self.threads:
            raise ValueError(f"lanes={self.lanes} must be between 1 and threads={self.threads}")
        model = spec.pinned_bytes("model")
        self.spec = spec
        self.max_batch_tokens = max_batch_tokens
        self.tokenizer = PinnedTokenizer.from_json(spec.pinned_bytes("tokenizer"),
                                                   max_length=spec.max_length,
                                                   source=str(spec.tokenizer_path))
        twin, reason = (None, None) if fused is False else find_fused_twin(spec.model_sha256,
                                                                           spec.model_path)
        if fused and twin is None:
            raise RuntimeError(f"no fused twin can run for {spec.model_path.name}: "
                               f"{reason or 'no shipped recipe pins one'}")
        self._session = _make_session(spec, model if twin is None else twin.model,
                                      self.threads // self.lanes,
                                      kernels=None if twin is None else twin.library.path)
        del model
        self._inputs = _graph_inputs(self._session)
        self._output = _graph_output(self._session, spec)
        self.manifest: dict[str, Any] = environment_manifest(
            engine_version=installed_engine_version(),
            engine_drift=str(spec.runtime["version"]) if drift else None,
        )
        if twin is not None:
            self.manifest["kernels"] = twin.describe()
        elif reason is not None:
            self.manifest["kernels"] = {"fused": False, "reason": reason}
        del twin

    def embed(self, texts: Sequence[str]) -> Rows:
        """Output rows for ``texts``, in the order given."""
        return self.embed_tokens(self.tokenizer.encode(texts))

    def embed_flagged(self, texts: Sequence[str]) -> tuple[Rows, list[bool]]:
        """Output rows for ``texts``, and for each whether it was cut at ``max_length`` tokens."""
        encoded, cut = self.tokenizer.encode_flagged(texts)
        return self.embed_tokens(encoded), cut

    def embed_tokens(self, encoded: Sequence[TokenIds]) -> Rows:
        """Output rows for already-tokenised texts, in the order given."""
        out = np.empty((len(encoded), self.spec.dimensions), dtype=np.float32)
        lengths = [len(ids) for ids in encoded]
        batches = plan_batches(lengths, max_batch_tokens=self.max_batch_tokens,
                               min_batches=self.lanes)
        for batch, rows in in_lanes(lambda batch: self.run_batch([encoded[i] for i in batch]),
                                    batches, lengths, self.lanes):
            out[batch] = rows
        return out

    def run_batch(self, encoded: Sequence[TokenIds], *, pad_to: int | None = None) -> Rows:
        """Rows for one batch, padded to its longest text (or to ``pad_to`` tokens)."""
        lengths = [len(ids) for ids in encoded]
        width = max(lengths) if pad_to is None else pad_to
        if width < max(lengths):
            raise ValueError(f"pad_to={pad_to} is shorter than the longest text ({max(lengths)})")
        input_ids = np.zeros((len(encoded), width), dtype=np.int64)
        attention_mask = np.zeros_like(input_ids)
        for row, ids in enumerate(encoded):
            input_ids[row, : len(ids)] = ids
            attention_mask[row, : len(ids)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask,
                 "token_type_ids": np.zeros_like(input_ids)}
        (states,) = self._session.run([self._output], {n: feeds[n] for n in self._inputs})
        if states.shape[-1] != self.spec.dimensions:
            raise SpecError(f"the model's {self._output} has width {states.shape[-1]}, "
                            f"the spec says {self.spec.dimensions}", path="output.dimensions")
        return pool_rows(states, lengths, pooling=self.spec.pooling,
                         normalize=self.spec.normalize)


def _make_session(spec: Spec, model: bytes, intra_op_threads: int, *,
                  kernels: Path | None = None) -> Any:
    import onnxruntime as ort  # noqa: PLC0415 - heavy import

    levels = {
        "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    runtime = spec.runtime
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = int(runtime["inter_op_threads"])
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = levels[str(runtime["graph_optimization"])]
    options.use_deterministic_compute = True
    options.log_severity_level = 3
    for key, value in (
        ("session.disable_prepacking", "0"),
        ("optimization.enable_gelu_approximation", "0"),
        ("session.set_denormal_as_zero", "0"),
        ("mlas.enable_gemm_fastmath_arm64_bfloat16", "0"),
    ):
        options.add_session_config_entry(key, value)
    try:
        if kernels is not None:
            options.register_custom_ops_library(str(kernels))
        return ort.InferenceSession(model, options, providers=[str(runtime["provider"])])
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph types
        raise SpecError(f"ONNX Runtime cannot load {spec.model_path}: {exc}",
                        path="model.file") from None


def _graph_inputs(session: Any) -> list[str]:
    names = [node.name for node in session.get_inputs()]
    unknown = [name for name in names if name not in _KNOWN_INPUTS]
    if unknown or "input_ids" not in names:
        raise SpecError(f"the model's inputs {names} are not BERT-style "
                        f"(expected input_ids and optionally {_KNOWN_INPUTS[1:]})",
                        path="model.file")
    return names


def _graph_output(session: Any, spec: Spec) -> str:
    names = [node.name for node in session.get_outputs()]
    if spec.model_output not in names:
        raise SpecError(f"the model has no output {spec.model_output!r} (it has {names})",
                        path="model.output")
    return spec.model_output
