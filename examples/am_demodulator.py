"""AM envelope demodulator: complex baseband in, audio out.

The envelope is the magnitude of the complex baseband; a DC blocker (``y[n] = x[n] - x[n-1] + R * y[n-1]``)
removes the carrier level, and a Kaiser-window FIR low-pass keeps the audio band. Every stage keeps its state
across frames; ``frame_length`` is free.
"""

# sigforge: input_dtype=complex64

import numpy as np
from scipy import signal

R = 0.995  # DC blocker pole: cut-off near 0.0008 x fs
AUDIO = signal.firwin(41, 0.1, window=("kaiser", 6.0))


def am_demodulator(x):
    envelope = np.abs(x)
    no_dc = signal.lfilter([1.0, -1.0], [1.0, -R], envelope)
    return signal.lfilter(AUDIO, 1.0, no_dc)
