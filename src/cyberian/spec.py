"""CES, the Canonical Execution Specification: parse, validate, fill defaults, hash.

A CES is a YAML document that pins everything deciding the bytes of an
inference result (see ``docs/CES.md``). :func:`load_spec` reads one from a file
and resolves its file paths relative to that file; :func:`parse_spec` reads one
from text (as the server does) and never opens a file. Every validation error
is a :class:`~cyberian.exceptions.SpecError` whose message starts with the
offending field path.
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import rfc8785
import yaml

from ._spec_yaml import (
    DEFAULT_SPEC_LIMITS,
    MAX_SPEC_ALIASES,
    MAX_SPEC_BYTES,
    MAX_SPEC_DEPTH,
    SpecLimits,
    check_size,
    read_yaml,
)
from ._text import brief, clip
from .exceptions import EngineDriftError, PinMismatchError, SpecError

__all__ = [
    "CES_VERSION",
    "DEFAULT_SPEC_LIMITS",
    "MAX_SPEC_ALIASES",
    "MAX_SPEC_BYTES",
    "MAX_SPEC_DEPTH",
    "Spec",
    "SpecLimits",
    "check_engine",
    "installed_engine_version",
    "load_spec",
    "parse_spec",
    "sha256_file",
]

CES_VERSION: Final = "1.0"

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")

_Check = Callable[[Any, str], Any]
"""Validates a raw value found at a path and returns its normalised form."""


@dataclass(frozen=True)
class _Field:
    check: _Check
    default: Any = None
    required: bool = False


def _fail(path: str, expected: str, value: Any) -> SpecError:
    return SpecError(f"must be {expected}, got {brief(value)}", path=path)


def _string(*, choices: tuple[str, ...] = (), pattern: re.Pattern[str] | None = None) -> _Check:
    def check(value: Any, path: str) -> str:
        if not isinstance(value, str):
            wanted = "one of " + ", ".join(choices) if choices else "a string"
            raise _fail(path, wanted, value)
        if choices and value not in choices:
            raise _fail(path, "one of " + ", ".join(choices), value)
        if pattern is not None and not pattern.match(value):
            raise _fail(path, f"a string matching {pattern.pattern}", value)
        return value

    return check


def _sha256(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _HEX64.match(value.lower()):
        raise _fail(path, "a SHA-256 of 64 hex digits", value)
    return value.lower()


def _integer(low: int, high: int) -> _Check:
    def check(value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _fail(path, f"an integer >= {low} and <= {high}", value)
        return value

    return check


def _boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, "true or false", value)
    return value


def _number(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> _Check:
    lo, hi = ("(" if low_open else "["), (")" if high_open else "]")

    def check(value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(path, f"a number in {lo}{low}, {high}{hi}", value)
        try:
            number = float(value)
        except OverflowError:  # an integer beyond any float
            raise _fail(path, f"a number in {lo}{low}, {high}{hi}", value) from None
        too_low = number <= low if low_open else number < low
        too_high = number >= high if high_open else number > high
        if math.isnan(number) or too_low or too_high:
            raise _fail(path, f"a number in {lo}{low}, {high}{hi}", value)
        return number

    return check


def _sample_rate(value: Any, path: str) -> float | str:
    if value == "auto":
        return "auto"
    if isinstance(value, str):
        raise _fail(path, 'a number in (0, 1] or "auto"', value)
    rate: float = _number(0.0, 1.0, low_open=True)(value, path)
    return rate


def _optional_path(value: Any, path: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise _fail(path, "a file path", value)
    return value


_Section = Mapping[str, "_Field | _Section"]

_SCHEMA: Final[_Section] = {
    "version": _Field(_string(choices=(CES_VERSION,)), required=True),
    "name": _Field(_string(pattern=_NAME), required=True),
    "task": _Field(_string(choices=("embedding",)), default="embedding"),
    "model": {
        "file": _Field(_optional_path),
        "sha256": _Field(_sha256, required=True),
        "output": _Field(_string(), default="last_hidden_state"),
    },
    "tokenizer": {
        "file": _Field(_optional_path),
        "sha256": _Field(_sha256, required=True),
        "max_length": _Field(_integer(2, 8192), default=512),
    },
    "pooling": _Field(_string(choices=("mean", "cls", "none")), default="mean"),
    "normalize": _Field(_boolean, default=True),
    "output": {
        "dimensions": _Field(_integer(1, 65536), required=True),
        "dtype": _Field(_string(choices=("float32",)), default="float32"),
    },
    "runtime": {
        "engine": _Field(_string(choices=("onnxruntime",)), default="onnxruntime"),
        "version": _Field(_string(pattern=re.compile(r"^\d+\.\d+\.\d+\S*$")), required=True),
        "provider": _Field(
            _string(choices=("CPUExecutionProvider",)), default="CPUExecutionProvider"
        ),
        "intra_op_threads": _Field(_integer(1, 256), default=1),
        "inter_op_threads": _Field(_integer(1, 256), default=1),
        "graph_optimization": _Field(
            _string(choices=("disabled", "basic", "extended", "all")), default="extended"
        ),
    },
    "chunking": {
        "chunk_size": _Field(_integer(1, 100_000), default=32),
    },
    "verification": {
        "sample_rate": _Field(_sample_rate, default=0.1),
        "reward": _Field(_number(0.0, 1e12)),
        "penalty": _Field(_number(0.0, 1e12)),
        "cost": _Field(_number(0.0, 1e12)),
        "collusion": _Field(_number(0.0, 1.0, high_open=True)),
        "vaas_block": _Field(_integer(1, 100_000), default=1000),
    },
}

_AUTO_FIELDS: Final = ("reward", "penalty", "cost", "collusion")
_PATH_FIELDS: Final = (("model", "file"), ("tokenizer", "file"))


def _normalise(raw: Any, schema: _Section, prefix: str) -> dict[str, Any]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise _fail(prefix or "spec", "a mapping", raw)
    unknown = sorted(str(key) for key in raw if key not in schema)
    if unknown:
        name = clip(unknown[0])
        where = f"{prefix}.{name}" if prefix else name
        raise SpecError("unknown key (check the spelling; see docs/CES.md)", path=where)
    out: dict[str, Any] = {}
    for key, rule in schema.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(rule, Mapping):
            out[key] = _normalise(raw.get(key), rule, path)
        elif key in raw and raw[key] is not None:
            out[key] = rule.check(raw[key], path)
        elif rule.required:
            raise SpecError("required key is missing", path=path)
        elif rule.default is not None:
            out[key] = rule.default
    return out


def _check_consistency(doc: dict[str, Any]) -> None:
    verification = doc["verification"]
    given = [name for name in _AUTO_FIELDS if name in verification]
    if verification["sample_rate"] == "auto":
        missing = [name for name in _AUTO_FIELDS if name not in verification]
        if missing:
            raise SpecError(
                'required when sample_rate is "auto"', path=f"verification.{missing[0]}"
            )
        if verification["reward"] + verification["penalty"] <= 0:
            raise SpecError("reward + penalty must be > 0", path="verification.reward")
    elif given:
        raise SpecError(
            'only allowed when sample_rate is "auto"', path=f"verification.{given[0]}"
        )
    if doc["pooling"] == "none" and doc["model"]["output"] == "last_hidden_state":
        raise SpecError(
            "pooling: none needs a graph output that is already pooled (B, H), "
            "not last_hidden_state",
            path="model.output",
        )


@dataclass(frozen=True)
class Spec:
    """A validated, normalised CES with every default filled in.

    ``data`` is the normalised document; ``base_dir`` is where relative file
    paths resolve (``None`` for a spec received as text, whose paths are
    never opened).
    """

    data: Mapping[str, Any]
    base_dir: Path | None = None
    spec_hash: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "spec_hash", _hash_document(self.data))

    # -- typed accessors -------------------------------------------------
    @property
    def name(self) -> str:
        """The model handle (also the ``model`` id in the API)."""
        return str(self.data["name"])

    @property
    def model_sha256(self) -> str:
        """Pinned SHA-256 of the ONNX model file."""
        return str(self.data["model"]["sha256"])

    @property
    def tokenizer_sha256(self) -> str:
        """Pinned SHA-256 of the tokenizer.json file."""
        return str(self.data["tokenizer"]["sha256"])

    @property
    def model_output(self) -> str:
        """Name of the graph output the runtime reads."""
        return str(self.data["model"]["output"])

    @property
    def max_length(self) -> int:
        """Truncation length in tokens, special tokens included."""
        return int(self.data["tokenizer"]["max_length"])

    @property
    def pooling(self) -> str:
        """``mean``, ``cls`` or ``none``."""
        return str(self.data["pooling"])

    @property
    def normalize(self) -> bool:
        """Whether every output row is L2-normalised."""
        return bool(self.data["normalize"])

    @property
    def dimensions(self) -> int:
        """Width of every output row."""
        return int(self.data["output"]["dimensions"])

    @property
    def runtime(self) -> Mapping[str, Any]:
        """The ``runtime`` section (engine, version, threads, optimisation level)."""
        return self.data["runtime"]  # type: ignore[no-any-return]

    @property
    def chunk_size(self) -> int:
        """Texts per chunk: the unit of commitment, sampling and quota."""
        return int(self.data["chunking"]["chunk_size"])

    @property
    def verification(self) -> Mapping[str, Any]:
        """The ``verification`` section (sample rate and deterrence inputs)."""
        return self.data["verification"]  # type: ignore[no-any-return]

    # -- files -----------------------------------------------------------
    def _file(self, section: str) -> Path:
        name = self.data[section].get("file")
        if name is None:
            raise SpecError("no file given (the spec names this file only by hash)",
                            path=f"{section}.file")
        if self.base_dir is None:
            raise SpecError("file paths are not opened for a spec received as text",
                            path=f"{section}.file")
        return (self.base_dir / str(name)).resolve()

    @property
    def model_path(self) -> Path:
        """The model file, resolved relative to the spec file."""
        return self._file("model")

    @property
    def tokenizer_path(self) -> Path:
        """The tokenizer.json file, resolved relative to the spec file."""
        return self._file("tokenizer")

    def check_pins(self) -> None:
        """Refuse files whose SHA-256 differs from the pins (both hashes in the message)."""
        for section in ("model", "tokenizer"):
            self.pinned_bytes(section)

    def pinned_bytes(self, section: str) -> bytes:
        """The whole ``model`` or ``tokenizer`` file, checked against its pin.

        The hash is taken of the returned bytes, so a caller that loads them
        runs exactly what was pinned, with no second read of the file.
        """
        path = self._file(section)
        if not path.is_file():
            raise SpecError(f"file not found: {path}", path=f"{section}.file")
        data = path.read_bytes()
        actual, expected = hashlib.sha256(data).hexdigest(), self.data[section]["sha256"]
        if actual != expected:
            raise PinMismatchError(section, str(path), expected, actual)
        return data

    # -- derived specs ---------------------------------------------------
    def replace(self, **changes: Mapping[str, Any] | Any) -> Spec:
        """A copy with top-level keys or whole sections merged in (re-validated)."""
        doc = copy.deepcopy(dict(self.data))
        for key, value in changes.items():
            if isinstance(value, Mapping) and isinstance(doc.get(key), dict):
                doc[key].update(value)
            else:
                doc[key] = value
        return Spec(_validate(doc), self.base_dir)

    def with_files(self, model: Path, tokenizer: Path) -> Spec:
        """The same spec (same ``spec_hash``) reading its files from these absolute paths.

        This is how a server runs a spec received as text: it resolves the
        pinned hashes in its own model store and never opens a path the
        client wrote.
        """
        doc = copy.deepcopy(dict(self.data))
        doc["model"]["file"] = str(model.resolve())
        doc["tokenizer"]["file"] = str(tokenizer.resolve())
        return Spec(doc, Path("/"))

    def to_yaml(self, *, portable: bool = False) -> str:
        """The normalised document as YAML text (defaults spelled out, in document order).

        ``portable`` leaves out the file paths: the text then means the same
        spec (same ``spec_hash``) on any machine, which is what a job record
        stores and what a verifier is sent; the reader supplies the files.
        """
        document = self.hashed_document() if portable else dict(self.data)
        return yaml.safe_dump(document, sort_keys=False)

    def hashed_document(self) -> dict[str, Any]:
        """The document ``spec_hash`` is computed over: normalised, file paths removed."""
        return _without_paths(self.data)


def _without_paths(data: Mapping[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(dict(data))
    for section, key in _PATH_FIELDS:
        doc[section].pop(key, None)
    return doc


def _hash_document(data: Mapping[str, Any]) -> str:
    canonical: bytes = rfc8785.dumps(_without_paths(data))
    return hashlib.sha256(canonical).hexdigest()


def _validate(raw: Any) -> dict[str, Any]:
    doc = _normalise(raw, _SCHEMA, "")
    _check_consistency(doc)
    return doc


def parse_spec(text: str, *, base_dir: Path | None = None,
               limits: SpecLimits = DEFAULT_SPEC_LIMITS) -> Spec:
    """Parse and validate CES text; ``base_dir`` is where relative file paths resolve.

    The text is read within ``limits`` (size, alias references, nesting
    depth; see :class:`SpecLimits`), and anything beyond them is refused
    before a Python object is built.
    """
    raw = read_yaml(text, limits)
    if raw is None:
        raise SpecError("the spec is empty")
    return Spec(_validate(raw), base_dir)


def load_spec(path: str | Path, *, limits: SpecLimits = DEFAULT_SPEC_LIMITS) -> Spec:
    """Read and validate the CES file at ``path``; its file paths resolve next to it.

    A file larger than ``limits.max_bytes`` is refused without being read whole.
    """
    spec_path = Path(path)
    try:
        with spec_path.open("rb") as handle:
            data = handle.read(limits.max_bytes + 1)
        check_size(len(data), limits)
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise SpecError(f"spec file not found: {spec_path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read spec file {spec_path}: {exc}") from None
    return parse_spec(text, base_dir=spec_path.resolve().parent, limits=limits)


def sha256_file(path: Path, *, block: int = 1 << 20) -> str:
    """SHA-256 (hex) of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def installed_engine_version() -> str:
    """The version of the installed ONNX Runtime."""
    import onnxruntime  # noqa: PLC0415 - heavy import, only when asked

    return str(onnxruntime.__version__)


def check_engine(spec: Spec, *, allow_drift: bool = False) -> str | None:
    """Compare the installed engine with ``runtime.version``.

    Returns ``None`` when they match, the installed version when they differ
    and drift is allowed; raises :class:`EngineDriftError` otherwise.
    """
    installed = installed_engine_version()
    pinned = str(spec.runtime["version"])
    if installed == pinned:
        return None
    if not allow_drift:
        raise EngineDriftError(pinned, installed)
    return installed
