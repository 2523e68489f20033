"""Loading a spec: JSON -> validated, shape- and mask-inferred `Model`, with its weights.

Every problem is collected (not just the first) and raised together as one SpecError whose
entries each carry a JSON path such as `$.layers[3].units`.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import layers as _builtin_layers  # noqa: F401  (registers the built-in kinds)
from . import limits
from .errors import ModelFileError, Problem, SpecError
from .jsonfile import read_json_file, too_deep
from .layer import REGISTRY, Layer, LayerError, Ref, TensorType
from .npz import NpzFile, expected_text, summarize
from .schema import REF_PATTERN, json_path, layer_schema, spec_schema, validate

#: Refuse models whose weights alone would take more than this (before allocating anything).
MAX_PARAMETERS = 1 << 28  # 268M parameters, 1 GiB of float32
#: Refuse a layer output whose fixed sizes alone make one sample larger than this (verification
#: and the reference would allocate batch x this many float64 values).
MAX_SAMPLE_VALUES = 1 << 24  # 16M values, 64 MiB of float32 per sample


@dataclass
class StateSpec:
    """A carried state of a stateful layer: a model input and a model output."""

    layer: str
    suffix: str
    shape: tuple[int, ...]  # without batch

    @property
    def input_name(self) -> str:
        return f"{self.layer}_{self.suffix}_in"

    @property
    def output_name(self) -> str:
        return f"{self.layer}_{self.suffix}_out"


@dataclass
class Model:
    """A validated, typed model: layers in an order where inputs come first, model inputs and
    outputs, the carried states of stateful layers, and the weights."""

    name: str
    layers: dict[str, Layer]
    inputs: list[str]
    outputs: list[Ref]
    weights: dict[str, np.ndarray]
    spec: dict
    source: str = "<dict>"
    states: list[StateSpec] = field(default_factory=list)
    _weight_keys: tuple | None = field(default=None, init=False, repr=False, compare=False)

    def layer_weights(self, layer: Layer) -> dict[str, np.ndarray]:
        """One layer's weights, keyed relative to it. A layer name has no '/', so the layer of a
        weight key is the part before its first '/': the keys are grouped by layer once (for this
        weights dict), not scanned for every layer (10,000 layers took a minute per pass)."""
        index = self._weight_keys
        if index is None or index[0] is not self.weights or index[1] != len(self.weights):
            groups: dict[str, list[str]] = {}
            for k in self.weights:
                groups.setdefault(k.split("/", 1)[0], []).append(k)
            index = self._weight_keys = (self.weights, len(self.weights), groups)
        n = len(layer.name) + 1
        return {k[n:]: self.weights[k] for k in index[2].get(layer.name, ()) if k in self.weights}

    def output_type(self, ref: Ref) -> TensorType:
        return self.layers[ref.layer].output_types_[ref.index]

    def output_name(self, ref: Ref) -> str:
        layer = self.layers[ref.layer]
        suffix = layer.output_names()[ref.index]
        return layer.name if suffix == "output" else f"{layer.name}_{suffix}"

    @property
    def output_names(self) -> list[str]:
        return [self.output_name(r) for r in self.outputs]

    def input_type(self, name: str) -> TensorType:
        return self.layers[name].output_types_[0]

    @property
    def digest(self) -> str:
        """sha256 of the canonical spec (less where its weights came from) and the weights
        themselves: the identity of a build."""
        spec = {k: v for k, v in self.spec.items() if k not in ("weights", "seed")}
        h = hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode())
        for k in sorted(self.weights):
            w = np.ascontiguousarray(self.weights[k])
            h.update(f"{k}|{w.dtype.str}|{w.shape}".encode())
            h.update(w.tobytes())
        return h.hexdigest()

    @property
    def parameter_count(self) -> int:
        return int(sum(w.size for w in self.weights.values()))


# ---------------------------------------------------------------------------------------------


def _snake(class_name: str) -> str:
    """Keras's default layer names: LSTM -> lstm, SimpleRNN -> simple_rnn."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", class_name).lower()


def _with_defaults(cls: type[Layer], config: dict) -> dict:
    out = {k: copy.deepcopy(v["default"]) for k, v in cls.attributes.items() if "default" in v}
    out.update({k: v for k, v in config.items() if k not in ("class_name", "name", "inputs")})
    return out


def make_inner_layer(config: Any, name: str, path: str, base: type) -> Layer:
    """Validate and build a layer that lives inside another (Bidirectional's `layer`)."""
    if not isinstance(config, dict):
        raise SpecError([Problem(path, f"expected a layer object, found {type(config).__name__}")])
    kind = config.get("class_name")
    cls = REGISTRY.get(kind) if isinstance(kind, str) else None
    if cls is None or not issubclass(cls, base):
        ok = sorted(k for k, c in REGISTRY.items() if issubclass(c, base))
        raise SpecError([Problem(f"{path}.class_name",
                                 f"expected one of {ok}, found {config.get('class_name')!r}")])
    schema = layer_schema(cls)
    schema["properties"] = {k: v for k, v in schema["properties"].items()
                            if k not in ("inputs", "initial_state", "ignore_mask")}
    problems = validate(config, schema, path, cls.class_name)
    if problems:
        raise SpecError(problems)
    return cls(name, _with_defaults(cls, config), path)


def _parse_ref(text: str) -> Ref:
    name, _, idx = text.partition(":")
    return Ref(name, int(idx) if idx else 0)


def read_json(path: str | Path, what: str = "spec") -> Any:
    return read_json_file(path, what, SpecError)


def non_finite_numbers(value: Any, root: str = "$") -> list[Problem]:
    """Every NaN or infinite number in a parsed spec (JSON allows neither; Python's parser and
    dict specs do), by JSON path."""
    problems, stack = [], [(value, root)]
    while stack:
        node, path = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            problems.append(Problem(path, f"expected a finite number, found {node!r}"))
        elif isinstance(node, dict):
            stack.extend((v, json_path([k], path)) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(node))
    return sorted(problems, key=lambda p: p.where)


def load_spec(source: str | Path | dict, weights: dict[str, np.ndarray] | None = None,
              base_dir: str | Path | None = None) -> Model:
    """Load, validate and type a spec (a path to a JSON file, or the parsed dict). `weights`
    overrides the spec's weights file. Raises SpecError listing every problem."""
    if isinstance(source, (str, Path)):
        src_name = str(source)
        base_dir = Path(source).parent if base_dir is None else Path(base_dir)
        spec = read_json(source)
    else:
        src_name = "<dict>"
        spec = copy.deepcopy(source)
        base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
    if not isinstance(spec, dict):
        raise SpecError([Problem("$", f"expected a JSON object, found {type(spec).__name__}")])
    if too_deep(spec, limits.current().json_depth):
        raise SpecError([Problem("$", f"nested deeper than {limits.current().json_depth} levels")])
    bad_numbers = non_finite_numbers(spec)
    if bad_numbers:
        raise SpecError(bad_numbers)

    top = spec_schema()
    top_shallow = dict(top, properties=dict(top["properties"]))
    top_shallow["properties"]["layers"] = {"type": "array", "minItems": 1, "maxItems": 10000,
                                           "items": {"type": "object"}}
    top_shallow.pop("$defs")
    problems = validate(spec, top_shallow, "$", "the spec")
    builder = _Builder(spec, base_dir, src_name)
    if problems:
        layers = spec.get("layers")
        if isinstance(layers, list) and layers and all(isinstance(l, dict) for l in layers):
            builder.problems = problems
            builder._make_layers()  # list the layers' problems too, not just the top level's
            problems = builder.problems
        raise SpecError(problems)

    model = builder.build(weights)
    return model


class _Builder:
    def __init__(self, spec: dict, base_dir: Path, source: str):
        self.spec = spec
        self.base_dir = base_dir
        self.source = source
        self.problems: list[Problem] = []
        self.layers: dict[str, Layer] = {}

    def fail(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message))

    def check(self) -> None:
        if self.problems:
            raise SpecError(self.problems)

    def build(self, weights: dict | None) -> Model:
        self._make_layers()
        self.check()
        self._infer()
        outputs = self._outputs()
        self.check()
        inputs = [n for n, l in self.layers.items() if l.is_model_input]
        if not inputs:
            self.fail("$.layers", "a model needs at least one Input layer")
        states = [StateSpec(l.name, suffix, shape) for l in self.layers.values()
                  for suffix, shape in l.state_shapes(l.input_types)]
        self._check_names(inputs, outputs, states)
        self.check()
        name = self.spec.get("name", "model")
        model = Model(name, self.layers, inputs, outputs, {}, self.spec, self.source, states)
        model.weights = self._weights(weights)
        self.check()
        return model

    # -- layers and references ----------------------------------------------------------------
    def _make_layers(self) -> None:
        counts: dict[str, int] = {}
        prev: str | None = None
        for i, cfg in enumerate(self.spec["layers"]):
            path = f"$.layers[{i}]"
            kind = cfg.get("class_name")
            cls = REGISTRY.get(kind) if isinstance(kind, str) else None
            if cls is None:
                what = "required field missing" if "class_name" not in cfg else f"unknown layer kind {kind!r}"
                self.fail(f"{path}.class_name", f"{what}; expected one of: {', '.join(sorted(REGISTRY))}")
                prev = cfg.get("name") if isinstance(cfg.get("name"), str) else None
                continue
            try:   # files a layer names (a vocabulary file) are read into its config: the spec is self-contained
                cfg = self.spec["layers"][i] = cls.resolve_files(cfg, self.base_dir, path)
            except SpecError as e:
                self.problems += e.problems
                continue
            errs = validate(cfg, layer_schema(cls), path, cls.class_name)
            if errs:
                self.problems += errs
                prev = cfg.get("name") if isinstance(cfg.get("name"), str) else None
                continue
            name = cfg.get("name")
            if name is None:
                base = _snake(cls.class_name)
                n = counts.get(base, 0)
                name = base if n == 0 else f"{base}_{n}"
                while name in self.layers:
                    n += 1
                    name = f"{base}_{n}"
                counts[base] = n + 1
            if name in self.layers:
                self.fail(f"{path}.name", f"duplicate layer name {name!r}")
                continue
            try:
                layer = cls(name, _with_defaults(cls, cfg), path)
            except SpecError as e:
                self.problems += e.problems
                continue
            for fld, msg in layer.check():
                self.fail(f"{path}.{fld}" if fld else path, msg)
            # references
            refs = cfg.get("inputs")
            if layer.is_model_input:
                if refs is not None:
                    self.fail(f"{path}.inputs", "an Input layer takes no inputs")
                layer.inbound = []
            else:
                if refs is None:
                    if prev is None:
                        self.fail(path, "the first layer must be an Input (or name its `inputs`)")
                        refs = []
                    else:
                        refs = [prev]
                elif isinstance(refs, str):
                    refs = [refs]
                layer.inbound = [self._resolve(r, f"{path}.inputs") for r in refs]
                for fld in cls.reference_fields:
                    for j, r in enumerate(cfg.get(fld) or []):
                        layer.inbound.append(self._resolve(r, f"{path}.{fld}[{j}]"))
            self.layers[name] = layer
            prev = name

    def _resolve(self, text: str, where: str) -> Ref:
        if not isinstance(text, str) or not re.match(REF_PATTERN, text):
            self.fail(where, f"expected a reference `layer` or `layer:k`, found {text!r}")
            return Ref("", 0)
        ref = _parse_ref(text)
        if ref.layer not in self.layers:
            self.fail(where, f"unknown layer {ref.layer!r} (a layer can only use layers defined before it)")
        return ref

    # -- inference: the generic shape and mask pass ---------------------------------------------
    def _infer(self) -> None:
        broken: set[str] = set()
        for layer in self.layers.values():
            types = []
            ok = True
            for ref in layer.inbound:
                src = self.layers.get(ref.layer)
                if src is None or ref.layer in broken:
                    ok = False
                    continue
                if ref.index >= len(src.output_types_):
                    self.fail(layer.path, f"{ref} does not exist: {src.name!r} has "
                                          f"{len(src.output_types_)} output(s) "
                                          f"({', '.join(src.output_names())})")
                    ok = False
                    continue
                types.append(src.output_types_[ref.index])
            if not ok:
                broken.add(layer.name)
                continue
            layer.input_types = types
            try:
                layer.output_types_ = list(layer.output_types(types))
                if len(layer.output_types_) != len(layer.output_names()):
                    raise LayerError(f"layer kind {layer.class_name} declares "
                                     f"{len(layer.output_names())} output names for "
                                     f"{len(layer.output_types_)} outputs")
                for t in layer.output_types_:
                    size = int(np.prod([d for d in t.shape[1:] if d is not None], dtype=object))
                    if size > MAX_SAMPLE_VALUES:
                        raise LayerError(f"output {t} holds {size} values per sample; the limit is "
                                         f"{MAX_SAMPLE_VALUES} (fixed sizes this large would exhaust "
                                         f"memory)")
            except LayerError as e:
                where = f"{layer.path}.{e.field}" if e.field else layer.path
                self.fail(where, f"{layer.class_name} {layer.name!r} {e.message}")
                broken.add(layer.name)
            except (IndexError, ValueError, TypeError) as e:
                self.fail(layer.path, f"{layer.class_name} {layer.name!r} got inputs it cannot take "
                                      f"({', '.join(map(str, types))}): {e}")
                broken.add(layer.name)
                continue
            self._check_id_range(layer)

    def _check_id_range(self, layer: Layer) -> None:
        """A layer that takes ids below n (`token_range`) fed by one that gives ids up to m - 1
        (`id_range`, e.g. a TextVectorization's vocabulary size): m > n would make ids the layer
        has no row for, an error in Keras too (at call time); refused here, naming both."""
        limit = layer.token_range()
        if limit is None or not layer.inbound:
            return
        src = self.layers.get(layer.inbound[0].layer)
        given = src.id_range() if src is not None else None
        if given is not None and given > limit:
            field = layer.token_range_field()
            self.fail(f"{layer.path}.{field}" if field else layer.path,
                      f"{layer.class_name} {layer.name!r} takes ids below {limit}, but {src.class_name} "
                      f"{src.name!r} gives ids up to {given - 1} ({given} ids): expected at least {given}")

    def _outputs(self) -> list[Ref]:
        if self.problems:
            return []
        texts = self.spec.get("outputs")
        if texts is None:
            last = list(self.layers.values())[-1]
            return [Ref(last.name, i) for i in range(len(last.output_types_))]
        refs = []
        for i, t in enumerate(texts):
            ref = self._resolve(t, f"$.outputs[{i}]")
            layer = self.layers.get(ref.layer)
            if layer is not None and ref.index >= len(layer.output_types_):
                self.fail(f"$.outputs[{i}]", f"{t} does not exist: {layer.name!r} has "
                                             f"{len(layer.output_types_)} output(s)")
            refs.append(ref)
        return refs

    def _check_names(self, inputs, outputs, states) -> None:
        seen: dict[str, str] = {}
        model = Model("", self.layers, inputs, outputs, {}, {}, states=states)
        names = [(n, "input") for n in inputs] + [(s.input_name, "state input") for s in states]
        names += [(model.output_name(r), "output") for r in outputs]
        names += [(s.output_name, "state output") for s in states]
        for n, what in names:
            if n in seen and not (what == "output" and seen[n] == "output"):
                self.fail("$.outputs" if "output" in what else "$.layers",
                          f"model {what} name {n!r} collides with a model {seen[n]}")
            seen[n] = what
        outs = [model.output_name(r) for r in outputs]
        for n in set(outs):
            if outs.count(n) > 1:
                self.fail("$.outputs", f"output {n!r} is listed more than once")

    # -- weights ------------------------------------------------------------------------------
    def _weights(self, given: dict | None) -> dict[str, np.ndarray]:
        expected: dict[str, tuple[int, ...]] = {}
        for layer in self.layers.values():
            for k, shape in layer.weight_shapes(layer.input_types).items():
                if any(not isinstance(d, (int, np.integer)) for d in shape):
                    self.fail(layer.path, f"{layer.class_name} {layer.name!r} weight {k!r} would have "
                                          f"shape {tuple(shape)}: its input "
                                          f"{', '.join(map(str, layer.input_types))} needs a fixed "
                                          f"size (not null) on the axes its weights depend on")
                    continue
                expected[f"{layer.name}/{k}"] = tuple(int(d) for d in shape)
        if self.problems:
            return {}
        total = sum(int(np.prod(s, dtype=np.int64)) for s in expected.values())
        if total > MAX_PARAMETERS:
            self.fail("$.layers", f"the model has {total} parameters; the limit is {MAX_PARAMETERS}")
            return {}
        if given is None and "weights" in self.spec:
            return self._weights_file(expected)
        if given is None:
            rng = np.random.default_rng(int(self.spec.get("seed", 0)))
            out = {}
            for layer in self.layers.values():
                for k, shape in layer.weight_shapes(layer.input_types).items():
                    out[f"{layer.name}/{k}"] = layer.init_weight(k, tuple(shape), rng)
            return out
        out = {}
        for key, shape in expected.items():
            if key not in given:
                self.fail(f"weights[{key}]", f"missing weight, expected shape {shape}")
            elif self._check_weight("weights", key, shape, np.asarray(given[key]).dtype,
                                    np.shape(given[key])):
                self._add_weight(out, "weights", key, np.asarray(given[key]))
        self._unexpected("weights", set(given) - set(expected), expected)
        return out

    def _weights_file(self, expected: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
        """Read the spec's weights file: its member names are checked first, then each expected
        member's header (dtype, shape), and only then are the expected arrays inflated."""
        path = self._weights_path()
        if path is None:
            return {}
        where = str(path)
        out: dict[str, np.ndarray] = {}
        try:
            with NpzFile(path) as npz:
                keys = set(npz.keys)
                self._unexpected(where, keys - set(expected), expected)
                for key, shape in expected.items():
                    if key not in keys:
                        self.fail(f"{where}[{key}]", f"missing weight, expected shape {shape}")
                        continue
                    got_shape, dtype = npz.header(key)
                    if self._check_weight(where, key, shape, dtype, got_shape):
                        self._add_weight(out, where, key, npz.read(key))
        except ModelFileError as e:
            self.problems += [Problem(f"$.weights ({p.where})", p.message) for p in e.problems]
            return {}
        return out

    def _weights_path(self) -> Path | None:
        """The spec's `weights` path, which must stay inside the spec's directory (no absolute
        path, no `..`, no symlink leading out) unless external weights are allowed."""
        name = self.spec["weights"]
        if len(name) > 4096:
            self.fail("$.weights", f"expected a path of at most 4096 characters, found {len(name)}")
            return None
        if "\0" in name:
            self.fail("$.weights", "expected a file path, found one with a NUL character")
            return None
        path = self.base_dir / name
        if limits.current().allow_external_weights:
            return path
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts:
            self.fail("$.weights", f"{name!r} leaves the spec's directory (an absolute path or `..`); "
                                   f"weights must sit beside the spec, or pass --allow-external-weights")
            return None
        try:
            base = os.path.realpath(self.base_dir)
            real = os.path.realpath(path)
        except (OSError, ValueError) as e:
            self.fail("$.weights", f"cannot resolve {name!r}: {e}")
            return None
        if os.path.commonpath([base, real]) != base:
            self.fail("$.weights", f"{name!r} is a symbolic link (or under one) leading out of the "
                                   f"spec's directory, to {real}; pass --allow-external-weights to "
                                   f"allow it")
            return None
        return path

    def _check_weight(self, where: str, key: str, shape: tuple, dtype: np.dtype, got: tuple) -> bool:
        if dtype.kind != "f":
            self.fail(f"{where}[{key}]", f"expected float weights, found {dtype}")
        elif tuple(got) != shape:
            self.fail(f"{where}[{key}]", f"expected shape {shape}, found {tuple(got)}")
        else:
            return True
        return False

    def _add_weight(self, out: dict, where: str, key: str, arr: np.ndarray) -> None:
        """Store the float32 weight; finiteness is checked after the cast (a float64 1e39 is
        finite but becomes +inf in float32)."""
        with np.errstate(over="ignore", invalid="ignore"):
            w = arr.astype(np.float32)
        finite = np.isfinite(w)
        if not finite.all():
            bad = int(w.size - np.count_nonzero(finite))
            big = "" if not np.isfinite(arr).all() else " in float32 (too large for float32)"
            self.fail(f"{where}[{key}]", f"{bad} value(s) are NaN or infinite{big}")
            return
        out[key] = w

    def _unexpected(self, where: str, keys: set[str], expected: dict) -> None:
        problems = [Problem(f"{where}[{key}]", "unexpected weight: no layer has it"
                            + (f" (expected keys: {expected_text(list(expected))})" if i == 0 else ""))
                    for i, key in enumerate(sorted(keys))]
        self.problems += summarize(problems, "more unexpected weights")
