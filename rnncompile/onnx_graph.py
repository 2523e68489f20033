"""The only module that touches ONNX protobuf. Lowerings talk to `GraphBuilder`; the rest of the
package gets bytes, names and plain Python values back."""
from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .io import GraphDescription

#: The default opset: every model that needs nothing newer is built at it (byte-identical models).
OPSET = 17
#: The opsets a GraphBuilder can target (op forms below are right for each).
OPSETS = range(17, 22)
PRODUCER = "rnncompile"
#: The ONNX-ML domain (LabelEncoder) and the version imported when a graph uses it (its
#: LabelEncoder-2 form: string keys, int64 values, a default).
ML_DOMAIN = "ai.onnx.ml"
_DOMAIN_VERSIONS = {ML_DOMAIN: 3}

_DTYPES = {
    "float32": TensorProto.FLOAT,
    "float16": TensorProto.FLOAT16,
    "float64": TensorProto.DOUBLE,
    "int32": TensorProto.INT32,
    "int64": TensorProto.INT64,
    "bool": TensorProto.BOOL,
    "string": TensorProto.STRING,
}
_DTYPE_NAMES = {v: k for k, v in _DTYPES.items()}

#: Reductions whose `axes` is an attribute before opset 18 and an input from 18 (ReduceSum: an
#: input from 13).
_AXES_ATTR_REDUCE = {"ReduceMax", "ReduceMin", "ReduceMean", "ReduceProd"}


def ir_version(opset: int) -> int:
    """The IR version written for a default-domain opset: the oldest that carries it (8 for 17 and
    18, the newest every onnxruntime >= 1.14 reads; 9 for 19-20; 10 for 21)."""
    return 8 if opset <= 18 else 9 if opset <= 20 else 10

#: Operators whose outputs are all optional: unused ones are emitted as "".
_OPTIONAL_OUTPUTS = {"LSTM", "GRU", "RNN"}


def onnx_dtype(name: str) -> int:
    return _DTYPES[name]


class GraphBuilder:
    """Builds one ONNX graph. Names are deterministic: `<scope>/<Op>_<n>`, so the same spec always
    gives a byte-identical model."""

    def __init__(self, name: str, target=None, opset: int = OPSET):
        from .targets import get_target

        if opset not in OPSETS:
            raise ValueError(f"opset {opset}: GraphBuilder builds opsets {OPSETS.start}..{OPSETS.stop - 1}")
        self.name = name
        #: The default-domain opset of the graph: `op` and `reduce` emit the forms it defines.
        self.opset = opset
        #: The Target the graph is lowered for (rnncompile.targets): lowerings consult it.
        self.target = get_target(target)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self._scope: list[str] = []
        self._counts: dict[str, int] = {}
        self._const_cache: dict[tuple, str] = {}
        self._shared: dict[type, object] = {}
        #: float32 [batch] tensors, 0 for a batch row whose inputs are invalid (see guard_rows).
        self.row_guards: list[str] = []

    def shared(self, cls: type):
        """The one instance of `cls` (a lowering's own typed state, built with `cls()`) for this
        graph: how lowerings share work across layers (e.g. one set of mask index tensors per
        mask, in layers/recurrent.py). Subgraph builders share their outer graph's."""
        obj = self._shared.get(cls)
        if obj is None:
            obj = self._shared[cls] = cls()
        return obj

    # -- naming -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def scope(self, prefix: str) -> Iterator[None]:
        self._scope.append(prefix)
        try:
            yield
        finally:
            self._scope.pop()

    def fresh(self, hint: str) -> str:
        base = "/".join(self._scope + [hint])
        n = self._counts.get(base, 0)
        self._counts[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    def subgraph(self, name: str) -> "GraphBuilder":
        """A builder for a Scan/Loop body. It shares this graph's naming and constants: the body
        reads constants (weights) from the outer scope."""
        sub = GraphBuilder(name, self.target, self.opset)
        sub._shared = self._shared
        sub._scope = list(self._scope) + [name]
        sub._counts = self._counts
        sub.const = self.const  # constants live in the outermost graph
        return sub

    def guard_rows(self, ok: str) -> None:
        """Declare a float32 [batch] tensor that is 0 (else 1) for rows whose inputs have no answer (a token
        id outside the vocabulary): the lowering pass makes every float model output NaN there,
        since a graph cannot raise an error."""
        self.row_guards.append(ok)

    def to_graph(self) -> onnx.GraphProto:
        """The body graph of a subgraph builder (see `subgraph`)."""
        return helper.make_graph(self.nodes, self.name, self.inputs, self.outputs)

    # -- graph edges --------------------------------------------------------------------------
    def add_input(self, name: str, dtype: str, shape: Sequence[int | str | None]) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, _DTYPES[dtype], list(shape)))
        return name

    def add_output(self, value: str, name: str, dtype: str, shape: Sequence[int | str | None]) -> str:
        if value != name:
            self.nodes.append(helper.make_node("Identity", [value], [name], name=f"{name}/Identity"))
        self.outputs.append(helper.make_tensor_value_info(name, _DTYPES[dtype], list(shape)))
        return name

    # -- nodes --------------------------------------------------------------------------------
    def op(self, op_type: str, *inputs: str | None, n_out: int = 1, domain: str | None = None,
           **attrs) -> str | list[str]:
        """Append a node; returns its output name (or names when n_out > 1). `None` inputs become
        ONNX's empty optional input. `domain`: an operator set other than the default one
        (ML_DOMAIN); the model imports it when a node uses it."""
        node_name = self.fresh(op_type)
        outs = [node_name if n_out == 1 else f"{node_name}:{i}" for i in range(n_out)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        if domain is not None:
            if domain not in _DOMAIN_VERSIONS:
                raise ValueError(f"operator domain {domain!r}: GraphBuilder imports {sorted(_DOMAIN_VERSIONS)}")
            attrs["domain"] = domain
        elif op_type == "Split" and self.opset >= 18 and len(inputs) < 2:
            attrs.setdefault("num_outputs", n_out)   # from opset 18 an even split names its count
        self.nodes.append(helper.make_node(op_type, ["" if i is None else i for i in inputs], outs,
                                           name=node_name, **attrs))
        return outs[0] if n_out == 1 else outs

    def const(self, value, dtype: str | None = None, name: str | None = None) -> str:
        """An initializer. Small constants with equal content are shared."""
        arr = np.asarray(value)
        if dtype is not None:
            arr = arr.astype(dtype)
        elif arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        if arr.dtype.kind == "U":
            arr = arr.astype(object)
        key = None
        if arr.size <= 16 and name is None:
            content = tuple(arr.ravel().tolist()) if arr.dtype == object else arr.tobytes()
            key = (arr.dtype.str, arr.shape, content)
            if key in self._const_cache:
                return self._const_cache[key]
        full = self.fresh(name or "const")
        self.initializers.append(numpy_helper.from_array(np.array(arr, order="C", copy=True), full))
        if key is not None:
            self._const_cache[key] = full
        return full

    # -- common idioms ------------------------------------------------------------------------
    def reduce(self, op_type: str, x: str, axes: Sequence[int], keepdims: int = 0) -> str:
        """A reduction over `axes`, in the form the graph's opset defines."""
        if op_type in _AXES_ATTR_REDUCE and self.opset < 18:
            return self.op(op_type, x, axes=list(axes), keepdims=keepdims)
        return self.op(op_type, x, self.const(np.array(axes, np.int64)), keepdims=keepdims)

    def unsqueeze(self, x: str, axes: Sequence[int]) -> str:
        return self.op("Unsqueeze", x, self.const(np.array(axes, np.int64)))

    def squeeze(self, x: str, axes: Sequence[int]) -> str:
        return self.op("Squeeze", x, self.const(np.array(axes, np.int64)))

    def dim(self, x: str, axis: int) -> str:
        """A 1-element int64 tensor holding x.shape[axis]."""
        return self.op("Shape", x, start=axis, end=axis + 1)

    def flip(self, x: str, axis: int) -> str:
        """Reverse x along `axis` (go_backwards)."""
        i64 = np.int64
        return self.op("Slice", x, self.const(np.array([-1], i64)),
                       self.const(np.array([np.iinfo(i64).min], i64)),
                       self.const(np.array([axis], i64)), self.const(np.array([-1], i64)))

    def take(self, x: str, index: int, axis: int) -> str:
        """x[..., index, ...] with the axis removed."""
        return self.op("Gather", x, self.const(np.array(index, np.int64)), axis=axis)

    def cast(self, x: str, dtype: str) -> str:
        return self.op("Cast", x, to=_DTYPES[dtype])

    def constant_of_shape(self, shape: str, value: float, dtype: str = "float32") -> str:
        """A tensor of the run-time shape `shape` (a 1-D int64 value) filled with `value`."""
        return self.op("ConstantOfShape", shape,
                       value=helper.make_tensor("value", _DTYPES[dtype], [1], [value]))

    # -- result -------------------------------------------------------------------------------
    def live(self) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
        """The nodes and initializers the graph outputs depend on, in their original order.
        Lowerings may emit values speculatively (a batch-major output that the next layer never
        reads, index tensors a layer did not need): onnxruntime runs every node it is given, so
        the dead ones are dropped here. Unused outputs of the recurrent ops become "" (optional
        outputs in ONNX), so the op does not materialize them."""
        needed = {o.name for o in self.outputs}
        keep = []
        for node in reversed(self.nodes):
            if any(o in needed for o in node.output if o):
                keep.append(node)
                needed.update(_uses(node))
        keep.reverse()
        nodes = []
        for node in keep:
            if node.op_type in _OPTIONAL_OUTPUTS and any(o and o not in needed for o in node.output):
                node = onnx.NodeProto.FromString(node.SerializeToString())
                outs = [o if o in needed else "" for o in node.output]
                while outs and not outs[-1]:
                    outs.pop()
                del node.output[:]
                node.output.extend(outs)
            nodes.append(node)
        inits = [t for t in self.initializers if t.name in needed]
        return nodes, inits

    def to_model(self) -> onnx.ModelProto:
        nodes, inits = self.live()
        graph = helper.make_graph(nodes, self.name, self.inputs, self.outputs, inits)
        domains = sorted(_domains(nodes) - {""})
        model = helper.make_model(graph, producer_name=PRODUCER,
                                  opset_imports=[helper.make_opsetid("", self.opset)]
                                  + [helper.make_opsetid(d, _DOMAIN_VERSIONS[d]) for d in domains])
        model.ir_version = ir_version(self.opset)
        return model


def _domains(nodes) -> set[str]:
    """The operator domains of nodes and of their subgraphs' nodes."""
    out: set[str] = set()
    for node in nodes:
        out.add(node.domain)
        for a in node.attribute:
            for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                out |= _domains(sub.node)
    return out


def _uses(node: onnx.NodeProto) -> set[str]:
    """Names a node reads: its inputs and, for Loop/If/Scan, what its subgraphs read."""
    used = {i for i in node.input if i}
    for a in node.attribute:
        for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
            for n in sub.node:
                used |= _uses(n)
    return used


def finish(model: onnx.ModelProto) -> tuple[bytes, dict[str, list]]:
    """Check the model, run shape inference, and return (serialized bytes, inferred shapes of every
    named value as lists with None/str for dynamic dims)."""
    onnx.checker.check_model(model, full_check=False)
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    shapes: dict[str, list] = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input):
        t = vi.type.tensor_type
        if not t.HasField("shape"):
            continue
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                           for d in t.shape.dim]
    return model.SerializeToString(deterministic=True), shapes


def describe(model_bytes: bytes) -> GraphDescription:
    """Inputs, outputs and opset of a serialized model, as plain values (for run/verify)."""
    model = onnx.load_from_string(model_bytes)

    def vi(v):
        t = v.type.tensor_type
        return {"name": v.name, "dtype": _DTYPE_NAMES.get(t.elem_type, str(t.elem_type)),
                "shape": [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                          for d in t.shape.dim]}

    return {"inputs": [vi(v) for v in model.graph.input],
            "outputs": [vi(v) for v in model.graph.output],
            "opset": max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
            "ops": sorted({n.op_type for n in model.graph.node})}
