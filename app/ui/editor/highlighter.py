"""Pygments highlighting that keeps the lexer's state per block.

Qt asks to highlight one block (line) at a time and re-runs the next block only when a block's
end state changes. For a pygments RegexLexer the state is its stack of states, so each block is
lexed alone, starting from the stack the previous block ended with, and the stack it ends with
becomes the block's state. Editing or appending a line re-lexes that line (and the following
ones only while their starting state changes), never the whole document.

Lazy mode (the editor's): before the first paint only the first INITIAL_BLOCKS blocks (more than
a screen) are lexed; later blocks get the PENDING state and no formats. After the first paint an
idle timer lexes the rest a slice at a time, so a large file shows at once and colours fill in.

Streaming: when a line grows again within BURST_S of its last lexing (tokens arriving from the
model), it keeps the colours it had and is lexed once the burst has gone on for BURST_S (colours
trail the text by at most that), so a line is lexed once every few tokens instead of once per
token. Typing (slower) is lexed at once.

Pygments' RegexLexer keeps its stack in a local variable; `_lex_line` is its state machine
(pygments.lexer.RegexLexer.get_tokens_unprocessed) with the stack passed in and handed back.
"""
from __future__ import annotations

import time

from pygments.lexer import RegexLexer
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename, guess_lexer, guess_lexer_for_filename
from pygments.styles import get_style_by_name
from pygments.token import Error, Text, Token, _TokenType
from pygments.util import ClassNotFound
from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor, QFont, QSyntaxHighlighter, QTextCharFormat, QTextCursor

INITIAL_BLOCKS = 300     # lexed before the first paint: a screen and a generous margin
PENDING = -2             # a block's state until the idle pass has lexed it
SLICE_S = 0.008          # idle work per timer tick: typing stays responsive
BURST_S = 0.1            # a line growing faster than this is lexed at most 10 times a second
TOKEN_CHARS = 64         # growth up to this is a token (more is a paste or a new text: lexed at once)


def lexer_for(filename: str | None, text: str = ""):
    try:
        if filename:
            try:  # by the name alone: imports one lexer, where guessing imports them all (1.6 s)
                return get_lexer_for_filename(filename, stripnl=False)
            except ClassNotFound:
                return guess_lexer_for_filename(filename, text[:4000], stripnl=False)
        if text.strip():
            return guess_lexer(text[:4000], stripnl=False)
    except ClassNotFound:
        pass
    return get_lexer_by_name("text", stripnl=False)


def _lex_line(lexer: RegexLexer, text: str, stack: tuple[str, ...]):
    tokendefs = lexer._tokens
    statestack = list(stack)
    statetokens = tokendefs[statestack[-1]]
    pos, out = 0, []
    while True:
        for rexmatch, action, new_state in statetokens:
            m = rexmatch(text, pos)
            if m:
                if action is not None:
                    if type(action) is _TokenType:
                        out.append((pos, action, m.group()))
                    else:
                        out.extend(action(lexer, m))
                pos = m.end()
                if new_state is not None:
                    if isinstance(new_state, tuple):
                        for state in new_state:
                            if state == "#pop":
                                if len(statestack) > 1:
                                    statestack.pop()
                            elif state == "#push":
                                statestack.append(statestack[-1])
                            else:
                                statestack.append(state)
                    elif isinstance(new_state, int):
                        if abs(new_state) >= len(statestack):
                            del statestack[1:]
                        else:
                            del statestack[new_state:]
                    elif new_state == "#push":
                        statestack.append(statestack[-1])
                    statetokens = tokendefs[statestack[-1]]
                break
        else:
            if pos >= len(text):
                break
            if text[pos] == "\n":
                statestack = ["root"]
                statetokens = tokendefs["root"]
                out.append((pos, Text, "\n"))
                pos += 1
                continue
            out.append((pos, Error, text[pos]))
            pos += 1
    return out, tuple(statestack)


class PygmentsHighlighter(QSyntaxHighlighter):
    def __init__(self, document, lexer=None, style: str = "default", lazy: bool = False):
        self.lexer = lexer or get_lexer_by_name("text", stripnl=False)
        self.lex_calls = 0           # blocks lexed: the tests and the latency benchmark read it
        self.lazy = lazy
        self.limit = INITIAL_BLOCKS if lazy else None   # blocks after this wait for the idle pass
        self._idle = None
        self._started = False        # the idle pass begins after the editor's first paint
        super().__init__(document)
        if lazy:
            self._idle = QTimer(self, interval=0)
            self._idle.timeout.connect(self._idle_step)
        # the line lexed last: (block number, text, tokens, state, when), and the line whose
        # lexing waits for the end of a burst (a cursor, which follows edits above it)
        self._last = None
        self.relexing = False
        self._deferred: QTextCursor | None = None
        self._burst = QTimer(self, singleShot=True, interval=int(BURST_S * 1000))
        self._burst.timeout.connect(self._lex_deferred)
        self._stacks: list[tuple[str, ...]] = [("root",)]
        self._stack_ids: dict[tuple[str, ...], int] = {("root",): 0}
        self._formats: dict = {}
        self.set_style(style)

    def set_lexer(self, lexer) -> None:
        self.lexer = lexer
        self._restart()

    def _restart(self) -> None:
        if self.lazy:  # again only the first screens now, the rest when idle
            self.limit = INITIAL_BLOCKS
            self._relex(None)
            if self._started:
                self.start_idle()
        else:
            self._relex(None)

    @property
    def plain(self) -> bool:
        return self.lexer.name == "Text only"

    def start_idle(self) -> None:
        self._started = True
        if self._idle is not None and not self._idle.isActive() and self.pending():
            self._idle.start()

    def hold(self) -> None:
        """Text is about to be appended (a large file loading): the new blocks wait for the idle pass."""
        doc = self.document()
        if self.lazy and self.limit is None and doc is not None:
            self.limit = doc.blockCount() - 1

    def pending(self) -> bool:
        doc = self.document()
        return doc is not None and self.limit is not None and self.limit < doc.blockCount() - 1

    def _idle_step(self) -> None:
        doc = self.document()
        end = time.perf_counter() + SLICE_S
        while self.pending() and time.perf_counter() < end:
            block = self._first_pending(doc.findBlockByNumber(self.limit + 1))
            if not block.isValid():
                self.limit = doc.blockCount()
                break
            self.limit = block.blockNumber() + 200
            # lexing it changes its state from PENDING, so Qt carries on to the next block,
            # up to the new limit, where the state stays PENDING and Qt stops
            self._relex(block)
        if not self.pending():
            self._idle.stop()
            self.limit = None

    @staticmethod
    def _first_pending(block):
        """Lines typed or deleted above the limit move the first PENDING block off limit + 1."""
        while block.isValid() and block.userState() != PENDING:
            block = block.next()
        prev = block.previous() if block.isValid() else None
        while prev is not None and prev.isValid() and prev.userState() == PENDING:
            block, prev = prev, prev.previous()
        return block

    def set_style(self, style: str) -> None:
        try:
            self.style = get_style_by_name(style)
        except ClassNotFound:
            self.style = get_style_by_name("default")
        self._formats.clear()
        self._restart()

    def _format(self, ttype) -> QTextCharFormat:
        fmt = self._formats.get(ttype)
        if fmt is None:
            fmt = QTextCharFormat()
            s = self.style.style_for_token(ttype)
            if s.get("color"):
                fmt.setForeground(QColor("#" + s["color"]))
            if s.get("bgcolor"):
                fmt.setBackground(QColor("#" + s["bgcolor"]))
            if s.get("bold"):
                fmt.setFontWeight(QFont.Bold)
            if s.get("italic"):
                fmt.setFontItalic(True)
            self._formats[ttype] = fmt
        return fmt

    def _state_id(self, stack: tuple[str, ...]) -> int:
        sid = self._stack_ids.get(stack)
        if sid is None:
            sid = self._stack_ids[stack] = len(self._stacks)
            self._stacks.append(stack)
        return sid

    def _relex(self, block) -> None:
        """Colours redone on our own initiative (idle pass, end of a burst, a new style). Qt
        reports them as a contents change; `relexing` tells listeners it is not an edit."""
        self.relexing = True
        try:
            if block is None:
                self.rehighlight()
            else:
                self.rehighlightBlock(block)
        finally:
            self.relexing = False

    def _lex_deferred(self) -> None:
        cursor, self._deferred, self._last = self._deferred, None, None
        if cursor is not None and self.document() is not None:
            self._relex(cursor.block())

    def _keep_while_streaming(self, number: int, text: str) -> bool:
        """The line grows by tokens faster than a frame: keep its colours; lex it when the timer fires."""
        last = self._last
        if last is None or last[0] != number or not 0 < len(text) - len(last[1]) <= TOKEN_CHARS \
                or not text.startswith(last[1]) or time.perf_counter() - last[4] > BURST_S:
            return False
        for pos, ttype, value in last[2]:
            if ttype is not Text and ttype is not Token:
                self.setFormat(pos, len(value), self._format(ttype))
        self.setCurrentBlockState(last[3])
        if self._deferred is None:
            self._deferred = QTextCursor(self.currentBlock())
            self._burst.start()
        return True

    def highlightBlock(self, text: str) -> None:
        if self.plain:
            return
        number = self.currentBlock().blockNumber()
        if self.limit is not None and number > self.limit:
            self.setCurrentBlockState(PENDING)
            return
        if self._keep_while_streaming(number, text):
            return
        self.lex_calls += 1
        prev = self.previousBlockState()
        stack = self._stacks[prev] if 0 <= prev < len(self._stacks) else ("root",)
        if isinstance(self.lexer, RegexLexer):
            tokens, end = _lex_line(self.lexer, text + "\n", stack)
        else:  # other lexers carry no inspectable state: lex each line on its own
            tokens = list(self.lexer.get_tokens_unprocessed(text + "\n"))
            end = ("root",)
        kept = []
        for pos, ttype, value in tokens:
            if pos >= len(text):
                break
            if ttype is not Text and ttype is not Token:
                value = value[:len(text) - pos]
                self.setFormat(pos, len(value), self._format(ttype))
                kept.append((pos, ttype, value))
        state = self._state_id(end)
        self.setCurrentBlockState(state)
        self._last = (number, text, kept, state, time.perf_counter())
