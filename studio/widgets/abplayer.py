"""A/B playback on one clock: two candidate tracks and, for video pairs, the clip.

Both tracks play at once and only the chosen side is heard, so switching A ⇄ B is
instant and keeps the position. The position is *pair time*: seconds from the start
of the audio for plain pairs, or from the clip's in point for video pairs, where each
track plays from its own offset (``track position = offset + pair time``) and the clip
is the master clock. Every play, pause, switch and seek is reported through
:attr:`ABPlayer.listened` so the caller can log what the rater listened to.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtMultimedia import QAudioOutput, QMediaDevices, QMediaPlayer, QVideoSink

SIDES = ("a", "b")
#: re-align the side switched to when it drifted more than this from the clock (s)
RESYNC_S = 0.06


def _ready(mp: QMediaPlayer) -> bool:
    """Whether ``mp`` has its media loaded (so ``setPosition`` takes effect now)."""
    return mp.mediaStatus() in (QMediaPlayer.MediaStatus.LoadedMedia, QMediaPlayer.MediaStatus.BufferedMedia,
                                QMediaPlayer.MediaStatus.BufferingMedia, QMediaPlayer.MediaStatus.EndOfMedia)


class ABPlayer(QObject):
    """Two tracks (``"a"``, ``"b"``) and an optional video clip, heard one side at a time."""

    positionChanged = Signal(float)  # pair time, seconds
    stateChanged = Signal(bool)  # playing
    sideChanged = Signal(str)  # "a" | "b"
    listened = Signal(str, str, float)  # action, side, pair-time position
    notice = Signal(str)

    def __init__(self, video_sink: QVideoSink | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.available = bool(QMediaDevices.audioOutputs())
        self.players: dict[str, QMediaPlayer] = {}
        self.outputs: dict[str, QAudioOutput] = {}
        for side in SIDES:
            mp = QMediaPlayer(self)
            if self.available:
                out = QAudioOutput(self)
                mp.setAudioOutput(out)
                self.outputs[side] = out
            mp.positionChanged.connect(lambda ms, s=side: self._on_track_position(s, ms))
            mp.mediaStatusChanged.connect(lambda st, s=side: self._on_track_status(s, st))
            mp.errorOccurred.connect(lambda _e, text, s=side: self.notice.emit(
                f"Cannot play {s.upper()}: {text}"))
            self.players[side] = mp
        self.clip = QMediaPlayer(self)  # no audio output: the clip is seen, the music is heard
        if video_sink is not None:
            self.clip.setVideoOutput(video_sink)
        self.clip.positionChanged.connect(self._on_clip_position)
        self.clip.mediaStatusChanged.connect(self._on_clip_status)
        self.clip.errorOccurred.connect(lambda _e, text: self.notice.emit(f"Cannot play the clip: {text}"))
        self.paths: dict[str, str] = {"a": "", "b": ""}
        self.offsets: dict[str, float] = {"a": 0.0, "b": 0.0}
        self.durations: dict[str, float] = {"a": 0.0, "b": 0.0}
        self.video = ""
        self.video_start = 0.0
        self.video_end = 0.0
        self.side = "a"
        self.playing = False
        self._pos = 0.0
        self._pending: dict[str, float] = {}
        self._clip_pending: float | None = None
        self._poster = False
        for side in SIDES:
            self.players[side].durationChanged.connect(
                lambda ms, s=side: self.durations.__setitem__(s, max(0.0, ms / 1000.0)))
        self._apply_volumes()

    # loading -------------------------------------------------------------------------
    def load(self, a: str, b: str, *, a_offset: float = 0.0, b_offset: float = 0.0, video: str = "",
             video_start: float = 0.0, video_end: float = 0.0) -> None:
        """Load a pair; the position goes back to 0 and side A is selected."""
        self.pause(log=False)
        self.paths = {"a": str(a or ""), "b": str(b or "")}
        self.offsets = {"a": max(0.0, float(a_offset or 0.0)), "b": max(0.0, float(b_offset or 0.0))}
        self.durations = {"a": 0.0, "b": 0.0}
        self._pending = {}
        for side in SIDES:
            path = self.paths[side]
            self.players[side].setSource(QUrl.fromLocalFile(path) if path and Path(path).is_file() else QUrl())
        self.video = str(video or "")
        self.video_start = max(0.0, float(video_start or 0.0))
        self.video_end = max(0.0, float(video_end or 0.0))
        self._poster = bool(self.video)
        self.clip.setSource(QUrl.fromLocalFile(self.video) if self.video and Path(self.video).is_file() else QUrl())
        self._pos = 0.0
        self._seek_all(0.0)
        self.side = "a"
        self._apply_volumes()
        self.sideChanged.emit(self.side)
        self.positionChanged.emit(0.0)

    def unload(self) -> None:
        self.pause(log=False)
        for mp in (*self.players.values(), self.clip):
            mp.setSource(QUrl())
        self.paths = {"a": "", "b": ""}
        self.video = ""
        self._pos = 0.0
        self.positionChanged.emit(0.0)

    @property
    def loaded(self) -> bool:
        return bool(self.paths["a"] or self.paths["b"])

    @property
    def has_video(self) -> bool:
        return bool(self.video)

    def duration(self) -> float:
        """Length of the pair in pair time: the clip's window, or the longer track."""
        if self.has_video:
            clip_len = (self.video_end or self.clip.duration() / 1000.0) - self.video_start
            if clip_len > 0:
                return clip_len
        return max([self.durations[s] - self.offsets[s] for s in SIDES] + [0.0])

    # the clock ---------------------------------------------------------------------------
    def position(self) -> float:
        """Pair time in seconds."""
        return self._pos

    def track_position(self, side: str) -> float:
        """Where ``side``'s player is (seconds into its own file)."""
        if side in self._pending:
            return self._pending[side]
        return self.players[side].position() / 1000.0

    def _seek_all(self, t: float) -> None:
        for side in SIDES:
            self._seek_track(side, t)
        if self.has_video:
            self._clip_pending = None if _ready(self.clip) else self.video_start + t
            self.clip.setPosition(int((self.video_start + t) * 1000))

    def _seek_track(self, side: str, t: float) -> None:
        target = self.offsets[side] + t
        mp = self.players[side]
        if _ready(mp):
            self._pending.pop(side, None)
        else:
            self._pending[side] = target  # applied once the file is loaded
        mp.setPosition(int(round(target * 1000)))

    def _on_track_status(self, side: str, status: QMediaPlayer.MediaStatus) -> None:
        if status in (QMediaPlayer.MediaStatus.LoadedMedia, QMediaPlayer.MediaStatus.BufferedMedia) \
                and side in self._pending:
            self.players[side].setPosition(int(round(self._pending.pop(side) * 1000)))
            if self.playing:
                self.players[side].play()
        elif status == QMediaPlayer.MediaStatus.EndOfMedia and side == self.side and self.playing \
                and not self.has_video:
            self._pos = max(self._pos, self.durations[side] - self.offsets[side])
            self.pause()
            self.positionChanged.emit(self._pos)
        elif status == QMediaPlayer.MediaStatus.InvalidMedia:
            self.notice.emit(f"{side.upper()} cannot be played: {Path(self.paths[side]).name}")

    def _on_track_position(self, side: str, ms: int) -> None:
        if side != self.side or not self.playing or self.has_video or side in self._pending:
            return
        self._pos = max(0.0, ms / 1000.0 - self.offsets[side])
        self.positionChanged.emit(self._pos)

    def _on_clip_position(self, ms: int) -> None:
        if not self.playing or self._clip_pending is not None:
            return
        self._pos = max(0.0, ms / 1000.0 - self.video_start)
        self.positionChanged.emit(self._pos)
        if self.video_end > 0 and ms / 1000.0 >= self.video_end:
            self.pause()

    def _on_clip_status(self, status: QMediaPlayer.MediaStatus) -> None:
        if status in (QMediaPlayer.MediaStatus.LoadedMedia, QMediaPlayer.MediaStatus.BufferedMedia):
            if self._clip_pending is not None:
                self.clip.setPosition(int(self._clip_pending * 1000))
                self._clip_pending = None
            if self._poster and not self.playing:
                self._poster = False
                self.clip.pause()  # shows the frame at the in point
        elif status == QMediaPlayer.MediaStatus.EndOfMedia and self.playing:
            self.pause()

    # transport -------------------------------------------------------------------------------
    def play(self) -> None:
        if not self.loaded or self.playing:
            return
        if not self.paths[self.side] or not Path(self.paths[self.side]).is_file():
            self.notice.emit(f"The audio of {self.side.upper()} is missing; it cannot be played.")
            return
        if not self.available:
            self.notice.emit("No audio output device is available: playback is silent.")
        end = self.duration()
        if end > 0 and self._pos >= end - 0.05:
            self._pos = 0.0
        self._seek_all(self._pos)
        self.playing = True
        self._apply_volumes()
        for side in SIDES:
            if self.paths[side]:
                self.players[side].play()
        if self.has_video:
            self.clip.play()
        self.stateChanged.emit(True)
        self.listened.emit("play", self.side, self._pos)

    def pause(self, *, log: bool = True) -> None:
        if not self.playing:
            return
        for mp in (*self.players.values(), self.clip):
            mp.pause()
        self.playing = False
        self.stateChanged.emit(False)
        if log:
            self.listened.emit("pause", self.side, self._pos)

    def toggle(self) -> None:
        if self.playing:
            self.pause()
        else:
            self.play()

    def seek(self, t: float) -> None:
        """Move the shared playhead to pair time ``t`` (both sides and the clip follow)."""
        end = self.duration()
        t = max(0.0, min(float(t), end) if end > 0 else float(t))
        self._pos = t
        self._seek_all(t)
        self.positionChanged.emit(t)
        self.listened.emit("seek", self.side, t)

    def switch(self, side: str) -> None:
        """Hear ``side`` from the same position (a no-op when it is already heard)."""
        if side not in SIDES or side == self.side:
            return
        self.side = side
        if self.playing:
            # it was playing silently: re-align only if it drifted
            expected = self.offsets[side] + self._pos
            if abs(self.track_position(side) - expected) > RESYNC_S:
                self._seek_track(side, self._pos)
        else:
            self._seek_track(side, self._pos)
        self._apply_volumes()
        self.sideChanged.emit(side)
        self.listened.emit("switch", side, self._pos)

    def _apply_volumes(self) -> None:
        for side, out in self.outputs.items():
            out.setMuted(side != self.side)
