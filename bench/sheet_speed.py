"""Sheet engine speed: indexing throughput and one 30-s query against 1,000 scores.

    nice -n 10 python -m bench.sheet_speed [--scores 1000] [--real 12] [--json bench/out/sheet_speed.json]

Indexing: ``--real`` Essen folk tunes (ABC, written to files) are added through
:meth:`SheetLibrary.add` (engrave in a child process, rasterise, cut strips, embed snippets,
synthesise + chroma): pages per second. The 1,000-score library is those real scores' stored
folders replicated under new ids (so each score is a real one; the index holds ~1,000 ×
their snippets), then the faiss index is rebuilt. The query is 30 s of a rendering of one
of them; timings are warm (median of the second and third call; the first call of each route,
which loads the model and compiled code, is reported apart), with 2 threads. The load average
before and after is recorded: numbers from a loaded shared machine are not comparable.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scores", type=int, default=1000)
    ap.add_argument("--real", type=int, default=12)
    ap.add_argument("--model", default="default")
    ap.add_argument("--json", default="")
    ns = ap.parse_args(argv)
    import numpy as np
    import torch

    torch.set_num_threads(2)
    from engines.core.home import DataHome
    from engines.core.jobs import JobContext
    from engines.media.audio import write_wav
    from engines.sheet.data import corpus_tunes, split_of
    from engines.sheet.engine import SheetEngine
    from engines.sheet.features import SR, synth_notes
    from engines.sheet.library import SheetLibrary
    from engines.sheet.symbolic import load_symbolic

    work = Path(tempfile.mkdtemp(prefix="sheet_speed_"))
    try:
        home = DataHome(work / "home")
        tunes = [t for t in corpus_tunes() if split_of(t[0]) == "test"][: ns.real * 2]
        files = []
        for k, (_pid, abc) in enumerate(tunes):
            f = work / f"tune{k:03d}.abc"
            f.write_text(abc)
            files.append(str(f))
        engine = SheetEngine.from_pretrained(ns.model)
        lib = SheetLibrary(home, engine)
        t0 = time.perf_counter()
        report = lib.add(files[: ns.real], JobContext(home=home))
        t_index = time.perf_counter() - t0
        rows = lib.list()
        pages = sum(r["pages"] for r in rows)
        out = {"indexed_scores": len(rows), "indexed_pages": pages, "index_seconds": round(t_index, 2),
               "pages_per_second": round(pages / t_index, 3), "failed": len(report["failed"])}
        # replicate to the target size
        real = [r for r in rows]
        con = lib.con
        k = 0
        while len(lib.list()) < ns.scores:
            src = real[k % len(real)]
            cur = con.execute("INSERT INTO scores (path, title, kind, format, pages, bars, windows, sha1, added) "
                              "VALUES (?,?,?,?,?,?,?,?,?)",
                              (f"{src['path']}#copy{k}", src["title"], src["kind"], src["format"], src["pages"],
                               src["bars"], src["windows"], src["sha1"], time.time()))
            shutil.copytree(lib.folder(src["id"]), lib.folder(int(cur.lastrowid)))
            k += 1
        t0 = time.perf_counter()
        lib.rebuild_index()
        out["library_scores"] = len(lib.list())
        out["rebuild_index_seconds"] = round(time.perf_counter() - t0, 2)
        index, ids, _ = lib.read_index()
        out["index_snippets"] = int(index.ntotal)
        # a 30-s query: one real tune played twice at 100 bpm-ish
        sym = load_symbolic(real[0]["path"])
        notes = [(p, a * 1.1, b * 1.1, v) for p, a, b, v in sym.notes]
        y = synth_notes(notes)
        while len(y) < 30 * SR:
            y = np.concatenate([y, y])
        q = work / "query.wav"
        write_wav(q, y[: 30 * SR], sr=SR, bits=16)
        load_before = os.getloadavg()[0]
        for route in ("image", "symbolic", "auto"):
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                res = lib.find(q, top=5, route=route)
                times.append(time.perf_counter() - t0)
            out[f"query_30s_{route}_seconds"] = round(statistics.median(times[1:]), 3)
            out[f"query_30s_{route}_first_call_seconds"] = round(times[0], 3)
            out[f"query_30s_{route}_top1_is_source"] = res[0].title == real[0]["title"]
        out["threads"] = 2
        out["load_average_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        out["date"] = time.strftime("%Y-%m-%d %H:%M")
        out["cpu_count"] = os.cpu_count()
        print(json.dumps(out, indent=1))
        if ns.json:
            Path(ns.json).parent.mkdir(parents=True, exist_ok=True)
            Path(ns.json).write_text(json.dumps(out, indent=1) + "\n")
        lib.con.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
