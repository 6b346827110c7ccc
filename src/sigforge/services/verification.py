"""Build a translation's artifact, run it on test vectors and compare with the golden model.

Invariants:
    * Every process (make, the compiler, the harness) runs through ``ProcessRunner`` with the configured limits.
    * Verification fails closed: a build failure raises ``ToolchainError``; a harness that exits non-zero, writes
      the wrong number of samples or produces non-finite values fails its vector (``verified`` is False).
    * The outcome's files are the plan's files plus ``report.json`` and ``MANIFEST.sha256``; build outputs and
      vectors stay in ``workdir/build`` and never enter the artifact.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from sigforge import __version__
from sigforge.dsp.pipeline import ArtifactPlan
from sigforge.dsp.verify import compare, generate_vectors
from sigforge.errors import IntegrityError, ToolchainError
from sigforge.settings import LimitSettings
from sigforge.toolchains.host import HostCompiler
from sigforge.toolchains.runner import ProcessRunner

REPORT_SCHEMA = "sigforge.report/1"
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


def _run_vector(
    runner: ProcessRunner, limits: LimitSettings, workdir: Path, name: str, x: np.ndarray[Any, Any]
) -> tuple[np.ndarray[Any, Any] | None, float, str | None]:
    vec_dir = workdir / "build" / "vectors"
    vec_dir.mkdir(parents=True, exist_ok=True)
    in_path, out_path = vec_dir / f"{name}.in.bin", vec_dir / f"{name}.out.bin"
    in_path.write_bytes(x.astype("<f4").tobytes())
    out_path.unlink(missing_ok=True)
    result = runner.run(
        [str(workdir / "build" / "harness"), str(in_path), str(out_path)],
        cwd=workdir,
        timeout_s=limits.run_timeout_s,
        memory_mb=limits.run_memory_mb,
        max_file_mb=limits.max_file_mb,
    )
    if result.timed_out:
        return None, result.duration_s, f"harness timed out after {limits.run_timeout_s} s"
    if result.returncode != 0 or not out_path.is_file():
        err = result.stderr.decode(errors="replace")[-500:]
        return None, result.duration_s, f"harness exited with {result.returncode}: {err}"
    data = out_path.read_bytes()
    if len(data) % 4:
        return None, result.duration_s, f"harness wrote {len(data)} bytes, not whole float32 samples"
    return np.frombuffer(data, dtype="<f4").astype(np.float64), result.duration_s, None


def build_and_verify(
    plan: ArtifactPlan, *, runner: ProcessRunner, limits: LimitSettings, workdir: Path, cc: HostCompiler
) -> VerificationOutcome:
    """Build ``plan`` in ``workdir``, run every test vector and compare with the golden model.

    Raises:
        ToolchainError: the build failed (the compiler's stderr, truncated, is in ``detail``).
        IntegrityError: the plan holds a file name that is not a plain relative path.
    """
    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    write_files(plan.files, workdir)
    # A harness left by an earlier build must never be mistaken for this one.
    (workdir / "build" / "harness").unlink(missing_ok=True)
    build_s = _build(plan, runner, limits, workdir, cc)
    (out_port,) = plan.interface["outputs"]
    out_frame = int(out_port["samples_per_frame"])
    tol = plan.tolerances
    rows: list[dict[str, Any]] = []
    worst = 0.0
    for vec in generate_vectors(int(plan.interface["frame_length"])):
        (reference,) = plan.golden(vec.samples)
        actual, run_s, problem = _run_vector(runner, limits, workdir, vec.name, vec.samples)
        if actual is None:
            row: dict[str, Any] = {"passed": False, "boundary_ok": False, "max_abs_error": None, "problem": problem}
            worst = float("inf")
        else:
            metrics = compare(actual, reference, tol, output_frame=out_frame)
            row = metrics.as_dict()
            worst = max(worst, metrics.max_abs_error)
        row.update({"name": vec.name, "frames": vec.frames, "samples_in": int(vec.samples.size), "run_s": run_s})
        rows.append(row)
    verified = all(r["passed"] for r in rows)
    passed = sum(1 for r in rows if r["passed"])
    summary = (
        f"{'verified' if verified else 'NOT verified'}: {passed}/{len(rows)} vectors within {tol.dtype} "
        f"tolerance (max |error| {worst:.3g}, bound {tol.max_rel_error:g} x output RMS)"
    )
    report: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "sigforge_version": __version__,
        "name": plan.name,
        "target": plan.target,
        "verified": verified,
        "max_abs_error": worst if math.isfinite(worst) else None,
        "summary": summary,
        "interface": plan.interface,
        "thresholds": tol.as_dict(),
        "toolchain": {
            "cc": cc.path,
            "version": cc.version,
            "build": "make",
            "cflags": plan.interface["build"]["cflags"],
        },
        "passes": [{"name": p.name, "nodes_before": p.nodes_before, "nodes_after": p.nodes_after} for p in plan.passes],
        "vectors": rows,
        "timings": {"build_s": build_s, "run_s": sum(r["run_s"] for r in rows), "total_s": time.monotonic() - started},
        "sandbox": {"network": runner.network},
    }
    files = dict(plan.files)
    # JSON has no infinities; an unmeasurable error is already null in its row.
    files["report.json"] = (json.dumps(report, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()
    files["MANIFEST.sha256"] = manifest(files)
    return VerificationOutcome(verified, files, report, worst, summary)
