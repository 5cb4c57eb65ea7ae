"""The client names are public from ``cyberian`` (lazily) and from ``cyberian.client``."""

from __future__ import annotations

import subprocess
import sys

import cyberian
import cyberian.client as client_pkg
from cyberian.client import AsyncClient, Client, JobResult

NAMES = ["AsyncClient", "AsyncCyberian", "Client", "Cyberian", "JobResult"]


def test_names_are_exported_from_the_package() -> None:
    for name in NAMES:
        assert name in cyberian.__all__
        assert name in dir(cyberian)
        assert getattr(cyberian, name) is getattr(client_pkg, name)


def test_aliases_of_the_released_clients() -> None:
    assert cyberian.Cyberian is Client
    assert cyberian.AsyncCyberian is AsyncClient
    assert cyberian.JobResult is JobResult


def test_client_package_all_is_its_public_names() -> None:
    public = {n for n in vars(client_pkg) if not n.startswith("_") and n[0].isupper()}
    assert set(client_pkg.__all__) == public


def test_importing_cyberian_does_not_load_the_http_client() -> None:
    code = "import sys, cyberian; print('httpx' in sys.modules, 'cyberian.client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
