"""MIDI files: a small song model, a guarded reader and a type-1 writer.

Reading uses a small Standard MIDI File parser written for hostile input: it counts events
as it goes, refuses files over :data:`MAX_FILE_BYTES`, too many events or a time span that
would take days, and keeps only what the app uses (notes, programs, names, tempo, metre and
key). Writing uses mido.
"""

from __future__ import annotations

import bisect
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from engines.core.atomic import atomic_path
from engines.core.errors import CorruptFileError, ParameterError, ResourceLimitError, UnsupportedFormatError
from engines.media._files import _existing_file

__all__ = [
    "MAX_FILE_BYTES",
    "Note",
    "Song",
    "Track",
    "assign_channels",
    "normalize_key",
    "read_midi",
    "write_midi",
]

MAX_FILE_BYTES = 50 * 2**20
DRUM_CHANNEL = 9

_MAJOR = ["Cb", "Gb", "Db", "Ab", "Eb", "Bb", "F", "C", "G", "D", "A", "E", "B", "F#", "C#"]
_MINOR = ["Abm", "Ebm", "Bbm", "Fm", "Cm", "Gm", "Dm", "Am", "Em", "Bm", "F#m", "C#m", "G#m", "D#m", "A#m"]
_ENHARMONIC = {
    "A#": "Bb", "D#": "Eb", "G#": "Ab", "E#": "F", "B#": "C", "Fb": "E",
    "Gbm": "F#m", "Dbm": "C#m", "Cbm": "Bm", "Fbm": "Em", "E#m": "Fm", "B#m": "Cm",
}


@dataclass
class Note:
    """One note. ``start``/``end`` in seconds, ``pitch`` and ``velocity`` 0..127."""

    pitch: int
    start: float
    end: float
    velocity: int = 100


@dataclass
class Track:
    """One instrument: a GM ``program`` (0..127), or drums (``is_drum``, MIDI channel 10)."""

    name: str
    program: int = 0
    is_drum: bool = False
    notes: list[Note] = field(default_factory=list)


@dataclass
class Song:
    """A piece of music.

    Attributes
    ----------
    tracks : list of Track
    tempo : float
        Initial tempo in quarter notes per minute (bpm).
    time_signature : (numerator, denominator)
    key : str
        ``"C"``, ``"Am"``, ``"F#m"``, ``"Bb"`` (major: a tonic; minor: a tonic and ``m``).
    ticks_per_beat : int
        Resolution used when writing MIDI.
    tempo_changes : list of (time in s, bpm)
        Tempo changes after the start (the tempo at 0 s is ``tempo``).
    title : str
        Written as the name of the conductor track.
    """

    tracks: list[Track] = field(default_factory=list)
    tempo: float = 120.0
    time_signature: tuple[int, int] = (4, 4)
    key: str = "C"
    ticks_per_beat: int = 480
    tempo_changes: list[tuple[float, float]] = field(default_factory=list)
    title: str = ""

    @property
    def duration(self) -> float:
        """Seconds until the last note ends."""
        return max((n.end for t in self.tracks for n in t.notes), default=0.0)


def normalize_key(key: str, *, path: str | os.PathLike[str] | None = None) -> str:
    """Return ``key`` in the spelling MIDI key signatures use (``"A#"`` -> ``"Bb"``)."""
    k = str(key).strip().replace("♯", "#").replace("♭", "b")
    low = k.lower()
    for word, suffix in ((" minor", "m"), (" min", "m"), (" major", ""), (" maj", "")):
        if low.endswith(word):
            k = k[: -len(word)].strip() + suffix
            break
    if k and k[0].islower():
        k = k[0].upper() + k[1:]
    k = _ENHARMONIC.get(k, k)
    if k not in _MAJOR and k not in _MINOR:
        raise ParameterError(f"unknown key {key!r}: use a tonic like 'C', 'Bb', 'F#' and 'm' for minor",
                             path=path)
    return k


def assign_channels(tracks: list[Track]) -> list[int]:
    """MIDI channel (0-based) for each track: drums on 9, others 0..15 skipping 9, cycling."""
    melodic = [c for c in range(16) if c != DRUM_CHANNEL]
    out, i = [], 0
    for t in tracks:
        if t.is_drum:
            out.append(DRUM_CHANNEL)
        else:
            out.append(melodic[i % len(melodic)])
            i += 1
    return out


# --------------------------------------------------------------------------- tempo map

class _TempoMap:
    """Piecewise-constant tempo: convert between ticks and seconds."""

    def __init__(self, tpb: int, changes: list[tuple[int, float]]) -> None:
        # changes: (tick, microseconds per quarter), first at tick 0
        self.tpb = tpb
        self.ticks = [c[0] for c in changes]
        self.uspq = [c[1] for c in changes]
        self.secs = [0.0]
        for i in range(1, len(changes)):
            self.secs.append(self.secs[-1] + (self.ticks[i] - self.ticks[i - 1]) * self.uspq[i - 1] / 1e6 / tpb)

    def to_seconds(self, tick: int) -> float:
        i = bisect.bisect_right(self.ticks, tick) - 1
        return self.secs[i] + (tick - self.ticks[i]) * self.uspq[i] / 1e6 / self.tpb

    def to_ticks(self, seconds: float) -> int:
        i = bisect.bisect_right(self.secs, seconds) - 1
        return int(round(self.ticks[i] + (seconds - self.secs[i]) * 1e6 * self.tpb / self.uspq[i]))


def _song_tempo_map(song: Song, p: Path) -> _TempoMap:
    tpb = int(song.ticks_per_beat)
    if not 24 <= tpb <= 32767:
        raise ParameterError(f"ticks_per_beat must be in 24..32767, not {tpb}", path=p)
    bpms = [(0.0, float(song.tempo))] + sorted((float(t), float(b)) for t, b in song.tempo_changes)
    for _, bpm in bpms:
        if not 1.0 <= bpm <= 2000.0:
            raise ParameterError(f"tempo must be 1..2000 bpm, not {bpm:g}", path=p)
    changes: list[tuple[int, float]] = [(0, 60e6 / bpms[0][1])]
    for t, bpm in bpms[1:]:
        if t < 0:
            raise ParameterError(f"tempo change at negative time {t:g} s", path=p)
        partial = _TempoMap(tpb, changes)
        tick = partial.to_ticks(t)
        if tick == changes[-1][0]:
            changes[-1] = (tick, 60e6 / bpm)
        else:
            changes.append((tick, 60e6 / bpm))
    return _TempoMap(tpb, changes)


# --------------------------------------------------------------------------- write

def write_midi(song: Song, path: str | os.PathLike[str]) -> Path:
    """Write ``song`` as a type-1 Standard MIDI File, atomically.

    Track 0 is the conductor track (title, tempo, time signature, key signature, tempo
    changes); then one track per instrument with its name and program change. Drum tracks
    use MIDI channel 10.

    Returns
    -------
    Path
        ``path``.
    """
    import mido

    p = Path(path).expanduser()
    tmap = _song_tempo_map(song, p)
    num, den = (int(x) for x in song.time_signature)
    if not (1 <= num <= 255 and den in (1, 2, 4, 8, 16, 32, 64)):
        raise ParameterError(f"impossible time signature {num}/{den}", path=p)
    key = normalize_key(song.key, path=p)

    mid = mido.MidiFile(type=1, ticks_per_beat=tmap.tpb)
    conductor = mido.MidiTrack()
    if song.title:
        conductor.append(mido.MetaMessage("track_name", name=song.title, time=0))
    conductor.append(mido.MetaMessage("set_tempo", tempo=int(round(tmap.uspq[0])), time=0))
    conductor.append(mido.MetaMessage("time_signature", numerator=num, denominator=den, time=0))
    conductor.append(mido.MetaMessage("key_signature", key=key, time=0))
    last = 0
    for tick, uspq in zip(tmap.ticks[1:], tmap.uspq[1:], strict=True):
        conductor.append(mido.MetaMessage("set_tempo", tempo=int(round(uspq)), time=tick - last))
        last = tick
    conductor.append(mido.MetaMessage("end_of_track", time=0))
    mid.tracks.append(conductor)

    for track, chan in zip(song.tracks, assign_channels(song.tracks), strict=True):
        program = int(track.program)
        if not 0 <= program <= 127:
            raise ParameterError(f"track {track.name!r}: program must be 0..127, not {program}", path=p)
        events: list[tuple[int, int, int, int]] = []  # (tick, order: off=0 on=1, pitch, velocity)
        for n in track.notes:
            if not 0 <= int(n.pitch) <= 127:
                raise ParameterError(f"track {track.name!r}: pitch {n.pitch} is outside 0..127", path=p)
            if n.start < 0 or n.end < n.start:
                raise ParameterError(
                    f"track {track.name!r}: note {n.pitch} has start {n.start:g} s and end {n.end:g} s",
                    path=p,
                )
            on = tmap.to_ticks(float(n.start))
            off = max(on + 1, tmap.to_ticks(float(n.end)))
            vel = min(127, max(1, int(n.velocity)))
            events.append((on, 1, int(n.pitch), vel))
            events.append((off, 0, int(n.pitch), 0))
        events.sort()
        mt = mido.MidiTrack()
        mt.append(mido.MetaMessage("track_name", name=track.name or "Track", time=0))
        mt.append(mido.Message("program_change", channel=chan, program=program, time=0))
        last = 0
        for tick, order, pitch, vel in events:
            kind = "note_on" if order else "note_off"
            mt.append(mido.Message(kind, channel=chan, note=pitch, velocity=vel if order else 64,
                                   time=tick - last))
            last = tick
        mt.append(mido.MetaMessage("end_of_track", time=0))
        mid.tracks.append(mt)

    with atomic_path(p) as tmp:
        mid.save(str(tmp))
    return p


# --------------------------------------------------------------------------- read

def _vlq(data: bytes, pos: int, end: int, p: Path) -> tuple[int, int]:
    value = 0
    for i in range(4):
        if pos >= end:
            raise EOFError
        b = data[pos]
        pos += 1
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            return value, pos
        if i == 3:
            break
    raise CorruptFileError("corrupt MIDI: a variable-length number is longer than 4 bytes", path=p)


def _key_name(sf: int, mi: int) -> str:
    if sf > 127:
        sf -= 256
    if not -7 <= sf <= 7:
        return ""
    return (_MINOR if mi else _MAJOR)[sf + 7]


def read_midi(
    path: str | os.PathLike[str],
    *,
    max_events: int = 2_000_000,
    max_seconds: float = 3 * 3600,
) -> Song:
    """Read a Standard MIDI File (type 0, 1 or 2) into a :class:`Song`.

    Parameters
    ----------
    path : str or PathLike
    max_events : int
        Refuse files with more MIDI events than this (all tracks together).
    max_seconds : float
        Refuse files whose events span longer than this (huge delta times).

    Returns
    -------
    Song
        One :class:`Track` per (MIDI track, channel) that plays notes; times in seconds.

    Raises
    ------
    NotFoundError, CorruptFileError
    UnsupportedFormatError
        Not a MIDI file.
    ResourceLimitError
        Over :data:`MAX_FILE_BYTES`, ``max_events`` or ``max_seconds``.
    """
    p = _existing_file(path)
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ResourceLimitError(
            f"MIDI file is {size / 2**20:.0f} MB; files over {MAX_FILE_BYTES // 2**20} MB are refused",
            path=p,
        )
    data = p.read_bytes()
    if data[:4] == b"RIFF" and data[8:12] == b"RMID":  # RIFF-wrapped MIDI
        i = data.find(b"MThd")
        data = data[i:] if i >= 0 else b""
    if data[:4] != b"MThd":
        raise UnsupportedFormatError("not a MIDI file (no 'MThd' header)", path=p)
    if len(data) < 14:
        raise CorruptFileError("truncated MIDI header", path=p)
    hlen, fmt, ntrks, division = struct.unpack(">IHHH", data[4:14])
    if hlen < 6 or fmt > 2:
        raise CorruptFileError(f"corrupt MIDI header (length {hlen}, format {fmt})", path=p)
    if division & 0x8000:  # SMPTE: ticks per second = frames per second * ticks per frame
        fps = 256 - (division >> 8)
        ticks_per_second = fps * (division & 0xFF)
        if ticks_per_second <= 0:
            raise CorruptFileError("corrupt MIDI header (SMPTE time division is zero)", path=p)
        tpb = 480
    else:
        ticks_per_second = 0
        tpb = division
        if tpb == 0:
            raise CorruptFileError("corrupt MIDI header (0 ticks per beat)", path=p)

    # -- pass over chunks and events -------------------------------------------------
    pos = 8 + hlen
    n_events = 0
    tempos: list[tuple[int, float]] = []
    time_sig: tuple[int, int] | None = None
    key = ""
    title = ""
    # per (track index, channel): notes as (on_tick, off_tick, pitch, vel); program; name
    raw_tracks: list[dict] = []
    track_index = 0
    max_tick = 0
    while pos + 8 <= len(data) and track_index < max(ntrks, 1) + 64:
        cid = data[pos:pos + 4]
        (clen,) = struct.unpack(">I", data[pos + 4:pos + 8])
        start = pos + 8
        end = min(len(data), start + clen)  # tolerate a length running past the end
        pos = start + clen
        if cid != b"MTrk":
            continue
        tick = 0
        status = 0
        name = ""
        programs: dict[int, int] = {}
        notes: dict[int, list[tuple[int, int, int, int]]] = {}
        pending: dict[tuple[int, int], list[tuple[int, int]]] = {}
        i = start
        try:
            while i < end:
                delta, i = _vlq(data, i, end, p)
                tick += delta
                n_events += 1
                if n_events > max_events:
                    raise ResourceLimitError(
                        f"the MIDI file has more than {max_events:,} events", path=p,
                    )
                b = data[i]
                if b == 0xFF:
                    mtype = data[i + 1]
                    length, i = _vlq(data, i + 2, end, p)
                    body = data[i:i + length]
                    i += length
                    if mtype == 0x2F:
                        break
                    if mtype == 0x51 and len(body) == 3:
                        uspq = int.from_bytes(body, "big")
                        if uspq > 0:
                            tempos.append((tick, float(uspq)))
                    elif mtype == 0x58 and len(body) >= 2 and time_sig is None:
                        if body[0] > 0 and body[1] <= 6:
                            time_sig = (body[0], 2 ** body[1])
                    elif mtype == 0x59 and len(body) == 2 and not key:
                        key = _key_name(body[0], body[1])
                    elif mtype == 0x03 and not name:
                        name = body.decode("latin-1", errors="replace").strip("\x00 ").strip()
                    continue
                if b in (0xF0, 0xF7):
                    length, i = _vlq(data, i + 1, end, p)
                    i += length
                    continue
                if b & 0x80:
                    status = b
                    i += 1
                elif not status:
                    raise CorruptFileError(
                        f"corrupt MIDI: data byte without a status in track {track_index}", path=p,
                    )
                kind = status & 0xF0
                chan = status & 0x0F
                if kind in (0xC0, 0xD0):
                    if i >= end:
                        raise EOFError
                    d1 = data[i]
                    i += 1
                    if kind == 0xC0:
                        programs.setdefault(chan, d1 & 0x7F)
                    continue
                if i + 2 > end:
                    raise EOFError
                d1, d2 = data[i] & 0x7F, data[i + 1] & 0x7F
                i += 2
                if kind == 0x90 and d2 > 0:
                    pending.setdefault((chan, d1), []).append((tick, d2))
                elif kind == 0x80 or kind == 0x90:
                    stack = pending.get((chan, d1))
                    if stack:
                        on_tick, vel = stack.pop(0)
                        notes.setdefault(chan, []).append((on_tick, tick, d1, vel))
        except (EOFError, IndexError):
            pass  # a track cut short: keep what was read
        for (chan, pitch), stack in pending.items():  # notes never released end with the track
            for on_tick, vel in stack:
                notes.setdefault(chan, []).append((on_tick, max(tick, on_tick + 1), pitch, vel))
        max_tick = max(max_tick, tick)
        if track_index == 0 and not notes and name:
            title = name
        raw_tracks.append({"name": name, "programs": programs, "notes": notes, "index": track_index})
        track_index += 1
    if not raw_tracks:
        raise CorruptFileError("corrupt MIDI: no track chunks", path=p)

    # -- timing ------------------------------------------------------------------------
    if ticks_per_second:
        tmap = _TempoMap(tpb, [(0, 1e6 * tpb / ticks_per_second)])
        tempos = []
    else:
        tempos.sort(key=lambda x: x[0])
        changes: list[tuple[int, float]] = [(0, tempos[0][1] if tempos and tempos[0][0] == 0 else 500000.0)]
        for tick_, us in tempos:
            if tick_ == changes[-1][0]:
                changes[-1] = (tick_, us)
            else:
                changes.append((tick_, us))
        tmap = _TempoMap(tpb, changes)
    span = tmap.to_seconds(max_tick)
    if span > max_seconds:
        raise ResourceLimitError(
            f"the MIDI file's events span {span / 3600:.1f} hours (limit {max_seconds / 3600:.1f} h)",
            path=p,
        )

    # -- tracks ------------------------------------------------------------------------
    tracks: list[Track] = []
    for rt in raw_tracks:
        chans = sorted(rt["notes"])
        for chan in chans:
            raw = sorted(rt["notes"][chan])
            name = rt["name"] or ("Drums" if chan == DRUM_CHANNEL else f"Track {rt['index']}")
            if len(chans) > 1:
                name = f"{name} (ch {chan + 1})"
            tracks.append(Track(
                name=name, program=rt["programs"].get(chan, 0), is_drum=chan == DRUM_CHANNEL,
                notes=[Note(pitch=pt, start=tmap.to_seconds(a), end=tmap.to_seconds(b), velocity=v)
                       for a, b, pt, v in raw],
            ))
    bpm = 60e6 / tmap.uspq[0]
    return Song(
        tracks=tracks,
        tempo=bpm,
        time_signature=time_sig or (4, 4),
        key=key or "C",
        ticks_per_beat=tpb,
        tempo_changes=[(tmap.secs[i], 60e6 / tmap.uspq[i]) for i in range(1, len(tmap.ticks))],
        title=title,
    )
