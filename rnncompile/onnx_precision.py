"""Typed fp16/bf16 graphs: the ONNX-level precision transform (TensorRT 11 has no FP16 builder
flag; a strongly typed network computes in the types the ONNX graph says).

`to_precision(model_bytes, "float16")` rewrites a float32 graph so that weights and float
activations are float16 (or bfloat16), and leaves alone:
  * token, length, index and mask paths (integer and bool values, untouched), and the float
    values computed from integers only ("count paths": e.g. the mask lowering's CumSum runs in
    float because TensorRT's CumSum takes no integers; its counts stay float32, exact below 2**24,
    where float16 would be exact only below 2**11). Where such a value meets an activation
    (e.g. a mask multiplied into a sum) it is cast to the graph's precision there;
  * graph inputs and outputs: they stay float32 and are cast at the edges, so feeds, manifests,
    sessions and carried states are the same at every precision;
  * nodes whose ONNX schema at the graph's opset does not take the precision (onnx.defs): they
    compute in float32 between casts ("float32 islands", listed in the result: e.g. IsInf at
    opset 17 for float16; LSTM/GRU/RNN and several activations for bfloat16, which ONNX's
    recurrent operators accept only from opset 22).
With `explicit_initial_states`, recurrent ops without initial states get zero ones in the graph's
precision (TensorRT's importer makes FLOAT zeros, which a strongly typed half network rejects).

`widen_nodes(model_bytes, ops)` makes nodes of the given op types compute in float32 between
casts in an already typed graph: how onnxruntime's CPU runs a typed graph whose ops lack a
float16/bfloat16 kernel there (rnncompile/backends/onnxruntime.py says which ran that way).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

_LOW = {"float16": TensorProto.FLOAT16, "bfloat16": TensorProto.BFLOAT16}
_LOW_STR = {"float16": "tensor(float16)", "bfloat16": "tensor(bfloat16)"}
_F32 = TensorProto.FLOAT
_FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16}
_RECURRENT = {"LSTM": (5, 6), "GRU": (5,), "RNN": (5,)}


@dataclass
class PrecisionInfo:
    precision: str
    #: nodes computing in float32 between casts: the opset's schema lacks the precision, or a
    #: Scan/Loop/If whose bodies keep float32
    islands: list[str] = field(default_factory=list)
    #: float values kept float32 because they are computed from integers only (counts)
    count_values: int = 0
    #: recurrent ops given explicit zero initial states
    explicit_initial_states: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"precision": self.precision, "float32_islands": self.islands,
                "float32_count_values": self.count_values,
                "explicit_initial_states": self.explicit_initial_states,
                "edges": "graph inputs and outputs stay float32 (cast at the edges)"}


def _opset(model: onnx.ModelProto) -> int:
    return max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _schema_takes(op: str, opset: int, precision: str) -> bool:
    """Whether the ONNX schema of `op` at `opset` lets its float tensors be `precision`."""
    try:
        schema = onnx.defs.get_schema(op, opset, "")
    except Exception:
        return False
    for c in schema.type_constraints:
        allowed = set(c.allowed_type_strs)
        if "tensor(float)" in allowed and _LOW_STR[precision] not in allowed:
            return False
    return True


def _types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    g = inferred.graph
    types = {vi.name: vi.type.tensor_type.elem_type for vi in list(g.input) + list(g.value_info) + list(g.output)}
    types.update({t.name: t.data_type for t in g.initializer})
    return types


def _subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    """The bodies of a Scan/Loop/If node (empty for other nodes)."""
    return [g for a in node.attribute for g in ([a.g] if a.HasField("g") else []) + list(a.graphs)]


def _outer_reads(node: onnx.NodeProto) -> set[str]:
    """Names the bodies of `node` read from outside themselves (outer-scope values), nested
    bodies included."""
    out: set[str] = set()
    for body in _subgraphs(node):
        defined = {v.name for v in body.input} | {t.name for t in body.initializer}
        defined |= {o for n in body.node for o in n.output}
        for n in body.node:
            out |= {i for i in n.input if i and i not in defined}
            out |= {i for i in _outer_reads(n) if i not in defined}
    return out


def _rename_in_bodies(node: onnx.NodeProto, renames: dict[str, str]) -> None:
    """Rewrite the outer-scope reads of `node`'s bodies (recursively) by `renames`."""
    if not renames:
        return
    for body in _subgraphs(node):
        defined = {v.name for v in body.input} | {t.name for t in body.initializer}
        defined |= {o for n in body.node for o in n.output}
        inner = {k: v for k, v in renames.items() if k not in defined}
        for n in body.node:
            for k, i in enumerate(n.input):
                if i in inner:
                    n.input[k] = inner[i]
            _rename_in_bodies(n, inner)


class _Rewriter:
    """Per-consumer type fixing: casts (or converted initializer copies) where a value's type
    differs from the one its consumer needs. Names are derived from the value's, deterministic."""

    def __init__(self, graph: onnx.GraphProto, ttype: dict[str, int]):
        self.inits = {t.name: t for t in graph.initializer}
        self.ttype = ttype          # value -> element type it has in the new graph
        self.nodes: list[onnx.NodeProto] = []
        self.new_inits: list[onnx.TensorProto] = []
        self._made: dict[tuple[str, int], str] = {}
        self.taken = {v for n in graph.node for v in list(n.input) + list(n.output)} | set(self.inits)
        self.taken |= {v.name for v in graph.input} | {v.name for v in graph.output}
        self.node_names = {n.name for n in graph.node}

    def node_name(self, name: str) -> str:
        """`name`, or `name_<k>`, unused by any node so far."""
        return _fresh(name, self.node_names)

    def unique(self, name: str) -> str:
        """`name`, or `name_<k>`, unused by any value so far."""
        return _fresh(name, self.taken)

    def as_type(self, value: str, want: int) -> str:
        if not value or self.ttype.get(value) not in _FLOAT_TYPES or self.ttype[value] == want:
            return value
        key = (value, want)
        if key not in self._made:
            name = self.unique(f"{value}/as_{TensorProto.DataType.Name(want).lower()}")
            if value in self.inits:
                arr = numpy_helper.to_array(self.inits[value]).astype(np.float32)
                self.new_inits.append(_tensor(arr, want, name))
            else:
                self.nodes.append(helper.make_node("Cast", [value], [name],
                                                   name=self.node_name(f"{name}/Cast"), to=want))
            self.ttype[name] = want
            self._made[key] = name
        return self._made[key]


def _fresh(name: str, taken: set[str]) -> str:
    base, k = name, 1
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


def _tensor(arr: np.ndarray, elem: int, name: str) -> onnx.TensorProto:
    if elem == TensorProto.FLOAT16:
        return numpy_helper.from_array(arr.astype(np.float16), name)
    if elem == TensorProto.BFLOAT16:  # ml_dtypes: onnx's own dependency for bfloat16 arrays
        import ml_dtypes

        return numpy_helper.from_array(arr.astype(np.float32).astype(ml_dtypes.bfloat16), name)
    return numpy_helper.from_array(arr.astype(np.float32), name)


def to_precision(model_bytes: bytes, precision: str, explicit_initial_states: bool = False
                 ) -> tuple[bytes, PrecisionInfo]:
    """The typed graph of `model_bytes` (a float32 graph) at `precision` (float16 or bfloat16)."""
    low = _LOW[precision]
    model = onnx.load_from_string(model_bytes)
    g = model.graph
    old = _types(model)
    opset = _opset(model)
    info = PrecisionInfo(precision)
    inits = {t.name for t in g.initializer}
    count: set[str] = set()      # float values computed from integers only: stay float32
    wide: set[str] = set()       # outputs of float32 islands
    for node in g.node:
        fin = [i for i in node.input if i and old.get(i) in _FLOAT_TYPES and i not in inits]
        fout = [o for o in node.output if o and old.get(o) in _FLOAT_TYPES]
        if not fout:
            if fin and not _schema_takes(node.op_type, opset, precision):
                info.islands.append(f"{node.name} ({node.op_type})")
            continue
        if node.op_type == "Cast" and node.input and old.get(node.input[0]) not in _FLOAT_TYPES:
            count.update(fout)
        elif fin and all(i in count for i in fin):
            count.update(fout)
        elif not _schema_takes(node.op_type, opset, precision) or _subgraphs(node):
            # a Scan/Loop/If computes in its bodies, which keep float32: an island
            wide.update(fout)
            info.islands.append(f"{node.name} ({node.op_type})")
    info.count_values = len(count)

    ttype: dict[str, int] = {}
    for name, t in old.items():
        if t in _FLOAT_TYPES:
            ttype[name] = _F32 if (name in count or name in wide) else low
        else:
            ttype[name] = t
    for t in g.initializer:       # initializers keep float32 here; consumers get converted copies
        if t.data_type == _F32:
            ttype[t.name] = _F32
    graph_io = {v.name for v in g.input} | {v.name for v in g.output}
    for v in g.input:
        if old.get(v.name) == _F32:
            ttype[v.name] = _F32
    rw = _Rewriter(g, ttype)
    out_renames = {o.name: rw.unique(f"{o.name}/{precision}") for o in g.output
                   if old.get(o.name) == _F32 and o.name not in count and o.name not in wide}
    for o in out_renames.values():
        ttype[o] = low

    for node in g.node:
        new = onnx.NodeProto.FromString(node.SerializeToString())
        fout = [o for o in node.output if o and old.get(o) in _FLOAT_TYPES]
        if fout:
            need = ttype[fout[0]] if fout[0] not in out_renames else low
        elif not _schema_takes(node.op_type, opset, precision):
            need = _F32   # a float32 island without float outputs (e.g. IsInf at opset 17)
        else:   # comparisons, casts to integers: inputs agree with each other
            need = low if any(ttype.get(i) == low for i in node.input if i) else _F32
        is_cast = node.op_type == "Cast"
        if is_cast:
            new.input[0] = out_renames.get(new.input[0], new.input[0])
            if fout:
                for a in new.attribute:
                    if a.name == "to":
                        a.i = need
        else:
            for k, i in enumerate(node.input):
                new.input[k] = rw.as_type(out_renames.get(i, i), need)
        if _subgraphs(new):   # outer values a body reads keep their float32 type there
            renames = {v: rw.as_type(out_renames.get(v, v), _F32) for v in _outer_reads(new)
                       if ttype.get(v) in _FLOAT_TYPES or v in out_renames}
            _rename_in_bodies(new, {k: v for k, v in renames.items() if k != v})
        if node.op_type == "ConstantOfShape" and fout:
            for a in new.attribute:
                if a.name == "value" and a.t.data_type == _F32:
                    a.t.CopyFrom(_tensor(numpy_helper.to_array(a.t), need, a.t.name or "value"))
        if explicit_initial_states and node.op_type in _RECURRENT and need != _F32:
            _add_initial_states(new, node, rw, need, info)
        for k, o in enumerate(new.output):
            if o in out_renames:
                new.output[k] = out_renames[o]
        rw.nodes.append(new)
    for o, low_name in out_renames.items():
        rw.nodes.append(helper.make_node("Cast", [low_name], [o], name=rw.node_name(f"{o}/Cast"), to=_F32))
    del g.node[:]
    g.node.extend(rw.nodes)
    used = {i for n in g.node for i in n.input} | {i for n in g.node for i in _outer_reads(n)}
    kept = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(kept + [t for t in rw.new_inits if t.name in used])
    del g.value_info[:]
    assert graph_io  # inputs and outputs keep their declared float32 types
    return _finish(model), info


def _add_initial_states(new: onnx.NodeProto, node: onnx.NodeProto, rw: _Rewriter, elem: int,
                        info: PrecisionInfo) -> None:
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    dirs = 2 if attrs.get("direction", b"forward") == b"bidirectional" else 1
    hidden = int(attrs["hidden_size"])
    slots = _RECURRENT[node.op_type]
    missing = [k for k in slots if k >= len(node.input) or not node.input[k]]
    if not missing:
        return
    base = node.name or node.output[0]
    batch = f"{base}/initial_state_batch"
    shape = f"{base}/initial_state_shape"
    zeros = f"{base}/initial_state_zeros"
    dims = f"{base}/initial_state_dims"
    batch, shape, zeros, dims = (rw.unique(n) for n in (batch, shape, zeros, dims))
    rw.nodes.append(helper.make_node("Shape", [new.input[0]], [batch], name=rw.node_name(batch), start=1, end=2))
    rw.new_inits.append(numpy_helper.from_array(np.array([dirs], np.int64), f"{dims}/dirs"))
    rw.new_inits.append(numpy_helper.from_array(np.array([hidden], np.int64), f"{dims}/hidden"))
    rw.nodes.append(helper.make_node("Concat", [f"{dims}/dirs", batch, f"{dims}/hidden"], [shape],
                                     name=rw.node_name(shape), axis=0))
    rw.nodes.append(helper.make_node("ConstantOfShape", [shape], [zeros], name=rw.node_name(zeros),
                                     value=_tensor(np.zeros(1, np.float32), elem, "value")))
    while len(new.input) < max(slots) + 1:
        new.input.append("")
    for k in missing:
        new.input[k] = zeros
    info.explicit_initial_states.append(base)


def node_op(model_bytes: bytes, node_name: str, op_type: str) -> str | None:
    """The op type of the graph's node a runtime reports as (`node_name`, `op_type`): the node of
    that name, else the nearest one whose name is a path prefix of it (runtimes name fused nodes
    `<node>/<Fusion>`), else `op_type` itself when the graph has such nodes; None otherwise."""
    model = onnx.load_from_string(model_bytes)
    nodes = model.graph.node
    ops = {n.name: n.op_type for n in nodes if n.name}
    parts = node_name.split("/") if node_name else []
    for k in range(len(parts), 0, -1):
        op = ops.get("/".join(parts[:k]))
        if op is not None:
            return op
    if not node_name:  # a node onnxruntime made by expanding an op's ONNX function body
        opset, types = _opset(model), _types(model)
        half = (TensorProto.FLOAT16, TensorProto.BFLOAT16)
        expanded = sorted({n.op_type for n in nodes if _has_function(n.op_type, opset)
                           and any(types.get(v) in half for v in list(n.input) + list(n.output))})
        return ",".join(expanded) or None
    return op_type if any(n.op_type == op_type for n in nodes) else None


def _has_function(op: str, opset: int) -> bool:
    try:
        s = onnx.defs.get_schema(op, opset, "")
    except Exception:
        return False
    return bool(s.has_function or s.has_context_dependent_function)


def widen_nodes(model_bytes: bytes, ops: set[str]) -> bytes:
    """`model_bytes` (a typed graph) with every node of a type in `ops` computing in float32:
    its half-precision inputs cast up, its half-precision outputs computed in float32 and cast
    back to the type they had. Nothing else changes."""
    model = onnx.load_from_string(model_bytes)
    g = model.graph
    types = _types(model)
    rw = _Rewriter(g, dict(types))
    for node in g.node:
        if node.op_type not in ops:
            rw.nodes.append(node)
            continue
        new = onnx.NodeProto.FromString(node.SerializeToString())
        for k, i in enumerate(node.input):
            if types.get(i) in (TensorProto.FLOAT16, TensorProto.BFLOAT16):
                new.input[k] = rw.as_type(i, _F32)
        back = []
        for k, o in enumerate(node.output):
            if o and types.get(o) in (TensorProto.FLOAT16, TensorProto.BFLOAT16):
                new.output[k] = rw.unique(f"{o}/float32")
                back.append(helper.make_node("Cast", [new.output[k]], [o], name=rw.node_name(f"{o}/Cast"), to=types[o]))
        if node.op_type == "Cast" and back:
            for a in new.attribute:
                if a.name == "to":
                    a.i = _F32
        if node.op_type == "ConstantOfShape" and back:
            for a in new.attribute:
                if a.name == "value":
                    a.t.CopyFrom(_tensor(numpy_helper.to_array(a.t).astype(np.float32), _F32, "value"))
        rw.nodes.append(new)
        rw.nodes.extend(back)
    del g.node[:]
    g.node.extend(rw.nodes)
    g.initializer.extend(rw.new_inits)
    del g.value_info[:]
    return _finish(model)


def _finish(model: onnx.ModelProto) -> bytes:
    onnx.checker.check_model(model, full_check=False)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    return model.SerializeToString(deterministic=True)
