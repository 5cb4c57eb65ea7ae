"""Synchronous certified embeddings: one request becomes one job, answered once it SETTLED.

This is what ``POST /v1/embeddings`` (the OpenAI-compatible route) runs. The
texts go through exactly the path of ``POST /jobs`` -- the same acceptance
(limits, quotas, queue room, all before anything is written), execution,
sample-and-replay and signed receipt -- and the answer waits for the job's
end. Only a SETTLED job's rows are returned, read from the same output file
``GET /jobs/{id}/output`` serves, so the two are byte-identical. A job that
ends FAILED or REFUNDED answers :class:`~cyberian.server.errors.JobFailedError`:
nothing uncertified is ever returned.

What OpenAI's API allows and we cannot honour is refused before the job
exists, so it spends nothing: token-id arrays as input (the pinned tokenizer
is part of what is proven), ``dimensions`` other than the model's own (no
shipped model is trained for truncation), an unknown model, an empty input.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..spec import Spec
from ..tokenization import PinnedTokenizer
from .auth import Principal
from .errors import (
    InvalidRequestError,
    JobFailedError,
    ModelNotFoundError,
    TokenIdsNotSupportedError,
    bad_request,
)
from .jobs import LONG_POLL_CAP, JobManager
from .model_resolver import ModelResolver
from .store.jobs import TERMINAL_STATES, JobRecord
from .timeutil import utcnow

__all__ = ["ID_ARRAYS_REFUSED", "CertifiedEmbeddings", "EmbeddingsService", "texts_of"]

ID_ARRAYS_REFUSED = (
    "input: token-id arrays are not accepted; send the texts themselves. A certified "
    "embedding proves which text went through the pinned tokenizer, so the server must "
    "tokenize it. LangChain's OpenAIEmbeddings sends token ids unless you construct it with "
    "check_embedding_ctx_length=False.")


def texts_of(value: object) -> list[str]:
    """The texts of an OpenAI ``input`` (a string or a list of strings), or the refusal."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise bad_request("input: must be a string or a list of strings", field="input")
    if not items:
        raise bad_request("input: must hold at least one text", field="input")
    for index, item in enumerate(items):
        if isinstance(item, int | list):
            raise TokenIdsNotSupportedError(ID_ARRAYS_REFUSED, field="input")
        if not isinstance(item, str):
            raise bad_request(f"input[{index}]: must be a string", field="input")
        if not item:
            raise bad_request(f"input[{index}]: must not be empty", field="input")
    return list(items)


@dataclass
class _ModelBody:
    """A job body in the model dialect (what :meth:`JobManager.submit` accepts)."""

    model: str | None
    inputs: list[str] | None
    spec_yaml: str | None = None
    input_texts: list[str] | None = None

    def model_dump(self, *, exclude_none: bool = False) -> dict[str, Any]:
        """The body as ``POST /jobs`` would have received it."""
        return {"model": self.model, "inputs": self.inputs}


@dataclass(frozen=True)
class CertifiedEmbeddings:
    """A SETTLED job's rows, with the job (its receipt id) and the tokens the model read."""

    job: JobRecord
    vectors: npt.NDArray[np.float32]
    prompt_tokens: int


class _Tokenizers:
    """The pinned tokenizer of each spec, loaded once (counting tokens for ``usage``)."""

    def __init__(self) -> None:
        self._loaded: dict[tuple[str, int], PinnedTokenizer] = {}
        self._lock = threading.Lock()

    def count(self, spec: Spec, texts: Sequence[str]) -> int:
        """Tokens the model reads for ``texts``: special tokens included, after truncation."""
        key = (spec.tokenizer_sha256, spec.max_length)
        with self._lock:
            tokenizer = self._loaded.get(key)
            if tokenizer is None:
                tokenizer = PinnedTokenizer.from_file(spec.tokenizer_path,
                                                      max_length=spec.max_length)
                self._loaded[key] = tokenizer
        return sum(len(ids) for ids in tokenizer.encode(texts))


class EmbeddingsService:
    """Runs a request as a job under the caller's key and quotas and waits for its receipt."""

    def __init__(self, jobs: JobManager, resolver: ModelResolver) -> None:
        self._jobs = jobs
        self._resolver = resolver
        self._tokenizers = _Tokenizers()

    def spec_of(self, model: str, account_id: str) -> Spec:
        """The spec of a catalog model or of the caller's upload (``model_not_found``)."""
        try:
            spec, _ = self._resolver.by_model_id(model, account_id)
        except InvalidRequestError:
            raise ModelNotFoundError(f"model {model!r} does not exist (GET /v1/models lists "
                                     "the models you can use)") from None
        return spec

    async def embed(self, principal: Principal, model: str, texts: list[str], *,
                    dimensions: int | None, key: str | None) -> CertifiedEmbeddings:
        """Embed ``texts`` as a job and return its rows once it is SETTLED."""
        spec = self.spec_of(model, principal.account.id)
        if dimensions is not None and dimensions != spec.dimensions:
            raise bad_request(f"dimensions: model {model!r} gives {spec.dimensions} dimensions "
                              "and is not trained for truncation; omit dimensions (or pass "
                              f"{spec.dimensions})", field="dimensions")
        _, job = self._jobs.submit(principal, _ModelBody(model, texts), key, utcnow())
        while job.status not in TERMINAL_STATES:
            job = await self._jobs.wait(job.id, principal.account.id, LONG_POLL_CAP)
        if job.status != "SETTLED":
            raise JobFailedError(f"job {job.id} ended {job.status}: {job.error}; no embedding "
                                 "is returned that the server could not certify",
                                 job_id=job.id, job_status=job.status)
        vectors = np.frombuffer(await asyncio.to_thread(b"".join, self._jobs.output(job)),
                                dtype="<f4")
        tokens = await asyncio.to_thread(self._tokenizers.count, spec, texts)
        return CertifiedEmbeddings(job, vectors.reshape(job.input_count, spec.dimensions),
                                   tokens)
