"""Preference store: pairs with content-hashed copies, votes, undo, stats, kill safety, export/import."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import sqlite3
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))
from v2m_helpers import fast_cut_clip, make_track  # noqa: E402

from engines.core.errors import CorruptFileError, EngineError, NotFoundError, ParameterError  # noqa: E402
from engines.core.home import DataHome  # noqa: E402
from engines.feedback import recent  # noqa: E402
from engines.feedback import store as store_mod  # noqa: E402
from engines.feedback.export import export, import_bundle  # noqa: E402
from engines.feedback.queue import fill_queue  # noqa: E402
from engines.feedback.store import PairNotFoundError, PreferenceStore  # noqa: E402

SR = 22050


def tone(path: Path, freq: float, seconds: float = 0.5) -> Path:
    t = np.arange(int(seconds * SR)) / SR
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), SR, subtype="PCM_16")
    return path


@pytest.fixture
def wavs(tmp_path: Path) -> list[Path]:
    src = tmp_path / "src"
    src.mkdir()
    return [tone(src / f"take{i}.wav", 220.0 * (i + 1)) for i in range(6)]


def add(store: PreferenceStore, a: Path, b: Path, **kw):
    return store.add_pair("generate", a, b, prompt=kw.pop("prompt", "lofi piano in Am"),
                          controls=kw.pop("controls", {"key": "Am", "tempo": 92}),
                          a_meta={"model": "debug", "model_version": "g001", "seed": 1},
                          b_meta={"model": "debug", "model_version": "base", "seed": 2}, **kw)


# --------------------------------------------------------------------------- pairs and votes

def test_pair_keeps_hashed_copies_so_deleting_originals_orphans_nothing(home: DataHome, wavs: list[Path]) -> None:
    store = PreferenceStore(home)
    original = [wavs[0].read_bytes(), wavs[1].read_bytes()]
    p = add(store, wavs[0], wavs[1])
    v = store.vote(p.pair_id, "a", reason="warmer", rater="ann", decision_ms=5400,
                   listens=[{"side": "a", "t": 0.4, "pos": 0.0, "action": "play"},
                            {"side": "b", "t": 3.0, "pos": 2.5, "action": "switch"}])
    wavs[0].unlink()
    wavs[1].unlink()

    again = PreferenceStore(home).pair(p.pair_id)  # a fresh store: what is on disk
    assert again.a.audio.read_bytes() == original[0] and again.b.audio.read_bytes() == original[1]
    assert again.a.audio.is_relative_to(home.root / "feedback" / "blobs")
    assert again.a.audio.name.startswith(again.a.sha) and again.a.sha != again.b.sha
    assert (again.a.model, again.a.model_version, again.a.seed) == ("debug", "g001", 1)
    assert again.b.model_version == "base" and again.b.seed == 2
    assert again.prompt == "lofi piano in Am" and again.controls == {"key": "Am", "tempo": 92}
    assert again.a.meta["source_path"].endswith("take0.wav")
    assert again.vote is not None and again.vote.to_dict() == v.to_dict()
    assert again.vote.choice == "a" and again.vote.rater == "ann" and again.vote.decision_ms == 5400
    assert [e["action"] for e in again.vote.listens] == ["play", "switch"]
    assert store.check() == []


def test_bad_candidate_files_are_named_and_store_nothing(home: DataHome, wavs: list[Path], tmp_path: Path) -> None:
    store = PreferenceStore(home)
    missing = tmp_path / "gone.wav"
    with pytest.raises(NotFoundError) as e:
        store.add_pair("audio", wavs[0], missing)
    assert "gone.wav" in str(e.value)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio at all" * 20)
    with pytest.raises(EngineError) as e2:
        store.add_pair("audio", junk, wavs[0])
    assert "junk.wav" in str(e2.value)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(wavs[1].read_bytes()[:30])  # header only, truncated
    with pytest.raises(EngineError) as e3:
        store.add_pair("audio", wavs[0], cut)
    assert "cut.wav" in str(e3.value)
    badmidi = tmp_path / "bad.mid"
    badmidi.write_bytes(b"MThd\x00\x00")
    with pytest.raises(EngineError) as e4:
        store.add_pair("generate", wavs[0], wavs[1], a_midi=badmidi)
    assert "bad.mid" in str(e4.value)
    with pytest.raises(ParameterError):
        store.add_pair("podcast", wavs[0], wavs[1])
    assert store.pairs() == [] and store.stats()["pairs"] == 0


def test_vote_validation_and_one_vote_per_pair(home: DataHome, wavs: list[Path]) -> None:
    store = PreferenceStore(home)
    p = add(store, wavs[0], wavs[1])
    with pytest.raises(ParameterError, match="choice"):
        store.vote(p.pair_id, "c")
    with pytest.raises(PairNotFoundError, match="nope"):
        store.vote("nope", "a")
    assert isinstance(PairNotFoundError("x"), NotFoundError)
    with pytest.raises(ParameterError, match="listen event 0"):
        store.vote(p.pair_id, "a", listens=[{"side": "c", "t": 0, "pos": 0, "action": "play"}])
    with pytest.raises(ParameterError, match="JSON"):
        store.vote(p.pair_id, "a", listens="[{")
    with pytest.raises(ParameterError, match="decision_ms"):
        store.vote(p.pair_id, "a", decision_ms=-5)
    assert store.pair(p.pair_id).vote is None  # nothing half-recorded by the refusals
    store.vote(p.pair_id, "both_bad")
    with pytest.raises(ParameterError, match="already has a vote"):
        store.vote(p.pair_id, "a")
    assert store.pair(p.pair_id).vote.choice == "both_bad"


def test_undo_history_and_stats(home: DataHome, wavs: list[Path]) -> None:
    store = PreferenceStore(home)
    p1 = add(store, wavs[0], wavs[1])
    p2 = add(store, wavs[2], wavs[3], prompt="waltz")
    p3 = store.add_pair("audio", wavs[4], wavs[5])
    assert store.undo_last() is None
    store.vote(p1.pair_id, "a", rater="ann")
    store.vote(p2.pair_id, "tie", rater="bob")
    store.vote(p3.pair_id, "b", rater="ann")
    st = store.stats()
    assert st["votes"] == 3 and st["pending"] == 0 and st["pairs"] == 3
    assert st["by_choice"] == {"a": 1, "b": 1, "tie": 1, "both_bad": 0}
    assert st["by_kind"] == {"generate": 2, "video": 0, "audio": 1}
    assert st["raters"] == {"ann": 2, "bob": 1}
    # undo the newest of bob's votes, then the newest overall
    assert store.undo_last(rater="bob").pair_id == p2.pair_id
    assert store.undo_last().pair_id == p3.pair_id
    assert [p.pair_id for p in store.pairs(pending=True)] == [p2.pair_id, p3.pair_id]
    assert [(p.pair_id, v.choice) for p, v in store.votes()] == [(p1.pair_id, "a")]
    assert store.stats()["pending"] == 2


# --------------------------------------------------------------------------- kill safety

def _child(root: str, wavs: list[str], stage: str, conn) -> None:  # noqa: ANN001
    s = PreferenceStore(root)
    p = s.add_pair("audio", wavs[0], wavs[1])
    v = s.vote(p.pair_id, "a")
    conn.send(("committed", p.pair_id, v.vote_id))

    def die(at: str) -> None:
        if at == stage:
            os._exit(9)  # like SIGKILL: no cleanup, no rollback, open transaction and files left

    store_mod._before_commit = die
    if stage.startswith("vote"):
        q = s.add_pair("audio", wavs[2], wavs[3])
        conn.send(("pair", q.pair_id))
        s.vote(q.pair_id, "b")
    elif stage.startswith("pair"):
        s.add_pair("audio", wavs[2], wavs[3])
    else:
        s.undo_last()
    conn.send(("survived",))


@pytest.mark.parametrize("stage", ["vote:row", "pair:blobs", "pair:rows", "undo:row"])
def test_a_process_killed_mid_write_leaves_a_clean_store(home: DataHome, wavs: list[Path], stage: str) -> None:
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(str(home.root), [str(w) for w in wavs], stage, child))
    proc.start()
    proc.join(60)
    assert proc.exitcode == 9
    msgs = []
    while parent.poll():
        msgs.append(parent.recv())
    assert msgs[0][0] == "committed" and ("survived",) not in msgs
    store = PreferenceStore(home)
    assert store.check() == []
    with sqlite3.connect(store.db_path) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # the vote committed before the kill is there, complete
    done = store.pair(msgs[0][1])
    assert done.vote is not None and done.vote.vote_id == msgs[0][2] and done.vote.choice == "a"
    assert done.a.audio.is_file() and done.b.audio.is_file()
    pairs = store.pairs()
    if stage == "vote:row":
        assert len(pairs) == 2 and store.pair(msgs[1][1]).vote is None  # pending, no half vote
    elif stage.startswith("pair"):
        assert len(pairs) == 1  # the killed pair is not there at all
    else:
        assert store.stats()["votes"] == 1  # the undo did not happen
    # and the store keeps working
    more = store.add_pair("audio", wavs[4], wavs[5])
    assert store.vote(more.pair_id, "tie").choice == "tie" and store.check() == []


# --------------------------------------------------------------------------- export / import

def _voted_store(home: DataHome, wavs: list[Path]) -> PreferenceStore:
    store = PreferenceStore(home)
    p1 = add(store, wavs[0], wavs[1])
    p2 = add(store, wavs[2], wavs[3], prompt="waltz in Eb", controls={"meter": "3/4"})
    p3 = store.add_pair("audio", wavs[4], wavs[5], prompt="which mix")
    store.add_pair("audio", wavs[1], wavs[5], prompt="still pending")
    store.vote(p1.pair_id, "b", reason="less busy", decision_ms=3000,
               listens=[{"side": "a", "t": 0.1, "pos": 0.0, "action": "play"}])
    store.vote(p2.pair_id, "a", rater="bob")
    store.vote(p3.pair_id, "tie")
    return store


def test_trl_export_columns_and_files_load_with_datasets(home: DataHome, wavs: list[Path], tmp_path: Path) -> None:
    store = _voted_store(home, wavs)
    out = tmp_path / "x" / "prefs.jsonl"
    files = export(store, "trl", out)
    assert files == [out, tmp_path / "x" / "prefs_ties.jsonl"]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    ties = [json.loads(line) for line in files[1].read_text().splitlines()]
    assert len(rows) == 2 and len(ties) == 1 and ties[0]["choice"] == "tie"
    r1 = next(r for r in rows if r["prompt"] == "lofi piano in Am")
    # voted B: chosen is take1's bytes, rejected take0's
    assert Path(r1["chosen"]).read_bytes() == wavs[1].read_bytes()
    assert Path(r1["rejected"]).read_bytes() == wavs[0].read_bytes()
    assert r1["chosen_side"] == "b" and r1["chosen_seed"] == 2 and r1["rejected_model_version"] == "g001"
    assert r1["reason"] == "less busy" and r1["decision_ms"] == 3000 and r1["n_listens"] == 1
    assert json.loads(r1["controls"]) == {"key": "Am", "tempo": 92}
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset("json", data_files=str(out), split="train", cache_dir=str(tmp_path / "hf"))
    assert ds.num_rows == 2 and {"prompt", "chosen", "rejected"} <= set(ds.column_names)
    assert sorted(ds["prompt"]) == ["lofi piano in Am", "waltz in Eb"]
    dt = datasets.load_dataset("json", data_files=str(files[1]), split="train", cache_dir=str(tmp_path / "hf"))
    assert dt["choice"] == ["tie"]


def test_csv_export(home: DataHome, wavs: list[Path], tmp_path: Path) -> None:
    import csv

    store = _voted_store(home, wavs)
    (out,) = export(store, "csv", tmp_path / "votes.csv")
    rows = list(csv.DictReader(out.open()))
    assert [r["choice"] for r in rows] == ["b", "a", "tie"]
    assert rows[1]["rater"] == "bob" and rows[0]["a_seed"] == "1" and Path(rows[0]["a_audio"]).is_file()
    with pytest.raises(ParameterError):
        export(store, "csv", tmp_path / "votes.txt")


def _comparable(store: PreferenceStore) -> list[dict]:
    out = []
    for p in store.pairs():
        d = p.to_dict()
        for side in ("a", "b"):
            d[side]["audio"] = Path(d[side]["audio"]).read_bytes()
        out.append(d)
    return sorted(out, key=lambda d: d["pair_id"])


@pytest.mark.parametrize("as_zip", [False, True])
def test_bundle_round_trip_and_dedup(home: DataHome, wavs: list[Path], tmp_path: Path, as_zip: bool) -> None:
    store = _voted_store(home, wavs)
    target = tmp_path / ("bundle.zip" if as_zip else "bundle")
    (b,) = export(store, "bundle", target)
    assert b == target and target.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    names = zipfile.ZipFile(b).namelist() if as_zip else [str(p.relative_to(b)) for p in b.rglob("*")]
    assert {"README.md", "pairs.jsonl", "preferences.jsonl", "preferences_ties.jsonl", "votes.csv",
            "manifest.json"} <= set(names)
    card = zipfile.ZipFile(b).read("README.md").decode() if as_zip else (b / "README.md").read_text()
    assert "| votes | 3 |" in card and "| pending pairs (no vote; in `pairs.jsonl` only) | 1 |" in card

    other = PreferenceStore(DataHome(tmp_path / "other"))
    res = import_bundle(other, b)
    assert res["added"] == 4 and res["duplicates"] == 0
    assert _comparable(other) == _comparable(store)  # nothing lost: votes, metadata, audio bytes
    assert other.check() == []
    again = import_bundle(other, b)
    assert again["added"] == 0 and again["duplicates"] == 4
    assert import_bundle(store, b)["duplicates"] == 4 and store.stats()["pairs"] == 4
    # a vote on a pair the other store has pending is merged into that pair
    pend = store.pairs(pending=True)[0]
    store.vote(pend.pair_id, "a", rater="carl")
    (b2,) = export(store, "bundle", tmp_path / ("b2.zip" if as_zip else "b2"))
    assert import_bundle(other, b2) == {"added": 1, "duplicates": 3, "pair_ids": [pend.pair_id]}
    assert other.pair(pend.pair_id).vote.rater == "carl" and other.stats()["pairs"] == 4


def _unpack(b: Path, tmp_path: Path) -> Path:
    d = tmp_path / "copy"
    shutil.copytree(b, d)
    return d


def test_damaged_bundles_name_the_problem_and_import_nothing(home: DataHome, wavs: list[Path],
                                                             tmp_path: Path) -> None:
    store = _voted_store(home, wavs)
    (b,) = export(store, "bundle", tmp_path / "bundle")
    fresh = PreferenceStore(DataHome(tmp_path / "fresh"))

    def attempt(mutate) -> str:  # noqa: ANN001
        d = _unpack(b, tmp_path)
        try:
            mutate(d)
            with pytest.raises(EngineError) as e:
                import_bundle(fresh, d)
            return str(e.value)
        finally:
            shutil.rmtree(d)

    def edit_row(d: Path) -> None:
        lines = (d / "pairs.jsonl").read_text().splitlines()
        row = json.loads(lines[1])
        row["vote"]["choice"] = "maybe"
        lines[1] = json.dumps(row)
        (d / "pairs.jsonl").write_text("\n".join(lines) + "\n")

    def flip_vote(d: Path) -> None:  # still a valid row: only the manifest can tell
        text = (d / "pairs.jsonl").read_text().replace('"choice": "b"', '"choice": "a"', 1)
        (d / "pairs.jsonl").write_text(text)

    def truncate_rows(d: Path) -> None:
        raw = (d / "pairs.jsonl").read_bytes()
        (d / "pairs.jsonl").write_bytes(raw[: len(raw) - 40])

    def truncate_audio(d: Path) -> None:
        f = sorted((d / "audio").iterdir())[0]
        f.write_bytes(f.read_bytes()[:100])

    def drop_audio(d: Path) -> None:
        sorted((d / "audio").iterdir())[-1].unlink()

    assert "pairs.jsonl line 2" in attempt(edit_row) and "maybe" in attempt(edit_row)
    assert "pairs.jsonl does not match manifest.json" in attempt(flip_vote)
    assert "pairs.jsonl line 4: truncated" in attempt(truncate_rows)
    msg = attempt(truncate_audio)
    assert "audio/" in msg and "does not match manifest.json" in msg
    assert "the bundle has no file audio/" in attempt(drop_audio)
    # a truncated zip
    (z,) = export(store, "bundle", tmp_path / "b.zip")
    raw = z.read_bytes()
    z.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptFileError, match="b.zip"):
        import_bundle(fresh, z)
    assert fresh.stats()["pairs"] == 0 and fresh.pairs() == []


def test_export_killed_midway_leaves_nothing_under_the_final_name(home: DataHome, wavs: list[Path],
                                                                  tmp_path: Path, monkeypatch) -> None:
    import engines.feedback.export as X

    store = _voted_store(home, wavs)
    calls = {"n": 0}
    real = shutil.copyfile

    def failing_copy(src, dst, *a, **k):  # noqa: ANN001, ANN002, ANN003
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real(src, dst, *a, **k)

    monkeypatch.setattr(X.shutil, "copyfile", failing_copy)
    with pytest.raises(OSError):
        export(store, "bundle", tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".bundle")] == []
    # an existing export is replaced whole or not at all
    out = tmp_path / "p.jsonl"
    out.write_text("old\n")
    monkeypatch.setattr(X, "_jsonl", lambda _rows: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        export(store, "trl", out)
    assert out.read_text() == "old\n"


# --------------------------------------------------------------------------- recent work and the queue

def test_recent_log_survives_a_torn_line(home: DataHome) -> None:
    recent.record(home, "generate", {"wav": "/x/1.wav"})
    with open(recent.path(home), "ab") as fh:
        fh.write(b'{"id": "torn", "kind": "gen')  # a writer killed mid-append
    recent.record(home, "video", {"video": "/x/clip.mp4"})
    recs = recent.read(home)
    assert [r["kind"] for r in recs] == ["generate", "video"]
    assert recent.read(home, kind="video")[0]["data"] == {"video": "/x/clip.mp4"}


def test_queue_pairs_same_controls_and_video_top2(home: DataHome, tmp_path: Path) -> None:
    src = tmp_path / "lib"
    src.mkdir()
    w = [tone(src / f"gen_s{i}.wav", 300.0 + 50 * i) for i in range(3)]
    ctl = {"key": "Am", "tempo": 92.0, "chords": ["Am", "F"], "sources": {"key": "text"}}
    recent.record(home, "generate", {"wav": str(w[0]), "midi": None, "controls": ctl, "seed": 1,
                                     "model": "debug", "model_version": "g001", "text": "sad piano"})
    recent.record(home, "generate", {"wav": str(w[1]), "midi": None, "controls": {**ctl, "sources": {}},
                                     "seed": 2, "model": "debug", "model_version": "g001", "text": "sad piano"})
    recent.record(home, "generate", {"wav": str(w[2]), "midi": None, "controls": {**ctl, "tempo": 140.0},
                                     "seed": 3, "model": "debug", "text": "fast"})
    t1, t2 = make_track(src, "calm", 90, seconds=3), make_track(src, "busy", 128, seconds=3)
    clip = fast_cut_clip(tmp_path / "clip.mp4", seconds=1.0)
    recent.record(home, "video", {"video": str(clip), "text": "calmer", "session_id": "s1", "start": 0.0,
                                  "end": 1.0, "candidates": [
                                      {"path": str(t2), "title": "busy", "offset_s": 0.5, "score": 0.4, "rank": 2},
                                      {"path": str(t1), "title": "calm", "offset_s": 1.25, "score": 0.7, "rank": 1},
                                      {"path": str(w[2]), "title": "x", "offset_s": 0, "score": 0.1, "rank": 3}]})
    store = PreferenceStore(home)
    pairs = fill_queue(store, 5, generate=False)
    assert len(pairs) == 2  # the lone 140 bpm generation needs generating, which is off
    g = next(p for p in pairs if p.kind == "generate")
    assert {g.a.seed, g.b.seed} == {1, 2} and g.controls["tempo"] == 92.0 and "sources" not in g.controls
    assert g.prompt == "sad piano" and g.source == "queue" and g.a.model_version == "g001"
    v = next(p for p in pairs if p.kind == "video")
    assert v.a.label == "calm" and v.a.meta["offset_s"] == 1.25 and v.b.meta["offset_s"] == 0.5
    assert v.video is not None and v.video.read_bytes() == clip.read_bytes() and v.prompt == "calmer"
    # asking again makes nothing new: the same pairs are pending
    assert [p.pair_id for p in fill_queue(store, 5, generate=False)] == [p.pair_id for p in pairs]
    store.vote(pairs[0].pair_id, "a")
    store.vote(pairs[1].pair_id, "b")
    assert fill_queue(store, 5, generate=False) == []  # voted pairs are not made again
