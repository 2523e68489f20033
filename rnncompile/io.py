"""`ModelIO`: a built model's inputs (with token ranges and pad values), outputs and carried
states, as typed values. The manifest's "inputs"/"outputs"/"states" are its `to_dict()`; a
manifest read from disk becomes one with `ModelIO.from_dict()` (once, at the edge)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict


class GraphDescription(TypedDict):
    """What `onnx_graph.describe` reads off a serialized graph (`Lowered.io`): its inputs and
    outputs as {"name", "dtype", "shape"} dicts, its opset and the op types it uses."""

    inputs: list[dict]
    outputs: list[dict]
    opset: int
    ops: list[str]


@dataclass(frozen=True)
class TensorIO:
    """A graph input or output. `shape` includes the batch axis; a dynamic axis is None or a
    name. `token_range` (an id input's vocabulary size) and `pad_value` (a masked input's pad)
    are for inputs only."""

    name: str
    dtype: str
    shape: tuple
    token_range: int | None = None
    pad_value: float | None = None

    @classmethod
    def from_dict(cls, d: dict) -> TensorIO:
        return cls(d["name"], d["dtype"], tuple(d["shape"]), d.get("token_range"), d.get("pad_value"))

    def to_dict(self) -> dict:
        out = {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}
        if self.token_range is not None:
            out["token_range"] = self.token_range
        if self.pad_value is not None:
            out["pad_value"] = self.pad_value
        return out


@dataclass(frozen=True)
class StateIO:
    """A stateful layer's carried state: fed as graph input `input`, returned as graph output
    `output`, of `shape` without the batch axis."""

    layer: str | None
    input: str
    output: str
    shape: tuple

    @classmethod
    def from_dict(cls, d: dict) -> StateIO:
        return cls(d.get("layer"), d["input"], d["output"], tuple(d["shape"]))

    def to_dict(self) -> dict:
        return {**({"layer": self.layer} if self.layer is not None else {}),
                "input": self.input, "output": self.output, "shape": list(self.shape)}


@dataclass(frozen=True)
class ModelIO:
    """A model's graph inputs (carried-state inputs included), outputs and carried states, in
    graph order: what `build.io_description` derives and `Session`, `verify` and the exports use."""

    inputs: tuple[TensorIO, ...]
    outputs: tuple[TensorIO, ...]
    states: tuple[StateIO, ...] = ()

    @classmethod
    def from_dict(cls, d: dict) -> ModelIO:
        """From a manifest (or any dict with "inputs", "outputs" and optional "states")."""
        return cls(tuple(TensorIO.from_dict(i) for i in d["inputs"]),
                   tuple(TensorIO.from_dict(o) for o in d["outputs"]),
                   tuple(StateIO.from_dict(s) for s in d.get("states", [])))

    def to_dict(self) -> dict:
        return {"inputs": [i.to_dict() for i in self.inputs], "outputs": [o.to_dict() for o in self.outputs],
                "states": [s.to_dict() for s in self.states]}

    @property
    def state_inputs(self) -> set[str]:
        return {s.input for s in self.states}

    @property
    def feed_inputs(self) -> tuple[TensorIO, ...]:
        """The inputs a caller feeds: every input but the carried states."""
        states = self.state_inputs
        return tuple(i for i in self.inputs if i.name not in states)
