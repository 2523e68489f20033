"""Limits on what rnncompile reads, and what it trusts. Every limit is checked against a declared
size (a file's size, a zip member's declared size, an .npy header's shape x dtype) before anything
is parsed, inflated or allocated.

Each has a default, an environment variable and a CLI option (on every subcommand):

| limit | default | environment | option |
|---|---|---|---|
| bytes of one JSON file (spec, run input, manifest) | 64 MiB | RNNCOMPILE_MAX_JSON_BYTES | --max-json-bytes |
| nesting depth of one JSON document | 64 | RNNCOMPILE_MAX_JSON_DEPTH | --max-json-depth |
| uncompressed bytes of one .npz / .npy file | 4 GiB | RNNCOMPILE_MAX_NPZ_BYTES | --max-npz-bytes |
| arrays in one .npz | 100000 | RNNCOMPILE_MAX_NPZ_MEMBERS | --max-npz-members |
| weights file outside the spec's directory | refused | RNNCOMPILE_ALLOW_EXTERNAL_WEIGHTS=1 | --allow-external-weights |

Sizes take a suffix: 512K, 64M, 4G (powers of 1024). The Keras reader's own limits are in
docs/keras_import.md. docs/security.md says what each limit protects.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from dataclasses import dataclass
from typing import Iterator

from .errors import SpecError


@dataclass(frozen=True)
class Limits:
    json_bytes: int = 64 << 20
    json_depth: int = 64
    npz_bytes: int = 4 << 30
    npz_members: int = 100_000
    allow_external_weights: bool = False


ENV = {"json_bytes": "RNNCOMPILE_MAX_JSON_BYTES", "json_depth": "RNNCOMPILE_MAX_JSON_DEPTH",
       "npz_bytes": "RNNCOMPILE_MAX_NPZ_BYTES", "npz_members": "RNNCOMPILE_MAX_NPZ_MEMBERS",
       "allow_external_weights": "RNNCOMPILE_ALLOW_EXTERNAL_WEIGHTS"}
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_overrides: list[dict] = []


def parse_size(text: str, where: str) -> int:
    """'4G' -> 4 << 30; a plain integer is bytes (or a count). Raises SpecError naming `where`."""
    m = re.fullmatch(r"\s*(\d{1,15})\s*([KMGT]?)(i?B)?\s*", str(text), re.IGNORECASE)
    if not m or int(m.group(1)) < 1:
        raise SpecError(f"expected a positive size such as 65536, 64M or 4G, found {str(text)[:40]!r}",
                        where=where)
    return int(m.group(1)) * _UNITS[m.group(2).upper()]


def _from_env() -> dict:
    out = {}
    for field, var in ENV.items():
        value = os.environ.get(var)
        if value is None or value == "":
            continue
        if field == "allow_external_weights":
            out[field] = value.strip().lower() in ("1", "true", "yes", "on")
        else:
            out[field] = parse_size(value, f"environment variable {var}")
    return out


def current() -> Limits:
    """The limits in force: defaults, then the environment, then `override` blocks (innermost
    last)."""
    values = _from_env()
    for o in _overrides:
        values.update(o)
    return dataclasses.replace(Limits(), **values)


@contextlib.contextmanager
def override(**values) -> Iterator[Limits]:
    """Raise (or lower) limits for a block: `with override(npz_bytes=16 << 30): ...`. None means
    'keep the current value'."""
    values = {k: v for k, v in values.items() if v is not None}
    unknown = set(values) - set(ENV)
    if unknown:
        raise TypeError(f"unknown limit(s): {', '.join(sorted(unknown))}")
    _overrides.append(values)
    try:
        yield current()
    finally:
        _overrides.remove(values)
