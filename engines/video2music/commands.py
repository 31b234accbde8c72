"""Commands of the video → music engine (``studio video ...`` and the palette).

``video.match VIDEO [--text T] [--top K] [--start S] [--end E]`` →
``{"session_id", "results": [{track_id, path, title, score, offset_s, cuts_on_beat,
cuts_total, matcher, rationale, ...}], ...}``; ``video.refine SESSION_ID --text T`` → the
same shape; ``video.learn FOLDER``; ``video.export SESSION_ID RANK --out FILE [--mux]
[--whole] [--under]``.
"""

from __future__ import annotations

from pathlib import Path

from engines.core.jobs import JobContext
from engines.core.plugin_api import Param, PluginAPI, Result

MANIFEST = {
    "name": "video",
    "version": "1.0",
    "api": 1,
    "description": "Match a video clip to music in the library, refine in conversation, sync and export",
}

_H = "engines.video2music.commands:"


_PREFS = Param("prefs", "bool", help="re-rank by the reward learned from your votes (default: on when "
                                     "`studio prefs train-reward` made one; --no-prefs turns it off)")


def enable(api: PluginAPI) -> None:
    api.register_command(
        id="video.match", title="Match music to a video", handler=_H + "match",
        description="Rank library tracks for a clip (optionally steered by words), with the "
                    "track offset that puts the most cuts on beats.",
        params=(
            Param("video", "path", required=True, positional=True, help="video clip"),
            Param("text", "str", default="", help="words to steer ('calmer, with piano')"),
            Param("top", "int", default=5, minimum=1, maximum=100, help="how many tracks"),
            Param("start", "float", minimum=0, help="in point, seconds"),
            Param("end", "float", minimum=0, help="out point, seconds"),
            Param("matcher", "choice", default="default",
                  choices=("default", "zero-shot", "learned"), help="which matcher ranks"),
            _PREFS,
        ),
    )
    api.register_command(
        id="video.refine", title="Refine the music for a video", handler=_H + "refine",
        description="Say what to change ('less drums', 'more like the second one', 'not that one').",
        params=(
            Param("session_id", "str", required=True, positional=True, help="from video match"),
            Param("text", "str", required=True, help="what to change"),
            _PREFS,
        ),
    )
    api.register_command(
        id="video.learn", title="Learn from my videos", handler=_H + "learn",
        description="Train (or fine-tune) the learned matcher from videos that carry music; "
                    "it becomes the default only if it beats zero-shot on held-out clips.",
        params=(
            Param("folder", "path", required=True, positional=True, help="folder of videos with music"),
            Param("epochs", "int", default=300, minimum=1, maximum=5000),
            Param("seed", "int", default=0),
        ),
    )
    api.register_command(
        id="video.export", title="Export music for a video", handler=_H + "export",
        description="Write the chosen track as WAV (cut to the clip, or --whole) or the clip "
                    "as MP4 with the music (--mux; --under keeps the original sound).",
        params=(
            Param("session_id", "str", required=True, positional=True),
            Param("rank", "int", required=True, positional=True, minimum=1, help="1 = top result"),
            Param("out", "path", required=True, help="output file (.wav or .mp4)"),
            Param("mux", "bool", default=False, help="write the clip as MP4 with the music"),
            Param("whole", "bool", default=False, help="WAV of the whole track, not cut to the clip"),
            Param("under", "bool", default=False, help="with --mux: music under the original sound"),
        ),
    )


def _engine(ctx: JobContext, matcher: str = "default"):  # noqa: ANN202
    from engines.video2music.engine import Engine

    return Engine(ctx.home, matcher=matcher)


def _summary(res) -> str:  # noqa: ANN001
    lines = [f"session {res.session_id} ({res.matcher})" + (f": {res.changed}" if res.changed else "")]
    for s in res.suggestions:
        lines.append(f"{s.rank}. {s.title} [{s.track_id}] score {s.score:.3f}, offset {s.offset_s:.2f} s, "
                     f"{s.cuts_on_beat}/{s.cuts_total} cuts on beat — {s.rationale}")
    return "\n".join(lines)


def _record(ctx: JobContext, res, text: str) -> None:  # noqa: ANN001
    """Log the query and its candidates for the preference queue; never fails the job."""
    from engines.feedback.recent import record

    record(ctx.home, "video", {
        "video": res.video, "text": text, "session_id": res.session_id, "start": res.start, "end": res.end,
        "matcher": res.matcher,
        "candidates": [{"path": s.path, "title": s.title, "track_id": s.track_id, "offset_s": s.offset_s,
                        "score": s.score, "rank": s.rank} for s in res.suggestions]})


def match(ctx: JobContext, *, video: str, text: str = "", top: int = 5, start: float | None = None,
          end: float | None = None, matcher: str = "default", prefs: bool | None = None) -> Result:
    from engines.feedback.rerank import apply_preferences
    from engines.video2music.engine import MatchRequest

    res = _engine(ctx, matcher).match(MatchRequest(video=video, text=text or "", top=top, start=start,
                                                   end=end), ctx)
    res = apply_preferences(ctx.home, res, enabled=prefs)
    _record(ctx, res, text or "")
    return Result(data=res.to_dict(), message=_summary(res))


def refine(ctx: JobContext, *, session_id: str, text: str, prefs: bool | None = None) -> Result:
    from engines.feedback.rerank import apply_preferences

    res = _engine(ctx).refine(session_id, text, ctx)
    res = apply_preferences(ctx.home, res, enabled=prefs)
    _record(ctx, res, text)
    return Result(data=res.to_dict(), message=_summary(res))


def learn(ctx: JobContext, *, folder: str, epochs: int = 300, seed: int = 0) -> Result:
    from engines.video2music.train import learn_from_folder

    report = learn_from_folder(ctx.home, folder, epochs=epochs, seed=seed, ctx=ctx)
    return Result(data=report, files=[report["model_dir"]], message=report["message"])


def export(ctx: JobContext, *, session_id: str, rank: int, out: str, mux: bool = False,
           whole: bool = False, under: bool = False) -> Result:
    from engines.core.errors import ParameterError
    from engines.video2music import export as X
    from engines.video2music.engine import Engine

    state, s = Engine(ctx.home).suggestion(session_id, rank)
    v = state["video"]
    outp = Path(out).expanduser()
    if not outp.is_absolute():
        outp = ctx.home.exports / outp
    ctx.progress(0.1, f"exporting '{s['title']}'")
    if mux:
        if outp.suffix.lower() not in (".mp4", ".m4v", ".mov"):
            raise ParameterError("with --mux the output must be an .mp4 file", path=outp)
        X.export_mp4(v["path"], s["path"], outp, start=float(v["start"]), end=float(v["end"]),
                     offset=float(s["offset_s"]), mode="under" if under else "replace")
    else:
        if outp.suffix.lower() != ".wav":
            raise ParameterError("the output must be a .wav file (or use --mux with .mp4)", path=outp)
        bits = ctx.home.load_settings().wav_bits
        X.export_wav(s["path"], outp, offset=float(s["offset_s"]),
                     duration=None if whole else float(v["end"]) - float(v["start"]), bits=bits)
    ctx.progress(1.0, "exported")
    return Result(data={"path": str(outp), "track_id": s["track_id"], "title": s["title"],
                        "offset_s": s["offset_s"], "mux": mux, "whole": whole, "under": under},
                  files=[str(outp)], message=f"wrote {outp}")
