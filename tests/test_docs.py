"""Docs generated from the layer registry stay current: docs/spec.md's layer table is what
tools/gen_docs.py writes (regenerate with `python tools/gen_docs.py`)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import gen_docs  # noqa: E402


def test_spec_layer_table_is_current():
    text = gen_docs.SPEC_DOC.read_text()
    assert gen_docs.regenerate(text) == text, "docs/spec.md is stale: run python tools/gen_docs.py"


def test_every_builtin_kind_and_field_is_in_the_table():
    import rnncompile.layers  # noqa: F401
    from rnncompile.layer import REGISTRY

    table = gen_docs.layer_table()
    builtin = [c for c in REGISTRY.values() if c.__module__.startswith("rnncompile.layers.")]
    assert len(builtin) >= 14
    for cls in builtin:
        row = next(r for r in table.splitlines() if r.startswith(f"| `{cls.class_name}` |"))
        assert all(f"`{k}`" in row for k in cls.attributes), (cls.class_name, row)


def test_a_stale_table_is_detected(tmp_path):
    text = gen_docs.SPEC_DOC.read_text()
    stale = text.replace("| `LSTM` |", "| `LSTM2` |")
    assert stale != text and gen_docs.regenerate(stale) == text
    with pytest.raises(ValueError, match="GENERATED"):
        gen_docs.regenerate(text.replace(gen_docs.BEGIN, ""))
