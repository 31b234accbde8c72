"""Library engine: analysis on synthetic audio with known answers, incremental scanning,
the vector index and search ranking (with the real MiniLM)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engines.analysis.features import analyze_audio
from engines.analysis.text import TextEmbedder
from engines.core.errors import EngineError, NotFoundError
from engines.core.jobs import JobContext
from engines.library.catalog import Catalog
from engines.library.scanner import scan
from engines.library.search import LibrarySearcher, parse_query

SR = 22050


# synthetic audio ---------------------------------------------------------------------

def clicks(bpm: float, seconds: float = 8.0, *, level: float = 0.8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = np.zeros(int(seconds * SR), np.float32)
    n = int(0.03 * SR)
    env = np.exp(-np.linspace(0, 8, n)).astype(np.float32)
    for i, t in enumerate(np.arange(0.1, seconds - 0.1, 60.0 / bpm)):
        s = int(t * SR)
        burst = rng.standard_normal(n).astype(np.float32) * env * (1.0 if i % 4 == 0 else 0.6)
        y[s:s + n] += burst[: len(y[s:s + n])]
    return (y / np.abs(y).max() * level).astype(np.float32)


def tone(freqs: list[float], seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    y = sum(sum((0.5 ** h) * np.sin(2 * np.pi * f * (h + 1) * t) for h in range(3)) for f in freqs)
    env = np.minimum(1.0, np.minimum(t / 0.02, (seconds - t) / 0.05))
    return (y * env).astype(np.float32)


def midi_hz(m: int) -> float:
    return 440.0 * 2 ** ((m - 69) / 12)


def progression(chords: list[list[int]], seconds: float = 1.0) -> np.ndarray:
    y = np.concatenate([tone([midi_hz(m) for m in c], seconds) for c in chords * 2])
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


C_MAJOR = [[60, 64, 67], [65, 69, 72], [67, 71, 74], [60, 64, 67]]
A_MINOR = [[57, 60, 64], [62, 65, 69], [64, 67, 71], [57, 60, 64]]


def write(path: Path, y: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), y, SR, subtype="PCM_16")
    return path


class HashEmbedder(TextEmbedder):
    """Deterministic stand-in for MiniLM (bag of hashed words) for tests of plumbing."""

    def embed(self, texts, *, batch_size: int = 64):  # noqa: ARG002
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().replace(",", " ").replace(";", " ").split():
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dim] += 1.0
            out[i] /= max(np.linalg.norm(out[i]), 1e-9)
        return out


@pytest.fixture(scope="session")
def minilm() -> TextEmbedder:
    emb = TextEmbedder()
    emb.embed_one("warm up")
    return emb


# analysis ----------------------------------------------------------------------------

@pytest.mark.parametrize("bpm", [120.0, 80.0])
def test_tempo_of_clicks(bpm: float) -> None:
    f = analyze_audio(clicks(bpm), SR)
    ratio = f.tempo / bpm
    assert min(abs(ratio - r) for r in (0.5, 1.0, 2.0)) / 1.0 < 0.04 * max(ratio, 1), f.tempo
    assert abs(f.duration - 8.0) < 0.01
    assert len(f.beats) >= 5
    assert f.onset_density > 0.5


@pytest.mark.parametrize(("chords", "key"), [(C_MAJOR, "C major"), (A_MINOR, "A minor")])
def test_key_of_triads(chords: list[list[int]], key: str) -> None:
    f = analyze_audio(progression(chords), SR)
    assert f.key == key
    assert f.mode == key.split()[1]
    assert f.key_confidence > 0.5


def test_brightness_energy_and_shapes() -> None:
    rng = np.random.default_rng(1)
    noise = analyze_audio((rng.standard_normal(4 * SR) * 0.3).astype(np.float32), SR)
    sine = analyze_audio(tone([220.0], 4.0) * 0.3, SR)
    assert noise.brightness > 3 * sine.brightness
    quiet = analyze_audio(clicks(120, level=0.02), SR)
    loud = analyze_audio(clicks(120, level=0.9), SR)
    assert loud.loudness_db > quiet.loudness_db + 20
    assert loud.energy > quiet.energy
    assert len(noise.timbre) == 26 and len(noise.peaks) == 600
    assert len(noise.energy_curve) == 4 and all(0 <= v <= 1 for v in noise.energy_curve)
    again = type(noise).from_dict(noise.to_dict())
    assert again == noise


def test_silence_does_not_crash() -> None:
    f = analyze_audio(np.zeros(2 * SR, np.float32), SR)
    assert f.tempo == 0 and f.energy == 0


# scanning ----------------------------------------------------------------------------

def test_scan_incremental_moves_changes_removals_and_bad_files(home, tmp_path: Path) -> None:
    music = tmp_path / "music"
    a = write(music / "a_fast.wav", clicks(140, 4))
    b = write(music / "sub" / "b_slow.wav", clicks(70, 4, seed=2))
    c = write(music / "c_minor.wav", progression(A_MINOR, 0.5))
    bad = music / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" * 10)
    (music / "notes.txt").write_text("not audio")
    emb = HashEmbedder()
    ctx = JobContext(home=home)
    seen: list[float] = []
    ctx.on_progress = lambda f, m: seen.append(f)  # noqa: ARG005
    with Catalog(home) as cat:
        r1 = scan(ctx, [music], catalog=cat, embedder=emb, workers=2)
        assert len(r1.added) == 3 and not r1.updated
        assert [f["path"] for f in r1.failed] == [str(bad)]
        assert r1.audio_seconds > 10 and seen[-1] == 1.0
        ids = {Path(t["path"]).name: t["track_id"] for t in cat.list_tracks()}
        row = cat.get_track(ids["a_fast.wav"])
        assert row["title"] == "a fast" and row["description"] and len(row["timbre"]) == 26

        r2 = scan(ctx, [music], catalog=cat, embedder=emb, workers=2)  # nothing changed
        assert not (r2.added or r2.updated or r2.moved or r2.removed)
        assert r2.unchanged == 3 and len(r2.failed) == 1

        write(a, clicks(100, 5))  # content changed: re-analysed, same id
        os.utime(a, (1, 1))
        moved = music / "elsewhere" / "b_moved.wav"
        moved.parent.mkdir()
        shutil.move(b, moved)
        c.unlink()
        r3 = scan(ctx, [music], catalog=cat, embedder=emb, workers=0)
        assert r3.updated == [ids["a_fast.wav"]]
        assert r3.moved == [ids["b_slow.wav"]]
        assert r3.removed == [ids["c_minor.wav"]]
        assert cat.get_track(ids["b_slow.wav"])["path"] == str(moved)
        assert cat.count() == 2
        with pytest.raises(NotFoundError):
            cat.get_track(ids["c_minor.wav"])


def test_interrupted_scan_resumes(home, tmp_path: Path) -> None:
    music = tmp_path / "m"
    for i in range(3):
        write(music / f"t{i}.wav", clicks(90 + 20 * i, 3, seed=i))
    from engines.core.errors import CancelledError

    ctx = JobContext(home=home)
    with Catalog(home) as cat:
        # the user cancels once the first track is committed (progress reports are rate-limited,
        # so the per-track hook is the deterministic place to do it)
        with pytest.raises(CancelledError):
            scan(ctx, [music], catalog=cat, embedder=HashEmbedder(), workers=0,
                 on_track=lambda tid, res: ctx.cancel.cancel())  # noqa: ARG005
        done = cat.count()
        assert 1 <= done < 3
        r = scan(JobContext(home=home), [music], catalog=cat, embedder=HashEmbedder(), workers=0)
        assert r.resumed and len(r.added) == 3 - done and r.unchanged == done


def test_catalog_is_import_light() -> None:
    code = ("import sys, engines.library.catalog as c; "
            "bad = [m for m in ('numpy', 'torch', 'librosa', 'faiss') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


# search ------------------------------------------------------------------------------

def test_parse_query() -> None:
    names = {a.name for a in parse_query("slow sad orchestral around 90 bpm, calm and warm").attributes}
    assert {"tempo", "mode", "energy", "brightness", "tag:orchestral"} <= names
    q = parse_query("90-110 bpm")
    assert q.describe() == ["tempo 90-110 BPM"]


@pytest.fixture
def small_library(home, tmp_path: Path, minilm: TextEmbedder):
    music = tmp_path / "lib"
    write(music / "fast.wav", clicks(150, 6, level=0.9))
    write(music / "slow.wav", clicks(68, 6, level=0.05, seed=3) * 1.0)
    write(music / "major.wav", progression(C_MAJOR, 0.75))
    write(music / "minor.wav", progression(A_MINOR, 0.75))
    with Catalog(home) as cat:
        scan(JobContext(home=home), [music], catalog=cat, embedder=minilm, workers=2)
    return home


def _names(rows) -> list[str]:
    return [Path(r["path"]).stem for r in rows]


def test_search_ranks_by_attributes(small_library, minilm: TextEmbedder) -> None:
    s = LibrarySearcher(small_library, embedder=minilm)
    fast_q = _names(s.search("fast upbeat", top=4))
    assert fast_q.index("fast") < fast_q.index("slow")
    slow_q = _names(s.search("slow calm", top=4))
    assert slow_q.index("slow") < slow_q.index("fast")
    minor_q = _names(s.search("minor", top=4))
    assert minor_q.index("minor") < minor_q.index("major")
    row = s.search("fast upbeat", top=1)[0]
    for k in ("track_id", "path", "title", "score", "tempo", "key", "duration", "matched"):
        assert k in row
    # the index is a cache: delete it and search again
    for f in small_library.index_dir.iterdir():
        f.unlink()
    s2 = LibrarySearcher(small_library, embedder=minilm)
    assert len(s2.search("anything", top=10)) == 4


def test_search_empty_library(home, minilm: TextEmbedder) -> None:
    with pytest.raises(EngineError, match="studio library add"):
        LibrarySearcher(home, embedder=minilm).search("calm piano")
