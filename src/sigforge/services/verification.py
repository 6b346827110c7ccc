"""Build a translation's artifact, run it on test vectors and compare every output with the golden model.

Invariants:
    * Every process (make, the compiler, the harness) runs through ``ProcessRunner`` with the configured limits.
    * Verification fails closed: a build failure raises ``ToolchainError``; an interface naming an unknown dtype or
      an unsafe output file, or a golden model returning the wrong number of outputs, raises ``IntegrityError``; a
      harness that exits non-zero, omits an output file, writes a wrong number of samples or non-finite values
      fails its vector (``verified`` is False) and the failure is listed as evidence (output, vector, problem).
    * Harness I/O: ``harness IN.bin OUT.bin``; IN holds the vector in ``inputs[0].dtype`` (raw little-endian,
      complex interleaved, int16 ``<i2``). Output 0 is OUT.bin, output i > 0 is ``OUT.i.bin`` unless the output's
      ``"file"`` in interface.json names another pattern, in which ``OUT`` stands for OUT.bin's name without
      ``.bin`` (e.g. ``"OUT.iq.bin"``). Each output is read in its own dtype and compared with ``golden(x)[i]``.
    * Thresholds: the plan's ``tolerances`` apply to every float output; an int16 output must be bit-exact.
    * The outcome's files are the plan's files plus ``report.json``, ``report.html``, ``plots/*.svg`` and
      ``MANIFEST.sha256`` (which lists all the others); build outputs and vectors stay in ``workdir/build``.

Report schema ``sigforge.report/2`` (``/1`` plus): ``outputs`` (per output: index, name, dtype, file,
samples_per_frame, thresholds, passed, max_abs_error, and per-vector metrics), ``failures`` (the evidence),
``traceability``, ``plots``, ``vector_set``; each ``vectors`` row now also has ``description`` and ``output``
and its metrics are those of the vector's worst output (the first failing one, else the largest relative error),
while its ``passed``/``boundary_ok`` cover every output (identical to ``/1`` for one-output plans). A metric's
``bound`` is now ``max(max_rel_error x RMS, abs_floor)`` (``/1`` used ``abs_floor`` only for a silent output).
Non-finite numbers are written as null.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path, PurePosixPath
from typing import Any

from sigforge import __version__
from sigforge.dsp.ir import frame_starts
from sigforge.dsp.pipeline import ArtifactPlan
from sigforge.dsp.report.assemble import Kept, OutputPort, VectorRuns, interface_dtype, json_safe, output_ports
from sigforge.dsp.report.html import render_html
from sigforge.dsp.report.plots import Plot, error_spectrum_plot, magnitude_plot, signal_plot
from sigforge.dsp.report.trace import traceability
from sigforge.dsp.types import DType
from sigforge.dsp.verify import (
    DEFAULT_SEED,
    MIN_VECTOR_SAMPLES,
    Samples,
    TestVector,
    decode_samples,
    encode_samples,
    generate_vectors,
)
from sigforge.errors import IntegrityError, ToolchainError
from sigforge.settings import LimitSettings
from sigforge.toolchains.host import HostCompiler
from sigforge.toolchains.runner import ProcessRunner

REPORT_SCHEMA = "sigforge.report/2"
STDERR_KEEP = 4000  # characters of compiler stderr kept in an error's detail


@dataclass(frozen=True, slots=True)
class VerificationOutcome:
    """Result of building and verifying one plan."""

    verified: bool
    files: dict[str, bytes]
    report: dict[str, Any]
    max_abs_error: float
    summary: str


def _safe_relpath(name: str) -> PurePosixPath:
    rel = PurePosixPath(name)
    if rel.is_absolute() or not rel.parts or any(p in ("..", "") for p in rel.parts) or "\\" in name:
        raise IntegrityError(f"artifact file name {name!r} is not a plain relative path")
    return rel


def write_files(files: dict[str, bytes], workdir: Path) -> None:
    """Write artifact files under ``workdir`` (refusing absolute or escaping paths)."""
    for name, content in files.items():
        target = workdir.joinpath(*_safe_relpath(name).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def manifest(files: dict[str, bytes]) -> bytes:
    """``sha256sum``-format manifest of ``files``, sorted by path."""
    lines = [f"{hashlib.sha256(files[name]).hexdigest()}  {name}\n" for name in sorted(files)]
    return "".join(lines).encode()


def _build(plan: ArtifactPlan, runner: ProcessRunner, limits: LimitSettings, workdir: Path,
           cc: HostCompiler) -> float:  # fmt: skip
    result = runner.run(
        ["make", f"CC={cc.path}"],
        cwd=workdir,
        env=dict(cc.env),
        timeout_s=limits.build_timeout_s,
        memory_mb=limits.build_memory_mb,
        max_file_mb=limits.max_file_mb,
    )
    if result.returncode != 0 or not (workdir / "build" / "harness").is_file():
        why = "timed out" if result.timed_out else f"exited with {result.returncode}"
        stderr = result.stderr.decode(errors="replace")
        raise ToolchainError(
            f"building {plan.name} with {cc.path} failed ({why})",
            detail={"stderr": stderr[-STDERR_KEEP:], "compiler": cc.path, "version": cc.version},
        )
    return result.duration_s


def _run_vector(runner: ProcessRunner, limits: LimitSettings, workdir: Path, vec: TestVector,
                ports: list[OutputPort]) -> tuple[list[Samples | str], float]:  # fmt: skip
    """Each output's samples, or the problem that kept it from being read; and the run time."""
    vec_dir = workdir / "build" / "vectors" / vec.name
    vec_dir.mkdir(parents=True, exist_ok=True)
    for stale in vec_dir.iterdir():
        stale.unlink()
    in_path, out_path = vec_dir / "in.bin", vec_dir / "out.bin"
    in_path.write_bytes(encode_samples(vec.samples, vec.dtype))
    result = runner.run(
        [str(workdir / "build" / "harness"), str(in_path), str(out_path)],
        cwd=workdir,
        timeout_s=limits.run_timeout_s,
        memory_mb=limits.run_memory_mb,
        max_file_mb=limits.max_file_mb,
    )
    if result.timed_out:
        return [f"harness timed out after {limits.run_timeout_s} s"] * len(ports), result.duration_s
    if result.returncode != 0:
        err = result.stderr.decode(errors="replace")[-500:]
        return [f"harness exited with {result.returncode}: {err}"] * len(ports), result.duration_s
    outputs: list[Samples | str] = []
    for port in ports:
        path = vec_dir / ("out" + port.file[3:])
        if not path.is_file():
            outputs.append(f"harness wrote no {port.file} for output {port.index}")
            continue
        try:
            outputs.append(decode_samples(path.read_bytes(), port.dtype))
        except ValueError as exc:
            outputs.append(f"output {port.index} ({port.file}): {exc}")
    return outputs, result.duration_s


def _output_rate(plan: ArtifactPlan, port: OutputPort) -> float | None:
    fs = plan.interface.get("sample_rate")
    try:
        return float(fs) * float(Fraction(port.rate_factor)) if fs else None
    except (TypeError, ValueError, ZeroDivisionError):
        return None


def _plots(plan: ArtifactPlan, port: OutputPort, kept: Kept) -> list[Plot]:
    fs = _output_rate(plan, port)
    out: list[Plot] = []
    if "chirp" in kept:
        x, gold, target = kept["chirp"]
        out.append(signal_plot(x, gold, target, in_frame=int(plan.interface["frame_length"]),
                               out_frame=port.samples_per_frame, vector="chirp"))  # fmt: skip
    if "impulse" in kept:
        _, gold, target = kept["impulse"]
        out.append(magnitude_plot(gold, target, fs=fs))
    if "uniform" in kept and kept["uniform"][2] is not None and kept["uniform"][2].size == kept["uniform"][1].size:
        _, gold, target = kept["uniform"]
        assert target is not None
        out.append(error_spectrum_plot(gold, target, fs=fs, vector="uniform"))
    return out


def build_and_verify(
    plan: ArtifactPlan, *, runner: ProcessRunner, limits: LimitSettings, workdir: Path, cc: HostCompiler
) -> VerificationOutcome:
    """Build ``plan`` in ``workdir``, run every test vector and compare every output with the golden model.

    Raises:
        ToolchainError: the build failed (the compiler's stderr, truncated, is in ``detail``).
        IntegrityError: a file name that is not a plain relative path, or a malformed interface (see module doc).
    """
    started = time.monotonic()
    in_dtype = interface_dtype((plan.interface.get("inputs") or [{}])[0].get("dtype"), "inputs[0].dtype")
    ports = output_ports(plan.interface, plan.tolerances)
    build_s, vectors, runs, golden_s = _build_and_run(plan, runner=runner, limits=limits, workdir=workdir, cc=cc,
                                                      ports=ports, in_dtype=in_dtype)  # fmt: skip
    variable_frames, variant_runs = _variant(plan, runner=runner, limits=limits, workdir=workdir, cc=cc,
                                             in_dtype=in_dtype)  # fmt: skip
    verified = runs.verified and (variant_runs is None or variant_runs.verified)
    summary = runs.summary(plan.tolerances)
    if variant_runs is not None:
        n = variable_frames["variant"]["frame_length"]
        summary += (f"; frame length {n} (samples per frame vary): "
                    f"{variant_runs.summary(plan.tolerances)}")  # fmt: skip
    t_report = time.monotonic()
    plots = _plots(plan, ports[0], runs.kept)
    vector_set = {"dtype": in_dtype.value, "frames": vectors[0].frames, "samples": int(vectors[0].samples.size),
                  "seed": DEFAULT_SEED, "min_samples": MIN_VECTOR_SAMPLES}  # fmt: skip
    toolchain = {"cc": cc.path, "version": cc.version, "build": "make",
                 "cflags": (plan.interface.get("build") or {}).get("cflags")}  # fmt: skip
    report: dict[str, Any] = json_safe({
        "schema": REPORT_SCHEMA,
        "sigforge_version": __version__,
        "name": plan.name,
        "target": plan.target,
        "verified": verified,
        "max_abs_error": runs.worst,
        "summary": summary,
        "interface": plan.interface,
        "thresholds": plan.tolerances.as_dict(),
        "toolchain": toolchain,
        "passes": [{"name": p.name, "nodes_before": p.nodes_before, "nodes_after": p.nodes_after} for p in plan.passes],
        "vectors": runs.rows,
        "vector_set": vector_set,
        "variable_frames": variable_frames,
        "outputs": runs.outputs_report(),
        "failures": runs.failures,
        "traceability": traceability(plan.files),
        "plots": [{"name": p.name, "file": p.file, "title": p.title, "caption": p.caption} for p in plots],
        "sandbox": {"network": runner.network},
    })  # fmt: skip
    run_s = sum(r["run_s"] for r in runs.rows)
    report["timings"] = {"build_s": build_s, "run_s": run_s, "golden_s": golden_s,
                         "report_s": time.monotonic() - t_report, "total_s": time.monotonic() - started}  # fmt: skip
    files = dict(plan.files)
    files["report.json"] = (json.dumps(report, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()
    files["report.html"] = render_html(report, plots).encode()
    files.update({p.file: p.svg.encode() for p in plots})
    files["MANIFEST.sha256"] = manifest(files)
    worst = max(runs.worst, variant_runs.worst if variant_runs is not None else 0.0)
    return VerificationOutcome(verified, files, report, worst, summary)


def _build_and_run(plan: ArtifactPlan, *, runner: ProcessRunner, limits: LimitSettings, workdir: Path,
                   cc: HostCompiler, ports: list[OutputPort],
                   in_dtype: DType) -> tuple[float, list[TestVector], VectorRuns, float]:  # fmt: skip
    """Build ``plan`` in ``workdir`` and compare every output on every vector: (build s, vectors, runs, golden s).

    Outputs whose samples per frame vary are checked at the frame boundaries the graph's count function gives."""
    workdir.mkdir(parents=True, exist_ok=True)
    write_files(plan.files, workdir)
    # A harness left by an earlier build must never be mistaken for this one.
    (workdir / "build" / "harness").unlink(missing_ok=True)
    build_s = _build(plan, runner, limits, workdir, cc)
    frame_length = int(plan.interface["frame_length"])
    vectors = generate_vectors(frame_length, dtype=in_dtype, min_samples=MIN_VECTOR_SAMPLES)
    streams = [o.out for o in plan.graph.outputs]
    runs, golden_s = VectorRuns(ports), 0.0
    for vec in vectors:
        t0 = time.monotonic()
        references = list(plan.golden(vec.samples))
        golden_s += time.monotonic() - t0
        actuals, run_s = _run_vector(runner, limits, workdir, vec, ports)
        bounds: list[list[int] | None] | None = None
        if len(streams) == len(ports):
            bounds = [frame_starts(s, frame_length, vec.frames) if s.variable else None for s in streams]
        runs.add(vec, actuals, references, run_s, bounds)
    return build_s, vectors, runs, golden_s


def _variant(plan: ArtifactPlan, *, runner: ProcessRunner, limits: LimitSettings, workdir: Path, cc: HostCompiler,
             in_dtype: DType) -> tuple[dict[str, Any], VectorRuns | None]:  # fmt: skip
    """Verify ``plan.variant`` (the algorithm at a frame length its decimation does not divide) in its own build
    directory; the report's ``variable_frames`` section says what was run and why."""
    frame_length = int(plan.interface["frame_length"])
    varies = any(o.out.variable for o in plan.graph.outputs)
    section: dict[str, Any] = {"frame_length": frame_length, "frame_multiple": plan.interface.get("frame_multiple", 1),
                               "samples_per_frame_vary": varies, "variant": None}  # fmt: skip
    if plan.variant is None:
        section["note"] = (
            "the requested frame length already gives varying samples per frame" if varies else
            "no variant: nothing decimates or resamples, or frame operations need whole frames"
        )  # fmt: skip
        return section, None
    v = plan.variant
    ports = output_ports(v.interface, v.tolerances)
    where = workdir / "variable_frames"
    build_s, _vectors, runs, _golden_s = _build_and_run(v, runner=runner, limits=limits, ports=ports, cc=cc,
                                                        workdir=where, in_dtype=in_dtype)  # fmt: skip
    section["variant"] = {
        "frame_length": int(v.interface["frame_length"]),
        "why": "the requested frame length is a multiple of every decimation; this run checks the code for frame "
               "lengths that are not (the decimation phase carried across frames)",
        "verified": runs.verified,
        "summary": runs.summary(v.tolerances),
        "build_s": build_s,
        "vectors": runs.rows,
        "outputs": runs.outputs_report(),
        "failures": runs.failures,
    }  # fmt: skip
    return section, runs
