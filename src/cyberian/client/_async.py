"""The async client, :class:`AsyncClient` (alias ``AsyncCyberian``), on ``httpx.AsyncClient``."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

import anyio
import anyio.to_thread
import httpx
import numpy as np
import numpy.typing as npt

from ._base import BaseClient, ReceiptSource
from ._constants import DEFAULT_MAX_RETRIES, DEFAULT_MAX_RETRY_WAIT, DEFAULT_TIMEOUT
from ._requests import SpecSource, UploadSource, job_body, read_upload, upload_params, verify_body
from ._responses import JobResult
from ._steps import Operation, Outcome, ProgressCallback, Send, Sleep, Step

if TYPE_CHECKING:
    from ..receipts import TrustedKeys, VerifiedReceipt

__all__ = ["AsyncClient"]

_T = TypeVar("_T")


class AsyncClient(BaseClient[httpx.AsyncClient]):
    """Async client of the cyberian verifier API: :class:`~cyberian.client.Client` with awaitables.

    ``api_key`` defaults to ``$CYBERIAN_API_KEY`` and ``base_url`` to
    ``$CYBERIAN_API_BASE``, then ``http://127.0.0.1:8080``. An injected
    ``http_client`` (or the legacy ``_http_client``) is used as is -- base URL,
    headers and all -- and is never closed by this client. Transport errors
    and 408/429/502/503/504 answers are retried up to ``max_retries`` times;
    a ``Retry-After`` longer than ``max_retry_wait`` seconds raises at once.
    """

    _http_class: ClassVar[type[httpx.AsyncClient]] = httpx.AsyncClient

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        http_client: httpx.AsyncClient | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT,
        _http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            api_key,
            base_url=base_url,
            timeout=timeout,
            http_client=http_client,
            legacy_http_client=_http_client,
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
        )
        self._sleep: Callable[[float], Awaitable[None]] = anyio.sleep

    def _new_http(self, timeout: float | httpx.Timeout | None) -> httpx.AsyncClient:
        return httpx.AsyncClient(**self._http_options(timeout))

    async def _perform(self, step: Step) -> Outcome:
        if isinstance(step, Send):
            try:
                return await self._http.request(step.method, step.url, **step.options)
            except httpx.RequestError as error:
                return error
        if isinstance(step, Sleep):
            await self._sleep(step.seconds)
        else:
            returned = step.callback(step.job)
            if inspect.isawaitable(returned):
                await returned
        return None

    async def _run(self, operation: Operation[_T]) -> _T:
        outcome: Outcome = None
        while True:
            try:
                step = operation.send(outcome)
            except StopIteration as stop:
                result: _T = stop.value
                return result
            outcome = await self._perform(step)

    # -- lifecycle ---------------------------------------------------------------

    async def close(self) -> None:
        """Release the connection pool (an injected ``http_client`` is left open)."""
        if self._owns_http:
            await self._http.aclose()

    async def aclose(self) -> None:
        """Same as :meth:`close` (the httpx spelling)."""
        await self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    # -- service, account and keys ----------------------------------------------

    async def health(self) -> dict[str, Any]:
        """The server's liveness document, ``{"ok": true, "service", "version"}`` (no key sent)."""
        return await self._run(self._op_health())

    async def get_keys(self) -> dict[str, Any]:
        """The server's public receipt-signing keys, ``{"keys": [...]}`` (no key sent)."""
        return await self._run(self._op_get_keys())

    async def get_account(self) -> dict[str, Any]:
        """The account's tier, usage, limits and keys."""
        return await self._run(self._op_get_account())

    async def rotate_key(self) -> str:
        """Mint another API key and return it; existing keys stay valid until revoked."""
        return await self._run(self._op_rotate_key())

    async def revoke_key(self, *, key_id: str) -> None:
        """Revoke the key whose public ``key_id`` is given (idempotent)."""
        await self._run(self._op_revoke_key(key_id))

    # -- models ------------------------------------------------------------------

    async def list_models(self) -> list[dict[str, Any]]:
        """The model catalog visible to this account (each entry has at least ``id``, ``name``)."""
        return await self._run(self._op_list_models())

    async def upload_model(
        self,
        file: UploadSource,
        name: str,
        output_dimensions: int,
        tokenizer: str,
        *,
        max_sequence_length: int | None = None,
        pooling_strategy: str | None = None,
        normalize: bool | None = None,
        description: str | None = None,
        timeout: float = 600.0,
    ) -> dict[str, Any]:
        """Register an ONNX model (a path or its bytes; enterprise tier).

        Returns ``{"model_id", "hash", "size_bytes", "stored_at", "ready_for_use"}``;
        uploading the same bytes and name again returns the existing model.
        """
        # A model file can be large: read it off the event loop.
        data = (
            bytes(file)
            if isinstance(file, bytes | bytearray | memoryview)
            else await anyio.to_thread.run_sync(read_upload, file)
        )
        params = upload_params(
            name=name,
            output_dimensions=output_dimensions,
            tokenizer=tokenizer,
            max_sequence_length=max_sequence_length,
            pooling_strategy=pooling_strategy,
            normalize=normalize,
            description=description,
        )
        return await self._run(self._op_upload_model(data, params, timeout))

    async def list_uploaded_models(self) -> list[dict[str, Any]]:
        """This account's uploaded models."""
        return await self._run(self._op_list_uploaded_models())

    async def delete_model(self, model_id: str) -> None:
        """Soft-delete an uploaded model (:class:`ApiError` 409 while a job uses it)."""
        await self._run(self._op_delete_model(model_id))

    # -- jobs --------------------------------------------------------------------

    async def submit_job(
        self,
        *,
        model: str | None = None,
        inputs: Sequence[str] | None = None,
        spec_yaml: SpecSource | None = None,
        input_texts: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Submit a batch, ``model``+``inputs`` or ``spec_yaml``+``input_texts``; returns the job.

        ``spec_yaml`` is CES text, a :class:`~pathlib.Path` or the name of a CES file.
        """
        body = job_body(model=model, inputs=inputs, spec_yaml=spec_yaml, input_texts=input_texts)
        return await self._run(self._op_submit_job(body))

    async def get_job(self, job_id: str) -> dict[str, Any]:
        """The job's current state (``id``, ``status``, ``receipt_id`` once SETTLED, ...)."""
        return await self._run(self._op_get_job(job_id))

    async def get_job_results(self, job_id: str) -> dict[str, Any]:
        """Per-chunk progress and commitments, ``{"chunks": [...]}``."""
        return await self._run(self._op_get_job_results(job_id))

    async def get_job_output(self, job_id: str) -> npt.NDArray[np.float32]:
        """The settled job's embeddings as a writable ``(rows, dimensions)`` float32 array."""
        return await self._run(self._op_get_job_output(job_id))

    async def wait_for_completion(
        self,
        job_id: str,
        *,
        poll_interval_sec: float = 2.0,
        timeout_sec: float = 600.0,
        check_every_sec: float = 0.0,
        on_progress: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        """Wait until the job is SETTLED or REFUNDED and return it.

        Long-polls the server (or polls every ``poll_interval_sec`` when it has
        no long-poll route), pausing ``check_every_sec`` between long polls and
        calling ``on_progress`` with every state seen. Raises
        :class:`JobFailedError` on FAILED and :class:`CyberianError` when
        ``timeout_sec`` passes first.
        """
        return await self._run(
            self._op_wait(
                job_id,
                poll_interval_sec=poll_interval_sec,
                timeout_sec=timeout_sec,
                check_every_sec=check_every_sec,
                on_progress=on_progress,
            )
        )

    async def submit_and_wait(
        self,
        *,
        model: str | None = None,
        inputs: Sequence[str] | None = None,
        spec_yaml: SpecSource | None = None,
        input_texts: Sequence[str] | None = None,
        check_every_sec: float = 0.0,
        timeout_sec: float = 600.0,
        verify_receipt: bool = True,
        poll_interval_sec: float = 2.0,
        on_progress: ProgressCallback | None = None,
    ) -> JobResult:
        """Submit a batch, wait for it, and return its job, receipt, embeddings and verification.

        Raises :class:`VerificationFailedError` when the job was REFUNDED or,
        with ``verify_receipt``, when the server's receipt check is not valid.
        """
        body = job_body(model=model, inputs=inputs, spec_yaml=spec_yaml, input_texts=input_texts)
        return await self._run(
            self._op_submit_and_wait(
                body,
                poll_interval_sec=poll_interval_sec,
                timeout_sec=timeout_sec,
                check_every_sec=check_every_sec,
                verify_receipt=verify_receipt,
                on_progress=on_progress,
            )
        )

    # -- receipts and verification -----------------------------------------------

    async def get_receipt(self, receipt_id: str) -> dict[str, Any]:
        """The full receipt JSON."""
        return await self._run(self._op_get_receipt(receipt_id))

    async def verify_receipt(self, receipt_id: str) -> dict[str, Any]:
        """The server's re-check of a receipt: ``{"valid", "checks", "errors"}``."""
        return await self._run(self._op_verify_receipt(receipt_id))

    async def verify_receipt_offline(
        self, receipt: ReceiptSource, *, keys: TrustedKeys | None = None
    ) -> VerifiedReceipt:
        """Check a receipt locally with :func:`cyberian.receipts.verify_receipt`.

        ``receipt`` is the receipt JSON (text is parsed strictly) or its parsed
        object. ``keys`` are the trusted signing keys; when omitted they are
        fetched from the server's ``/keys`` -- which trusts that server, so
        pass keys obtained out of band for an independent check. Returns the
        :class:`~cyberian.receipts.VerifiedReceipt`; raises
        :class:`~cyberian.exceptions.ReceiptVerificationError`.
        """
        return await self._run(self._op_verify_receipt_offline(receipt, keys))

    async def verify_outputs(
        self,
        *,
        model: str | None = None,
        inputs: Sequence[str] | None = None,
        spec_yaml: SpecSource | None = None,
        input_texts: Sequence[str] | None = None,
        claimed_output_commitment: str | None = None,
        claimed_output_commitments: Sequence[str] | None = None,
        environment: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Have the server verify outputs you computed yourself; returns its receipt.

        Give exactly one of ``claimed_output_commitment`` (one block) or
        ``claimed_output_commitments`` (one per block). ``environment`` is your
        run's environment manifest (``Proof.manifest``): a verifier whose CPU class
        cannot reproduce yours then answers :class:`CpuClassMismatchError` before
        doing any work. Raises :class:`VerificationFailedError` when the server's
        result differs.
        """
        body = verify_body(
            model=model,
            inputs=inputs,
            spec_yaml=spec_yaml,
            input_texts=input_texts,
            claimed_output_commitment=claimed_output_commitment,
            claimed_output_commitments=claimed_output_commitments,
            environment=environment,
        )
        return await self._run(self._op_verify_outputs(body))
