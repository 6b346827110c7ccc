"""Mains-hum notch: remove 50 Hz from a 48 kHz audio stream with a second-order IIR notch (Q = 30).

``iirnotch`` is evaluated at translation time; the generated C is one biquad with double-precision state.
"""

from scipy import signal

FS = 48000.0
b, a = signal.iirnotch(50.0, 30.0, fs=FS)


def notch(x):
    return signal.lfilter(b, a, x)
