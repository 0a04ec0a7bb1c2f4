"""Untrusted text made safe for a terminal: control characters shown, never obeyed.

Lead fields, provider names, event data and database error texts come from CRMs, the wire
and the database.  Printed raw, an escape sequence sets the window title, clears the screen
or makes a hyperlink; given to Rich as markup, `[/]` raises MarkupError and `[red]` hides
text.  So every such value is printed as a `rich.text.Text` (never markup) of `visible()`,
which writes each control character as its escape: ESC as `\\x1b`, a newline as `\\n`.
Besides the C0 and C1 controls and DEL that covers the bidirectional overrides and
isolates (which reorder what follows them on screen) and the line and paragraph
separators; other characters, emoji joiners included, print as themselves.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.text import Text

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# bidi embeddings, overrides, isolates and marks; line and paragraph separators
_REORDERING = [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C]
_SEPARATORS = [0x2028, 0x2029]


def _escape(code: int) -> str:
    char = chr(code)
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


_CONTROLS = [c for c in range(0x100) if unicodedata.category(chr(c)) == "Cc"]
ESCAPES: dict[int, str] = {c: _escape(c) for c in (*_CONTROLS, *_REORDERING, *_SEPARATORS)}


def visible(value: Any) -> str:
    """`value` as text with every control character written as its escape."""
    return str(value).translate(ESCAPES)


def plain(value: Any, style: str = "") -> Text:
    """A Rich `Text` of `visible(value)`: printed as it reads, never as markup."""
    from rich.text import Text

    return Text(visible(value), style=style)
