"""Peak-frequency detector: the index of the strongest bin of each frame's magnitude spectrum.

One value per frame (rate 1/N): ``argmax`` of |rfft(frame)|, as a float (bin k is k * fs / N Hz). A frame
operation: frames are analysed alone, and any frame length works.
"""

# sigforge: input_dtype=float64
# sigforge: reference=per_frame

import numpy as np


def peak_bin(x):
    magnitude = np.abs(np.fft.rfft(x))
    return np.argmax(magnitude)
