"""Golden models, frame-by-frame state, IR verification and the passes."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from sigforge.dsp.blocks import decimate, fir
from sigforge.dsp.blocks.decimate import DecimateParams
from sigforge.dsp.blocks.fir import FirParams
from sigforge.dsp.blocks.gain import GainParams
from sigforge.dsp.frontends.python_subset import parse_python
from sigforge.dsp.golden import StreamingModel, evaluate
from sigforge.dsp.ir import Graph, Op, verify
from sigforge.dsp.passes import eliminate_dead_code, fold_gains, fuse_decimation, run_passes
from sigforge.dsp.types import DType, StreamType
from sigforge.errors import InvalidAlgorithm

CHAIN = """
from scipy import signal
TAPS = signal.firwin(31, 0.2)
def f(x):
    y = 2.0 * signal.lfilter(TAPS, 1.0, 0.5 * x)
    dead = signal.lfilter([1.0, -1.0], 1.0, x)
    y = y[::2]
    y = signal.lfilter([0.25, 0.5, 0.25], 1.0, y) / 4
    return -y[::3]
"""


def chain(frame_length: int = 48) -> Graph:
    return parse_python(CHAIN, frame_length=frame_length, input_dtype=DType.FLOAT32)


def scipy_chain(x: np.ndarray) -> np.ndarray:
    y = 2.0 * signal.lfilter(signal.firwin(31, 0.2), 1.0, 0.5 * x)[::2]
    return -(signal.lfilter([0.25, 0.5, 0.25], 1.0, y) / 4)[::3]


def test_golden_model_matches_scipy() -> None:
    x = np.random.default_rng(1).standard_normal(480)
    np.testing.assert_allclose(evaluate(chain(), x)[0], scipy_chain(x), rtol=1e-12, atol=1e-13)


@settings(max_examples=15, deadline=None)
@given(
    taps=st.lists(st.floats(-1, 1), min_size=1, max_size=40),
    factor=st.integers(1, 6),
    sizes=st.lists(st.integers(0, 50), min_size=1, max_size=8).filter(lambda s: sum(s) > 0),
)
def test_streaming_blocks_equal_whole_signal(taps: list[float], factor: int, sizes: list[int]) -> None:
    """Any frame sizes, even not multiples of the decimation: the phase is carried too."""
    x = np.random.default_rng(len(sizes)).standard_normal(sum(sizes))
    params = FirParams(tuple(taps), factor)
    whole = fir.reference(params, x)
    expected = signal.lfilter(taps, 1.0, x)[::factor]
    np.testing.assert_allclose(whole, expected, rtol=1e-9, atol=1e-9)
    stream, dec = fir.Streamer(params), decimate.Streamer(DecimateParams(factor))
    parts, dparts, start = [], [], 0
    for n in sizes:
        parts.append(stream.process(x[start : start + n]))
        dparts.append(dec.process(x[start : start + n]))
        start += n
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(np.concatenate(dparts), x[::factor])


def test_streaming_model_of_graph_carries_state_across_frames() -> None:
    g = chain(48)
    x = np.random.default_rng(2).standard_normal(48 * 5)
    model = StreamingModel(g)
    framed = np.concatenate([model.process(x[i : i + 48])[0] for i in range(0, x.size, 48)])
    np.testing.assert_allclose(framed, scipy_chain(x), rtol=1e-12, atol=1e-13)
    model.reset()
    np.testing.assert_allclose(model.process(x[:48])[0], scipy_chain(x[:48]), atol=1e-13)


def test_passes_keep_semantics_and_shrink_the_graph() -> None:
    g = chain()
    opt, log = run_passes(g)
    x = np.random.default_rng(3).standard_normal(48 * 4)
    np.testing.assert_allclose(evaluate(opt, x)[0], evaluate(g, x)[0], rtol=1e-12, atol=1e-13)
    assert [n.op for n in opt.nodes] == [Op.INPUT, Op.FIR, Op.FIR, Op.OUTPUT]
    assert [n.params.decimation for n in opt.nodes if n.op is Op.FIR] == [2, 3]
    assert len(log) == 5 and log[0].nodes_after < log[0].nodes_before  # the dead lfilter went first


@pytest.mark.parametrize("single", [fold_gains, fuse_decimation, eliminate_dead_code])
def test_each_pass_alone_keeps_semantics(single) -> None:
    g = chain()
    out = single(g)
    verify(out)
    x = np.random.default_rng(4).standard_normal(96)
    np.testing.assert_allclose(evaluate(out, x)[0], evaluate(g, x)[0], rtol=1e-12, atol=1e-13)


def test_gain_without_fir_stays_and_unit_gain_goes() -> None:
    g = parse_python("def f(x):\n    return 3 * x[::2] * 1\n", frame_length=8, input_dtype=DType.FLOAT32)
    opt, _ = run_passes(g)
    assert [n.op for n in opt.nodes] == [Op.INPUT, Op.DECIMATE, Op.GAIN, Op.OUTPUT]
    assert next(n for n in opt.nodes if n.op is Op.GAIN).params == GainParams(3.0)


def _broken(graph: Graph, index: int, **changes) -> Graph:
    nodes = list(graph.nodes)
    nodes[index] = replace(nodes[index], **changes)
    return replace(graph, nodes=tuple(nodes))


def test_verify_catches_broken_graphs() -> None:
    g = chain()
    verify(g)
    fir_i = next(i for i, n in enumerate(g.nodes) if n.op is Op.FIR)
    dec_i = next(i for i, n in enumerate(g.nodes) if n.op is Op.DECIMATE)
    f32 = DType.FLOAT32
    cases = {
        "dangling": _broken(g, fir_i, inputs=("nope",)),
        "wrong rate": _broken(g, dec_i, out=StreamType(f32, 48, Fraction(1))),
        "wrong dtype": _broken(g, fir_i, out=replace(g.nodes[fir_i].out, dtype=DType.FLOAT64)),
        "params/op mismatch": _broken(g, fir_i, params=GainParams(1.0)),
        "indivisible": _broken(g, dec_i, params=DecimateParams(5)),
        "arity": _broken(g, fir_i, inputs=(g.nodes[0].id, g.nodes[0].id)),
        "cycle": _broken(g, fir_i, inputs=(g.nodes[-1].id,)),
        "no output": replace(g, nodes=g.nodes[:-1]),
        "duplicate id": _broken(g, fir_i, id=g.nodes[0].id),
        "bad taps": _broken(g, fir_i, params=FirParams((float("nan"),))),
    }
    for name, broken in cases.items():
        with pytest.raises(InvalidAlgorithm, match="IR check failed"):
            verify(broken)
        assert name


def test_verify_error_points_at_source() -> None:
    g = chain()
    fir_i = next(i for i, n in enumerate(g.nodes) if n.op is Op.FIR)
    with pytest.raises(InvalidAlgorithm) as info:
        verify(_broken(g, fir_i, inputs=("nope",)))
    assert info.value.location == g.nodes[fir_i].loc
    assert info.value.location is not None and info.value.location.line == 5


def test_run_passes_verifies_after_each_pass() -> None:
    def evil(graph: Graph) -> Graph:
        return replace(graph, nodes=graph.nodes[:-1])  # drops the output

    with pytest.raises(InvalidAlgorithm, match="no output"):
        run_passes(chain(), passes=(("evil", evil),))
