"""The Python frontend: accepted spellings and located refusals."""

from __future__ import annotations

import textwrap
from fractions import Fraction

import numpy as np
import pytest
from scipy import signal

from sigforge.dsp import pipeline
from sigforge.dsp.frontends.python_subset import parse_python
from sigforge.dsp.golden import evaluate
from sigforge.dsp.ir import Op
from sigforge.dsp.types import DType
from sigforge.errors import InvalidAlgorithm, InvalidInput


def parse(src: str, frame_length: int = 64, entry: str | None = None):
    return parse_python(textwrap.dedent(src), frame_length=frame_length, input_dtype=DType.FLOAT32, entry=entry)


def ops(graph):
    return [n.op for n in graph.nodes]


SPELLINGS = {
    "from_scipy_import_signal": """
        import numpy as np
        from scipy import signal
        TAPS = signal.firwin(31, 0.2)
        def f(x):
            return 0.5 * signal.lfilter(TAPS, 1.0, x)[::4]
    """,
    "import_scipy_signal": """
        import scipy.signal
        TAPS = scipy.signal.firwin(31, 0.2)
        def f(x):
            return 0.5 * scipy.signal.lfilter(TAPS, 1.0, x)[::4]
    """,
    "import_scipy_signal_as": """
        import scipy.signal as sps
        def f(x):
            return sps.lfilter(sps.firwin(31, 0.2), 1.0, x)[::4] * 0.5
    """,
    "from_scipy_signal_import": """
        from scipy.signal import lfilter, firwin
        M = 4
        G = 1 / 2
        def f(x):
            y = lfilter(firwin(31, 0.2), [1.0], x)
            z = y[::M]
            return G * z
    """,
    "numpy_alias_and_constants": """
        import numpy
        from scipy import signal as s
        N = 30 + 1
        CUT = 0.1 * 2
        TAPS = s.firwin(N, CUT)
        def f(sig):
            '''docstring is fine'''
            y = s.lfilter(b=TAPS, a=1, x=sig)
            y = y[::2]
            y = y[::2]
            return y / 2.0
    """,
}


@pytest.mark.parametrize("name", sorted(SPELLINGS))
def test_spellings_translate_to_the_same_semantics(name: str) -> None:
    graph = parse(SPELLINGS[name])
    x = np.random.default_rng(0).standard_normal(256)
    expected = 0.5 * signal.lfilter(signal.firwin(31, 0.2), 1.0, x)[::4]
    (y,) = evaluate(graph, x)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    assert graph.outputs[0].out.samples == 16
    assert Op.FIR in ops(graph)


def test_literal_taps_augassign_negation_and_numpy_constructors() -> None:
    graph = parse(
        """
        import numpy as np
        from scipy import signal
        def avg(x):
            y = signal.lfilter(np.ones(4) / 4, 1.0, x)
            y *= 2
            y = -y
            return signal.lfilter((0.5, 0.5), 1.0, y)
        """
    )
    x = np.arange(64.0)
    expected = signal.lfilter([0.5, 0.5], 1.0, -2 * signal.lfilter(np.ones(4) / 4, 1.0, x))
    np.testing.assert_allclose(evaluate(graph, x)[0], expected)


def test_entry_selects_among_functions_and_main_guard_is_ignored() -> None:
    src = """
        from scipy import signal
        def a(x):
            return signal.lfilter([1.0, 1.0], 1.0, x)
        def b(x):
            return 3 * x
        if __name__ == "__main__":
            print("never run")
    """
    assert parse(src, entry="b").name == "b"
    with pytest.raises(InvalidAlgorithm, match="exactly one public"):
        parse(src)
    with pytest.raises(InvalidAlgorithm, match="`c` is not defined"):
        parse(src, entry="c")


def test_unused_assignments_are_allowed() -> None:
    graph = parse(
        """
        from scipy import signal
        def f(x):
            unused = signal.lfilter([1.0, 2.0], 1.0, x)
            return x[::2]
        """
    )
    assert graph.outputs[0].out.samples == 32


# (source, line, column, message fragment). Columns are 0-based, as ast reports them.
BAD = [
    ("def f(x):\n    return x[::2\n", 2, None, "malformed Python"),
    ("import numpy as np\ndef f(x):\n    return np.fft.fft2(x)\n", 3, 11, "np.fft.fft2"),
    ("def f(x):\n    return y\n", 2, 11, "unknown name `y`"),
    ("def f(x):\n    return exec('1')\n", 2, 11, "`exec` is not allowed"),
    ("def f(x):\n    return eval('x')\n", 2, 11, "`eval` is not allowed"),
    ("def f(x):\n    return __import__('os')\n", 2, 11, "`__import__` is not allowed"),
    ("import os\ndef f(x):\n    return x\n", 1, 7, "import of `os` is not allowed"),
    ("from os import path\ndef f(x):\n    return x\n", 1, 0, "import from `os`"),
    ("def f(x):\n    return os.system('ls')\n", 2, 11, "unknown name `os`"),
    ("import numpy as np\ndef f(x):\n    return np.linalg.inv(x)\n", 3, 11, "np.linalg"),
    ("def f(x):\n    g = lambda v: v\n    return x\n", 2, 8, "lambda expression"),
    ("def f(x):\n    for i in range(3):\n        x = x\n    return x\n", 2, 4, "for loop"),
    ("def f(x):\n    while True:\n        pass\n    return x\n", 2, 4, "while loop"),
    ("def f(x):\n    return x / x\n", 2, 11, "operator Div on signals"),
    ("def f(x):\n    return x[1:]\n", 2, 11, "only decimation"),
    ("def f(x):\n    return x[::0]\n", 2, 15, "positive integer"),
    ("def f(x):\n    return x[::2.0]\n", 2, 15, "positive integer"),
    ("from scipy import signal\ndef f(x):\n    return signal.lfilter([1.0], [1.0, -1.0], x)\n", 3, 11, "unstable IIR"),
    ("from scipy import signal\ndef f(x):\n    return signal.lfilter(x, 1.0, x)\n", 3, 11, "constant coefficients"),
    (
        "from scipy import signal\ndef f(x):\n    return signal.lfilter(signal.firwin(x, 0.2), 1.0, x)\n",
        3,
        26,
        "needs constant arguments",
    ),
    (
        "from scipy import signal\ndef f(x):\n    return signal.lfilter(signal.firwin(n, 0.2), 1.0, x)\n",
        3,
        40,
        "unknown name `n`",
    ),
    ("from scipy import signal\nT = signal.firwin(31, 1.5)\ndef f(x):\n    return x\n", 2, 4, "firwin rejected"),
    ("from scipy import signal\nT = signal.firwin(10**9, 0.1)\ndef f(x):\n    return x\n", 2, 4, "numtaps"),
    ("from scipy import signal\ndef f(x):\n    return signal.lfilter([1.0], 1.0, x, axis=0)\n", 3, 11, "axis"),
    ("def f(x):\n    return x * [[1.0, 2.0]]\n", 2, 11, "must be 1-D"),
    ("def f(x):\n    return x / 0\n", 2, 11, "division of a signal by zero"),
    ("def f(x):\n    return x.__class__\n", 2, 11, "private attribute"),
    ("def f(x):\n    return x.shape\n", 2, 11, "attribute access"),
    ("def f(x):\n    print(x)\n    return x\n", 2, 4, "expression statement"),
    ("def f(x):\n    return 1.0\n", 2, 4, "not a constant"),
    ("def f(x):\n    y = x\n", 1, 0, "no return"),
    ("def f(x, y):\n    return x\n", 1, 0, "exactly one parameter"),
    ("@decorate\ndef f(x):\n    return x\n", 1, 1, "decorators"),
    ("class C:\n    pass\ndef f(x):\n    return x\n", 1, 0, "class definition"),
    ("T = [1.0] * 10\ndef f(x):\n    return x\n", 1, 4, "arithmetic on lists"),
    ("T = 10 ** 10 ** 10\ndef f(x):\n    return x\n", 1, 4, "exponent too large"),
    ("T = 1 / 0\ndef f(x):\n    return x\n", 1, 4, "division by zero"),
    ("def f(x):\n    return [v for v in x]\n", 2, 11, "list comprehension"),
    ("def f(x):\n    return x if True else x\n", 2, 11, "conditional expression"),
    ("def f(x):\n    return x\n    x = x\n", 3, 4, "after `return`"),
    ("def f(x):\n    a, b = x, x\n    return a\n", 2, 11, "lists may hold only constants"),
    ("def f(x):\n    a.b = x\n    return a\n", 2, 4, "plain names"),
    ("from numpy import *\ndef f(x):\n    return x\n", 1, 18, "import *"),
    ("import numpy as np\ndef f(x):\n    return np.frombuffer(x)\n", 3, 11, "numpy.frombuffer"),
    ("def f(x):\n    return open('/etc/passwd')\n", 2, 11, "`open` is not allowed"),
    ("def f(x):\n    return (lambda: x)()\n", 2, 12, "lambda expression"),
]


@pytest.mark.parametrize(("src", "line", "column", "fragment"), BAD, ids=[b[3] for b in BAD])
def test_bad_input_is_refused_with_its_location(src: str, line: int, column: int | None, fragment: str) -> None:
    with pytest.raises(InvalidAlgorithm) as info:
        parse_python(src, frame_length=64, input_dtype=DType.FLOAT32)
    err = info.value
    assert fragment in err.message, err.message
    assert err.location is not None
    assert err.location.line == line
    if column is not None:
        assert err.location.column == column


def test_syntax_error_column_matches_python() -> None:
    src = "def f(x):\n    return x +* 2\n"
    with pytest.raises(InvalidAlgorithm) as info:
        parse_python(src, frame_length=8, input_dtype=DType.FLOAT32)
    try:
        compile(src, "<s>", "exec", flags=0, dont_inherit=True)  # compile only: never executed
    except SyntaxError as exc:
        assert info.value.location is not None
        assert info.value.location.line == exc.lineno
        assert info.value.location.column == (exc.offset or 1) - 1


def test_null_bytes_and_deep_nesting_are_refused_cleanly() -> None:
    with pytest.raises(InvalidAlgorithm):
        parse_python("def f(x):\n    return x\0\n", frame_length=8, input_dtype=DType.FLOAT32)
    deep = "def f(x):\n    return " + "-" * 500 + "x\n"
    with pytest.raises(InvalidAlgorithm, match="nested"):
        parse_python(deep, frame_length=8, input_dtype=DType.FLOAT32)


def test_frame_length_not_dividing_the_decimation_gives_a_variable_stream() -> None:
    src = "def f(x):\n    y = x[::2]\n    return y[::3]\n"
    fixed = parse_python(src, frame_length=12, input_dtype=DType.FLOAT32).outputs[0].out
    assert (fixed.samples, fixed.variable) == (2, False)
    out = parse_python(src, frame_length=8, input_dtype=DType.FLOAT32).outputs[0].out
    assert (out.samples, out.variable, out.rate, out.frame_multiple) == (2, True, Fraction(1, 6), 6)
    # a frame operation on it is refused, at its line, with the frame lengths that work
    with pytest.raises(InvalidInput) as info:
        parse_python("import numpy as np\n" + src.replace("return y[::3]", "return np.fft.fft(y[::3])"),
                     frame_length=8, input_dtype=DType.FLOAT32)  # fmt: skip
    assert info.value.pointer == "/frame_length"
    assert "multiple of 6" in info.value.message
    assert info.value.location is not None and info.value.location.line == 4


def test_user_code_is_never_executed(tmp_path) -> None:
    marker = tmp_path / "ran"
    src = f"open({str(marker)!r}, 'w').write('x')\ndef f(x):\n    return x\n"
    with pytest.raises(InvalidAlgorithm):
        parse_python(src, frame_length=8, input_dtype=DType.FLOAT32)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("source", "line", "column"),
    [
        # Columns count characters, like SyntaxError's: "é" is one column although it is two UTF-8 bytes.
        ('import numpy as np\n\ndef f(x):\n    s = "é"; return np.fft.fft2(x)\n', 4, 20),
        ('def f(x):\n    s = "é"; return x[::4\n', 2, 21),
        ('import numpy as np\n\ndef f(x):\n    s = "\U0001f4e1"; return np.fft.fft2(x)\n', 4, 20),
    ],
)
def test_columns_count_characters_not_bytes(source: str, line: int, column: int) -> None:
    with pytest.raises(InvalidAlgorithm) as info:
        pipeline.check(source, pipeline.TranslationRequest(frame_length=64))
    assert info.value.location is not None
    assert (info.value.location.line, info.value.location.column) == (line, column)
