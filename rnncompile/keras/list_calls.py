"""Keras layers called on a LIST of tensors (the merge layers, Dot, Attention: kinds with
`keras_list_input`), and the masks Keras computes for them.

Keras 3 writes such a layer's compute_mask into the saved functional graph as ops (ExpandDims,
LogicalOr, Any, Concatenate, ConvertToTensor, ...) and passes the result as the next layer's
`mask=`. The layer kind's mask rule reproduces that mask (pinned by the Keras goldens), so such an
ops chain is accepted where every tensor it reads comes from the layer's own inputs (or what they
are computed from): a mask from elsewhere is still refused.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..layer import Layer
from . import graph
from .fields import Mapped, short
from .nodes import Node, contains_tref, is_tref

if TYPE_CHECKING:
    from .graph import Converter, T


def emit_list_call(cv: "Converter", n: Node, kind: type[Layer], mapped: Mapped, refs: list) -> None:
    """A layer called on a list of tensors (merge layers: `keras_list_input`). Keras computes
    its mask from its inputs' masks, so each masked output's mask is its own."""
    if not refs or not all(is_tref(r) for r in refs) or any(contains_tref(a) for a in n.args[1:]) \
            or any(contains_tref(v) for k, v in n.kwargs.items() if k != "mask"):
        cv.fail(f"expected a list of input tensors as the only tensor argument, found "
                  f"{short(n.args)}", n.layer, n.cls)
        return
    xs = [cv._tensor(tuple(r), n) for r in refs]
    if any(x is None for x in xs):
        return
    config = dict(mapped.config)
    for k, v in n.kwargs.items():
        if k in getattr(kind, "keras_call_options", ()) and isinstance(v, bool):
            config[k] = v
        elif k not in ("training", "mask") and v is not None:
            cv.fail(f"is called with argument {k}={short(v)}, which is not supported", n.layer, n.cls)
            return
    given = n.kwargs.get("mask")
    for i, m in enumerate(given if isinstance(given, list) and len(given) == len(xs) else []):
        if m is not None:   # an explicit mask (a bool tensor, or computed by Keras ops) wins
            t = cv.apply_mask(n, xs[i], m, f"{n.spec_name}.mask{i}")
            if t is None:
                return
            xs[i] = t
    for x, m in zip(xs, given if isinstance(given, list) else []):
        used = cv._mask_expr(m, n) if m is not None else None
        if used is graph._BAD:
            return
        if used != x.mask and not merge_mask(cv, used, x):
            cv.fail(f"is called with mask {graph._describe_mask(used)} for input {x.ref!r}, which carries "
                      f"{graph._describe_mask(x.mask)}; a mask passed from elsewhere is not supported", n.layer, n.cls)
            return
    name = n.spec_name
    spec = {"class_name": kind.class_name, "name": name, "inputs": [x.ref for x in xs], **config}
    layer = cv._typed(kind, name, config, [x.type for x in xs])
    cv.typed[n.key] = layer
    cv.layers.append(spec)
    cv._weights(n, layer, mapped)
    for i, t in enumerate(layer.output_types_):
        mask = ("computed", (n.layer, n.index, i)) if t.masked else None
        cv.tensors[(n.layer, n.index, i)] = graph.T(name if i == 0 else f"{name}:{i}", t, mask, n)


def merge_mask(cv: "Converter", used, x: "T") -> bool:
    """Whether `used` is the mask Keras computed for a list-input layer's output (x carries it,
    as ("computed", ...)): Keras writes that layer's compute_mask into the saved graph as ops.
    The layer kind's mask rule reproduces it; accepted when every tensor the ops read comes
    from that layer's own inputs (or what they are computed from), so a mask from elsewhere
    is still refused."""
    if not (isinstance(x.mask, tuple) and x.mask[0] == "computed" and isinstance(used, tuple)
            and used[0] == "opaque"):
        return False
    merge = cv.nodes.get(tuple(x.mask[1][:2]))
    typed = cv.typed.get(merge.key) if merge is not None else None
    if not getattr(typed, "keras_list_input", False):
        return False
    allowed, stack = set(), [merge.key]
    while stack and len(allowed) < 100_000:
        key = stack.pop()
        if key not in allowed:
            allowed.add(key)
            node = cv.nodes.get(key)
            stack.extend(tuple(r[:2]) for r in _trefs(node.args + list(node.kwargs.values()))) if node else None
    seen, stack = set(), [tuple(used[1])]
    while stack:
        key = tuple(stack.pop()[:2])
        if key in seen:
            continue
        seen.add(key)
        node = cv.nodes.get(key)
        if node is None or len(seen) > 100_000:
            return False
        if node.is_op:
            stack.extend(_trefs(node.args + list(node.kwargs.values())))
        elif key not in allowed:
            return False
    return True


def _trefs(v, depth: int = 0) -> list:
    """Every tensor reference inside a node argument (nested lists and dicts)."""
    if is_tref(v):
        return [v]
    if depth > 32:
        return []
    if isinstance(v, list):
        return [t for a in v for t in _trefs(a, depth + 1)]
    if isinstance(v, dict):
        return [t for a in v.values() for t in _trefs(a, depth + 1)]
    return []
