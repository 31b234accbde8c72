"""A read-only piano roll: one colour per track, a chord lane, bar lines, a drum lane, a playhead."""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

#: track colours, in order (readable on dark and light backgrounds)
TRACK_COLORS = ("#4fa3ff", "#ff9f43", "#2ecc71", "#e056fd", "#f6e05e", "#ff6b6b", "#48dbfb", "#a29bfe",
                "#badc58", "#fd79a8")


def track_color(index: int) -> QColor:
    return QColor(TRACK_COLORS[index % len(TRACK_COLORS)])


@dataclass
class RollTrack:
    """What the roll draws of one track; ``notes`` are ``(pitch, start_s, end_s, velocity)``."""

    name: str
    color: QColor
    notes: list[tuple[int, float, float, int]] = field(default_factory=list)
    is_drum: bool = False
    audible: bool = True


class PianoRoll(QWidget):
    """Notes of several tracks over time; ``set_position(seconds)`` moves the playhead.

    Clicking asks for a seek (``seekRequested(seconds)``).
    """

    seekRequested = Signal(float)

    CHORD_H = 22
    DRUM_H = 34
    MARGIN = 6

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tracks: list[RollTrack] = []
        self.chords: list[str] = []
        self.bar_seconds = 0.0
        self.beats_per_bar = 4
        self.duration = 0.0
        self.position = 0.0
        self.message = "Nothing generated yet"
        self.setMinimumHeight(180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    # data ------------------------------------------------------------------------
    def clear(self, message: str = "") -> None:
        self.tracks = []
        self.chords = []
        self.duration = 0.0
        self.position = 0.0
        self.message = message
        self.update()

    def set_roll(self, tracks: list[RollTrack], *, tempo: float, meter: tuple[int, int],
                 chords: list[str], duration: float | None = None) -> None:
        """Show ``tracks``; bars follow ``tempo`` (quarter notes per minute) and ``meter``."""
        self.tracks = list(tracks)
        self.chords = [str(c) for c in chords]
        num, den = meter
        self.beats_per_bar = max(1, int(num))
        self.bar_seconds = num * (4.0 / max(1, den)) * 60.0 / max(1e-6, float(tempo))
        end = max((n[2] for t in tracks for n in t.notes), default=0.0)
        self.duration = max(float(duration or 0.0), end, 1e-3)
        self.position = 0.0
        self.message = "" if any(t.notes for t in tracks) else "The result has no notes"
        self.update()

    def set_audible(self, flags: list[bool]) -> None:
        for t, on in zip(self.tracks, flags, strict=False):
            t.audible = on
        self.update()

    def set_position(self, seconds: float) -> None:
        self.position = max(0.0, float(seconds))
        self.update()

    def note_count(self) -> int:
        return sum(len(t.notes) for t in self.tracks)

    @property
    def bars(self) -> int:
        if self.bar_seconds <= 0:
            return 0
        return max(1, round(self.duration / self.bar_seconds + 0.49))

    # geometry ----------------------------------------------------------------------
    def _has_drums(self) -> bool:
        return any(t.is_drum and t.notes for t in self.tracks)

    def _x(self, seconds: float, width: float) -> float:
        total = max(self.duration, self.bars * self.bar_seconds) or 1.0
        return self.MARGIN + seconds / total * (width - 2 * self.MARGIN)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self.duration > 0 and event.button() == Qt.MouseButton.LeftButton:
            total = max(self.duration, self.bars * self.bar_seconds)
            frac = (event.position().x() - self.MARGIN) / max(1.0, self.width() - 2 * self.MARGIN)
            self.seekRequested.emit(max(0.0, min(1.0, frac)) * total)
        super().mousePressEvent(event)

    # painting ----------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: ARG002
        p = QPainter(self)
        pal = self.palette()
        bg = pal.color(QPalette.ColorRole.Base)
        fg = pal.color(QPalette.ColorRole.Text)
        p.fillRect(self.rect(), bg)
        w, h = float(self.width()), float(self.height())
        if not self.tracks or not any(t.notes for t in self.tracks):
            dim = QColor(fg)
            dim.setAlpha(140)
            p.setPen(dim)
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.message)
            return
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        top = float(self.CHORD_H)
        drums = self._has_drums()
        bottom = h - (self.DRUM_H if drums else 0) - 4
        roll = QRectF(0, top, w, max(10.0, bottom - top))

        # pitch range of the melodic tracks
        pitches = [n[0] for t in self.tracks if not t.is_drum for n in t.notes]
        lo = (min(pitches) if pitches else 48) - 2
        hi = (max(pitches) if pitches else 72) + 2
        span = max(12, hi - lo + 1)
        row_h = roll.height() / span

        # octave shading (C rows) and lane backgrounds
        lane = QColor(fg)
        lane.setAlpha(14)
        for pitch in range(lo, lo + span):
            if pitch % 12 in (1, 3, 6, 8, 10):  # black keys
                y = roll.bottom() - (pitch - lo + 1) * row_h
                p.fillRect(QRectF(0, y, w, row_h), lane)
        chord_bg = QColor(fg)
        chord_bg.setAlpha(22)
        p.fillRect(QRectF(0, 0, w, top - 2), chord_bg)
        if drums:
            p.fillRect(QRectF(0, bottom + 2, w, self.DRUM_H - 4), chord_bg)

        # bar and beat lines, chord symbols
        bars = self.bars
        beat_pen = QPen(QColor(fg.red(), fg.green(), fg.blue(), 22), 1)
        bar_pen = QPen(QColor(fg.red(), fg.green(), fg.blue(), 70), 1)
        font = p.font()
        font.setBold(True)
        p.setFont(font)
        fm = p.fontMetrics()
        for b in range(bars + 1):
            x = self._x(b * self.bar_seconds, w)
            p.setPen(bar_pen)
            p.drawLine(QPointF(x, 0), QPointF(x, h))
            if b < bars:
                p.setPen(beat_pen)
                for k in range(1, self.beats_per_bar):
                    xb = self._x((b + k / self.beats_per_bar) * self.bar_seconds, w)
                    p.drawLine(QPointF(xb, top), QPointF(xb, bottom))
                if self.chords:
                    x2 = self._x((b + 1) * self.bar_seconds, w)
                    label = self.chords[b % len(self.chords)]
                    p.setPen(fg)
                    if fm.horizontalAdvance(label) < x2 - x - 2:
                        p.drawText(QRectF(x + 4, 0, x2 - x - 4, top - 2),
                                   Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, label)

        # notes
        p.setPen(Qt.PenStyle.NoPen)
        drum_pitches = sorted({n[0] for t in self.tracks if t.is_drum for n in t.notes})
        for t in self.tracks:
            color = QColor(t.color)
            if not t.audible:
                color.setAlpha(45)
            for pitch, start, end, vel in t.notes:
                x0 = self._x(start, w)
                x1 = max(x0 + 2.0, self._x(end, w) - 0.5)
                if t.is_drum:
                    k = drum_pitches.index(pitch) if pitch in drum_pitches else 0
                    dh = (self.DRUM_H - 8) / max(1, len(drum_pitches))
                    y = bottom + 4 + k * dh
                    c = QColor(color)
                    c.setAlphaF(color.alphaF() * (0.45 + 0.55 * vel / 127))
                    p.setBrush(c)
                    p.drawRect(QRectF(x0, y, 2.0, max(1.5, dh - 0.5)))
                    continue
                y = roll.bottom() - (pitch - lo + 1) * row_h
                c = QColor(color)
                c.setAlphaF(color.alphaF() * (0.55 + 0.45 * vel / 127))
                p.setBrush(c)
                p.drawRoundedRect(QRectF(x0, y + 0.5, x1 - x0, max(2.0, row_h - 1)), 1.5, 1.5)

        # playhead
        if self.position > 0:
            x = self._x(self.position, w)
            p.setPen(QPen(pal.color(QPalette.ColorRole.Highlight), 2))
            p.drawLine(QPointF(x, 0), QPointF(x, h))
