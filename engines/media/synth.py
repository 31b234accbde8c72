"""Render songs and MIDI files to audio with a SoundFont (tinysoundfont).

The bundled General MIDI SoundFont (``TimGM6mb.sf2`` from pretty_midi) is trusted. A user's
SoundFont is parsed once in a child process first (:func:`check_soundfont`): the native
parser can crash on malformed files, and a crash there must not take the app down.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from engines.core.errors import (
    CorruptFileError,
    NotFoundError,
    ParameterError,
    ResourceLimitError,
    UnsupportedFormatError,
)
from engines.media.midi import Song, Track, assign_channels, read_midi
from engines.media.safe import run_isolated

__all__ = [
    "MAX_RENDER_SECONDS",
    "check_soundfont",
    "default_soundfont",
    "render_midi_file",
    "render_song",
    "render_stems",
]

#: songs longer than this are refused
MAX_RENDER_SECONDS = 3 * 3600.0
_PEAK = 10 ** (-1 / 20)  # -1 dBFS
_BLOCK = 4096

_checked: dict[tuple[str, int, int], list[tuple[int, int, str]]] = {}
_lock = threading.Lock()


def default_soundfont() -> Path:
    """The General MIDI SoundFont bundled with pretty_midi (``TimGM6mb.sf2``)."""
    try:
        from importlib.resources import files

        path = Path(str(files("pretty_midi") / "TimGM6mb.sf2"))
    except (ImportError, ModuleNotFoundError, TypeError):
        import pretty_midi

        path = Path(pretty_midi.__file__).with_name("TimGM6mb.sf2")
    if not path.is_file():
        raise NotFoundError("the bundled SoundFont is missing; reinstall pretty_midi", path=path)
    return path


def _list_presets(path: str) -> list[tuple[int, int, str]]:
    """Load a SoundFont and list its presets (runs in a child process)."""
    import tinysoundfont

    synth = tinysoundfont.Synth(samplerate=22050)
    try:
        sfid = synth.sfload(path)
    except Exception as exc:  # tinysoundfont raises its own exception types
        raise CorruptFileError(f"not a usable SoundFont ({exc})", path=path) from None
    presets: list[tuple[int, int, str]] = []
    for bank in range(129):
        for program in range(128):
            try:
                name = synth.sfpreset_name(sfid, bank, program)
            except Exception:
                name = None
            if name is not None:
                presets.append((bank, program, str(name)))
    if not presets:
        raise CorruptFileError("the SoundFont has no presets", path=path)
    # a short render exercises the sample data too
    bank, program, _ = presets[0]
    synth.program_select(0, sfid, bank, program, is_drums=bank == 128)
    synth.noteon(0, 60, 100)
    synth.generate_simple(2048)
    return presets


def check_soundfont(path: str | os.PathLike[str], *, timeout: float = 20) -> list[tuple[int, int, str]]:
    """Parse a SoundFont in a child process and list its presets.

    The result is cached in this process by path, modification time and size.

    Parameters
    ----------
    path : str or PathLike
        An ``.sf2`` / ``.sf3`` file.
    timeout : float
        Seconds the parse may take.

    Returns
    -------
    list of (bank, program, name)
        Drum kits are in bank 128.

    Raises
    ------
    NotFoundError, UnsupportedFormatError
    CorruptFileError
        The file is malformed or crashed the parser.
    ResourceLimitError
        Parsing took longer than ``timeout`` or too much memory.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise NotFoundError("SoundFont not found", path=p)
    st = p.stat()
    if st.st_size == 0:
        raise CorruptFileError("empty file (0 bytes)", path=p)
    cache_key = (str(p.resolve()), st.st_mtime_ns, st.st_size)
    with _lock:
        if cache_key in _checked:
            return list(_checked[cache_key])
    with open(p, "rb") as fh:
        head = fh.read(12)
    if head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise UnsupportedFormatError("not a SoundFont (.sf2/.sf3) file", path=p)
    memory_mb = int(min(8192, 512 + 4 * st.st_size / 2**20))
    presets = run_isolated(_list_presets, str(p), timeout=timeout, memory_mb=memory_mb,
                           path_for_errors=p)
    with _lock:
        _checked[cache_key] = list(presets)
    return presets


def _resolve_soundfont(soundfont: str | os.PathLike[str] | None) -> tuple[Path, list[tuple[int, int, str]] | None]:
    if soundfont is None or str(soundfont) == "":
        return default_soundfont(), None
    p = Path(soundfont).expanduser()
    try:
        if p.resolve() == default_soundfont().resolve():
            return p, None
    except NotFoundError:
        pass
    return p, check_soundfont(p)


class _Renderer:
    def __init__(self, sr: int, soundfont: str | os.PathLike[str] | None) -> None:
        import tinysoundfont

        self.sr = sr
        self.path, self.presets = _resolve_soundfont(soundfont)
        self.synth = tinysoundfont.Synth(samplerate=sr)
        try:
            self.sfid = self.synth.sfload(str(self.path))
        except Exception as exc:
            raise CorruptFileError(f"the SoundFont cannot be loaded ({exc})", path=self.path) from None

    def _select(self, chan: int, track: Track) -> None:
        bank = 128 if track.is_drum else 0
        candidates = [(bank, track.program), (bank, 0), (0, track.program), (0, 0)]
        if self.presets:
            candidates += [(b, pr) for b, pr, _ in self.presets]
        for b, program in candidates:
            try:
                self.synth.program_select(chan, self.sfid, min(b, 127) if not track.is_drum else 0,
                                          program, is_drums=track.is_drum)
                return
            except Exception:
                continue
        raise CorruptFileError("the SoundFont has no preset this song can use", path=self.path)

    def render(self, tracks: list[Track], channels: list[int], tail: float) -> np.ndarray:
        """Interleaved stereo float32 of shape (n, 2), not normalised."""
        events: list[tuple[int, int, int, int, int]] = []  # (sample, order, chan, pitch, vel)
        end_s = 0.0
        for track, chan in zip(tracks, channels, strict=True):
            for n in track.notes:
                if not 0 <= n.pitch <= 127:
                    raise ParameterError(f"track {track.name!r}: pitch {n.pitch} is outside 0..127")
                on = int(round(max(0.0, n.start) * self.sr))
                off = max(on + 1, int(round(n.end * self.sr)))
                events.append((on, 1, chan, int(n.pitch), min(127, max(1, int(n.velocity)))))
                events.append((off, 0, chan, int(n.pitch), 0))
                end_s = max(end_s, n.end)
        if end_s > MAX_RENDER_SECONDS:
            raise ResourceLimitError(
                f"the song lasts {end_s / 3600:.1f} hours; at most {MAX_RENDER_SECONDS / 3600:.0f} h "
                "can be rendered"
            )
        events.sort()
        total = int(round((end_s + max(0.0, tail)) * self.sr)) + 1
        out = np.zeros((total, 2), dtype=np.float32)
        flat = out.reshape(-1)
        synth = self.synth

        def generate(a: int, b: int) -> None:
            while a < b:
                n = min(_BLOCK * 16, b - a)
                view = flat[2 * a:2 * (a + n)].data.cast("B")
                synth.generate_simple(n, buffer=view)
                a += n

        pos = 0
        for sample, order, chan, pitch, vel in events:
            if sample > pos:
                generate(pos, min(sample, total))
                pos = min(sample, total)
            if order:
                synth.noteon(chan, pitch, vel)
            else:
                synth.noteoff(chan, pitch)
        generate(pos, total)
        synth.sounds_off()
        return out


def _check_sr(sr: int) -> int:
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or not 8000 <= int(sr) <= 192000:
        raise ParameterError(f"sample rate must be 8000..192000 Hz, not {sr!r}")
    return int(sr)


def _shape(stereo_frames: np.ndarray, stereo: bool) -> np.ndarray:
    y = stereo_frames.T
    if not stereo:
        y = y.mean(axis=0, keepdims=True)
    return np.ascontiguousarray(y, dtype=np.float32)


def render_song(
    song: Song,
    *,
    sr: int = 44100,
    soundfont: str | os.PathLike[str] | None = None,
    stereo: bool = True,
    tail: float = 1.0,
) -> np.ndarray:
    """Render a :class:`~engines.media.midi.Song` with a SoundFont.

    Parameters
    ----------
    song : Song
    sr : int
        Sample rate in Hz.
    soundfont : path, optional
        ``.sf2``/``.sf3``; default :func:`default_soundfont`. A user SoundFont is checked
        in a child process first (:func:`check_soundfont`, cached).
    stereo : bool
        Two channels, else one.
    tail : float
        Seconds rendered after the last note ends (release and reverb tails).

    Returns
    -------
    np.ndarray, float32, shape (channels, n)
        ``channels`` is 2 (or 1); ``n = round((song.duration + tail) * sr) + 1``. Peak
        normalised to -1 dBFS (silence stays silent).
    """
    sr = _check_sr(sr)
    renderer = _Renderer(sr, soundfont)
    for track, chan in zip(song.tracks, assign_channels(song.tracks), strict=True):
        renderer._select(chan, track)
    frames = renderer.render(song.tracks, assign_channels(song.tracks), tail)
    peak = float(np.max(np.abs(frames))) if frames.size else 0.0
    if peak > 0:
        frames *= _PEAK / peak
    return _shape(frames, stereo)


def render_stems(
    song: Song,
    *,
    sr: int = 44100,
    soundfont: str | os.PathLike[str] | None = None,
    stereo: bool = True,
    tail: float = 1.0,
) -> dict[str, np.ndarray]:
    """Render each track on its own.

    All stems share one gain (the one that brings their sum to -1 dBFS) and one length,
    so they add up to the mix. Duplicate track names get `` (2)``, `` (3)``, ...

    Returns
    -------
    dict of str to np.ndarray, float32, shape (channels, n)
    """
    sr = _check_sr(sr)
    renderer = _Renderer(sr, soundfont)
    channels = assign_channels(song.tracks)
    end_s = song.duration
    raw: dict[str, np.ndarray] = {}
    for track, chan in zip(song.tracks, channels, strict=True):
        renderer.synth.sounds_off()
        renderer._select(chan, track)
        stem = renderer.render([track], [chan], tail + (end_s - max((n.end for n in track.notes), default=0.0)))
        name, k = track.name or "Track", 2
        while name in raw:
            name = f"{track.name or 'Track'} ({k})"
            k += 1
        raw[name] = stem
    if not raw:
        return {}
    n = max(s.shape[0] for s in raw.values())
    mix = np.zeros((n, 2), dtype=np.float32)
    for name, s in raw.items():
        if s.shape[0] < n:
            s = np.pad(s, ((0, n - s.shape[0]), (0, 0)))
            raw[name] = s
        mix += s
    peak = float(np.max(np.abs(mix)))
    gain = _PEAK / peak if peak > 0 else 1.0
    return {name: _shape(s * gain, stereo) for name, s in raw.items()}


def render_midi_file(
    path: str | os.PathLike[str],
    *,
    sr: int = 44100,
    soundfont: str | os.PathLike[str] | None = None,
    stereo: bool = True,
    tail: float = 1.0,
) -> np.ndarray:
    """Read a MIDI file (:func:`~engines.media.midi.read_midi`) and :func:`render_song` it."""
    return render_song(read_midi(path), sr=sr, soundfont=soundfont, stereo=stereo, tail=tail)
