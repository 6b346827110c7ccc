"""The pipeline's request handling and the host-C backend's files (no compiler needed here)."""

from __future__ import annotations

import json
import re

import msgspec
import numpy as np
import pytest
from scipy import signal

from sigforge.dsp.backends.c import c_identifier
from sigforge.dsp.pipeline import (
    SUPPORTED_INPUT_DTYPES,
    SUPPORTED_TARGETS,
    IRSummary,
    TranslationRequest,
    check,
    translate,
)
from sigforge.errors import InvalidAlgorithm, InvalidInput, UnsupportedTarget

SRC = """
import numpy as np
from scipy import signal
TAPS = signal.firwin(63, 0.1)

def channelize(x):
    return 0.5 * signal.lfilter(TAPS, 1.0, x)[::4]
"""


def test_translate_produces_the_artifact_files() -> None:
    plan = translate(SRC, TranslationRequest(frame_length=256, sample_rate=48000.0))
    assert plan.name == "channelize"
    assert set(plan.files) == {"channelize.h", "channelize.c", "harness.c", "Makefile", "interface.json"}
    iface = json.loads(plan.files["interface.json"])
    assert iface == plan.interface
    assert iface["inputs"] == [{"name": "x", "dtype": "float32", "samples_per_frame": 256,
                                "samples_per_frame_varies": False, "rate_factor": "1"}]  # fmt: skip
    assert iface["outputs"] == [
        {"name": "y", "dtype": "float32", "samples_per_frame": 64, "samples_per_frame_varies": False,
         "rate_factor": "1/4", "file": "OUT.bin"}
    ]  # fmt: skip
    assert iface["frame_multiple"] == 4
    assert iface["entry"] == "channelize" and iface["frame_length"] == 256 and iface["sample_rate"] == 48000.0
    header = plan.files["channelize.h"].decode()
    for proto in (
        "void channelize_init(channelize_state *s);",
        "void channelize_reset(channelize_state *s);",
        "size_t channelize_process(channelize_state *s, const float *restrict in, float *restrict out);",
        "size_t channelize_out_count(const channelize_state *s, int i);",
    ):
        assert proto in header
    source = plan.files["channelize.c"].decode()
    assert "from source line 7" in source  # the FIR loop names the line it came from
    assert "polyphase" in source
    makefile = plan.files["Makefile"].decode()
    assert re.search(r"^\t\$\(CC\) \$\(CFLAGS\) \$\(SIGFORGE_CFLAGS\)", makefile, re.M)
    assert "CFLAGS ?= -O3 -march=native -ffp-contract=fast" in makefile and "-std=c99 -Wall" in makefile
    assert iface["build"]["cflags"] == "-O3 -march=native -ffp-contract=fast -std=c99 -Wall -Wextra"
    rules = [r for r in re.findall(r"^([A-Za-z/_.]+):", makefile, re.M) if not r.startswith(".")]
    assert rules[0] == "all" and "all: build/harness" in makefile  # the default goal builds the harness
    (golden,) = plan.golden(np.arange(512.0))
    np.testing.assert_allclose(golden, 0.5 * signal.lfilter(signal.firwin(63, 0.1), 1.0, np.arange(512.0))[::4])
    assert plan.tolerances.dtype == "float32"
    # 256 is a multiple of the decimation: verification also checks frames of 257 (samples per frame vary)
    assert plan.variant is not None and plan.variant.interface["frame_length"] == 257
    assert plan.variant.interface["outputs"][0]["samples_per_frame_varies"] is True


def test_taps_are_emitted_as_exact_float32() -> None:
    plan = translate(SRC, TranslationRequest(frame_length=64))
    body = plan.files["channelize.c"].decode().split("channelize_taps")[0]
    block = plan.files["channelize.c"].decode().split("n2_taps[63] = {")[1].split("}")[0]
    taps = np.array([float(t.strip().rstrip("f")) for t in block.split(",")], dtype=np.float32)
    expected = (0.5 * signal.firwin(63, 0.1)).astype(np.float32)  # the gain was folded into the taps
    np.testing.assert_array_equal(taps, expected)
    assert body


def test_check_returns_a_summary_without_building() -> None:
    summary = check(SRC, TranslationRequest(frame_length=128))
    assert isinstance(summary, IRSummary)
    assert summary.entry == "channelize" and summary.total_decimation == 4
    assert summary.output_samples_per_frame == 32
    assert [n.op for n in summary.nodes] == ["input", "fir", "decimate", "gain", "output"]
    assert msgspec.json.decode(msgspec.json.encode(summary), type=IRSummary) == summary


def test_request_validation() -> None:
    assert SUPPORTED_TARGETS == ("host-c",)
    assert SUPPORTED_INPUT_DTYPES == ("float32", "float64", "complex64", "complex128", "int16")
    with pytest.raises(UnsupportedTarget) as info:
        translate(SRC, TranslationRequest(target="verilog", frame_length=64))
    assert info.value.pointer == "/target" and "host-c" in info.value.message
    for complex_dtype in ("complex64", "complex128"):
        summary = check(SRC, TranslationRequest(input_dtype=complex_dtype, frame_length=64))
        assert {n.dtype for n in summary.nodes} == {complex_dtype}
    assert check(SRC, TranslationRequest(input_dtype="int16", frame_length=64)).input_dtype == "int16"
    with pytest.raises(InvalidInput, match="unknown input dtype"):
        check(SRC, TranslationRequest(input_dtype="float16", frame_length=64))
    varying = check(SRC, TranslationRequest(frame_length=66))  # 66 is not a multiple of 4: 17 or 16 per frame
    assert (varying.output_samples_per_frame, varying.output_samples_per_frame_varies) == (17, True)
    assert varying.frame_multiple == 4
    with pytest.raises(InvalidInput):
        check(SRC, TranslationRequest(frame_length=0))
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"frame_length": 0}, TranslationRequest)
    with pytest.raises(InvalidAlgorithm):
        check("def f(x):\n    return x +\n", TranslationRequest(frame_length=8))


def test_names_become_safe_c_identifiers() -> None:
    assert c_identifier("channelize") == "channelize"
    assert c_identifier("main") == "main_dsp"
    assert c_identifier("café") == "caf"
    assert c_identifier("__x") == "x"
    assert c_identifier("_") == "dsp"
    plan = translate("def main(x):\n    return x\n", TranslationRequest(frame_length=8))
    assert "main_dsp.c" in plan.files
    assert "memcpy(out, in" in plan.files["main_dsp.c"].decode()


def test_no_user_text_reaches_generated_files() -> None:
    src = 'T = 2.0  # */ #include "EVIL.h"\ndef f(x):\n    """*/ system("EVIL"); /*"""\n    return T * x\n'
    plan = translate(src, TranslationRequest(frame_length=8))
    for name, content in plan.files.items():
        assert b"EVIL" not in content and b"system(" not in content, name
