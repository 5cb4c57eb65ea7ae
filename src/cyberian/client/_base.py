"""The shared core of :class:`~cyberian.client.Client` and :class:`~cyberian.client.AsyncClient`.

:class:`BaseClient` holds the configuration, sends one logical request with
its retries (:meth:`BaseClient._request`) and writes every API operation
once, as an :data:`~cyberian.client._steps.Operation` that the sync and the
async client carry out. What it builds on has a module of its own:
``_constants`` (fixed values), ``_credentials`` (key and server URL),
``_retries`` (retry maths), ``_errors`` (status to exception), ``_requests``
(request bodies), ``_responses`` (response parsing) and ``_steps`` (the
steps an operation yields).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeAlias, TypeVar

import httpx
import numpy as np
import numpy.typing as npt

from .._json import loads_json
from .._text import clip
from ..exceptions import (
    ApiError,
    CyberianError,
    JobFailedError,
    NetworkError,
    VerificationFailedError,
)
from ._constants import (
    KEYS_PATH,
    LONG_POLL_CAP,
    LONG_POLL_SLACK,
    NO_RECEIPT,
    TERMINAL_STATES,
    USER_AGENT,
)
from ._credentials import BearerAuth, key_label, resolve_api_key, resolve_base_url
from ._errors import error_body, map_error, network_error
from ._responses import (
    JobResult,
    as_dict,
    as_list,
    decode_output,
    field,
    route_missing,
    trusted_keys_of,
)
from ._retries import backoff_delay, retry_after_of, retry_delay
from ._steps import Notify, Operation, ProgressCallback, Send, Sleep

if TYPE_CHECKING:
    from ..receipts import TrustedKeys, VerifiedReceipt
    from ..signing import PublicKey

__all__ = ["BaseClient", "ReceiptSource"]

_log = logging.getLogger("cyberian.client")

_HttpT = TypeVar("_HttpT", httpx.Client, httpx.AsyncClient)

ReceiptSource: TypeAlias = Mapping[str, Any] | str | bytes
"""A receipt as parsed JSON or as its JSON text (text is parsed strictly: duplicate keys fail)."""


class BaseClient(Generic[_HttpT]):
    """Configuration and every API operation, shared by the sync and the async client."""

    _http_class: ClassVar[type[httpx.Client] | type[httpx.AsyncClient]]
    _http: _HttpT

    def __init__(
        self,
        api_key: str | None,
        *,
        base_url: str | None,
        timeout: float | httpx.Timeout | None,
        http_client: _HttpT | None,
        legacy_http_client: _HttpT | None,
        max_retries: int,
        max_retry_wait: float,
    ) -> None:
        if http_client is not None and legacy_http_client is not None:
            raise TypeError("pass http_client= or _http_client=, not both")
        injected = http_client if http_client is not None else legacy_http_client
        if injected is not None and not isinstance(injected, self._http_class):
            raise TypeError(
                f"{type(self).__name__} needs an {self._http_class.__module__}."
                f"{self._http_class.__qualname__}, got {type(injected).__name__}"
            )
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if max_retry_wait < 0:
            raise ValueError("max_retry_wait must be >= 0")
        # The key lives only inside the auth object; the client keeps its public label.
        self._auth, self._key_label = self._credentials(api_key)
        self._base_url = resolve_base_url(base_url)
        self.max_retries = max_retries
        self.max_retry_wait = float(max_retry_wait)
        self._owns_http = injected is None
        self._http = injected if injected is not None else self._new_http(timeout)
        self._clock: Callable[[], float] = time.monotonic
        self._random = random.Random()  # noqa: S311 -- back-off jitter, not cryptography

    def _credentials(self, api_key: str | None) -> tuple[httpx.Auth, str]:
        """The auth that sends the resolved key, and the key's printable label."""
        key = resolve_api_key(api_key)
        return BearerAuth(key), key_label(key)

    def _new_http(self, timeout: float | httpx.Timeout | None) -> _HttpT:
        raise NotImplementedError

    def _http_options(self, timeout: float | httpx.Timeout | None) -> dict[str, Any]:
        return {
            "base_url": self._base_url,
            "timeout": timeout,
            "headers": {"User-Agent": USER_AGENT},
        }

    @property
    def base_url(self) -> str:
        """The server URL requests go to."""
        own = str(self._http.base_url).rstrip("/")
        return own or self._base_url

    def __repr__(self) -> str:
        return f"{type(self).__name__}(api_key={self._key_label!r})"

    __str__ = __repr__

    def _url(self, path: str) -> str:
        # An injected client keeps its own base URL; one without a base URL gets ours.
        return path if self._http.base_url.host else self._base_url + path

    # -- one logical request, with retries ---------------------------------------

    def _retry_delay(
        self,
        attempt: int,
        *,
        status: int | None = None,
        transport_error: httpx.RequestError | None = None,
        retry_after: float | None = None,
        replay_safe: bool = True,
    ) -> float | None:
        """Seconds to wait before retrying, or ``None`` to give up and raise."""
        return retry_delay(
            attempt,
            max_retries=self.max_retries,
            max_retry_wait=self.max_retry_wait,
            jitter=self._random.random,
            status=status,
            transport_error=transport_error,
            retry_after=retry_after,
            replay_safe=replay_safe,
        )

    def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        params: Mapping[str, str | int] | None = None,
        authenticated: bool = True,
        idempotency_key: str | None = None,
        replay_safe: bool = True,
        timeout: float | httpx.Timeout | None = None,
    ) -> Operation[httpx.Response]:
        headers: dict[str, str] = {}
        options: dict[str, Any] = {"headers": headers}
        if authenticated:
            options["auth"] = self._auth
        if json_body is not None:
            options["json"] = json_body
        if content is not None:
            options["content"] = content
            headers["Content-Type"] = "application/octet-stream"
        if params:
            options["params"] = dict(params)
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        if timeout is not None:
            options["timeout"] = timeout
        step = Send(method, self._url(path), options)
        attempt = 0
        while True:
            outcome = yield step
            error: CyberianError
            if isinstance(outcome, httpx.Response):
                if outcome.status_code < 400:
                    return outcome
                body = error_body(outcome)
                retry_after = retry_after_of(outcome.headers, body)
                error = map_error(
                    outcome.status_code,
                    body,
                    path=path,
                    retry_after=retry_after,
                    reason_phrase=outcome.reason_phrase,
                )
                delay = self._retry_delay(
                    attempt,
                    status=outcome.status_code,
                    retry_after=retry_after,
                    replay_safe=replay_safe,
                )
            elif isinstance(outcome, httpx.RequestError):
                error = network_error(method, path, outcome)
                delay = self._retry_delay(attempt, transport_error=outcome, replay_safe=replay_safe)
            else:  # pragma: no cover - a driver bug
                raise TypeError(f"a Send step got {outcome!r}")
            if delay is None:
                raise error
            attempt += 1
            _log.info(
                "retrying %s %s in %.2fs (retry %d of %d): %s",
                method,
                path,
                delay,
                attempt,
                self.max_retries,
                error.message,
            )
            yield Sleep(delay)

    def _json(self, method: str, path: str, **kwargs: Any) -> Operation[Any]:
        response = yield from self._request(method, path, **kwargs)
        if 300 <= response.status_code < 400:  # redirects are not followed: say so
            target = clip(response.headers.get("location", "nowhere"), 200)
            raise ApiError(f"a redirect to {target}, not followed (use the final URL)",
                           status_code=response.status_code)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return loads_json(response.content)
        except ValueError as exc:
            raise ApiError(
                f"the response to {method} {path} is not JSON ({clip(str(exc), 120)})",
                status_code=response.status_code,
            ) from None

    def _object(self, method: str, path: str, **kwargs: Any) -> Operation[dict[str, Any]]:
        value = yield from self._json(method, path, **kwargs)
        return as_dict(value, f"{method} {path}")

    # -- operations (one per public method) --------------------------------------

    def _op_health(self) -> Operation[dict[str, Any]]:
        return (yield from self._object("GET", "/health", authenticated=False))

    def _op_get_keys(self, path: str = KEYS_PATH) -> Operation[dict[str, Any]]:
        # The one GET of a /keys document: get_keys, the offline check and
        # fetch_trusted_keys all come here.
        return (yield from self._object("GET", path, authenticated=False))

    def _op_trusted_keys(self, path: str = KEYS_PATH) -> Operation[dict[str, PublicKey]]:
        return trusted_keys_of((yield from self._op_get_keys(path)))

    def _op_get_account(self) -> Operation[dict[str, Any]]:
        return (yield from self._object("GET", "/account"))

    def _op_rotate_key(self) -> Operation[str]:
        # Minting twice would leave a live key nobody has seen: retry only
        # what the server provably never processed.
        body = yield from self._object("POST", "/auth/keys/rotate", replay_safe=False)
        return str(field(body, "api_key", "the rotate-key response"))

    def _op_revoke_key(self, key_id: str) -> Operation[None]:
        yield from self._request("POST", "/auth/keys/revoke", json_body={"key_id": key_id})

    def _op_list_models(self) -> Operation[list[dict[str, Any]]]:
        return as_list((yield from self._json("GET", "/models")), "models")

    def _op_upload_model(
        self, data: bytes, params: Mapping[str, str | int], timeout: float | None
    ) -> Operation[dict[str, Any]]:
        return (
            yield from self._object(
                "POST", "/models/upload", content=data, params=params, timeout=timeout
            )
        )

    def _op_list_uploaded_models(self) -> Operation[list[dict[str, Any]]]:
        return as_list((yield from self._json("GET", "/models/uploads")), "models")

    def _op_delete_model(self, model_id: str) -> Operation[None]:
        yield from self._request("DELETE", f"/models/{model_id}")

    def _op_submit_job(self, body: Mapping[str, Any]) -> Operation[dict[str, Any]]:
        return (
            yield from self._object(
                "POST", "/jobs", json_body=body, idempotency_key=str(uuid.uuid4())
            )
        )

    def _op_get_job(self, job_id: str) -> Operation[dict[str, Any]]:
        return (yield from self._object("GET", f"/jobs/{job_id}"))

    def _op_get_job_results(self, job_id: str) -> Operation[dict[str, Any]]:
        return (yield from self._object("GET", f"/jobs/{job_id}/results"))

    def _op_get_job_output(self, job_id: str) -> Operation[npt.NDArray[np.float32]]:
        return decode_output((yield from self._request("GET", f"/jobs/{job_id}/output")))

    def _op_get_receipt(self, receipt_id: str) -> Operation[dict[str, Any]]:
        return (yield from self._object("GET", f"/receipts/{receipt_id}"))

    def _op_verify_receipt(self, receipt_id: str) -> Operation[dict[str, Any]]:
        return (yield from self._object("GET", f"/receipts/{receipt_id}/verify"))

    def _op_verify_receipt_offline(
        self, receipt: ReceiptSource, keys: TrustedKeys | None
    ) -> Operation[VerifiedReceipt]:
        # Imported here: the client loads the verification stack only when asked to.
        from ..receipts import verify_receipt  # noqa: PLC0415

        if keys is None:
            keys = yield from self._op_trusted_keys()
        return verify_receipt(receipt, keys)

    def _op_verify_outputs(self, body: Mapping[str, Any]) -> Operation[dict[str, Any]]:
        return (
            yield from self._object(
                "POST", "/verify", json_body=body, idempotency_key=str(uuid.uuid4())
            )
        )

    def _long_poll_timeout(self, max_wait: int) -> httpx.Timeout | None:
        """A per-request timeout that outlasts the server's hold, when the default would not."""
        current = self._http.timeout
        needed = max_wait + LONG_POLL_SLACK
        if current.read is None or current.read >= needed:
            return None
        return httpx.Timeout(
            connect=current.connect, read=needed, write=current.write, pool=current.pool
        )

    def _op_wait(
        self,
        job_id: str,
        *,
        poll_interval_sec: float,
        timeout_sec: float,
        check_every_sec: float,
        on_progress: ProgressCallback | None,
    ) -> Operation[dict[str, Any]]:
        deadline = self._clock() + timeout_sec
        long_poll = True
        failures = 0
        last_status: Any = None
        while True:
            try:
                if long_poll:
                    max_wait = min(LONG_POLL_CAP, max(1, int(deadline - self._clock())))
                    job = yield from self._object(
                        "GET",
                        f"/jobs/{job_id}/wait",
                        params={"max_wait": max_wait},
                        timeout=self._long_poll_timeout(max_wait),
                    )
                else:
                    job = yield from self._op_get_job(job_id)
            except NetworkError:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise
                yield Sleep(min(backoff_delay(failures, self._random.random()), remaining))
                failures += 1
                continue
            except ApiError as error:
                if long_poll and route_missing(error):
                    _log.info("the server has no long-poll route; polling GET /jobs/%s", job_id)
                    long_poll = False
                    continue
                raise
            failures = 0
            if on_progress is not None:
                yield Notify(on_progress, job)
            last_status = job.get("status")
            if last_status in TERMINAL_STATES:
                if last_status == "FAILED":
                    raise JobFailedError(job_id, body=job)
                return job
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise CyberianError(
                    f"Job {job_id} did not reach a terminal state in {timeout_sec}s "
                    f"(last status: {last_status})",
                    body=job,
                )
            pause = min(check_every_sec if long_poll else poll_interval_sec, remaining)
            if pause > 0:
                yield Sleep(pause)

    def _op_submit_and_wait(
        self,
        body: Mapping[str, Any],
        *,
        poll_interval_sec: float,
        timeout_sec: float,
        check_every_sec: float,
        verify_receipt: bool,
        on_progress: ProgressCallback | None,
    ) -> Operation[JobResult]:
        job = yield from self._op_submit_job(body)
        job_id = str(field(job, "id", "the submit response"))
        final = yield from self._op_wait(
            job_id,
            poll_interval_sec=poll_interval_sec,
            timeout_sec=timeout_sec,
            check_every_sec=check_every_sec,
            on_progress=on_progress,
        )
        if final.get("status") != "SETTLED":  # REFUNDED: the replay disagreed or it was abandoned
            reason = final.get("error") or f"job {job_id} ended {final.get('status')}"
            raise VerificationFailedError(NO_RECEIPT, {"replay_match": False}, [reason], body=final)
        receipt_id = str(field(final, "receipt_id", "the settled job"))
        receipt = yield from self._op_get_receipt(receipt_id)
        verification = None
        if verify_receipt:
            verification = yield from self._op_verify_receipt(receipt_id)
            if verification.get("valid") is not True:
                raise VerificationFailedError(
                    receipt_id,
                    verification.get("checks", {}),
                    verification.get("errors", []),
                    body=verification,
                )
        embeddings = yield from self._op_get_job_output(job_id)
        return JobResult(
            job=final, receipt=receipt, embeddings=embeddings, verification=verification
        )
