"""The one rule for text that came from a job or a user and will reach someone's terminal.

A *control character* is anything a terminal may act on instead of showing: the C0 controls
(newline, carriage return, ESC, NUL, ...), DEL, the C1 controls (U+0080..U+009F, among them
the one-byte CSI U+009B), the line and paragraph separators, and the bidirectional formatting
characters that reorder what is shown (U+202E RIGHT-TO-LEFT OVERRIDE and friends). Names with
any of them (metric and hyperparameter names, snapshot tags, captured file names) are refused
where they enter the catalog; everything else the catalog holds is passed through
:func:`printable` on its way to a terminal. CSV and JSON output stay exact.

Standard library only: the job side (``report``) applies the same rule.
"""

from __future__ import annotations

import re

# Bidirectional formatting: ALM, LRM, RLM, LRE/RLE/PDF/LRO/RLO, LRI/RLI/FSI/PDI.
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{_BIDI}]")

# How each control character is shown: the usual escapes, else \xNN or \uNNNN.
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

MAX_NAME_LENGTH = 200  # the catalog's limit for a metric or hyperparameter name


def has_control_characters(text: str) -> bool:
    """True if ``text`` holds a character a terminal could act on (see the module doc)."""
    return _CONTROL.search(text) is not None


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """``text`` as it may be written to a terminal: every control character replaced by a
    visible escape (``\\x1b``, ``\\n``, ``\\u202e``); other text unchanged."""
    value = text if isinstance(text, str) else str(text)
    if _CONTROL.search(value) is None:  # the common case: nothing to do
        return value
    return _CONTROL.sub(_escape, value)


def name_problem(name: str, what: str = "name") -> str | None:
    """Why ``name`` cannot be stored as a metric/hyperparameter/file name, or None if it can:
    empty, longer than MAX_NAME_LENGTH, or holding control characters."""
    if not name:
        return f"an empty {what}"
    if has_control_characters(name):
        return f"a {what} with control characters ({printable(name[:60])})"
    if len(name) > MAX_NAME_LENGTH:
        return f"a {what} of {len(name)} characters (at most {MAX_NAME_LENGTH})"
    return None


__all__ = ["MAX_NAME_LENGTH", "has_control_characters", "name_problem", "printable"]
