"""Video → music: match a clip to library tracks, steer with words, refine, sync beats to cuts.

Public API::

    from engines.video2music.engine import Engine, MatchRequest

    eng = Engine.from_pretrained("default", home=DataHome())      # or "zero-shot", "debug"
    res = eng.match(MatchRequest(video="clip.mp4", text="calmer", top=5))
    res = eng.refine(res.session_id, "less drums, not the first one")
    for s in res.suggestions:
        print(s.title, s.score, s.offset_s, s.cuts_on_beat, s.cuts_total, s.rationale)

Ranking (both matchers): matcher score for every track → steering (directions on measured
attributes anchored at the previous picks, tags, liked and rejected tracks) → shortlist →
beat/cut sync over all offsets and energy-curve fit → maximal-marginal-relevance
diversification (same album/artist or near-identical analysis count as redundant).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engines.analysis.video import VideoFeatures, analyze_video
from engines.core.atomic import atomic_write_text
from engines.core.errors import EngineError, ModelError, NotFoundError, ParameterError
from engines.core.home import DataHome
from engines.core.jobs import JobContext
from engines.video2music import sessions as S
from engines.video2music.matchers import (
    LearnedMatcher,
    Matcher,
    ZeroShotMatcher,
    chance_alignment,
    gauss,
)
from engines.video2music.music import LibraryMatrix, load_library
from engines.video2music.steer import ATTR_LABEL, ATTRS, Turn, parse_turn
from engines.video2music.sync import TOLERANCE, best_offset

W_DIRECTION = 0.45
W_TAG = 0.5
W_AVOID = 0.8
W_LIKE = 0.7
W_SYNC = 0.35
W_CURVE = 0.12
MMR_LAMBDA = 0.75
MAX_TOP = 100


@dataclass(frozen=True)
class MatchRequest:
    """``video`` path, optional ``text``, ``top`` K, in/out range ``start``/``end`` (s)."""

    video: str
    text: str = ""
    top: int = 5
    start: float | None = None
    end: float | None = None


@dataclass
class Suggestion:
    rank: int
    track_id: int
    path: str
    title: str
    artist: str
    album: str
    score: float
    offset_s: float
    cuts_on_beat: int
    cuts_total: int
    matcher: str
    rationale: str
    tempo: float = 0.0
    key: str = ""
    energy: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MatchResult:
    session_id: str
    video: str
    start: float
    end: float
    matcher: str
    suggestions: list[Suggestion]
    changed: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    cuts: list[float] = field(default_factory=list)  # clip cut times (s from the in point)

    def to_dict(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "video": self.video, "start": self.start,
                "end": self.end, "matcher": self.matcher, "changed": self.changed,
                "timings": self.timings, "cuts": self.cuts,
                "results": [s.to_dict() for s in self.suggestions]}


def _embedder() -> Any:
    from engines.analysis.text import shared_embedder

    emb = shared_embedder()
    return lambda text: emb.embed_one(text)


# --------------------------------------------------------------------------- models

def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def shipped_model_dir() -> Path:
    return _repo_root() / "resources" / "models" / "video2music"


def resolve_matcher(name: str, home: DataHome | None, *, embed: Any = None) -> Matcher:
    """``"zero-shot"``, ``"learned"`` (user model, then shipped), ``"debug"`` (tiny random
    learned model) or ``"default"``/``"auto"`` (a learned model only where its recorded
    held-out evaluation beat zero-shot; otherwise zero-shot)."""
    if name == "zero-shot":
        return ZeroShotMatcher(embed=embed)
    if name == "debug":
        from engines.video2music import model as M

        return LearnedMatcher(M.TrimodalModel.debug(), embed=embed)
    dirs = []
    if home is not None:
        dirs.append(home.models / "video2music")
    dirs.append(shipped_model_dir())
    for d in dirs:
        if (d / "model.safetensors").is_file():
            try:
                default = bool(json.loads((d / "config.json").read_text("utf-8")).get("default"))
            except (OSError, ValueError):
                default = False
            if name == "learned" or (name in ("default", "auto") and default):
                from engines.video2music import model as M

                return LearnedMatcher(M.load_model(d), embed=embed)
    if name == "learned":
        raise ModelError("no learned video-to-music model: train one with `studio video learn FOLDER`")
    if name not in ("default", "auto"):
        raise ParameterError(f"unknown matcher {name!r}: use default, zero-shot, learned or debug")
    return ZeroShotMatcher(embed=embed)


# --------------------------------------------------------------------------- clip analysis

def _clip_key(path: Path, start: float | None, end: float | None) -> str:
    st = path.stat()
    # v2: flash frames are no longer cuts (engines.analysis.video.FLASH_FRAMES)
    raw = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{start}|{end}|v2"
    return hashlib.blake2b(raw.encode(), digest_size=12).hexdigest()


def analyze_clip(home: DataHome | None, video: str, *, start: float | None, end: float | None,
                 ctx: JobContext | None = None) -> VideoFeatures:
    """:func:`engines.analysis.video.analyze_video`, cached in ``cache/video2music/clips``."""
    p = Path(os.fspath(video)).expanduser()
    if start is not None and end is not None and float(end) <= float(start):
        raise ParameterError(f"the range {start:g}-{end:g} s is empty (the out point must come "
                             "after the in point)", path=p)
    cache = None
    if home is not None and p.is_file():
        cache = home.cache / "video2music" / "clips" / f"{_clip_key(p, start, end)}.json"
        try:
            return VideoFeatures.from_dict(json.loads(cache.read_text("utf-8")))
        except (OSError, ValueError, TypeError):
            pass
    feats = analyze_video(p, start=start, end=end, cancel=ctx.cancel if ctx else None)
    if cache is not None:
        try:
            atomic_write_text(cache, json.dumps(feats.to_dict(), separators=(",", ":")))
        except OSError:
            pass
    return feats


# --------------------------------------------------------------------------- steering state

def _top_mean(lib: LibraryMatrix, rows: list[int], attr: str) -> float:
    if not rows:
        return 0.5
    return float(np.mean(lib.scaled(attr)[rows]))


def apply_turn(state: dict[str, Any], turn: Turn, lib: LibraryMatrix, prev_rows: list[int]) -> list[str]:
    """Fold one parsed turn into the steering ``state``; returns what it changed, in words."""
    notes: list[str] = []
    dirs: dict[str, Any] = state.setdefault("directions", {})
    for attr, s in turn.directions.items():
        anchor = _top_mean(lib, prev_rows, attr)
        old = dirs.get(attr)
        strength = s
        if old and np.sign(old["strength"]) == np.sign(s):
            strength = float(np.clip(old["strength"] + s, -2.5, 2.5))
        dirs[attr] = {"strength": float(strength), "anchor": anchor}
    tags: dict[str, float] = state.setdefault("tags", {})
    tags.update(turn.tags)
    if turn.bpm:
        state["bpm"] = turn.bpm
    shown = state.get("shown_ids", [])
    if turn.restore and state.get("rejected"):
        notes.append(f"brought back {len(state['rejected'])} rejected track(s)")
        state["rejected"] = []
    for pos in turn.rejects:
        tid = _at(shown, pos)
        if tid is not None and tid not in state.setdefault("rejected", []):
            state["rejected"].append(tid)
            i = lib.row_of(tid)
            notes.append(f"dropped '{lib.meta['title'][i]}'" if i is not None else f"dropped #{pos}")
    for pos in turn.likes:
        tid = _at(shown, pos)
        if tid is not None:
            likes = state.setdefault("likes", [])
            if tid in likes:
                likes.remove(tid)
            likes.append(tid)
            state["likes"] = likes[-3:]
            i = lib.row_of(tid)
            notes.append(f"more like '{lib.meta['title'][i]}'" if i is not None else f"like #{pos}")
    return notes


def _at(ids: list[int], pos: int) -> int | None:
    if not ids:
        return None
    if pos == -1:
        return int(ids[-1])
    return int(ids[pos - 1]) if 1 <= pos <= len(ids) else None


def _sig(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def steering_scores(state: dict[str, Any], lib: LibraryMatrix) -> tuple[np.ndarray, np.ndarray]:
    """Additive steering score per track and a mask of excluded (rejected) tracks."""
    n = len(lib)
    out = np.zeros(n)
    for attr, d in state.get("directions", {}).items():
        x = lib.scaled(attr)
        s = float(d["strength"])
        sign = 1.0 if s > 0 else -1.0
        # one-sided: tracks beyond the anchor in the asked direction gain; plus a small absolute pull
        out += W_DIRECTION * abs(s) * (_sig(sign * (x - d["anchor"]) / 0.06) + 0.3 * sign * (x - 0.5))
    bpm = float(state.get("bpm") or 0)
    if bpm > 0:
        t = np.maximum(lib.col("tempo"), 1.0)
        out += 0.6 * gauss(np.log2(t / bpm), 0.06)
    if state.get("tags"):
        texts = lib.texts()
        from engines.video2music.steer import TAGS

        for word, sign in state["tags"].items():
            alts = TAGS.get(word, (word,))
            mask = np.fromiter((any(a in t for a in alts) for t in texts), np.float64, n)
            out += (W_TAG if sign > 0 else -W_AVOID) * mask
    likes = [lib.row_of(t) for t in state.get("likes", [])]
    likes = [i for i in likes if i is not None]
    if likes:
        F = np.stack([lib.scaled(a) for a in ATTRS], axis=1)
        for k, i in enumerate(likes):
            w = W_LIKE * (0.6 ** (len(likes) - 1 - k))
            sim = gauss(np.linalg.norm(F - F[i], axis=1), 0.2)
            if np.any(lib.emb[i]):
                sim = 0.7 * sim + 0.3 * np.clip(lib.emb @ lib.emb[i], 0, 1)
            out += w * sim
    excluded = np.zeros(n, bool)
    for tid in state.get("rejected", []):
        i = lib.row_of(tid)
        if i is not None:
            excluded[i] = True
    return out, excluded


# --------------------------------------------------------------------------- ranking

def _redundancy(lib: LibraryMatrix, rows: np.ndarray) -> np.ndarray:
    F = np.stack([lib.scaled(a)[rows] for a in ATTRS], axis=1)
    d = np.linalg.norm(F[:, None, :] - F[None, :, :], axis=2)
    sim = 0.5 * gauss(d, 0.08)
    alb = [lib.meta["album"][i].strip().lower() for i in rows]
    art = [lib.meta["artist"][i].strip().lower() for i in rows]
    folder = [os.path.dirname(lib.meta["path"][i]) for i in rows]
    for a in range(len(rows)):
        for b in range(len(rows)):
            if a != b and ((alb[a] and alb[a] == alb[b]) or (not alb[a] and folder[a] == folder[b]
                                                             and art[a] == art[b] and art[a])):
                sim[a, b] = max(sim[a, b], 1.0)
    return sim


def mmr(scores: np.ndarray, sim: np.ndarray, k: int, lam: float = MMR_LAMBDA) -> list[int]:
    """Maximal marginal relevance: indices into ``scores`` in pick order."""
    s = (scores - scores.min()) / max(float(np.ptp(scores)), 1e-9)
    chosen: list[int] = []
    left = list(range(len(s)))
    while left and len(chosen) < k:
        if chosen:
            red = sim[np.ix_(left, chosen)].max(axis=1)
        else:
            red = np.zeros(len(left))
        val = lam * s[left] - (1 - lam) * red
        j = left[int(np.argmax(val))]
        chosen.append(j)
        left.remove(j)
    return chosen


def rank(video: VideoFeatures, state: dict[str, Any], lib: LibraryMatrix, matcher: Matcher, *,
         top: int, text: str = "", diversify: bool = True) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rank the library for a clip under the steering ``state``; returns result rows and details."""
    base, det = matcher.score(video, text, lib)
    steer, excluded = steering_scores(state, lib)
    total = base + steer
    total = np.where(excluded, -np.inf, total)
    n_ok = int((~excluded).sum())
    if n_ok == 0:
        raise EngineError("every track in the library was rejected in this session; say "
                          "'bring back the rejected ones' to see them again")
    m = min(n_ok, max(40, 8 * top))
    short = np.argpartition(-total, m - 1)[:m]
    short = short[np.argsort(-total[short], kind="stable")]
    syncs = []
    final = np.empty(m)
    tempo = lib.col("tempo")
    for j, i in enumerate(short):
        sr = best_offset(video.cuts, lib.beats(i), clip_duration=video.duration,
                         track_duration=float(lib.col("duration")[i]),
                         video_energy=video.energy_curve, track_energy=lib.curve(i))
        syncs.append(sr)
        bonus = 0.0
        if sr.total >= 2:
            ch = chance_alignment(float(tempo[i]))
            frac = sr.aligned / sr.total
            bonus += W_SYNC * float(np.clip((frac - ch) / max(1 - ch, 1e-6), -0.5, 1.0))
        bonus += W_CURVE * sr.energy_fit
        final[j] = total[i] + bonus
    order = np.argsort(-final, kind="stable")
    if diversify and m > 1:
        pool = order[: min(m, 4 * top + 8)]
        sim = _redundancy(lib, short[pool])
        picked = [int(pool[j]) for j in mmr(final[pool], sim, top)]
        # MMR chooses a diverse set; people read the list best-first, so show it by score
        picked.sort(key=lambda j: -final[j])
    else:
        picked = [int(j) for j in order[:top]]
    rows = []
    for j in picked:
        i = int(short[j])
        sr = syncs[j]
        rows.append({"row": i, "track_id": int(lib.ids[i]), "score": float(final[j]),
                     "offset_s": sr.offset, "cuts_on_beat": sr.aligned, "cuts_total": sr.total,
                     "energy_fit": sr.energy_fit})
    return rows, det


def _key_words(lib: LibraryMatrix, i: int) -> str:
    key = lib.meta["key"][i] or ("major key" if lib.col("major")[i] > 0.5 else "minor key")
    b = lib.col("brightness")[i]
    tone = "high brightness" if b > 2200 else ("low brightness" if b < 1300 else "mid brightness")
    return f"{key}, {tone}"


def rationale(lib: LibraryMatrix, i: int, det: dict[str, Any], row: dict[str, Any],
              state: dict[str, Any], matcher: str) -> str:
    tg = det["targets"]
    parts = det["parts"]
    tempo = float(lib.col("tempo")[i])
    energy = float(lib.col("energy")[i])
    bits = []
    strengths = {k: float(v[i]) for k, v in parts.items()}
    bits.append(f"{tg.words['pace']} ↔ {tempo:.0f} BPM" if tempo > 0 else f"{tg.words['pace']} ↔ free time")
    one_shot = tg.words["pace"].startswith("one shot")  # the motion is named already
    if one_shot or strengths.get("valence", 0) >= strengths.get("energy", 0):
        bits.append(f"{tg.words['light']} ↔ {_key_words(lib, i)}")
    else:
        bits.append(f"{tg.words['motion']} ↔ energy {energy:.2f}")
    if row["cuts_total"]:
        bits.append(f"{row['cuts_on_beat']} of {row['cuts_total']} cuts within "
                    f"{TOLERANCE * 1000:.0f} ms of a beat from {row['offset_s']:.1f} s")
    for attr, d in state.get("directions", {}).items():
        x = float(lib.scaled(attr)[i])
        word = {1: {"tempo": "faster", "energy": "more energetic", "brightness": "brighter",
                    "density": "busier", "major": "more major"},
                -1: {"tempo": "slower", "energy": "calmer", "brightness": "darker",
                     "density": "sparser", "major": "more minor"}}[1 if d["strength"] > 0 else -1][attr]
        ok = (x - d["anchor"]) * d["strength"] > 0
        bits.append(f"{word} than before ({ATTR_LABEL[attr]} {x:.2f} vs {d['anchor']:.2f})"
                    if ok else f"not {word} ({ATTR_LABEL[attr]} {x:.2f} vs {d['anchor']:.2f})")
    for word, sign in state.get("tags", {}).items():
        from engines.video2music.steer import TAGS

        text = lib.texts()[i] if len(lib) < 2000 else " ".join(lib.meta[k][i] for k in lib.meta).lower()
        has = any(a in text for a in TAGS.get(word, (word,)))
        if sign > 0 and has:
            bits.append(f"tagged {word}")
        elif sign < 0:
            bits.append(f"no {word} in its tags" if not has else f"tags mention {word}")
    if state.get("likes"):
        j = lib.row_of(state["likes"][-1])
        if j is not None and j != i:
            bits.append(f"close to '{lib.meta['title'][j]}'")
    return "; ".join(bits) + f" [{matcher}]"


# --------------------------------------------------------------------------- engine

class Engine:
    """Match clips to the library of one data home; sessions live in that data home."""

    def __init__(self, home: DataHome, *, matcher: str = "default") -> None:
        self.home = home
        self.matcher_name = matcher
        self._matcher: Matcher | None = None

    @classmethod
    def from_pretrained(cls, name: str = "default", *, home: DataHome | None = None) -> Engine:
        return cls(home or DataHome(), matcher=name)

    @property
    def matcher(self) -> Matcher:
        if self._matcher is None:
            self._matcher = resolve_matcher(self.matcher_name, self.home, embed=_LazyEmbed())
        return self._matcher

    # ---------------------------------------------------------------- match
    def match(self, req: MatchRequest, ctx: JobContext | None = None) -> MatchResult:
        if not 1 <= int(req.top) <= MAX_TOP:
            raise ParameterError(f"top must be between 1 and {MAX_TOP}; got {req.top}")
        t0 = time.perf_counter()
        if ctx:
            ctx.progress(0.02, "reading the library")
        lib = load_library(self.home)
        t1 = time.perf_counter()
        if ctx:
            ctx.progress(0.05, "analysing the clip")
        video = analyze_clip(self.home, req.video, start=req.start, end=req.end, ctx=ctx)
        t2 = time.perf_counter()
        if ctx:
            ctx.check()
            ctx.progress(0.8, "ranking")
        matcher = self.matcher
        state: dict[str, Any] = {
            "session_id": S.new_session_id(), "created_at": time.time(), "version": 1,
            "video": {"path": str(Path(req.video).expanduser().resolve()), "start": video.start,
                      "end": video.end},
            "features": video.to_dict(), "matcher": matcher.name, "top": int(req.top),
            "turns": [], "directions": {}, "tags": {}, "likes": [], "rejected": [], "shown_ids": [],
        }
        text = (req.text or "").strip()
        changed = ""
        if text:
            # anchor the words at what the clip alone would get
            plain, _ = rank(video, state, lib, matcher, top=5, text="")
            changed = self._turn(state, text, lib, [r["row"] for r in plain])
        res = self._finish(state, video, lib, text, changed, [], ctx)
        res.timings = {"library_s": round(t1 - t0, 3), "video_analysis_s": round(t2 - t1, 3),
                       "ranking_s": round(time.perf_counter() - t2, 3)}
        return res

    def refine(self, session_id: str, text: str, ctx: JobContext | None = None) -> MatchResult:
        text = (text or "").strip()
        if not text:
            raise ParameterError("say what to change, e.g. --text 'calmer' or 'not the first one'")
        state = S.load_session(self.home, session_id)
        lib = load_library(self.home)
        video = VideoFeatures.from_dict(state["features"])
        if state.get("matcher") and state["matcher"] != self.matcher.name and self.matcher_name == "default":
            self._matcher = _matcher_by_name(state["matcher"], self.home)
        prev_rows = [r for r in (lib.row_of(t) for t in state.get("shown_ids", [])[:5]) if r is not None]
        changed = self._turn(state, text, lib, prev_rows)
        all_text = " ".join(t["text"] for t in state["turns"][-3:])
        return self._finish(state, video, lib, all_text, changed, prev_rows, ctx)

    # ---------------------------------------------------------------- internals
    def _turn(self, state: dict[str, Any], text: str, lib: LibraryMatrix, prev_rows: list[int]) -> str:
        turn = parse_turn(text)
        notes = apply_turn(state, turn, lib, prev_rows)
        state["turns"].append({"text": text, "parsed": turn.to_dict(), "at": time.time()})
        state["_notes"] = notes
        return ""

    def _finish(self, state: dict[str, Any], video: VideoFeatures, lib: LibraryMatrix, text: str,
                _changed: str, prev_rows: list[int], ctx: JobContext | None) -> MatchResult:
        matcher = self.matcher
        rows, det = rank(video, state, lib, matcher, top=int(state["top"]), text=text)
        notes = list(state.pop("_notes", []))
        if prev_rows and state["turns"]:
            last = state["turns"][-1]["parsed"]
            new_rows = [r["row"] for r in rows[:5]]
            for attr in last.get("directions", {}):
                notes.append(f"{ATTR_LABEL[attr]} {_top_mean(lib, new_rows, attr):.2f} "
                             f"(was {_top_mean(lib, prev_rows, attr):.2f})")
            kept = len(set(new_rows) & set(prev_rows))
            notes.append(f"{len(new_rows) - kept} new in the top {len(new_rows)}")
        changed = "; ".join(notes)
        meta = lib.meta
        sugg = []
        for k, r in enumerate(rows):
            i = r["row"]
            why = rationale(lib, i, det, r, state, matcher.name)
            sugg.append(Suggestion(
                rank=k + 1, track_id=r["track_id"], path=meta["path"][i], title=meta["title"][i],
                artist=meta["artist"][i], album=meta["album"][i], score=round(r["score"], 4),
                offset_s=r["offset_s"], cuts_on_beat=r["cuts_on_beat"], cuts_total=r["cuts_total"],
                matcher=matcher.name, rationale=why, tempo=round(float(lib.col("tempo")[i]), 1),
                key=meta["key"][i], energy=round(float(lib.col("energy")[i]), 3)))
        state["shown_ids"] = [s.track_id for s in sugg]
        entry = {"results": [s.to_dict() for s in sugg], "changed": changed}
        if state["turns"]:
            state["turns"][-1].update(entry)
        else:
            state["initial"] = entry
        S.save_session(self.home, state)
        if ctx:
            ctx.progress(1.0, "done")
        return MatchResult(state["session_id"], state["video"]["path"], float(state["video"]["start"]),
                           float(state["video"]["end"]), matcher.name, sugg, changed,
                           cuts=[round(float(c), 3) for c in video.cuts])

    def session(self, session_id: str) -> dict[str, Any]:
        return S.load_session(self.home, session_id)

    def suggestion(self, session_id: str, rank_: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """The session state and its ``rank_``-th (1-based) suggestion of the latest turn."""
        st = S.load_session(self.home, session_id)
        latest = (st["turns"][-1] if st.get("turns") else st.get("initial", {})).get("results", [])
        if not 1 <= int(rank_) <= len(latest):
            raise NotFoundError(f"session {session_id} has {len(latest)} suggestion(s); "
                                f"there is no rank {rank_}")
        return st, latest[int(rank_) - 1]


def _matcher_by_name(name: str, home: DataHome) -> Matcher:
    if name.startswith("learned"):
        try:
            return resolve_matcher("learned", home, embed=_LazyEmbed())
        except ModelError:
            pass
    return ZeroShotMatcher(embed=_LazyEmbed())


class _LazyEmbed:
    """Loads MiniLM only when some text has to be embedded."""

    def __init__(self) -> None:
        self._fn: Any = None

    def __call__(self, text: str) -> np.ndarray:
        if self._fn is None:
            self._fn = _embedder()
        return self._fn(text)


def _finite(x: float) -> float:
    return x if math.isfinite(x) else 0.0
