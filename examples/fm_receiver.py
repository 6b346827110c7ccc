"""FM receiver: complex baseband in, de-emphasised audio out at a fifth of the rate.

A channel FIR low-pass selects the station, the polar discriminator ``angle(x[n] * conj(x[n-1]))`` turns the
phase step per sample into the instantaneous frequency, a one-pole de-emphasis filter (75 us, as broadcast FM in
the Americas uses) restores the audio balance, and keeping every fifth sample brings 240 kHz down to 48 kHz.

The discriminator streams with the input's length: its first output stands for ``angle(x[0] * conj(0)) = 0``,
so the translated function equals this one applied to the signal with one zero sample in front of it.
``frame_length`` must be a multiple of 5.
"""

# sigforge: input_dtype=complex64
# sigforge: reference=prepend_zero

import numpy as np
from scipy import signal

FS = 240_000.0
CHANNEL = signal.firwin(63, 100_000.0, fs=FS)  # keeps the +-100 kHz FM channel
A = np.exp(-1.0 / (FS * 75e-6))  # de-emphasis pole for a 75 us time constant


def fm_receiver(x):
    baseband = signal.lfilter(CHANNEL, 1.0, x)
    phase_step = np.angle(baseband[1:] * np.conj(baseband[:-1]))
    audio = signal.lfilter([1 - A], [1, -A], phase_step)
    return audio[::5]
