"""Tone synthesis and frequency checks for the live rig.

Every leg of a live call sends its own pure tone and records what it hears; a test then asks
"which tones are in this recording?" by measuring how much of the recording's energy sits in a
narrow band around each tone. Band energy relative to total energy is robust to the codec
(G.711 on the SIP leg, Opus on WebRTC), to resampling and to level changes in the mixer.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Band half-width around a tone. G.711 and Opus keep a pure tone within a few Hz; 20 Hz also
# tolerates the small clock drift between the PJSIP null device and the SFU.
BAND_HZ = 20.0


def tone(freq: float, seconds: float, rate: int, amplitude: float = 0.3) -> np.ndarray:
    """A sine tone as int16 samples. Whole cycles only, so a looped file has no click."""
    cycles = max(1, round(freq * seconds))
    n = int(round(cycles * rate / freq))
    t = np.arange(n) / rate
    return (amplitude * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    """Write mono 16-bit PCM (the format PJSIP's file player reads)."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return path


def write_tone_wav(path: Path, freq: float, rate: int = 8000, seconds: float = 1.0) -> Path:
    return write_wav(path, tone(freq, seconds, rate), rate)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Mono int16 samples and sample rate of a PCM WAV file (first channel if several)."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit PCM, got {8 * w.getsampwidth()}-bit")
        channels = w.getnchannels()
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return data[::channels].copy(), rate


@dataclass(frozen=True)
class ToneReport:
    """How much of a recording is each probed tone."""

    rate: int
    seconds: float
    rms: float  # RMS in int16 units; 0 = digital silence
    fractions: dict[float, float]  # freq -> share of total energy within +-BAND_HZ

    def fraction(self, freq: float) -> float:
        return self.fractions[freq]

    def __str__(self) -> str:
        parts = ", ".join(f"{f:g} Hz: {v:.1%}" for f, v in sorted(self.fractions.items()))
        return f"{self.seconds:.2f}s rms={self.rms:.0f} [{parts}]"


def analyse(samples: np.ndarray, rate: int, freqs: list[float]) -> ToneReport:
    """Energy share of each frequency band in `samples` (DC removed, Hann window)."""
    x = samples.astype(np.float64)
    if x.size == 0:
        return ToneReport(rate, 0.0, 0.0, {f: 0.0 for f in freqs})
    x = x - x.mean()
    rms = float(np.sqrt(np.mean(x * x)))
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    bins = np.fft.rfftfreq(x.size, 1.0 / rate)
    total = float(spectrum[1:].sum())
    fractions = {}
    for f in freqs:
        band = (bins >= f - BAND_HZ) & (bins <= f + BAND_HZ)
        fractions[f] = float(spectrum[band].sum()) / total if total > 0 else 0.0
    return ToneReport(rate, x.size / rate, rms, fractions)


def assert_hears(report: ToneReport, expected: float, absent: list[float], who: str,
                 min_fraction: float = 0.5, max_other: float = 0.05, min_rms: float = 200.0) -> None:
    """`who` heard `expected` clearly and none of `absent`.

    min_rms 200 (about -44 dBFS) rules out silence and comfort noise; the tones are sent at
    -10 dBFS. min_fraction 0.5: at least half the energy is the expected tone.
    """
    problems = []
    if report.rms < min_rms:
        problems.append(f"too quiet (rms {report.rms:.0f} < {min_rms:.0f})")
    if report.fraction(expected) < min_fraction:
        problems.append(f"{expected:g} Hz is only {report.fraction(expected):.1%} of the energy")
    for f in absent:
        if report.fraction(f) > max_other:
            problems.append(f"{f:g} Hz should be absent but is {report.fraction(f):.1%}")
    if problems:
        raise AssertionError(f"{who}: " + "; ".join(problems) + f" — {report}")


def band_rms(report: ToneReport, freq: float) -> float:
    """RMS (int16 units) of the part of the recording within +-BAND_HZ of `freq`."""
    return report.rms * report.fraction(freq) ** 0.5


def assert_not_hearing(report: ToneReport, absent: list[float], who: str, max_band_rms: float = 200.0) -> None:
    """`who` heard none of `absent`: each tone's own level stays below max_band_rms (about
    -44 dBFS, 30 dB under the tones as sent). Absolute levels, because in near-silence the
    shares of total energy are meaningless."""
    loud = [f"{f:g} Hz at rms {band_rms(report, f):.0f}" for f in absent if band_rms(report, f) > max_band_rms]
    if loud:
        raise AssertionError(f"{who} should not hear it but heard " + ", ".join(loud) + f" — {report}")


class GrowingWav:
    """A WAV file that a live SIP phone is still writing (PJSIP's recorder fills in the RIFF
    sizes only when it closes the file), read by its chunk layout and the file's real size."""

    def __init__(self, path: Path):
        self.path = path

    def _layout(self) -> tuple[int, int] | None:
        """(sample rate, offset of the sample data), or None until the header is on disk."""
        try:
            data = self.path.read_bytes()[:4096]
        except FileNotFoundError:
            return None
        if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
            return None
        pos, rate = 12, None
        while pos + 8 <= len(data):
            chunk, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
            if chunk == b"fmt ":
                rate = int.from_bytes(data[pos + 12:pos + 16], "little")
            elif chunk == b"data" and rate is not None:
                return rate, pos + 8
            pos += 8 + size
        return None

    def ready(self) -> bool:
        return self._layout() is not None

    @property
    def rate(self) -> int:
        layout = self._layout()
        if layout is None:
            raise ValueError(f"{self.path}: no WAV header yet")
        return layout[0]

    def samples(self) -> np.ndarray:
        layout = self._layout()
        if layout is None:
            return np.zeros(0, dtype=np.int16)
        raw = self.path.read_bytes()[layout[1]:]
        return np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2").copy()

    def window(self, start: int, end: int) -> np.ndarray:
        """Samples `start` to `end` (fewer if not written yet), read from the file without the
        rest of it: a recording an hour long costs no more to look into than a fresh one."""
        layout = self._layout()
        if layout is None or end <= start:
            return np.zeros(0, dtype=np.int16)
        with self.path.open("rb") as f:
            f.seek(layout[1] + 2 * start)
            raw = f.read(2 * (end - start))
        return np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2").copy()

    def length(self) -> int:
        """Samples written so far (0 before the header is written)."""
        layout = self._layout()
        return 0 if layout is None else max(0, (self.path.stat().st_size - layout[1]) // 2)


def tone_levels(samples: np.ndarray, rate: int, freq: float, window_s: float = 0.1) -> np.ndarray:
    """The level (band RMS, int16 units) of `freq` in each consecutive window of `samples`:
    a timeline of when a tone was heard."""
    n = max(1, int(window_s * rate))
    levels = []
    for start in range(0, samples.size - n + 1, n):
        levels.append(band_rms(analyse(samples[start:start + n], rate, [freq]), freq))
    return np.array(levels)


def heard_until(samples: np.ndarray, rate: int, freq: float, *, threshold: float = 300.0, window_s: float = 0.1) -> float | None:
    """Seconds into `samples` at which `freq` was last heard (the end of the last window above
    `threshold`), or None if it never was."""
    above = np.nonzero(tone_levels(samples, rate, freq, window_s) > threshold)[0]
    return None if above.size == 0 else float((above[-1] + 1) * window_s)


def heard_from(samples: np.ndarray, rate: int, freq: float, *, threshold: float = 300.0, window_s: float = 0.1) -> float | None:
    """Seconds into `samples` at which `freq` was first heard, or None."""
    above = np.nonzero(tone_levels(samples, rate, freq, window_s) > threshold)[0]
    return None if above.size == 0 else float(above[0] * window_s)
