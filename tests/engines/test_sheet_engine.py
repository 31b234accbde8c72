"""Sheet engine as a user drives it: add/list/remove, find, align, export, bad input.

Debug model (random weights); tiny scores written here; audio rendered with TimGM6mb.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from engines.core.errors import EngineError, InputError, NotFoundError
from engines.core.jobs import JobContext

SR = 22050

# two different melodies, one bar per list entry (pitch, quarters)
TUNE_A = [[(60, 1), (62, 1), (64, 1), (65, 1)], [(67, 2), (67, 2)], [(69, 1), (69, 1), (69, 1), (69, 1)],
          [(67, 4)], [(65, 1), (65, 1), (65, 1), (65, 1)], [(64, 2), (64, 2)], [(62, 1), (62, 1), (62, 1), (62, 1)],
          [(60, 4)]]
TUNE_B = [[(72, 2), (71, 2)], [(69, 1), (67, 1), (66, 1), (67, 1)], [(64, 4)], [(76, 1), (74, 1), (72, 2)],
          [(71, 1), (72, 1), (74, 2)], [(67, 4)], [(69, 2), (71, 2)], [(72, 4)]]
STEPS = {0: ("C", 0), 1: ("C", 1), 2: ("D", 0), 3: ("E", -1), 4: ("E", 0), 5: ("F", 0), 6: ("F", 1),
         7: ("G", 0), 8: ("A", -1), 9: ("A", 0), 10: ("B", -1), 11: ("B", 0)}


def musicxml(bars: list[list[tuple[int, int]]], title: str) -> str:
    types = {1: "quarter", 2: "half", 4: "whole"}
    out = ['<?xml version="1.0" encoding="UTF-8"?>', '<score-partwise version="3.1">',
           f"<work><work-title>{title}</work-title></work>",
           '<part-list><score-part id="P1"><part-name>Piano</part-name></score-part></part-list>',
           '<part id="P1">']
    for i, bar in enumerate(bars, start=1):
        out.append(f'<measure number="{i}">')
        if i == 1:
            out.append("<attributes><divisions>1</divisions><key><fifths>0</fifths></key>"
                       "<time><beats>4</beats><beat-type>4</beat-type></time><clef><sign>G</sign>"
                       "<line>2</line></clef></attributes>"
                       '<direction><sound tempo="120"/></direction>')
        for pitch, q in bar:
            step, alter = STEPS[pitch % 12]
            alt = f"<alter>{alter}</alter>" if alter else ""
            out.append(f"<note><pitch><step>{step}</step>{alt}<octave>{pitch // 12 - 1}</octave></pitch>"
                       f"<duration>{q}</duration><type>{types[q]}</type></note>")
        out.append("</measure>")
    out += ["</part>", "</score-partwise>"]
    return "\n".join(out)


def beat_time(beat: float, tempo_changes: list[tuple[float, float]]) -> float:
    """Seconds at ``beat`` for a tempo map [(from_beat, bpm), ...] starting at beat 0."""
    t, prev_b, bpm = 0.0, 0.0, tempo_changes[0][1]
    for b, new_bpm in tempo_changes[1:]:
        if beat <= b:
            break
        t += (b - prev_b) * 60 / bpm
        prev_b, bpm = b, new_bpm
    return t + (beat - prev_b) * 60 / bpm


def render(bars, tempo_changes, path: Path, *, repeat: int = 1, lead: float = 0.0) -> list[float]:
    """Render ``bars`` (``repeat`` times) to a WAV; returns the true onset (s) of every bar."""
    from engines.media.audio import write_wav
    from engines.sheet.features import synth_notes

    notes, onsets, beat = [], [], 0.0
    for _ in range(repeat):
        for bar in bars:
            onsets.append(lead + beat_time(beat, tempo_changes))
            for pitch, q in bar:
                a, b = beat_time(beat, tempo_changes), beat_time(beat + q, tempo_changes)
                notes.append((pitch, lead + a, lead + b - 0.02, 90))
                beat += q
    y = synth_notes(notes, program=0, sr=SR)
    write_wav(path, y, sr=SR, bits=16)
    return onsets


@pytest.fixture
def lib(home):
    from engines.sheet.engine import SheetEngine
    from engines.sheet.library import SheetLibrary

    with SheetLibrary(home, SheetEngine.from_pretrained("debug")) as library:
        yield library


@pytest.fixture
def scores(tmp_path: Path) -> dict[str, Path]:
    a = tmp_path / "tune_a.musicxml"
    a.write_text(musicxml(TUNE_A, "Tune A"))
    b = tmp_path / "tune_b.musicxml"
    b.write_text(musicxml(TUNE_B, "Tune B"))
    empty = tmp_path / "empty.musicxml"
    empty.write_text(musicxml([[]], "Nothing").replace("<measure number=\"1\">", "<measure number=\"1\">"))
    xxe = tmp_path / "xxe.musicxml"
    xxe.write_text('<?xml version="1.0"?>\n<!DOCTYPE foo [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
                   + musicxml(TUNE_A, "&x;").split("\n", 1)[1])
    pdf = tmp_path / "truncated.pdf"
    pdf.write_bytes(b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Ty")
    import struct
    import zlib

    import pypdfium2 as pdfium

    blank = pdfium.PdfDocument.new()
    blank.new_page(595, 842)
    blank.save(tmp_path / "no_music.pdf")

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    huge = tmp_path / "huge.png"
    huge.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 12000, 9000, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))
    return {"a": a, "b": b, "empty": empty, "xxe": xxe, "pdf": pdf, "no_music": tmp_path / "no_music.pdf",
            "huge": huge}


def ctx_for(home) -> JobContext:
    return JobContext(home=home)


def test_add_list_remove_and_bad_files_are_reported(lib, scores, home) -> None:
    report = lib.add([str(p) for p in scores.values()], ctx_for(home))
    added = {Path(r["path"]).name for r in report["added"]}
    assert added == {"tune_a.musicxml", "tune_b.musicxml"}
    failed = {Path(f["path"]).name: f["error"] for f in report["failed"]}
    assert set(failed) == {"empty.musicxml", "xxe.musicxml", "truncated.pdf", "no_music.pdf", "huge.png"}
    assert "no music staves" in failed["no_music.pdf"]
    assert "megapixels" in failed["huge.png"]
    assert "no notes" in failed["empty.musicxml"]
    assert "external entity" in failed["xxe.musicxml"]
    assert "PDF" in failed["truncated.pdf"]
    rows = lib.list()
    assert [r["title"] for r in rows] == ["Tune A", "Tune B"]
    assert all(r["bars"] == 8 and r["pages"] == 1 for r in rows)
    geo = json.loads((lib.folder(rows[0]["id"]) / "geometry.json").read_text())
    assert [b["bar"] for b in geo["pages"][0]["bars"]] == list(range(1, 9))
    assert (lib.folder(rows[0]["id"]) / "page-1.png").stat().st_size > 1000
    # adding again changes nothing; the index holds both scores' snippets
    again = lib.add([str(scores["a"])], ctx_for(home))
    assert len(again["unchanged"]) == 1 and not again["added"]
    index, ids, sym = lib.read_index()
    assert set(ids[:, 0]) == {r["id"] for r in rows} and index.ntotal == len(ids)
    lib.remove(rows[0]["id"])
    assert [r["title"] for r in lib.list()] == ["Tune B"]
    assert not lib.folder(rows[0]["id"]).exists()
    assert set(lib.read_index()[1][:, 0]) == {rows[1]["id"]}
    with pytest.raises(NotFoundError):
        lib.remove(rows[0]["id"])


def test_find_ranks_the_played_score_first_with_page_and_bar(lib, scores, home, tmp_path) -> None:
    lib.add([str(scores["a"]), str(scores["b"])], ctx_for(home))
    wav = tmp_path / "b.wav"
    render(TUNE_B, [(0, 100)], wav)
    matches = lib.find(wav, top=2)
    assert matches[0].title == "Tune B" and matches[0].method == "symbolic"
    assert matches[0].page == 1 and matches[0].bar in (1, 2)
    assert matches[0].score > matches[1].score
    # an excerpt starting in bar 5 (of two passes) is found there
    wav2 = tmp_path / "b2.wav"
    onsets = render(TUNE_B + TUNE_B, [(0, 120)], wav2)
    from engines.media.audio import load_audio, write_wav

    y = load_audio(wav2, sr=SR)
    write_wav(tmp_path / "excerpt.wav", y[int(onsets[4] * SR):int(onsets[9] * SR)], sr=SR, bits=16)
    m = lib.find(tmp_path / "excerpt.wav", top=1)[0]
    assert m.title == "Tune B" and m.bar in (4, 5, 6)


def test_align_one_point_per_bar_with_a_tempo_change(lib, scores, home, tmp_path) -> None:
    lib.add([str(scores["a"])], ctx_for(home))
    wav = tmp_path / "a.wav"
    truth = render(TUNE_A, [(0, 90), (16, 140)], wav, lead=0.7)  # speeds up after bar 4
    al = lib.align(wav, str(scores["a"]))
    assert al.method == "symbolic"
    bars = [p["bar"] for p in al.points]
    assert bars == list(range(1, 9))
    times = np.array([p["time_s"] for p in al.points])
    assert np.all(np.diff(times) > 0)
    err = np.abs(times - np.array(truth))
    assert np.mean(err <= 0.5) >= 0.85, (times, truth)
    # the image route gives one point per bar too (debug model: timing not checked)
    img = lib.align(wav, str(scores["a"]), route="image")
    assert img.method == "image" and [p["bar"] for p in img.points] == sorted({p["bar"] for p in img.points})
    # aligning against a path not in the library works too
    lib.remove(lib.list()[0]["id"])
    assert lib.align(wav, str(scores["a"])).points[0]["bar"] == 1


def test_export_alignment_round_trips(home, scores, tmp_path, monkeypatch) -> None:
    from engines.core.plugins import load_plugins
    from engines.core.registry import Registry

    monkeypatch.setenv("CUE_SHEET_MODEL", "debug")
    reg = load_plugins(Registry(), extra_modules=("engines.sheet.commands",))
    ctx = ctx_for(home)
    reg.run("sheet.add", ctx, {"paths": [str(scores["a"])]})
    wav = tmp_path / "a.wav"
    render(TUNE_A, [(0, 110)], wav)
    res = reg.run("sheet.align", ctx, {"audio": str(wav), "score": "1"})
    points = res.data["points"]
    out_csv, out_json = tmp_path / "al.csv", tmp_path / "al.json"
    reg.run("sheet.export-alignment", ctx, {"audio": str(wav), "score": "1", "out": str(out_csv)})
    reg.run("sheet.export-alignment", ctx, {"audio": str(wav), "score": "1", "out": str(out_json)})
    rows = list(csv.DictReader(out_csv.open()))
    assert [(float(r["time_s"]), int(r["page"]), int(r["bar"])) for r in rows] == \
        [(p["time_s"], p["page"], p["bar"]) for p in points]
    assert json.loads(out_json.read_text())["points"] == points
    with pytest.raises(EngineError):
        reg.run("sheet.export-alignment", ctx, {"audio": str(wav), "score": "1", "out": str(tmp_path / "x.txt")})


def test_silence_and_empty_library_give_clear_errors(lib, scores, home, tmp_path) -> None:
    from engines.media.audio import write_wav

    silent = tmp_path / "silence.wav"
    write_wav(silent, np.zeros(SR * 5, np.float32), sr=SR, bits=16)
    with pytest.raises(NotFoundError, match="empty"):
        lib.find(silent)
    lib.add([str(scores["a"])], ctx_for(home))
    with pytest.raises(InputError, match="silent"):
        lib.find(silent)
    with pytest.raises(InputError, match="silent"):
        lib.align(silent, "1")
    assert len(lib.list()) == 1


def test_scan_image_route_detects_staves_and_bars(lib, home, tmp_path) -> None:
    """A PNG of an engraved page goes through the image route (staff/barline detection)."""
    from engines.media.score import engrave, svg_to_png

    src = tmp_path / "a.musicxml"
    src.write_text(musicxml(TUNE_A * 2, "Scan"))
    png = tmp_path / "scan.png"
    png.write_bytes(svg_to_png(engrave(src).pages[0], width=1800))
    report = lib.add([str(png)], ctx_for(home))
    assert len(report["added"]) == 1, report
    row = lib.list()[0]
    assert row["kind"] == "image" and 12 <= row["bars"] <= 20
    wav = tmp_path / "a.wav"
    render(TUNE_A, [(0, 120)], wav)
    m = lib.find(wav, top=1)[0]
    assert m.method == "image" and m.score_id == row["id"]
    # beside a score with notes, "auto" still ranks the scan by the image route (over the scans'
    # snippets only) and the score with notes by the symbolic route
    scores_dir = tmp_path / "b.musicxml"
    scores_dir.write_text(musicxml(TUNE_B, "Tune B"))
    lib.add([str(scores_dir)], ctx_for(home))
    both = {m.method: m for m in lib.find(wav, top=2)}
    assert set(both) == {"image", "symbolic"}
    assert both["image"].score_id == row["id"] and both["symbolic"].title == "Tune B"


def test_pages_command_gives_page_images_and_bar_boxes(home, scores, monkeypatch) -> None:
    from PIL import Image

    from engines.core.errors import CorruptFileError
    from engines.core.plugins import load_plugins
    from engines.core.registry import Registry

    monkeypatch.setenv("CUE_SHEET_MODEL", "debug")
    reg = load_plugins(Registry(), extra_modules=("engines.sheet.commands",))
    ctx = ctx_for(home)
    reg.run("sheet.add", ctx, {"paths": [str(scores["a"])]})
    res = reg.run("sheet.pages", ctx, {"score_id": 1})
    data = res.data
    assert data["title"] == "Tune A" and data["kind"] == "symbolic" and len(data["pages"]) == 1
    page = data["pages"][0]
    assert res.files == [page["png"]]
    with Image.open(page["png"]) as im:  # the size given is the image's own
        assert (im.width, im.height) == (page["width"], page["height"])
        ink = 255 - np.asarray(im.convert("L"), np.int32)
    assert [b["bar"] for b in page["bars"]] == list(range(1, 9))
    for b in page["bars"]:
        assert 0 <= b["x0"] < b["x1"] <= page["width"] and 0 <= b["y0"] < b["y1"] <= page["height"]
        # each box holds engraved ink (the box is on the music, not in the margin)
        assert ink[int(b["y0"]):int(b["y1"]), int(b["x0"]):int(b["x1"])].mean() > 5
    # bars of one system read left to right
    first = [b for b in page["bars"] if abs(b["y0"] - page["bars"][0]["y0"]) < 1]
    assert len(first) >= 2 and all(p["x1"] <= q["x0"] + 1 for p, q in zip(first, first[1:], strict=False))
    with pytest.raises(NotFoundError):
        reg.run("sheet.pages", ctx, {"score_id": 7})
    (home.root / "sheet" / "scores" / "1" / "geometry.json").unlink()
    with pytest.raises(CorruptFileError, match="add the score again"):
        reg.run("sheet.pages", ctx, {"score_id": 1})


def _encrypted_pdf(path: Path) -> Path:
    """A minimal PDF whose standard security handler needs a (unknown) user password."""
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
            b"<< /Filter /Standard /V 1 /R 2 /O <" + b"11" * 32 + b"> /U <" + b"22" * 32 + b"> /P -4 >>"]
    out, offsets = b"%PDF-1.4\n", []
    for n, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 5\n0000000000 65535 f \n" + b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (b"trailer\n<< /Size 5 /Root 1 0 R /Encrypt 4 0 R /ID [<" + b"ab" * 16 + b"> <" + b"ab" * 16
            + b">] >>\nstartxref\n" + str(xref).encode() + b"\n%%EOF\n")
    path.write_bytes(out)
    return path


def _snapshot(lib) -> dict[str, str]:
    """Content hashes of every stored file of the sheet library (scores, index) and its rows."""
    import hashlib

    files = sorted(p for p in (lib.root / "scores").rglob("*") if p.is_file())
    files += [p for p in lib.index_paths if p.exists()]
    out = {str(p): hashlib.sha1(p.read_bytes()).hexdigest() for p in files}
    out["rows"] = json.dumps([{k: v for k, v in r.items()} for r in lib.list()], sort_keys=True)
    return out


def test_bad_input_gives_clear_errors_and_leaves_the_library_intact(lib, scores, home, tmp_path) -> None:
    import zipfile

    from PIL import Image

    lib.add([str(scores["a"])], ctx_for(home))
    before = _snapshot(lib)
    assert len(before) > 4
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-4711")
    tune = musicxml(TUNE_A, "Tune A").split("\n", 1)[1]
    bad: dict[str, Path] = {"encrypted.pdf": _encrypted_pdf(tmp_path / "encrypted.pdf")}
    pdf = tmp_path / "cut.pdf"
    pdf.write_bytes(scores["no_music"].read_bytes()[:300])  # a real PDF cut short
    bad["cut.pdf"] = pdf
    for name, decl in {
        "xxe_file.musicxml": f'<!DOCTYPE score-partwise [<!ENTITY s SYSTEM "{secret.as_uri()}">]>',
        "xxe_param.musicxml": f'<!DOCTYPE score-partwise [<!ENTITY % p SYSTEM "{secret.as_uri()}"> %p;]>',
        "xxe_public.mei": f'<!DOCTYPE mei [<!ENTITY s PUBLIC "-//X//EN" "{secret.as_uri()}">]>',
    }.items():
        p = tmp_path / name
        p.write_text('<?xml version="1.0"?>\n' + decl + "\n" + tune.replace("Tune A", "&s;"))
        bad[name] = p
    mxl = tmp_path / "xxe.mxl"
    with zipfile.ZipFile(mxl, "w") as zf:
        zf.writestr("score.xml", bad["xxe_file.musicxml"].read_text())
    bad["xxe.mxl"] = mxl
    bad["huge.png"] = scores["huge"]
    big_pdf = tmp_path / "huge_page.pdf"  # one 200 x 200 inch page: 30,000 px square at 150 dpi
    big_pdf.write_bytes(_encrypted_pdf(tmp_path / "tmp.pdf").read_bytes()
                        .replace(b"/MediaBox [0 0 595 842]", b"/MediaBox [0 0 14400 14400]")
                        .replace(b" /Encrypt 4 0 R", b""))
    bad["huge_page.pdf"] = big_pdf
    png = tmp_path / "page.png"
    Image.fromarray(np.full((600, 800), 255, np.uint8)).save(png)
    cut_png = tmp_path / "cut.png"
    cut_png.write_bytes(png.read_bytes()[:200])
    bad["cut.png"] = cut_png

    report = lib.add([str(p) for p in bad.values()], ctx_for(home))
    assert not report["added"] and not report["updated"]
    failed = {Path(f["path"]).name: f for f in report["failed"]}
    assert set(failed) == set(bad)
    assert "encrypted" in failed["encrypted.pdf"]["error"]
    assert "PDF" in failed["cut.pdf"]["error"]
    for name in ("xxe_file.musicxml", "xxe_param.musicxml", "xxe_public.mei", "xxe.mxl"):
        assert "entit" in failed[name]["error"], failed[name]
        assert failed[name]["kind"] == "unsupported_format"
    assert "external entity" in failed["xxe_file.musicxml"]["error"]
    assert "megapixels" in failed["huge.png"]["error"] and "megapixels" in failed["huge_page.pdf"]["error"]
    assert "image cannot be read" in failed["cut.png"]["error"]
    # the entity was never resolved: the secret is nowhere in the report or the library
    assert "TOP-SECRET" not in json.dumps(report)
    assert not any(b"TOP-SECRET" in p.read_bytes() for p in home.root.rglob("*") if p.is_file())
    # silence is refused by every query
    from engines.media.audio import write_wav

    silent = write_wav(tmp_path / "silence.wav", np.zeros(SR * 10, np.float32), sr=SR, bits=16)
    for call in (lambda: lib.find(silent), lambda: lib.align(silent, "1"), lambda: lib.find(silent, route="image")):
        with pytest.raises(InputError, match="silent"):
            call()
    assert _snapshot(lib) == before
    wav = tmp_path / "a.wav"
    render(TUNE_A, [(0, 100)], wav)
    assert lib.find(wav, top=1)[0].title == "Tune A"


def test_symbolic_ranking_equals_librosa_subsequence_dtw() -> None:
    """The batched ranking pass gives, per score, the cost of a plain subsequence DTW."""
    from engines.sheet.align import subseq_costs, subseq_dtw

    rng = np.random.default_rng(3)
    query = rng.random((40, 24)).astype(np.float32)
    lengths = [90, 13, 40, 0, 200, 1, 39]  # longer, shorter and as long as the query, empty, one frame
    refs = [rng.random((n, 24)).astype(np.float32) for n in lengths]
    # plant the query (noisy, time-stretched) inside score 4
    refs[4][60:140] = np.repeat(query, 2, axis=0) + 0.05 * rng.random((80, 24)).astype(np.float32)
    offsets = np.cumsum([0] + lengths)
    costs = subseq_costs(query, np.concatenate(refs), offsets)
    assert np.isinf(costs[3]) and int(np.argmin(costs)) == 4
    for k, ref in enumerate(refs):
        if len(ref):
            assert costs[k] == pytest.approx(subseq_dtw(query, ref)[0], rel=1e-4, abs=1e-5), k


def test_an_index_from_an_older_version_is_rebuilt(lib, scores, home, tmp_path) -> None:
    lib.add([str(scores["a"]), str(scores["b"])], ctx_for(home))
    spath = lib.index_paths[2]
    with np.load(spath) as z:
        old = {k: z[k] for k in ("features", "ids", "offsets")}
    with open(spath, "wb") as fh:
        np.savez(fh, **old)  # the pack as version 1 wrote it
    info = json.loads((lib.root / "index.json").read_text())
    info.pop("version")
    (lib.root / "index.json").write_text(json.dumps(info))
    wav = tmp_path / "b.wav"
    render(TUNE_B, [(0, 100)], wav)
    assert lib.find(wav, top=1)[0].title == "Tune B"
    assert "ranking" in np.load(spath).files
