"""The command palette (Ctrl+Shift+P): every action of the menus, with its shortcut, filtered as
you type (all words must match, in any order); Enter runs the selected one."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QHeaderView, QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout


def menu_actions(menubar) -> list[tuple[str, QAction]]:
    """(label "Menu: Action", action) for every enabled-or-not action under the menu bar."""
    out = []

    def walk(menu, prefix):
        for act in menu.actions():
            if act.isSeparator():
                continue
            if act.menu() is not None:
                walk(act.menu(), f"{prefix}{act.text().replace('&', '')}: ")
            elif act.text():
                out.append((prefix + act.text().replace("&", "").rstrip("…"), act))

    for top in menubar.actions():
        if top.menu() is not None:
            walk(top.menu(), f"{top.text().replace('&', '')}: ")
    return out


class CommandPalette(QDialog):
    def __init__(self, window):
        super().__init__(window, Qt.Popup | Qt.FramelessWindowHint)
        self.setObjectName("command_palette")
        self.filter = QLineEdit(placeholderText="Type a command")
        self.list = QTreeWidget(columnCount=2, headerHidden=True, rootIsDecorated=False)
        self.list.header().setSectionResizeMode(0, QHeaderView.Stretch)
        self.list.header().setSectionResizeMode(1, QHeaderView.ResizeToContents)
        self.list.header().setStretchLastSection(False)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(self.filter)
        lay.addWidget(self.list)
        self.actions_ = menu_actions(window.menuBar())
        for label, act in self.actions_:
            keys = act.shortcut().toString(QKeySequence.NativeText)
            item = QTreeWidgetItem([label, keys])
            item.setData(0, Qt.UserRole, act)
            item.setToolTip(0, act.statusTip() or label)
            item.setForeground(1, self.palette().placeholderText())
            self.list.addTopLevelItem(item)
        self.filter.textChanged.connect(self._filter)
        self.filter.returnPressed.connect(self.run_selected)
        self.list.itemActivated.connect(lambda *_: self.run_selected())
        self.filter.installEventFilter(self)
        self.resize(min(640, window.width() - 40), 420)
        self.move(window.mapToGlobal(window.rect().center()).x() - self.width() // 2,
                  window.mapToGlobal(window.rect().topLeft()).y() + 60)
        self._filter("")

    def labels(self, visible_only: bool = True) -> list[str]:
        items = [self.list.topLevelItem(i) for i in range(self.list.topLevelItemCount())]
        return ["\t".join(filter(None, (it.text(0), it.text(1)))) for it in items
                if not (visible_only and it.isHidden())]

    def _filter(self, text: str) -> None:
        words = text.lower().split()
        first = None
        for i in range(self.list.topLevelItemCount()):
            item = self.list.topLevelItem(i)
            hide = not all(w in f"{item.text(0)} {item.text(1)}".lower() for w in words)
            item.setHidden(hide)
            if not hide and first is None:
                first = item
        if first is not None:
            self.list.setCurrentItem(first)

    def eventFilter(self, obj, event) -> bool:
        if event.type() == event.Type.KeyPress and event.key() in (Qt.Key_Down, Qt.Key_Up):
            self.list.keyPressEvent(event)  # arrows move the selection while typing
            return True
        return super().eventFilter(obj, event)

    def run_selected(self) -> None:
        item = self.list.currentItem()
        if item is None or item.isHidden():
            return
        self.accept()
        act = item.data(0, Qt.UserRole)
        if act.isEnabled():
            act.trigger()
