"""`ModelIO`: a built model's inputs (with token ranges and pad values), outputs and carried
states, as typed values. The manifest's "inputs"/"outputs"/"states" are its `to_dict()`; a
manifest read from disk becomes one with `ModelIO.from_dict()` (once, at the edge)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, TypedDict


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
class PreprocessIO:
    """Preprocessing that runs on the host before the graph (a tokenizer: manifest
    "preprocessing"): the caller feeds `input` (text), the session feeds the graph input `output`
    with `function(input)`. `config`: the rest of the manifest entry (the tokenizer's options and
    files). `function` is None until loaded (`rnncompile.build.open_session` loads it from OUT)."""

    kind: str
    layer: str
    input: TensorIO
    output: str
    config: dict
    function: Callable[[Any], Any] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_dict(cls, d: dict) -> PreprocessIO:
        rest = {k: v for k, v in d.items() if k not in ("kind", "layer", "input", "output")}
        return cls(d["kind"], d["layer"], TensorIO.from_dict(d["input"]), d["output"], rest)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "layer": self.layer, "input": self.input.to_dict(), "output": self.output,
                **self.config}


@dataclass(frozen=True)
class ModelIO:
    """A model's graph inputs (carried-state inputs included), outputs and carried states, in
    graph order: what `build.io_description` derives and `Session`, `verify` and the exports use."""

    inputs: tuple[TensorIO, ...]
    outputs: tuple[TensorIO, ...]
    states: tuple[StateIO, ...] = ()
    #: Host-side preprocessing (tokenizers) in front of some graph inputs.
    preprocessing: tuple[PreprocessIO, ...] = ()

    @classmethod
    def from_dict(cls, d: dict) -> ModelIO:
        """From a manifest (or any dict with "inputs", "outputs" and optional "states" and
        "preprocessing")."""
        return cls(tuple(TensorIO.from_dict(i) for i in d["inputs"]),
                   tuple(TensorIO.from_dict(o) for o in d["outputs"]),
                   tuple(StateIO.from_dict(s) for s in d.get("states", [])),
                   tuple(PreprocessIO.from_dict(p) for p in d.get("preprocessing", [])))

    def to_dict(self) -> dict:
        out = {"inputs": [i.to_dict() for i in self.inputs], "outputs": [o.to_dict() for o in self.outputs],
               "states": [s.to_dict() for s in self.states]}
        if self.preprocessing:
            out["preprocessing"] = [p.to_dict() for p in self.preprocessing]
        return out

    @property
    def state_inputs(self) -> set[str]:
        return {s.input for s in self.states}

    @property
    def feed_inputs(self) -> tuple[TensorIO, ...]:
        """The inputs a caller feeds: every graph input but the carried states, a host-side
        preprocessing's input (text) in place of the graph input it produces (ids)."""
        states = self.state_inputs
        made = {p.output: p.input for p in self.preprocessing}
        out, seen = [], set()
        for i in self.inputs:
            if i.name in states:
                continue
            i = made.get(i.name, i)
            if i.name not in seen:
                seen.add(i.name)
                out.append(i)
        return tuple(out)
