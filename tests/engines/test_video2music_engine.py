"""Video → music engine: cuts, matching, steering, refinement, sync, export, bad input."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from v2m_helpers import add_tracks, fast_cut_clip, make_track  # noqa: E402

from engines.core.errors import (  # noqa: E402
    CorruptFileError,
    EngineError,
    NotFoundError,
    ParameterError,
    ResourceLimitError,
    UnsupportedFormatError,
)
from engines.core.home import DataHome  # noqa: E402


@pytest.fixture(scope="module")
def lib_home(tmp_path_factory: pytest.TempPathFactory) -> DataHome:
    root = tmp_path_factory.mktemp("v2m")
    home = DataHome(root / "home")
    m = root / "music"
    m.mkdir()
    add_tracks(home, [
        dict(name="fast", path=make_track(m, "fast", 120, level=0.8, tone=2500), album="A"),
        dict(name="slow", path=make_track(m, "slow", 60, level=0.08, tone=300), album="B"),
        dict(name="mid", path=make_track(m, "mid", 90, level=0.3, tone=600), album="C"),
        dict(name="fast2", path=make_track(m, "fast2", 150, level=0.7, tone=1800), album="D"),
    ])
    return home


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engines.video2music.data import click_track

    audio = click_track(100, 4.0, sr=48000)
    return fast_cut_clip(tmp_path_factory.mktemp("clip") / "cuts.mp4", seconds=4.0, shot=0.5, audio=audio)


def test_cuts_detected_at_the_right_times(clip: Path) -> None:
    from engines.analysis.video import analyze_video

    v = analyze_video(clip)
    assert v.cuts == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5], abs=0.045)
    assert v.summary["cut_rate"] == pytest.approx(1.75, abs=0.05)
    assert len(v.energy_curve) == 4 and 0 <= min(v.energy_curve) <= max(v.energy_curve) <= 1
    part = analyze_video(clip, start=1.2, end=3.2)
    assert part.duration == pytest.approx(2.0, abs=0.05)
    assert part.cuts == pytest.approx([0.3, 0.8, 1.3, 1.8], abs=0.045)


def test_cuts_irregular_and_rgb_path() -> None:
    from engines.analysis.video import analyze_frames
    from engines.video2music.data import cut_frames

    cuts = [0.4, 1.3, 1.6, 2.75]
    fr = cut_frames(3.5, fps=24, shot=cuts, size=48, seed=3)
    v = analyze_frames(np.arange(len(fr)) / 24.0, fr, fps=24)
    assert v.cuts == pytest.approx([np.ceil(c * 24 - 1e-6) / 24 for c in cuts], abs=0.01)


def test_flash_frames_are_not_cuts() -> None:
    """A white flash (one or two frames) inside a shot jumps like a cut, but the shot comes
    back: no cut. Real cuts around a flash are all still found."""
    from engines.analysis.video import analyze_frames
    from engines.video2music.data import cut_frames

    t = np.arange(96) / 24.0
    one_shot = cut_frames(4.0, fps=24, shot=[10.0], size=48, seed=1)
    flash = one_shot.copy()
    flash[48] = 250
    assert analyze_frames(t, flash, fps=24).cuts == []
    flash2 = one_shot.copy()
    flash2[48:50] = np.clip(flash2[48:50].astype(int) + 150, 0, 255).astype(np.uint8)
    assert analyze_frames(t, flash2, fps=24).cuts == []
    cuts = cut_frames(4.0, fps=24, shot=0.5, size=48, seed=1)
    cuts[60] = 250  # a flash in the shot from 2.5 to 3.0 s
    assert analyze_frames(t, cuts, fps=24).cuts == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5], abs=0.045)


def test_fast_cut_clip_ranks_fast_track_above_slow(lib_home: DataHome, clip: Path) -> None:
    from engines.video2music.engine import Engine, MatchRequest

    res = Engine(lib_home, matcher="zero-shot").match(MatchRequest(video=str(clip), top=4))
    titles = [s.title for s in res.suggestions]
    assert titles.index("fast") < titles.index("slow")
    top = res.suggestions[0]
    assert top.matcher == "zero-shot" and "BPM" in top.rationale and "cuts within 80 ms" in top.rationale
    d = res.to_dict()
    assert d["session_id"] and {"track_id", "path", "title", "score", "offset_s", "cuts_on_beat",
                                "cuts_total", "matcher", "rationale"} <= set(d["results"][0])


def test_single_shot_clip_rationale_names_the_shot_not_cuts(lib_home: DataHome, tmp_path: Path) -> None:
    """A clip without cuts: the pace is read from its motion, and the rationale says so once
    (no cut counts, the motion not repeated)."""
    from engines.video2music.engine import Engine, MatchRequest

    one = fast_cut_clip(tmp_path / "one.mp4", seconds=3.0, shot=[10.0])
    res = Engine(lib_home, matcher="zero-shot").match(MatchRequest(video=str(one), top=3))
    for s in res.suggestions:
        assert s.rationale.startswith("one shot, ") and "BPM" in s.rationale.split(";")[0]
        assert "cuts" not in s.rationale
        motion = s.rationale.split(";")[0].split(", ")[1].split(" ↔")[0]
        assert s.rationale.count(motion) == 1


def test_text_slower_calmer_moves_ranking(lib_home: DataHome, clip: Path) -> None:
    from engines.video2music.engine import Engine, MatchRequest

    eng = Engine(lib_home, matcher="zero-shot")
    plain = eng.match(MatchRequest(video=str(clip), top=4))
    steered = eng.match(MatchRequest(video=str(clip), top=4, text="slower, calmer"))
    pos = lambda r, t: [s.title for s in r.suggestions].index(t)  # noqa: E731
    assert pos(steered, "slow") < pos(plain, "slow")
    assert steered.suggestions[0].title == "slow"
    mean_e = lambda r: np.mean([s.energy for s in r.suggestions[:2]])  # noqa: E731
    assert mean_e(steered) < mean_e(plain)


def test_refine_excludes_rejected_and_survives_restart(lib_home: DataHome, clip: Path) -> None:
    from engines.video2music.engine import Engine, MatchRequest

    first = Engine(lib_home).match(MatchRequest(video=str(clip), top=3))
    rejected = first.suggestions[0].track_id
    # a new engine instance (as after a restart) reads the session from the data home
    second = Engine(DataHome(lib_home.root)).refine(first.session_id, "not that one")
    assert rejected not in [s.track_id for s in second.suggestions]
    assert "dropped" in second.changed
    third = Engine(DataHome(lib_home.root)).refine(first.session_id, "more energetic")
    assert rejected not in [s.track_id for s in third.suggestions]
    back = Engine(lib_home).refine(first.session_id, "bring back the rejected ones")
    assert rejected in [s.track_id for s in back.suggestions] or len(back.suggestions) == 3
    st = Engine(lib_home).session(first.session_id)
    assert [t["text"] for t in st["turns"]] == ["not that one", "more energetic",
                                                "bring back the rejected ones"]


def test_best_offset_aligns_cuts_to_beats() -> None:
    from engines.video2music.sync import best_offset, count_aligned

    beats = np.arange(0.0, 30.0, 0.5) + 0.13  # 120 BPM, first beat at 0.13 s
    cuts = [0.5, 1.0, 2.0, 2.5, 3.25, 4.0, 5.5, 6.0, 6.77]  # 7 on a 0.5 s grid, 2 off it
    r = best_offset(cuts, beats, clip_duration=7.0, track_duration=30.0)
    assert r.aligned == 7 and r.total == 9
    n, _ = count_aligned(np.asarray(cuts), beats, r.offset)
    assert n == 7
    assert ((r.offset - 0.13) % 0.5) < 0.08 or ((r.offset - 0.13) % 0.5) > 0.42
    short = best_offset([0.5, 1.0], [0.5, 1.0], clip_duration=4.0, track_duration=2.0)
    assert short.offset == 0.0 and short.aligned == 2


def test_export_wav_and_mp4(lib_home: DataHome, clip: Path, tmp_path: Path) -> None:
    import av
    import soundfile as sf

    from engines.core.jobs import JobContext
    from engines.media.audio import load_audio
    from engines.video2music import commands
    from engines.video2music.engine import Engine, MatchRequest

    res = Engine(lib_home).match(MatchRequest(video=str(clip), top=2))
    ctx = JobContext(home=lib_home)
    wav = commands.export(ctx, session_id=res.session_id, rank=1, out=str(tmp_path / "m.wav")).files[0]
    y, sr = sf.read(wav)
    assert abs(len(y) / sr - 4.0) < 0.01
    assert np.abs(y[:20]).max() < 0.05 and np.abs(y[-20:]).max() < 0.01  # fades
    mp4 = commands.export(ctx, session_id=res.session_id, rank=1, out=str(tmp_path / "m.mp4"),
                          mux=True, under=True).files[0]
    with av.open(mp4) as c:
        assert c.streams.video and c.streams.audio
    a = load_audio(mp4, sr=48000)
    assert a.size > 3.5 * 48000 and np.sqrt(np.mean(a**2)) > 1e-3
    whole = commands.export(ctx, session_id=res.session_id, rank=1, out=str(tmp_path / "w.wav"),
                            whole=True).files[0]
    assert sf.info(whole).duration > 11


def test_bad_inputs_name_the_file(lib_home: DataHome, clip: Path, tmp_path: Path) -> None:
    from engines.video2music.engine import Engine, MatchRequest

    eng = Engine(lib_home)
    text = tmp_path / "notes.mp4"
    text.write_text("hello, not a video")
    empty = tmp_path / "empty.mov"
    empty.write_bytes(b"")
    audio_only = tmp_path / "song.mkv"
    import av

    from engines.video2music.data import click_track, write_video  # noqa: F401

    with av.open(str(audio_only), "w") as c:
        s = c.add_stream("aac", rate=48000)
        fr = av.AudioFrame.from_ndarray(np.zeros((1, 2048), np.float32), format="flt", layout="mono")
        fr.sample_rate = 48000
        for p in s.encode(fr):
            c.mux(p)
        for p in s.encode():
            c.mux(p)
    cases = [(tmp_path / "missing.mp4", NotFoundError), (text, UnsupportedFormatError),
             (empty, CorruptFileError), (audio_only, UnsupportedFormatError)]
    for path, err in cases:
        with pytest.raises(err) as ei:
            eng.match(MatchRequest(video=str(path)))
        assert ei.value.path and Path(ei.value.path).name == path.name
    with pytest.raises(ParameterError) as ei:
        eng.match(MatchRequest(video=str(clip), start=2.0, end=2.0))
    assert ei.value.path and "cuts.mp4" in ei.value.path
    with pytest.raises(ParameterError):
        eng.match(MatchRequest(video=str(clip), start=10.0))
    with pytest.raises(NotFoundError):
        eng.refine("26010100000000", "calmer")


def test_huge_resolution_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engines.analysis import video as V

    clip = fast_cut_clip(tmp_path / "big.mp4", seconds=1.0, shot=0.5)
    monkeypatch.setattr(V, "MAX_PIXELS", 32 * 32)
    with pytest.raises(ResourceLimitError) as ei:
        V.analyze_video(clip)
    assert "big.mp4" in str(ei.value)


def test_empty_library_is_a_clear_error(home: DataHome, clip: Path) -> None:
    from engines.video2music.engine import Engine, MatchRequest

    with pytest.raises(EngineError) as ei:
        Engine(home).match(MatchRequest(video=str(clip)))
    assert "library is empty" in str(ei.value) and ei.value.path


def test_steering_parser() -> None:
    from engines.video2music.steer import parse_turn

    t = parse_turn("less drums, more like the second one")
    assert t.directions["density"] < 0 and t.likes == [2] and not t.rejects
    t = parse_turn("not that one, with piano and no vocals")
    assert t.rejects == [1] and t.tags == {"piano": 1.0, "vocals": -1.0}
    t = parse_turn("like a heist movie")
    assert t.directions["major"] < 0 and not t.likes
    assert parse_turn("slower, calmer").directions["tempo"] < 0


def test_learned_debug_matcher_runs(lib_home: DataHome, clip: Path) -> None:
    from engines.video2music.engine import Engine, MatchRequest

    res = Engine(lib_home, matcher="debug").match(MatchRequest(video=str(clip), top=2))
    assert res.matcher == "learned:debug" and all(s.matcher == "learned:debug" for s in res.suggestions)


def test_diversity_mmr_prefers_other_albums() -> None:
    from engines.video2music.engine import mmr

    scores = np.array([1.0, 0.99, 0.98, 0.95, 0.5, 0.4, 0.3, 0.2])
    sim = np.eye(8)
    sim[0, 1] = sim[1, 0] = sim[0, 2] = sim[2, 0] = sim[1, 2] = sim[2, 1] = 1.0  # one album
    assert mmr(scores, sim, 2) == [0, 3]


def test_learn_from_folder_of_videos_with_music(home: DataHome, tmp_path: Path) -> None:
    from engines.core.jobs import JobContext
    from engines.video2music import commands
    from engines.video2music.data import click_track

    folder = tmp_path / "videos"
    for i, tempo in enumerate((60, 75, 90, 105, 120, 135, 150, 165, 80, 140)):
        fast_cut_clip(folder / f"c{i}.mp4", seconds=2.0, shot=60.0 / tempo * 2, size=32, seed=i,
                      audio=click_track(tempo, 2.0, sr=48000))
    (folder / "silent.mp4").parent.mkdir(exist_ok=True)
    fast_cut_clip(folder / "silent.mp4", seconds=1.0, shot=0.5, size=32)  # no sound: skipped
    res = commands.learn(JobContext(home=home), folder=str(folder), epochs=3, seed=0)
    assert res.data["pairs"] == 10
    assert (Path(res.data["model_dir"]) / "model.safetensors").is_file()
    assert {"R@1", "median_rank"} <= set(res.data["learned"]) and "default" in res.data
