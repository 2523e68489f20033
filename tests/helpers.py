"""Shared test helpers: the one way tests call the CLI, small specs, running the reference and
onnxruntime side by side."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from click.testing import CliRunner

from rnncompile.backends.onnxruntime import OnnxRuntimeRunner
from rnncompile.backends.reference import ReferenceRunner
from rnncompile.cli import main
from rnncompile.inputs import MIXED_ROWS
from rnncompile.lower import lower
from rnncompile.spec import load_spec
from rnncompile.verify import TOLERANCES, compare_all


class CliResult(NamedTuple):
    code: int
    out: str
    err: str

    @property
    def combined(self) -> tuple[int, str]:
        """(exit code, stdout and stderr together)."""
        return self.code, self.out + self.err


def cli(*args) -> CliResult:
    """Run `rnncompile ARGS` in process. Whatever the outcome, the house rules hold: no traceback,
    no "internal error", no exception escaping other than the exit."""
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)
    err = result.stderr if result.stderr_bytes is not None else ""
    text = result.stdout + err
    assert "Traceback" not in text, text
    assert "internal error" not in text, text
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return CliResult(result.exit_code, result.stdout, err)


def token_spec(*layers, vocab=20, dim=4, mask_zero=True, **top):
    return {"layers": [{"class_name": "Input", "name": "t", "shape": [None], "dtype": "int32"},
                       {"class_name": "Embedding", "name": "emb", "input_dim": vocab, "output_dim": dim,
                        "mask_zero": mask_zero}, *layers], **top}


def tokens(pattern_rows, vocab=20, steps=7, seed=0):
    """Token ids [B, steps] with 0 (padding) where the row's pattern (a name of the padding
    vocabulary of rnncompile.inputs) says so, at hand-picked steps the semantic tests assert on:
    right = the last 3, left = the first 3, gaps = steps 1, 3 and 4."""
    rng = np.random.default_rng(seed)
    x = rng.integers(1, vocab, size=(len(pattern_rows), steps)).astype(np.int32)
    for b, p in enumerate(pattern_rows):
        if p == "right":
            x[b, steps - 3:] = 0
        elif p == "left":
            x[b, :3] = 0
        elif p == "gaps":
            x[b, [1, 3, 4]] = 0
        elif p == "empty":
            x[b] = 0
    return x


MIXED = list(MIXED_ROWS)


def ort_vs_reference(spec, feeds, states=None):
    """Run both; assert every output (and carried state) matches within the fp32 tolerance.
    Returns (reference outputs, onnx outputs) as dicts."""
    model = load_spec(spec)
    low = lower(model)
    full = dict(feeds)
    for s in model.states:
        batch = next(iter(feeds.values())).shape[0]
        full[s.input_name] = (states or {}).get(s.input_name, np.zeros((batch, *s.shape), np.float32))
    ref = ReferenceRunner(model).run(full)
    got = OnnxRuntimeRunner(low.model_bytes, threads=1).run(full)
    assert set(ref) == set(got), (sorted(ref), sorted(got))
    for r in compare_all(ref, got, TOLERANCES["float32"]):
        assert r.passed, r
    return ref, got
