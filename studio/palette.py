"""The command palette (Ctrl+Shift+P, Ctrl+K) and the parameter form of any command.

Every registered command appears — a plugin's as much as a built-in one — matched by
fuzzy subsequence scoring on its id and title, recent commands first. A command with
parameters opens a form generated from its :class:`~engines.core.registry.Param` kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QKeyEvent, QKeySequence, QPainter, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from engines.core.errors import EngineError
from engines.core.registry import Command, Param, Registry

INT_LIMIT = 2_000_000_000


# --- fuzzy matching -------------------------------------------------------------------

def fuzzy_score(query: str, text: str) -> float | None:
    """Score ``query`` as a subsequence of ``text`` (higher is better); ``None`` if it is not one.

    Consecutive characters, matches at word starts (after ``.``, space, ``_`` or ``-``)
    and an early first match score higher; every word of a multi-word query must match.
    """
    query = query.strip().lower()
    if not query:
        return 0.0
    total = 0.0
    for word in query.split():
        s = _subsequence_score(word, text.lower())
        if s is None:
            return None
        total += s
    return total


def _subsequence_score(q: str, t: str) -> float | None:
    if q in t:  # a plain substring beats any scattered match
        i = t.index(q)
        start = i == 0 or t[i - 1] in " ._-"
        return 10.0 * len(q) + (8.0 if start else 0.0) - 0.05 * i
    score, pos, prev = 0.0, 0, -2
    first = -1
    for ch in q:
        i = t.find(ch, pos)
        if i < 0:
            return None
        if first < 0:
            first = i
        score += 1.0
        if i == prev + 1:
            score += 3.0
        if i == 0 or t[i - 1] in " ._-":
            score += 2.5
        prev, pos = i, i + 1
    return score - 0.05 * first


def rank_commands(commands: list[Command], query: str, recent: list[str]) -> list[Command]:
    """Commands matching ``query``, best first; recent ones first (or boosted when typing)."""
    rank = {cid: i for i, cid in enumerate(recent)}
    scored = []
    for c in commands:
        s = fuzzy_score(query, f"{c.title} {c.id}")
        if s is None:
            continue
        boost = (len(recent) - rank[c.id]) * (1.0 if query.strip() else 100.0) if c.id in rank else 0.0
        scored.append((-(s + boost), c.id, c))
    return [c for *_, c in sorted(scored, key=lambda x: (x[0], x[1]))]


# --- palette --------------------------------------------------------------------------

ROLE_COMMAND = Qt.ItemDataRole.UserRole + 1
ROLE_RECENT = Qt.ItemDataRole.UserRole + 2


class _CommandDelegate(QStyledItemDelegate):
    def sizeHint(self, option: QStyleOptionViewItem,
                 index: QModelIndex | QPersistentModelIndex) -> QSize:  # noqa: ARG002
        return QSize(option.rect.width(), max(34, option.fontMetrics.height() * 2 + 4))

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        command: Command = index.data(ROLE_COMMAND)
        pal = option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        painter.save()
        if selected:
            painter.fillRect(option.rect, pal.color(QPalette.ColorRole.Highlight))
        fg = pal.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text)
        dim = QColor(fg)
        dim.setAlpha(150)
        r = option.rect.adjusted(10, 0, -10, 0)
        font = QFont(option.font)
        painter.setFont(font)
        painter.setPen(fg)
        title = command.title + ("   · recent" if index.data(ROLE_RECENT) else "")
        painter.drawText(r.adjusted(0, 0, -160, 0), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                         title)
        small = QFont(option.font)
        small.setPointSizeF(max(7.0, option.font.pointSizeF() * 0.85))
        painter.setFont(small)
        painter.setPen(dim)
        right = command.id
        if command.shortcut:
            seq = QKeySequence(command.shortcut).toString(QKeySequence.SequenceFormat.NativeText)
            right = f"{command.id}    {seq}"
        painter.drawText(r, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, right)
        painter.restore()


class CommandPalette(QDialog):
    """A search field over every command; Enter runs the highlighted one.

    Emits :attr:`commandChosen` with the command id; the window decides how to run it
    (a parameter form first when the command has parameters).
    """

    commandChosen = Signal(str)

    def __init__(self, registry: Registry, recent: Callable[[], list[str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.registry = registry
        self.recent = recent
        self.setWindowTitle("Command palette")
        self.setObjectName("commandPalette")
        self.setModal(True)
        self.resize(640, 420)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Type a command (fuzzy: 'ladd' finds Library › Add) — Enter runs it")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.refresh)
        self.search.installEventFilter(self)
        lay.addWidget(self.search)
        self.list = QListWidget()
        self.list.setItemDelegate(_CommandDelegate(self.list))
        self.list.setUniformItemSizes(True)
        self.list.itemActivated.connect(lambda item: self._choose(item))
        lay.addWidget(self.list, 1)
        self.hint = QLabel()
        self.hint.setEnabled(False)
        lay.addWidget(self.hint)
        self.refresh()

    def open_palette(self) -> None:
        self.search.clear()
        self.refresh()
        parent = self.parentWidget()
        if parent is not None:
            geo = parent.geometry()
            self.move(geo.x() + (geo.width() - self.width()) // 2, geo.y() + 60)
        self.show()
        self.raise_()
        self.activateWindow()
        self.search.setFocus()

    def commands(self) -> list[Command]:
        """The commands listed now, in order."""
        return [self.list.item(i).data(ROLE_COMMAND) for i in range(self.list.count())]

    def refresh(self) -> None:
        query = self.search.text()
        recent = self.recent()
        self.list.clear()
        for c in rank_commands(self.registry.all(), query, recent):
            item = QListWidgetItem(c.title)
            item.setData(ROLE_COMMAND, c)
            item.setData(ROLE_RECENT, c.id in recent[:5])
            item.setToolTip(c.description or c.title)
            self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)
        n = self.list.count()
        self.hint.setText(f"{n} command{'s' if n != 1 else ''} · ↑↓ to choose · Enter to run · Esc to close"
                          if n else "No command matches. Try fewer letters.")

    def eventFilter(self, obj: Any, event: Any) -> bool:
        if obj is self.search and isinstance(event, QKeyEvent) and event.type() == QKeyEvent.Type.KeyPress:
            key = event.key()
            if key in (Qt.Key.Key_Down, Qt.Key.Key_Up, Qt.Key.Key_PageDown, Qt.Key.Key_PageUp):
                step = {Qt.Key.Key_Down: 1, Qt.Key.Key_Up: -1, Qt.Key.Key_PageDown: 8, Qt.Key.Key_PageUp: -8}[key]
                row = max(0, min(self.list.count() - 1, self.list.currentRow() + step))
                self.list.setCurrentRow(row)
                return True
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self._choose(self.list.currentItem())
                return True
        return super().eventFilter(obj, event)

    def choose(self, command_id: str) -> None:
        """Pick ``command_id`` as if the user had (used by tests and scripts)."""
        for i in range(self.list.count()):
            if self.list.item(i).data(ROLE_COMMAND).id == command_id:
                self._choose(self.list.item(i))
                return
        raise KeyError(command_id)

    def _choose(self, item: QListWidgetItem | None) -> None:
        if item is None:
            return
        command: Command = item.data(ROLE_COMMAND)
        self.accept()
        self.commandChosen.emit(command.id)


# --- parameter form -------------------------------------------------------------------

class PathEdit(QWidget):
    """A line edit with file / folder pickers (``multi`` for a list of paths)."""

    def __init__(self, *, multi: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.multi = multi
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.edit: QLineEdit | QPlainTextEdit
        if multi:
            self.edit = QPlainTextEdit()
            self.edit.setPlaceholderText("one path per line")
            self.edit.setFixedHeight(70)
        else:
            self.edit = QLineEdit()
        lay.addWidget(self.edit, 1)
        files = QPushButton("Files…" if multi else "File…")
        files.clicked.connect(self._pick_files)
        folder = QPushButton("Folder…")
        folder.clicked.connect(self._pick_folder)
        lay.addWidget(files)
        lay.addWidget(folder)

    def _pick_files(self) -> None:
        if self.multi:
            paths, _ = QFileDialog.getOpenFileNames(self, "Choose files")
            self.add(paths)
        else:
            path, _ = QFileDialog.getOpenFileName(self, "Choose a file")
            if path:
                self.set_value(path)

    def _pick_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose a folder")
        if path:
            self.add([path]) if self.multi else self.set_value(path)

    def add(self, paths: list[str]) -> None:
        self.set_value([*self.value(), *paths] if self.multi else (paths[0] if paths else ""))

    def set_value(self, value: Any) -> None:
        if isinstance(self.edit, QPlainTextEdit):
            items = [value] if isinstance(value, str) else list(value or [])
            self.edit.setPlainText("\n".join(str(v) for v in items))
        else:
            self.edit.setText("" if value is None else str(value))

    def value(self) -> Any:
        if isinstance(self.edit, QPlainTextEdit):
            return [ln.strip() for ln in self.edit.toPlainText().splitlines() if ln.strip()]
        return self.edit.text().strip()


def editor_for(param: Param) -> QWidget:
    """A widget editing one parameter, initialised with its default."""
    w: QWidget
    if param.kind == "int":
        w = QSpinBox()
        w.setRange(int(param.minimum) if param.minimum is not None else -INT_LIMIT,
                   int(param.maximum) if param.maximum is not None else INT_LIMIT)
        w.setValue(int(param.default) if param.default is not None else max(0, w.minimum()))
    elif param.kind == "float":
        w = QDoubleSpinBox()
        w.setDecimals(3)
        w.setRange(param.minimum if param.minimum is not None else -1e9,
                   param.maximum if param.maximum is not None else 1e9)
        span = w.maximum() - w.minimum()
        w.setSingleStep(0.05 if span <= 2 else 1.0)
        w.setValue(float(param.default) if param.default is not None else max(0.0, w.minimum()))
    elif param.kind == "bool":
        w = QCheckBox()
        w.setChecked(bool(param.default))
    elif param.kind == "choice":
        w = QComboBox()
        w.addItems(list(param.choices))
        if param.default in param.choices:
            w.setCurrentText(str(param.default))
    elif param.kind in ("path", "paths"):
        w = PathEdit(multi=param.kind == "paths")
        if param.default:
            w.set_value(param.default)
    else:
        w = QLineEdit()
        if param.default is not None:
            w.setText(str(param.default))
        if param.required:
            w.setPlaceholderText("required")
    w.setObjectName(f"param_{param.name}")
    w.setToolTip(param.help or param.name)
    return w


def editor_value(param: Param, w: QWidget) -> Any:
    if isinstance(w, QSpinBox | QDoubleSpinBox):
        return w.value()
    if isinstance(w, QCheckBox):
        return w.isChecked()
    if isinstance(w, QComboBox):
        return w.currentText()
    if isinstance(w, PathEdit):
        v = w.value()
        return v if v or param.required else None
    if isinstance(w, QLineEdit):
        return w.text() or None  # empty: the default (or "missing" when required)
    raise TypeError(type(w).__name__)


def set_editor_value(w: QWidget, value: Any) -> None:
    if isinstance(w, QSpinBox):
        w.setValue(int(value))
    elif isinstance(w, QDoubleSpinBox):
        w.setValue(float(value))
    elif isinstance(w, QCheckBox):
        w.setChecked(bool(value))
    elif isinstance(w, QComboBox):
        w.setCurrentText(str(value))
    elif isinstance(w, PathEdit):
        w.set_value(value)
    elif isinstance(w, QLineEdit):
        w.setText(str(value))


class ParamForm(QDialog):
    """A form for a command's parameters; OK validates with :meth:`Command.bind`."""

    def __init__(self, command: Command, parent: QWidget | None = None,
                 initial: dict[str, Any] | None = None) -> None:
        super().__init__(parent)
        self.command = command
        self.setWindowTitle(command.title)
        self.setObjectName("paramForm")
        lay = QVBoxLayout(self)
        head = QLabel(f"<b>{command.title}</b><br><span style='color:gray'>{command.id}</span>"
                      + (f"<br>{command.description}" if command.description else ""))
        head.setWordWrap(True)
        lay.addWidget(head)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        self.editors: dict[str, QWidget] = {}
        for p in command.params:
            w = editor_for(p)
            if initial and p.name in initial:
                set_editor_value(w, initial[p.name])
            self.editors[p.name] = w
            label = p.name.replace("_", " ").capitalize() + (" *" if p.required else "")
            lbl = QLabel(label)
            lbl.setToolTip(p.help)
            form.addRow(lbl, w)
        lay.addLayout(form)
        self.error = QLabel()
        self.error.setObjectName("formError")
        self.error.setStyleSheet("color: #e0524f;")
        self.error.setWordWrap(True)
        self.error.hide()
        lay.addWidget(self.error)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Run")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        self.setMinimumWidth(460)
        self.params: dict[str, Any] = {}

    def values(self) -> dict[str, Any]:
        out = {}
        for p in self.command.params:
            v = editor_value(p, self.editors[p.name])
            if v is not None:
                out[p.name] = v
        return out

    def accept(self) -> None:
        values = self.values()
        try:
            self.command.bind(values)
        except EngineError as exc:
            self.error.setText(str(exc))
            self.error.show()
            return
        self.params = values
        super().accept()
