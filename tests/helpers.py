"""Shared test helpers: small specs, running the reference and onnxruntime side by side."""
from __future__ import annotations

import numpy as np

from rnncompile.lower import lower
from rnncompile.backends.onnxruntime import OnnxRuntimeRunner
from rnncompile.backends.reference import ReferenceRunner
from rnncompile.spec import load_spec
from rnncompile.verify import TOLERANCES, compare


def token_spec(*layers, vocab=20, dim=4, mask_zero=True, **top):
    return {"layers": [{"class_name": "Input", "name": "t", "shape": [None], "dtype": "int32"},
                       {"class_name": "Embedding", "name": "emb", "input_dim": vocab, "output_dim": dim,
                        "mask_zero": mask_zero}, *layers], **top}


def tokens(pattern_rows, vocab=20, steps=7, seed=0):
    """Token ids [B, steps] with 0 (padding) where the row's pattern says so."""
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


MIXED = ["none", "right", "left", "gaps", "empty"]


def ort_vs_reference(spec, feeds, states=None):
    """Run both; assert every output (and carried state) matches within the fp32 tolerance.
    Returns (reference outputs, onnx outputs) as dicts."""
    model = load_spec(spec)
    low = lower(model)
    full = dict(feeds)
    for s in model.states:
        full[s.input_name] = (states or {}).get(s.input_name, np.zeros((next(iter(feeds.values())).shape[0], *s.shape), np.float32))
    ref = ReferenceRunner(model).run(full)
    got = OnnxRuntimeRunner(low.model_bytes, threads=1).run(full)
    assert set(ref) == set(got), (sorted(ref), sorted(got))
    for name in ref:
        r = compare(name, ref[name], got[name], TOLERANCES["float32"])
        assert r.passed, (name, r)
    return ref, got
