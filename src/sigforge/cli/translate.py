"""``sigforge translate``: the worker's pipeline, in-process, with a one-screen summary.

Exit 0 when verified, 1 when verification failed, 2 on bad input (the message names the line and column).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from sigforge.cli.db import open_database
from sigforge.db import migrate
from sigforge.dsp import pipeline
from sigforge.errors import InvalidInput
from sigforge.logging import configure_logging
from sigforge.services.context import Actor
from sigforge.services.jobs import BuildEnvironment, verify_source
from sigforge.services.verification import VerificationOutcome
from sigforge.settings import Settings

EXIT_VERIFIED, EXIT_FAILED = 0, 1


def _read_source(path: str, limit: int) -> str:
    file = Path(path)
    try:
        size = file.stat().st_size
        if size > limit:
            raise InvalidInput(f"{path}: {size} bytes is over the {limit}-byte limit (limits.max_source_bytes)")
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read: {exc.strerror}") from None


def _prepare_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InvalidInput(f"--out {out}: directory is not empty (use --force to write into it)")
    out.mkdir(parents=True, exist_ok=True)


def _num(value: object, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, int | float) and not isinstance(value, bool) else "-"


def _summary(outcome: VerificationOutcome, out: Path, source: str, request: pipeline.TranslationRequest) -> str:
    verdict = "VERIFIED" if outcome.verified else "VERIFICATION FAILED"
    lines = [
        f"{verdict}: {source} -> {request.target} ({request.input_dtype}, frame {request.frame_length})",
        f"  max abs error: {_num(outcome.max_abs_error, '.3g')}",
        f"  {'vector':<12} {'ok':<4} {'max|err|':>10} {'err/RMS':>10} {'SNR dB':>8}  boundary",
    ]
    for vector in outcome.report.get("vectors", []):
        lines.append(
            f"  {vector.get('name', '?')!s:<12} {'yes' if vector.get('passed') else 'NO':<4} "
            f"{_num(vector.get('max_abs_error'), '10.3g')} {_num(vector.get('max_rel_error'), '10.3g')} "
            f"{_num(vector.get('snr_db'), '8.1f')}  {'ok' if vector.get('boundary_ok') else 'DISCONTINUOUS'}"
        )
    lines.append(f"  {outcome.summary}")
    lines.append(f"  artifact: {out}/ ({len(outcome.files)} files; `make -C {out}` builds {out}/build/harness)")
    if "report.html" in outcome.files:
        lines.append(f"  report:   {out}/report.html")
    return "\n".join(lines)


def run_translate(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging("warning", "console")
    source = _read_source(args.source, settings.limits.max_source_bytes)
    if not 0 < args.frame <= settings.limits.max_frame_length:
        raise InvalidInput(f"--frame must be between 1 and {settings.limits.max_frame_length}, got {args.frame}")
    request = pipeline.TranslationRequest(
        target=args.target,
        input_dtype=args.input_dtype,
        frame_length=args.frame,
        entry=args.entry,
        sample_rate=args.sample_rate,
    )
    pipeline.check(source, request)  # refuse bad input before touching the output directory
    out = Path(args.out)
    _prepare_out(out, args.force)
    db = open_database(settings)
    try:
        migrate.ensure_at_head(db)
        env = BuildEnvironment.from_settings(settings, db)
        with tempfile.TemporaryDirectory(prefix="sigforge-cli-") as scratch:
            outcome = verify_source(source, request, env, scratch=Path(scratch), actor=Actor("cli"))
    finally:
        db.dispose()
    for rel, content in outcome.files.items():
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    print(_summary(outcome, out, args.source, request))
    return EXIT_VERIFIED if outcome.verified else EXIT_FAILED
