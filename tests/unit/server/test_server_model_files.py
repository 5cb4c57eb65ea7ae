"""The server's model store and catalog share the model's inode and refuse bytes missing a pin."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from cyberian.models.cache import ModelCache
from cyberian.server.catalog import Catalog
from cyberian.server.store.files import ModelFiles
from cyberian.spec import Spec


def _flip_first_byte(path: Path) -> None:
    path.chmod(0o644)
    with path.open("r+b") as handle:
        first = handle.read(1)
        handle.seek(0)
        handle.write(bytes([first[0] ^ 1]))


@pytest.fixture
def catalog(tiny_spec: Spec, tmp_path: Path) -> Path:
    """A catalog folder with the tiny spec and its own copies of the files."""
    folder = tmp_path / "catalog"
    folder.mkdir()
    for path in (tiny_spec.base_dir / "tiny.yaml", tiny_spec.model_path,
                 tiny_spec.tokenizer_path):
        shutil.copyfile(path, folder / path.name)
    return folder


def _files(data: Path, cache: ModelCache | None) -> ModelFiles:
    return ModelFiles(data / "models", data / "tmp", cache=cache)


def test_the_catalog_links_its_files_into_every_store(catalog: Path, tmp_path: Path) -> None:
    first, second = _files(tmp_path / "data-1", None), _files(tmp_path / "data-2", None)
    spec = Catalog.seed(catalog, first).specs()[0]
    Catalog.seed(catalog, second)
    source = catalog / "tiny.onnx"
    assert spec.model_path == first.path(spec.model_sha256)
    assert (os.stat(source).st_ino == os.stat(first.path(spec.model_sha256)).st_ino
            == os.stat(second.path(spec.model_sha256)).st_ino)
    assert os.stat(source).st_nlink == 3
    spec.check_pins()  # the pins still verify, on the linked bytes


def test_the_shared_cache_comes_first_and_an_older_copy_is_relinked(
        catalog: Path, tiny_spec: Spec, tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "cache")
    entry = cache.put(tiny_spec.model_path.read_bytes(), tiny_spec.model_sha256)
    files = _files(tmp_path / "data", cache)
    files.root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tiny_spec.model_path, files.path(tiny_spec.model_sha256))  # an old copy
    assert files.provide(tiny_spec.model_sha256, [catalog / "tiny.onnx"])
    assert os.stat(files.path(tiny_spec.model_sha256)).st_ino == os.stat(entry).st_ino
    assert os.stat(entry).st_nlink == 2


def test_a_tampered_cache_entry_is_refused_and_the_spec_file_used(
        catalog: Path, tiny_spec: Spec, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = ModelCache(tmp_path / "cache")
    entry = cache.put(tiny_spec.model_path.read_bytes(), tiny_spec.model_sha256)
    _flip_first_byte(entry)
    files = _files(tmp_path / "data", cache)
    with caplog.at_level(logging.WARNING):
        spec = Catalog.seed(catalog, files).specs()[0]
    assert "refusing" in caplog.text
    assert not entry.exists()
    assert os.stat(spec.model_path).st_ino == os.stat(catalog / "tiny.onnx").st_ino
    spec.check_pins()


def test_a_tampered_model_is_left_out_not_served(catalog: Path, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    files = _files(tmp_path / "data", None)
    spec = Catalog.seed(catalog, files).specs()[0]
    stored = files.path(spec.model_sha256)
    _flip_first_byte(catalog / "tiny.onnx")  # in place: the store's link changes with it
    assert stored.read_bytes() == (catalog / "tiny.onnx").read_bytes()
    with caplog.at_level(logging.WARNING):
        again = Catalog.seed(catalog, files)  # the next start
    assert len(again) == 0  # no recipe rebuilds the tiny model: refused, not used
    assert "refusing" in caplog.text
    assert "leaving out tiny.yaml" in caplog.text
    assert not stored.exists()  # the damaged stored file is gone too


def test_an_intact_stored_copy_serves_without_its_source(catalog: Path, tmp_path: Path) -> None:
    files = _files(tmp_path / "data", None)
    spec = Catalog.seed(catalog, files).specs()[0]
    (catalog / "tiny.onnx").unlink()
    assert files.provide(spec.model_sha256, [catalog / "tiny.onnx"])
    assert len(Catalog.seed(catalog, files)) == 1
