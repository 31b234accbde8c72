"""Commands of the preference store: ``studio prefs pair|queue|vote|undo|list|stats|export|import``.

Registered through the ``cue_studio.plugins`` entry point (``prefs = "engines.feedback.commands"``).
Importing this module is cheap: handlers are named as strings. The learning commands
(``prefs.train-reward``, ``prefs.finetune``, ``prefs.models``) live in
:mod:`engines.feedback.learn_commands`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from engines.core.jobs import JobContext
from engines.core.plugin_api import Param, PluginAPI, Result

MANIFEST = {
    "name": "prefs",
    "version": "1.0",
    "api": 1,
    "description": "A/B preferences: pairs, votes kept safe, history, export (TRL/bundle/CSV) and import",
}

_H = "engines.feedback.commands:"
_MIDI_SUFFIXES = (".mid", ".midi", ".smf", ".kar")


def enable(api: PluginAPI) -> None:
    api.register_command(
        id="prefs.pair", title="Compare two results (new A/B pair)", handler=_H + "pair",
        description="Make an A/B pair from two results (WAV or MIDI; a generated result's seed, model and "
                    "controls are picked up from recent work). The files are copied into the preference store.",
        params=(
            Param("a", "path", required=True, positional=True, help="result A (audio or MIDI file)"),
            Param("b", "path", required=True, positional=True, help="result B (audio or MIDI file)"),
            Param("prompt", "str", default="", help="the prompt or query both answer (default: from recent work)"),
            Param("kind", "choice", default="auto", choices=("auto", "generate", "video", "audio"),
                  help="what is compared (auto: generate for two recent generations, video with --video)"),
            Param("video", "path", help="the video clip both tracks are for (a video pair)"),
        ),
    )
    api.register_command(
        id="prefs.queue", title="Rate pairs from my recent work", handler=_H + "queue",
        description="The pending pairs, topped up to N from recent work: two generations with the same "
                    "controls, a new seed of a recent generation, or the top two tracks of a video query.",
        params=(
            Param("n", "int", default=10, minimum=1, maximum=500, help="how many pairs to have ready"),
            Param("generate", "bool", default=True,
                  help="generate a second seed for a recent generation without a partner"),
        ),
    )
    api.register_command(
        id="prefs.vote", title="Vote on a pair", handler=_H + "vote", runs_in="local",
        description="Record A, B, tie or both bad for a pair, with an optional reason, listen events and "
                    "decision time. When this returns the vote is on disk.",
        params=(
            Param("pair_id", "str", required=True, positional=True, help="from prefs queue / prefs list"),
            Param("choice", "choice", required=True, choices=("a", "b", "tie", "both_bad"), help="the verdict"),
            Param("reason", "str", default="", help="why (free text)"),
            Param("rater", "str", default="default", help="rater profile"),
            Param("decision_ms", "int", minimum=0, help="time from showing the pair to the vote, ms"),
            Param("listens", "str", default="",
                  help='listen events as JSON: [{"side":"a","t":0.5,"pos":0,"action":"play"}, ...]'),
        ),
    )
    api.register_command(
        id="prefs.undo", title="Undo last vote", handler=_H + "undo", runs_in="local",
        description="Delete the newest vote; its pair is pending again.",
        params=(Param("rater", "str", help="only this rater's newest vote"),),
    )
    api.register_command(
        id="prefs.list", title="Preference history", handler=_H + "list_", runs_in="local",
        description="Every pair with its vote (or pending).",
        params=(Param("pending", "bool", help="--pending: only pairs without a vote; --no-pending: only voted"),),
    )
    api.register_command(
        id="prefs.stats", title="Preference statistics", handler=_H + "stats",
        description="Votes, pending pairs, votes by choice and kind, and the reward model's agreement.",
    )
    api.register_command(
        id="prefs.export", title="Export preferences", handler=_H + "export",
        description="TRL JSONL (prompt/chosen/rejected; ties in *_ties.jsonl), a self-contained bundle "
                    "(folder or .zip: audio + JSONL + dataset card) or CSV. Written atomically.",
        params=(
            Param("format", "choice", default="trl", choices=("trl", "bundle", "csv"), help="what to write"),
            Param("out", "path", help="file (.jsonl, .csv, .zip) or folder (bundle); relative paths go "
                                      "under exports/ in the data home"),
        ),
    )
    api.register_command(
        id="prefs.import", title="Import a preference bundle", handler=_H + "import_",
        description="Merge a bundle (folder or .zip) made by prefs export; duplicates are skipped and a "
                    "damaged bundle imports nothing.",
        params=(Param("bundle", "path", required=True, positional=True, help="bundle folder or .zip"),),
    )


def _store(ctx: JobContext) -> Any:
    from engines.feedback.store import PreferenceStore

    return PreferenceStore(ctx.home)


def _short(p: Any) -> str:
    v = p.vote.choice if p.vote is not None else "pending"
    what = p.prompt or p.kind
    return f"{p.pair_id}  {p.kind:<8} {v:<8} A={p.a.label} | B={p.b.label}  {what[:60]}"


# --------------------------------------------------------------------------- pair

def _find_generated(home: Any, p: Path) -> dict[str, Any] | None:
    from engines.feedback import recent

    want = str(p.resolve())
    for rec in reversed(recent.read(home, kind="generate")):
        d = rec["data"]
        for k in ("wav", "midi"):
            if d.get(k) and str(Path(str(d[k])).expanduser().resolve()) == want:
                return d
    return None


def _find_video_query(home: Any, a: Path, b: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]] | None:
    from engines.feedback import recent

    wa, wb = str(a.resolve()), str(b.resolve())
    for rec in reversed(recent.read(home, kind="video")):
        d = rec["data"]
        by = {str(Path(str(c.get("path"))).resolve()): c for c in d.get("candidates") or [] if c.get("path")}
        if wa in by and wb in by:
            return d, by[wa], by[wb]
    return None


def _render_midi(ctx: JobContext, midi: Path) -> Path:
    from engines.media.audio import write_wav
    from engines.media.synth import render_midi_file

    s = ctx.home.load_settings()
    out = ctx.home.cache / "prefs_render" / f"{midi.stem}_{int(midi.stat().st_mtime)}.wav"
    if not out.is_file():
        y = render_midi_file(midi, sr=int(s.music_sample_rate), soundfont=s.soundfont or None)
        write_wav(out, y, sr=int(s.music_sample_rate), bits=int(s.wav_bits))
    return out


def _side(ctx: JobContext, path: str) -> tuple[Path, Path | None, dict[str, Any], dict[str, Any] | None]:
    """``(audio, midi, meta, generate record)`` for a result path (audio or MIDI)."""
    from engines.core.errors import NotFoundError, UnsupportedFormatError

    p = Path(path).expanduser()
    if not p.exists():
        raise NotFoundError("file not found", path=p)
    if p.is_dir():
        raise UnsupportedFormatError("is a folder, not an audio or MIDI file", path=p)
    rec = _find_generated(ctx.home, p)
    with open(p, "rb") as fh:
        is_midi = p.suffix.lower() in _MIDI_SUFFIXES or fh.read(4) == b"MThd"
    meta: dict[str, Any] = {}
    midi: Path | None = None
    if rec is not None:
        meta = {"model": str(rec.get("model") or ""), "model_version": str(rec.get("model_version") or ""),
                "seed": rec.get("seed"), "verb": rec.get("verb", "music"), "text": rec.get("text", ""),
                "controls": {k: v for k, v in (rec.get("controls") or {}).items() if k != "sources"}}
        if rec.get("midi") and Path(str(rec["midi"])).is_file():
            midi = Path(str(rec["midi"]))
    if is_midi:
        midi = p
        wav = rec.get("wav") if rec is not None else None
        if wav and Path(str(wav)).is_file():
            audio = Path(str(wav))
        else:
            from engines.media.midi import read_midi

            read_midi(p)  # a clear error for a broken MIDI file before rendering it
            audio = _render_midi(ctx, p)
            meta["rendered_from_midi"] = True
        meta["label"] = p.stem
    else:
        audio = p
    return audio, midi, meta, rec


def pair(ctx: JobContext, *, a: str, b: str, prompt: str = "", kind: str = "auto",
         video: str | None = None) -> Result:
    from engines.core.errors import ParameterError

    store = _store(ctx)
    ctx.progress(0.1, "reading the two results")
    aa, am, ameta, arec = _side(ctx, a)
    ba, bm, bmeta, brec = _side(ctx, b)
    controls: dict[str, Any] = {}
    vq = None if (arec or brec) else _find_video_query(ctx.home, aa, ba)
    if kind == "auto":
        kind = "video" if (video or vq) else ("generate" if arec and brec else "audio")
    if kind == "video":
        if vq is not None:
            d, ca, cb = vq
            for meta, c in ((ameta, ca), (bmeta, cb)):
                meta.update({"label": str(c.get("title") or ""), "track_id": c.get("track_id"),
                             "offset_s": float(c.get("offset_s") or 0.0), "score": c.get("score"),
                             "rank": c.get("rank"), "session_id": d.get("session_id")})
            video = video or d.get("video")
            prompt = prompt or str(d.get("text") or "")
            controls = {"start": d.get("start"), "end": d.get("end"), "session_id": d.get("session_id")}
        if not video:
            raise ParameterError("a video pair needs --video (the clip both tracks are for)")
    if arec and brec:
        ca = ameta.get("controls") or {}
        controls = dict(ca) if ca == (bmeta.get("controls") or {}) else {}
        if not prompt:
            from engines.feedback.queue import describe_controls

            texts = {str(arec.get("text") or ""), str(brec.get("text") or "")}
            prompt = texts.pop() if len(texts) == 1 else ""
            prompt = prompt or (describe_controls(controls) if controls else "")
    for meta in (ameta, bmeta):
        if meta.get("label") in ("", None):
            meta.pop("label", None)
    ctx.progress(0.4, "copying the files into the preference store")
    p = store.add_pair(kind, aa, ba, prompt=prompt, controls=controls, a_meta=ameta, b_meta=bmeta,
                       a_midi=am, b_midi=bm, video=video or None, source="manual")
    ctx.progress(1.0, "pair ready")
    files = [str(p.a.audio), str(p.b.audio)]
    return Result(data=p.to_dict(), files=files, message=f"pair {p.pair_id}: A={p.a.label}  B={p.b.label}")


# --------------------------------------------------------------------------- queue / vote / undo

def queue(ctx: JobContext, *, n: int = 10, generate: bool = True) -> Result:
    from engines.feedback.queue import fill_queue

    store = _store(ctx)
    before = len(store.pairs(pending=True))
    pairs = fill_queue(store, n, generate=generate, progress=ctx.progress)
    made = max(0, len(pairs) - before)
    ctx.progress(1.0, "queue ready")
    msg = f"{len(pairs)} pair(s) to rate ({made} new from recent work)"
    if not pairs:
        msg = "nothing to rate: generate some music or match a video first (recent work fills the queue)"
    return Result(data={"pairs": [p.to_dict() for p in pairs]},
                  message="\n".join([msg, *(_short(p) for p in pairs)]))


def vote(ctx: JobContext, *, pair_id: str, choice: str, reason: str = "", rater: str = "default",
         decision_ms: int | None = None, listens: str = "") -> Result:
    v = _store(ctx).vote(pair_id, choice, reason=reason, rater=rater, decision_ms=decision_ms,
                         listens=listens or ())
    words = {"a": "A", "b": "B", "tie": "tie", "both_bad": "both bad"}[v.choice]
    return Result(data=v.to_dict(), message=f"vote {v.vote_id}: {words} on pair {pair_id}")


def undo(ctx: JobContext, *, rater: str | None = None) -> Result:
    from engines.core.errors import NotFoundError

    p = _store(ctx).undo_last(rater=rater or None)
    if p is None:
        raise NotFoundError("there is no vote to undo" + (f" by rater {rater!r}" if rater else ""))
    return Result(data={"pair_id": p.pair_id}, message=f"undid the vote on pair {p.pair_id}; it is pending again")


def list_(ctx: JobContext, *, pending: bool | None = None) -> Result:
    pairs = _store(ctx).pairs(pending=pending)
    msg = f"{len(pairs)} pair(s)"
    return Result(data={"pairs": [p.to_dict() for p in pairs]}, message="\n".join([msg, *map(_short, pairs)]))


def stats(ctx: JobContext) -> Result:
    store = _store(ctx)
    st = store.stats()
    reward = None
    try:
        from engines.feedback.reward import agreement
    except ImportError:
        agreement = None  # type: ignore[assignment]
    if agreement is not None and st["votes"]:
        reward = agreement(ctx.home, store)
    data = {**st, "reward": reward}
    bc = st["by_choice"]
    lines = [f"{st['votes']} vote(s), {st['pending']} pending: A {bc['a']}, B {bc['b']}, tie {bc['tie']}, "
             f"both bad {bc['both_bad']}",
             "by kind: " + ", ".join(f"{k} {v}" for k, v in st["by_kind"].items()),
             "raters: " + (", ".join(f"{k} {v}" for k, v in st["raters"].items()) or "none")]
    if reward and reward.get("agreement") is not None:
        lines.append(f"reward model {reward['model_version']} agrees with {reward['agreement']:.0%} of the votes")
    else:
        lines.append("no reward model yet (studio prefs train-reward)")
    return Result(data=data, message="\n".join(lines))


# --------------------------------------------------------------------------- export / import

def export(ctx: JobContext, *, format: str = "trl", out: str | None = None) -> Result:  # noqa: A002
    from engines.feedback.export import export as run_export

    ext = {"trl": ".jsonl", "csv": ".csv", "bundle": ""}[format]
    if out:
        target = Path(out).expanduser()
        if not target.is_absolute():
            target = ctx.home.exports / target
    else:
        target = ctx.home.exports / "prefs" / f"prefs_{time.strftime('%Y%m%d_%H%M%S')}{ext}"
    store = _store(ctx)
    files = run_export(store, format, target, progress=ctx.progress)
    st = store.stats()
    ctx.progress(1.0, "exported")
    return Result(data={"format": format, "files": [str(f) for f in files], "votes": st["votes"],
                        "pairs": st["pairs"]},
                  files=[str(f) for f in files],
                  message=f"exported {st['votes']} vote(s) on {st['pairs']} pair(s) as {format}: "
                          + ", ".join(str(f) for f in files))


def import_(ctx: JobContext, *, bundle: str) -> Result:
    from engines.feedback.export import import_bundle

    ctx.progress(0.05, "checking the bundle")
    res = import_bundle(_store(ctx), bundle)
    ctx.progress(1.0, "imported")
    return Result(data={"added": res["added"], "duplicates": res["duplicates"], "pair_ids": res["pair_ids"]},
                  message=f"imported {res['added']} pair(s)/vote(s), skipped {res['duplicates']} duplicate(s)")
