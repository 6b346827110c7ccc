"""Envelope detector: full-wave rectify, smooth with a 2nd-order Butterworth low-pass, floor at zero.

A classic AM/level detector. The rectifier and the final clamp are elementwise; the smoothing filter keeps its
state across frames. ``frame_length`` is free.
"""

import numpy as np
from scipy import signal

b, a = signal.butter(2, 0.02)


def envelope(x):
    rectified = np.abs(x)
    smoothed = signal.lfilter(b, a, rectified)
    return np.maximum(smoothed, 0.0)
