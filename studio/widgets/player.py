"""Play / stop one file with QMediaPlayer; degrades gracefully without an audio device."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtMultimedia import QAudioOutput, QMediaDevices, QMediaPlayer


class Player(QObject):
    """A thin wrapper: ``load(path)``, ``toggle()``, ``stop()``, position in seconds.

    ``available`` is False when the system has no audio output device: play/stop still
    change state (and the playhead still moves where the backend allows) and
    ``notice`` says why nothing is heard.
    """

    stateChanged = Signal(bool)  # playing
    positionChanged = Signal(float)  # seconds
    notice = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.player = QMediaPlayer(self)
        self.output: QAudioOutput | None = None
        self.available = bool(QMediaDevices.audioOutputs())
        if self.available:
            self.output = QAudioOutput(self)
            self.player.setAudioOutput(self.output)
        self.path: str = ""
        self.playing = False
        self.player.positionChanged.connect(lambda ms: self.positionChanged.emit(ms / 1000.0))
        self.player.playbackStateChanged.connect(self._on_state)
        self.player.errorOccurred.connect(lambda _e, text: self.notice.emit(f"Cannot play this file: {text}"))

    def load(self, path: str) -> None:
        if path == self.path:
            return
        self.stop()
        self.path = path
        self.player.setSource(QUrl.fromLocalFile(path) if path and Path(path).is_file() else QUrl())

    def play(self) -> None:
        if not self.path or not Path(self.path).is_file():
            self.notice.emit("The file of this track is missing; it cannot be played.")
            return
        if not self.available:
            self.notice.emit("No audio output device is available: playback is silent.")
        self.player.play()
        self._set(True)

    def stop(self) -> None:
        self.player.stop()
        self._set(False)
        self.positionChanged.emit(0.0)

    def toggle(self) -> None:
        if self.playing:
            self.stop()
        else:
            self.play()

    def seek(self, seconds: float) -> None:
        self.player.setPosition(int(seconds * 1000))
        self.positionChanged.emit(seconds)

    def _on_state(self, state: QMediaPlayer.PlaybackState) -> None:
        if state == QMediaPlayer.PlaybackState.StoppedState and self.playing:
            self._set(False)

    def _set(self, playing: bool) -> None:
        if playing != self.playing:
            self.playing = playing
            self.stateChanged.emit(playing)
