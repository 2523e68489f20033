"""Reading JSON files as untrusted data (specs, run inputs, manifests): a byte limit checked from
the file's size before reading, duplicate keys refused (never "last one wins"), nesting depth
bounded (deep documents are a clean error, never a RecursionError)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import limits
from .errors import Problem, RnnCompileError


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def too_deep(value: Any, max_depth: int) -> bool:
    """Whether `value` nests lists/dicts deeper than max_depth (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > max_depth:
                return True
            stack.extend((v, depth + 1) for v in (node.values() if isinstance(node, dict) else node))
    return False


def parse_json(text: str | bytes, where: str, error: type[RnnCompileError]) -> Any:
    """Parse JSON text; raises `error` naming `where` (and line:column for syntax errors)."""
    lim = limits.current()
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as e:
        raise error([Problem(f"{where}:{e.lineno}:{e.colno}", f"invalid JSON: {e.msg}")]) from None
    except _DuplicateKey as e:
        raise error([Problem(where, f"invalid JSON: key {e.args[0]!r} appears twice in one object "
                                    f"(which one is meant is ambiguous)")]) from None
    except RecursionError:
        raise error([Problem(where, f"JSON nested too deeply (the limit is {lim.json_depth} levels; "
                                    f"raise it with --max-json-depth)")]) from None
    except UnicodeDecodeError as e:
        raise error([Problem(where, f"cannot read JSON: {e}")]) from None
    if too_deep(value, lim.json_depth):
        raise error([Problem(where, f"JSON nested deeper than {lim.json_depth} levels (raise the "
                                    f"limit with --max-json-depth or RNNCOMPILE_MAX_JSON_DEPTH)")])
    return value


def read_json_file(path: str | Path, what: str, error: type[RnnCompileError]) -> Any:
    """Read and parse a JSON file of at most the JSON byte limit (checked before reading)."""
    path = Path(path)
    where = str(path)
    lim = limits.current()
    try:
        if not path.is_file():
            raise error([Problem(where, f"{what} file not found")])
        with open(path, "rb") as f:
            data = f.read(lim.json_bytes + 1)
    except OSError as e:
        raise error([Problem(where, f"cannot read {what}: {e.strerror or e}")]) from None
    if len(data) > lim.json_bytes:
        raise error([Problem(where, f"{what} is larger than the limit of {lim.json_bytes} bytes "
                                    f"(raise it with --max-json-bytes or RNNCOMPILE_MAX_JSON_BYTES)")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error([Problem(where, f"cannot read {what}: {e}")]) from None
    return parse_json(text, where, error)


def read_text_lines(path: str | Path, what: str, error: type[RnnCompileError], limit: int | None = None) -> list[str]:
    """The lines of a UTF-8 text file read as data (a vocabulary, texts to classify): its size
    checked against `limit` (default: the JSON byte limit, --max-json-bytes) before reading; "\\n"
    ends a line and a final one ends the last line (so "a\\nb\\n" and "a\\nb" are two lines). Raises
    `error` naming the file."""
    path = Path(path)
    limit = limits.current().json_bytes if limit is None else limit
    try:
        size = path.stat().st_size
        if size > limit:
            raise error(f"{what} of {size} bytes is over the {limit}-byte limit", where=str(path))
        raw = path.read_bytes()
    except OSError as e:
        raise error(f"cannot read {what}: {e.strerror or e}", where=str(path)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{what} is not UTF-8 (byte {e.start})", where=str(path)) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines
