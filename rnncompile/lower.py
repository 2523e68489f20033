"""The lowering pass: Model -> ONNX bytes. Generic: each layer emits its own nodes through the
GraphBuilder; this pass wires inputs, carried states and outputs, then checks every layer's
lowering against its shape and mask rule (a custom layer that breaks its contract is named)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import LayerContractError, Problem, TargetError
from .io import GraphDescription
from .layer import Sym, TensorType
from .onnx_graph import GraphBuilder, describe, finish
from .spec import Model
from .targets import Target, get_target


@dataclass
class Lowered:
    model_bytes: bytes
    io: GraphDescription  # describe(): {"inputs": [...], "outputs": [...], "opset": n, "ops": [...]}
    target: Target
    #: With `lower(model, expose_layers=True)`: layer name -> one (value output, mask output or
    #: None) pair of extra graph output names per layer output, to compare layer by layer.
    layer_outputs: dict[str, list[tuple[str, str | None]]] = field(default_factory=dict)
    #: For a typed fp16/bf16 graph: what the precision transform did (onnx_precision.PrecisionInfo).
    precision_info: object | None = None


#: Prefix of the extra graph outputs of a debug lowering (`expose_layers=True`).
LAYER_OUTPUT_PREFIX = "rnncompile.layer/"


def input_dims(model: Model) -> dict[str, list]:
    """ONNX dims of each model input: `batch`, `time` (or `<input>_time` when several inputs have
    a variable time axis), fixed sizes as given."""
    var_time = [n for n in model.inputs if len(model.input_type(n).shape) > 1
                and model.input_type(n).shape[1] is None]
    dims = {}
    for n in model.inputs:
        t = model.input_type(n)
        d = []
        for axis, size in enumerate(t.shape):
            if size is not None:
                d.append(size)
            elif axis == 0:
                d.append("batch")
            elif axis == 1:
                d.append("time" if len(var_time) == 1 else f"{n}_time")
            else:
                d.append(f"{n}_dim{axis}")
        dims[n] = d
    return dims


def host_layers(model: Model, target: "Target | str | None" = None) -> list[str]:
    """The layers that run on the host, before the graph, when `model` is lowered for `target`
    (text preprocessing: Layer.runs_on_host); their outputs are graph inputs."""
    target = get_target(target)
    return [l.name for l in model.layers.values() if l.host_capable and l.runs_on_host(target)]


def check_target(model: Model, target: "Target | str | None" = None) -> list[Problem]:
    """Every layer that cannot be lowered for `target`, with why and the nearest alternative."""
    target = get_target(target)
    return [Problem(f"layer {layer.name!r} ({layer.class_name})", why)
            for layer in model.layers.values()
            if (why := layer.target_blocker(target)) is not None]


def lower(model: Model, target: "Target | str | None" = None, expose_layers: bool = False,
          stop_after: str | None = None) -> Lowered:
    """Lower `model` to ONNX for `target` (rnncompile.targets; default onnxruntime). Layers the
    target cannot take are refused (TargetError), never emitted. `expose_layers=True` gives a
    debug graph that also outputs every layer's outputs and masks (see `Lowered.layer_outputs`);
    the normal build never uses it. `stop_after=<layer>`: a debug graph of the layers up to that
    one only, all exposed, without the model's outputs (to find the first layer whose lowering
    breaks)."""
    target = get_target(target)
    blocked = check_target(model, target)
    if blocked:
        raise TargetError(blocked)
    host = host_layers(model, target)
    opset = max([17] + [l.min_opset(target) for l in model.layers.values() if l.name not in host])
    g = GraphBuilder(model.name, target, opset=opset)
    syms: dict[str, list[Sym]] = {}
    dims = input_dims(model)
    state_outputs = []
    # graph inputs: the model's inputs in spec order (an input that only host-side layers read is
    # replaced by their outputs: the ids of a host tokenizer), then the carried states
    graph_inputs = {}
    for n in model.inputs:
        readers = [l for l in model.layers.values() if any(r.layer == n for r in l.inbound)]
        if readers and all(l.name in host for l in readers):
            for l in readers:
                t = l.output_types_[0]
                shape = ["batch" if i == 0 and d is None else d if d is not None else f"{l.name}_time"
                         for i, d in enumerate(t.shape)]
                syms[l.name] = [Sym(g.add_input(l.name, t.dtype, shape), t)]
            continue
        graph_inputs[n] = Sym(g.add_input(n, model.input_type(n).dtype, dims[n]), model.input_type(n))
    for s in model.states:
        graph_inputs[s.input_name] = Sym(g.add_input(_state_names(target, s)[0], "float32",
                                                     ["batch", *s.shape]), TensorType((None, *s.shape)))
    _reset_states_on_start(g, model, graph_inputs)
    for layer in model.layers.values():
        if layer.name in host or (layer.is_model_input and layer.name not in graph_inputs):
            continue   # runs on the host (its output is a graph input, above), or only feeds such layers
        with g.scope(layer.name):
            if layer.is_model_input:
                ins = [graph_inputs[layer.name]]
            else:
                ins = [syms[r.layer][r.index] for r in layer.inbound]
            carried = [s for s in model.states if s.layer == layer.name]
            ins += [graph_inputs[s.input_name] for s in carried]
            outs = list(layer.lower(g, ins, model.layer_weights(layer)))
        n = len(layer.output_types_)
        where = f"layer {layer.name!r} ({layer.class_name})"
        if len(outs) != n + len(carried):
            raise LayerContractError(f"lowering returned {len(outs)} value(s); its shape rule declares "
                                     f"{n} output(s) and {len(carried)} state(s)", where=where)
        for i, (t, s) in enumerate(zip(layer.output_types_, outs)):
            if t.masked != (s.mask is not None):
                raise LayerContractError(f"lowering of output {i} {'dropped' if t.masked else 'added'} "
                                         f"a mask; its mask rule says {'masked' if t.masked else 'unmasked'}",
                                         where=where)
        syms[layer.name] = outs[:n]
        state_outputs += [(s, o) for s, o in zip(carried, outs[n:])]
        if layer.name == stop_after:
            break

    if stop_after is None:
        guard = _guard(g)
        for ref in model.outputs:
            sym = syms[ref.layer][ref.index]
            name = model.output_name(ref)
            g.add_output(guard(sym.name, sym.type), name, sym.type.dtype, _out_dims(sym.type.shape, name))
        for s, o in state_outputs:
            g.add_output(guard(o.name, TensorType((None, *s.shape))), _state_names(target, s)[1], "float32",
                         ["batch", *s.shape])
    exposed = _expose(g, model, syms) if (expose_layers or stop_after is not None) else {}

    try:
        model_bytes, shapes = finish(g.to_model())
    except Exception as e:  # the ONNX checker or shape inference refused the graph
        if stop_after is None:
            _blame_invalid_graph(model, target)
            raise
        raise _InvalidGraph(e) from e
    _check_shapes(model, syms, shapes)
    precision_info = None
    if target.precision != "float32":  # typed graph: weights and float activations in fp16/bf16
        from .onnx_precision import to_precision

        model_bytes, precision_info = to_precision(model_bytes, target.precision,
                                                   target.typed_rnn_initial_states)
    if target.graph_checker and stop_after is None and not expose_layers:
        _check_graph(model_bytes, target)
    return Lowered(model_bytes, describe(model_bytes), target, exposed, precision_info)


def _check_graph(model_bytes: bytes, target: Target) -> None:
    """The target's import rules (e.g. TensorRT's parser, rnncompile/onnx_trt_check.py) must find
    nothing in the graph: a finding is refused like a layer the target cannot take."""
    import importlib

    result = importlib.import_module(target.graph_checker).check_model(model_bytes, name="model.onnx")
    if result.findings:
        raise TargetError([Problem(f"node {f.node} (layer {f.layer!r})", f"{f.message} [{f.rule}; {f.source}]")
                           for f in result.findings])


def _state_names(target: Target, s) -> tuple[str, str]:
    """Graph input and output names of carried state `s` on `target`."""
    ctl = target.state_control
    return ctl.names(s.layer, s.suffix) if ctl else (s.input_name, s.output_name)


def _reset_states_on_start(g: GraphBuilder, model: Model, graph_inputs: dict[str, Sym]) -> None:
    """With a state control (targets.StateControl): a START input, int32 [batch, 1]; where it is
    nonzero the row's carried states read as zeros, whatever was fed (a new sequence)."""
    ctl = g.target.state_control
    if ctl is None or not model.states:
        return
    start = g.add_input(ctl.start, "int32", ["batch", 1])
    with g.scope("state_control"):
        dtype = "int32" if g.target.accepts("Greater", "int32") else "float32"
        if dtype != "int32":
            start = g.cast(start, dtype)
        reset = g.op("Greater", start, g.const(np.zeros((), dtype)))
        for s in model.states:
            sym = graph_inputs[s.input_name]
            graph_inputs[s.input_name] = Sym(g.op("Where", reset, g.const(np.float32(0)), sym.name),
                                             sym.type)


def _guard(g: GraphBuilder):
    """value -> value with NaN in the batch rows that a layer declared invalid (g.row_guards)."""
    if not g.row_guards:
        return lambda value, t: value
    with g.scope("row_guard"):
        ok = g.row_guards[0]
        for other in g.row_guards[1:]:
            ok = g.op("Min", ok, other)
        ok = g.cast(ok, "bool")
        nan = g.const(np.float32(np.nan))

    def apply(value: str, t: TensorType) -> str:
        if t.dtype != "float32":
            return value
        with g.scope("row_guard"):
            return g.op("Where", g.unsqueeze(ok, list(range(1, t.rank))) if t.rank > 1 else ok, value, nan)
    return apply


class _InvalidGraph(Exception):
    """A prefix graph (`stop_after`) that the ONNX checker or shape inference refused."""


def _blame_invalid_graph(model: Model, target: Target) -> None:
    """The graph does not check (a layer fed a tensor its lowering cannot take, usually because an
    upstream lowering broke its shape rule): lower growing prefixes of the model until one fails,
    and raise LayerContractError naming that layer (or its shape rule's disagreement)."""
    for layer in model.layers.values():
        if layer.is_model_input:
            continue
        try:
            lower(model, target, stop_after=layer.name)
        except _InvalidGraph as e:
            text = str(e.__cause__).strip().splitlines()
            raise LayerContractError(f"lowering gives an ONNX graph that does not check: "
                                     f"{text[0] if text else type(e).__name__}",
                                     where=f"layer {layer.name!r} ({layer.class_name})") from None


def _expose(g: GraphBuilder, model: Model, syms: dict[str, list[Sym]]) -> dict:
    """Every non-input layer's outputs (and masks) as extra graph outputs. Their declared dims are
    all symbolic, so a shape rule that disagrees cannot stop the debug graph from building."""
    exposed = {}
    for layer in model.layers.values():
        if layer.is_model_input or layer.name not in syms:
            continue
        pairs = []
        for i, sym in enumerate(syms[layer.name]):
            base = f"{LAYER_OUTPUT_PREFIX}{layer.name}:{i}"
            value = g.add_output(sym.name, base, sym.type.dtype,
                                 [f"{base}_d{k}" for k in range(sym.type.rank)])
            mask = None
            if sym.mask is not None:
                mask = g.add_output(sym.mask, base + ":mask", "bool", [f"{base}_m0", f"{base}_m1"])
            pairs.append((value, mask))
        exposed[layer.name] = pairs
    return exposed


def _out_dims(shape, name):
    return ["batch" if (i == 0 and d is None) else (d if d is not None else f"{name}_dim{i}")
            for i, d in enumerate(shape)]


def _check_shapes(model: Model, syms: dict[str, list[Sym]], shapes: dict[str, list]) -> None:
    """ONNX shape inference must agree with each layer's shape rule (rank, and static sizes), and
    a mask must be [batch, time]."""
    for layer in model.layers.values():
        for i, sym in enumerate(syms.get(layer.name, [])):
            where = f"layer {layer.name!r} ({layer.class_name})"
            rule = layer.output_types_[i]  # the rule itself, not the type the lowering claims
            got = shapes.get(sym.name)
            if got is not None:
                want = rule.shape
                bad = len(got) != len(want) or any(isinstance(g_, int) and g_ > 0 and w is not None and g_ != w
                                                   for g_, w in zip(got, want))
                if bad:
                    raise LayerContractError(
                        f"lowering of output {i} has shape {tuple(got)} but its shape rule says {rule}",
                        where=where)
            mask = shapes.get(sym.mask) if sym.mask is not None else None
            if mask is not None and len(mask) != 2:
                raise LayerContractError(f"lowering of output {i} gives a mask of shape {tuple(mask)}; "
                                         f"a mask is (batch, time)", where=where)
