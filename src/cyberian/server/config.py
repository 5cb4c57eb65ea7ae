"""Server settings: one :class:`Settings` object from defaults, a config file, the environment.

Precedence, lowest first: built-in defaults, the config file (YAML or JSON,
``--config`` or ``$CYBERIAN_CONFIG``), ``CYBERIAN_<FIELD>`` environment
variables, then explicit overrides (command-line flags). Tiers are set only
in the config file: each tier given there is merged over the API.md defaults
field by field, so a file may change one number of one tier.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from .._paths import shipped_dir
from ..exceptions import CyberianError
from .store.database import is_database_url

__all__ = [
    "DEFAULT_TIERS",
    "ENV_PREFIX",
    "TIERS",
    "ConfigError",
    "MetricsMode",
    "Settings",
    "Tier",
    "TierLimits",
    "load_settings",
]

ENV_PREFIX: Final = "CYBERIAN_"
CONFIG_ENV: Final = "CYBERIAN_CONFIG"

Tier = Literal["trial", "free", "enterprise"]
TIERS: Final[tuple[Tier, ...]] = ("trial", "free", "enterprise")
MetricsMode = Literal["auto", "open", "token", "off"]
_METRICS_TOKEN_CHARS: Final = range(16, 257)


class ConfigError(CyberianError):
    """The server configuration (file, environment or flags) is invalid."""


class TierLimits(BaseModel):
    """The limits of one tier (API.md); ``None`` means unlimited."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    period_days: int = Field(ge=1, le=3660)
    chunks_per_period: int | None = Field(ge=0)
    chunks_per_day: int | None = Field(ge=0)
    requests_per_minute: int = Field(ge=1)
    max_chunks_per_request: int = Field(ge=1)
    max_input_texts: int = Field(ge=1)
    model_upload: bool


DEFAULT_TIERS: Final[dict[Tier, TierLimits]] = {
    "trial": TierLimits(period_days=14, chunks_per_period=400, chunks_per_day=100,
                        requests_per_minute=60, max_chunks_per_request=100,
                        max_input_texts=1000, model_upload=False),
    "free": TierLimits(period_days=30, chunks_per_period=100, chunks_per_day=25,
                       requests_per_minute=10, max_chunks_per_request=50,
                       max_input_texts=500, model_upload=False),
    "enterprise": TierLimits(period_days=30, chunks_per_period=None, chunks_per_day=None,
                             requests_per_minute=6000, max_chunks_per_request=10000,
                             max_input_texts=100000, model_upload=True),
}


def _default_workers() -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cpus or 2) - 1)


class Settings(BaseModel):
    """Everything the server and the admin commands are configured with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    data_dir: Path = Path("data")
    database: SecretStr | None = None
    """A ``postgresql://`` URL: the database every replica and worker shares (default: the
    SQLite file ``<data-dir>/cyberian.db``). Secret: it may hold a password."""
    models_dir: Path | None = None
    """The content-addressed model store (default ``<data-dir>/models``); replicas that take
    model uploads, and remote workers that run uploaded models, share it."""
    keys_dir: Path | None = None
    """Where the private signing and log keys are (default ``<data-dir>/keys``); replicas of
    one verifier point it at the same folder (a mounted secret)."""
    job_workers: Literal["local", "remote"] = "local"
    """Who executes and replays job chunks: this server's worker processes (``local``) or
    ``cyberian worker`` processes that lease work from the database (``remote``)."""
    lease_seconds: float = Field(default=15.0, ge=1.0, le=3600.0)
    """How long a job driver's or a worker's claim holds without a heartbeat."""
    specs_dir: Path = Field(default_factory=lambda: shipped_dir("specs"))
    workers: int = Field(default_factory=_default_workers, ge=1, le=256)
    worker_threads: int = Field(default=1, ge=1, le=256)
    queue_size: int = Field(default=64, ge=1)
    busy_retry_after_sec: int = Field(default=5, ge=1)
    registration_enabled: bool = False
    """Open self-registration (``POST /auth/register``); off: accounts come from the admin CLI."""
    max_body_bytes: int = Field(default=64 * 2**20, ge=1024)
    max_upload_bytes: int = Field(default=2**30, ge=1024)
    max_texts_per_request: int = Field(default=100_000, ge=1)
    max_text_chars: int = Field(default=100_000, ge=1)
    max_spec_bytes: int = Field(default=64 * 2**10, ge=1024)
    max_spec_aliases: int = Field(default=32, ge=0, le=10_000)
    max_spec_depth: int = Field(default=16, ge=4, le=200)
    max_json_depth: int = Field(default=32, ge=4, le=1000)
    max_json_values: int = Field(default=250_000, ge=1000)
    vaas_batch_texts: int = Field(default=2048, ge=1)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    metrics: MetricsMode = "auto"
    """Who may read ``GET /metrics`` (see :mod:`cyberian.server.metrics_access`)."""
    metrics_token: SecretStr | None = None
    """The bearer token that opens ``/metrics`` (config file or environment only)."""
    log_origin: str | None = Field(default=None, pattern=r"^[!-*,-~]{1,255}$")
    """The transparency log's origin, fixed on the first start (default
    ``cyberian/<16 hex of the log key id>``); visible ASCII without ``+``."""
    tiers: dict[Tier, TierLimits] = Field(default_factory=lambda: dict(DEFAULT_TIERS))

    @field_validator("metrics_token")
    @classmethod
    def _visible_token(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None:
            value = token.get_secret_value()
            if len(value) not in _METRICS_TOKEN_CHARS or not all(
                    "!" <= char <= "~" for char in value):
                raise ValueError("must be 16 to 256 visible ASCII characters (no spaces)")
        return token

    @field_validator("database")
    @classmethod
    def _postgresql_url(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None and not is_database_url(url.get_secret_value()):
            raise ValueError("must be a postgresql:// URL (leave it unset for the embedded "
                             "SQLite database)")
        return url

    @model_validator(mode="after")
    def _token_mode_has_a_token(self) -> Settings:
        if self.metrics == "token" and self.metrics_token is None:
            raise ValueError("metrics: 'token' needs metrics_token")
        return self

    def limits(self, tier: Tier) -> TierLimits:
        """The limits of ``tier``."""
        return self.tiers[tier]

    @property
    def db_path(self) -> Path:
        """The SQLite database file (used when no ``database`` URL is set)."""
        return self.data_dir / "cyberian.db"

    @property
    def store_location(self) -> str | Path:
        """Where the database is: the ``database`` URL, else :attr:`db_path`."""
        return self.database.get_secret_value() if self.database is not None else self.db_path

    @property
    def model_folder(self) -> Path:
        """The folder of the model store."""
        return self.models_dir if self.models_dir is not None else self.data_dir / "models"

    @property
    def key_folder(self) -> Path:
        """The folder of the private keys."""
        return self.keys_dir if self.keys_dir is not None else self.data_dir / "keys"


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML too
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML/JSON: {exc}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings")
    return raw


def _merge_tiers(given: Any) -> dict[str, Any]:
    if not isinstance(given, Mapping):
        raise ConfigError("tiers: must be a mapping of tier name to limits")
    merged: dict[str, Any] = {name: limits.model_dump() for name, limits in DEFAULT_TIERS.items()}
    for name, limits in given.items():
        if name not in merged:
            raise ConfigError(f"tiers.{name}: unknown tier (known: {', '.join(TIERS)})")
        if not isinstance(limits, Mapping):
            raise ConfigError(f"tiers.{name}: must be a mapping of limits")
        merged[name] = {**merged[name], **limits}
    return merged


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "settings"
    return f"{where}: {first['msg']}"


def load_settings(config_file: str | os.PathLike[str] | None = None, *,
                  environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from the config file, the ``CYBERIAN_*`` environment and ``overrides``.

    ``overrides`` whose value is ``None`` are ignored (an unset flag).
    """
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    path = config_file if config_file is not None else env.get(CONFIG_ENV)
    if path:
        data.update(_read_config_file(Path(path)))
    for name in Settings.model_fields:
        if name == "tiers":
            continue
        value = env.get(ENV_PREFIX + name.upper())
        if value is not None and value != "":
            data[name] = value
    data.update({name: value for name, value in overrides.items() if value is not None})
    if "tiers" in data:
        data["tiers"] = _merge_tiers(data["tiers"])
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid server setting {_describe(exc)}") from None
