"""Audio and video I/O: decode by content, region reads, WAV writing, broken inputs."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engines.core.errors import CorruptFileError, NotFoundError, ParameterError, UnsupportedFormatError
from engines.media.audio import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, audio_info, load_audio, write_wav
from engines.media.video import sample_frames, video_info

SR = 44100


def sine(freq: float = 440.0, seconds: float = 2.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_chunked(path: Path, y: np.ndarray, sr: int, **kw) -> Path:
    # libsndfile 1.2 can crash writing long Ogg Vorbis in one call: write in blocks
    with sf.SoundFile(str(path), "w", sr, y.shape[1] if y.ndim == 2 else 1, **kw) as fh:
        for i in range(0, len(y), 32768):
            fh.write(y[i:i + 32768])
    return path


def dominant_freq(y: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.fft.rfftfreq(len(y), 1 / sr)[spec.argmax()])


def make_mp4(path: Path, *, audio: bool = True, seconds: float = 1.0, gop: int = 0) -> Path:
    import av

    fps = 25
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = 64, 64, "yuv420p"
        if gop:
            vs.codec_context.gop_size = gop
        aus = out.add_stream("aac", rate=SR) if audio else None
        for i in range(int(seconds * fps)):
            img = np.zeros((64, 64, 3), np.uint8)
            img[..., 0] = int(255 * i / (seconds * fps))  # red ramps up over time
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for pkt in vs.encode(frame):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        if aus is not None:
            y = sine(440, seconds)
            n = 1024
            for k, i in enumerate(range(0, len(y), n)):
                block = y[i:i + n]
                if len(block) < n:
                    block = np.pad(block, (0, n - len(block)))
                af = av.AudioFrame.from_ndarray(block[None, :], format="fltp", layout="mono")
                af.sample_rate = SR
                af.pts = k * n
                af.time_base = Fraction(1, SR)
                for pkt in aus.encode(af):
                    out.mux(pkt)
            for pkt in aus.encode():
                out.mux(pkt)
    return path


def test_extensions() -> None:
    assert {".wav", ".aif", ".aiff", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac"} <= AUDIO_EXTENSIONS
    assert {".mp4", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".m4v", ".ogv"} <= VIDEO_EXTENSIONS


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg"])
def test_load_formats_duration_and_pitch(tmp_path: Path, fmt: str) -> None:
    y = np.stack([sine(440), sine(440)], axis=1)
    kw = {"format": "OGG", "subtype": "VORBIS"} if fmt == "ogg" else {}
    path = write_chunked(tmp_path / f"tone.{fmt}", y, SR, **kw)
    out = load_audio(path, sr=22050)
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(len(out) / 22050 - 2.0) < 0.01
    assert np.sqrt(np.mean(out**2)) > 0.2
    assert abs(dominant_freq(out, 22050) - 440) < 3
    stereo = load_audio(path, sr=SR, mono=False)
    assert stereo.shape[0] == 2 and abs(stereo.shape[1] - 2 * SR) < 200
    info = audio_info(path)
    assert info.sample_rate == SR and info.channels == 2 and abs(info.duration - 2.0) < 0.01
    assert info.format == fmt


def test_region_and_max_duration(tmp_path: Path) -> None:
    # 1 s of 220 Hz then 1 s of 880 Hz: the region must hold only the second tone
    y = np.concatenate([sine(220, 1.0), sine(880, 1.0)])
    path = tmp_path / "two.flac"
    sf.write(str(path), y, SR)
    part = load_audio(path, sr=SR, start=1.2, end=1.8)
    assert abs(len(part) - int(0.6 * SR)) <= 2
    assert abs(dominant_freq(part, SR) - 880) < 5
    capped = load_audio(path, sr=SR, start=0.0, max_duration=0.5)
    assert abs(len(capped) - SR // 2) <= 2
    assert abs(dominant_freq(capped, SR) - 220) < 5
    assert len(load_audio(path, sr=SR, start=1.5, end=99.0)) == pytest.approx(0.5 * SR, abs=2)
    with pytest.raises(ParameterError, match="two.flac"):
        load_audio(path, sr=SR, start=5.0)
    with pytest.raises(ParameterError, match="two.flac"):
        load_audio(path, sr=SR, start=1.0, end=0.5)
    with pytest.raises(ParameterError, match="two.flac"):
        load_audio(path, sr=0)


def test_write_wav_24bit_roundtrip(tmp_path: Path) -> None:
    y = np.stack([sine(440, 0.5), -sine(440, 0.5)])
    y[0, :10] = 3.0  # clipped to 1.0
    path = write_wav(tmp_path / "out" / "x.wav", y, sr=48000, bits=24)
    info = sf.info(str(path))
    assert info.subtype == "PCM_24" and info.channels == 2 and info.samplerate == 48000
    back, sr = sf.read(str(path), dtype="float32", always_2d=True)
    assert back.shape == (y.shape[1], 2)
    assert np.max(np.abs(back[10:, 0] - y[0, 10:])) < 1e-5
    assert np.all(back[:10, 0] > 0.999)
    assert not list(path.parent.glob("*.part"))
    mono = write_wav(tmp_path / "m.wav", sine(440, 0.1), sr=44100, bits=16)
    assert sf.info(str(mono)).subtype == "PCM_16"
    with pytest.raises(ParameterError, match="bad.wav"):
        write_wav(tmp_path / "bad.wav", np.zeros((1000, 2)), sr=44100)


def test_missing_empty_mislabelled_truncated(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="nope.wav"):
        load_audio(tmp_path / "nope.wav", sr=22050)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(CorruptFileError, match="empty.wav: empty"):
        load_audio(empty, sr=22050)
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio at all\n" * 20)
    with pytest.raises(UnsupportedFormatError, match="notes.wav.*text"):
        load_audio(text, sr=22050)
    with pytest.raises(UnsupportedFormatError, match="notes.wav"):
        audio_info(text)
    good = tmp_path / "long.wav"
    sf.write(str(good), sine(440, 10.0), SR, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(good.read_bytes()[: 44 + int(0.2 * SR) * 2])
    with pytest.raises(CorruptFileError, match=r"cut.wav: truncated WAV: header says 10 s, file holds 0.2 s"):
        load_audio(cut, sr=22050)
    flac = tmp_path / "long.flac"
    sf.write(str(flac), sine(440, 5.0) + 0.01 * np.random.default_rng(0).standard_normal(5 * SR).astype(np.float32), SR)
    bad = tmp_path / "cut.flac"
    bad.write_bytes(flac.read_bytes()[: flac.stat().st_size // 3])
    with pytest.raises(CorruptFileError, match="cut.flac"):
        load_audio(bad, sr=22050)
    garbage = tmp_path / "garbage.ogg"
    garbage.write_bytes(b"OggS" + bytes(range(256)) * 8)
    with pytest.raises((CorruptFileError, UnsupportedFormatError), match="garbage.ogg"):
        load_audio(garbage, sr=22050)


def test_video_audio_track_and_frames(tmp_path: Path) -> None:
    path = make_mp4(tmp_path / "clip.mp4")
    y = load_audio(path, sr=22050)
    assert abs(len(y) / 22050 - 1.0) < 0.1
    assert abs(dominant_freq(y, 22050) - 440) < 5
    part = load_audio(path, sr=22050, start=0.5, end=0.75)
    assert abs(len(part) / 22050 - 0.25) < 0.01 and np.sqrt(np.mean(part**2)) > 0.1
    info = video_info(path)
    assert (info.width, info.height) == (64, 64) and info.has_audio and info.codec == "h264"
    assert abs(info.fps - 25) < 0.01 and abs(info.duration - 1.0) < 0.1 and 20 <= info.frame_count <= 30
    times, frames = sample_frames(path, fps=4, size=(32, 16))
    assert frames.shape == (4, 16, 32, 3) and frames.dtype == np.uint8
    assert np.allclose(times, [0, 0.25, 0.5, 0.75], atol=0.05)
    red = frames[..., 0].mean(axis=(1, 2))
    assert np.all(np.diff(red) > 20)  # the red ramp is visible, in order
    t2, f2 = sample_frames(path, fps=10, size=None, start=0.5, max_frames=3)
    assert f2.shape == (3, 64, 64, 3) and t2[0] >= 0.5 - 1e-6
    a = audio_info(path)
    assert a.format == "mp4" and a.codec == "aac" and a.sample_rate == SR


def test_video_without_audio(tmp_path: Path) -> None:
    path = make_mp4(tmp_path / "silent.mp4", audio=False)
    assert not video_info(path).has_audio
    with pytest.raises(UnsupportedFormatError, match="silent.mp4: the video has no audio track"):
        load_audio(path, sr=22050)
    wav = tmp_path / "a.wav"
    sf.write(str(wav), sine(), SR)
    with pytest.raises(UnsupportedFormatError, match="a.wav.*no video track"):
        sample_frames(wav, fps=1)


@pytest.mark.parametrize("gop", [25, 0])
def test_sparse_sampling_seeks_and_stays_in_order(tmp_path: Path, gop: int) -> None:
    path = make_mp4(tmp_path / "long.mp4", audio=False, seconds=12.0, gop=gop)
    times, frames = sample_frames(path, fps=0.2, size=(16, 16))
    assert np.allclose(times, [0.0, 5.0, 10.0], atol=0.05)
    red = frames[..., 0].mean(axis=(1, 2))
    assert np.allclose(red, [0, 255 * 5 / 12, 255 * 10 / 12], atol=6)


def test_tags_are_read(tmp_path: Path) -> None:
    path = tmp_path / "tagged.ogg"
    with sf.SoundFile(str(path), "w", SR, 1, format="OGG", subtype="VORBIS") as fh:
        fh.title, fh.artist, fh.album, fh.genre = "Dawn", "Someone", "Morning", "Ambient"
        fh.write(sine(330, 0.5))
    tags = audio_info(path).tags
    assert tags == {"title": "Dawn", "artist": "Someone", "album": "Morning", "genre": "Ambient"}
