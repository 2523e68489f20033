"""rnncompile.inputs: the one padding-pattern vocabulary and input generator (verification,
bench, conformance and the tests use it)."""
from __future__ import annotations

import numpy as np
import pytest

from rnncompile.io import ModelIO
from rnncompile.inputs import (MIXED_ROWS, PATTERNS, InputInfo, infos_from_io, make_inputs,
                               parse_pattern, valid_steps)


@pytest.mark.parametrize("bad", ["middle", "gaps:0.5", "left:1.0", "left:-0.1", "left:x"])
def test_parse_pattern_rejects(bad):
    with pytest.raises(ValueError):
        parse_pattern(bad)


def test_valid_steps_patterns():
    rng = np.random.default_rng(0)
    assert valid_steps("none", 3, 9, rng).all()
    left = valid_steps("left", 50, 9, rng)
    right = valid_steps("right", 50, 9, rng)
    gaps = valid_steps("gaps", 50, 9, rng)
    for v in (left, right, gaps):
        assert v.any(axis=1).all() and (~v).any(axis=1).all()   # each row: padded, never empty
    # left: padding first then valid; right: valid then padding; gaps: both ends valid
    assert all(np.array_equal(r, np.sort(r)) for r in left)
    assert all(np.array_equal(r, np.sort(r)[::-1]) for r in right)
    assert gaps[:, 0].all() and gaps[:, -1].all()
    frac = valid_steps("left:0.5", 4, 10, rng)
    assert (frac.sum(axis=1) == 5).all() and not frac[:, :5].any()
    assert valid_steps("right:0.25", 2, 8, rng).sum(axis=1).tolist() == [6, 6]


def test_every_pattern_parses_and_keeps_its_meaning():
    rng = np.random.default_rng(1)
    for p in PATTERNS:
        assert parse_pattern(p) == (p, None)
        assert valid_steps(p, 10, 8, rng).shape == (10, 8)
    assert not valid_steps("empty", 3, 8, rng).any()
    mixed = valid_steps("mixed", 10, 8, rng)
    rows = {p: valid_steps(p, 1, 8, np.random.default_rng(0)) for p in MIXED_ROWS}
    assert mixed[0].all() and not mixed[4].any() and not mixed[9].any()  # none ... empty, cycling
    assert mixed[1, 0] and not mixed[1, -1]                             # right
    assert not mixed[2, 0] and mixed[2, -1]                             # left
    assert mixed[3, 0] and mixed[3, -1] and not mixed[3].all()          # gaps
    assert rows["none"].all()
    combined = valid_steps("combined", 2, 6, rng)
    assert combined.tolist() == [[False, True, False, True, True, False]] * 2
    assert valid_steps("combined", 1, 2, rng).tolist() == [[False, True]]


def test_random_pattern_probability_and_empty_rows():
    rng = np.random.default_rng(0)
    v = valid_steps("random:0.3", 2000, 10, rng)
    assert abs(v.mean() - 0.3) < 0.02
    assert (~v).all(axis=1).any()                       # empty rows happen...
    v = valid_steps("random:0.05", 500, 4, rng, allow_empty=False)
    assert v.any(axis=1).all()                          # ...unless they are not allowed
    with pytest.raises(ValueError):
        parse_pattern("random:0")


def test_make_inputs_pads_with_the_pad_value_only_where_invalid():
    infos = [InputInfo("t", "int32", (None,), 7, 0.0), InputInfo("x", "float32", (None, 2), None, 0.5),
             InputInfo("s", "float32", (4,))]
    rng = np.random.default_rng(3)
    f = make_inputs(infos, 5, {"t": 6, "x": 3}, "mixed", rng)
    assert f["t"].shape == (5, 6) and f["x"].shape == (5, 3, 2) and f["s"].shape == (5, 4)
    assert f["t"].dtype == np.int32 and (f["t"] < 7).all()
    assert (f["t"][0] != 0).all() and (f["t"][4] == 0).all()  # row 0 none, row 4 empty
    assert (f["x"][4] == 0.5).all() and not (f["x"][0] == 0.5).any()
    valid = np.array([[True, False, True]] * 5)
    g = make_inputs(infos, 5, {"t": 6, "x": 3}, "none", rng, valid={"x": valid})
    assert (g["x"][:, 1] == 0.5).all() and not (g["x"][:, [0, 2]] == 0.5).any()
    assert (g["t"] != 0).all()
    with pytest.raises(ValueError, match="mask shape"):
        make_inputs(infos, 5, {"t": 6, "x": 3}, "none", rng, valid={"x": valid[:, :2]})


def test_infos_from_a_manifest_leave_states_out():
    io = {"inputs": [{"name": "tokens", "dtype": "int32", "shape": ["batch", "time"], "token_range": 30,
                      "pad_value": 0},
                     {"name": "h_in", "dtype": "float32", "shape": ["batch", 4]}],
          "states": [{"layer": "rnn", "input": "h_in", "output": "h_out", "shape": [4]}]}
    assert infos_from_io(ModelIO.from_dict({**io, "outputs": []})) == [InputInfo("tokens", "int32", (None,), 30, 0)]
