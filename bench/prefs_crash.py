"""Crash safety of the preference store: SIGKILL a process at random moments while it votes and
while it exports, then check that nothing committed was lost and nothing half-written is visible.

    nice -n 10 python bench/prefs_crash.py [--kills 50] [--seed 0] [--json out.json]

Phase "vote": a child process loops { write a new WAV; add a pair (blobs copied, fsynced, renamed,
then the rows committed); vote on it; print the vote id }. It is killed (SIGKILL) at a random
moment; then the parent opens the store, runs ``PRAGMA integrity_check`` (plus foreign keys,
two candidates per pair, every blob present and matching its SHA-256) and checks that every vote
the child printed is there with its pair, both candidates and the choice it printed.

Phase "export": a child loops over ``export`` in TRL, bundle-folder and bundle-zip form to fixed
final names; after the kill every file under a final name must be complete (TRL: every line is
JSON and the row count matches the votes; bundles: the full import check of
``engines.feedback.export.read_bundle`` passes: every row, every file against the manifest).
Temporary files left beside the targets (``.NAME.*.part``) are counted but are not final names.

Kills are spread over each phase (N // 2 each, N = --kills).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# --------------------------------------------------------------------------- children

def child_vote(home: str, seed: int) -> None:
    import numpy as np
    import soundfile as sf

    from engines.feedback.store import CHOICES, PreferenceStore

    rng = random.Random(seed)
    store = PreferenceStore(home)
    src = Path(home) / "src"
    src.mkdir(exist_ok=True)
    print("ready", flush=True)
    i = 0
    while True:
        files = []
        for side in "ab":
            p = src / f"{seed}_{i}_{side}.wav"
            y = np.random.default_rng(rng.randrange(2**32)).standard_normal(2205).astype(np.float32) * 0.1
            sf.write(str(p), y, 22050, subtype="PCM_16")
            files.append(p)
        pair = store.add_pair("audio", files[0], files[1], prompt=f"crash {seed}.{i}",
                              controls={"i": i}, source="eval")
        choice = rng.choice(CHOICES)
        v = store.vote(pair.pair_id, choice, rater=f"child{seed}", decision_ms=rng.randrange(100, 9000),
                       listens=[{"side": "a", "t": 0.1, "pos": 0.0, "action": "play"}])
        print(f"voted {v.vote_id} {pair.pair_id} {choice}", flush=True)
        for f in files:
            f.unlink()
        i += 1


def child_export(home: str, out: str) -> None:
    from engines.feedback.export import export
    from engines.feedback.store import PreferenceStore

    store = PreferenceStore(home)
    o = Path(out)
    print("ready", flush=True)
    while True:
        export(store, "trl", o / "prefs.jsonl")
        print("done trl", flush=True)
        export(store, "bundle", o / "bundle.zip")
        print("done zip", flush=True)
        folder = o / "bundle"
        if folder.exists():  # a folder bundle refuses to overwrite: move the old one aside, remove it
            aside = o / f".old-bundle.{time.monotonic_ns()}.part"
            folder.rename(aside)
            shutil.rmtree(aside)
        export(store, "bundle", folder)
        print("done folder", flush=True)


# --------------------------------------------------------------------------- parent

def run_child(args: list[str], rng: random.Random, max_delay: float) -> tuple[list[str], float]:
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if first.strip() != "ready":
        proc.kill()
        raise RuntimeError(f"child did not start: {first!r} {proc.stderr.read() if proc.stderr else ''}")
    delay = rng.uniform(0.0, max_delay)
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate()
    if proc.returncode != -signal.SIGKILL:
        raise RuntimeError(f"child ended by itself ({proc.returncode}) before the kill")
    return out.splitlines(), delay


def check_votes(home: Path, reported: dict[str, tuple[str, str]]) -> dict[str, Any]:
    import sqlite3

    from engines.feedback.store import PreferenceStore

    store = PreferenceStore(home)
    problems = store.check(hashes=True)
    with sqlite3.connect(store.db_path) as con:
        integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
    votes = {v.vote_id: (p, v) for p, v in store.votes()}
    lost = incomplete = 0
    for vid, (pid, choice) in reported.items():
        if vid not in votes:
            lost += 1
            continue
        p, v = votes[vid]
        if (p.pair_id != pid or v.choice != choice or not p.a.audio.is_file() or not p.b.audio.is_file()
                or v.decision_ms is None or len(v.listens) != 1 or not p.prompt):
            incomplete += 1
    return {"integrity": integrity, "problems": problems, "lost": lost, "incomplete": incomplete,
            "votes_in_db": len(votes), "pairs_in_db": store.stats()["pairs"]}


def check_exports(home: Path, out: Path) -> dict[str, Any]:
    from engines.feedback.export import read_bundle
    from engines.feedback.store import PreferenceStore

    n_votes = PreferenceStore(home).stats()["votes"]
    half: list[str] = []
    present = 0
    trl, ties = out / "prefs.jsonl", out / "prefs_ties.jsonl"
    if trl.exists() or ties.exists():
        rows = 0
        for f in (trl, ties):
            if not f.exists():
                continue
            present += 1
            raw = f.read_bytes()
            try:
                if raw and not raw.endswith(b"\n"):
                    raise ValueError("no final newline")
                rows += sum(1 for line in raw.splitlines() if json.loads(line) is not None)
            except ValueError as exc:
                half.append(f"{f.name}: {exc}")
        if trl.exists() and ties.exists() and rows != n_votes:
            half.append(f"TRL rows {rows} != votes {n_votes}")
    z = out / "bundle.zip"
    if z.exists():
        present += 1
        try:
            with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(z) as zf:
                bad = zf.testzip()
                if bad:
                    raise ValueError(f"bad member {bad}")
                zf.extractall(tmp)
                rows_z = read_bundle(Path(tmp), z)
                if len(rows_z) != PreferenceStore(home).stats()["pairs"]:
                    raise ValueError("pair count differs")
        except Exception as exc:  # noqa: BLE001
            half.append(f"bundle.zip: {exc}")
    folder = out / "bundle"
    if folder.exists():
        present += 1
        try:
            read_bundle(folder, folder)
        except Exception as exc:  # noqa: BLE001
            half.append(f"bundle/: {exc}")
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".") and ".part" in p.name]
    return {"half_written": half, "final_files_present": present, "temp_leftovers": len(leftovers)}


def _self_test(folder: Path) -> None:
    """The export check must catch a half-written file (else a pass would mean nothing)."""
    from engines.feedback.store import PreferenceStore

    (folder / "out").mkdir(parents=True)
    PreferenceStore(folder / "home")
    (folder / "out" / "prefs.jsonl").write_bytes(b'{"prompt": "x", "cho')
    (folder / "out" / "bundle").mkdir()
    if len(check_exports(folder / "home", folder / "out")["half_written"]) != 2:
        raise SystemExit("self-test failed: the export check does not see half-written files")
    shutil.rmtree(folder)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=50, help="SIGKILLs in all (half while voting, half exporting)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-delay", type=float, default=1.5, help="kill within this many s after start-up")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary data home")
    ap.add_argument("--child", choices=("vote", "export"), help=argparse.SUPPRESS)
    ap.add_argument("--home", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child == "vote":
        child_vote(a.home, a.seed)
        return 0
    if a.child == "export":
        child_export(a.home, a.out)
        return 0

    rng = random.Random(a.seed)
    work = Path(tempfile.mkdtemp(prefix="prefs_crash."))
    _self_test(work / "selftest")
    home, out = work / "home", work / "exports"
    out.mkdir(parents=True)
    n_vote, n_export = a.kills - a.kills // 2, a.kills // 2
    reported: dict[str, tuple[str, str]] = {}
    rows: list[dict[str, Any]] = []
    t0 = time.time()
    for k in range(n_vote):
        lines, delay = run_child(["--child", "vote", "--home", str(home), "--seed", str(k)], rng, a.max_delay)
        new = 0
        for line in lines:
            parts = line.split()
            if parts and parts[0] == "voted":
                reported[parts[1]] = (parts[2], parts[3])
                new += 1
        res = check_votes(home, reported)
        rows.append({"phase": "vote", "kill": k + 1, "delay_s": round(delay, 3), "reported_this_run": new,
                     "reported_total": len(reported), **res})
    for k in range(n_export):
        lines, delay = run_child(["--child", "export", "--home", str(home), "--out", str(out)], rng,
                                 a.max_delay * 2)
        res_v = check_votes(home, reported)
        res_e = check_exports(home, out)
        rows.append({"phase": "export", "kill": k + 1, "delay_s": round(delay, 3),
                     "exports_done": sum(1 for line in lines if line.startswith("done")), **res_v, **res_e})
    elapsed = time.time() - t0

    def summary(phase: str) -> dict[str, Any]:
        rs = [r for r in rows if r["phase"] == phase]
        return {"kills": len(rs), "pairs_left_pending": (rs[-1]["pairs_in_db"] - rs[-1]["votes_in_db"]) if rs else 0,
                "committed_not_reported": (rs[-1]["votes_in_db"] - len(reported)) if rs else 0,
                "votes_reported": rs[-1]["reported_total"] if phase == "vote" and rs else len(reported),
                "votes_in_db": rs[-1]["votes_in_db"] if rs else 0,
                "votes_lost": max((r["lost"] for r in rs), default=0),
                "incomplete_votes": max((r["incomplete"] for r in rs), default=0),
                "integrity_failures": sum(1 for r in rs if r["integrity"] != "ok" or r["problems"]),
                "half_written_exports": sum(len(r.get("half_written", [])) for r in rs),
                "exports_completed": sum(r.get("exports_done", 0) for r in rs),
                "temp_leftovers": rs[-1].get("temp_leftovers", 0) if rs else 0}

    table = {p: summary(p) for p in ("vote", "export")}
    print(f"preference store crash test: {a.kills} SIGKILLs at random moments (seed {a.seed}), {elapsed:.0f} s")
    print("| phase | kills | votes reported committed | votes in DB | killed between pair and vote "
          "| votes lost | incomplete votes "
          "| integrity failures | exports completed | half-written exports under final name | temp files left |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for p, s in table.items():
        print(f"| {p} | {s['kills']} | {s['votes_reported']} | {s['votes_in_db']} | {s['pairs_left_pending']} | "
              f"{s['votes_lost']} | "
              f"{s['incomplete_votes']} | {s['integrity_failures']} | "
              f"{s['exports_completed'] if p == 'export' else '-'} | "
              f"{s['half_written_exports'] if p == 'export' else '-'} | "
              f"{s['temp_leftovers'] if p == 'export' else '-'} |")
    bad = [r for r in rows if r["lost"] or r["incomplete"] or r["integrity"] != "ok" or r["problems"]
           or r.get("half_written")]
    for r in bad[:10]:
        print("FAILED:", json.dumps(r, default=str))
    if a.json:
        Path(a.json).write_text(json.dumps({"summary": table, "runs": rows, "seconds": elapsed}, indent=2,
                                           default=str))
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print("data kept in", work)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
