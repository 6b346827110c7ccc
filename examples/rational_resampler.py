"""Resample by 3/2 (e.g. 32 kHz -> 48 kHz) with one polyphase FIR: ``upfirdn`` upsamples by 3, filters, keeps every
2nd sample, computing only the products with real input samples.

The anti-imaging / anti-aliasing lowpass is designed at the upsampled rate for the lower of the two Nyquist
frequencies (input: 1/3, output: 1/2 of the upsampled Nyquist), with gain ``UP`` to make up for the inserted zeros.
Streaming output = ``upfirdn(h, x, 3, 2)[: len(x) * 3 // 2]`` (the filter tail SciPy appends at the end of a whole
signal never comes in a stream). Use a ``frame_length`` with ``frame_length * 3`` divisible by 2, i.e. even.
"""

# sigforge: reference=prefix

from scipy import signal

UP = 3
DOWN = 2
TAPS = signal.firwin(72, 0.9 / UP, window=("kaiser", 7.0)) * UP  # cutoff 0.9 / max(UP, DOWN)


def resample_3_2(x):
    return signal.upfirdn(TAPS, x, up=UP, down=DOWN)
