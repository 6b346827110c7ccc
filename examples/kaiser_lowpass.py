"""Kaiser-window low-pass: 60 dB stop-band, 1 kHz transition, cutoff 4 kHz at 48 kHz, designed with kaiserord.

``kaiserord`` picks the length and the Kaiser beta from the ripple and transition width; ``firwin`` builds the
taps with that window. Any ``frame_length`` works.
"""

from scipy import signal

FS = 48000.0
NYQ = FS / 2
NUMTAPS, BETA = signal.kaiserord(60.0, 1000.0 / NYQ)
TAPS = signal.firwin(NUMTAPS, 4000.0, window=("kaiser", BETA), fs=FS)


def lowpass(x):
    return signal.lfilter(TAPS, 1.0, x)
