"""``studio sheet ...`` as a user drives it (subprocesses, real files).

Skips while the ``sheet`` entry point is not installed (``sheet.find`` not registered).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

STUDIO = [sys.executable, "-m", "engines.cli"]


def _registered() -> bool:
    from engines.core.plugins import load_plugins
    from engines.core.registry import Registry

    return "sheet.find" in load_plugins(Registry())


pytestmark = pytest.mark.skipif(
    not _registered(),
    reason="sheet.find is not registered: add the entry point sheet = \"engines.sheet.commands\" "
           "to [project.entry-points.\"cue_studio.plugins\"] and reinstall")


def studio(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STUDIO_HOME": str(home), "CUE_SHEET_MODEL": "debug"}
    return subprocess.run([*STUDIO, *args], capture_output=True, text=True, env=env, timeout=180)


TUNE_A = [[(60, 1), (62, 1), (64, 1), (65, 1)], [(67, 2), (67, 2)], [(69, 1), (69, 1), (69, 1), (69, 1)],
          [(67, 4)], [(65, 1), (65, 1), (65, 1), (65, 1)], [(64, 2), (64, 2)], [(62, 1), (62, 1), (62, 1), (62, 1)],
          [(60, 4)]]
_STEP = {0: "C", 2: "D", 4: "E", 5: "F", 7: "G", 9: "A", 11: "B"}
_TYPE = {1: "quarter", 2: "half", 4: "whole"}


def musicxml(bars: list[list[tuple[int, int]]], title: str) -> str:
    body = []
    for i, bar in enumerate(bars, start=1):
        attrs = ("<attributes><divisions>1</divisions><time><beats>4</beats><beat-type>4</beat-type></time>"
                 "<clef><sign>G</sign><line>2</line></clef></attributes>") if i == 1 else ""
        notes = "".join(f"<note><pitch><step>{_STEP[p % 12]}</step><octave>{p // 12 - 1}</octave></pitch>"
                        f"<duration>{q}</duration><type>{_TYPE[q]}</type></note>" for p, q in bar)
        body.append(f'<measure number="{i}">{attrs}{notes}</measure>')
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<score-partwise version="3.1">'
            f"<work><work-title>{title}</work-title></work><part-list><score-part id=\"P1\"><part-name>P</part-name>"
            f'</score-part></part-list><part id="P1">{"".join(body)}</part></score-partwise>\n')


def render(bars: list[list[tuple[int, int]]], bpm: float, path: Path) -> None:
    from engines.media.audio import write_wav
    from engines.sheet.features import synth_notes

    notes, beat = [], 0.0
    for bar in bars:
        for p, q in bar:
            notes.append((p, beat * 60 / bpm, (beat + q) * 60 / bpm - 0.02, 90))
            beat += q
    write_wav(path, synth_notes(notes), sr=22050, bits=16)


def test_sheet_add_find_align_export_remove(tmp_path: Path) -> None:
    a, b = tmp_path / "a.musicxml", tmp_path / "b.abc"
    a.write_text(musicxml(TUNE_A, "Tune A"))
    b.write_text("X:1\nT:Tune B\nM:4/4\nL:1/4\nQ:1/4=120\nK:C\nc' b a g | e2 e2 | c d e f | g4 |\n"
                 "a g f e | d2 d2 | e f g a | c'4 |]\n")
    bad = tmp_path / "bad.musicxml"
    bad.write_text('<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n<x>&e;</x>')
    home = tmp_path / "home"
    out = studio("sheet", "add", str(a), str(b), str(bad), "--json", home=home)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert len(report["added"]) == 2 and len(report["failed"]) == 1
    listed = json.loads(studio("sheet", "list", "--json", home=home).stdout)
    assert {r["title"] for r in listed} == {"Tune A", "Tune B"}
    wav = tmp_path / "a.wav"
    render(TUNE_A, 100, wav)
    found = studio("sheet", "find", str(wav), "--top", "2", "--json", home=home)
    assert found.returncode == 0, found.stderr
    rows = json.loads(found.stdout)
    assert rows[0]["title"] == "Tune A"
    assert set(rows[0]) >= {"score_id", "path", "title", "score", "page", "bar", "method"}
    pages = studio("sheet", "pages", str(rows[0]["score_id"]), "--json", home=home)
    assert pages.returncode == 0, pages.stderr
    page = json.loads(pages.stdout)["pages"][0]
    assert Path(page["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [b["bar"] for b in page["bars"]] == list(range(1, 9))
    assert studio("sheet", "pages", "99", home=home).returncode == 1
    al = json.loads(studio("sheet", "align", str(wav), str(a), "--json", home=home).stdout)
    assert al["method"] == "symbolic" and [p["bar"] for p in al["points"]] == list(range(1, 9))
    csv_out = tmp_path / "al.csv"
    ex = studio("sheet", "export-alignment", str(wav), str(rows[0]["score_id"]), "--out", str(csv_out), home=home)
    assert ex.returncode == 0, ex.stderr
    assert csv_out.read_text().splitlines()[0] == "time_s,page,bar"
    rm = studio("sheet", "remove", str(rows[0]["score_id"]), "--json", home=home)
    assert rm.returncode == 0 and json.loads(rm.stdout)["removed"] == rows[0]["score_id"]
