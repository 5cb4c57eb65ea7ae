"""Cross-class checks: the same texts, or the same single ops, on every CPU class we can run.

``cyberian bench determinism SPEC --classes`` proves the texts natively and on
each emulated class (:mod:`cyberian.bench.emulation`), prints one row per
class with its output commitment, and passes only when every run of one CPU
class (:mod:`cyberian.cpuclass`) gave the same bytes -- the claim the docs
make -- and each emulated CPU was detected as the class it emulates.
Different classes may differ; the table says whether they did.

``cyberian bench ops`` runs single-op graphs on random inputs on each class
and says which ops give the same bytes as the native run: the measurements
behind the op allow-list of the shipped graph
(:mod:`cyberian.models.portable_ops`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from ..cpuclass import class_of_level
from ..models.recipes import cpu_independent
from ..spec import load_spec
from .emulation import Target, WorkerError, run_worker, targets

__all__ = [
    "INT8_GRAPH_CASES",
    "ClassReport",
    "ClassRun",
    "OpsReport",
    "render_classes",
    "render_ops",
    "run_classes",
    "run_ops",
    "write_op_cases",
]

DEFAULT_TIMEOUT: Final = 3600.0
Log = Callable[[str], None]


@dataclass(frozen=True)
class ClassRun:
    """One target's run: its result, or why it did not run."""

    target: Target
    result: dict[str, Any] | None = None
    error: str | None = None

    @property
    def isa_level(self) -> str | None:
        """The ISA level the worker detected (None when it did not run)."""
        return None if self.result is None else str(self.result["manifest"]["cpu"]["isa_level"])

    @property
    def cpu_class(self) -> str | None:
        """The CPU class the worker detected (None when it did not run)."""
        return None if self.result is None else str(self.result["manifest"]["cpu"]["class"])

    @property
    def commitment(self) -> str | None:
        """The run's output commitment (None when it did not run)."""
        return None if self.result is None else str(self.result["output_commitment"])

    @property
    def kernels(self) -> str | None:
        """``fused`` or ``standard`` for a model with a fused twin (None otherwise, or not run)."""
        entry = None if self.result is None else self.result["manifest"].get("kernels")
        if not isinstance(entry, dict):
            return None
        return "fused" if entry.get("fused") else "standard"


def _pick(only: Sequence[str] | None) -> list[Target]:
    chosen = targets()
    if only:
        unknown = sorted(set(only) - {t.name for t in chosen})
        if unknown:
            raise ValueError(f"unknown target(s) {', '.join(unknown)}; "
                             f"known: {', '.join(t.name for t in chosen)}")
        chosen = [t for t in chosen if t.name == "native" or t.name in only]
    return chosen


@dataclass
class ClassReport:
    """Every target's run of the same texts, and what the check concludes."""

    runs: list[ClassRun]
    texts: int
    any_class: bool = False
    """The spec claims the same bits on every class (the int8 spec): all runs must agree."""

    def problems(self) -> list[str]:
        """Why the check fails: runs of one class that differ (of any class, for a spec that
        claims the same bits everywhere), emulators that emulated wrongly."""
        found: list[str] = []
        by_class: dict[str, list[ClassRun]] = {}
        for run in self.runs:
            if run.result is None:
                continue
            expected = run.target.expected_level
            if expected is not None and run.isa_level != expected:
                found.append(f"{run.target.name}: detected {run.isa_level}, expected {expected}")
            by_class.setdefault(str(run.cpu_class), []).append(run)
        for cpu_class, runs in by_class.items():
            if len({r.commitment for r in runs}) > 1:
                names = ", ".join(f"{r.target.name}={str(r.commitment)[:12]}" for r in runs)
                found.append(f"class {cpu_class} is not reproducible: {names}")
        ran = [r for r in self.runs if r.result is not None]
        if self.any_class and len({r.commitment for r in ran}) > 1:
            names = ", ".join(f"{r.target.name}={str(r.commitment)[:12]}" for r in ran)
            found.append(f"the spec claims the same bytes on every CPU class, but: {names}")
        return found

    def missing(self) -> list[ClassRun]:
        """Targets that could not run (not installed, or failed)."""
        return [run for run in self.runs if run.result is None]

    def differing_rows(self, run: ClassRun) -> int | None:
        """How many rows of ``run`` differ from the native run's (None if either did not run)."""
        native = self.runs[0].result
        if native is None or run.result is None:
            return None
        return sum(int(a != b) for a, b in zip(native["row_hashes"], run.result["row_hashes"],
                                               strict=True))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (per-row hashes left out)."""
        return {
            "texts": self.texts,
            "same_bits_on_every_class": self.any_class,
            "ok": not self.problems(),
            "problems": self.problems(),
            "runs": [{"target": run.target.name, "label": run.target.label,
                      "isa_level": run.isa_level, "class": run.cpu_class,
                      "output_commitment": run.commitment, "kernels": run.kernels,
                      "rows_differing_from_native": self.differing_rows(run),
                      "error": run.error} for run in self.runs],
        }


def _run_everywhere(job: dict[str, Any], what: str, only: Sequence[str] | None,
                    timeout: float, log: Log) -> list[ClassRun]:
    """One worker job on every target in turn; a target that cannot run says why."""
    runs = []
    for target in _pick(only):
        if not target.available:
            runs.append(ClassRun(target, error=target.missing))
            continue
        log(f"{target.label}: {what}")
        try:
            runs.append(ClassRun(target, run_worker(target, job, timeout=timeout)))
        except WorkerError as exc:
            runs.append(ClassRun(target, error=str(exc)))
    return runs


def run_classes(spec_path: Path, texts: Sequence[str], *, only: Sequence[str] | None = None,
                timeout: float = DEFAULT_TIMEOUT, log: Log = lambda _: None) -> ClassReport:
    """Prove ``texts`` under ``spec_path`` on every target (``only``: native plus these)."""
    job = {"kind": "rows", "spec": str(spec_path.resolve()), "texts": list(texts)}
    any_class = cpu_independent(load_spec(spec_path).model_sha256)
    return ClassReport(_run_everywhere(job, f"{len(texts)} texts", only, timeout, log),
                       len(texts), any_class=any_class)


def render_classes(report: ClassReport) -> str:
    """A markdown table, one row per target, then the verdict."""
    native = report.runs[0].commitment
    with_kernels = any(run.kernels for run in report.runs)  # a model with a fused twin
    kernels_header = (" kernels |", "---|") if with_kernels else ("", "")
    lines = [f"| target | ISA level | CPU class |{kernels_header[0]} output commitment | "
             "vs native |", f"|---|---|---|{kernels_header[1]}---|---|"]
    for run in report.runs:
        kernels = f" {run.kernels or ''} |" if with_kernels else ""
        if run.result is None:
            lines.append(f"| {run.target.label} | | |{kernels} not run | |")
            continue
        differing = report.differing_rows(run)
        same = ("same" if run.commitment == native
                else f"differs ({differing} of {report.texts} rows)")
        lines.append(f"| {run.target.label} | {run.isa_level} | {run.cpu_class} |{kernels} "
                     f"{run.commitment} | {same} |")
    lines.append("")
    problems = report.problems()
    if problems:
        lines += [f"FAIL {p}" for p in problems]
    else:
        ran = sorted({str(r.cpu_class) for r in report.runs if r.result is not None})
        if report.any_class:
            lines.append(f"OK the same bytes on every class that ran, {report.texts} texts "
                         f"({', '.join(ran)})")
        else:
            lines.append(f"OK every class that ran is reproducible on {report.texts} texts "
                         f"({', '.join(ran)})")
    lines += [f"NOT RUN {r.target.name}: {r.error}" for r in report.missing()]
    return "\n".join(lines) + "\n"


# --- single ops -------------------------------------------------------------------------------

_FLOAT_SHAPE: Final = (64, 1536)
_SCORES_SHAPE: Final = (2, 12, 32, 37)  # a row length that is no multiple of a SIMD width


def _case(name: str, op: str, inputs: dict[str, np.ndarray[Any, Any]], *,
          domain: str = "", consts: dict[str, np.ndarray[Any, Any]] | None = None,
          **attrs: Any) -> tuple[str, Any, dict[str, np.ndarray[Any, Any]]]:
    from onnx import TensorProto, helper, numpy_helper  # noqa: PLC0415

    types = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.uint8): TensorProto.UINT8,
             np.dtype(np.int8): TensorProto.INT8, np.dtype(np.int64): TensorProto.INT64}
    consts = consts or {}
    names = [*inputs, *consts]
    if op == "QuantizeLinear":
        outputs = {"out": TensorProto.UINT8}
    elif op == "DynamicQuantizeLinear":
        outputs = {"out": TensorProto.UINT8, "out_scale": TensorProto.FLOAT,
                   "out_zero": TensorProto.UINT8}
    else:
        outputs = {"out": TensorProto.INT32 if op == "MatMulInteger" else TensorProto.FLOAT}
    node = helper.make_node(op, names, list(outputs), domain=domain, **attrs)
    graph = helper.make_graph(
        [node], name,
        [helper.make_tensor_value_info(k, types[v.dtype], list(v.shape))
         for k, v in inputs.items()],
        [helper.make_tensor_value_info(o, kind, None) for o, kind in outputs.items()],
        initializer=[numpy_helper.from_array(v, k) for k, v in consts.items()])
    opsets = [helper.make_opsetid("", 17)]
    if domain:
        opsets.append(helper.make_opsetid(domain, 1))
    model = helper.make_model(graph, opset_imports=opsets, ir_version=8)
    return name, model, inputs


def _cases(seed: int) -> list[tuple[str, Any, dict[str, np.ndarray[Any, Any]]]]:
    rng = np.random.default_rng(seed)

    def normal(*shape: int, scale: float = 1.0) -> np.ndarray[Any, Any]:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    x = normal(*_FLOAT_SHAPE, scale=2.0)
    y = normal(*_FLOAT_SHAPE)
    scores = normal(*_SCORES_SHAPE, scale=3.0)
    shifted = scores - scores.max(axis=-1, keepdims=True)
    axes = np.array([-1], dtype=np.int64)
    u8 = rng.integers(0, 256, (64, 384), dtype=np.uint8)
    return [
        _case("MatMul", "MatMul", {"a": normal(64, 384), "b": normal(384, 1536, scale=0.05)}),
        _case("Gemm", "Gemm", {"a": normal(64, 384), "b": normal(384, 1536, scale=0.05),
                               "c": normal(1536, scale=0.1)}),
        # the attention scores as the graph runs them: (L, B, h, d) operands read in place
        _case("FusedMatMul", "FusedMatMul", {"a": normal(32, 2, 12, 32),
                                             "b": normal(32, 2, 12, 32)},
              domain="com.microsoft", alpha=0.125, transB=1, transBatchA=1, transBatchB=1),
        _case("Softmax", "Softmax", {"x": scores}, axis=-1),
        _case("Exp", "Exp", {"x": shifted}),
        _case("Erf", "Erf", {"x": x}),
        _case("Tanh", "Tanh", {"x": x}),
        _case("Gelu", "Gelu", {"x": x}, domain="com.microsoft"),
        _case("LayerNormalization", "LayerNormalization",
              {"x": normal(64, 384, scale=3.0), "gamma": normal(384) + 1,
               "beta": normal(384, scale=0.1)}, axis=-1, epsilon=1e-12),
        _case("ReduceMax", "ReduceMax", {"x": scores}, axes=[-1], keepdims=1),
        _case("ReduceSum", "ReduceSum", {"x": scores}, consts={"axes": axes}, keepdims=1),
        _case("ReduceMean", "ReduceMean", {"x": scores}, axes=[-1], keepdims=1),
        _case("Add", "Add", {"x": x, "y": y}),
        _case("Sub", "Sub", {"x": x, "y": y}),
        _case("Mul", "Mul", {"x": x, "y": y}),
        _case("Div", "Div", {"x": x, "y": y}),
        _case("Sqrt", "Sqrt", {"x": np.abs(x)}),
        _case("MatMulInteger u8·s8", "MatMulInteger",
              {"a": u8, "b": rng.integers(-128, 128, (384, 1536), dtype=np.int8)}),
        _case("MatMulInteger u8·u8", "MatMulInteger",
              {"a": u8, "b": rng.integers(0, 256, (384, 1536), dtype=np.uint8)}),
        _case("DynamicQuantizeLinear", "DynamicQuantizeLinear", {"x": x}),
        # the int8 graph's kernels, on the value ranges it feeds them
        _case("MatMulIntegerToFloat u8·s7, column scales", "MatMulIntegerToFloat",
              {"a": rng.integers(1, 256, (64, 384), dtype=np.uint8),
               "b": rng.integers(-63, 64, (384, 1536), dtype=np.int8)},
              consts={"a_scale": np.array(1.0, np.float32),
                      "b_scale": (np.abs(normal(1536)) * 0.01 + 1e-4).astype(np.float32),
                      "a_zero": np.array(128, np.uint8)}, domain="com.microsoft"),
        _case("QuantizeLinear per row", "QuantizeLinear", {"x": x},
              consts={"scale": (np.abs(x).max(axis=1) / 127).astype(np.float32),
                      "zero": np.full(_FLOAT_SHAPE[0], 128, np.uint8)}, axis=0),
        _case("Round", "Round", {"x": x * np.float32(1000.0)}),
        _case("ReduceSum of whole numbers", "ReduceSum",
              {"x": np.rint(normal(64, 384) * np.float32(10000.0))},
              consts={"axes": axes}, keepdims=0),
        _case("Clip", "Clip", {"x": x}, consts={"low": np.array(-1.0, np.float32),
                                                "high": np.array(3.0, np.float32)}),
        _case("Relu", "Relu", {"x": x}),
        _case("Abs", "Abs", {"x": x}),
        _case("Max", "Max", {"x": x, "y": y}),
        _case("ReduceMin", "ReduceMin", {"x": scores}, axes=[-1], keepdims=0),
    ]


INT8_GRAPH_CASES: Final = frozenset({
    "Add", "Sub", "Mul", "Div", "Sqrt", "ReduceMax", "ReduceMin", "Round", "Clip", "Relu", "Abs",
    "Max", "ReduceSum of whole numbers", "QuantizeLinear per row",
    "MatMulIntegerToFloat u8·s7, column scales",
})
"""The measured cases that are the int8 graph's arithmetic, on its value ranges."""


def write_op_cases(folder: Path, *, seed: int = 0) -> list[str]:
    """Write each single-op model and its inputs into ``folder``; the op names, in order."""
    import onnx  # noqa: PLC0415

    names = []
    for index, (name, model, inputs) in enumerate(_cases(seed)):
        stem = f"{index:02d}"
        onnx.save(model, str(folder / f"{stem}.onnx"))
        savez: Any = np.savez  # its stubs take the inputs' names for its own keywords
        savez(folder / f"{stem}.npz", **inputs)
        names.append(name)
    return names


@dataclass
class OpsReport:
    """Per op, its output hash on every target that ran."""

    ops: list[str]
    runs: list[ClassRun]

    def hashes(self, run: ClassRun) -> list[str | None]:
        """The run's output hash per op, in op order (None when the run failed)."""
        if run.result is None:
            return [None] * len(self.ops)
        stored = run.result["hashes"]
        return [stored.get(f"{i:02d}") for i in range(len(self.ops))]


def run_ops(*, only: Sequence[str] | None = None, seed: int = 0,
            timeout: float = DEFAULT_TIMEOUT, log: Log = lambda _: None) -> OpsReport:
    """Run the single-op cases on every target (``only``: native plus these)."""
    with tempfile.TemporaryDirectory(prefix="cyberian-ops-") as tmp:
        ops = write_op_cases(Path(tmp), seed=seed)
        runs = _run_everywhere({"kind": "ops", "folder": tmp}, f"{len(ops)} single-op graphs",
                               only, timeout, log)
    return OpsReport(ops, runs)


def render_ops(report: OpsReport) -> str:
    """A markdown table: one row per op, one column per emulated target, vs the native run."""
    from ..models.portable_ops import FUSED_FP32_OPS, PORTABLE_FP32_OPS  # noqa: PLC0415

    native, others = report.runs[0], [r for r in report.runs[1:] if r.result is not None]
    header = [f"{r.target.name} ({class_of_level(str(r.isa_level))})" for r in others]
    native_name = f"native {native.isa_level}"
    lines = [f"| op (vs {native_name}) | {' | '.join(header)} | in the FP32 graph "
             f"| in the int8 graph |",
             "|---|" + "---|" * len(others) + "---|---|"]
    reference = report.hashes(native)
    columns = [report.hashes(r) for r in others]
    for index, op in enumerate(report.ops):
        cells = ["same" if column[index] == reference[index] else "**differs**"
                 for column in columns]
        name = op.split()[0]
        used = ("yes" if name in PORTABLE_FP32_OPS
                else "runs (fused by the optimiser)" if name in FUSED_FP32_OPS else "no")
        int8 = "yes" if op in INT8_GRAPH_CASES else "no"
        lines.append(f"| {op} | {' | '.join(cells)} | {used} | {int8} |")
    lines += [f"NOT RUN {r.target.name}: {r.error}" for r in report.runs if r.result is None]
    return "\n".join(lines) + "\n"
