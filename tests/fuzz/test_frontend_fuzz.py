"""The front end never crashes: random programs, random ASTs and mutated examples get a result or a located
DomainError — never another exception, never a hang, never execution of the input."""

from __future__ import annotations

import ast
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sigforge.dsp import pipeline
from sigforge.errors import DomainError
from support import REPO_ROOT

REQUEST = pipeline.TranslationRequest(frame_length=64)
EXAMPLES = sorted((REPO_ROOT / "examples").glob("*.py"))
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NAMES = ["x", "y", "np", "signal", "scipy", "TAPS", "lfilter", "firwin", "abs", "len", "open", "__import__", "os"]
ATTRS = ["signal", "lfilter", "firwin", "fft", "pi", "abs", "real", "system", "__class__", "__globals__"]


def check(source: str) -> None:
    try:
        pipeline.check(source, REQUEST)
    except DomainError as exc:
        assert exc.message, "every refusal says what is wrong"
        if exc.location is not None:
            assert exc.location.line >= 1 and exc.location.column >= 0


def expressions() -> st.SearchStrategy[ast.expr]:
    leaves = st.one_of(
        st.sampled_from(NAMES).map(lambda n: ast.Name(id=n, ctx=ast.Load())),
        st.one_of(
            st.integers(-(10**12), 10**12),
            st.floats(allow_nan=True, allow_infinity=True),
            st.text(string.printable, max_size=8),
            st.booleans(),
            st.none(),
        ).map(lambda v: ast.Constant(value=v)),
    )

    def extend(children: st.SearchStrategy[ast.expr]) -> st.SearchStrategy[ast.expr]:
        ops = st.sampled_from([ast.Add(), ast.Sub(), ast.Mult(), ast.Div(), ast.Pow(), ast.MatMult(), ast.Mod()])
        return st.one_of(
            st.builds(ast.BinOp, left=children, op=ops, right=children),
            st.builds(ast.UnaryOp, op=st.sampled_from([ast.USub(), ast.Not(), ast.Invert()]), operand=children),
            st.builds(
                ast.Call,
                func=children,
                args=st.lists(children, max_size=4),
                keywords=st.lists(
                    st.builds(ast.keyword, arg=st.sampled_from(["window", "fs", "btype", "output"]), value=children),
                    max_size=2,
                ),
            ),
            st.builds(ast.Attribute, value=children, attr=st.sampled_from(ATTRS), ctx=st.just(ast.Load())),
            st.builds(
                ast.Subscript,
                value=children,
                slice=st.one_of(children, st.builds(ast.Slice, lower=st.none(), upper=st.none(), step=children)),
                ctx=st.just(ast.Load()),
            ),
            st.builds(ast.List, elts=st.lists(children, max_size=4), ctx=st.just(ast.Load())),
            st.builds(ast.Tuple, elts=st.lists(children, max_size=3), ctx=st.just(ast.Load())),
            st.builds(ast.Lambda, args=st.just(ast.arguments([], [], None, [], [], None, [])), body=children),
        )

    return st.recursive(leaves, extend, max_leaves=12)


@st.composite
def modules(draw: st.DrawFn) -> str:
    body: list[ast.stmt] = [
        ast.Import(names=[ast.alias(name="numpy", asname="np")]),
        ast.ImportFrom(module="scipy", names=[ast.alias(name="signal")], level=0),
    ]
    for _ in range(draw(st.integers(0, 2))):
        body.append(ast.Assign(targets=[ast.Name(id="TAPS", ctx=ast.Store())], value=draw(expressions())))
    fn_body: list[ast.stmt] = [
        ast.Assign(targets=[ast.Name(id="y", ctx=ast.Store())], value=draw(expressions()))
        for _ in range(draw(st.integers(0, 2)))
    ]
    fn_body.append(ast.Return(value=draw(expressions())))
    args = ast.arguments([], [ast.arg(arg="x")], None, [], [], None, [])
    body.append(ast.FunctionDef(name="f", args=args, body=fn_body, decorator_list=[], returns=None, type_params=[]))
    module = ast.fix_missing_locations(ast.Module(body=body, type_ignores=[]))
    return ast.unparse(module)


@FUZZ
@given(modules())
def test_random_asts_never_crash_the_front_end(source: str) -> None:
    check(source)


@FUZZ
@given(st.text(alphabet=string.printable + "é\x00", max_size=300))
def test_random_text_never_crashes_the_front_end(source: str) -> None:
    check(source)


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_mutated_examples_never_crash_the_front_end(example: Path, data: st.DataObject) -> None:
    source = example.read_text()
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(source)))
        j = data.draw(st.integers(i, min(len(source), i + 12)))
        insert = data.draw(st.sampled_from(["", "(", ")", "[", ":", ",", "x", "0", "-1e308", " ", "\n", "**", "np."]))
        source = source[:i] + insert + source[j:]
    check(source)


def test_the_input_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    source = (
        f"import os\nopen({str(marker)!r}, 'w').write('x')\n"
        f"TAPS = [__import__('os').system('touch {marker}')]\n"
        "def f(x):\n    return x\n"
    )
    check(source)
    assert not marker.exists()
