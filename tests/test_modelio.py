"""ModelIO: the typed inputs/outputs/states of a built model. The manifest JSON it writes is the
one written before it existed (fixture made from the dict-based code), and reading a manifest
back gives the same values."""
import dataclasses
import json
from pathlib import Path

import pytest

from rnncompile.build import io_description, manifest
from rnncompile.io import ModelIO, StateIO, TensorIO
from rnncompile.lower import lower
from rnncompile.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
BEFORE = json.loads((ROOT / "tests" / "fixtures" / "example_manifest_io.json").read_text())
EXAMPLES = sorted(p.name for p in (ROOT / "examples").glob("*.json"))


def test_every_example_has_a_fixture():
    assert sorted(BEFORE) == EXAMPLES


@pytest.mark.parametrize("name", EXAMPLES)
def test_manifest_io_is_byte_for_byte_unchanged(name):
    model = load_spec(ROOT / "examples" / name)
    low = lower(model)
    man = manifest(model, low, low.model_bytes, 0.0)
    text = json.dumps({k: man[k] for k in ("inputs", "outputs", "states")}, indent=2)
    assert text == json.dumps(BEFORE[name], indent=2)
    # the manifest keeps its order: inputs, outputs, states together, after "precision"
    keys = list(man)
    assert keys[keys.index("precision") + 1:keys.index("precision") + 4] == ["inputs", "outputs", "states"]
    io = io_description(model, low)
    assert isinstance(io, ModelIO)
    assert ModelIO.from_dict(json.loads(json.dumps(man))) == io   # what open_session reads back
    assert json.dumps(io.to_dict(), indent=2) == text


def test_from_dict_and_derived_views():
    io = ModelIO.from_dict({
        "inputs": [{"name": "tokens", "dtype": "int32", "shape": ["batch", "time"], "token_range": 30,
                    "pad_value": 0},
                   {"name": "h_in", "dtype": "float32", "shape": ["batch", 4]}],
        "outputs": [{"name": "y", "dtype": "float32", "shape": ["batch", 2]}],
        "states": [{"input": "h_in", "output": "h_out", "shape": [4]}]})  # "layer" is optional on disk
    assert io.inputs[0] == TensorIO("tokens", "int32", ("batch", "time"), 30, 0)
    assert io.states == (StateIO(None, "h_in", "h_out", (4,)),)
    assert [i.name for i in io.feed_inputs] == ["tokens"] and io.state_inputs == {"h_in"}
    assert io.to_dict()["states"] == [{"input": "h_in", "output": "h_out", "shape": [4]}]
    assert "token_range" not in io.inputs[1].to_dict()
    with pytest.raises(dataclasses.FrozenInstanceError):
        io.inputs[0].name = "other"
