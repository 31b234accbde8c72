"""The Jobs dock: one row per job with title, progress, message, elapsed time and Cancel."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QDockWidget,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from studio.jobs import CANCELLED, DONE, FAILED, Job, JobClient

MAX_FINISHED_ROWS = 30


def fmt_elapsed(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else f"{seconds // 3600}h{seconds // 60 % 60:02d}"


def open_folder(path: str) -> bool:
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


class JobRow(QFrame):
    """The row of one job; buttons to cancel it or reach the files it produced."""

    def __init__(self, job: Job, client: JobClient, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.job = job
        self.client = client
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setObjectName("jobRow")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 6)
        lay.setSpacing(3)
        top = QHBoxLayout()
        self.title = QLabel(f"<b>{job.title}</b>")
        self.title.setToolTip(job.command_id)
        self.elapsed = QLabel("0:00")
        self.elapsed.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        top.addWidget(self.title, 1)
        top.addWidget(self.elapsed)
        lay.addLayout(top)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(8)
        lay.addWidget(self.bar)
        bottom = QHBoxLayout()
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bottom.addWidget(self.message, 1)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop this job")
        self.cancel_button.clicked.connect(lambda: self.client.cancel(self.job))
        self.open_button = QPushButton("Open folder")
        self.open_button.clicked.connect(self._open)
        self.copy_button = QPushButton("Copy path")
        self.copy_button.clicked.connect(self._copy)
        for b in (self.cancel_button, self.open_button, self.copy_button):
            b.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
            bottom.addWidget(b)
        lay.addLayout(bottom)
        job.changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        job = self.job
        self.bar.setValue(int(job.fraction * 1000))
        if job.state == FAILED:
            self.bar.setStyleSheet("QProgressBar::chunk { background: #d9534f; }")
            self.bar.setValue(1000)
        elif job.state == CANCELLED:
            self.bar.setStyleSheet("QProgressBar::chunk { background: #888; }")
        elif job.state == DONE:
            self.bar.setStyleSheet("QProgressBar::chunk { background: #3c9d5d; }")
        prefix = {FAILED: "Failed: ", CANCELLED: "Cancelled", DONE: "✓ "}.get(job.state, "")
        text = prefix + ("" if job.state == CANCELLED else job.message)
        self.message.setText(text)
        self.message.setToolTip(job.error_message or job.message)
        self.elapsed.setText(fmt_elapsed(job.elapsed))
        self.cancel_button.setVisible(not job.done)
        files = job.result.files if job.result else []
        self.open_button.setVisible(bool(files))
        self.copy_button.setVisible(bool(files))
        self.copy_button.setText("Copy paths" if len(files) > 1 else "Copy path")

    def detach(self) -> None:
        """Stop following the job (before the row is deleted)."""
        try:
            self.job.changed.disconnect(self.refresh)
        except (RuntimeError, TypeError):
            pass

    def _open(self) -> None:
        if self.job.result and self.job.result.files:
            open_folder(self.job.result.files[0])

    def _copy(self) -> None:
        if self.job.result and self.job.result.files:
            QGuiApplication.clipboard().setText("\n".join(self.job.result.files))


class JobsDock(QDockWidget):
    """Lists the visible jobs of a :class:`JobClient`, newest first."""

    rowAdded = Signal(object)  # JobRow

    def __init__(self, client: JobClient, parent: QWidget | None = None) -> None:
        super().__init__("Jobs", parent)
        self.setObjectName("jobsDock")
        self.client = client
        self.rows: dict[str, JobRow] = {}
        body = QWidget()
        outer = QVBoxLayout(body)
        outer.setContentsMargins(4, 4, 4, 4)
        head = QHBoxLayout()
        self.summary = QLabel("No jobs yet")
        self.clear_button = QPushButton("Clear finished")
        self.clear_button.clicked.connect(self.clear_finished)
        head.addWidget(self.summary, 1)
        head.addWidget(self.clear_button)
        outer.addLayout(head)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        inner = QWidget()
        self.list = QVBoxLayout(inner)
        self.list.setContentsMargins(0, 0, 0, 0)
        self.list.setSpacing(4)
        self.list.addStretch(1)
        self.scroll.setWidget(inner)
        outer.addWidget(self.scroll, 1)
        self.setWidget(body)
        self.setMinimumWidth(300)
        client.jobAdded.connect(self.add_job)
        self.timer = QTimer(self)
        self.timer.setInterval(500)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def add_job(self, job: Job) -> None:
        if not job.visible:
            return
        row = JobRow(job, self.client)
        self.rows[job.id] = row
        self.list.insertWidget(0, row)
        job.changed.connect(self._update_summary)
        self._trim()
        self._update_summary()
        self.rowAdded.emit(row)

    def row(self, job: Job) -> JobRow | None:
        return self.rows.get(job.id)

    def clear_finished(self) -> None:
        for job_id, row in list(self.rows.items()):
            if row.job.done:
                self._remove(job_id)
        self._update_summary()

    def _remove(self, job_id: str) -> None:
        row = self.rows.pop(job_id)
        row.detach()
        self.list.removeWidget(row)
        row.hide()
        row.deleteLater()

    def _trim(self) -> None:
        finished = [jid for jid, r in self.rows.items() if r.job.done]
        for jid in finished[:-MAX_FINISHED_ROWS] if len(finished) > MAX_FINISHED_ROWS else []:
            self._remove(jid)

    def _tick(self) -> None:
        for row in self.rows.values():
            if not row.job.done:
                row.elapsed.setText(fmt_elapsed(row.job.elapsed))

    def _update_summary(self) -> None:
        running = sum(1 for r in self.rows.values() if not r.job.done)
        total = len(self.rows)
        if not total:
            self.summary.setText("No jobs yet")
        elif running:
            self.summary.setText(f"{running} running, {total - running} finished")
        else:
            self.summary.setText(f"{total} finished")
