"""Report assembly (pure): output ports from interface.json, per-vector results, evidence and the summary line.

Invariants:
    * ``output_ports`` fails closed (``IntegrityError``): an unknown dtype, a missing ``samples_per_frame``, an
      output file that is not a plain name starting with ``OUT``, no outputs, or two outputs sharing a file.
    * Output 0 reads ``OUT.bin``, output i > 0 ``OUT.i.bin`` unless ``"file"`` names another pattern, in which
      ``OUT`` stands for the harness's OUT.bin path without ``.bin``.
    * Thresholds: the plan's tolerances apply to every float output; an int16 output must be bit-exact.
    * ``VectorRuns.add`` records every output of a vector: an output that could not be read is a failure with its
      problem, never a skip; every failing (output, vector) pair is listed in ``failures`` in the order seen.
    * A ``vectors`` row carries the metrics of its worst output (the first failing one, else the largest relative
      error) with ``output`` naming it; its ``passed``/``boundary_ok`` cover all outputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sigforge.dsp.types import DType
from sigforge.dsp.verify import Metrics, Samples, TestVector, Tolerances, compare, tolerances_for
from sigforge.errors import IntegrityError

PLOT_VECTORS = ("chirp", "impulse", "uniform")  # signal overlay, magnitude response, error spectrum
Kept = dict[str, tuple[Samples, Samples, Samples | None]]  # vector name -> (input, golden 0, target 0)


@dataclass(frozen=True, slots=True)
class OutputPort:
    """One output of the harness, as interface.json declares it."""

    index: int
    name: str
    dtype: DType
    samples_per_frame: int
    file: str  # pattern relative to OUT.bin's directory, "OUT" standing for OUT.bin's stem
    tolerances: Tolerances
    rate_factor: str = "1"
    varies: bool = False  # samples_per_frame is then the most per frame


def interface_dtype(value: Any, where: str) -> DType:
    """``value`` as a DType (IntegrityError naming ``where`` otherwise)."""
    try:
        return DType(value)
    except ValueError:
        raise IntegrityError(f"interface.json {where} names unknown dtype {value!r}") from None


def output_ports(interface: dict[str, Any], tolerances: Tolerances) -> list[OutputPort]:
    """The interface's outputs with their file patterns and thresholds (see the module docstring)."""
    ports = []
    for i, port in enumerate(interface.get("outputs") or []):
        dtype = interface_dtype(port.get("dtype"), f"outputs[{i}].dtype")
        file = str(port.get("file") or ("OUT.bin" if i == 0 else f"OUT.{i}.bin"))
        if not file.startswith("OUT") or "/" in file or "\\" in file or ".." in file:
            raise IntegrityError(f"interface.json outputs[{i}].file {file!r} must be a plain name starting OUT")
        if not isinstance(port.get("samples_per_frame"), int) or port["samples_per_frame"] < 1:
            raise IntegrityError(f"interface.json outputs[{i}].samples_per_frame must be a positive integer")
        tol = tolerances_for(dtype) if dtype is DType.INT16 else tolerances
        name, rate = str(port.get("name", f"out{i}")), str(port.get("rate_factor", "1"))
        varies = port.get("samples_per_frame_varies", False)
        if not isinstance(varies, bool):
            raise IntegrityError(f"interface.json outputs[{i}].samples_per_frame_varies must be true or false")
        ports.append(OutputPort(i, name, dtype, port["samples_per_frame"], file, tol, rate, varies))
    if not ports or len({p.file for p in ports}) != len(ports):
        raise IntegrityError("interface.json must declare at least one output, each with its own file")
    return ports


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats replaced by None (JSON has no infinities) and tuples as lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _row(vec: TestVector, results: list[Metrics | str], run_s: float) -> dict[str, Any]:
    row: dict[str, Any] = {"max_abs_error": None, "problem": None, "output": None}
    failing = [i for i, m in enumerate(results) if not isinstance(m, Metrics) or not m.passed]
    measured = [(i, m) for i, m in enumerate(results) if isinstance(m, Metrics)]
    first = results[failing[0]] if failing else None
    if isinstance(first, str):
        row.update(problem=first, output=failing[0])
    elif measured:
        worst = failing[0] if failing else max(measured, key=lambda im: im[1].max_rel_error)[0]
        metrics = results[worst]
        assert isinstance(metrics, Metrics)
        row.update(metrics.as_dict(), output=worst)
    row["passed"] = not failing
    row["boundary_ok"] = all(isinstance(m, Metrics) and m.boundary_ok for m in results)
    row.update({"name": vec.name, "description": vec.description, "frames": vec.frames,
                "samples_in": int(vec.samples.size), "run_s": run_s})  # fmt: skip
    return row


@dataclass(slots=True)
class VectorRuns:
    """Everything the vectors produced, gathered for the report."""

    ports: list[OutputPort]
    rows: list[dict[str, Any]] = field(default_factory=list)
    per_output: list[list[dict[str, Any]]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    kept: Kept = field(default_factory=dict)
    worst: float = 0.0

    def __post_init__(self) -> None:
        self.per_output = [[] for _ in self.ports]

    def add(self, vec: TestVector, actuals: list[Samples | str], references: list[Samples], run_s: float,
            boundaries: list[list[int] | None] | None = None) -> None:  # fmt: skip
        """Compare one vector's outputs (or the problems that kept them from being read) with the golden ones.

        ``boundaries``: per output, where each frame after the first starts when its samples per frame vary (None
        for a fixed output: multiples of ``samples_per_frame``)."""
        if len(references) != len(self.ports):
            n_ref, n_out = len(references), len(self.ports)
            raise IntegrityError(f"golden model returned {n_ref} outputs; interface.json declares {n_out}")
        results: list[Metrics | str] = []
        bounds = boundaries or [None] * len(self.ports)
        for port, actual, ref, bound in zip(self.ports, actuals, references, bounds, strict=True):
            if isinstance(actual, str):
                result: Metrics | str = actual
                entry: dict[str, Any] = {"vector": vec.name, "passed": False, "problem": actual}
            else:
                result = compare(actual, ref, port.tolerances, output_frame=port.samples_per_frame, boundaries=bound)
                entry = {"vector": vec.name, **result.as_dict()}
            results.append(result)
            self.per_output[port.index].append(entry)
            if entry["problem"] is not None:
                self.failures.append({"output": port.index, "output_name": port.name, "vector": vec.name,
                                      "problem": entry["problem"]})  # fmt: skip
            self.worst = max(self.worst, result.max_abs_error if isinstance(result, Metrics) else math.inf)
        if vec.name in PLOT_VECTORS:
            self.kept[vec.name] = (vec.samples, references[0], None if isinstance(actuals[0], str) else actuals[0])
        self.rows.append(_row(vec, results, run_s))

    @property
    def verified(self) -> bool:
        """Every output of every vector passed (and there was at least one vector)."""
        return bool(self.rows) and all(r["passed"] for r in self.rows)

    def summary(self, tol: Tolerances) -> str:
        """One line: verdict, vectors passed, worst error and the bound; the first failure's evidence if any."""
        passed = sum(1 for r in self.rows if r["passed"])
        outputs_note = f" over {len(self.ports)} outputs" if len(self.ports) > 1 else ""
        text = (
            f"{'verified' if self.verified else 'NOT verified'}: {passed}/{len(self.rows)} vectors within "
            f"{tol.dtype} tolerance{outputs_note} (max |error| {self.worst:.3g}, bound max({tol.max_rel_error:g} x "
            f"output RMS, {tol.abs_floor:g}))"
        )
        if self.failures:
            f = self.failures[0]
            text += f"; first failure: output {f['output']} ({f['output_name']}) on vector {f['vector']!r}: "
            text += str(f["problem"])
        return text

    def outputs_report(self) -> list[dict[str, Any]]:
        """The report's ``outputs`` list."""
        return [
            {
                "index": p.index,
                "name": p.name,
                "dtype": p.dtype.value,
                "file": p.file,
                "samples_per_frame": p.samples_per_frame,
                "samples_per_frame_varies": p.varies,
                "rate_factor": p.rate_factor,
                "thresholds": p.tolerances.as_dict(),
                "passed": all(v["passed"] for v in self.per_output[p.index]),
                "max_abs_error": max((v.get("max_abs_error", math.inf) for v in self.per_output[p.index]), default=0.0),
                "vectors": self.per_output[p.index],
            }
            for p in self.ports
        ]
