"""Refusals of the IIR, design-time and elementwise subset: precise message, line and column."""

from __future__ import annotations

import time

import pytest

from sigforge.dsp.frontends.python_subset import parse_python
from sigforge.dsp.types import DType
from sigforge.errors import InvalidAlgorithm

H = "import numpy as np\nfrom scipy import signal\n"  # two lines: user code starts at line 3
# (source after H, line, column, message fragment)
BAD = [
    ("def f(x):\n    return signal.lfilter([1.0], [1.0, -1.0], x)\n", 4, 11, "magnitude 1.000000000"),
    ("def f(x):\n    return signal.lfilter([1.0], [1.0, -2.5], x)\n", 4, 11, "magnitude 2.500000000"),
    ("def f(x):\n    return signal.lfilter([1.0], [1.0, 0.0, 1.0], x)\n", 4, 11, "unstable IIR"),
    ("S = np.array([[1, 0, 0, 1, -2.1, 1.1]])\ndef f(x):\n    return signal.sosfilt(S, x)\n", 5, 11, "unstable"),
    ("def f(x):\n    return signal.lfilter([1.0], [0.0, 1.0], x)\n", 4, 11, "a[0]"),
    ("def f(x):\n    return signal.lfilter([1.0], x, x)\n", 4, 11, "constant coefficients b and a"),
    ("def f(x):\n    return signal.sosfilt(np.ones(5), x)\n", 4, 11, "shape (n, 6)"),
    ("def f(x):\n    return signal.sosfilt(x, x)\n", 4, 11, "constant (n, 6) array"),
    ("def f(x):\n    return signal.sosfilt(np.ones(6), x, zi=0)\n", 4, 11, "zi="),
    ("def f(x):\n    return signal.lfilter(*signal.butter(2, 0.1), x)\n", 4, 11, "*args"),
    ("N = 4\ndef f(x):\n    b, a = signal.butter(N, x)\n    return x\n", 5, 11, "needs constant arguments"),
    ("B = signal.butter(33, 0.1)\ndef f(x):\n    return x\n", 3, 4, "'N' must be an integer 1..32"),
    ("B = signal.butter(4.5, 0.1)\ndef f(x):\n    return x\n", 3, 4, "'N' must be an integer"),
    ("T = signal.firwin(100000, 0.1)\ndef f(x):\n    return x\n", 3, 4, "'numtaps' must be an integer 1..8192"),
    ("T = signal.remez(5000, [0, .1, .2, .5], [1, 0])\ndef f(x):\n    return x\n", 3, 4, "1..1024"),
    ("T = signal.remez(51, [0, .1, .2, .5], [1, 0], grid_density=10**6)\ndef f(x):\n    return x\n", 3, 4,
     "grid_density"),
    ("T = signal.firwin2(51, [0, 1], [1, 0], nfreqs=2**30)\ndef f(x):\n    return x\n", 3, 4, "nfreqs"),
    ("T = np.zeros(10**8)\ndef f(x):\n    return x\n", 3, 4, "'shape' must be an integer 1..8192"),
    ("T = np.arange(0, 1e9)\ndef f(x):\n    return x\n", 3, 4, "numpy.arange would make"),
    ("T = np.linspace(0, 1, 10**7)\ndef f(x):\n    return x\n", 3, 4, "'num'"),
    ("T = signal.get_window('hann', 10**9)\ndef f(x):\n    return x\n", 3, 4, "'Nx'"),
    ("A = np.array([np.ones(8000)])\nB = A * np.array([[1.0], [2.0]])\ndef f(x):\n    return x\n", None, None, None),
    ("A = np.array([np.ones(8000)])\nB = A * np.array([[1.0], [2.0], [3], [4], [5], [6], [7], [8], [9]])\n"
     "def f(x):\n    return x\n", 4, 4, "72000 elements; the limit is 65536"),
    ("B = signal.butter(4, 0.1, analog=True)\ndef f(x):\n    return x\n", 3, 4, "analog designs cannot be streamed"),
    ("B = signal.butter(4, 0.1, output='zpk')\ndef f(x):\n    return x\n", 3, 4, "output='zpk' is not supported"),
    ("B = signal.butter(4, 0.1, worN=3)\ndef f(x):\n    return x\n", 3, 4, "keyword 'worN' is not supported"),
    ("T = signal.firwin(31, 0.1, nyq=1)\ndef f(x):\n    return x\n", 3, 4, "keyword 'nyq' is not supported"),
    ("B = signal.butter(4, 1.5)\ndef f(x):\n    return x\n", 3, 4, "signal.butter rejected its arguments"),
    ("B = signal.freqz([1.0])\ndef f(x):\n    return x\n", 3, 4, "not supported"),
    ("b, a, c = signal.butter(2, 0.1)\ndef f(x):\n    return x\n", 3, 10, "cannot unpack 2 values into 3"),
    ("def f(x):\n    return np.sqrt(x * 1j)\n", 4, 11, "sqrt of a complex stream is not supported"),
    ("def f(x):\n    return np.maximum(x, 1j)\n", 4, 11, "maximum takes real constants only"),
    ("def f(x):\n    return np.angle(x[1:] * np.conj(x[:-2]))\n", 4, 20, "only decimation"),
    ("def f(x):\n    return x + x[::2]\n", 4, 11, "different rates"),
    ("def f(x):\n    return x + np.array([[1.0], [2.0]])\n", 4, 11, "must be 1-D"),
    ("def f(x):\n    return np.clip(x, None, 1.0)\n", 4, 22, "constant None"),
    ("def f(x):\n    return np.clip(0.5, x, 1.0)\n", 4, 11, "clips a signal between two constants"),
    ("def f(x):\n    return np.maximum(x, 0, out=x)\n", 4, 11, "keywords"),
    ("def f(x):\n    return np.sqrt(x, x)\n", 4, 11, "takes 1 argument"),
    ("V = np.log10(0.0)\ndef f(x):\n    return x\n", 3, 4, "finite"),
    ("def f(x):\n    return x ** 3\n", 4, 11, "only sig ** 2"),
    ("def f(x):\n    return 2 ** x\n", 4, 11, "operator Pow on signals"),
]  # fmt: skip


@pytest.mark.parametrize(("src", "line", "column", "fragment"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_refused_with_location(src: str, line: int | None, column: int | None, fragment: str | None) -> None:
    start = time.monotonic()
    if fragment is None:  # a control: large but legal constants are accepted
        parse_python(H + src, frame_length=8, input_dtype=DType.FLOAT32)
        return
    with pytest.raises(InvalidAlgorithm) as info:
        parse_python(H + src, frame_length=8, input_dtype=DType.FLOAT32)
    err = info.value
    assert fragment in err.message, err.message
    assert err.location is not None and (err.location.line, err.location.column) == (line, column), err.location
    assert time.monotonic() - start < 2.0  # size guards act before any work
