"""Run cyberian's own Python and ONNX Runtime natively and under emulated CPU classes.

User-mode QEMU runs the very same interpreter and wheels with another CPU's
CPUID and instruction set, and reproduces real hardware bit for bit (MLAS
dispatches on CPUID, which the emulator answers): ``qemu-x86_64 -cpu
Haswell-v4`` is an AVX2+FMA3 machine without AVX-512, ``-cpu Nehalem-v2`` is
SSE4.2 without FMA3, ``-cpu SandyBridge-v2`` is AVX without FMA3. ARM64 needs
an aarch64 interpreter and wheels: ``tools/emulation/setup-aarch64.sh``
prepares them and writes the ``env.json`` read here.

Every run is one child process that reads a JSON job on stdin and writes a
JSON result on stdout (:mod:`cyberian.bench.class_worker`).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from .._paths import cache_dir

__all__ = ["Target", "WorkerError", "emulation_dir", "run_worker", "targets"]

_QEMU_X86: Final = "qemu-x86_64"
_INSTALL_QEMU: Final = "install Debian's qemu-user (apt-get install qemu-user)"
_INSTALL_ARM: Final = ("run tools/emulation/setup-aarch64.sh from a cyberian checkout (as root on "
                       "Debian: it installs qemu-user 10 and an aarch64 Python with its wheels)")
_X86_MODELS: Final = (
    ("x86_64-avx2-fma", "Haswell-v4", "x86-64 AVX2+FMA3, no AVX-512"),
    ("x86_64-avx", "SandyBridge-v2", "x86-64 AVX, no FMA3"),
    ("x86_64-sse", "Nehalem-v2", "x86-64 SSE4.2, no AVX"),
)


class WorkerError(RuntimeError):
    """A worker process failed or printed something that is not a result."""


@dataclass(frozen=True)
class Target:
    """One way to run the worker: natively, or under an emulated CPU."""

    name: str
    label: str
    expected_level: str | None = None
    prefix: tuple[str, ...] = ()
    python: str = sys.executable
    env: Mapping[str, str] = field(default_factory=dict)
    package_path: bool = False
    missing: str | None = None

    @property
    def available(self) -> bool:
        """Whether this target can run on this machine."""
        return self.missing is None


def emulation_dir() -> Path:
    """Where the emulated interpreters live (``$CYBERIAN_EMULATION_DIR`` or the cache)."""
    root = os.environ.get("CYBERIAN_EMULATION_DIR")
    return Path(root) if root else cache_dir("emulation")


_ARM_MODEL: Final = "neoverse-n1"
"""A plain ARMv8.2 server core (AWS Graviton2): NEON and dot product, no SVE."""


def _aarch64_target() -> Target:
    label = f"ARM64 NEON (qemu-aarch64 -cpu {_ARM_MODEL})"
    env_file = emulation_dir() / "aarch64" / "env.json"
    try:
        described = json.loads(env_file.read_text(encoding="utf-8"))
        prefix = (str(described["qemu"]), "-cpu", _ARM_MODEL, "-L", str(described["sysroot"]))
        python = str(described["python"])
        paths = [str(p) for p in described.get("pythonpath", [])]
        env = {str(k): str(v) for k, v in dict(described.get("env", {})).items()}
    except (OSError, ValueError, KeyError, TypeError):
        return Target("aarch64", label, "aarch64",
                      missing=f"no ARM64 interpreter at {env_file}: {_INSTALL_ARM}")
    if not Path(prefix[0]).is_file():
        return Target("aarch64", label, "aarch64",
                      missing=f"{prefix[0]} is gone: {_INSTALL_ARM}")
    return Target("aarch64", label, "aarch64", prefix=prefix, python=python,
                  env={**env, "PYTHONPATH": os.pathsep.join(paths)}, package_path=True)


def targets() -> list[Target]:
    """Native first, then every emulated class (available or with what to install)."""
    host = platform.machine().lower()
    found: list[Target] = [Target("native", f"native ({host})")]
    qemu = shutil.which(_QEMU_X86)
    for name, model, what in _X86_MODELS:
        label = f"{what} (qemu-x86_64 -cpu {model})"
        if host not in {"x86_64", "amd64"}:
            found.append(Target(name, label, name, missing="needs an x86-64 host"))
        elif qemu is None:
            found.append(Target(name, label, name, missing=f"no {_QEMU_X86}: {_INSTALL_QEMU}"))
        else:
            found.append(Target(name, label, name, prefix=(qemu, "-cpu", model)))
    if host not in {"aarch64", "arm64"}:
        found.append(_aarch64_target())
    return found


def _package_root(tmp: Path) -> Path:
    """A folder holding only a link to this cyberian package (safe on a foreign PYTHONPATH)."""
    import cyberian  # noqa: PLC0415

    link = tmp / "cyberian"
    link.symlink_to(Path(cyberian.__file__).resolve().parent, target_is_directory=True)
    return tmp


def run_worker(target: Target, job: Mapping[str, Any], *, timeout: float) -> dict[str, Any]:
    """Run one worker job on ``target`` and return its JSON result."""
    if target.missing is not None:
        raise WorkerError(target.missing)
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONHOME"}}
    env.update(target.env)
    with tempfile.TemporaryDirectory(prefix="cyberian-worker-") as tmp:
        if target.package_path:
            extra = str(_package_root(Path(tmp)))
            env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), extra) if p)
        command = [*target.prefix, target.python, "-m", "cyberian.bench.class_worker"]
        try:
            done = subprocess.run(command, input=json.dumps(job), capture_output=True,
                                  text=True, env=env, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise WorkerError(f"{target.name}: no result within {timeout:.0f} s") from None
        except OSError as exc:
            raise WorkerError(f"{target.name}: cannot start {command[0]}: {exc}") from None
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-3:]
        raise WorkerError(f"{target.name}: worker exited {done.returncode}: {' | '.join(tail)}")
    try:
        result: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        raise WorkerError(f"{target.name}: the worker printed no JSON result") from None
    return result
