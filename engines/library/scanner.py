"""Incremental, parallel, resumable folder scanning into the catalog.

:func:`scan` walks files and folders, compares them with the catalog and

- analyses **new** files and files whose content **changed** (the track keeps its id),
- recognises **moved** files by content hash (new path, same id, no re-analysis),
- removes tracks whose file vanished from a scanned folder,
- skips unchanged files and files that failed before and did not change since.

Analysis runs in a pool of worker processes (one per core; each limited to one BLAS /
numba thread). Every track is committed as soon as it is analysed, so an interrupted
scan resumes where it stopped: the next scan skips what was already committed. A file
that cannot be read is reported (path and reason) and the batch goes on; a worker that
crashes in native code is replaced and its file retried once on its own.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engines.analysis.text import TextEmbedder, describe_track, shared_embedder
from engines.core.errors import EngineError, NotFoundError
from engines.core.jobs import JobContext
from engines.library.catalog import Catalog, content_hash

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = frozenset({
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".aif", ".aiff",
    ".aifc", ".wma", ".alac", ".caf", ".w64", ".mka",
})


def audio_extensions() -> frozenset[str]:
    try:
        from engines.media.audio import AUDIO_EXTENSIONS as media_ext  # type: ignore[import-not-found]
    except ImportError:
        return AUDIO_EXTENSIONS
    return AUDIO_EXTENSIONS | frozenset(e.lower() for e in media_ext)


@dataclass
class ScanReport:
    """What a scan did. ``failed`` lists ``{"path", "message"}`` for every file skipped."""

    added: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    moved: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    unchanged: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    resumed: bool = False
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    #: CPU time the analysis of the indexed tracks took in the workers (decode + features)
    analysis_cpu_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def indexed(self) -> int:
        return len(self.added) + len(self.updated)


# worker side -----------------------------------------------------------------------------

def _init_worker() -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS"):
        os.environ[var] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except Exception:  # pragma: no cover - threadpoolctl ships with scikit-learn
        pass


def read_tags(path: str) -> dict[str, str]:
    """``title, artist, album, genre`` from the file's tags (empty strings when absent)."""
    out = {"title": "", "artist": "", "album": "", "genre": ""}
    try:
        import mutagen

        f = mutagen.File(path, easy=True)
    except Exception:
        return out
    if f is None or not getattr(f, "tags", None):
        return out
    for k in out:
        try:
            v = f.tags.get(k)
        except Exception:
            v = None
        if v:
            out[k] = str(v[0] if isinstance(v, list) else v).strip()
    return out


def analyze_file(path: str) -> dict[str, Any]:
    """Decode and analyse one file; never raises (errors come back as ``{"ok": False}``)."""
    t0 = time.perf_counter()
    c0 = time.process_time()
    try:
        from engines.analysis.decode import load_mono
        from engines.analysis.features import ANALYSIS_SR, analyze_audio

        y = load_mono(path, sr=ANALYSIS_SR)
        feats = analyze_audio(y, ANALYSIS_SR)
        if feats.duration < 0.5:
            return {"ok": False, "path": path, "message": "shorter than half a second"}
        return {"ok": True, "path": path, "features": feats.to_dict(), "tags": read_tags(path),
                "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}
    except EngineError as exc:
        return {"ok": False, "path": path, "message": exc.problem}
    except MemoryError:
        return {"ok": False, "path": path, "message": "not enough memory to decode the file"}
    except Exception as exc:
        return {"ok": False, "path": path, "message": f"cannot analyse ({type(exc).__name__}: {exc})"}


# main side -------------------------------------------------------------------------------

def _walk(root: Path, exts: frozenset[str]) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in exts:
                yield Path(dirpath) / name


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


@dataclass
class _Job:
    path: str
    size: int
    mtime: float
    hash: str
    track_id: int | None
    tries: int = 0


def scan(
    ctx: JobContext,
    paths: Iterable[str | os.PathLike[str]],
    *,
    catalog: Catalog | None = None,
    workers: int | None = None,
    embedder: TextEmbedder | None = None,
    demo: bool = False,
    extra_tags: Mapping[str, Mapping[str, str]] | None = None,
    on_track: Callable[[int, dict[str, Any]], None] | None = None,
) -> ScanReport:
    """Bring the catalog up to date with ``paths`` (files and folders, recursively).

    Parameters
    ----------
    ctx : JobContext
        Progress (fraction of files analysed) and cancellation (checked between files).
    workers : int, optional
        Analysis processes; default one per core. 0 analyses in this process.
    demo : bool
        Mark new tracks as demo tracks.
    extra_tags : mapping, optional
        ``path -> tags`` merged over the file's own tags (the demo library uses it to
        name style and instruments).
    """
    t0 = time.perf_counter()
    cat = catalog or Catalog(ctx.home)
    report = ScanReport()
    exts = audio_extensions()
    extra = {str(Path(k).resolve()): dict(v) for k, v in (extra_tags or {}).items()}
    roots: list[str] = []
    found: dict[str, os.stat_result] = {}
    ctx.progress(0.0, "Looking for audio files", force=True)
    for p in paths:
        rp = Path(p).expanduser().resolve()
        if rp.is_dir():
            roots.append(str(rp))
            for f in _walk(rp, exts):
                try:
                    found[str(f)] = f.stat()
                except OSError as exc:
                    report.failed.append({"path": str(f), "message": f"cannot read ({exc.strerror})"})
        elif rp.is_file():
            roots.append(str(rp))
            found[str(rp)] = rp.stat()
        else:
            report.failed.append({"path": str(p), "message": "no such file or folder"})
        ctx.check()
    if not roots:
        raise NotFoundError("nothing to scan: " + ", ".join(str(p) for p in paths))

    states = cat.file_states()
    failures = cat.failures()
    queue: list[_Job] = []
    new: list[tuple[str, os.stat_result, str]] = []
    for path, st in found.items():
        ctx.check()
        prev = states.get(path)
        if prev is not None and prev[1] == st.st_size and prev[2] == st.st_mtime:
            report.unchanged += 1
            continue
        f = failures.get(path)
        if prev is None and f is not None and f[0] == st.st_size and f[1] == st.st_mtime:
            report.failed.append({"path": path, "message": f[2]})
            continue
        try:
            h = content_hash(path, st.st_size)
        except OSError as exc:
            report.failed.append({"path": path, "message": f"cannot read ({exc.strerror or exc})"})
            continue
        if prev is not None:
            if prev[3] == h:
                cat.touch_track(prev[0], size=st.st_size, mtime=st.st_mtime)
                report.unchanged += 1
            else:
                queue.append(_Job(path, st.st_size, st.st_mtime, h, prev[0]))
        else:
            new.append((path, st, h))

    # vanished files: a moved file keeps its id, the others leave the catalog
    missing: dict[str, int] = {}
    for path, (tid, _size, _mtime, h) in states.items():
        if path not in found and _under(path, roots) and not os.path.exists(path):
            missing.setdefault(h, tid)
    for path, st, h in new:
        if h in missing:
            tid = missing.pop(h)
            cat.move_track(tid, path=path, size=st.st_size, mtime=st.st_mtime)
            report.moved.append(tid)
        else:
            queue.append(_Job(path, st.st_size, st.st_mtime, h, None))
    if missing:
        ids = sorted(missing.values())
        cat.remove_tracks(ids)
        report.removed.extend(ids)

    resumed = False
    for r in roots:
        resumed |= cat.scan_started(r, len(queue))
    report.resumed = resumed

    if queue:
        emb = embedder or shared_embedder()
        done = 0

        def commit(job: _Job, res: dict[str, Any]) -> None:
            nonlocal done
            done += 1
            if not res.get("ok"):
                report.failed.append({"path": job.path, "message": str(res.get("message"))})
                cat.record_failure(job.path, size=job.size, mtime=job.mtime, message=str(res.get("message")))
            else:
                tags = dict(res["tags"])
                tags.update(extra.get(job.path, {}))
                feats = res["features"]
                if tags.get("style") or tags.get("instruments"):
                    feats.setdefault("extra", {}).update(
                        {k: tags[k] for k in ("style", "instruments") if tags.get(k)})
                if not tags.get("title"):
                    tags["title"] = Path(job.path).stem.replace("_", " ")
                desc = describe_track(feats, tags)
                vec = emb.embed_one(desc)
                tid = cat.put_track(path=job.path, size=job.size, mtime=job.mtime, content_hash=job.hash,
                                    tags=tags, features=feats, description=desc, embedding=vec.tobytes(),
                                    demo=demo, track_id=job.track_id)
                (report.updated if job.track_id is not None else report.added).append(tid)
                report.audio_seconds += float(feats.get("duration") or 0.0)
                report.analysis_cpu_seconds += float(res.get("cpu_seconds") or 0.0)
                if on_track is not None:
                    on_track(tid, res)
            for r in roots:
                if _under(job.path, [r]):
                    cat.scan_progress(r, done)
            ctx.progress(done / len(queue), f"Analysed {done}/{len(queue)}: {Path(job.path).name}")

        n_workers = (os.cpu_count() or 1) if workers is None else workers
        if n_workers <= 0 or len(queue) == 1:
            with _single_threaded_torch():
                _warm(emb)
                for job in queue:
                    ctx.check()
                    commit(job, analyze_file(job.path))
        else:
            _run_pool(ctx, queue, min(n_workers, len(queue)), commit, emb)
    for r in roots:
        cat.scan_finished(r)
    report.wall_seconds = time.perf_counter() - t0
    ctx.progress(1.0, f"Indexed {report.indexed} tracks", force=True)
    return report


@contextlib.contextmanager
def _single_threaded_torch() -> Iterator[None]:
    """One torch thread while the workers keep every core busy: the embedding of one short
    description gains nothing from more, and idle OpenMP threads spin and steal CPU from
    the analysis. The previous setting is restored afterwards."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def _warm(emb: TextEmbedder) -> None:
    try:
        emb.embed_one("warm up")
    except EngineError as exc:  # reported again when the first track is embedded
        log.warning("%s", exc)


def mp_context() -> Any:
    """How analysis workers start.

    ``spawn`` whenever ``__main__`` was started as a module (``python -m``: the engine
    host, pytest): re-importing it in a worker is harmless, and forking the host — which
    runs jobs in threads and may hold torch's thread pools — can deadlock on a lock held
    by another thread. ``fork`` on Linux otherwise: ``studio script FILE.py`` runs user
    scripts without a main guard, which ``spawn`` would re-run in every worker; the CLI is
    single-threaded and forks before the text model is loaded.
    """
    import multiprocessing as mp
    import sys

    main = sys.modules.get("__main__")
    if sys.platform.startswith("linux") and getattr(main, "__spec__", None) is None:
        return mp.get_context("fork")
    return mp.get_context("spawn")


def _ready() -> bool:
    return True


_preloaded = False


def _preload() -> None:
    """Run one tiny analysis here before the workers start.

    Forked workers inherit the compiled numba functions. Spawned workers load them from
    librosa's on-disk numba cache, which this call fills from one process: workers that
    compile the same functions at once can leave an inconsistent cache behind, and
    loading it later segfaults inside numba.
    """
    global _preloaded
    if not _preloaded:
        from engines.analysis.features import warm_numba_cache

        warm_numba_cache()
        _preloaded = True


def _make_pool(n: int) -> cf.ProcessPoolExecutor:
    _preload()
    pool = cf.ProcessPoolExecutor(max_workers=n, mp_context=mp_context(), initializer=_init_worker)
    for f in [pool.submit(_ready) for _ in range(n)]:  # start every worker now
        f.result()
    return pool


def _run_pool(ctx: JobContext, queue: list[_Job], n: int,
              commit: Callable[[_Job, dict[str, Any]], None], embedder: TextEmbedder | None = None) -> None:
    pending = list(reversed(queue))
    retry_alone: list[_Job] = []
    pool = _make_pool(n)  # fork before torch is imported here
    threads = _single_threaded_torch()
    threads.__enter__()
    if embedder is not None:  # load the text model while the workers analyse
        threading.Thread(target=_warm, args=(embedder,), daemon=True).start()
    inflight: dict[cf.Future[dict[str, Any]], _Job] = {}
    try:
        while pending or inflight or retry_alone:
            ctx.check()
            if retry_alone and not inflight:
                # a worker crashed: retry its files one at a time so the culprit is known
                job = retry_alone.pop()
                job.tries += 1
                inflight[pool.submit(analyze_file, job.path)] = job
            while not retry_alone and pending and len(inflight) < 2 * n:
                job = pending.pop()
                inflight[pool.submit(analyze_file, job.path)] = job
            done, _ = cf.wait(list(inflight), timeout=0.25, return_when=cf.FIRST_COMPLETED)
            broken = False
            for fut in done:
                job = inflight.pop(fut)
                try:
                    res = fut.result()
                except BrokenProcessPool:
                    broken = True
                    if job.tries >= 1:
                        commit(job, {"ok": False, "message": "the decoder crashed on this file"})
                    else:
                        retry_alone.append(job)
                    continue
                commit(job, res)
            if broken:
                for fut, job in inflight.items():
                    fut.cancel()
                    (retry_alone.append(job) if job.tries < 1 else
                     commit(job, {"ok": False, "message": "the decoder crashed on this file"}))
                inflight.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                pool = _make_pool(n)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        threads.__exit__(None, None, None)
