"""Text from outside labgen (a lab file, a live server's answer) made safe for a terminal."""

from __future__ import annotations

LIMIT = 400  # characters: enough for any message a check writes, short enough for one screen


def printable(text: str, limit: int = LIMIT, keep_newlines: bool = True) -> str:
    """Control, bidi and other invisible characters as escapes (\\x1b, \\u202e), so an escape
    sequence served by a host cannot rewrite the reader's terminal; cut to limit characters."""
    cut = f"... ({len(text)} characters)" if len(text) > limit else ""
    return "".join(ch if ch.isprintable() or (keep_newlines and ch == "\n") else repr(ch)[1:-1]
                   for ch in text[:limit]) + cut
