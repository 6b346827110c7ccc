"""DC blocker: a first-order high-pass ``y[n] = x[n] - x[n-1] + 0.995 * y[n-1]``, as used before an AGC.

The pole at 0.995 puts the -3 dB corner near 0.0016 x Nyquist (about 40 Hz at 48 kHz). Any ``frame_length`` works;
the filter state carries from frame to frame.
"""

from scipy import signal

POLE = 0.995


def dc_block(x):
    return signal.lfilter([1.0, -1.0], [1.0, -POLE], x)
