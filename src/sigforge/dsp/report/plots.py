"""The report's plots (pure): signal overlay, magnitude response and error spectrum, as SVG text.

Invariants:
    * Plots are computed from arrays the caller already has (vector input, golden and target outputs); nothing here
      runs the target or the golden model.
    * Complex signals are drawn as their real part in time plots; spectra of complex signals cover -fs/2..fs/2
      (centred), spectra of real signals 0..fs/2.
    * Levels are in dB relative to full scale 1 (20 log10 |X|, with the Hann window's coherent gain divided out for
      the error spectrum); zero magnitudes are drawn at the plot floor instead of -inf.
    * The frequency axis is in Hz when the output sample rate is known, else in cycles per sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sigforge.dsp.report.svg import PALETTE, Panel, Trace, figure

FloatArray = npt.NDArray[np.float64]
DB_RANGE = 200.0  # at most this many dB below the peak are shown; lower levels sit on the floor


@dataclass(frozen=True, slots=True)
class Plot:
    """One rendered plot: its artifact path (``plots/<name>.svg``), caption and SVG text."""

    name: str
    title: str
    caption: str
    svg: str

    @property
    def file(self) -> str:
        """Path of the standalone file in the artifact."""
        return f"plots/{self.name}.svg"


def _db(mag: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore"):
        out: FloatArray = 20 * np.log10(mag)
    return out


def _spectrum(x: npt.NDArray[np.generic], fs: float | None, *, window: bool, nfft_min: int = 1024) -> tuple[
    FloatArray, FloatArray
]:  # fmt: skip
    a = np.asarray(x)
    w = np.hanning(a.size) if window and a.size > 1 else np.ones(a.size)
    gain = float(w.sum()) or 1.0
    nfft = max(nfft_min, 1 << max(a.size - 1, 1).bit_length())
    rate = fs if fs else 1.0
    if np.iscomplexobj(a):
        spec = np.fft.fftshift(np.fft.fft(a * w, nfft))
        freqs = np.fft.fftshift(np.fft.fftfreq(nfft, 1 / rate))
    else:
        spec = np.fft.rfft(a * w, nfft)
        freqs = np.fft.rfftfreq(nfft, 1 / rate)
    mag = np.abs(spec) / (gain if window else 1.0)
    return freqs.astype(np.float64), mag.astype(np.float64)


def _floor(*levels: FloatArray) -> tuple[float, float]:
    finite = [lv[np.isfinite(lv)] for lv in levels]
    peak = max((float(v.max()) for v in finite if v.size), default=0.0)
    low = min((float(v.min()) for v in finite if v.size), default=peak)
    top = 10.0 * np.ceil(peak / 10.0 + 0.05)
    return max(top - DB_RANGE, 10.0 * np.floor(low / 10.0 - 0.05)), top


def _axis(fs: float | None) -> str:
    return "frequency (Hz)" if fs else "frequency (cycles/sample)"


def signal_plot(
    x: npt.NDArray[np.generic],
    golden: npt.NDArray[np.generic],
    target: npt.NDArray[np.generic] | None,
    *,
    in_frame: int,
    out_frame: int,
    vector: str,
    frames: int = 2,
) -> Plot:
    """Input and output (target over golden) of one vector over its first ``frames`` frames."""
    n_in, n_out = min(x.size, frames * in_frame), min(golden.size, frames * out_frame)
    part = " (real part)" if np.iscomplexobj(x) or np.iscomplexobj(golden) else ""
    t_in, t_out = np.arange(n_in, dtype=np.float64), np.arange(n_out, dtype=np.float64)
    out_traces = [Trace(t_out, np.real(golden[:n_out]).astype(np.float64), "golden model", PALETTE[0], width=3.0)]
    if target is not None and target.size >= n_out:
        out_traces.append(Trace(t_out, np.real(target[:n_out]).astype(np.float64), "target", PALETTE[1], dashed=True))
    panels = [
        Panel(f"input: {vector}{part}", "input sample", "amplitude",
              [Trace(t_in, np.real(x[:n_in]).astype(np.float64), "input", PALETTE[2])],
              vlines=[float(k * in_frame) for k in range(1, frames)]),
        Panel(f"output 0{part}", "output sample", "amplitude", out_traces,
              vlines=[float(k * out_frame) for k in range(1, frames)]),
    ]  # fmt: skip
    title = f"Input and output over {frames} frames ({vector})"
    caption = f"The {vector} vector and output 0 over the first {frames} frames; dotted lines mark frame boundaries."
    return Plot("signal", title, caption, figure(title, panels))


def magnitude_plot(golden_impulse: npt.NDArray[np.generic], target_impulse: npt.NDArray[np.generic] | None, *,
                   fs: float | None) -> Plot:  # fmt: skip
    """Magnitude response in dB from the impulse-vector output (golden; target dashed when available)."""
    freqs, mag = _spectrum(golden_impulse, fs, window=False)
    levels = [_db(mag)]
    traces = [Trace(freqs, levels[0], "golden model", PALETTE[0], width=3.0)]
    if target_impulse is not None and target_impulse.size == golden_impulse.size:
        f2, m2 = _spectrum(target_impulse, fs, window=False)
        levels.append(_db(m2))
        traces.append(Trace(f2, levels[1], "target", PALETTE[1], dashed=True))
    lo, hi = _floor(*levels)
    panel = Panel("magnitude response", _axis(fs), "magnitude (dB)",
                  [Trace(t.x, np.clip(np.nan_to_num(t.y, neginf=lo), lo, hi), t.label, t.color, t.dashed, t.width)
                   for t in traces], ylim=(lo, hi))  # fmt: skip
    title = "Magnitude response of output 0 (FFT of the impulse response)"
    caption = "20 log10 |FFT| of output 0 for the impulse vector (the golden model's impulse response)."
    return Plot("magnitude_response", title, caption, figure(title, [panel], panel_height=300))


def error_spectrum_plot(golden: npt.NDArray[np.generic], target: npt.NDArray[np.generic], *, fs: float | None,
                        vector: str) -> Plot:  # fmt: skip
    """Hann-windowed spectrum of (target - golden), with the golden output's spectrum for scale."""
    f_sig, m_sig = _spectrum(golden, fs, window=True)
    f_err, m_err = _spectrum(np.asarray(target) - np.asarray(golden), fs, window=True)
    sig, err = _db(m_sig), _db(m_err)
    lo, hi = _floor(sig, err)
    panel = Panel("error spectrum", _axis(fs), "level (dB)", [
        Trace(f_sig, np.clip(np.nan_to_num(sig, neginf=lo), lo, hi), "golden output", PALETTE[0]),
        Trace(f_err, np.clip(np.nan_to_num(err, neginf=lo), lo, hi), "target - golden", PALETTE[1]),
    ], ylim=(lo, hi))  # fmt: skip
    title = f"Error spectrum of output 0 ({vector} vector)"
    caption = (f"Hann-windowed spectrum of target minus golden for the {vector} vector, next to the golden output's "
               f"spectrum; an exact match sits on the {DB_RANGE:g} dB floor.")  # fmt: skip
    return Plot("error_spectrum", title, caption, figure(title, [panel], panel_height=300))
