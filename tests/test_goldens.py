"""The reference against Keras itself, and onnxruntime on the built model against Keras: every
case under tests/goldens/ (made with Keras 3 on the torch backend by tools/make_goldens.py;
neither is needed here), through the one golden reader and check of `rnncompile conformance`
(rnncompile.qa.goldens)."""
from __future__ import annotations

from pathlib import Path

import pytest

from rnncompile.qa.goldens import check_golden, list_cases, read_manifest

GOLDENS = Path(__file__).resolve().parent / "goldens"
CASES = list_cases(GOLDENS)
MANIFEST, _ = read_manifest(GOLDENS)


def test_goldens_present():
    assert len(CASES) >= 50, "tests/goldens is missing: regenerate with tools/make_goldens.py"
    assert set(MANIFEST) == {c.name for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_reference_and_onnx_equal_keras(case):
    dropped = bool(MANIFEST.get(case.name, {}).get("keras_drops_mask_with_initial_state"))
    outcome = check_golden(case, mask_dropped=dropped)
    assert outcome.status == "passed", outcome.detail
    assert set(outcome.errors) == {"reference vs keras", "onnxruntime vs keras"}
