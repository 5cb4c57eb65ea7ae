"""The shared model cache and hash-checked hard links: one copy on disk, pins as strong as ever."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest

from cyberian.exceptions import FileHashMismatchError, SpecError
from cyberian.models import cache as cache_module
from cyberian.models.build import ensure_model_files
from cyberian.models.cache import ModelCache, keep_built, link_missing
from cyberian.models.linking import link_verified, sha256_file
from cyberian.spec import Spec, load_spec

DATA = b"model bytes " * 1000
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def cache_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("CYBERIAN_CACHE_DIR", str(root))
    return root / "models"


def _source(folder: Path, data: bytes = DATA) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    path.write_bytes(data)
    return path


def test_a_link_shares_the_inode_after_the_hash_is_checked(tmp_path: Path) -> None:
    source = _source(tmp_path / "a")
    target = tmp_path / "b" / "copy.onnx"
    assert link_verified(source, target, SHA) is True
    assert os.stat(target).st_ino == os.stat(source).st_ino
    assert os.stat(source).st_nlink == 2
    assert not target.is_symlink()
    assert sorted(p.name for p in target.parent.iterdir()) == ["copy.onnx"]  # nothing staged left


def test_a_link_replaces_another_copy_of_the_same_bytes(tmp_path: Path) -> None:
    source = _source(tmp_path / "a")
    target = _source(tmp_path / "b")  # an older separate copy
    assert os.stat(target).st_ino != os.stat(source).st_ino
    link_verified(source, target, SHA)
    assert os.stat(target).st_ino == os.stat(source).st_ino
    link_verified(source, target, SHA)  # already the same inode: nothing changes, nothing left
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.onnx"]


def test_bytes_that_miss_the_hash_are_refused_and_the_target_kept(tmp_path: Path) -> None:
    source = _source(tmp_path / "a", b"tampered")
    target = _source(tmp_path / "b")
    with pytest.raises(FileHashMismatchError, match=SHA):
        link_verified(source, target, SHA)
    assert target.read_bytes() == DATA
    assert os.stat(target).st_ino != os.stat(source).st_ino
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.onnx"]


def test_across_filesystems_the_file_is_copied_and_checked(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def cross_device(*_: object, **__: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    source = _source(tmp_path / "a")
    target = tmp_path / "b" / "copy.onnx"
    assert link_verified(source, target, SHA) is False
    assert target.read_bytes() == DATA
    assert os.stat(target).st_ino != os.stat(source).st_ino
    assert os.stat(target).st_mode & 0o777 == 0o644
    inode = os.stat(target).st_ino
    assert link_verified(source, target, SHA) is False  # an intact copy is not copied again
    assert os.stat(target).st_ino == inode
    with pytest.raises(FileHashMismatchError):
        link_verified(_source(tmp_path / "c", b"other"), tmp_path / "d" / "x", SHA)
    assert not (tmp_path / "d" / "x").exists()


def test_other_link_errors_are_not_hidden_by_a_copy(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(*_: object, **__: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "link", no_space)
    with pytest.raises(OSError, match="No space"):
        link_verified(_source(tmp_path / "a"), tmp_path / "b" / "x", SHA)


def test_cache_entries_are_named_by_hash_read_only_and_kept(cache_root: Path) -> None:
    cache = ModelCache.default()
    assert cache is not None
    assert cache.root == cache_root
    entry = cache.put(DATA, SHA)
    assert entry == cache_root / SHA
    assert entry.stat().st_mode & 0o777 == 0o444
    assert cache.put(DATA, SHA).stat().st_ino == entry.stat().st_ino  # an intact entry stays
    with pytest.raises(FileHashMismatchError):
        cache.put(b"other bytes", SHA)
    assert sha256_file(entry) == SHA


def test_a_tampered_cache_entry_is_refused_removed_and_replaced(cache_root: Path,
                                                                tmp_path: Path) -> None:
    cache = ModelCache(cache_root)
    entry = cache.put(DATA, SHA)
    entry.chmod(0o644)
    entry.write_bytes(b"tampered in place")
    target = tmp_path / "out" / "model.onnx"
    assert cache.link_to(SHA, target) is False  # refused, not used
    assert not target.exists()
    assert not entry.exists()  # removed
    fresh = cache.put(DATA, SHA)
    assert fresh.read_bytes() == DATA
    assert cache.link_to(SHA, target) is True
    assert target.stat().st_ino == fresh.stat().st_ino


def test_a_build_is_kept_once_in_the_cache_and_linked(cache_root: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "checkout" / "m.onnx", tmp_path / "elsewhere" / "m.onnx"
    keep_built(first, DATA, SHA)
    keep_built(second, DATA, SHA)  # a second build of the same bytes adds no copy
    entry = cache_root / SHA
    assert first.stat().st_ino == second.stat().st_ino == entry.stat().st_ino
    assert entry.stat().st_nlink == 3


def test_without_a_usable_cache_a_build_is_written_in_place(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def unwritable(*_: str) -> Path:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(cache_module, "cache_dir", unwritable)
    assert ModelCache.default() is None
    path = tmp_path / "m.onnx"
    keep_built(path, DATA, SHA)
    assert path.read_bytes() == DATA
    assert link_missing([(SHA, tmp_path / "absent.onnx")]) is False


def _spec_without_files(tiny_spec: Spec, folder: Path) -> Spec:
    """The tiny spec, its files expected in an empty ``folder``."""
    path = folder / "tiny.yaml"
    folder.mkdir(parents=True)
    path.write_text(tiny_spec.with_files(folder / "tiny.onnx", folder / "tiny.tokenizer.json")
                    .to_yaml(), encoding="utf-8")
    return load_spec(path)


def test_missing_spec_files_are_linked_from_the_cache(tiny_spec: Spec, cache_root: Path,
                                                      tmp_path: Path) -> None:
    cache = ModelCache(cache_root)
    model = cache.put(tiny_spec.model_path.read_bytes(), tiny_spec.model_sha256)
    cache.put(tiny_spec.tokenizer_path.read_bytes(), tiny_spec.tokenizer_sha256)
    spec = _spec_without_files(tiny_spec, tmp_path / "checkout")
    assert ensure_model_files(spec) is None  # nothing built
    assert spec.model_path.stat().st_ino == model.stat().st_ino
    spec.check_pins()


def test_a_tampered_cached_model_is_not_linked_into_a_spec(tiny_spec: Spec, cache_root: Path,
                                                           tmp_path: Path) -> None:
    cache = ModelCache(cache_root)
    model = cache.put(tiny_spec.model_path.read_bytes(), tiny_spec.model_sha256)
    cache.put(tiny_spec.tokenizer_path.read_bytes(), tiny_spec.tokenizer_sha256)
    model.chmod(0o644)
    with model.open("r+b") as handle:  # one flipped byte, in place
        first = handle.read(1)
        handle.seek(0)
        handle.write(bytes([first[0] ^ 1]))
    spec = _spec_without_files(tiny_spec, tmp_path / "checkout")
    assert ensure_model_files(spec) is None  # no recipe builds the tiny model
    assert not spec.model_path.exists()
    assert not model.exists()
    with pytest.raises(SpecError, match="file not found"):
        spec.check_pins()
