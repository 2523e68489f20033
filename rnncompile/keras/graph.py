"""Rebuilding a Keras model's graph as a spec: its layers, their calls (nodes), the tensors and
masks between them, and each call's weights.

Everything layer-specific comes from the layer kind that imports the Keras class (fields.py):
its spec attributes (`from_keras`), its outputs and mask rule (`output_types` on the typed
inputs), a new mask's Keras form (`keras_new_mask`), its weights (`weight_shapes`, in Keras save
order, found under `keras_weight_paths`), the tensors its Keras call takes (`keras_call_args`),
whether it is stateful (`state_shapes`) and whether it reads token ids (`token_range`).
Graph ordering is linear in the number of calls; each layer's weights are read once.
"""
from __future__ import annotations

import copy
import re
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ModelFileError, Problem, SpecError
from ..layer import REGISTRY, Layer, LayerError, TensorType
from ..layers.set_mask import SetMask
from .fields import KindTable, Mapped, Refused, map_layer, short
from .list_calls import _trefs, emit_list_call, merge_mask
from .nodes import (Node, TRef, contains_tref, data_refs, is_number, is_op, is_tref, parse_node,
                    tensor_list)
from .reader import Source, keras_snake
from .weights import read_layer_weights, weight_plan

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


@dataclass
class T:
    """A converted tensor: its spec reference, type, and the mask the spec will carry with it."""

    ref: str
    type: TensorType
    mask: Any
    node: Node


class Converter:
    def __init__(self, src: Source):
        self.src = src
        self.file = str(src.path)
        self.major = src.major
        self.limits = src.limits
        self.kinds = KindTable()
        self.problems: list[Problem] = []
        self._seen: set[Problem] = set()
        self.layers: list[dict] = []
        self.weights: dict[str, np.ndarray] = {}
        self.entries: dict[str, dict] = {}
        self.nodes: dict[tuple, Node] = {}
        self.tensors: dict[TRef, T] = {}
        self.typed: dict[tuple, Layer] = {}
        self.broken: set[tuple] = set()
        self.token_readers: set[tuple] = set()
        self.layer_weights: dict[str, dict[str, np.ndarray]] = {}
        self.outputs: list[str] = []
        self.mask_values: dict[TRef, T] = {}   # bool tensors built from Keras ops for `mask=`
        self._leaves: dict[tuple, frozenset] = {}
        self.mask_kinds = {c: k for k in REGISTRY.values() for c in getattr(k, "keras_mask_ops", ())}

    # -- problems -----------------------------------------------------------------------------
    def where(self, layer: str | None = None, cls: str | None = None) -> str:
        if layer is None:
            return self.file
        return f"{self.file}: layer {layer!r} ({cls})" if cls else f"{self.file}: layer {layer!r}"

    def fail(self, message: str, layer: str | None = None, cls: str | None = None) -> None:
        p = Problem(self.where(layer, cls), message)
        if p not in self._seen:
            self._seen.add(p)
            self.problems.append(p)

    def refuse(self, message: str) -> SpecError:
        return SpecError([Problem(self.file, message)])

    # -- entry point --------------------------------------------------------------------------
    def run(self) -> tuple[dict, dict[str, np.ndarray]]:
        top = self.src.config
        cls = top.get("class_name")
        cfg = top.get("config")
        if self.major < 2:
            raise ModelFileError(f"Keras {self.src.keras_version} files are not supported "
                                 f"(Keras 2 and 3 are)", where=self.file)
        self._check_custom(top, None, cls)
        if self.problems:
            raise SpecError(self.problems)
        if cls == "Sequential":
            self._sequential(cfg)
        elif cls in ("Functional", "Model"):
            if not isinstance(cfg, dict) or "layers" not in cfg:
                raise self.refuse(f"the model is a {cls} without a layer graph in its config (a "
                                  f"subclassed model, whose call() is Python code); only Sequential "
                                  f"and Functional models can be imported")
            self._functional(cfg)
        else:
            raise self.refuse(f"model class {short(cls)} is not supported: only Sequential and "
                              f"Functional models can be imported (a subclassed model's call() is "
                              f"Python code, which is never run)")
        if self.problems:
            raise SpecError(self.problems)
        name = cfg.get("name") if isinstance(cfg, dict) else None
        spec = {"name": _safe_name(name if isinstance(name, str) and name else self.src.path.stem),
                "layers": self.layers, "outputs": self.outputs}
        return spec, self.weights

    # -- custom objects and code ----------------------------------------------------------------
    def _check_custom(self, entry: Any, name: str | None, cls: Any) -> bool:
        """False (and a problem) when `entry` is a custom object or holds code."""
        if not isinstance(entry, dict):
            self.fail(f"expected a layer config object, found {type(entry).__name__}", name, cls)
            return False
        module = entry.get("module")
        registered = entry.get("registered_name")
        if cls in ("Lambda", "TFOpLambda", "SlicingOpLambda"):
            self.fail(f"{cls} layers hold Python code (serialized function bytecode or a TensorFlow "
                      f"function); rnncompile never runs code from a model file. Replace it with "
                      f"built-in layers", name, cls)
            return False
        if isinstance(module, str) and module and not (module == "keras" or module.startswith("keras.")):
            self.fail(f"custom object from module {module!r} (registered as {short(registered)}): its "
                      f"code would have to be imported and run, which rnncompile never does; only "
                      f"built-in Keras layers are supported", name, cls)
            return False
        if isinstance(registered, str) and registered and registered != cls:
            self.fail(f"custom object registered as {registered!r}: its code would have to be run, "
                      f"which rnncompile never does; only built-in Keras layers are supported", name, cls)
            return False
        return True

    def _layer_entries(self, entries, what: str) -> list:
        if not isinstance(entries, list) or not entries:
            raise self.refuse(f"{what} has no layers")
        if len(entries) > self.limits.max_layers:
            raise self.refuse(f"{len(entries)} layers (limit max_layers={self.limits.max_layers})")
        return entries

    def _is_input_class(self, cls: str) -> bool:
        kind = self.kinds.kind(cls)
        return kind is not None and getattr(kind, "is_model_input", False)

    # -- Sequential -----------------------------------------------------------------------------
    def _sequential(self, cfg) -> None:
        entries = self._layer_entries(cfg if isinstance(cfg, list) else
                                      cfg.get("layers") if isinstance(cfg, dict) else None,
                                      "the Sequential model")
        names = []
        for i, e in enumerate(entries):
            if not isinstance(e, dict):
                raise self.refuse(f"layer {i} of the Sequential model is not an object")
            lcfg = e.get("config") if isinstance(e.get("config"), dict) else {}
            name = e.get("name") or lcfg.get("name") or f"{keras_snake(str(e.get('class_name')))}_{i}"
            if not isinstance(name, str):
                raise self.refuse(f"layer {i} of the Sequential model has a non-text name {short(name)}")
            names.append(name)
        first = entries[0]
        first_cfg = first.get("config") if isinstance(first.get("config"), dict) else {}
        if self._is_input_class(str(first.get("class_name"))):
            start, inp_name, inp_entry = 1, names[0], first
        else:
            # No InputLayer: Keras 2 puts batch_input_shape on the first layer; Keras 3 keeps the
            # built shape in the model's build_config.
            start = 0
            shape = first_cfg.get("batch_input_shape") or first_cfg.get("batch_shape")
            if shape is None and isinstance(cfg, dict):
                bc = cfg.get("build_config")
                shape = cfg.get("build_input_shape") or (bc.get("input_shape") if isinstance(bc, dict) else None)
            if shape is None:
                raise SpecError([Problem(self.where(names[0], str(first.get("class_name"))),
                                         "the Sequential model was never built (no input shape in the "
                                         "file); build it (or give it an Input) before saving")])
            dtype = first_cfg.get("dtype") if isinstance(first_cfg.get("dtype"), str) else "float32"
            inp_name = f"{names[0]}_input"
            inp_entry = {"class_name": "InputLayer",
                         "config": {"batch_shape": shape, "dtype": dtype, "name": inp_name}}
        self.entries[inp_name] = inp_entry
        inp_node = Node(inp_name, 0, str(inp_entry.get("class_name")), inp_entry.get("config") or {},
                        inp_entry, [], {}, 0, explicit_masks=False)
        nodes = [inp_node]
        prev: TRef = (inp_name, 0, 0)
        order: list[tuple[str, str]] = []
        for i in range(start, len(entries)):
            e, name = entries[i], names[i]
            if name in self.entries:
                raise SpecError([Problem(self.where(name), "duplicate layer name in the Sequential model")])
            self.entries[name] = e
            n = Node(name, 0, str(e.get("class_name")),
                     e.get("config") if isinstance(e.get("config"), dict) else {}, e, [prev], {}, i,
                     explicit_masks=False)
            nodes.append(n)
            order.append((name, n.cls))
            prev = (name, 0, 0)
        self.src.weights.set_order(order)
        self._convert([inp_node], nodes, None)

    # -- Functional -----------------------------------------------------------------------------
    def _functional(self, cfg: dict) -> None:
        entries = self._layer_entries(cfg.get("layers"), "the model")
        nodes: list[Node] = []
        order = []
        for i, e in enumerate(entries):
            if not isinstance(e, dict):
                raise self.refuse(f"layer entry {i} is not an object")
            lcfg = e.get("config") if isinstance(e.get("config"), dict) else {}
            name = e.get("name") or lcfg.get("name")
            cls = str(e.get("class_name"))
            if not isinstance(name, str):
                raise self.refuse(f"layer entry {i} ({short(cls)}) has no name")
            if name in self.entries:
                raise SpecError([Problem(self.where(name, cls), "two layers have this name")])
            self.entries[name] = e
            op = is_op(e)
            if not op:
                order.append((name, cls))
            op = op and cls not in self.kinds.ops   # a Keras op a layer kind imports: a layer call
            inbound = e.get("inbound_nodes") or []
            if not isinstance(inbound, list) or len(inbound) > self.limits.max_calls_per_layer:
                raise SpecError([Problem(self.where(name, cls), "malformed inbound_nodes" if not isinstance(
                    inbound, list) else f"{len(inbound)} calls (limit max_calls_per_layer="
                                        f"{self.limits.max_calls_per_layer})")])
            for k, raw in enumerate(inbound):
                try:
                    args, kwargs, explicit = parse_node(raw)
                except Refused as r:
                    raise SpecError([Problem(self.where(name, cls), f"malformed inbound node {k}: {r}")]) from None
                nodes.append(Node(name, k, cls, lcfg, e, args, kwargs, i, op, explicit))
            if self._is_input_class(cls) and not inbound:
                nodes.append(Node(name, 0, cls, lcfg, e, [], {}, i, False, True))
        self.src.weights.set_order(order)
        ins = tensor_list(cfg.get("input_layers"))
        outs = tensor_list(cfg.get("output_layers"))
        if ins is None or outs is None:
            raise self.refuse("the model config has malformed input_layers/output_layers")
        by_key = {n.key: n for n in nodes}
        input_nodes = []
        for t in ins:
            n = by_key.get((t[0], t[1]))
            if n is None or not self._is_input_class(n.cls):
                raise self.refuse(f"model input {t[0]!r} is not an InputLayer")
            input_nodes.append(n)
        self._convert(input_nodes, nodes, outs)

    # -- the conversion proper ------------------------------------------------------------------
    def _convert(self, input_nodes: list[Node], nodes: list[Node], outputs: list[TRef] | None) -> None:
        self.nodes = {n.key: n for n in nodes}
        # Names: every Keras layer name is kept; a layer called more than once gets a copy per
        # extra call, named `<name>.<call>`.
        for n in nodes:
            nm = n.spec_name
            if not n.is_op and (not _NAME_RE.match(nm) or len(nm) > 128):
                self.fail("the layer name cannot be used as an ONNX/spec name (it must match "
                          "[A-Za-z_][A-Za-z0-9_.-]*, at most 128 characters); rename the layer",
                          n.layer, n.cls)
        if self.problems:
            return
        for n in input_nodes:
            self._emit(n)
        ordered, cyclic = self._order(input_nodes, nodes)
        for n in ordered:
            self._emit(n)
        for n in cyclic:
            self.fail("its inputs form a cycle in the model graph", n.layer, n.cls)
        if self.problems:
            return
        if outputs is None:  # Sequential: every output of the last layer
            last = nodes[-1]
            outputs = sorted(t for t in self.tensors if t[:2] == last.key)
        for t in outputs:
            if t not in self.tensors:
                node = self.nodes.get(t[:2])
                if node is not None and node.is_op:
                    self.fail(f"operation {node.cls} is a model output; only layers' outputs are "
                              f"supported (the ops Keras generates for masks feed masks only)",
                              node.layer, node.cls)
                else:
                    self.fail(f"model output {t[0]!r} (node {t[1]}, tensor {t[2]}) does not exist", t[0])
                continue
            self.outputs.append(self.tensors[t].ref)
        if not any(l.state_shapes(l.input_types) for l in self.typed.values()):
            # A fixed batch only matters to stateful layers; keep the batch axis dynamic otherwise.
            for l in self.layers:
                if "inputs" not in l:
                    l.pop("batch_size", None)
        self._token_inputs(input_nodes, nodes)

    def _order(self, input_nodes: list[Node], nodes: list[Node]) -> tuple[list[Node], list[Node]]:
        """Every call after the calls it takes data from, in linear time: the order of repeated
        passes over the calls in config order, each emitting every call whose inputs are ready
        (pass of a call = max over its inputs of their pass, +1 for an input that comes later in
        config order), without making the passes."""
        done = {n.key for n in input_nodes}
        pending = sorted((n for n in nodes if not n.is_op and n.key not in done),
                         key=lambda n: (n.order, n.index))
        pos = {n.key: i for i, n in enumerate(pending)}
        deps: dict[tuple, set] = {}
        users: dict[tuple, list] = defaultdict(list)
        for n in pending:
            deps[n.key] = {r[:2] for r in data_refs(n) if r[:2] in pos} | {k for k in self._op_leaves(n) if k in pos}
            for d in deps[n.key]:
                users[d].append(n.key)
        waiting = {k: len(v) for k, v in deps.items()}
        passes: dict[tuple, int] = {}
        ready = deque(k for k, c in waiting.items() if c == 0)
        while ready:
            k = ready.popleft()
            passes[k] = max([1] + [passes[d] + (pos[d] > pos[k]) for d in deps[k]])
            for u in users[k]:
                waiting[u] -= 1
                if waiting[u] == 0:
                    ready.append(u)
        ordered = sorted((n for n in pending if n.key in passes), key=lambda n: (passes[n.key], pos[n.key]))
        return ordered, [n for n in pending if n.key not in passes]

    def _token_inputs(self, input_nodes: list[Node], nodes: list[Node]) -> None:
        """A float input read only by layers that take token ids (Embedding) holds token ids:
        give it an integer type."""
        readers: dict[tuple, list[tuple]] = defaultdict(list)
        for m in nodes:
            if not m.is_op:
                for r in set(data_refs(m)):
                    readers[r].append(m.key)
        specs = {l["name"]: l for l in self.layers}
        for n in input_nodes:
            spec = specs[n.spec_name]
            users = readers.get((n.layer, 0, 0), [])
            if spec["dtype"].startswith("float") and users and all(u in self.token_readers for u in users):
                spec["dtype"] = "int32"

    # -- one call -------------------------------------------------------------------------------
    def _emit(self, n: Node) -> None:
        before = len(self.problems)
        try:
            self._emit_call(n)
        except LayerError as e:
            self.fail(e.message, n.layer, n.cls)
        if len(self.problems) > before or (n.layer, n.index, 0) not in self.tensors:
            self.broken.add(n.key)

    def _emit_call(self, n: Node) -> None:
        if not self._check_custom(n.entry, n.layer, n.cls):
            return
        name = n.spec_name
        mapped = map_layer(n.cls, n.config, self.major, self.kinds,
                           assets=lambda filename: self.src.asset(n.layer, filename))
        kind = mapped.kind
        if getattr(kind, "is_model_input", False):
            layer = self._typed(kind, name, mapped.config, [])
            self.layers.append({"class_name": kind.class_name, "name": name, **mapped.config})
            self.tensors[(n.layer, n.index, 0)] = T(name, layer.output_types_[0], None, n)
            self.typed[n.key] = layer
            return
        x_ref = n.args[0] if n.args else None
        if getattr(kind, "keras_list_input", False) and isinstance(x_ref, list):
            emit_list_call(self, n, kind, mapped, x_ref)
            return
        if not is_tref(x_ref):
            self.fail("expected a single input tensor as the first argument" +
                      (" (layers that take several tensors, e.g. merge layers, are not supported)"
                       if isinstance(x_ref, list) else ""), n.layer, n.cls)
            return
        x = self._tensor(x_ref, n)
        if x is None:
            return
        init_refs = self._initial_state(n, kind)
        if init_refs is None:
            return
        init = [self._tensor(r, n) for r in init_refs]
        if any(t is None for t in init):
            return
        x = self._bool_mask(n, kind, x)
        if x is None:
            return
        ignore_mask = self._check_mask(n, kind, x, init_refs)
        if ignore_mask is None:
            return
        if n.kwargs.get("training") is True and mapped.training_random:
            self.fail("is called with training=True, so Keras applies its dropout or noise even in "
                      "predict(); that is random and cannot be compiled. Call it without training=True",
                      n.layer, n.cls)
            return
        spec = {"class_name": kind.class_name, "name": name, "inputs": x.ref, **mapped.config}
        if init:
            spec["initial_state"] = [t.ref for t in init]
        if ignore_mask:
            if "ignore_mask" not in kind.attributes:
                raise LayerError("Keras runs this call without its input's mask, which this layer kind "
                                 "cannot express (no ignore_mask attribute)")
            spec["ignore_mask"] = True
        xtype = x.type
        if x.node is not None and getattr(self.typed.get(x.node.key), "is_model_input", False) \
                and xtype.dtype.startswith("float") and kind.token_range is not Layer.token_range:
            probe = kind(name, self._defaults(kind, spec))
            if probe.token_range() is not None:   # a Keras 2 Sequential's float input of token ids
                xtype = TensorType(xtype.shape, "int32", xtype.masked)
                self.token_readers.add(n.key)
        layer = self._typed(kind, name, {k: v for k, v in spec.items() if k not in ("name", "inputs")},
                            [xtype] + [t.type for t in init])
        if n.index > 0 and layer.state_shapes(layer.input_types):
            self.fail("a stateful layer called more than once shares one state in Keras; rnncompile "
                      "cannot express that", n.layer, n.cls)
            return
        self.typed[n.key] = layer
        self.layers.append(spec)
        self._weights(n, layer, mapped)
        new = layer.keras_new_mask()
        for i, t in enumerate(layer.output_types_):
            if not t.masked:
                mask = None
            elif new is not None:
                mask = (new[0], tuple(x_ref), float(new[1]))
            elif x.type.masked:
                mask = x.mask
            else:
                mask = ("computed", (n.layer, n.index, i))
            self.tensors[(n.layer, n.index, i)] = T(name if i == 0 else f"{name}:{i}", t, mask, n)

    @staticmethod
    def _defaults(kind: type[Layer], spec: dict) -> dict:
        out = {k: copy.deepcopy(v["default"]) for k, v in kind.attributes.items() if "default" in v}
        out.update({k: v for k, v in spec.items() if k not in ("class_name", "name", "inputs")})
        return out

    def _typed(self, kind: type[Layer], name: str, config: dict, inputs: list[TensorType]) -> Layer:
        """An instance of the kind, typed by its shape rule (LayerError when it cannot be)."""
        try:
            layer = kind(name, self._defaults(kind, config), "$")
        except SpecError as e:
            raise LayerError("; ".join(f"{p.where.removeprefix('$.')}: {p.message}" for p in e.problems)) from None
        layer.input_types = list(inputs)
        layer.output_types_ = list(layer.output_types(layer.input_types))
        return layer

    def _tensor(self, ref: TRef, consumer: Node) -> T | None:
        t = self.tensors.get(tuple(ref))
        if t is not None:
            return t
        if tuple(ref[:2]) in self.broken:
            return None  # already reported
        src = self.nodes.get(tuple(ref[:2]))
        if src is not None and src.is_op:
            self.fail(f"takes the result of operation {src.cls} {src.layer!r} as data; Keras ops "
                      f"(keras.ops.* / tensor arithmetic in a functional model) are not supported, "
                      f"except {', '.join(sorted(self.kinds.ops)) or 'none'} and the ones Keras generates "
                      f"to compute masks", consumer.layer, consumer.cls)
        elif src is not None:
            self.fail(f"takes output {ref[2]} of {ref[0]!r}, which has no such output",
                      consumer.layer, consumer.cls)
        else:
            self.fail(f"takes an input from {ref[0]!r} (call {ref[1]}), which is not in the model",
                      consumer.layer, consumer.cls)
        return None

    def _initial_state(self, n: Node, kind: type[Layer]) -> list | None:
        """The initial-state tensors of a call (kinds whose Keras call takes `initial_state`);
        None (and a problem) for a call passing tensors the kind cannot take."""
        params = kind.keras_call_args
        kw = n.kwargs
        if "initial_state" not in params:
            extra = [a for a in n.args[1 + len(params):] if a is not None]
            if "__extra_inputs__" in kw or any(contains_tref(a) for a in extra):
                self.fail("takes more than one input tensor; only single-input layers (and the "
                          "initial_state of recurrent layers) are supported", n.layer, n.cls)
                return None
            for k, v in kw.items():
                if k not in ("training", "mask") and contains_tref(v):
                    self.fail(f"is called with tensor argument {k!r}, which is not supported", n.layer, n.cls)
                    return None
            return []
        init = kw.get("initial_state")
        if init is None and "__extra_inputs__" in kw:
            init = kw["__extra_inputs__"]
        at = 1 + params.index("initial_state")
        if init is None and len(n.args) > at:
            init = n.args[at]
        for k, v in kw.items():
            if k not in ("training", "mask", "initial_state", "__extra_inputs__") and v is not None:
                self.fail(f"is called with argument {k}={short(v)}, which is not supported "
                          f"(supported: initial_state, mask)", n.layer, n.cls)
                return None
        if init is None:
            return []
        if is_tref(init):
            init = [init]
        if not isinstance(init, list) or not all(is_tref(t) for t in init):
            self.fail(f"initial_state must be a list of tensors, found {short(init)}", n.layer, n.cls)
            return None
        return [tuple(t) for t in init]

    # -- masks ------------------------------------------------------------------------------------
    def _check_mask(self, n: Node, kind: type[Layer], x: T, init_refs: list) -> bool | None:
        """Whether the call runs without its input's mask (Keras 3 drops it for a call with
        initial_state tensors and no mask); None (and a problem) for a mask rnncompile cannot
        give the layer."""
        if n.explicit_masks and "mask" in kind.keras_call_args:
            pos = 1 + kind.keras_call_args.index("mask")
            given = n.kwargs.get("mask", n.args[pos] if len(n.args) > pos else None)
            if given is not None:
                used = self._mask_expr(given, n)
                if used is _BAD:
                    return None
                if used != x.mask and not merge_mask(self, used, x):
                    self.fail(f"is called with mask {_describe_mask(used)}, but rnncompile derives a "
                              f"layer's mask from its input, which carries {_describe_mask(x.mask)}; a "
                              f"mask passed from elsewhere is not supported unless it is a bool (batch, "
                              f"time) tensor: a bool model input, or computed from model tensors by the ops "
                              f"{', '.join(sorted(self.mask_kinds))}", n.layer, n.cls)
                    return None
            elif init_refs and x.mask is not None:
                # Keras 3 fills a missing mask in (from the input, at run time) only for a call
                # with one tensor argument; with initial_state tensors the layer runs unmasked,
                # and its output sequence still carries the input's mask on.
                return True
        elif not n.explicit_masks and n.kwargs.get("mask") is not None:
            self.fail("is called with an explicit mask argument; only masks from Embedding(mask_zero) "
                      "and Masking layers, and bool model inputs, are supported", n.layer, n.cls)
            return None
        return False

    def _bool_mask(self, n: Node, kind: type[Layer], x: T) -> T | None:
        """A call given a bool [batch, time] tensor as `mask=` (a bool model input, or one computed
        by Keras ops from model tensors): a SetMask layer named `<layer>.mask` puts it on x
        (replacing x's own mask, as Keras does: the explicit mask wins, and is the mask the
        layer passes on). None (and a problem) for a computed mask rnncompile cannot build."""
        if not n.explicit_masks or "mask" not in kind.keras_call_args:
            return x
        pos = 1 + kind.keras_call_args.index("mask")
        given = n.kwargs.get("mask", n.args[pos] if len(n.args) > pos else None)
        return self.apply_mask(n, x, given, f"{n.spec_name}.mask")

    def apply_mask(self, n: Node, x: T, given, name: str) -> T | None:
        """x with the explicit mask `given` (a Keras tensor reference) put on it by a SetMask
        layer `name`, where it is a bool tensor or computed by Keras ops from model tensors; x
        itself where `given` is x's own mask as Keras computes it (the Embedding/Masking/merge
        ops), or no bool tensor (then _check_mask judges it)."""
        if isinstance(given, list) and len(given) == 1:
            given = given[0]
        if not is_tref(given):
            return x
        ref = tuple(given)
        m = self.tensors.get(ref)
        if m is None:
            src = self.nodes.get(ref[:2])
            if src is None or not src.is_op:
                return x
            used = self._resolve_mask(ref)
            if used == x.mask or merge_mask(self, used, x):
                return x   # the mask Keras derives from x itself: nothing to add
            m = self._mask_value(ref, n)
            if m is None:
                return None
        elif m.type.dtype != "bool":
            return x
        layer = self._typed(SetMask, name, {}, [x.type, m.type])
        self.layers.append({"class_name": SetMask.class_name, "name": name, "inputs": [x.ref, m.ref]})
        return T(name, layer.output_types_[0], self._resolve_mask(ref), x.node)

    def _mask_value(self, ref: TRef, n: Node, depth: int = 0) -> T | None:
        """The bool tensor that the Keras ops behind `ref` compute, as spec layers (one per op
        node, each built once): Compare, LogicalOp, ReduceBool (the kinds with `keras_mask_ops`)
        over model tensors. None (and a problem naming the op and why) otherwise."""
        t = self.tensors.get(ref) or self.mask_values.get(ref)
        if t is not None:
            return t
        src = self.nodes.get(ref[:2])
        if src is None or not src.is_op:
            return self._tensor(ref, n)
        what = f"is called with a mask computed by operation {src.cls} {src.layer!r}"
        kind = self.mask_kinds.get(src.cls)
        if kind is None:
            self.fail(f"{what}, which cannot be imported into a mask (mask operations rnncompile imports: "
                      f"{', '.join(sorted(self.mask_kinds))}, on model inputs and layer outputs)", n.layer, n.cls)
            return None
        if depth > 32 or ref[2] != 0:
            self.fail(f"{what}: {'nested more than 32 deep' if depth > 32 else 'an unknown output'}",
                      n.layer, n.cls)
            return None
        try:
            config, args = kind.from_keras_op(src.cls, src.config, src.args, src.kwargs)
        except ValueError as e:
            self.fail(f"{what}: {e}", n.layer, n.cls)
            return None
        arglist = args if isinstance(args, list) else [args]
        if not all(is_tref(a) for a in arglist):
            self.fail(f"{what}: expected tensor arguments, found {short(args)}", n.layer, n.cls)
            return None
        ins = [self._mask_value(tuple(a), n, depth + 1) for a in arglist]
        if any(t is None for t in ins):
            return None
        name = src.spec_name
        if not _NAME_RE.match(name) or len(name) > 128 or any(l["name"] == name for l in self.layers):
            self.fail(f"{what}, whose name cannot be used as a spec layer name", n.layer, n.cls)
            return None
        try:
            layer = self._typed(kind, name, config, [t.type for t in ins])
        except LayerError as e:
            self.fail(f"{what}: {e.message}", n.layer, n.cls)
            return None
        refs = [t.ref for t in ins]
        self.layers.append({"class_name": kind.class_name, "name": name,
                            "inputs": refs if isinstance(args, list) else refs[0], **config})
        self.typed[src.key] = layer
        t = self.mask_values[ref] = T(name, layer.output_types_[0], None, src)
        return t

    def _op_leaves(self, n: Node) -> set:
        """The layer calls whose outputs the Keras ops in n's arguments read (a computed `mask=`
        runs after them)."""
        out: set = set()
        for r in _trefs(n.args[1:] + list(n.kwargs.values())):
            out |= self._leaves_of(tuple(r[:2]))
        return out

    def _leaves_of(self, key: tuple, depth: int = 0) -> frozenset:
        got = self._leaves.get(key)
        if got is not None:
            return got
        node = self.nodes.get(key)
        if node is None or not node.is_op:
            return frozenset([key])
        if depth > 64:
            return frozenset()
        self._leaves[key] = frozenset()   # a cycle stops here
        out = frozenset().union(*[self._leaves_of(tuple(r[:2]), depth + 1)
                                  for r in _trefs(node.args + list(node.kwargs.values()))])
        self._leaves[key] = out
        return out

    def _mask_expr(self, value, n: Node):
        """The mask a Keras 3 layer call used, as an expression comparable with the spec's."""
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if isinstance(value, list) and all(v is None for v in value):
            return None
        if not is_tref(value):
            self.fail(f"is called with mask {short(value)}, which is not supported", n.layer, n.cls)
            return _BAD
        return self._resolve_mask(tuple(value))

    def _resolve_mask(self, ref: TRef, depth: int = 0):
        src = self.nodes.get(ref[:2])
        if src is not None and src.is_op and depth < 2:
            a = src.args
            if src.cls == "NotEqual" and len(a) == 2 and is_tref(a[0]) and is_number(a[1]):
                return ("not_equal", tuple(a[0]), float(a[1]))
            if src.cls == "NotEqual" and len(a) == 2 and is_tref(a[1]) and is_number(a[0]):
                return ("not_equal", tuple(a[1]), float(a[0]))
            if (src.cls == "Any" and len(a) == 1 and is_tref(a[0])
                    and src.config.get("axis") == -1 and not src.config.get("keepdims")):
                inner = self._resolve_mask(tuple(a[0]), depth + 1)
                if inner[0] == "not_equal":
                    return ("any_not_equal", inner[1], inner[2])
        return ("opaque", ref)

    # -- weights -----------------------------------------------------------------------------------
    def _weights(self, n: Node, layer: Layer, mapped: Mapped) -> None:
        """The layer's weights, by spec key, from the Keras layer's saved arrays (read once per
        Keras layer, shared by its calls)."""
        plan = weight_plan(layer, mapped)
        cached = self.layer_weights.get(n.layer)
        if cached is None:
            cached = self.layer_weights[n.layer] = read_layer_weights(
                self.src.weights, n, layer, plan, self.where(n.layer, n.cls),
                lambda m: self.fail(m, n.layer, n.cls))
        for key, _, _ in plan:
            if key in cached:
                self.weights[f"{n.spec_name}/{key}"] = cached[key]

_BAD = object()


def _safe_name(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(name))[:128] or "model"
    return name if re.match(r"^[A-Za-z_]", name) else f"m_{name}"[:128]


def _describe_mask(m) -> str:
    if m is None:
        return "no mask"
    if m[0] == "not_equal":
        return f"the mask ({m[1][0]} != {m[2]:g})"
    if m[0] == "any_not_equal":
        return f"the Masking mask of {m[1][0]!r} (value {m[2]:g})"
    return f"a mask computed by {m[1][0]!r}"
