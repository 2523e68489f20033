"""What the command line prints: every line goes through `echo`, with control and format
characters escaped (names and paths can come from files; see docs/security.md)."""
from __future__ import annotations

import unicodedata

import click


def safe_text(text: str, newlines: bool = True) -> str:
    """Text for the terminal: control and format characters (ESC, CR, backspace, bidi overrides,
    ...) escaped, so that names and paths from a file cannot redraw the screen or fake a line.
    `newlines`: keep line breaks (the text's lines are all ours; names inside it are validated
    against the spec's name pattern, which allows none)."""
    return "".join(c if (c == "\n" and newlines) or unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp")
                   else (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}") for c in str(text))


def echo(text: str = "", err: bool = False) -> None:
    """Everything the CLI prints goes through here (escaped)."""
    click.echo(safe_text(text), err=err)
