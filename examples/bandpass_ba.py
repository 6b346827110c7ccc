"""Voice-band filter: 3rd-order Butterworth band-pass 300-3400 Hz at 16 kHz, written in (b, a) form.

The translator converts the 6th-order polynomial to biquad sections (``tf2sos``) for the generated C, because a
long direct form loses precision; the golden model stays ``lfilter(b, a, x)``.
"""

import scipy.signal as sps

FS = 16000
b, a = sps.butter(3, [300, 3400], btype="bandpass", fs=FS)


def voice_band(x):
    return sps.lfilter(b, a, x)
