"""The Keras node graph of a model config: layer calls (nodes) and the tensors they pass, parsed
from Keras 3 (`{"args": [...], "kwargs": {...}}` with `__keras_tensor__` references) and Keras 2
(`[[layer, node, tensor, kwargs], ...]`) inbound nodes, as data with bounded nesting."""
from __future__ import annotations

from dataclasses import dataclass

from .fields import Refused, short

MAX_DEPTH = 64  # nesting of a call's arguments
TRef = tuple  # (layer name, node index, tensor index)


@dataclass
class Node:
    layer: str
    index: int
    cls: str
    config: dict
    entry: dict
    args: list
    kwargs: dict
    order: int
    is_op: bool = False
    explicit_masks: bool = True   # Keras 3 functional: the mask the layer used is in kwargs

    @property
    def key(self) -> tuple:
        return (self.layer, self.index)

    @property
    def spec_name(self) -> str:
        return self.layer if self.index == 0 else f"{self.layer}.{self.index}"


#: Keras 3 operation classes that Keras itself inserts into functional configs to compute masks
#: (Embedding/Masking, and the compute_mask of merge layers and Attention). Keras 3's legacy .h5
#: saving writes ops without their `module`; unlike a layer (the Concatenate layer vs
#: ops.concatenate) their config has no `trainable`.
MASK_OPS = ("NotEqual", "Any", "All", "ExpandDims", "BroadcastTo", "ZerosLike", "OnesLike", "LogicalOr",
            "LogicalAnd", "LogicalNot", "Concatenate", "ConvertToTensor",
            # ...and the ops a model may compute an explicit `mask=` with (layers/compare.py,
            # logical.py, reduce_bool.py: the kinds with `keras_mask_ops`)
            "Equal", "Greater", "GreaterEqual", "Less", "LessEqual", "LogicalXor", "Cast")


def is_op(entry: dict) -> bool:
    module = entry.get("module")
    if isinstance(module, str) and module:
        return module.startswith("keras.src.ops") or module.startswith("keras.ops")
    inbound = entry.get("inbound_nodes")
    cfg = entry.get("config")
    return entry.get("class_name") in MASK_OPS and isinstance(inbound, list) \
        and all(isinstance(x, dict) for x in inbound) and not (isinstance(cfg, dict) and "trainable" in cfg)


def is_tref(v) -> bool:
    return isinstance(v, tuple) and len(v) == 3 and isinstance(v[0], str)


def contains_tref(v) -> bool:
    if is_tref(v):
        return True
    if isinstance(v, list):
        return any(contains_tref(x) for x in v)
    if isinstance(v, dict):
        return any(contains_tref(x) for x in v.values())
    return False


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_history(h) -> bool:
    return (isinstance(h, list) and len(h) == 3 and isinstance(h[0], str)
            and all(isinstance(x, int) for x in h[1:]))


def parse_value(v, depth: int = 0):
    """Keras 3 node arguments: `__keras_tensor__` objects become (layer, node, index) tuples."""
    if depth > MAX_DEPTH:
        raise Refused(f"arguments nested more than {MAX_DEPTH} levels deep")
    if isinstance(v, dict):
        if v.get("class_name") == "__keras_tensor__":
            cfg = v.get("config")
            h = cfg.get("keras_history") if isinstance(cfg, dict) else None
            if not is_history(h):
                raise Refused(f"malformed keras_history {short(h)}")
            return (h[0], h[1], h[2])
        return {k: parse_value(x, depth + 1) for k, x in v.items()}
    if isinstance(v, list):
        return [parse_value(x, depth + 1) for x in v]
    return v


def keras2_refs(v, depth: int = 0):
    if depth > MAX_DEPTH:
        raise Refused(f"arguments nested more than {MAX_DEPTH} levels deep")
    if isinstance(v, list) and len(v) >= 3 and is_history(v[:3]):
        return (v[0], v[1], v[2])
    if isinstance(v, list):
        return [keras2_refs(x, depth + 1) for x in v]
    return v


def parse_node(raw) -> tuple[list, dict, bool]:
    if isinstance(raw, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
        args = parse_value(raw.get("args", []))
        kwargs = parse_value(raw.get("kwargs", {}))
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise Refused("args must be a list and kwargs an object")
        return args, kwargs, True
    if isinstance(raw, list):  # Keras 2: [[layer, node, tensor, kwargs], ...]
        refs = []
        kwargs: dict = {}
        if not raw:
            raise Refused("an inbound node with no input")
        for item in raw:
            if (not isinstance(item, list) or len(item) < 3 or not isinstance(item[0], str)
                    or not all(isinstance(x, int) and not isinstance(x, bool) for x in item[1:3])):
                raise Refused(f"unexpected entry {short(item)}")
            refs.append((item[0], item[1], item[2]))
            if len(item) > 3 and isinstance(item[3], dict) and not kwargs:
                kwargs = {k: keras2_refs(v) if k in ("initial_state", "mask", "constants") else v
                          for k, v in item[3].items()}
        args = [refs[0]]
        if len(refs) > 1:
            kwargs = dict(kwargs, __extra_inputs__=refs[1:])
        return args, kwargs, False
    raise Refused(f"expected an object or a list, found {type(raw).__name__}")


def tensor_list(v, depth: int = 0) -> list[TRef] | None:
    """input_layers / output_layers: [name, node, index], a list of those, or a dict of those."""
    if v is None or depth > MAX_DEPTH:
        return None
    if isinstance(v, dict):
        items = [v[k] for k in sorted(v)]
    elif is_history(v):
        return [(v[0], v[1], v[2])]
    elif isinstance(v, list):
        items = v
    else:
        return None
    out = []
    for x in items:
        sub = tensor_list(x, depth + 1)
        if sub is None:
            return None
        out += sub
    return out


def data_refs(n: Node) -> list[TRef]:
    refs = []
    if n.args and is_tref(n.args[0]):
        refs.append(tuple(n.args[0]))
    elif n.args and isinstance(n.args[0], list):       # a merge layer's list of inputs
        refs.extend(tuple(t) for t in n.args[0] if is_tref(t))
    init = n.kwargs.get("initial_state")
    if init is None:
        init = n.kwargs.get("__extra_inputs__")
    if init is None and len(n.args) > 1:
        init = n.args[1]
    for t in (init if isinstance(init, list) else [init]):
        if is_tref(t):
            refs.append(tuple(t))
    return refs
