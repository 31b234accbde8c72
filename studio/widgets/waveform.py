"""A waveform overview: peaks (0..1) mirrored around the centre, beat ticks and a playhead."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget


class WaveformView(QWidget):
    """Paints ``peaks`` over ``duration`` seconds; click to seek."""

    seekRequested = Signal(float)  # seconds

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.peaks: list[float] = []
        self.beats: list[float] = []
        self.duration = 0.0
        self.position = 0.0
        self.placeholder = "Select a track to see its waveform"
        self.setMinimumHeight(90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Click to move the playhead")

    def sizeHint(self) -> QSize:
        return QSize(600, 120)

    def set_track(self, peaks: Sequence[float], beats: Sequence[float], duration: float) -> None:
        self.peaks = [max(0.0, min(1.0, float(v))) for v in peaks]
        self.beats = [float(b) for b in beats]
        self.duration = max(0.0, float(duration or 0.0))
        self.position = 0.0
        self.update()

    def clear(self, placeholder: str | None = None) -> None:
        self.peaks, self.beats, self.duration, self.position = [], [], 0.0, 0.0
        if placeholder is not None:
            self.placeholder = placeholder
        self.update()

    def set_position(self, seconds: float) -> None:
        self.position = max(0.0, float(seconds))
        self.update()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self.duration > 0 and event.button() == Qt.MouseButton.LeftButton:
            x = event.position().x() / max(1, self.width())
            self.seekRequested.emit(max(0.0, min(1.0, x)) * self.duration)
        super().mousePressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: ARG002
        pal = self.palette()
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        rect = QRectF(self.rect())
        p.fillRect(rect, pal.color(QPalette.ColorRole.Base))
        if not self.peaks:
            p.setPen(pal.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text))
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter, self.placeholder)
            p.end()
            return
        w, h = rect.width(), rect.height()
        mid = h / 2
        dark = pal.color(QPalette.ColorRole.Base).lightness() < 128
        rest = QColor(96, 165, 245) if dark else QColor(40, 105, 190)
        played = QColor(255, 176, 80) if dark else QColor(215, 110, 20)
        n = len(self.peaks)
        frac = self.position / self.duration if self.duration > 0 else 0.0
        bar = w / n
        for i, v in enumerate(self.peaks):
            x = i * bar
            amp = max(1.0, v * (mid - 6))
            color = played if (i + 0.5) / n <= frac else rest
            p.fillRect(QRectF(x, mid - amp, max(1.0, bar * 0.8), 2 * amp), color)
        if self.duration > 0 and self.beats:
            tick = QColor(pal.color(QPalette.ColorRole.Text))
            tick.setAlpha(110)
            p.setPen(QPen(tick, 1))
            for b in self.beats:
                if 0 <= b <= self.duration:
                    x = b / self.duration * w
                    p.drawLine(QPointF(x, 0), QPointF(x, 5))
                    p.drawLine(QPointF(x, h - 5), QPointF(x, h))
        if self.duration > 0:
            x = frac * w
            p.setPen(QPen(QColor(255, 110, 80), 2))
            p.drawLine(QPointF(x, 0), QPointF(x, h))
        p.end()
