"""Public API: find the instruments of a mixture among the user's presets and samples.

::

    from engines.instruments.engine import Engine, FindRequest
    from engines.instruments.library import InstrumentLibrary

    engine = Engine.from_pretrained()              # or "debug" (tiny, random, for tests)
    lib = InstrumentLibrary(DataHome(), engine)
    lib.add(["~/SoundFonts/Strings.sf2", "~/Samples/OneShots"])
    result = engine.find(FindRequest("song.wav", start=30, end=60, top_k=5), library=lib)
    for slot in result.slots:
        print(slot.note, [(m.name, m.score) for m in slot.matches])

The mixture is cut into 3 s windows; the Multi-Instrument Encoder gives each window a set
of slot embeddings with a "present" probability and a register; present slots of all
windows are clustered (cosine) into detected instruments, and each is searched in the
library's faiss index (embeddings of every preset's probe phrases and every sample, made by
the Single-Instrument Encoder).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engines.core.errors import InputError, ModelError, ParameterError, ResourceLimitError
from engines.core.jobs import JobContext

if TYPE_CHECKING:
    from engines.instruments.library import InstrumentLibrary
    from engines.instruments.model import InstrumentModel

__all__ = ["Detection", "Engine", "FindRequest", "FindResult", "Match", "Slot", "MAX_QUERY_SECONDS"]

#: the longest region one search reads
MAX_QUERY_SECONDS = 600.0
#: a window quieter than this (RMS, dBFS) holds no instrument
SILENCE_DB = -60.0
#: present slots closer than this (cosine) are the same instrument
SAME_INSTRUMENT = 0.75


@dataclass(frozen=True)
class FindRequest:
    """Search the library for the instruments playing in ``audio`` (or its region)."""

    audio: str
    start: float | None = None
    end: float | None = None
    top_k: int = 5


@dataclass(frozen=True)
class Match:
    instrument_id: int
    name: str
    kind: str  # "preset" | "sample"
    source_path: str
    bank: int | None
    program: int | None
    sample_path: str | None
    score: float


@dataclass(frozen=True)
class Slot:
    """One instrument detected in the mixture.

    ``presence`` is the highest "present" probability; ``note`` the register (median MIDI
    pitch) of the part, used to audition presets; ``coverage`` the share of windows it was
    heard in.
    """

    index: int
    presence: float
    note: int
    coverage: float
    matches: tuple[Match, ...]


@dataclass(frozen=True)
class FindResult:
    audio: str
    start: float
    end: float
    slots: tuple[Slot, ...]
    warnings: tuple[str, ...] = ()
    model: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Detection:
    """An instrument heard in a mixture: unit embedding, presence, register, coverage."""

    embedding: np.ndarray
    presence: float
    note: float
    coverage: float
    members: list[int] = field(default_factory=list)


def _resolve_device(device: str | None) -> str:
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


class Engine:
    """The two encoders and how to use them. Stateless between calls (a request per call)."""

    def __init__(self, model: InstrumentModel, *, name: str, fingerprint: str, device: str = "cpu") -> None:
        self.model = model.to(device).eval()
        self.cfg = model.cfg
        self.name = name
        self.fingerprint = fingerprint
        self.device = device

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, name: str | os.PathLike[str] = "default", *, device: str | None = None) -> Engine:
        """Load ``"default"`` (the shipped model), ``"debug"`` (tiny, seeded, random) or a folder
        holding ``model.safetensors`` + ``config.json``."""
        import torch

        from engines.instruments import MODEL_DIR
        from engines.instruments.model import DEBUG_CONFIG, InstrumentModel, load

        dev = _resolve_device(device)
        if str(name) == "debug":
            with torch.random.fork_rng():
                torch.manual_seed(0)
                model = InstrumentModel(DEBUG_CONFIG)
            return cls(model.eval(), name="debug", fingerprint="debug-1", device=dev)
        folder = MODEL_DIR if str(name) == "default" else Path(name).expanduser()
        weights = folder / "model.safetensors"
        if not weights.is_file() or not (folder / "config.json").is_file():
            raise ModelError(
                "instrument model not found: expected model.safetensors and config.json "
                "(train it with `python -m engines.instruments.train`)", path=folder,
            )
        try:
            model = load(folder)
        except Exception as exc:  # a damaged or incompatible checkpoint
            raise ModelError(f"the instrument model cannot be loaded ({exc})", path=folder) from None
        st = weights.stat()
        with open(weights, "rb") as fh:
            digest = hashlib.sha1(fh.read(1 << 20) + str(st.st_size).encode()).hexdigest()[:12]
        return cls(model, name=str(name) if str(name) == "default" else folder.name,
                   fingerprint=f"{model.cfg.name}-{digest}", device=dev)

    @property
    def sr(self) -> int:
        return self.cfg.sr

    @property
    def window(self) -> int:
        return self.cfg.samples

    # ------------------------------------------------------------------ encoders
    def embed_clips(self, clips: np.ndarray, *, batch: int = 64) -> np.ndarray:
        """Single-Instrument Encoder embeddings of clips ``(n, samples)`` -> ``(n, D)`` unit rows."""
        import torch

        clips = np.asarray(clips, np.float32)
        if clips.ndim == 1:
            clips = clips[None]
        out = []
        with torch.inference_mode():
            for i in range(0, len(clips), batch):
                y = torch.from_numpy(clips[i:i + batch]).to(self.device)
                out.append(self.model.single(y).float().cpu().numpy())
        if not out:
            return np.zeros((0, self.cfg.emb_dim), np.float32)
        return np.concatenate(out).astype(np.float32)

    def embed_instrument(self, clips: np.ndarray) -> np.ndarray:
        """One unit embedding for an instrument heard in several clips (mean, renormalised)."""
        e = self.embed_clips(clips).mean(axis=0)
        n = float(np.linalg.norm(e))
        return (e / n if n > 0 else e).astype(np.float32)

    def encode_mixtures(self, windows: np.ndarray, *, batch: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Multi-Instrument Encoder on windows ``(n, samples)``: embeddings (n, S, D), present
        probabilities (n, S), registers in MIDI pitch (n, S)."""
        import torch

        embs, probs, notes = [], [], []
        with torch.inference_mode():
            for i in range(0, len(windows), batch):
                y = torch.from_numpy(np.asarray(windows[i:i + batch], np.float32)).to(self.device)
                e, logit, pitch = self.model.multi(y)
                embs.append(e.float().cpu().numpy())
                probs.append(torch.sigmoid(logit).float().cpu().numpy())
                notes.append(pitch.float().cpu().numpy())
        return np.concatenate(embs), np.concatenate(probs), np.concatenate(notes)

    def windows(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cut mono audio into full windows (the last one zero-padded); and which are not silent."""
        n = self.window
        count = max(1, int(np.ceil(len(y) / n)))
        if count > 1 and len(y) - (count - 1) * n < n // 3:
            count -= 1  # a short tail joins nothing: drop it
        w = np.zeros((count, n), np.float32)
        for i in range(count):
            seg = y[i * n:(i + 1) * n]
            w[i, :len(seg)] = seg
        rms = np.sqrt(np.mean(w.astype(np.float64) ** 2, axis=1) + 1e-20)
        return w, 20 * np.log10(rms) > SILENCE_DB

    def detect(self, y: np.ndarray, *, threshold: float = 0.5) -> list[Detection]:
        """The instruments heard in mono audio ``y`` at :attr:`sr`, most present first."""
        w, loud = self.windows(np.asarray(y, np.float32))
        if not loud.any():
            return []
        w = w[loud]
        emb, prob, note = self.encode_mixtures(w)
        picked: list[tuple[float, int, int]] = []
        for i in range(len(w)):
            on = np.flatnonzero(prob[i] >= threshold)
            if on.size == 0:  # a window that is not silent holds at least one instrument
                on = np.array([int(np.argmax(prob[i]))])
            picked += [(float(prob[i, s]), i, int(s)) for s in on]
        picked.sort(reverse=True)
        clusters: list[dict[str, Any]] = []
        for p, i, s in picked:
            e = emb[i, s]
            best, best_sim = None, SAME_INSTRUMENT
            for c in clusters:
                if i in c["windows"]:
                    # two slots of one window are two instruments, unless nearly identical
                    if float(e @ c["centroid"]) < 0.9:
                        continue
                sim = float(e @ c["centroid"])
                if sim > best_sim:
                    best, best_sim = c, sim
            if best is None:
                best = {"sum": np.zeros_like(e), "w": 0.0, "windows": set(), "p": [], "notes": []}
                clusters.append(best)
            best["sum"] = best["sum"] + p * e
            best["w"] += p
            best["windows"].add(i)
            best["p"].append(p)
            best["notes"].append(float(note[i, s]))
            best["centroid"] = best["sum"] / max(1e-9, float(np.linalg.norm(best["sum"])))
        out = [Detection(embedding=c["centroid"].astype(np.float32), presence=max(c["p"]),
                         note=float(np.median(c["notes"])), coverage=len(c["windows"]) / len(w),
                         members=sorted(c["windows"])) for c in clusters]
        out.sort(key=lambda d: (d.coverage * d.presence), reverse=True)
        return out

    # ------------------------------------------------------------------ search
    def find(self, request: FindRequest, *, library: InstrumentLibrary, ctx: JobContext | None = None) -> FindResult:
        """Detect the instruments of ``request.audio`` and search each in ``library``.

        Raises
        ------
        NotFoundError, CorruptFileError, UnsupportedFormatError
            The audio cannot be read.
        ParameterError
            A region outside the file, ``start >= end`` or ``top_k < 1``.
        ResourceLimitError
            The region is longer than :data:`MAX_QUERY_SECONDS`.
        InputError
            The audio (region) is silent.
        """
        from engines.media.audio import audio_info, load_audio

        if ctx is not None:
            ctx.progress(0.0, "reading audio")
        if request.top_k < 1:
            raise ParameterError(f"top must be at least 1, not {request.top_k}")
        info = audio_info(request.audio)
        path = str(info.path)
        start = 0.0 if request.start is None else float(request.start)
        if start < 0 or not np.isfinite(start):
            raise ParameterError(f"start must be a time >= 0 s, not {request.start}", path=path)
        if info.duration > 0 and start >= info.duration:
            raise ParameterError(
                f"the region starts at {start:g} s but the file is only {info.duration:.3f} s long", path=path)
        end = info.duration if request.end is None else min(float(request.end), info.duration or float(request.end))
        if request.end is not None and float(request.end) <= start:
            raise ParameterError(f"the region is empty: start {start:g} s is not before end {request.end:g} s",
                                 path=path)
        if end - start > MAX_QUERY_SECONDS:
            raise ResourceLimitError(
                f"the {'file' if request.start is None and request.end is None else 'region'} lasts "
                f"{_fmt_duration(end - start)}; instrument search reads at most "
                f"{MAX_QUERY_SECONDS / 60:.0f} min: choose a region with --start/--end", path=path)
        y = load_audio(path, sr=self.sr, mono=True, start=request.start, end=request.end,
                       max_duration=MAX_QUERY_SECONDS)
        warnings = _check_level(y, path)
        if library.count() == 0:
            warnings.append("the instrument library is empty: add SoundFonts or sample folders first "
                            "(studio instruments add PATH)")
        stale = library.stale_sources()
        if stale:
            warnings.append(f"{len(stale)} source(s) were indexed with another model and are not searched: "
                            "add them again")
        if ctx is not None:
            ctx.check()
            ctx.progress(0.3, "listening for instruments")
        detections = self.detect(y)
        if ctx is not None:
            ctx.check()
            ctx.progress(0.8, "searching the library")
        slots = []
        for i, d in enumerate(detections):
            matches = library.search(d.embedding, k=request.top_k)
            slots.append(Slot(index=i, presence=round(d.presence, 4), note=int(round(np.clip(d.note, 0, 127))),
                              coverage=round(d.coverage, 3), matches=tuple(matches)))
        if ctx is not None:
            ctx.progress(1.0, f"{len(slots)} instrument(s) found")
        return FindResult(audio=path, start=start, end=round(start + len(y) / self.sr, 3), slots=tuple(slots),
                          warnings=tuple(warnings), model=self.fingerprint)


def _fmt_duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


def _check_level(y: np.ndarray, path: str) -> list[str]:
    """Refuse silence; warn about clipping."""
    if y.size == 0:
        raise InputError("the audio region holds no samples", path=path)
    peak = float(np.max(np.abs(y)))
    if not np.isfinite(peak) or peak < 10 ** (SILENCE_DB / 20):
        raise InputError("the audio is silent: there is no instrument to find", path=path)
    clipped = float(np.mean(np.abs(y) >= 0.999 * max(peak, 0.99)))
    if peak >= 0.99 and clipped > 0.001:
        return [f"{path}: {100 * clipped:.1f}% of the samples are clipped; matches may be less accurate"]
    return []
