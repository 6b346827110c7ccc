"""The shipped examples translate, and their golden models agree with running the example itself.

Running the example module here is fine: it is our own file. The translator itself never runs code. The input
dtype and the reference convention come from each example's ``# sigforge: key=value`` comments (``cbuild``).
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
    dtype = example_options(path).get("input_dtype", "float32")
    plan = translate(source, TranslationRequest(frame_length=240, input_dtype=dtype))
    namespace = runpy.run_path(str(path))
    func = namespace[plan.graph.name]
    x, ref = example_input(path, np.random.default_rng(5).standard_normal(240 * 3), dtype)
    np.testing.assert_allclose(plan.golden(x)[0], func(ref), rtol=1e-12, atol=1e-12)
