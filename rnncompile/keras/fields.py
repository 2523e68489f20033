"""The per-option mapping of one Keras layer config to a spec layer.

Each layer kind says which Keras classes it imports (`keras_classes`, `keras_cells`) and maps one
config with its `from_keras(f)` rule, reading options through `Fields`: math options are taken
explicitly, options with no effect at inference are dropped, and any other option must be null,
or the layer is refused naming the option. Two Keras wrappers have no spec kind of their own and
are mapped here: `RNN(cell)` (the kind whose `keras_cells` holds the cell) and
`TimeDistributed(layer)` (the layer itself, for kinds with `keras_time_distributed`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NoReturn

from ..layer import REGISTRY, Layer, LayerError

# Activations the core knows; Keras 2's hard_sigmoid is a different function (see `activation`).
ACTIVATIONS = {
    "linear", "tanh", "sigmoid", "hard_sigmoid", "relu", "relu6", "leaky_relu", "softsign",
    "softplus", "elu", "selu", "swish", "silu", "gelu", "exponential", "softmax",
}

# Config fields with no effect on inference, for every layer.
INERT_COMMON = {
    "name", "trainable", "seed", "batch_input_shape", "batch_shape", "input_shape", "batch_size",
    "input_dtype", "autocast", "activity_regularizer", "build_config", "compile_config",
    "use_cudnn", "implementation", "input_spec", "lora_alpha", "sparse",
}
INERT_SUFFIXES = ("_initializer", "_regularizer", "_constraint")

#: Keras model classes: a model used as a layer of another is refused.
MODEL_CLASSES = ("Sequential", "Functional", "Model")


class Refused(LayerError):
    """A layer (or option) that cannot be compiled exactly; the message says which and why.
    (`from_keras` rules may raise any `rnncompile.LayerError`.)"""


def short(v) -> str:
    s = repr(v)
    return s if len(s) < 80 else s[:77] + "..."


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class Fields:
    """Walks one Keras layer config. `keras_class` and `major` (the Keras version) are there for
    rules that depend on them; `cell` is the config of an `RNN`'s cell (the layer's own config
    otherwise)."""

    def __init__(self, cfg: Any, keras_class: str, major: int, kinds: "KindTable", what: str = "",
                 root: "Fields | None" = None, assets: "Callable[[str], bytes | None] | None" = None):
        if not isinstance(cfg, dict):
            raise Refused(f"the {what or 'layer '}config is not an object: {short(cfg)}")
        self.cfg = dict(cfg)
        self.keras_class = keras_class
        self.major = major
        self.kinds = kinds
        self.what = what  # "layer." for a wrapped layer's options
        self.taken: set[str] = set()
        self.root = root or self
        self.cell: Fields = self
        self.training_random = False
        self._assets = assets

    def asset(self, filename: str) -> bytes | None:
        """A file Keras saved for this layer next to its weights (a .keras zip's assets, e.g. an
        adapted TextVectorization's vocabulary.txt); None when the file has none."""
        return self._assets(filename) if self._assets is not None else None

    # -- reading options ------------------------------------------------------------------------
    def refuse(self, option: str, value: Any, why: str) -> NoReturn:
        raise Refused(f"option {self.what}{option}={short(value)} is not supported: {why}")

    def get(self, key: str, default: Any = None) -> Any:
        self.taken.add(key)
        return self.cfg.get(key, default)

    def require(self, key: str) -> Any:
        self.taken.add(key)
        if key not in self.cfg:
            raise Refused(f"required option {self.what}{key} is missing from the config")
        return self.cfg[key]

    def boolean(self, key: str, default: bool) -> bool:
        v = self.get(key, default)
        if v is None:
            v = default
        if not isinstance(v, bool):
            self.refuse(key, v, "expected true or false")
        return v

    def integer(self, key: str) -> int:
        v = self.require(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            self.refuse(key, v, "expected a positive integer")
        return v

    def number(self, key: str, default: float, low: float | None = None, high: float | None = None) -> float:
        v = self.get(key, default)
        if v is None:
            v = default
        if not is_number(v):
            self.refuse(key, v, "expected a number")
        if (low is not None and v < low) or (high is not None and v > high):
            self.refuse(key, v, f"expected a number in [{low}, {high}]")
        return float(v)

    def activation(self, key: str, default: str) -> str:
        v = self.get(key, default)
        return activation(v, self.major, lambda why: self.refuse(key, v, why))

    def dtype(self, key: str) -> str | None:
        """A dtype or dtype policy option, as a name (None when unset)."""
        return _policy_name(self.get(key))

    def refuse_set(self, *keys: str, why: str) -> None:
        """Options that must be unset (null, 0, false): e.g. LoRA and quantization."""
        for k in keys:
            v = self.get(k)
            if v:
                self.refuse(k, v, why)

    def random_in_training(self, flag: bool = True) -> None:
        """The layer draws random numbers in training mode (dropout, noise): a call with
        training=True cannot be compiled."""
        self.root.training_random = self.root.training_random or bool(flag)

    def sublayer(self, key: str, base: type[Layer]) -> dict:
        """A wrapped Keras layer (option `key`, e.g. Bidirectional's `layer`): its spec config,
        `class_name` included, from the kind that imports its class (a subclass of `base`)."""
        what = key
        cfg = self.require(key)
        if not isinstance(cfg, dict):
            raise Refused(f"option {what} must be a layer config")
        cls = cfg.get("class_name")
        check_module(cfg, f"option {what}: ")
        ok = self.kinds.names(base)
        if not isinstance(cls, str) or self.kinds.kind(cls, cfg.get("config")) is None \
                or not issubclass(self.kinds.kind(cls, cfg.get("config")), base):
            raise Refused(f"option {what}: wrapping {short(cls) if not isinstance(cls, str) else cls} "
                          f"is not supported ({', '.join(ok)})")
        m = map_layer(cls, cfg.get("config") or {}, self.major, self.kinds, f"{self.what}{what}.", self.root)
        return {"class_name": m.kind.class_name, **m.config}

    def done(self) -> None:
        if self.cell is not self:
            self.cell.done()
        for k, v in self.cfg.items():
            if k in self.taken or k in INERT_COMMON or k.endswith(INERT_SUFFIXES):
                continue
            if k == "dtype":
                name = _policy_name(v)
                if name not in (None, "float32"):
                    raise Refused(f"option {self.what}dtype={name!r} is not supported: rnncompile "
                                  f"compiles float32 models (mixed or reduced precision changes the results)")
                continue
            if v is None or v == {} or v == []:
                continue
            self.refuse(k, v, "rnncompile does not know this option, so it cannot compile it exactly")


def _policy_name(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, dict):
        cfg = v.get("config")
        if isinstance(cfg, dict):
            name = cfg.get("name")
            return name if isinstance(name, str) or name is None else short(name)
        if isinstance(cfg, str):
            return cfg
    return short(v)


def activation(v: Any, major: int, refuse: Callable[[str], NoReturn]) -> str:
    """A Keras activation (name or serialized built-in function) as a spec activation name."""
    if v is None:
        return "linear"
    if isinstance(v, dict):
        module, registered = v.get("module"), v.get("registered_name")
        cfg = v.get("config")
        name = cfg if isinstance(cfg, str) else cfg.get("name") if isinstance(cfg, dict) else None
        if not (isinstance(module, str) and module.startswith(("keras.activations", "keras.src.activations"))) \
                or registered not in (None, name, "function") or (isinstance(registered, str) and ">" in registered):
            refuse(f"custom activation function {short(name or registered)} (module {short(module)}): only "
                   f"built-in Keras activations are supported (code from a model file is never run)")
        v = name
    if not isinstance(v, str):
        refuse("expected an activation name")
    if v == "hard_sigmoid" and major < 3:
        return "hard_sigmoid_keras2"  # Keras 2: clip(0.2 x + 0.5, 0, 1)
    if v == "leaky_relu" and major < 3:
        refuse("Keras 2 had no leaky_relu activation name")
    if v not in ACTIVATIONS:
        refuse(f"activation {v!r} is not supported; supported: {', '.join(sorted(ACTIVATIONS))}")
    return v


def check_module(entry: dict, prefix: str = "") -> None:
    module = entry.get("module")
    if isinstance(module, str) and module and not module.startswith("keras"):
        raise Refused(f"{prefix}custom layer from module {module!r} is not supported (code is never run)")


# ================================================================================================
# Which kind imports a Keras class.


class KindTable:
    """Keras class -> layer kind, from the registry (built-in kinds and plugins)."""

    def __init__(self):
        self.classes: dict[str, type[Layer]] = {}
        self.cells: dict[str, type[Layer]] = {}
        self.ops: dict[str, type[Layer]] = {}
        for kind in REGISTRY.values():
            for c in kind.keras_classes:
                self.classes[c] = kind
            for c in kind.keras_ops:
                self.ops[c] = kind
            for c in kind.keras_cells:
                self.cells[c] = kind

    def kind(self, keras_class: str, cfg: Any = None) -> type[Layer] | None:
        """The kind of a Keras class; for the wrappers, of what they wrap (None if unknown)."""
        if keras_class == "RNN":
            cell = cfg.get("cell") if isinstance(cfg, dict) else None
            name = cell.get("class_name") if isinstance(cell, dict) else None
            return self.cells.get(name) if isinstance(name, str) else None
        if keras_class == "TimeDistributed":
            inner = cfg.get("layer") if isinstance(cfg, dict) else None
            name = inner.get("class_name") if isinstance(inner, dict) else None
            return self.classes.get(name) if isinstance(name, str) else None
        return self.classes.get(keras_class) or self.ops.get(keras_class)

    def names(self, base: type[Layer] = Layer) -> list[str]:
        out = {c for c, k in self.classes.items() if issubclass(k, base)}
        if any(issubclass(k, base) for k in self.cells.values()):
            out.add("RNN")
        return sorted(out)

    def supported(self) -> str:
        return ", ".join(self.names() + ["TimeDistributed"])


@dataclass
class Mapped:
    """A Keras layer as a spec layer: its kind, spec attributes (no class_name), where its
    weights sit in a Keras 3 file relative to the kind's own paths, and whether it is random in
    training mode."""

    kind: type[Layer]
    config: dict
    weight_prefix: str = ""
    training_random: bool = False


def map_layer(keras_class: str, cfg: Any, major: int, kinds: KindTable, what: str = "",
              root: Fields | None = None, assets: Callable[[str], bytes | None] | None = None) -> Mapped:
    """Map one Keras layer config. Raises Refused."""
    if keras_class in MODEL_CLASSES:
        raise Refused("nested models (a model used as a layer of another) are not supported; "
                      "rebuild the outer model from the inner model's layers before saving")
    if keras_class == "TimeDistributed":
        return _time_distributed(cfg, major, kinds, what, root)
    if keras_class == "RNN":
        f = Fields(cfg, keras_class, major, kinds, what, root)
        kind = _rnn_cell(f, kinds)
    else:
        kind = kinds.kind(keras_class)
        if kind is None:
            raise Refused(f"layer class {keras_class} is not supported; supported layers: {kinds.supported()}")
        f = Fields(cfg, keras_class, major, kinds, what, root, assets)
    config = kind.from_keras(f)
    f.done()
    return Mapped(kind, config, "", f.training_random)


def _rnn_cell(f: Fields, kinds: KindTable) -> type[Layer]:
    cell = f.get("cell")
    what = f.what
    if isinstance(cell, list) or (isinstance(cell, dict) and cell.get("class_name") == "StackedRNNCells"):
        raise Refused(f"option {what}cell: stacked cells (a list of cells) are not supported; use one "
                      f"recurrent layer per cell")
    name = cell.get("class_name") if isinstance(cell, dict) else cell
    kind = kinds.cells.get(name) if isinstance(name, str) else None
    if kind is None:
        raise Refused(f"option {what}cell={short(name)} is not supported: the cell must be one of "
                      f"{', '.join(sorted(kinds.cells))}")
    module = cell.get("module")
    if isinstance(module, str) and module and not module.startswith("keras"):
        raise Refused(f"custom cell from module {module!r} is not supported (code is never run)")
    f.cell = Fields(cell.get("config") or {}, name, f.major, kinds, what + "cell.", f.root)
    return kind


def _time_distributed(cfg: Any, major: int, kinds: KindTable, what: str, root: Fields | None) -> Mapped:
    f = Fields(cfg, "TimeDistributed", major, kinds, what, root)
    inner = f.require("layer")
    f.done()
    if not isinstance(inner, dict):
        raise Refused("option layer must be a layer config")
    cls = inner.get("class_name")
    check_module(inner, "option layer: ")
    if not isinstance(cls, str):
        raise Refused(f"option layer: class_name {short(cls)} is not a layer class")
    kind = kinds.kind(cls, inner.get("config"))
    wrapper = REGISTRY.get("TimeDistributed")
    if kind is None or not (kind.keras_time_distributed or kind.time_distributable and wrapper) \
            or cls in ("TimeDistributed", "RNN"):
        ok = sorted(c for c, k in kinds.classes.items() if k.keras_time_distributed or k.time_distributable)
        raise Refused(f"option layer: TimeDistributed({cls}) is not supported ({', '.join(ok)})")
    m = map_layer(cls, inner.get("config") or {}, major, kinds, what, root)
    if not kind.keras_time_distributed:   # a per-sample layer: the TimeDistributed kind wraps it
        m = Mapped(wrapper, {"layer": {"class_name": m.kind.class_name, **m.config}}, m.weight_prefix,
                   m.training_random)
    m.weight_prefix = "layer/" + m.weight_prefix
    m.training_random = m.training_random or f.training_random
    return m
