"""The "rate N pairs" queue: pending pairs, topped up with new pairs made from recent work.

Sources, newest recent work first (``recent.jsonl``, see :mod:`engines.feedback.recent`):

1. two recent generations with the same controls (different seeds or model versions);
2. a recent generation (``generate.music``) with no partner: a second seed of the same
   controls is generated now through ``Engine.from_pretrained(model)`` and paired with it;
3. a recent video query: its top-2 candidate tracks, with the clip and each track's offset.

A pair already in the store (either order, voted or not) is never made twice.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engines.core.errors import EngineError
from engines.feedback import recent
from engines.feedback.store import Pair, PreferenceStore

log = logging.getLogger(__name__)

__all__ = ["controls_signature", "describe_controls", "fill_queue"]

#: recent records looked at (newest first)
RECENT_LIMIT = 500


def controls_signature(controls: dict[str, Any]) -> str:
    """Controls that make two generations comparable (``sources`` left out)."""
    return json.dumps({k: v for k, v in controls.items() if k != "sources"}, sort_keys=True, default=str)


def describe_controls(c: dict[str, Any]) -> str:
    """A prompt for a generation made from fields only: ``"Am, 92 bpm, 4/4, chords Am F C G, 4 bars, pop"``."""
    parts = []
    if c.get("key"):
        parts.append(str(c["key"]))
    if c.get("tempo"):
        parts.append(f"{float(c['tempo']):g} bpm")
    if c.get("meter"):
        parts.append(str(c["meter"]))
    if c.get("chords"):
        parts.append("chords " + " ".join(map(str, c["chords"])))
    if c.get("bars"):
        parts.append(f"{c['bars']} bars")
    if c.get("style"):
        parts.append(str(c["style"]))
    if c.get("instruments"):
        parts.append(", ".join(map(str, c["instruments"])))
    return ", ".join(parts)


def _exists(p: Any) -> bool:
    return bool(p) and Path(str(p)).is_file()


def _resolved(p: Any) -> str:
    return str(Path(str(p)).expanduser().resolve())


def _gen_meta(data: dict[str, Any]) -> dict[str, Any]:
    return {"model": str(data.get("model") or ""), "model_version": str(data.get("model_version") or ""),
            "seed": data.get("seed"), "label": Path(str(data["wav"])).stem, "verb": data.get("verb", "music"),
            "controls": {k: v for k, v in (data.get("controls") or {}).items() if k != "sources"},
            "text": data.get("text", "")}


def _add_generate(store: PreferenceStore, x: dict[str, Any], y: dict[str, Any]) -> Pair:
    ctl = {k: v for k, v in (x.get("controls") or {}).items() if k != "sources"}
    prompt = str(x.get("text") or "") or describe_controls(ctl)
    return store.add_pair(
        "generate", x["wav"], y["wav"], prompt=prompt, controls=ctl, a_meta=_gen_meta(x), b_meta=_gen_meta(y),
        a_midi=x["midi"] if _exists(x.get("midi")) else None,
        b_midi=y["midi"] if _exists(y.get("midi")) else None, source="queue")


def generate_another(home: Any, data: dict[str, Any], seed: int,
                     progress: Callable[[float, str], None] | None = None) -> dict[str, Any]:
    """Generate the same controls (and prompt) as the recent result ``data`` with ``seed``.

    Returns a record-like dict (``midi``, ``wav``, ``controls``, ``seed``, ``model``, ...). The
    files go to ``<home>/cache/prefs_queue`` (the pair keeps its own copies).
    """
    from engines.generate.engine import Engine, GenerateRequest

    c = data.get("controls") or {}
    s = home.load_settings()
    model = str(data.get("model") or "default")
    version = str(data.get("model_version") or "")
    try:
        from engines.feedback.versions import generator
    except ImportError:  # no generator versions: the model by name
        eng = Engine.from_pretrained(model, device=None if s.compute_device == "auto" else s.compute_device)
    else:
        # the same generator version as the result ("default" may point at another version by now)
        same = version if (version == "base" or re.fullmatch(r"g\d{3,}", version)) else model
        eng = generator(same, s.compute_device, home)
    src_midi = data.get("source_midi") if data.get("verb") == "music" and _exists(data.get("source_midi")) else None
    req = GenerateRequest(
        text=str(data.get("text") or ""), key=c.get("key") or None, mode=c.get("mode") or None,
        tempo=c.get("tempo"), meter=c.get("meter") or None,
        chords=" ".join(map(str, c["chords"])) if c.get("chords") else None, bars=c.get("bars"),
        instruments=",".join(map(str, c["instruments"])) if c.get("instruments") else None,
        style=c.get("style") or None, density=c.get("density"), drums=c.get("drums"), seed=int(seed),
        midi=src_midi, out_dir=str(home.cache / "prefs_queue"), soundfont=s.soundfont or None,
        sample_rate=int(s.music_sample_rate), wav_bits=int(s.wav_bits), render=True)
    res = eng.generate(req, progress=progress)
    return {**res.to_dict(), "seed": int(seed), "model": model,
            "model_version": str(getattr(eng, "version", "") or version), "text": req.text, "verb": "music",
            "source_midi": src_midi}


def fill_queue(store: PreferenceStore, n: int, *, generate: bool = True,
               progress: Callable[[float, str], None] | None = None) -> list[Pair]:
    """The pending pairs (oldest first), topped up to ``n`` from recent work.

    Parameters
    ----------
    store : PreferenceStore
    n : int
        How many pending pairs the queue should hold.
    generate : bool
        Allow generating a second seed for a recent generation that has no partner.
    """
    prog = progress or (lambda f, m: None)  # noqa: ARG005
    pending = store.pairs(pending=True)
    if len(pending) >= n:
        return pending[:n]
    made: set[frozenset[str]] = set()
    partnered: set[str] = set()  # originals already in some pair
    for p in store.pairs():
        sa, sb = str(p.a.meta.get("source_path", p.a.sha)), str(p.b.meta.get("source_path", p.b.sha))
        made.add(frozenset((sa, sb)))
        partnered.update((sa, sb))

    def fresh(x: str, y: str) -> bool:
        key = frozenset((x, y))
        return x != y and key not in made

    new: list[Pair] = []
    records = list(reversed(recent.read(store.home, limit=RECENT_LIMIT)))  # newest first
    gens = [r["data"] for r in records if r.get("kind") == "generate" and _exists(r["data"].get("wav"))
            and isinstance(r["data"].get("controls"), dict)]
    by_sig: dict[str, list[dict[str, Any]]] = {}
    for g in gens:
        by_sig.setdefault(controls_signature(g["controls"]), []).append(g)

    def want() -> int:
        return n - len(pending) - len(new)

    # 1. two recent generations sharing controls
    for group in by_sig.values():
        for i, x in enumerate(group):
            for y in group[i + 1:]:
                if want() <= 0:
                    break
                wx, wy = _resolved(x["wav"]), _resolved(y["wav"])
                if not fresh(wx, wy):
                    partnered.update((wx, wy))
                    continue
                try:
                    new.append(_add_generate(store, x, y))
                except EngineError as exc:  # a file changed or vanished since: skip it
                    log.warning("queue: skipped a pair: %s", exc)
                    continue
                made.add(frozenset((wx, wy)))
                partnered.update((wx, wy))

    # 2. video queries: their top-2 candidates; 3. a second seed for a lone generation
    for r in records:
        if want() <= 0:
            break
        d = r["data"]
        if r.get("kind") == "video":
            cands = [c for c in sorted(d.get("candidates") or [], key=lambda c: c.get("rank", 0))
                     if _exists(c.get("path"))][:2]
            if len(cands) < 2 or not _exists(d.get("video")):
                continue
            pa, pb = _resolved(cands[0]["path"]), _resolved(cands[1]["path"])
            if not fresh(pa, pb):
                continue
            metas = [{"label": str(c.get("title") or Path(c["path"]).stem), "track_id": c.get("track_id"),
                      "offset_s": float(c.get("offset_s") or 0.0), "score": c.get("score"),
                      "rank": c.get("rank"), "title": c.get("title"), "session_id": d.get("session_id"),
                      "start": d.get("start"), "end": d.get("end"), "matcher": d.get("matcher")}
                     for c in cands]
            try:
                new.append(store.add_pair(
                    "video", cands[0]["path"], cands[1]["path"], prompt=str(d.get("text") or ""),
                    controls={"start": d.get("start"), "end": d.get("end"), "session_id": d.get("session_id")},
                    a_meta=metas[0], b_meta=metas[1], video=d["video"], source="queue"))
            except EngineError as exc:
                log.warning("queue: skipped a video pair: %s", exc)
                continue
            made.add(frozenset((pa, pb)))
        elif r.get("kind") == "generate" and generate:
            if not _exists(d.get("wav")) or not isinstance(d.get("controls"), dict) or d.get("verb", "music") != "music":
                continue
            w = _resolved(d["wav"])
            if w in partnered:
                continue
            seeds = {int(g.get("seed") or 0) for g in by_sig.get(controls_signature(d["controls"]), [])}
            seed = int(d.get("seed") or 0) + 1
            while seed in seeds:
                seed += 1
            prog((len(new)) / max(1, want() + len(new)), f"generating seed {seed} for {Path(w).name}")
            try:
                other = generate_another(store.home, d, seed)
                new.append(_add_generate(store, d, other))
            except EngineError as exc:
                log.warning("queue: could not generate a partner for %s: %s", w, exc)
                continue
            partnered.add(w)
            made.add(frozenset((w, _resolved(other["wav"]))))
    return pending + new
