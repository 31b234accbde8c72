"""Learning from votes: reward model, generator fine-tuning and versions, preference re-ranking.

Real files in and out: WAV / MIDI candidates in a real preference store, model folders on disk.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))


def _tones(folder: Path, n: int, seed: int = 0) -> list[tuple[Path, float]]:
    """``n`` click tracks: tone (brightness) and tempo and level drawn at random."""
    from v2m_helpers import make_track

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        tone = float(rng.uniform(250, 4000))
        p = make_track(folder, f"t{i:02d}", float(rng.uniform(70, 150)), seconds=4.0,
                       level=float(rng.uniform(0.2, 0.8)), tone=tone)
        out.append((p, tone))
    return out


def _vote_brighter(store, files: list[tuple[Path, float]], n_pairs: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(n_pairs):
        i, j = rng.choice(len(files), size=2, replace=False)
        (a, ta), (b, tb) = files[i], files[j]
        pair = store.add_pair("audio", a, b, prompt="which is better")
        store.vote(pair.pair_id, "a" if ta > tb else "b", rater="test")


def test_reward_learns_the_deciding_feature(home, tmp_path: Path) -> None:
    from engines.feedback import reward as R
    from engines.feedback.store import PreferenceStore

    store = PreferenceStore(home)
    files = _tones(tmp_path / "audio", 14)
    _vote_brighter(store, files, 40)
    rep = R.train_reward(home, store=store)
    assert rep["version"] == "r001" and rep["votes"] == 40
    assert rep["n_train"] + rep["n_held_out"] == 40 and rep["n_held_out"] == 8
    # brightness alone decides the votes: well above chance (0.5) on pairs it never saw
    assert rep["held_out_accuracy"] is not None and rep["held_out_accuracy"] >= 0.75
    folder = Path(rep["path"])
    assert {p.name for p in folder.iterdir()} == {"model.safetensors", "config.json", "card.md"}
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["held_out_accuracy"] == rep["held_out_accuracy"] and cfg["n_held_out"] == 8
    assert "held-out accuracy" in (folder / "card.md").read_text()
    model = R.latest(home)
    assert model is not None and model.version == "r001"
    # the loaded model ranks unseen files by brightness
    fresh = _tones(tmp_path / "fresh", 6, seed=5)
    from engines.feedback.features import FeatureCache

    cache = FeatureCache(home)
    scores = model.score(np.stack([cache.files(audio=p) for p, _ in fresh]))
    tones = np.array([t for _, t in fresh])
    assert np.corrcoef(scores, tones)[0, 1] > 0.6
    # a second training run is a new version; the first stays
    rep2 = R.train_reward(home, store=store, seed=1)
    assert rep2["version"] == "r002" and (folder / "model.safetensors").is_file()
    agree = R.agreement(home, store)
    assert agree is not None and agree["model_version"] == "r002" and agree["agreement"] >= 0.8


def test_reward_ties_both_bad_and_too_few_votes(home, tmp_path: Path) -> None:
    from engines.core.errors import InputError
    from engines.feedback import reward as R
    from engines.feedback.store import PreferenceStore

    store = PreferenceStore(home)
    files = _tones(tmp_path / "audio", 4)
    choices = ["a", "b", "tie", "both_bad", "both_bad"]
    for i, c in enumerate(choices):
        p = store.add_pair("audio", files[i % 4][0], files[(i + 1) % 4][0])
        store.vote(p.pair_id, c)
    data = R.votes_dataset(store)
    assert sorted(data.y.tolist()) == [0.0, 0.5, 1.0]  # both_bad kept out of the pairwise data
    assert data.skipped["both_bad"] == 2
    with pytest.raises(InputError) as ei:
        R.train_reward(home, store=store)
    assert "at least" in str(ei.value) and "prefs.db" in str(ei.value)
    assert R.latest(home) is None


def _generate_votes(home, tmp_path: Path, *, seeds: int = 3) -> list[str]:
    from engines.feedback.rater import ScriptedRater
    from engines.feedback.store import PreferenceStore
    from engines.generate.engine import Engine, GenerateRequest

    eng = Engine.from_pretrained("debug")
    store = PreferenceStore(home)
    rater = ScriptedRater()
    prompts = ["classical piano in C major, 100 bpm, 4 bars, chords C F G C",
               "piano and bass in A minor, 90 bpm, 4 bars, chords Am F C G"]
    ids = []
    for pr in prompts:
        res = [eng.generate(GenerateRequest(text=pr, seed=s, out_dir=str(tmp_path / "gen"), stems=False,
                                            sample_rate=22050, wav_bits=16)) for s in range(seeds)]
        for a in range(seeds):
            for b in range(a + 1, seeds):
                pair = store.add_pair("generate", res[a].wav, res[b].wav, prompt=pr, controls=res[a].controls,
                                      a_midi=res[a].midi, b_midi=res[b].midi, a_meta={"seed": a, "model": "debug"},
                                      b_meta={"seed": b, "model": "debug"})
                store.vote(pair.pair_id, rater.judge(res[a].midi, res[b].midi, pair.pair_id), rater="scripted")
                ids.append(pair.pair_id)
    return ids


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_finetune_creates_a_selectable_version(home, tmp_path: Path) -> None:
    from engines.core.errors import NotFoundError, ParameterError
    from engines.feedback import finetune as FT
    from engines.feedback import versions as V
    from engines.generate.engine import MODELS_DIR, GenerateRequest
    from engines.media.midi import read_midi

    shipped = _sha(MODELS_DIR / "model.safetensors")
    _generate_votes(home, tmp_path)
    rep = FT.finetune(home, base="debug", steps=3, samples_per_prompt=2, check_prompts=1)
    assert rep["version"] == "g001" and rep["parent"] == "debug" and rep["votes_used"] == 6
    assert rep["reward_trained"]["version"] == "r001"  # no reward model yet: trained first
    folder = V.versions_dir(home) / "g001"
    assert {"model.safetensors", "config.json", "MODEL_CARD.md"} <= {p.name for p in folder.iterdir()}
    card = (folder / "MODEL_CARD.md").read_text()
    assert "parent: `debug`" in card and "votes used: 6" in card and "command:" in card
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["extra"]["feedback"]["parent"] == "debug" and "check_after" in cfg["extra"]["feedback"]["metrics"]
    if rep["adherence_ok"]:
        assert V.selected(home) == "g001"
    else:
        V.select(home, "g001")
    # "default" now resolves to the new version; it loads and writes a valid MIDI
    eng = V.generator("default", "cpu", home)
    assert eng.version == "g001"
    res = eng.generate(GenerateRequest(text="piano in D minor, 80 bpm, 2 bars", seed=1, out_dir=str(tmp_path / "o"),
                                       render=False))
    song = read_midi(res.midi)
    assert sum(len(t.notes) for t in song.tracks) > 0 and res.notes["model"] == "g001"
    # the weights changed and the shipped ones did not
    base_state = V.generator("debug", "cpu", home).model.unet.state_dict()
    new_state = eng.model.unet.state_dict()
    assert any(not np.allclose(base_state[k].numpy(), new_state[k].numpy()) for k in base_state)
    assert _sha(MODELS_DIR / "model.safetensors") == shipped
    # revert goes back to base, select brings it back, unknown versions are refused
    assert V.revert(home)["selected"] == "base" and V.selected(home) == "base"
    assert V.generator("default", "cpu", home).version == "base"
    with pytest.raises(ParameterError):
        V.revert(home)
    V.select(home, "g001")
    assert V.selected(home) == "g001"
    with pytest.raises(NotFoundError):
        V.select(home, "g009")
    listed = V.list_versions(home)
    assert [r["version"] for r in listed["versions"]] == ["base", "g001"] and listed["selected"] == "g001"


def test_finetune_needs_generate_votes(home, tmp_path: Path) -> None:
    from engines.core.errors import InputError
    from engines.feedback import finetune as FT
    from engines.feedback.store import PreferenceStore

    store = PreferenceStore(home)
    _vote_brighter(store, _tones(tmp_path, 4), 6)
    with pytest.raises(InputError, match="votes on generated pieces"):
        FT.finetune(home, base="debug", steps=1)


def test_reward_reranks_video_matches_as_voted(home, tmp_path: Path) -> None:
    from v2m_helpers import add_tracks, fast_cut_clip, make_track

    from engines.core.api import Studio
    from engines.feedback import reward as R
    from engines.feedback.store import PreferenceStore

    lib = tmp_path / "lib"
    lib.mkdir()
    specs = [dict(name=n, path=make_track(lib, n, 120, level=0.5, tone=t))
             for n, t in (("dark", 300.0), ("mid", 1200.0), ("bright", 3500.0))]
    add_tracks(home, specs)
    clip = fast_cut_clip(tmp_path / "clip.mp4", seconds=3.0, shot=0.5)
    studio = Studio(home)
    plain = studio.run("video.match", video=str(clip), top=3, prefs=False).data["results"]
    # votes: the darker of two tracks wins (other files than the library's)
    store = PreferenceStore(home)
    files = _tones(tmp_path / "votes", 12, seed=3)
    rng = np.random.default_rng(2)
    for _ in range(36):
        i, j = rng.choice(len(files), size=2, replace=False)
        pair = store.add_pair("audio", files[i][0], files[j][0])
        store.vote(pair.pair_id, "a" if files[i][1] < files[j][1] else "b")
    R.train_reward(home, store=store)
    from engines.feedback.features import FeatureCache

    model = R.latest(home)
    cache = FeatureCache(home)
    r = {s["name"]: float(model.score(cache.files(audio=s["path"]))[0]) for s in specs}
    assert r["dark"] > r["mid"] > r["bright"]  # what the votes said
    ranked = studio.run("video.match", video=str(clip), top=3).data["results"]  # on by default now
    before = {x["title"]: x["rank"] for x in plain}
    after = {x["title"]: x["rank"] for x in ranked}
    assert sorted(after.values()) == [1, 2, 3]
    # every pair of tracks the votes order differently from the matcher moves towards the votes' order,
    # unless the matcher's gap is larger than the preference weight allows; at least the darkest moves up
    assert after["dark"] <= before["dark"] and after["bright"] >= before["bright"]
    if before["dark"] != 1:
        assert after["dark"] < before["dark"]
        moved = [x for x in ranked if x["rank"] != before[x["title"]]]
        assert moved and all("your votes moved it" in x["rationale"] for x in moved)
    else:
        assert after == before or after["dark"] == 1
    # the session holds what was shown: export by rank gets the re-ranked track
    off = studio.run("video.match", video=str(clip), top=3, prefs=False).data["results"]
    assert [r["title"] for r in off] == [r["title"] for r in plain]
    st = studio.run("video.match", video=str(clip), top=3).data
    from engines.video2music.engine import Engine

    for k in (1, 2, 3):
        _, shown = Engine(home).suggestion(st["session_id"], k)
        assert shown["title"] == st["results"][k - 1]["title"]
    # refining a session re-ranks by the votes too (and --no-prefs keeps the engine's order):
    # two sessions that showed the same list, refined with the same words
    sa = studio.run("video.match", video=str(clip), top=3, prefs=False).data["session_id"]
    sb = studio.run("video.match", video=str(clip), top=3, prefs=False).data["session_id"]
    ref_off = studio.run("video.refine", session_id=sa, text="calmer", prefs=False).data["results"]
    ref_on = studio.run("video.refine", session_id=sb, text="calmer").data["results"]
    r_off = {x["title"]: x["rank"] for x in ref_off}
    r_on = {x["title"]: x["rank"] for x in ref_on}
    assert set(r_on) == set(r_off)
    assert r_on["dark"] <= r_off["dark"] and r_on["bright"] >= r_off["bright"]
    if r_off["dark"] != 1:
        assert r_on["dark"] < r_off["dark"]
    for k, x in enumerate(ref_on, 1):
        _, shown = Engine(home).suggestion(sb, k)
        assert shown["title"] == x["title"]
    moved = [x for x in ref_on if x["rank"] != r_off[x["title"]]]
    assert all("your votes moved it" in x["rationale"] for x in moved)
