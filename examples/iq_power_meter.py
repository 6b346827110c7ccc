"""I/Q power meter: instantaneous power of a complex baseband stream, smoothed, in decibels.

``|x|^2`` is computed as ``I*I + Q*Q`` (no square root), smoothed by a 2nd-order Butterworth low-pass (about
0.002 x fs), and reported as ``10 log10`` of the mean power floored at 1e-12, so that silence (or the filter's
small undershoot after an impulse) gives -120 dB rather than -inf or NaN. ``frame_length`` is free.
"""

# sigforge: input_dtype=complex128

import numpy as np
from scipy import signal

b, a = signal.butter(2, 0.004)


def iq_power_meter(x):
    i = np.real(x)
    q = np.imag(x)
    power = i * i + q * q
    mean_power = signal.lfilter(b, a, power)
    return 10 * np.log10(np.maximum(mean_power, 1e-12))
