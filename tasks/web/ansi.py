"""A task's output as a terminal would colour it, and nothing more: SGR codes (bold, dim,
italic, underline, the 16 colours and the first 16 of the 256, foreground and background)
become `<span class="...">` with fixed class names; every other byte is escaped text. Other
escape sequences (cursor moves, erase, OSC titles and hyperlinks) and control characters are
dropped, and a carriage return without a newline starts its line again, as a progress bar
means it. Truecolor and the rest of the 256 colours are dropped too: the Content-Security-Policy
allows no inline style, and a class per colour would be 240 more rules for little.

Nothing a task wrote becomes markup: the only markup here is the span, its class names come
from the table below, and the text goes through `escape`.

A rendering starts from an SGR state (`state`, its parameters as a string such as "1;31") and
returns the state it ends in, so that a log read in chunks colours each chunk from where the
previous one stopped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# CSI (ESC [ params intermediates final), OSC (ESC ] ... BEL or ESC \), other two-byte ESC.
_ESCAPE = re.compile(
    r"\x1b\[([0-9;:?<=>]*)[ -/]*([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?"
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
STATE = re.compile(r"^[0-9;]{0,64}$")


@dataclass(frozen=True)
class Style:
    bold: bool = False
    dim: bool = False
    italic: bool = False
    underline: bool = False
    fg: int | None = None  # 0-15
    bg: int | None = None  # 0-15

    def classes(self) -> str:
        names = [
            n
            for n, on in (
                ("b", self.bold),
                ("d", self.dim),
                ("i", self.italic),
                ("u", self.underline),
            )
            if on
        ]
        if self.fg is not None:
            names.append(f"f{self.fg}")
        if self.bg is not None:
            names.append(f"g{self.bg}")
        return " ".join(f"ansi-{n}" for n in names)

    def params(self) -> str:
        """This style as SGR parameters ("" for the default), which `style_of` reads back."""
        codes = [
            c
            for c, on in ((1, self.bold), (2, self.dim), (3, self.italic), (4, self.underline))
            if on
        ]
        if self.fg is not None:
            codes.append(30 + self.fg if self.fg < 8 else 82 + self.fg)
        if self.bg is not None:
            codes.append(40 + self.bg if self.bg < 8 else 92 + self.bg)
        return ";".join(str(c) for c in codes)


DEFAULT = Style()


def apply_sgr(style: Style, params: str) -> Style:
    """The style after one SGR sequence (ESC [ params m); unknown codes change nothing."""
    codes = [int(p) if p.isdigit() else 0 for p in re.split("[;:]", params)] if params else [0]
    i = 0
    while i < len(codes):
        c = codes[i]
        if c == 0:
            style = DEFAULT
        elif c in (1, 2, 3, 4):
            style = replace(style, **{{1: "bold", 2: "dim", 3: "italic", 4: "underline"}[c]: True})
        elif c == 22:
            style = replace(style, bold=False, dim=False)
        elif c == 23:
            style = replace(style, italic=False)
        elif c == 24:
            style = replace(style, underline=False)
        elif 30 <= c <= 37 or 90 <= c <= 97:
            style = replace(style, fg=c - 30 if c < 90 else c - 82)
        elif 40 <= c <= 47 or 100 <= c <= 107:
            style = replace(style, bg=c - 40 if c < 100 else c - 92)
        elif c == 39:
            style = replace(style, fg=None)
        elif c == 49:
            style = replace(style, bg=None)
        elif c in (38, 48):
            # 38;5;n / 48;5;n (256 colours: the first 16 kept) and 38;2;r;g;b (dropped).
            mode = codes[i + 1] if i + 1 < len(codes) else None
            if mode == 5 and i + 2 < len(codes):
                n = codes[i + 2]
                colour = n if n < 16 else None
                style = replace(style, **{"fg" if c == 38 else "bg": colour})
                i += 2
            elif mode == 2:
                i += 4
        i += 1
    return style


def style_of(state: str) -> Style:
    """The style a state string names; a malformed one is the default (never an error)."""
    return apply_sgr(DEFAULT, state) if state and STATE.match(state) else DEFAULT


def render(text: str, state: str = "") -> tuple[SafeString, str]:
    """`text` as escaped HTML with its colours as spans, and the SGR state it ends in."""
    style = style_of(state)
    done: list[str] = []  # finished lines, as HTML
    line: list[str] = []  # the current line's pieces, as HTML
    returned = False  # a CR came on this line: what is written next redraws it
    pos = 0

    def emit(piece: str) -> None:
        # A lone CR starts the line again: the last redraw of a progress bar wins, and a
        # line that ends in CR (or CRLF) keeps what it showed.
        nonlocal returned
        piece = _CONTROLS.sub("", piece)
        for k, part in enumerate(piece.split("\n")):
            if k:
                done.append("".join(line) + "\n")
                line.clear()
                returned = False
            for j, bit in enumerate(part.split("\r")):
                if j:
                    returned = True
                if not bit:
                    continue
                if returned:
                    line.clear()
                    returned = False
                classes = style.classes()
                line.append(
                    f'<span class="{classes}">{escape(bit)}</span>' if classes else escape(bit)
                )

    for m in _ESCAPE.finditer(text):
        emit(text[pos : m.start()])
        if m.group(2) == "m":
            style = apply_sgr(style, m.group(1))
        pos = m.end()
    emit(text[pos:])
    return mark_safe("".join(done) + "".join(line)), style.params()  # noqa: S308 - escaped above
