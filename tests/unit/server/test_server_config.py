"""Server settings: API.md defaults, config file, environment and flag precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from cyberian.server.config import DEFAULT_TIERS, ConfigError, load_settings


def test_defaults_are_the_api_md_tiers() -> None:
    settings = load_settings(environ={})
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.registration_enabled is False  # self-hosted: not open to anyone
    assert settings.tiers == DEFAULT_TIERS
    trial, free, enterprise = (settings.limits(t) for t in ("trial", "free", "enterprise"))
    assert (trial.period_days, trial.chunks_per_period, trial.chunks_per_day) == (14, 400, 100)
    assert (free.period_days, free.chunks_per_period, free.chunks_per_day) == (30, 100, 25)
    assert (enterprise.chunks_per_period, enterprise.chunks_per_day) == (None, None)
    assert (trial.requests_per_minute, free.requests_per_minute,
            enterprise.requests_per_minute) == (60, 10, 6000)
    assert (trial.max_chunks_per_request, free.max_chunks_per_request,
            enterprise.max_chunks_per_request) == (100, 50, 10000)
    assert (trial.max_input_texts, free.max_input_texts,
            enterprise.max_input_texts) == (1000, 500, 100000)
    assert (trial.model_upload, free.model_upload, enterprise.model_upload) == (False, False,
                                                                                True)


def test_precedence_file_then_environment_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("port: 9000\nqueue_size: 5\nworkers: 3\n", encoding="utf-8")
    env = {"CYBERIAN_PORT": "9100", "CYBERIAN_QUEUE_SIZE": "7",
           "CYBERIAN_REGISTRATION_ENABLED": "false", "CYBERIAN_API_KEY": "ignored"}
    settings = load_settings(config, environ=env, queue_size=11, workers=None)
    assert settings.port == 9100  # environment beats the file
    assert settings.queue_size == 11  # a flag beats the environment
    assert settings.workers == 3  # an unset flag changes nothing
    assert settings.registration_enabled is False


def test_open_registration_from_file_environment_or_flag(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("registration_enabled: true\n", encoding="utf-8")
    assert load_settings(config, environ={}).registration_enabled is True
    env = {"CYBERIAN_REGISTRATION_ENABLED": "true"}
    assert load_settings(environ=env).registration_enabled is True
    assert load_settings(environ={}, registration_enabled=True).registration_enabled is True
    assert load_settings(config, environ={}, registration_enabled=False).registration_enabled \
        is False  # --no-registration beats the file


def test_config_file_from_the_environment_and_in_json(tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text('{"tiers": {"free": {"requests_per_minute": 99}}}', encoding="utf-8")
    settings = load_settings(environ={"CYBERIAN_CONFIG": str(config)})
    assert settings.limits("free").requests_per_minute == 99
    assert settings.limits("free").chunks_per_day == 25  # merged field by field
    assert settings.limits("trial") == DEFAULT_TIERS["trial"]


@pytest.mark.parametrize(("text", "message"), [
    ("tiers:\n  gold: {}\n", "tiers.gold: unknown tier"),
    ("tiers:\n  free: {requests_per_minute: 0}\n", "tiers.free.requests_per_minute"),
    ("tiers:\n  free: {surprise: 1}\n", "tiers.free.surprise"),
    ("port: 70000\n", "port"),
    ("colour: blue\n", "colour"),
    ("- a list\n", "must hold a mapping"),
    ("port: [\n", "not valid YAML"),
])
def test_bad_config_names_the_setting(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_settings(config, environ={})


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "absent.yaml", environ={})


def test_metrics_access_from_file_environment_and_flag(tmp_path: Path) -> None:
    assert load_settings(environ={}).metrics == "auto"
    assert load_settings(environ={}).metrics_token is None
    config = tmp_path / "c.yaml"
    config.write_text("metrics: open\nmetrics_token: file-token-0123456789\n", encoding="utf-8")
    from_file = load_settings(config, environ={})
    assert from_file.metrics == "open"
    assert from_file.metrics_token is not None
    assert from_file.metrics_token.get_secret_value() == "file-token-0123456789"
    env = {"CYBERIAN_METRICS": "token", "CYBERIAN_METRICS_TOKEN": "env-token-0123456789"}
    from_env = load_settings(config, environ=env)
    assert from_env.metrics == "token"
    assert from_env.metrics_token is not None
    assert from_env.metrics_token.get_secret_value() == "env-token-0123456789"
    assert load_settings(config, environ=env, metrics="off").metrics == "off"  # the flag wins


def test_the_metrics_token_never_shows() -> None:
    secret = "never-show-this-token-42"
    settings = load_settings(environ={"CYBERIAN_METRICS_TOKEN": secret})
    assert secret not in repr(settings)
    assert secret not in str(settings)
    assert secret not in settings.model_dump_json()
    with pytest.raises(ConfigError) as refused:
        load_settings(environ={"CYBERIAN_METRICS_TOKEN": "short secret"})
    assert "metrics_token" in str(refused.value)
    assert "short secret" not in str(refused.value)


@pytest.mark.parametrize(("env", "message"), [
    ({"CYBERIAN_METRICS": "public"}, "metrics"),
    ({"CYBERIAN_METRICS": "token"}, "'token' needs metrics_token"),
    ({"CYBERIAN_METRICS_TOKEN": "tiny"}, "metrics_token: .*16 to 256 visible ASCII"),
    ({"CYBERIAN_METRICS_TOKEN": "with a space inside it"}, "metrics_token"),
])
def test_bad_metrics_settings_are_config_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=env)


def test_the_database_url_is_a_secret_and_must_be_postgresql(tmp_path: Path) -> None:
    url = "postgresql://cyberian:pw-never-shown@db.example/cyberian"
    settings = load_settings(environ={"CYBERIAN_DATABASE": url}, data_dir=tmp_path)
    assert settings.store_location == url
    assert "pw-never-shown" not in repr(settings)
    assert "pw-never-shown" not in str(settings.model_dump())
    assert load_settings(environ={}, data_dir=tmp_path).store_location == (
        tmp_path / "cyberian.db")
    with pytest.raises(ConfigError, match=r"database: .*postgresql://"):
        load_settings(environ={}, database="mysql://x@y/z")
    moved = load_settings(environ={}, data_dir=tmp_path, keys_dir=tmp_path / "secret",
                          models_dir=tmp_path / "shared", job_workers="remote")
    assert (moved.key_folder, moved.model_folder) == (tmp_path / "secret", tmp_path / "shared")
    with pytest.raises(ConfigError, match="job_workers"):
        load_settings(environ={}, job_workers="elsewhere")
