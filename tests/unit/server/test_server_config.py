"""Server settings: API.md defaults, config file, environment and flag precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from cyberian.server.config import DEFAULT_TIERS, ConfigError, load_settings


def test_defaults_are_the_api_md_tiers() -> None:
    settings = load_settings(environ={})
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.registration_enabled is True
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
