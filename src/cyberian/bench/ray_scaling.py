"""``cyberian bench ray``: texts/s of a proof on 1 and 2 Ray workers beside the local prover.

Every configuration proves the same texts in the same process, alternately,
on this machine's CPUs: the local :class:`~cyberian.prover.Prover` with all
of them (no Ray running), then a local Ray cluster of as many CPUs, started
for the round, with one worker holding all the threads and with one worker
per CPU. Each keeps its fastest round;
worker start-up (actor, model load, class check) is timed apart from the
proof. Every Ray proof must carry the local proof's commitments: a
difference is reported, and fails the command.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..environment import cpu_info
from ..prover import Prover
from ..spec import Spec

__all__ = ["RayConfig", "RayReport", "render_ray", "run_ray"]


@dataclass
class RayConfig:
    """One way of proving: where, with how many workers and threads, and how fast."""

    name: str
    workers: int
    threads: int
    seconds: float = float("inf")
    start_seconds: float = 0.0
    same_commitments: bool = True

    def texts_per_second(self, texts: int) -> float:
        """Throughput of the fastest round."""
        return texts / self.seconds


@dataclass
class RayReport:
    """The configurations measured on one set of texts, on one CPU."""

    texts: int
    cpus: int
    cpu: dict[str, Any]
    ray_version: str
    configs: list[RayConfig] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        """The configurations whose commitments differ from the local run's."""
        return [config.name for config in self.configs if not config.same_commitments]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, with texts/s per configuration."""
        document = asdict(self)
        for entry, config in zip(document["configs"], self.configs, strict=True):
            entry["texts_per_second"] = config.texts_per_second(self.texts)
        return document


def run_ray(spec: Spec, texts: Sequence[str], *, repeats: int = 3,
            log: Callable[[str], None] = lambda _: None) -> RayReport:
    """Time the local prover and Ray with 1 and ``cpus`` workers on ``texts``."""
    import ray  # noqa: PLC0415 - the optional extra this benchmark measures

    from ..distributed.ray_prover import RayProver  # noqa: PLC0415

    cpus = int(cpu_info()["logical_cpus"])
    local = Prover(spec, threads=cpus)
    local.prove(texts[:64], keep_embeddings=False)  # warm-up
    report = RayReport(len(texts), cpus, dict(local.manifest["cpu"]), str(ray.__version__))
    configs = [RayConfig("local prover", 0, cpus), RayConfig("ray, 1 worker", 1, cpus)]
    if cpus > 1:
        configs.append(RayConfig(f"ray, {cpus} workers", cpus, 1))
    report.configs = configs
    if ray.is_initialized():
        raise RuntimeError("cyberian bench ray starts its own local Ray; this process has one")
    for round_number in range(repeats):
        log(f"round {round_number + 1} of {repeats}")
        started = time.perf_counter()
        proof = local.prove(texts, keep_embeddings=False)  # no Ray running, as a user runs it
        configs[0].seconds = min(configs[0].seconds, time.perf_counter() - started)
        expected = proof.chunks, proof.output_commitment
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)
        try:
            for config in configs[1:]:
                started = time.perf_counter()
                with RayProver(spec, workers=config.workers, threads=config.threads) as prover:
                    config.start_seconds = time.perf_counter() - started
                    prover.prove(texts[:64], keep_embeddings=False)  # warm-up, as local
                    started = time.perf_counter()
                    proof = prover.prove(texts, keep_embeddings=False)
                    config.seconds = min(config.seconds, time.perf_counter() - started)
                config.same_commitments &= (proof.chunks, proof.output_commitment) == expected
                log(f"  {config.name}: {config.texts_per_second(len(texts)):.1f} texts/s")
        finally:
            ray.shutdown()
    return report


def render_ray(report: RayReport) -> str:
    """The report as a markdown table."""
    base = report.configs[0].texts_per_second(report.texts)
    lines = [
        f"Ray scaling on {report.texts} texts, {report.cpu.get('model')} "
        f"({report.cpu.get('isa_level')}, class {report.cpu.get('class')}), "
        f"{report.cpus} CPUs, Ray {report.ray_version}:",
        "",
        "| configuration | workers x threads | texts/s | vs local | worker start | "
        "same commitments |",
        "|---|---|---:|---:|---:|---|",
    ]
    for config in report.configs:
        rate = config.texts_per_second(report.texts)
        shape = "in-process" if config.workers == 0 else f"{config.workers} x {config.threads}"
        start = "-" if config.workers == 0 else f"{config.start_seconds:.1f} s"
        same = "yes" if config.same_commitments else "**NO**"
        lines.append(f"| {config.name} | {shape} | {rate:.1f} | {rate / base:.2f}x | {start} | "
                     f"{same} |")
    return "\n".join(lines) + "\n"
