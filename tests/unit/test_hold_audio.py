"""Hold audio: decoding any operator file, the built-in loop, frame pacing with reminders, and the
telephony WAV. Signals are checked by what a listener would notice: duration, pitch, level,
clicks and band, using FFTs rather than golden files."""
from __future__ import annotations

import io
import itertools
import wave

import numpy as np
import pytest
import soundfile as sf

from app.audio import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    TELEPHONY_RATE,
    HoldAudio,
    HoldAudioError,
    build_hold_audio,
    default_loop,
    load_clip,
    resample,
    wav_bytes,
)

FULL_SCALE = 32768.0


def sine(hz: float, seconds: float, rate: int = SAMPLE_RATE, amplitude: float = 0.5) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * hz * np.arange(round(seconds * rate)) / rate)


def dominant_hz(samples: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    x = samples.astype(np.float64) * np.hanning(samples.size)
    return float(np.argmax(np.abs(np.fft.rfft(x)))) * rate / samples.size


def band_energy(samples: np.ndarray, low: float, high: float, rate: int = SAMPLE_RATE) -> float:
    """The share of the signal's energy between low and high Hz."""
    power = np.abs(np.fft.rfft(samples.astype(np.float64))) ** 2
    hz = np.fft.rfftfreq(samples.size, 1 / rate)
    return float(power[(hz >= low) & (hz <= high)].sum() / power.sum())


def dbfs(value: float) -> float:
    return 20 * np.log10(value / FULL_SCALE)


def take_frames(audio: HoldAudio, count: int) -> list[np.ndarray]:
    return list(itertools.islice(audio.frames(), count))


# --- load_clip ------------------------------------------------------------------------------------

@pytest.mark.parametrize("rate,fmt,subtype,name", [
    (44_100, "WAV", "FLOAT", "float32.wav"),
    (96_000, "WAV", "PCM_24", "pcm24.wav"),
    (11_025, "WAV", "PCM_U8", "pcm8.wav"),
    (8_000, "WAV", "PCM_16", "mono8k.wav"),
    (32_000, "FLAC", "PCM_24", "clip.flac"),
    (22_050, "OGG", "VORBIS", "vorbis.ogg"),
    (24_000, "OGG", "OPUS", "opus.ogg"),
    (44_100, "MP3", "MPEG_LAYER_III", "clip.mp3"),
])
def test_load_clip_decodes_any_format_and_rate_to_48k_mono_int16(tmp_path, rate, fmt, subtype, name):
    path = tmp_path / name
    sf.write(path, sine(700, 1.5, rate), rate, format=fmt, subtype=subtype)

    clip = load_clip(path)

    assert clip.dtype == np.int16 and clip.ndim == 1
    assert clip.size == pytest.approx(1.5 * SAMPLE_RATE, rel=0.01)
    assert dominant_hz(clip) == pytest.approx(700, abs=5)
    # Nothing is normalised: a 0.5-amplitude sine keeps its -9 dBFS RMS (RMS, because lossy
    # codecs overshoot at the clip's edges).
    assert dbfs(np.sqrt(np.mean(clip.astype(float) ** 2))) == pytest.approx(-9.03, abs=0.5)


def test_load_clip_averages_stereo_channels_keeping_both_tones(tmp_path):
    path = tmp_path / "stereo16k.wav"
    stereo = np.stack([sine(700, 2.0, 16_000), sine(1_300, 2.0, 16_000)], axis=1)
    sf.write(path, (stereo * FULL_SCALE).astype(np.int16), 16_000, subtype="PCM_16")

    clip = load_clip(path)

    assert clip.dtype == np.int16 and clip.ndim == 1 and clip.size == 2 * SAMPLE_RATE
    spectrum = np.abs(np.fft.rfft(clip.astype(float)))  # 2 s -> 0.5 Hz bins
    at = lambda hz: spectrum[int(hz * 2)]  # noqa: E731
    assert at(700) == pytest.approx(at(1_300), rel=0.05)
    assert at(700) > 100 * np.median(spectrum)
    # Averaged, not summed: each 0.5-amplitude tone arrives at 0.25 amplitude.
    assert at(700) * 2 / clip.size == pytest.approx(0.25 * FULL_SCALE, rel=0.02)


def test_load_clip_keeps_48k_int16_bit_exact(tmp_path):
    original = (np.random.default_rng(7).normal(0, 4_000, SAMPLE_RATE)).astype(np.int16)
    sf.write(tmp_path / "exact.wav", original, SAMPLE_RATE, subtype="PCM_16")
    assert np.array_equal(load_clip(tmp_path / "exact.wav"), original)


def test_load_clip_clips_hot_float_files_instead_of_wrapping(tmp_path):
    sf.write(tmp_path / "hot.wav", sine(700, 1.0, amplitude=1.5).astype(np.float32), SAMPLE_RATE, subtype="FLOAT")
    clip = load_clip(tmp_path / "hot.wav")
    expected = sine(700, 1.0, amplitude=1.5) * FULL_SCALE
    assert clip.max() == 32767 and clip.min() == -32768
    assert np.all(clip.astype(float) * expected >= 0)  # int16 wrap-around would flip signs


def test_resample_is_band_limited_both_ways():
    up = resample(sine(700, 1.0, 8_000) * FULL_SCALE, 8_000, SAMPLE_RATE)
    assert up.size == SAMPLE_RATE
    assert band_energy(up, 4_000, 24_000) < 1e-6  # no images of the 8 kHz sampling above 4 kHz
    # 6 kHz can't exist at 8 kHz; a naive decimator would fold it onto 2 kHz.
    mixed = (sine(700, 1.0) + sine(6_000, 1.0)) * FULL_SCALE
    down = resample(mixed, SAMPLE_RATE, 8_000)
    assert down.dtype == np.int16 and down.size == 8_000
    assert band_energy(down, 1_900, 2_100, rate=8_000) < 1e-6
    assert dominant_hz(down, 8_000) == pytest.approx(700, abs=2)


def _write_text_as_wav(path):
    path.write_text("this is not audio\n")


def _write_empty_wav(path):
    sf.write(path, np.zeros(0, dtype=np.int16), 8_000, subtype="PCM_16")


def _write_silent_wav(path):
    sf.write(path, np.zeros(8_000, dtype=np.int16), 8_000, subtype="PCM_16")


def _write_long_wav(path):
    sf.write(path, (sine(440, 3.0, 8_000) * FULL_SCALE).astype(np.int16), 8_000, subtype="PCM_16")


@pytest.mark.parametrize("write,reason", [
    (None, "no such file"),
    (_write_text_as_wav, "not a readable audio file"),
    (_write_empty_wav, "no audio"),
    (_write_silent_wav, "silent"),
    (_write_long_wav, r"3\.0 s long, more than the 2 s allowed"),
])
def test_load_clip_refuses_unusable_files_naming_file_and_reason(tmp_path, write, reason):
    path = tmp_path / "hold-music.wav"
    if write:
        write(path)
    with pytest.raises(HoldAudioError, match=reason) as caught:
        load_clip(path, max_seconds=2.0)
    assert "hold-music.wav" in str(caught.value)
    assert isinstance(caught.value, ValueError)


# --- default_loop ---------------------------------------------------------------------------------

def test_default_loop_is_deterministic_and_read_only():
    loop = default_loop()
    assert loop is default_loop()
    assert np.array_equal(default_loop.__wrapped__(), loop)  # the synthesis itself, not the cache
    assert loop.dtype == np.int16 and loop.ndim == 1
    with pytest.raises(ValueError):
        loop[0] = 1


def test_default_loop_length_and_level():
    loop = default_loop().astype(np.float64)
    assert 16 <= loop.size / SAMPLE_RATE <= 24
    assert -15 <= dbfs(np.abs(loop).max()) <= -6
    assert -30 <= dbfs(np.sqrt(np.mean(loop**2))) <= -18


def test_default_loop_has_no_click_at_the_seam():
    loop = default_loop().astype(np.int64)
    assert abs(loop[0]) < 0.01 * FULL_SCALE and abs(loop[-1]) < 0.01 * FULL_SCALE
    assert abs(loop[-1] - loop[0]) < 0.01 * FULL_SCALE
    inside = np.abs(np.diff(loop)).max()
    assert np.abs(np.diff(np.concatenate([loop, loop]))).max() <= inside
    # A click anywhere, the seam included (an FFT treats the loop as periodic), is broadband; the
    # synthesised music has nothing above 4 kHz, so any cut note would show up there.
    spectrum = np.fft.rfft(loop.astype(float))
    spectrum[np.fft.rfftfreq(loop.size, 1 / SAMPLE_RATE) < 4_000] = 0
    assert np.abs(np.fft.irfft(spectrum, loop.size)).max() < 0.001 * FULL_SCALE


def test_default_loop_sits_in_the_telephone_band_and_is_music_not_a_tone():
    loop = default_loop()
    assert band_energy(loop, 120, 2_500) > 0.9
    spectrum = np.abs(np.fft.rfft(loop.astype(float)))
    hz_per_bin = SAMPLE_RATE / loop.size
    peaks = []
    while len(peaks) < 10:
        top = int(np.argmax(spectrum))
        if spectrum[top] < 0.1 * (peaks[0][1] if peaks else spectrum[top]):
            break
        peaks.append((top * hz_per_bin, spectrum[top]))
        spectrum[max(0, top - int(20 / hz_per_bin)) : top + int(20 / hz_per_bin)] = 0
    assert len(peaks) >= 3, peaks


# --- HoldAudio.frames -----------------------------------------------------------------------------

@pytest.mark.parametrize("length", [100 * FRAME_SAMPLES, 100 * FRAME_SAMPLES + 123])
def test_frames_loop_the_music_exactly(length):
    music = np.random.default_rng(1).integers(-20_000, 20_000, length).astype(np.int16)
    count = -(-2 * length // FRAME_SAMPLES)  # enough frames to cover two passes
    frames = take_frames(HoldAudio(music), count)
    assert all(f.dtype == np.int16 and f.shape == (FRAME_SAMPLES,) for f in frames)
    assert np.array_equal(np.concatenate(frames)[: 2 * length], np.tile(music, 2))


def test_frames_with_a_reminder_pause_and_resume_the_music():
    # Music whose pitch says where in the loop it is: 1 s each of 400, 500, 600 and 800 Hz.
    steps = (400, 500, 600, 800)
    music = (np.concatenate([sine(hz, 1.0, amplitude=1.0) for hz in steps]) * 32767).astype(np.int16)
    reminder = (sine(1_000, 0.5, amplitude=1.0) * 32767).astype(np.int16)
    audio = HoldAudio(music, reminder, reminder_every_s=2.0)

    out = np.concatenate(take_frames(audio, 750))  # 7.5 s
    assert out.dtype == np.int16

    def pitch(start_s: float) -> float:  # a 0.1 s window, clear of fades and pitch steps
        at = int((start_s + 0.02) * SAMPLE_RATE)
        return round(dominant_hz(out[at : at + int(0.08 * SAMPLE_RATE)]) / 100) * 100

    # music 0-2 s (400, 500), reminder 2-2.5, music resumes at loop second 2 (600, 800) until 4.5,
    # reminder 4.5-5, then the loop wraps (400, 500) and the next reminder comes at 7 s.
    timeline = {0.0: 400, 0.9: 400, 1.0: 500, 1.8: 500, 2.1: 1_000, 2.3: 1_000, 2.55: 600, 3.4: 600,
                3.5: 800, 4.3: 800, 4.6: 1_000, 5.05: 400, 6.0: 500, 6.8: 500, 7.1: 1_000}
    assert {t: pitch(t) for t in timeline} == timeline

    # Outside the 50 ms fades the music is exactly the loop, continuing where it stopped.
    sec = SAMPLE_RATE
    fade = sec // 20
    assert np.array_equal(out[: 2 * sec - fade], music[: 2 * sec - fade])
    assert np.array_equal(out[int(2.5 * sec) + fade : int(4.5 * sec) - fade], music[2 * sec + fade : 4 * sec - fade])

    # Fades only attenuate (an int16 overflow would flip signs) and reach near-silence at each
    # switch, so full-scale music and reminder meet without a click.
    faded = out[2 * sec - fade : 2 * sec].astype(np.int64)
    original = music[2 * sec - fade : 2 * sec].astype(np.int64)
    assert np.all(faded * original >= 0) and np.all(np.abs(faded) <= np.abs(original))
    near_switch = [out[2 * sec - 240 : 2 * sec + 48], out[int(2.5 * sec) - 48 : int(2.5 * sec) + 240]]
    assert all(np.abs(part.astype(float)).max() < 0.1 * FULL_SCALE for part in near_switch)
    steepest = max(np.abs(np.diff(clip.astype(np.int64))).max() for clip in (music, reminder))
    assert np.abs(np.diff(out.astype(np.int64))).max() <= steepest


def test_frames_without_an_interval_never_play_the_reminder():
    music = (sine(500, 1.0) * FULL_SCALE).astype(np.int16)
    reminder = (sine(1_000, 0.5) * FULL_SCALE).astype(np.int16)
    out = np.concatenate(take_frames(HoldAudio(music, reminder, 0.0), 300))
    assert np.array_equal(out, np.tile(music, 3))


def test_hold_audio_rejects_arrays_it_cannot_play():
    with pytest.raises(ValueError, match="music"):
        HoldAudio(np.zeros(480, dtype=np.float32))
    with pytest.raises(ValueError, match="reminder"):
        HoldAudio(np.ones(480, dtype=np.int16), np.zeros(0, dtype=np.int16), 5.0)
    with pytest.raises(ValueError, match="reminder_every_s"):
        HoldAudio(np.ones(480, dtype=np.int16), reminder_every_s=-1.0)


# --- wav_bytes ------------------------------------------------------------------------------------

@pytest.mark.parametrize("seconds,expected_s", [(None, 1.0), (3.0, 3.0), (0.5, 0.5)])
def test_wav_bytes_is_8k_mono_16bit_of_the_requested_length(seconds, expected_s):
    tone = (sine(700, 1.0) * FULL_SCALE).astype(np.int16)
    with wave.open(io.BytesIO(wav_bytes(tone, seconds=seconds))) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (TELEPHONY_RATE, 1, 2)
        assert w.getnframes() == round(expected_s * TELEPHONY_RATE)
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    assert dominant_hz(pcm, TELEPHONY_RATE) == pytest.approx(700, abs=5)


def test_wav_bytes_of_the_default_loop_repeats_without_a_click():
    with wave.open(io.BytesIO(wav_bytes(default_loop(), seconds=30))) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int64)
    loop_n = default_loop().size * TELEPHONY_RATE // SAMPLE_RATE
    jumps = np.abs(np.diff(pcm))
    assert pcm.size == 30 * TELEPHONY_RATE
    assert jumps[loop_n - 1] <= np.delete(jumps, loop_n - 1).max()


# --- build_hold_audio -----------------------------------------------------------------------------

def test_build_hold_audio_defaults_to_the_built_in_loop_without_reminder():
    audio = build_hold_audio()
    assert audio.music is default_loop() and audio.reminder is None
    assert build_hold_audio(reminder_every_s=30).reminder is None


def test_build_hold_audio_loads_music_and_reminder_files(tmp_path):
    sf.write(tmp_path / "m.wav", sine(500, 2.0, 16_000), 16_000)
    sf.write(tmp_path / "r.ogg", sine(1_000, 1.0, 16_000), 16_000, format="OGG", subtype="OPUS")
    audio = build_hold_audio(str(tmp_path / "m.wav"), str(tmp_path / "r.ogg"), 45)
    assert audio.music.size == 2 * SAMPLE_RATE and dominant_hz(audio.music) == pytest.approx(500, abs=5)
    assert dominant_hz(audio.reminder) == pytest.approx(1_000, abs=5)
    assert audio.reminder_every_s == 45.0


@pytest.mark.parametrize("every", [0, -5])
def test_build_hold_audio_refuses_a_reminder_without_an_interval(tmp_path, every):
    sf.write(tmp_path / "r.wav", sine(1_000, 1.0, 16_000), 16_000)
    with pytest.raises(HoldAudioError, match="HOLD_REMINDER_S") as caught:
        build_hold_audio(reminder_file=str(tmp_path / "r.wav"), reminder_every_s=every)
    assert "r.wav" in str(caught.value)
