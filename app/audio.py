"""Hold audio: the music (and optional spoken reminder) a customer hears while on hold.

The worker pushes `HoldAudio.frames()` (10 ms of 48 kHz mono int16 each) into the customer's
LiveKit room; the web app serves `wav_bytes()` of the same loop for Twilio to `<Play>` to callers
waiting in a queue. The web process must not load LiveKit's native library, so this module deals
in plain numpy arrays and never imports `livekit`; the worker wraps frames in `AudioFrame`s.

Resampling is an FFT that treats the clip as one period of a loop, which is exactly what hold
music is: the seam stays click-free, and no resampling library is needed for a start-up job.
"""
from __future__ import annotations

import functools
import io
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 48_000  # what LiveKit gets
FRAME_SAMPLES = 480  # 10 ms frames
TELEPHONY_RATE = 8_000  # what Twilio <Play> gets

_FADE_SAMPLES = SAMPLE_RATE * 50 // 1000  # music fades out/in around a reminder
_DECLICK_SAMPLES = SAMPLE_RATE * 5 // 1000  # edges of a reminder clip, which may start mid-wave
_BLOCK_SAMPLES = SAMPLE_RATE  # how much looped music frames() reads at once
_PEAK_DBFS = -12.0  # default loop: leaves headroom for the Opus encoder and phone gateways


class HoldAudioError(ValueError):
    """A hold-audio file can't be used; the message names the file and the reason."""


def _to_int16(samples: np.ndarray) -> np.ndarray:
    rounded = np.rint(samples)
    return np.clip(rounded, -32768, 32767, out=rounded).astype(np.int16)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """`samples` (1-D, int16 or float in int16 units) at `from_rate` -> int16 at `to_rate`.

    Band-limited: the spectrum is cut (or zero-padded) to the lower rate's band, dropping the bin
    exactly at its Nyquist frequency, whose phase is ambiguous and which nobody can hear. The level
    is kept; only rounding and int16 clipping happen. float32 stays float32 to halve the memory.
    """
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate} -> {to_rate}")
    x = np.asarray(samples)
    if x.ndim != 1:
        raise ValueError(f"resample wants mono (1-D) samples, got shape {x.shape}")
    x = x.astype(np.float32 if x.dtype == np.float32 else np.float64, copy=False)
    n = x.size
    if from_rate == to_rate or n == 0:
        return _to_int16(x)
    m = max(1, (n * to_rate + from_rate // 2) // from_rate)
    spectrum = np.fft.rfft(x)
    shared = min(n, m)  # the band both rates can represent
    out = np.zeros(m // 2 + 1, dtype=spectrum.dtype)
    out[: shared // 2 + 1] = spectrum[: shared // 2 + 1]
    if shared % 2 == 0:
        out[shared // 2] = 0
    del spectrum  # a ten-minute clip's buffers are ~100 MB each; keep few alive at once
    y = np.fft.irfft(out, m)
    del out
    y *= m / n
    return _to_int16(y)


def load_clip(path: str | Path, *, max_seconds: float = 300.0) -> np.ndarray:
    """Any file soundfile reads (WAV of any depth, OGG Vorbis/Opus, FLAC, MP3), any rate and
    channel count -> mono int16 at SAMPLE_RATE.

    Channels are averaged; nothing is normalised, so the operator's mastering is kept (only
    clipping to int16). The length is checked from the header before decoding, so a mistaken
    hour-long file is refused without being loaded into memory.
    """
    path = Path(path)
    if not path.is_file():
        raise HoldAudioError(f"{path}: no such file")
    try:
        with sf.SoundFile(path) as f:
            rate = f.samplerate
            if f.frames > max_seconds * rate:
                raise HoldAudioError(
                    f"{path}: {f.frames / rate:.1f} s long, more than the {max_seconds:g} s allowed")
            data = f.read(dtype="float32", always_2d=True)
    except (sf.SoundFileError, OSError) as exc:
        raise HoldAudioError(f"{path}: not a readable audio file ({exc})") from exc
    if data.shape[0] == 0:
        raise HoldAudioError(f"{path}: contains no audio (0 frames)")
    if data.shape[0] > max_seconds * rate:  # a header (e.g. MP3) may have under-estimated it
        raise HoldAudioError(f"{path}: longer than the {max_seconds:g} s allowed")
    if not np.isfinite(data).all():
        raise HoldAudioError(f"{path}: contains NaN or infinite samples")
    mono = data.mean(axis=1)
    del data  # hundreds of MB for a long stereo clip; don't carry it through the FFT
    mono *= 32768.0  # soundfile scales integer PCM by 1/32768: 16-bit input round-trips exactly
    clip = resample(mono, rate, SAMPLE_RATE)
    if not clip.any():
        raise HoldAudioError(f"{path}: is silent (every sample is zero at 16 bits)")
    return clip


def _ramp(n: int) -> np.ndarray:
    """A raised-cosine rise from ~0 to ~1 over n samples: smoother to the ear than a linear one."""
    return 0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / max(n, 1))


def _envelope(n: int, rise: int, fall: int) -> np.ndarray:
    """Gain 1 over n samples with raised-cosine edges (each at most half the length)."""
    rise, fall = min(rise, n // 2), min(fall, n // 2)
    gain = np.ones(n)
    gain[:rise] = _ramp(rise)
    gain[n - fall :] = _ramp(fall)[::-1]
    return gain


def _midi_hz(note: int) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12)


def _tone(hz: float, n: int, harmonics: dict[int, float]) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    return sum(a * np.sin(2 * np.pi * hz * h * t) for h, a in harmonics.items())


def _add_wrapped(loop: np.ndarray, start: int, note: np.ndarray) -> None:
    """Mix `note` into the loop at `start`, wrapping its tail to the beginning.

    This is what makes the loop seamless: the last chord's release overlaps the first chord's
    attack exactly as it will when the loop repeats, instead of both being cut at the seam.
    """
    start %= loop.size
    head = min(note.size, loop.size - start)
    loop[start : start + head] += note[:head]
    loop[: note.size - head] += note[head:]


# Cmaj7 - Am7 - Fmaj7 - G6, voice-led within one octave so every fundamental sits in 174-988 Hz:
# the telephone band, where neither a phone gateway's high-pass nor Opus at low bitrate cuts it.
_CHORDS = ((60, 64, 67, 71), (57, 60, 64, 67), (53, 57, 60, 64), (55, 59, 62, 64))
_CHORD_S = 5.0
_ARP_PATTERN = (0, 1, 2, 3, 2, 1, 0, 1)  # chord-tone indices, an octave up, eighth notes
_PAD = {1: 1.0, 2: 0.10, 3: 0.08}  # a soft, nearly-sine pad; harmonics stay under 2 kHz
_BELL = {1: 1.0, 2: 0.15}


@functools.lru_cache(maxsize=1)
def default_loop() -> np.ndarray:
    """The built-in hold music, synthesised (no recording to license): a 20 s seamless loop.

    Soft detuned pads on Cmaj7-Am7-Fmaj7-G6 with slow raised-cosine attacks and releases that
    cross-fade into the next chord, plus a gentle arpeggio an octave up. Fully deterministic, and
    the cached array is read-only so no caller can change what the next caller hears.
    """
    chord_n = int(_CHORD_S * SAMPLE_RATE)
    loop = np.zeros(chord_n * len(_CHORDS))
    attack, release = int(1.0 * SAMPLE_RATE), int(1.5 * SAMPLE_RATE)
    pad_n = chord_n + release
    pad_env = _envelope(pad_n, attack, release)
    step = chord_n // len(_ARP_PATTERN)
    bell_n = int(1.2 * SAMPLE_RATE)
    # A 15 ms strike (soft, but a distinct note), then a decay that ends exactly at zero.
    strike, damp = SAMPLE_RATE * 15 // 1000, SAMPLE_RATE // 20
    bell_env = np.exp(-np.arange(bell_n) / (0.35 * SAMPLE_RATE)) * _envelope(bell_n, strike, damp)
    for i, chord in enumerate(_CHORDS):
        start = i * chord_n
        for note in chord:
            hz = _midi_hz(note)
            # Two oscillators ~2.6 cents apart beat slowly: a warm pad instead of an organ.
            pad = _tone(hz * 0.9985, pad_n, _PAD) + _tone(hz * 1.0015, pad_n, _PAD)
            _add_wrapped(loop, start, 0.125 * pad * pad_env)
        for k, idx in enumerate(_ARP_PATTERN):
            bell = _tone(_midi_hz(chord[idx] + 12), bell_n, _BELL) * bell_env
            _add_wrapped(loop, start + k * step, 0.3 * bell)
    # Start on a rising zero crossing (a few ms into the loop): playback that begins at the top of
    # the loop then starts from silence without a step, and the seam is continuous either way.
    loop = np.roll(loop, -int(np.argmax((loop[:-1] < 0) & (loop[1:] >= 0))) - 1)
    loop *= 32767 * 10 ** (_PEAK_DBFS / 20) / np.abs(loop).max()
    music = _to_int16(loop)
    music.flags.writeable = False
    return music


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no truth value, so keep identity eq/hash
class HoldAudio:
    music: np.ndarray  # int16 mono SAMPLE_RATE, looped
    reminder: np.ndarray | None = None  # int16 mono SAMPLE_RATE, played every reminder_every_s
    reminder_every_s: float = 0.0  # seconds of music between reminders; 0 = never

    def __post_init__(self) -> None:
        for name in ("music", "reminder") if self.reminder is not None else ("music",):
            clip = getattr(self, name)
            if not (isinstance(clip, np.ndarray) and clip.dtype == np.int16 and clip.ndim == 1
                    and clip.size):
                raise ValueError(f"HoldAudio.{name} must be a non-empty 1-D int16 array")
        if not np.isfinite(self.reminder_every_s) or self.reminder_every_s < 0:
            raise ValueError(f"reminder_every_s must be >= 0, got {self.reminder_every_s}")

    def frames(self) -> Iterator[np.ndarray]:
        """Endless FRAME_SAMPLES-long int16 frames (fresh copies, safe to hand to an encoder).

        The music loops seamlessly. With a reminder, after every reminder_every_s seconds of
        music it fades out over 50 ms, the reminder plays, and the music fades back in from the
        sample after the one it paused on, so a long hold hears the whole piece, not its opening
        over and over. The first reminder comes after reminder_every_s, not at once.
        """
        pending = np.empty(0, dtype=np.int16)
        for block in self._blocks():
            buf = np.concatenate((pending, block)) if pending.size else block
            whole = buf.size - buf.size % FRAME_SAMPLES
            for i in range(0, whole, FRAME_SAMPLES):
                yield buf[i : i + FRAME_SAMPLES].copy()
            pending = buf[whole:]

    def _blocks(self) -> Iterator[np.ndarray]:
        """The playback as a stream of arbitrary-length int16 blocks."""
        position = 0

        def music(n: int) -> np.ndarray:
            nonlocal position
            out = np.take(self.music, np.arange(position, position + n), mode="wrap")
            position = (position + n) % self.music.size
            return out

        if self.reminder is None or self.reminder_every_s <= 0:
            while True:
                yield music(_BLOCK_SAMPLES)
        span = max(1, round(self.reminder_every_s * SAMPLE_RATE))
        fade = min(_FADE_SAMPLES, span // 2)
        up = _ramp(fade)
        declick = _envelope(self.reminder.size, _DECLICK_SAMPLES, _DECLICK_SAMPLES)
        reminder = _to_int16(self.reminder * declick)
        body = span - fade  # the first stretch starts the hold, so it has no fade-in
        while True:
            for start in range(0, body, _BLOCK_SAMPLES):
                yield music(min(_BLOCK_SAMPLES, body - start))
            yield _to_int16(music(fade) * up[::-1])
            yield reminder
            yield _to_int16(music(fade) * up)
            body = span - 2 * fade


def build_hold_audio(music_file: str = "", reminder_file: str = "",
                     reminder_every_s: float = 0.0) -> HoldAudio:
    """Hold audio from configuration: a music file or the built-in loop, plus an optional reminder.

    A reminder file without a positive interval is refused rather than ignored, so a
    misconfiguration shows at start-up instead of as a reminder that silently never plays.
    """
    music = load_clip(music_file) if music_file else default_loop()
    if not reminder_file:
        return HoldAudio(music)
    if not reminder_every_s > 0:
        raise HoldAudioError(
            f"{reminder_file}: a hold reminder needs HOLD_REMINDER_S > 0 (seconds of music between "
            f"reminders), got {reminder_every_s}")
    return HoldAudio(music, load_clip(reminder_file), float(reminder_every_s))


def wav_bytes(samples: np.ndarray, rate: int = TELEPHONY_RATE, *, source_rate: int = SAMPLE_RATE,
              seconds: float | None = None) -> bytes:
    """A mono 16-bit PCM WAV of `samples` at `rate`, for Twilio `<Play>`.

    `seconds` repeats (or truncates) the loop to that length. The loop is resampled once and then
    tiled, which is seamless because the resampler treats the clip as periodic.
    """
    pcm = resample(samples, source_rate, rate)
    if not pcm.size:
        raise ValueError("wav_bytes needs at least one sample")
    if seconds is not None:
        if not seconds > 0:
            raise ValueError(f"seconds must be > 0, got {seconds}")
        pcm = np.resize(pcm, round(seconds * rate))  # np.resize repeats the array cyclically
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setparams((1, 2, rate, pcm.size, "NONE", "not compressed"))  # mono, 16-bit
        w.writeframes(pcm.astype("<i2").tobytes())
    return out.getvalue()
