"""``studio prefs ...`` end to end: real generations (debug model) -> queue -> votes -> export -> import."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

STUDIO = [sys.executable, "-m", "engines.cli"]
TEXT = "piano and bass in A minor, 92 bpm, chords Am F C G, 2 bars"


def _registered() -> bool:
    from engines.core.plugins import default_registry

    return "prefs.vote" in default_registry() and "generate.music" in default_registry()


pytestmark = pytest.mark.skipif(
    not _registered(),
    reason="prefs.* is not registered: add `prefs = \"engines.feedback.commands\"` to the cue_studio.plugins "
           "entry points in pyproject.toml and reinstall (pip install -e .)",
)


def studio(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STUDIO_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([*STUDIO, "--home", str(home), *args], capture_output=True, text=True, env=env,
                          timeout=300)


def ok(r: subprocess.CompletedProcess[str]) -> dict:
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_generations_to_votes_to_export_and_import(tmp_path: Path) -> None:
    home, out = tmp_path / "home", tmp_path / "out"
    g1 = ok(studio("generate", "music", "--text", TEXT, "--seed", "1", "--model", "debug", "--out", str(out),
                   "--json", home=home))
    g2 = ok(studio("generate", "music", "--text", TEXT, "--seed", "2", "--model", "debug", "--out", str(out),
                   "--json", home=home))
    log = [json.loads(line) for line in (home / "feedback" / "recent.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in log] == ["generate", "generate"]
    assert log[0]["data"]["wav"] == g1["wav"] and log[0]["data"]["seed"] == 1 and log[0]["data"]["model"] == "debug"

    # two generations with the same controls make a pair, with no new generation
    q = ok(studio("prefs", "queue", "--n", "1", "--no-generate", "--json", home=home))["pairs"]
    assert len(q) == 1
    p1 = q[0]
    assert p1["kind"] == "generate" and p1["source"] == "queue" and p1["prompt"] == TEXT
    assert {p1["a"]["seed"], p1["b"]["seed"]} == {1, 2} and p1["controls"]["tempo"] == 92
    by_seed = {p1[s]["seed"]: p1[s] for s in "ab"}
    assert Path(by_seed[1]["audio"]).read_bytes() == Path(g1["wav"]).read_bytes()
    assert Path(by_seed[2]["midi"]).read_bytes() == Path(g2["midi"]).read_bytes()

    # a lone generation gets a second seed of the same controls, generated now
    g3 = ok(studio("generate", "music", "--text", "waltz in Eb, 3/4, 2 bars", "--seed", "5", "--model", "debug",
                   "--out", str(out), "--json", home=home))
    q = ok(studio("prefs", "queue", "--n", "2", "--json", home=home))["pairs"]
    assert [p["pair_id"] for p in q][0] == p1["pair_id"] and len(q) == 2
    p2 = q[1]
    assert {p2["a"]["seed"], p2["b"]["seed"]} == {5, 6} and p2["controls"]["meter"] == "3/4"
    assert p2["a"]["meta"]["controls"] == p2["b"]["meta"]["controls"]
    new = p2["a"] if p2["a"]["seed"] == 6 else p2["b"]
    assert Path(new["audio"]).read_bytes() != Path(g3["wav"]).read_bytes()

    # votes, bad votes, undo
    listens = json.dumps([{"side": "a", "t": 0.2, "pos": 0.0, "action": "play"},
                          {"side": "b", "t": 1.5, "pos": 1.3, "action": "switch"}])
    v = ok(studio("prefs", "vote", p1["pair_id"], "--choice", "b", "--reason", "less busy", "--decision-ms",
                  "2500", "--listens", listens, "--json", home=home))
    assert v["choice"] == "b" and v["pair_id"] == p1["pair_id"] and len(v["listens"]) == 2
    bad = studio("prefs", "vote", p2["pair_id"], "--choice", "c", home=home)
    assert bad.returncode == 2 and "choice" in bad.stderr
    unknown = studio("prefs", "vote", "nosuchpair", "--choice", "a", "--json", home=home)
    assert unknown.returncode == 2 and "nosuchpair" in unknown.stderr
    badjson = studio("prefs", "vote", p2["pair_id"], "--choice", "a", "--listens", "[{oops", home=home)
    assert badjson.returncode == 2 and "listens" in badjson.stderr
    ok(studio("prefs", "vote", p2["pair_id"], "--choice", "tie", "--rater", "bob", "--json", home=home))
    assert ok(studio("prefs", "undo", "--json", home=home)) == {"pair_id": p2["pair_id"]}
    assert [p["pair_id"] for p in ok(studio("prefs", "list", "--pending", "--json", home=home))["pairs"]] == \
        [p2["pair_id"]]
    ok(studio("prefs", "vote", p2["pair_id"], "--choice", "both_bad", "--json", home=home))
    listed = ok(studio("prefs", "list", "--json", home=home))["pairs"]
    assert [p["vote"]["choice"] for p in listed] == ["b", "both_bad"]
    assert listed[0]["vote"]["reason"] == "less busy" and listed[0]["vote"]["decision_ms"] == 2500
    st = ok(studio("prefs", "stats", "--json", home=home))
    assert st["votes"] == 2 and st["pending"] == 0 and st["by_choice"]["both_bad"] == 1
    assert st["by_kind"]["generate"] == 2 and st["reward"] is None

    # deleting the originals orphans nothing
    shutil.rmtree(out)

    # export TRL and a bundle; import into another home, twice
    ex = ok(studio("prefs", "export", "--format", "trl", "--out", str(tmp_path / "x" / "p.jsonl"), "--json",
                   home=home))
    rows = [json.loads(line) for line in Path(ex["files"][0]).read_text().splitlines()]
    ties = [json.loads(line) for line in Path(ex["files"][1]).read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["chosen_seed"] == p1["b"]["seed"] and ties[0]["choice"] == "both_bad"
    assert Path(rows[0]["chosen"]).read_bytes() == Path(p1["b"]["audio"]).read_bytes()
    zb = ok(studio("prefs", "export", "--format", "bundle", "--out", str(tmp_path / "b.zip"), "--json",
                   home=home))["files"][0]
    home2 = tmp_path / "home2"
    assert ok(studio("prefs", "import", zb, "--json", home=home2))["added"] == 2
    res = ok(studio("prefs", "import", zb, "--json", home=home2))
    assert res["added"] == 0 and res["duplicates"] == 2
    there = ok(studio("prefs", "list", "--json", home=home2))["pairs"]
    assert [(p["pair_id"], p["vote"]["choice"], p["vote"]["reason"]) for p in there] == \
        [(p["pair_id"], p["vote"]["choice"], p["vote"]["reason"]) for p in listed]
    assert Path(there[0]["a"]["audio"]).read_bytes() == Path(listed[0]["a"]["audio"]).read_bytes()


def test_pair_from_files_and_bad_files(tmp_path: Path) -> None:
    home = tmp_path / "home"
    sr = 22050
    t = np.arange(sr // 2) / sr
    a, b = tmp_path / "mix_a.wav", tmp_path / "mix_b.wav"
    sf.write(str(a), 0.3 * np.sin(2 * np.pi * 330 * t), sr)
    sf.write(str(b), 0.3 * np.sin(2 * np.pi * 550 * t), sr)
    p = ok(studio("prefs", "pair", str(a), str(b), "--prompt", "which master", "--json", home=home))
    assert p["kind"] == "audio" and p["prompt"] == "which master" and p["vote"] is None
    assert p["a"]["label"] == "mix_a" and Path(p["a"]["audio"]).read_bytes() == a.read_bytes()

    missing = studio("prefs", "pair", str(a), str(tmp_path / "nope.wav"), home=home)
    assert missing.returncode == 1 and "nope.wav" in missing.stderr
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF" + b"\x00" * 50)
    corrupt = studio("prefs", "pair", str(junk), str(b), "--json", home=home)
    assert corrupt.returncode == 1 and "junk.wav" in corrupt.stderr
    nomid = studio("prefs", "pair", str(a), str(b), "--kind", "video", home=home)
    assert nomid.returncode == 2 and "--video" in nomid.stderr
    assert len(ok(studio("prefs", "list", "--json", home=home))["pairs"]) == 1
    none = studio("prefs", "undo", home=home)
    assert none.returncode == 1 and "no vote to undo" in none.stderr
