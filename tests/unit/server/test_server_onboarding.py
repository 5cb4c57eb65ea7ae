"""The start-up notes: how to make the first account, and whether anyone may register."""

from __future__ import annotations

from pathlib import Path

from cyberian.server.accounts import create_account
from cyberian.server.config import load_settings
from cyberian.server.onboarding import first_account_command, startup_notes
from cyberian.server.store import open_store
from cyberian.server.timeutil import utcnow


def test_a_fresh_data_dir_says_how_to_make_the_first_account(tmp_path: Path) -> None:
    data = tmp_path / "my data"
    settings = load_settings(environ={}, data_dir=data)
    store = open_store(settings.store_location)
    try:
        notes = startup_notes(settings, store)
        assert notes[0] == (f"no accounts yet: create one with  cyberian accounts create "
                            f"--data-dir '{data}' --tier enterprise  (it prints the API key once)")
        assert "--open-registration" in notes[1]
        assert len(notes) == 2
        _, _, key = create_account(store, "enterprise", now=utcnow(), trial_days=14)
        assert startup_notes(settings, store) == []  # an account exists, registration is off
        assert all(key not in note for note in notes)
    finally:
        store.close()


def test_open_registration_is_announced_at_every_start(tmp_path: Path) -> None:
    settings = load_settings(environ={}, data_dir=tmp_path, registration_enabled=True)
    store = open_store(settings.store_location)
    try:
        create_account(store, "trial", now=utcnow(), trial_days=14)
        notes = startup_notes(settings, store)
    finally:
        store.close()
    assert len(notes) == 1
    assert notes[0].startswith("open registration is ON")


def test_the_command_is_quoted_for_the_shell() -> None:
    assert first_account_command(Path("./data")) == (
        "cyberian accounts create --data-dir data --tier enterprise")
