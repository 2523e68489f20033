"""The reference against Keras itself, and onnxruntime on the built model against Keras: every
case under tests/goldens/ (made with Keras 3 on the torch backend by tools/make_goldens.py;
neither is needed here)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rnncompile.build import io_description
from rnncompile.lower import lower
from rnncompile.backends.onnxruntime import OnnxRuntimeRunner
from rnncompile.backends.reference import ReferenceRunner
from rnncompile.runtime import Session
from rnncompile.spec import load_spec
from rnncompile.verify import TOLERANCES, compare

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from goldens_format import list_cases, load_golden  # noqa: E402

CASES = list_cases(ROOT / "tests" / "goldens")


def test_goldens_present():
    assert len(CASES) >= 50, "tests/goldens is missing: regenerate with tools/make_goldens.py"


def _check(session, model, chunks, what):
    tol = TOLERANCES["float32"]
    for k, (ins, outs) in enumerate(chunks):
        got = session.run(dict(ins))
        names = model.output_names
        assert len(names) == len(outs)
        for name, want in zip(names, outs):
            r = compare(name, want, got[name], tol)
            assert r.passed, f"{what} chunk {k} output {name}: {r}"


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_reference_and_onnx_equal_keras(case):
    spec, weights, chunks = load_golden(case)
    model = load_spec(spec, weights=weights, base_dir=case)
    low = lower(model)
    io = io_description(model, low)
    _check(Session(ReferenceRunner(model), io), model, chunks, "reference vs Keras")
    _check(Session(OnnxRuntimeRunner(low.model_bytes, threads=1), io), model, chunks, "onnxruntime vs Keras")
