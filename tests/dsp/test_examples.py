"""The shipped examples translate, and their golden models agree with running the example itself.

Running the example module here is fine: it is our own file. The translator itself never runs code. The input
dtype, the frame length (default 240) and the reference convention (``per_frame``: the function is applied to
each frame alone, for frame operations; ``prefix``: the stream is the first samples of the function's output on the
whole signal, for ``upfirdn``, whose whole-signal output ends with the filter tail) come from each example's
``# sigforge: key=value`` comments.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest
from cbuild import example_input, example_options

from sigforge.dsp.pipeline import TranslationRequest, translate

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.py"))


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_translates_and_matches_its_python(path: Path) -> None:
    source = path.read_text()
    opts = example_options(path)
    dtype = opts.get("input_dtype", "float32")
    n = int(opts.get("frame_length", "240"))
    plan = translate(source, TranslationRequest(frame_length=n, input_dtype=dtype))
    namespace = runpy.run_path(str(path))
    func = namespace[plan.graph.name]
    x, ref = example_input(path, np.random.default_rng(5).standard_normal(n * 3), dtype)
    if opts.get("reference") == "per_frame":  # frame operations: the function applied to each frame alone
        expected = np.concatenate([np.atleast_1d(func(ref[i : i + n])) for i in range(0, ref.size, n)])
    elif opts.get("reference") == "prefix":  # upfirdn: the stream is the whole-signal output without the filter tail
        expected = np.asarray(func(ref))[: plan.golden(x)[0].size]
        assert expected.size == ref.size * plan.graph.outputs[0].out.rate
    else:
        expected = func(ref)
    np.testing.assert_allclose(plan.golden(x)[0], expected, rtol=1e-12, atol=1e-12)
