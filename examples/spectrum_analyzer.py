"""Spectrum analyser: Hann-windowed real FFT of each frame, power in dB.

A frame operation: every frame of ``N`` samples is analysed alone (no state between frames) and gives
``N // 2 + 1`` power bins, 10*log10(|X|^2 + 1e-12), so the output runs at (N//2 + 1)/N of the input rate. The
window has the frame length, so the request's frame length must be ``N``. Use float64: the dB of bins near
the -120 dB floor amplifies float32 FFT rounding far beyond the float32 tolerance.
"""

# sigforge: input_dtype=float64
# sigforge: frame_length=480
# sigforge: reference=per_frame
# sigforge: precision=float64

import numpy as np

N = 480
WINDOW = np.hanning(N)


def spectrum(x):
    spec = np.fft.rfft(x * WINDOW)
    power = np.real(spec * np.conj(spec))
    return 10 * np.log10(power + 1e-12)
