"""The translation pipeline (pure): source + request -> verified IR -> optimised IR -> artifact plan.

Invariants:
    * ``translate`` and ``check`` never run user code, spawn processes or touch storage.
    * The golden model in an ``ArtifactPlan`` evaluates the frontend's (unoptimised) graph, so verification
      checks the passes and the backend together.
    * Request problems raise ``InvalidInput`` subclasses with a ``pointer`` naming the request field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any

import msgspec
import numpy as np
import numpy.typing as npt

from sigforge.dsp import golden
from sigforge.dsp.backends import c as c_backend
from sigforge.dsp.blocks.gain import GainParams
from sigforge.dsp.frontends.python_subset import parse_python
from sigforge.dsp.ir import Graph, Op, describe, frame_multiple, has_frame_ops, total_decimation
from sigforge.dsp.passes import PassRecord, run_passes
from sigforge.dsp.types import DType
from sigforge.dsp.verify import Tolerances, full_scale, tolerances_for
from sigforge.errors import InvalidAlgorithm, InvalidInput, UnsupportedTarget

SUPPORTED_TARGETS: tuple[str, ...] = ("host-c",)
SUPPORTED_INPUT_DTYPES: tuple[str, ...] = ("float32", "float64", "complex64", "complex128", "int16")
MAX_FRAME_LENGTH = 1 << 22  # absolute ceiling; the service applies the configured, lower limit first


class TranslationRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """What to translate the source into."""

    target: str = "host-c"
    input_dtype: str = "float32"
    frame_length: Annotated[int, msgspec.Meta(gt=0)]
    entry: str | None = None
    sample_rate: float | None = None


class NodeSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One IR node, as shown before queueing."""

    id: str
    op: str
    description: str
    dtype: str
    samples_per_frame: int
    rate_factor: str
    line: int | None


class IRSummary(msgspec.Struct, frozen=True, kw_only=True):
    """The cheap front-end check's result."""

    entry: str
    target: str
    input_dtype: str
    frame_length: int
    output_samples_per_frame: int
    total_decimation: int
    nodes: list[NodeSummary]
    output_samples_per_frame_varies: bool = False  # output_samples_per_frame is then the most per frame
    frame_multiple: int = 1  # frame lengths that are multiples of this give every stream a fixed length


@dataclass(frozen=True, slots=True)
class ArtifactPlan:
    """Everything needed to build and verify one translation.

    Attributes:
        name: C-safe artifact name.
        target: the target name.
        files: relative path -> content (sources, header, harness, Makefile, interface.json).
        interface: the parsed ``interface.json``.
        golden: whole-signal golden model: input array -> one float64 array per output.
        tolerances: pass thresholds per output.
        graph: the optimised IR the files were generated from.
        passes: what each optimisation pass did.
        variant: the same algorithm translated for a frame length that is NOT a multiple of the graph's
            ``ir.frame_multiple`` (``frame_length + 1``), when the request's frame length is one and the graph is
            purely streaming (no frame operations): verification builds and checks it too, so the variable-length
            code path (phases carried across frames) is verified for every decimating or resampling algorithm.
            None when the request's own frame length already varies, or nothing decimates, or frame operations
            need whole frames.
    """

    name: str
    target: str
    files: dict[str, bytes]
    interface: dict[str, Any]
    golden: Callable[[npt.NDArray[np.float64]], list[npt.NDArray[np.float64]]]
    tolerances: Tolerances
    graph: Graph
    passes: list[PassRecord]
    variant: ArtifactPlan | None = None


def _validate(request: TranslationRequest) -> DType:
    if request.target not in SUPPORTED_TARGETS:
        raise UnsupportedTarget(
            f"unknown target {request.target!r}; supported targets: {', '.join(SUPPORTED_TARGETS)}",
            pointer="/target",
        )
    try:
        dtype = DType(request.input_dtype)
    except ValueError:
        known = ", ".join(d.value for d in DType)
        raise InvalidInput(
            f"unknown input dtype {request.input_dtype!r}; known: {known}", pointer="/input_dtype"
        ) from None
    if dtype.value not in SUPPORTED_INPUT_DTYPES:
        why = "complex streams come later" if dtype.is_complex else "fixed-point integer input comes later"
        raise UnsupportedTarget(
            f"input dtype {dtype.value} is not supported by target {request.target} yet ({why}); supported: "
            f"{', '.join(SUPPORTED_INPUT_DTYPES)}",
            pointer="/input_dtype",
        )
    if not 1 <= request.frame_length <= MAX_FRAME_LENGTH:
        raise InvalidInput(f"frame_length must be 1..{MAX_FRAME_LENGTH}, got {request.frame_length}",
                           pointer="/frame_length")  # fmt: skip
    if request.sample_rate is not None and not request.sample_rate > 0:
        raise InvalidInput(f"sample_rate must be positive, got {request.sample_rate}", pointer="/sample_rate")
    return dtype


def _frontend(source: str, request: TranslationRequest) -> Graph:
    dtype = _validate(request)
    if dtype is DType.INT16:
        # int16 input: the samples' integer values, converted to float32 (exact) on input; the graph is float32.
        graph = parse_python(source, frame_length=request.frame_length, input_dtype=DType.FLOAT32, entry=request.entry)
        _refuse_integer_arithmetic(graph)
        return graph
    return parse_python(source, frame_length=request.frame_length, input_dtype=dtype, entry=request.entry)


def _refuse_integer_arithmetic(graph: Graph) -> None:
    """Refuse elementwise arithmetic on the raw int16 stream: NumPy computes ``x + x`` or ``x * 2`` in int16 and
    wraps, while the translation works in float32. A non-integral gain (``x * 0.5``) promotes to float in NumPy
    too and is kept; ``x * 2`` is refused, as the frontend cannot tell it from ``x * 2.0``. Filters (lfilter,
    sosfilt, convolve, upfirdn) and frame operations convert to float first, as NumPy/SciPy do; decimation and
    delays keep the samples integral."""
    integral = {n.id for n in graph.inputs}
    for node in graph.nodes:
        if not integral.intersection(node.inputs):
            continue
        if node.op in (Op.DECIMATE, Op.DELAY):
            integral.add(node.id)
        elif node.op is Op.MAP or (isinstance(node.params, GainParams) and float(node.params.gain).is_integer()):
            raise InvalidAlgorithm(
                f"elementwise arithmetic ({describe(node)}) directly on the int16 input is not supported: NumPy "
                "would compute it in int16 and wrap; filter the input first (e.g. scipy.signal.lfilter) or request "
                "a float32 input",
                location=node.loc,
            )


def _rate(r: Any) -> str:
    return f"{r.numerator}/{r.denominator}" if r.denominator != 1 else str(r.numerator)


def summarize(graph: Graph, request: TranslationRequest) -> IRSummary:
    """The user-facing summary of a graph."""
    int16 = request.input_dtype == DType.INT16.value
    nodes = [
        NodeSummary(id=n.id, op=n.op.value, description=describe(n),
                    dtype=DType.INT16.value if int16 and n.op is Op.INPUT else n.out.dtype.value,
                    samples_per_frame=n.out.samples, rate_factor=_rate(n.out.rate),
                    line=n.loc.line if n.loc else None)
        for n in graph.nodes
    ]  # fmt: skip
    return IRSummary(
        entry=graph.name,
        target=request.target,
        input_dtype=request.input_dtype,
        frame_length=request.frame_length,
        output_samples_per_frame=graph.outputs[0].out.samples,
        total_decimation=total_decimation(graph),
        nodes=nodes,
        output_samples_per_frame_varies=graph.outputs[0].out.variable,
        frame_multiple=frame_multiple(graph),
    )


def check(source: str, request: TranslationRequest) -> IRSummary:
    """Cheap front-end-only validation (used before queueing a translation).

    Raises:
        InvalidAlgorithm: the source is malformed or outside the supported subset (with its location).
        InvalidInput / UnsupportedTarget: a bad request field (with its ``pointer``).
    """
    return summarize(_frontend(source, request), request)


def _tolerances(input_dtype: DType) -> Tolerances:
    """Thresholds for the (float) outputs. int16 input runs in float32, so float32's thresholds apply, with the
    absolute floor scaled to int16's full scale (32767) like the float floor is to 1.0."""
    if input_dtype is DType.INT16:
        f32_tol = tolerances_for(DType.FLOAT32)
        return replace(f32_tol, abs_floor=f32_tol.abs_floor * full_scale(DType.INT16))
    return tolerances_for(input_dtype)


def variant_frame_length(graph: Graph, frame_length: int) -> int | None:
    """A frame length for which ``graph``'s streams vary (``frame_length + 1``), when ``frame_length`` is a multiple
    of every decimation and the graph allows other lengths (no frame operations); else None."""
    multiple = frame_multiple(graph)
    if multiple == 1 or frame_length % multiple or has_frame_ops(graph) or frame_length + 1 > MAX_FRAME_LENGTH:
        return None
    return frame_length + 1


def translate(source: str, request: TranslationRequest, *, with_variant: bool = True) -> ArtifactPlan:
    """Translate ``source`` for ``request.target``.

    Args:
        source: the algorithm.
        request: target, dtype, frame length.
        with_variant: also translate the variable-frame variant (``ArtifactPlan.variant``) when there is one.

    Raises:
        InvalidAlgorithm, InvalidInput, UnsupportedTarget: as for ``check``.
    """
    graph = _frontend(source, request)
    optimised, log = run_passes(graph)
    in_dtype = DType(request.input_dtype)
    artifact = c_backend.generate(optimised, input_dtype=in_dtype)
    interface = dict(artifact.interface)
    interface["sample_rate"] = request.sample_rate
    files = dict(artifact.files)
    files["interface.json"] = c_backend.interface_json(interface)
    frontend_graph = graph

    def golden_model(x: npt.NDArray[np.float64]) -> list[npt.NDArray[np.float64]]:
        return golden.evaluate(frontend_graph, x)

    other = variant_frame_length(graph, request.frame_length) if with_variant else None
    variant = None
    if other is not None:
        variant = translate(source, msgspec.structs.replace(request, frame_length=other), with_variant=False)
    return ArtifactPlan(
        name=artifact.name,
        target=request.target,
        files=files,
        interface=interface,
        golden=golden_model,
        tolerances=_tolerances(in_dtype),
        graph=optimised,
        passes=log,
        variant=variant,
    )
