"""Speed of the instruments engine: one 30 s query, and indexing throughput.

    nice -n 10 python -m bench.instruments_speed [--model default] [--sources all|quick] [--json FILE]

Wall times depend on what else runs on the machine: the CPU seconds of the process are
reported beside them (on a machine shared by several developers, they are the better guide).

* query: ``Engine.find`` on a 30 s, 4-part GM render (WAV 44.1 kHz) against the indexed
  library, warm (model loaded, index cached) median of 5 runs, and the first (cold) call;
  plus the faiss search alone over 5,000 instruments.
* indexing: ``InstrumentLibrary.add`` of every installed GM SoundFont (FluidR3_GM,
  TimGM6mb, A320U, sf_GMbank: ~980 presets) and the sonic-pi samples (165) into a fresh
  data home: instruments per second, and the time that rate gives for 5,000. With
  ``--sources 5000`` the library is topped up to 5,000 instruments with a folder of one-shot
  WAVs (44.1 kHz, 1.5 s) rendered from those presets at different notes, so the whole
  5,000-instrument run is measured rather than projected.

Set ``OMP_NUM_THREADS``/``torch.set_num_threads`` to the cores the app may use (2 here).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _song_wav(path: Path, seconds: float = 30.0) -> Path:
    import soundfile as sf

    from engines.media.midi import Note, Song, Track
    from engines.media.synth import render_song

    rng = np.random.default_rng(0)
    tracks = []
    for name, program, drum, lo in (("piano", 0, False, 60), ("bass", 33, False, 36),
                                    ("strings", 48, False, 55), ("drums", 0, True, 36)):
        notes = []
        t = 0.0
        while t < seconds:
            d = float(rng.choice([0.25, 0.5, 1.0]))
            notes.append(Note(int(lo + rng.integers(0, 12)), t, t + d * 0.9, int(rng.integers(60, 110))))
            t += d
        tracks.append(Track(name, program, drum, notes))
    sf.write(path, render_song(Song(tracks=tracks), sr=44100, tail=0.0).T, 44100)
    return path


def _one_shots(folder: Path, n: int) -> Path:
    """``n`` short WAV samples (2 s phrases, 44.1 kHz) rendered from the training SoundFonts'
    melodic presets around varied notes."""
    import soundfile as sf

    from engines.instruments import data as D

    folder.mkdir(parents=True, exist_ok=True)
    presets = [p for n_ in ("fluidr3", "timgm6mb", "a320u") for p in D.list_presets(n_) if not p.is_drum]
    rng = np.random.default_rng(5)
    renderer = D.PresetRenderer(44100)  # one renderer: each SoundFont is loaded once
    for i in range(n):
        p = presets[i % len(presets)]
        lo, hi = D.preset_range(p.bank, p.program, p.name)
        note = int(rng.integers(lo, hi + 1))
        notes = D.make_phrase(rng, lo, hi, seconds=1.5, center=note)
        y = renderer.render(str(D.soundfont_path(p.soundfont)), p.bank, p.program, notes, seconds=2.0)
        peak = float(np.max(np.abs(y))) or 1.0
        sf.write(folder / f"{i:05d}_{p.soundfont}_{p.bank}_{p.program}_n{note}.wav", 0.9 * y / peak, 44100,
                 subtype="PCM_16")
    return folder


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--sources", choices=("all", "quick", "5000"), default="all")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args(argv)

    import faiss
    import torch

    from engines.core.home import DataHome
    from engines.instruments import data as D
    from engines.instruments.engine import Engine, FindRequest
    from engines.instruments.library import InstrumentLibrary

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    out: dict = {"threads": args.threads}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        t0 = time.perf_counter()
        engine = Engine.from_pretrained(args.model)
        out["model_load_s"] = round(time.perf_counter() - t0, 3)
        names = ["timgm6mb"] if args.sources == "quick" else list(D.SOUNDFONTS)
        sources = [str(D.soundfont_path(n)) for n in names if D.soundfont_path(n)]
        if Path("/usr/share/sonic-pi/samples").is_dir():
            sources.append("/usr/share/sonic-pi/samples")
        if args.sources == "5000":
            sources.append(str(_one_shots(tmp_path / "one_shots", 5000 - 165 - 979)))
        lib = InstrumentLibrary(DataHome(tmp_path / "home"), engine)
        t0, c0 = time.perf_counter(), time.process_time()
        report = lib.add(sources)
        dt = time.perf_counter() - t0
        cpu = time.process_time() - c0  # this process only: preset rendering runs in child processes
        n = report.added
        out["indexing"] = {"sources": sources, "instruments": n, "skipped": len(report.skipped),
                           "seconds": round(dt, 1), "cpu_seconds_main_process": round(cpu, 1),
                           "per_second": round(n / dt, 2),
                           "estimated_seconds_for_5000": round(5000 / max(1e-9, n / dt), 0)}
        t0 = time.perf_counter()
        again = lib.add(sources)
        out["indexing"]["second_add_noop_s"] = round(time.perf_counter() - t0, 2)
        assert again.added == 0

        song = _song_wav(tmp_path / "song30.wav")
        t0 = time.perf_counter()
        res = engine.find(FindRequest(str(song), top_k=5), library=lib)
        cold = time.perf_counter() - t0
        warm, warm_cpu = [], []
        for _ in range(5):
            t0, c0 = time.perf_counter(), time.process_time()
            res = engine.find(FindRequest(str(song), top_k=5), library=lib)
            warm.append(time.perf_counter() - t0)
            warm_cpu.append(time.process_time() - c0)
        out["query_30s"] = {"first_s": round(cold, 3), "warm_median_s": round(statistics.median(warm), 3),
                            "warm_runs_s": [round(w, 3) for w in warm],
                            "warm_median_cpu_s": round(statistics.median(warm_cpu), 3), "slots": len(res.slots),
                            "library": lib.count()}
        lib.close()
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((5000, engine.cfg.emb_dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index = faiss.IndexIDMap(faiss.IndexFlatIP(engine.cfg.emb_dim))
    index.add_with_ids(vecs, np.arange(5000, dtype=np.int64))
    t0 = time.perf_counter()
    for i in range(100):
        index.search(vecs[i:i + 1], 10)
    out["faiss_search_5000_ms"] = round((time.perf_counter() - t0) * 10, 3)
    text = json.dumps(out, indent=1)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
