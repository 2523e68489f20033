"""TensorRT parser-rules checker: every node of an ONNX graph against the parser's documented
support (rnncompile/tensorrt_rules.py: op, attributes, input element types, constant inputs), on
the CPU, without TensorRT.

One `Finding` per problem, naming the node, the layer it came from (rnncompile names nodes
`<layer>/<Op>_<n>`; for other producers the node name's first path component, or the node name),
the rule and its source. `Note`s are conditions the graph imposes on an engine rather than
problems (e.g. a TopK whose K is the time axis: profiles must keep T below TensorRT's limit).

Used by `build --target tensorrt` (a graph with findings is refused, exit 2) and by
`rnncompile lint-tensorrt model.onnx` on any ONNX file. Element types come from ONNX shape/type
inference; a value whose type inference cannot tell is checked where it can be and said so.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import onnx
from onnx import TensorProto, helper

from . import tensorrt_rules as R
from .errors import RunError

_TYPE_NAMES = {TensorProto.FLOAT: "float32", TensorProto.FLOAT16: "float16",
               TensorProto.BFLOAT16: "bfloat16", TensorProto.DOUBLE: "float64",
               TensorProto.INT32: "int32", TensorProto.INT64: "int64", TensorProto.BOOL: "bool",
               TensorProto.UINT8: "uint8", TensorProto.INT8: "int8", TensorProto.INT16: "int16",
               TensorProto.UINT16: "uint16", TensorProto.UINT32: "uint32",
               TensorProto.UINT64: "uint64", TensorProto.STRING: "string"}
_FLOATS = {"float32", "float16", "bfloat16"}


@dataclass(frozen=True)
class Finding:
    node: str
    op: str
    layer: str
    rule: str
    message: str
    source: str

    def __str__(self) -> str:
        return f"{self.node} ({self.op}, layer {self.layer}): {self.message} [{self.rule}; {self.source}]"


@dataclass(frozen=True)
class Note:
    node: str
    layer: str
    message: str
    source: str


@dataclass
class CheckResult:
    model: str
    nodes: int
    findings: list[Finding] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict:
        return {"model": self.model, "nodes": self.nodes, "clean": self.clean,
                "rules_source": R.SOURCE_REPO,
                "findings": [asdict(f) for f in self.findings], "notes": [asdict(n) for n in self.notes]}


def layer_of(node_name: str) -> str:
    return node_name.split("/", 1)[0] if node_name else "?"


class _Graph:
    """Element types and constant-ness of every value of the main graph."""

    def __init__(self, model: onnx.ModelProto):
        try:
            inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False)
        except Exception:  # inference is a help, not a requirement: check what we can
            inferred = model
        self.types: dict[str, str] = {}
        self.constants: dict[str, onnx.TensorProto] = {}
        self.nodes: list[onnx.NodeProto] = []
        self._read(inferred.graph)

    def _read(self, g: onnx.GraphProto) -> None:
        """Values and nodes of `g` and, recursively, of its If/Loop/Scan bodies."""
        for vi in list(g.input) + list(g.value_info) + list(g.output):
            et = vi.type.tensor_type.elem_type
            if et:
                self.types[vi.name] = _TYPE_NAMES.get(et, TensorProto.DataType.Name(et).lower())
        for t in g.initializer:
            self.constants[t.name] = t
            self.types[t.name] = _TYPE_NAMES.get(t.data_type, str(t.data_type))
        for n in g.node:
            self.nodes.append(n)
            if n.op_type == "Constant":
                for a in n.attribute:
                    if a.name == "value":
                        self.constants[n.output[0]] = a.t
                        self.types[n.output[0]] = _TYPE_NAMES.get(a.t.data_type, str(a.t.data_type))
            for a in n.attribute:
                for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                    self._read(sub)


def _attrs(node: onnx.NodeProto) -> dict:
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, list):
            v = [x.decode() if isinstance(x, bytes) else x for x in v]
        out[a.name] = v
    return out


def check_model(model: "onnx.ModelProto | bytes | str | Path", name: str | None = None) -> CheckResult:
    """Check every node of `model` (a ModelProto, serialized bytes or a path) against the rules."""
    if isinstance(model, (str, Path)):
        name = name or str(model)
        model = load(model)
    elif isinstance(model, bytes):
        model = onnx.load_from_string(model)
    g = _Graph(model)
    result = CheckResult(name or model.graph.name or "model", len(g.nodes))
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    lo, hi = R.OPSET_RANGE
    if not lo <= opset <= hi:
        result.findings.append(Finding("(model)", "-", "-", "opset",
                                       f"opset {opset} is outside the parser's range {lo}..{hi}",
                                       R.OPERATORS_MD))
    for node in g.nodes:
        result.findings += _check_node(node, g, result.notes)
    return result


def load(path: "str | Path") -> onnx.ModelProto:
    """Read an ONNX file (data only: protobuf parsing), with a clear error when it is not one."""
    p = Path(path)
    if not p.is_file():
        raise RunError("no such file", where=str(p))
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and friends
        raise RunError(f"not a readable ONNX model: {type(e).__name__}: {str(e)[:200]}", where=str(p)) from None
    if not model.opset_import or not (model.graph.node or model.graph.output):
        raise RunError("not an ONNX model (no opset or no graph)", where=str(p))
    return model


def _check_node(node: onnx.NodeProto, g: _Graph, notes: list[Note]) -> list[Finding]:
    name = node.name or f"<unnamed {node.op_type}>"
    layer = layer_of(node.name)
    op = node.op_type

    def finding(rule: str, message: str, source: str) -> Finding:
        return Finding(name, op, layer, rule, message, source)

    if node.domain not in ("", "ai.onnx"):
        return [finding("domain", f"custom domain {node.domain!r}: TensorRT needs a plugin for it",
                        R.OPERATORS_MD)]
    known = R.OPERATORS.get(op)
    if known is None or not known[0]:
        why = "not in the parser's operator table" if known is None else "not supported (N in the table)"
        return [finding("operator", f"{op} is {why}", R.OPERATORS_MD)]
    out: list[Finding] = []
    if op in R.AVOIDED_OPS:
        out.append(finding("avoided-op", f"{op} imports only with restrictions (loops: static scan "
                                         f"output length; NonZero: data-dependent shape)", R.OPERATORS_MD))
    types = known[1]
    indices = R.DATA_INPUTS.get(op, tuple(range(len(node.input))))
    for i in indices:
        if i >= len(node.input) or not node.input[i]:
            continue
        t = g.types.get(node.input[i])
        if t is not None and types and t not in types:
            out.append(finding("input-type", f"input {i} ({node.input[i]!r}) is {t}; the parser takes "
                                             f"{', '.join(sorted(types))}", R.OPERATORS_MD))
    for rule in R.INPUT_TYPES:
        if rule.op == op and rule.index < len(node.input) and node.input[rule.index]:
            t = g.types.get(node.input[rule.index])
            if t is not None and t not in rule.allowed:
                out.append(finding("input-type", f"{rule.what}, found {t}", rule.source))
    for rule in R.CONSTANT_INPUTS:
        if rule.op == op and rule.index < len(node.input) and node.input[rule.index] \
                and node.input[rule.index] not in g.constants:
            out.append(finding("constant-input", f"{rule.what}; input {rule.index} "
                                                 f"({node.input[rule.index]!r}) is computed", rule.source))
    attrs = _attrs(node)
    for rule in R.ATTRIBUTE_VALUES:
        if rule.op == op and attrs.get(rule.name, rule.default) not in rule.allowed:
            out.append(finding("attribute", f"{rule.what}, found {attrs.get(rule.name)!r}", rule.source))
    if op in R.RNN_ACTIVATION_COUNT:
        out += _check_recurrent(node, attrs, finding)
    if op == "TopK":
        _check_topk(node, g, out, notes, finding, name, layer)
    return out


_DEFAULT_ACTS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}
#: Activations that take activation_alpha / activation_beta (the ONNX spec's reading).
_TAKES = {"Affine": (True, True), "LeakyRelu": (True, False), "ThresholdedRelu": (True, False),
          "ScaledTanh": (True, True), "HardSigmoid": (True, True), "Elu": (True, False)}


def _compact(acts: list[str], values: list[float], slot: int) -> list[float | None]:
    """What the ONNX reference reading (onnxruntime) gives each activation: the k-th activation
    that takes the parameter gets entry k."""
    out, k = [], 0
    for a in acts:
        if _TAKES.get(a, (False, False))[slot] and k < len(values):
            out.append(values[k])
            k += 1
        else:
            out.append(None)
    return out


def _check_recurrent(node, attrs, finding) -> list[Finding]:
    op = node.op_type
    dirs = 2 if attrs.get("direction", "forward") == "bidirectional" else 1
    acts = list(attrs.get("activations") or _DEFAULT_ACTS[op] * dirs)
    out = []
    bad = sorted(set(acts) - R.RNN_ACTIVATIONS)
    if bad:
        out.append(finding("rnn-activation", f"activation(s) {', '.join(bad)} are not accepted "
                                             f"(\"Unknown activation type\")", R.RNN_ACTIVATIONS_SOURCE))
        return out
    read = {}
    for slot, key in ((0, "activation_alpha"), (1, "activation_beta")):
        values = [float(v) for v in attrs.get(key, [])]
        trt = R.trt_activation_params(op, acts, values, slot)
        read[slot] = trt
        for i, (a, want) in enumerate(zip(acts, _compact(acts, values, slot))):
            if want is not None and abs(trt[i] - want) > 1e-7 * max(1.0, abs(want)):
                out.append(finding("activation-params",
                                   f"{key}: TensorRT gives activation {i} ({a}) {trt[i]:g}, the ONNX "
                                   f"reading (onnxruntime) {want:g}; write one entry per activation",
                                   R.ACTIVATION_PARAMS_SOURCE))
                break
    if dirs == 2:
        n = R.RNN_ACTIVATION_COUNT[op]
        if acts[:n] != acts[n:2 * n] or any(read[s][:n] != read[s][n:2 * n] for s in (0, 1)):
            out.append(finding("bidirectional", "forward and reverse activations (and their alpha/beta) "
                                                "must be equal", R.BIDIRECTIONAL_SOURCE))
    return out


def _check_topk(node, g, out, notes, finding, name, layer):
    k_name = node.input[1] if len(node.input) > 1 else ""
    k = g.constants.get(k_name)
    if k is not None:
        from onnx import numpy_helper

        value = int(numpy_helper.to_array(k).reshape(-1)[0])
        if value >= R.TOPK_MAX_K:
            out.append(finding("topk-k", f"K = {value}; the parser takes K < {R.TOPK_MAX_K}", R.TOPK_SOURCE))
    elif k_name:
        notes.append(Note(name, layer, f"K is computed at run time ({k_name!r}): every engine profile "
                                       f"must keep it below {R.TOPK_MAX_K}", R.TOPK_SOURCE))


def render(result: CheckResult) -> str:
    lines = [f"{result.model}: {result.nodes} nodes, {len(result.findings)} finding(s) "
             f"(TensorRT ONNX parser rules, {R.SOURCE_REPO})"]
    lines += [f"  {f}" for f in result.findings]
    lines += [f"  note: {n.node} (layer {n.layer}): {n.message} [{n.source}]" for n in result.notes]
    return "\n".join(lines)
