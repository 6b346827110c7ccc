"""Decimate by 12 in two stages (2 then 6), each with its own anti-alias FIR, as in a receiver's DDC.

Use a ``frame_length`` divisible by 12. Writing the chain as several assignments is fine; so is a gain at the end.
"""

from scipy.signal import firwin, lfilter

STAGE1 = firwin(31, 0.45)  # wide transition: the second stage cleans up
STAGE2 = firwin(95, 1 / 6 * 0.9, window=("kaiser", 8.0))
M1 = 2
M2 = 6


def ddc(x):
    y = lfilter(STAGE1, 1.0, x)
    y = y[::M1]
    y = lfilter(STAGE2, 1.0, y)
    return y[::M2] * 2.0
