"""Channelizer front end: low-pass FIR (63 taps, cutoff 0.1 x Nyquist), keep every 4th sample, halve.

Translate with e.g. ``frame_length=1024`` (any multiple of 4). sigforge folds the 0.5 into the taps and fuses the
filter with the decimation, so the generated C computes only the kept outputs (polyphase).
"""

from scipy import signal

TAPS = signal.firwin(63, 0.1)


def channelize(x):
    return 0.5 * signal.lfilter(TAPS, 1.0, x)[::4]
