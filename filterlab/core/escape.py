"""Text from files and folders, escaped for where it is shown: a terminal, a Markdown table, HTML.

A folder name, a stored status or a config value is data, and data must never act on the place it is shown: an
escape sequence in a terminal can clear the screen or rewrite a line, a newline in a table forges a row, and
``<script>`` in Markdown is HTML to most viewers. Every character that is not printable (control characters, the
terminal's ESC, line and paragraph separators, bidirectional overrides, lone surrogates from undecodable file
names) is written as its Python escape (``\\x1b``, ``\\n``, ``\\u202e``), so what was there stays visible.
"""

from __future__ import annotations

import html

_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(c: str) -> str:
    if c in _SHORT:
        return _SHORT[c]
    code = ord(c)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def for_terminal(text: object) -> str:
    """``text`` on one line of a terminal: every non-printable character as its escape; a backslash is kept as is."""
    s = str(text)
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else _escape_char(c) for c in s)


def for_markdown(text: object) -> str:
    """A Markdown table cell: one line (for_terminal), HTML escaped (a viewer renders raw HTML), and "|", which
    ends a cell, as "\\|"."""
    return html.escape(for_terminal(text), quote=False).replace("|", "\\|")
