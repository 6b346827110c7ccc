"""Test helper: build a plan's C with make (through the sandboxed ProcessRunner) and run its harness.

Builds are cached per artifact content, so hypothesis shrinking and repeated designs compile once.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from sigforge.dsp.pipeline import ArtifactPlan
from sigforge.toolchains.host import HostCompiler
from sigforge.toolchains.runner import ProcessRunner
from support import example_options

_BUILT: dict[str, Path] = {}


def _write(files: dict[str, bytes], root: Path) -> None:
    for rel, content in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def build(plan: ArtifactPlan, root: Path, runner: ProcessRunner, cc: HostCompiler) -> Path:
    """The harness executable of ``plan`` (built once per distinct file set)."""
    key = hashlib.sha256(b"".join(k.encode() + v for k, v in sorted(plan.files.items()))).hexdigest()[:16]
    if key not in _BUILT or not _BUILT[key].exists():
        work = root / key
        _write(plan.files, work)
        res = runner.run(["make", f"CC={cc.path}"], cwd=work, timeout_s=60, memory_mb=2048, max_file_mb=64)
        assert res.returncode == 0, res.stderr.decode()
        assert b"warning" not in res.stderr, res.stderr.decode()
        _BUILT[key] = work / "build" / "harness"
    return _BUILT[key]


def run_c_all(
    plan: ArtifactPlan, x: np.ndarray, root: Path, runner: ProcessRunner, cc: HostCompiler
) -> list[np.ndarray]:
    """Run the compiled harness on ``x`` (a whole number of frames) in the plan's input dtype.

    Returns every output, read from the file ``interface.json`` names for it (``OUT`` = ``out.bin``), as float64
    (complex128 for complex outputs).
    """
    exe = build(plan, root, runner, cc)
    iface = json.loads(plan.files["interface.json"])
    in_dt = np.dtype(iface["inputs"][0]["dtype"]).newbyteorder("<")
    work = exe.parent
    (work / "in.bin").write_bytes(np.asarray(x).astype(in_dt).tobytes())
    res = runner.run([str(exe), "in.bin", "out.bin"], cwd=work, timeout_s=20, memory_mb=512, max_file_mb=64)
    assert res.returncode == 0, res.stderr
    results = []
    for port in iface["outputs"]:
        out_dt = np.dtype(port["dtype"]).newbyteorder("<")
        wide = np.complex128 if out_dt.kind == "c" else np.float64
        results.append(np.fromfile(work / port["file"].replace("OUT", "out", 1), dtype=out_dt).astype(wide))
    return results


def run_c(plan: ArtifactPlan, x: np.ndarray, root: Path, runner: ProcessRunner, cc: HostCompiler) -> np.ndarray:
    """Output 0 of :func:`run_c_all`."""
    return run_c_all(plan, x, root, runner, cc)[0]


def rel_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """Largest absolute error (complex modulus) relative to the expected output's RMS (absolute when it is 0)."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    rms = float(np.sqrt(np.mean(np.abs(expected) ** 2))) if expected.size else 0.0
    err = float(np.max(np.abs(actual - expected))) if expected.size else 0.0
    return err / rms if rms > 0 else err


def example_input(path: Path, x: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """(signal for the translation, signal for running the example's Python) from a real test signal ``x``.

    Complex examples get ``x + 1j * x[::-1] / 2``. A ``prepend_zero`` example is run on ``[tiny, x...]`` with
    ``tiny = 1e-200`` standing for the zero and ``x[0] = 0.5``: NumPy's first discriminator output is then the
    angle of a positive real number, 0, as ours is by definition (with an exact zero in front, NumPy's
    ``angle(y0 * conj(0))`` is +-pi or 0 depending on the signs of zeros; see ``blocks.elementwise.angle``).
    """
    opts = example_options(path)
    xs = np.asarray(x, dtype=np.float64)
    if opts.get("input_dtype", "float32").startswith("complex"):
        xs = xs + 1j * xs[::-1] / 2
    if opts.get("reference") == "prepend_zero":
        xs = xs.copy()
        xs[0] = 0.5
    xs = xs.astype(dtype).astype(np.complex128 if np.iscomplexobj(xs) else np.float64)
    ref = np.concatenate([[1e-200], xs]) if opts.get("reference") == "prepend_zero" else xs
    return xs, ref
