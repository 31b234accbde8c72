"""Engraving (in a child process), hostile score files, process isolation."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from engines.core.errors import CorruptFileError, ResourceLimitError, UnsupportedFormatError
from engines.media import safe
from engines.media.midi import Note, Song, Track, write_midi
from engines.media.score import engrave, svg_to_png

NOTE = '<note><pitch><step>{s}</step><octave>4</octave></pitch><duration>1</duration><type>quarter</type></note>'
MUSICXML = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE score-partwise PUBLIC "-//Recordare//DTD MusicXML 3.1 Partwise//EN" "http://www.musicxml.org/dtds/partwise.dtd">
<score-partwise version="3.1"><work><work-title>Tiny Tune</work-title></work>
<part-list><score-part id="P1"><part-name>Piano</part-name></score-part></part-list>
<part id="P1">
<measure number="1"><attributes><divisions>1</divisions><key><fifths>0</fifths></key>
<time><beats>4</beats><beat-type>4</beat-type></time><clef><sign>G</sign><line>2</line></clef></attributes>
{m1}</measure>
<measure number="2">{m2}</measure>
<measure number="3">{m3}</measure>
</part></score-partwise>""".format(
    m1="".join(NOTE.format(s=s) for s in "CDEF"),
    m2="".join(NOTE.format(s=s) for s in "GABG"),
    m3="".join(NOTE.format(s=s) for s in "FEDC"),
)


def test_engrave_musicxml_file_and_png(tmp_path: Path) -> None:
    path = tmp_path / "tune.musicxml"
    path.write_text(MUSICXML)
    e = engrave(path)
    assert len(e.pages) >= 1 and e.pages[0].lstrip().startswith(("<?xml", "<svg"))
    assert e.title == "Tiny Tune"
    assert [m["measure_index"] for m in e.measures] == [0, 1, 2]
    assert all(m["page"] == 1 for m in e.measures) and e.page_of_measure == [1, 1, 1]
    # 120 bpm default: a 4/4 bar lasts 2 s
    assert [m["onset_ms"] for m in e.measures] == pytest.approx([0, 2000, 4000])
    assert sum(len(t.get("on", [])) for t in e.timemap) == 12
    png = svg_to_png(e.pages[0], width=600)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_engrave_mxl_abc_and_midi(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("META-INF/container.xml",
                    '<container><rootfiles><rootfile full-path="score.xml"/></rootfiles></container>')
        zf.writestr("score.xml", MUSICXML)
    mxl = tmp_path / "tune.mxl"
    mxl.write_bytes(buf.getvalue())
    assert len(engrave(mxl).measures) == 3
    abc = "X:1\nT:Scale\nM:4/4\nL:1/4\nK:C\nCDEF|GABc|\n"
    e = engrave(abc)
    assert e.format == "abc" and len(e.measures) == 2
    song = Song(tracks=[Track("Piano", 0, False, [Note(60 + i, i * 0.5, i * 0.5 + 0.5, 90) for i in range(8)])])
    mid = write_midi(song, tmp_path / "scale.mid")
    e = engrave(mid)
    assert len(e.pages) >= 1 and len(e.measures) >= 2


def test_hostile_scores(tmp_path: Path) -> None:
    xxe = tmp_path / "evil.musicxml"
    xxe.write_text('<?xml version="1.0"?>\n<!DOCTYPE score-partwise [\n'
                   '<!ENTITY secret SYSTEM "file:///etc/passwd">]>\n'
                   '<score-partwise><work><work-title>&secret;</work-title></work></score-partwise>')
    with pytest.raises(UnsupportedFormatError, match="evil.musicxml.*external entity"):
        engrave(xxe)
    bomb = tmp_path / "bomb.mxl"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("score.xml", bytes(300 * 2**20))
    bomb.write_bytes(buf.getvalue())
    assert bomb.stat().st_size < 2 * 2**20
    with pytest.raises(ResourceLimitError, match="bomb.mxl.*unpacks to 300 MB"):
        engrave(bomb)
    junk = tmp_path / "junk.musicxml"
    junk.write_text("<score-partwise><part-list></part-list><part id='P9'><measure>")
    with pytest.raises(CorruptFileError, match="junk.musicxml"):
        engrave(junk)
    text = tmp_path / "readme.mei"
    text.write_text("hello, this is no MEI")
    with pytest.raises(UnsupportedFormatError, match="readme.mei"):
        engrave(text)


def test_run_isolated_crash_timeout_memory_and_errors() -> None:
    with pytest.raises(CorruptFileError, match=r"x.sf2: the file crashed the parser \(signal 11"):
        safe.run_isolated(safe._crash_for_test, timeout=20, memory_mb=256, path_for_errors="x.sf2")
    with pytest.raises(ResourceLimitError, match="slow.xml"):
        safe.run_isolated(safe._sleep_for_test, 30, timeout=1, memory_mb=256, path_for_errors="slow.xml")
    with pytest.raises(ResourceLimitError, match="big.mxl.*memory"):
        safe.run_isolated(safe._allocate_for_test, 2048, timeout=20, memory_mb=256, path_for_errors="big.mxl")
    with pytest.raises(CorruptFileError, match="^y.mid: bad header$"):
        safe.run_isolated(safe._raise_for_test, "y.mid", timeout=20, memory_mb=256)
    assert safe.run_isolated(safe._sleep_for_test, 0.01, timeout=20, memory_mb=256) == 0.01
