"""The shared core of :class:`~cyberian.client.Client` and :class:`~cyberian.client.AsyncClient`.

Everything that is not I/O lives here: configuration, request building for
every route, error mapping, retry and back-off maths, idempotency keys,
output decoding and the long-poll / polling logic of ``wait_for_completion``.

Each API operation is written once, as a generator that yields the steps it
needs done -- :class:`Send` one HTTP request, :class:`Sleep`, :class:`Notify`
a progress callback -- and is resumed with their outcome. The sync and the
async client only carry those steps out (their ``_run``), so the two can't
drift apart.
"""

from __future__ import annotations

import email.utils
import logging
import math
import os
import random
import time
import uuid
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, TypeAlias, TypeVar

import httpx
import numpy as np
import numpy.typing as npt

from .._version import __version__
from ..exceptions import (
    ApiError,
    AuthError,
    CyberianError,
    JobFailedError,
    NetworkError,
    QuotaError,
    RateLimitError,
    ServiceBusyError,
    TrialExpiredError,
    VerificationFailedError,
)

DEFAULT_BASE_URL: Final = "http://127.0.0.1:8080"
API_KEY_ENV: Final = "CYBERIAN_API_KEY"
BASE_URL_ENV: Final = "CYBERIAN_API_BASE"
KEY_PREFIX: Final = "cyb_"
USER_AGENT: Final = f"cyberian-python/{__version__}"

DEFAULT_TIMEOUT: Final = 60.0
DEFAULT_MAX_RETRIES: Final = 2
DEFAULT_MAX_RETRY_WAIT: Final = 10.0

RETRY_STATUSES: Final = frozenset({408, 429, 502, 503, 504})
"""Statuses retried automatically (the request may succeed when sent again)."""
_MAYBE_PROCESSED: Final = frozenset({502, 504})
"""Gateway errors: the server may have acted on the request before the proxy gave up."""
BACKOFF_BASE: Final = 0.5
BACKOFF_CAP: Final = 8.0
BACKOFF_JITTER: Final = 0.25

LONG_POLL_CAP: Final = 30
"""The server holds ``/jobs/{id}/wait`` at most this many seconds."""
_LONG_POLL_SLACK: Final = 10.0
TERMINAL_STATES: Final = frozenset({"SETTLED", "FAILED", "REFUNDED"})
NO_RECEIPT: Final = "(no receipt issued)"

if TYPE_CHECKING:
    from ..receipts import TrustedKeys, VerifiedReceipt

_log = logging.getLogger("cyberian.client")

_T = TypeVar("_T")
_HttpT = TypeVar("_HttpT", httpx.Client, httpx.AsyncClient)

ProgressCallback: TypeAlias = Callable[[dict[str, Any]], object]
"""Called with every job state observed while waiting (an async client awaits awaitables)."""
SpecSource: TypeAlias = str | os.PathLike[str]
UploadSource: TypeAlias = str | os.PathLike[str] | bytes | bytearray | memoryview
ReceiptSource: TypeAlias = Mapping[str, Any] | str | bytes
"""A receipt as parsed JSON or as its JSON text (text is parsed strictly: duplicate keys fail)."""


@dataclass
class JobResult:
    """What ``submit_and_wait`` returns: the settled job, its receipt, the embeddings and the
    server-side receipt check (``None`` when it was not asked for)."""

    job: dict[str, Any]
    receipt: dict[str, Any]
    embeddings: npt.NDArray[np.float32]
    verification: dict[str, Any] | None = None


# -- the steps an operation asks its client to carry out -----------------------


@dataclass(frozen=True, eq=False)
class Send:
    """Step: send one HTTP request; ``options`` are keyword arguments of ``httpx``'s ``request``."""

    method: str
    url: str
    options: dict[str, Any]


@dataclass(frozen=True)
class Sleep:
    """Step: pause for ``seconds``."""

    seconds: float


@dataclass(frozen=True, eq=False)
class Notify:
    """Step: hand an observed job state to the caller's progress callback."""

    callback: ProgressCallback
    job: dict[str, Any]


Step: TypeAlias = Send | Sleep | Notify
Outcome: TypeAlias = httpx.Response | httpx.RequestError | None
"""What a step produced: the response or transport error of a :class:`Send`, else ``None``."""
Operation: TypeAlias = Generator[Step, Outcome, _T]


# -- configuration --------------------------------------------------------------


class _BearerAuth(httpx.Auth):
    """Adds ``Authorization: Bearer <key>`` to one request; its repr never shows the key."""

    def __init__(self, key: str) -> None:
        self.__key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Set the Authorization header on ``request``."""
        request.headers["Authorization"] = f"Bearer {self.__key}"
        yield request

    def __repr__(self) -> str:
        return "<BearerAuth [redacted]>"

    def __reduce__(self) -> str | tuple[Any, ...]:
        raise TypeError("a cyberian client holds an API key and is not pickled")


def resolve_api_key(api_key: str | None) -> str:
    """The key to use: ``api_key``, else ``$CYBERIAN_API_KEY``; :class:`AuthError` if unusable."""
    key = (api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")).strip()
    # The message never quotes the key: a near-miss is still a secret.
    if not key.startswith(KEY_PREFIX):
        raise AuthError(
            "api_key must be a cyberian key (it starts with cyb_): pass Client(api_key=...) "
            f"or set {API_KEY_ENV}"
        )
    if not (key.isascii() and key.isprintable()) or " " in key:
        raise AuthError("api_key contains characters a cyberian key never has")
    return key


def key_label(key: str) -> str:
    """The public part of a key, ``cyb_<label>_…``, safe to print."""
    parts = key.split("_", 2)
    # split, not rsplit: the random part may itself contain "_".
    return f"{KEY_PREFIX}{parts[1]}_…" if len(parts) == 3 and parts[1] else f"{KEY_PREFIX}…"


def resolve_base_url(base_url: str | None) -> str:
    """The server URL: ``base_url``, else ``$CYBERIAN_API_BASE``, else the local default."""
    return (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")


# -- retry maths ----------------------------------------------------------------


def backoff_delay(attempt: int, unit: float) -> float:
    """Seconds to wait before retry number ``attempt + 1``.

    ``0.5 s * 2**attempt`` capped at 8 s, then scaled by a jitter of ±25 %
    chosen by ``unit`` in [0, 1).
    """
    base = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** min(attempt, 64))
    return base * (1.0 - BACKOFF_JITTER + 2.0 * BACKOFF_JITTER * unit)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds named by a ``Retry-After`` header (delta-seconds or an HTTP-date), or ``None``."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def retry_after_of(headers: httpx.Headers, body: Mapping[str, Any]) -> float | None:
    """Seconds the server asked us to wait: ``Retry-After``, else the body's ``retry_after_sec``."""
    seconds = parse_retry_after(headers.get("retry-after"))
    if seconds is not None:
        return seconds
    value = body.get("retry_after_sec")
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return max(0.0, float(value))
    return None


def _retryable_transport_error(error: httpx.RequestError, *, replay_safe: bool) -> bool:
    if not replay_safe:
        # Only retry when the request provably never reached the server.
        return isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    return isinstance(
        error,
        httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError | httpx.ProxyError,
    )


# -- error mapping --------------------------------------------------------------


def error_body(response: httpx.Response) -> dict[str, Any]:
    """The parsed JSON object of an error response, or ``{"raw": <text>}`` when it is not one."""
    try:
        body = response.json()
    except ValueError:
        body = None
    return body if isinstance(body, dict) else {"raw": response.text}


def map_error(
    status: int,
    body: Mapping[str, Any],
    *,
    path: str,
    retry_after: float | None = None,
    reason_phrase: str = "",
) -> CyberianError:
    """The exception for an HTTP error ``status`` with ``body`` (the API.md table)."""
    plain = dict(body)
    message = next(
        (v for v in (body.get("message"), body.get("error")) if isinstance(v, str) and v),
        f"HTTP {status} {reason_phrase}".rstrip(),
    )
    if status in (401, 403):
        return AuthError(message, status_code=status, body=plain)
    if status == 402:
        code = body.get("error")
        if isinstance(code, str) and "trial" in code.lower():
            return TrialExpiredError(message, status_code=status, body=plain)
        return QuotaError(message, status_code=status, body=plain)
    if status == 413:
        return QuotaError(message, status_code=status, body=plain)
    if status == 422 and path == "/verify":
        reason = body.get("reason") or message
        return VerificationFailedError(
            NO_RECEIPT, {"output_match": False}, [reason], status_code=status, body=plain
        )
    if status == 429:
        wait = 60.0 if retry_after is None else retry_after
        return RateLimitError(message, retry_after_sec=wait, status_code=status, body=plain)
    if status == 503:
        wait = 30.0 if retry_after is None else retry_after
        return ServiceBusyError(message, retry_after_sec=wait, status_code=status, body=plain)
    return ApiError(message, status_code=status, body=plain)


def network_error(method: str, path: str, error: httpx.RequestError) -> NetworkError:
    """A :class:`NetworkError` describing ``error`` (deliberately not chained to it: the
    httpx error holds the request, and so the Authorization header)."""
    return NetworkError(f"network error on {method} {path}: {type(error).__name__}: {error}")


# -- request bodies -------------------------------------------------------------


def read_spec_yaml(spec_yaml: SpecSource) -> str:
    """CES text from YAML text, a :class:`~pathlib.Path`, or a string naming an existing file."""
    if not isinstance(spec_yaml, str):
        return Path(spec_yaml).read_text(encoding="utf-8")
    if "\n" in spec_yaml or not spec_yaml.strip():
        return spec_yaml
    candidate = Path(spec_yaml.strip()).expanduser()
    try:
        is_file = candidate.is_file()
    except (OSError, ValueError):  # too long, NUL byte: not a path
        is_file = False
    if is_file:
        return candidate.read_text(encoding="utf-8")
    if candidate.suffix.lower() in (".yaml", ".yml"):
        raise FileNotFoundError(f"spec file not found: {spec_yaml}")
    return spec_yaml


def _text_list(values: Sequence[str], name: str) -> list[str]:
    if isinstance(values, str | bytes):
        raise TypeError(f"{name} must be a list of strings, not a single string")
    return list(values)


def job_body(
    *,
    model: str | None,
    inputs: Sequence[str] | None,
    spec_yaml: SpecSource | None,
    input_texts: Sequence[str] | None,
) -> dict[str, Any]:
    """The JSON body of a job in exactly one dialect: ``model``+``inputs`` or
    ``spec_yaml``+``input_texts``; :class:`ValueError` otherwise."""
    spec_dialect = spec_yaml is not None or input_texts is not None
    model_dialect = model is not None or inputs is not None
    if spec_dialect == model_dialect:
        raise ValueError(
            "pass either model= and inputs= or spec_yaml= and input_texts= (exactly one dialect)"
        )
    if spec_dialect:
        if spec_yaml is None or input_texts is None:
            raise ValueError("spec_yaml= and input_texts= must be given together")
        return {
            "spec_yaml": read_spec_yaml(spec_yaml),
            "input_texts": _text_list(input_texts, "input_texts"),
        }
    if model is None or inputs is None:
        raise ValueError("model= and inputs= must be given together")
    return {"model": model, "inputs": _text_list(inputs, "inputs")}


def verify_body(
    *,
    model: str | None,
    inputs: Sequence[str] | None,
    spec_yaml: SpecSource | None,
    input_texts: Sequence[str] | None,
    claimed_output_commitment: str | None,
    claimed_output_commitments: Sequence[str] | None,
) -> dict[str, Any]:
    """The JSON body of ``POST /verify``: a job body plus exactly one kind of claim."""
    if (claimed_output_commitment is None) == (claimed_output_commitments is None):
        raise ValueError(
            "pass exactly one of claimed_output_commitment (one block) or "
            "claimed_output_commitments (one per block)"
        )
    body = job_body(model=model, inputs=inputs, spec_yaml=spec_yaml, input_texts=input_texts)
    if claimed_output_commitments is not None:
        body["claimed_output_commitments"] = _text_list(
            claimed_output_commitments, "claimed_output_commitments"
        )
    else:
        body["claimed_output_commitment"] = claimed_output_commitment
    return body


def read_upload(file: UploadSource) -> bytes:
    """The bytes of an ONNX model given as bytes or as a file path."""
    if isinstance(file, bytes | bytearray | memoryview):
        return bytes(file)
    return Path(file).read_bytes()


def upload_params(
    *,
    name: str,
    output_dimensions: int,
    tokenizer: str,
    max_sequence_length: int | None,
    pooling_strategy: str | None,
    normalize: bool | None,
    description: str | None,
) -> dict[str, str | int]:
    """Query parameters of ``POST /models/upload`` (optional ones only when given)."""
    params: dict[str, str | int] = {
        "name": name,
        "output_dimensions": int(output_dimensions),
        "tokenizer": tokenizer,
    }
    if max_sequence_length is not None:
        params["max_sequence_length"] = int(max_sequence_length)
    if pooling_strategy is not None:
        params["pooling_strategy"] = pooling_strategy
    if normalize is not None:
        params["normalize"] = "true" if normalize else "false"
    if description is not None:
        params["description"] = description
    return params


# -- response decoding ----------------------------------------------------------


def decode_output(response: httpx.Response) -> npt.NDArray[np.float32]:
    """The ``(rows, cols)`` float32 array of a ``/jobs/{id}/output`` response (a writable copy)."""
    status = response.status_code
    dtype = response.headers.get("x-cyberian-dtype", "float32").strip().lower()
    if dtype != "float32":
        raise ApiError(f"unsupported x-cyberian-dtype {dtype!r}", status_code=status)
    shape = response.headers.get("x-cyberian-shape", "")
    try:
        rows, cols = (int(part) for part in shape.split(","))
    except ValueError:
        raise ApiError(
            f"unexpected x-cyberian-shape header: {shape!r}", status_code=status
        ) from None
    if rows < 0 or cols < 0 or len(response.content) != rows * cols * 4:
        raise ApiError(
            f"output is {len(response.content)} bytes, not the {rows}x{cols} float32 "
            "its x-cyberian-shape announces",
            status_code=status,
        )
    array = np.frombuffer(response.content, dtype="<f4").reshape(rows, cols)
    return array.astype(np.float32)  # a native-order, writable copy


def _as_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ApiError(f"expected a JSON object from {what}, got {type(value).__name__}")
    return value


def _as_list(value: Any, key: str) -> list[dict[str, Any]]:
    items = value.get(key, []) if isinstance(value, dict) else []
    return items if isinstance(items, list) else []


def _field(value: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in value:
        raise ApiError(f"{what} lacks {key!r}", body=dict(value))
    return value[key]


def _route_missing(error: ApiError) -> bool:
    """Whether a 404/405 came from a server without the route (not our JSON error body)."""
    body = error.body
    return error.status_code in (404, 405) and not (isinstance(body, dict) and "error" in body)


# -- the shared client ----------------------------------------------------------


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
        key = resolve_api_key(api_key)
        # The key lives only inside the auth object; the client keeps its public label.
        self._auth = _BearerAuth(key)
        self._key_label = key_label(key)
        self._base_url = resolve_base_url(base_url)
        self.max_retries = max_retries
        self.max_retry_wait = float(max_retry_wait)
        self._owns_http = injected is None
        self._http = injected if injected is not None else self._new_http(timeout)
        self._clock: Callable[[], float] = time.monotonic
        self._random = random.Random()  # noqa: S311 -- back-off jitter, not cryptography

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
        if attempt >= self.max_retries:
            return None
        if transport_error is not None:
            if not _retryable_transport_error(transport_error, replay_safe=replay_safe):
                return None
        elif status not in RETRY_STATUSES or (not replay_safe and status in _MAYBE_PROCESSED):
            return None
        if retry_after is not None:
            # A long Retry-After is the caller's decision, not ours.
            return retry_after if retry_after <= self.max_retry_wait else None
        return backoff_delay(attempt, self._random.random())

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
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ApiError(
                f"the response to {method} {path} is not JSON", status_code=response.status_code
            ) from None

    def _object(self, method: str, path: str, **kwargs: Any) -> Operation[dict[str, Any]]:
        value = yield from self._json(method, path, **kwargs)
        return _as_dict(value, f"{method} {path}")

    # -- operations (one per public method) --------------------------------------

    def _op_health(self) -> Operation[dict[str, Any]]:
        return (yield from self._object("GET", "/health", authenticated=False))

    def _op_get_keys(self) -> Operation[dict[str, Any]]:
        return (yield from self._object("GET", "/keys", authenticated=False))

    def _op_get_account(self) -> Operation[dict[str, Any]]:
        return (yield from self._object("GET", "/account"))

    def _op_rotate_key(self) -> Operation[str]:
        # Minting twice would leave a live key nobody has seen: retry only
        # what the server provably never processed.
        body = yield from self._object("POST", "/auth/keys/rotate", replay_safe=False)
        return str(_field(body, "api_key", "the rotate-key response"))

    def _op_revoke_key(self, key_id: str) -> Operation[None]:
        yield from self._request("POST", "/auth/keys/revoke", json_body={"key_id": key_id})

    def _op_list_models(self) -> Operation[list[dict[str, Any]]]:
        return _as_list((yield from self._json("GET", "/models")), "models")

    def _op_upload_model(
        self, data: bytes, params: Mapping[str, str | int], timeout: float | None
    ) -> Operation[dict[str, Any]]:
        return (
            yield from self._object(
                "POST", "/models/upload", content=data, params=params, timeout=timeout
            )
        )

    def _op_list_uploaded_models(self) -> Operation[list[dict[str, Any]]]:
        return _as_list((yield from self._json("GET", "/models/uploads")), "models")

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
        from ..signing import parse_keys_document  # noqa: PLC0415

        if keys is None:
            document = yield from self._op_get_keys()
            try:
                keys = parse_keys_document(document)
            except ValueError as error:
                raise ApiError(
                    f"the server's /keys document is unusable: {error}", body=document
                ) from None
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
        needed = max_wait + _LONG_POLL_SLACK
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
                if long_poll and _route_missing(error):
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
        job_id = str(_field(job, "id", "the submit response"))
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
        receipt_id = str(_field(final, "receipt_id", "the settled job"))
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
