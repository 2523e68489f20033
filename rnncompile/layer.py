"""The one way to define a layer kind: subclass `Layer` and decorate it with `@register`.

A layer kind keeps together, as Keras does:
  * its attributes (a JSON Schema per field, with Keras's defaults) -> the spec validator and schema,
  * its shape and mask rule (`output_types`),
  * its weights (`weight_shapes`, `init_weight`), in Keras layout,
  * its NumPy float64 reference (`reference`), the source of truth for semantics,
  * its ONNX lowering (`lower`), written against `rnncompile.onnx_graph.GraphBuilder`.

Built-in kinds live in `rnncompile.layers`; plugins use exactly the same API
(docs/custom_layers.md walks through one).

Masks, as in Keras: a mask is a boolean [batch, time] array, True for a valid step, travelling
with a sequence output (time is axis 1). A kind's mask rule is the `masked` flag of each
TensorType its `output_types` returns, and the reference and the lowering must keep it:
  * consume the mask (Keras: `call(x, mask)`, no mask out): read `Tensor.mask` / `Sym.mask`
    (None when the input is unmasked) and return outputs with `masked=False` and no mask;
  * pass it on (Keras: `supports_masking`): `passthrough(x)`, return the input's mask unchanged;
  * compute a new mask (Keras: `compute_mask`): `masked=True`, return a new [batch, time] bool
    mask (template: `rnncompile/layers/mask_ops.py`).
Passes (inference, reference, lowering, verification) are generic: they never ask what kind a
layer is, only call these methods.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

# ---------------------------------------------------------------------------------------------
# Values flowing between layers in the three passes.


@dataclass(frozen=True)
class TensorType:
    """Static type of a layer output: shape with the batch axis first (None = dynamic), dtype, and
    whether a [batch, time] mask travels with it (time is axis 1)."""

    shape: tuple[int | None, ...]
    dtype: str = "float32"
    masked: bool = False

    @property
    def rank(self) -> int:
        return len(self.shape)

    def with_mask(self, masked: bool) -> "TensorType":
        return replace(self, masked=masked)

    def __str__(self) -> str:
        dims = ", ".join("None" if d is None else str(d) for d in self.shape)
        return f"({dims})"


@dataclass
class Tensor:
    """A reference value: float64 (or integer) data and an optional boolean [batch, time] mask."""

    data: np.ndarray
    mask: np.ndarray | None = None


@dataclass(frozen=True)
class Sym:
    """A lowering value: the ONNX tensor name, its type, and the name of its bool mask, if any."""

    name: str
    type: TensorType
    mask: str | None = None


class LayerError(Exception):
    """Raised by a layer's rules; the passes attach the layer's JSON path. `field` narrows it."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Ref:
    """One output of one layer: `name` or `name:index` in a spec."""

    layer: str
    index: int = 0

    def __str__(self) -> str:
        return self.layer if self.index == 0 else f"{self.layer}:{self.index}"


# ---------------------------------------------------------------------------------------------
# The layer base class.


class Layer:
    """Base of every layer kind. Subclasses set the class attributes and override the rules."""

    #: Keras class name used in specs (`"class_name": "LSTM"`).
    class_name: ClassVar[str] = ""
    #: JSON Schema of each attribute, with `default` where Keras has one.
    attributes: ClassVar[dict[str, dict]] = {}
    #: Attributes without a default.
    required: ClassVar[tuple[str, ...]] = ()
    #: Attributes that hold references to other layers' outputs; resolved into extra inputs,
    #: appended after `inputs` in this order.
    reference_fields: ClassVar[tuple[str, ...]] = ()
    #: One-line description for `rnncompile summary` and the schema.
    description: ClassVar[str] = ""
    #: False when the layer's Keras semantics are undefined on a fully masked row (e.g. 0/0).
    defined_for_empty_rows: ClassVar[bool] = True
    #: True for a model input: the passes feed it the graph input of its name as its only input.
    is_model_input: ClassVar[bool] = False

    def __init__(self, name: str, config: dict[str, Any], path: str = "$"):
        self.name = name
        self.path = path
        self.config = config  # attributes with defaults filled in
        self.inbound: list[Ref] = []
        self.input_types: list[TensorType] = []
        self.output_types_: list[TensorType] = []

    # -- attribute access ---------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self.config[key]

    # -- rules a kind overrides ---------------------------------------------------------------
    @classmethod
    def resolve_files(cls, config: dict, base_dir, path: str) -> dict:
        """The layer's spec entry with the files it names (relative to `base_dir`, the spec's
        folder) read into it, so that a spec, and OUT/spec.json, is self-contained. Raise SpecError
        naming `path` and the file. Called before the schema check (fields may have any type)."""
        return config

    def check(self) -> list[tuple[str | None, str]]:
        """Cross-field checks beyond the schema: list of (field or None, message)."""
        return []

    def output_types(self, inputs: list[TensorType]) -> list[TensorType]:
        """Shape and mask rule. Raise LayerError on impossible inputs."""
        raise NotImplementedError

    def output_names(self) -> list[str]:
        """Names of the outputs, used for ONNX output names (`<layer>_<name>` past the first)."""
        return ["output"]

    def weight_shapes(self, inputs: list[TensorType]) -> dict[str, tuple[int, ...]]:
        """Weights in Keras layout, keyed relative to the layer (`kernel`, `forward/bias`)."""
        return {}

    def state_shapes(self, inputs: list[TensorType]) -> list[tuple[str, tuple[int, ...]]]:
        """Carried state of a stateful layer: (suffix, shape without batch). Such a layer gets
        the states as extra inputs after its others and returns the new states after its outputs."""
        return []

    def reference(self, inputs: list[Tensor], weights: dict[str, np.ndarray]) -> list[Tensor]:
        """Keras semantics in float64 NumPy."""
        raise NotImplementedError

    def lower(self, g, inputs: list[Sym], weights: dict[str, np.ndarray]) -> list[Sym]:
        """Emit ONNX nodes through the GraphBuilder `g`; return one Sym per output."""
        raise NotImplementedError

    def lowering(self, target=None) -> str:
        """How this layer is lowered on `target` (a rnncompile.targets.Target; None: the default),
        for `summary` and the manifest."""
        return "ONNX ops"

    def target_blocker(self, target) -> str | None:
        """Why this layer cannot be lowered for `target` at all, with the nearest supported
        alternative; None when it can. The lowering pass refuses the model with this reason."""
        return None

    def min_opset(self, target) -> int:
        """The lowest ONNX opset this layer's lowering needs on `target` (the graph gets the
        highest any layer needs; 17 otherwise)."""
        return 17

    # -- preprocessing that may run on the host (text: layers/text_vectorization.py) ---------
    #: The kind is preprocessing that may run before the graph, on the host (a tokenizer): then its
    #: output is a graph input, the manifest describes it ("preprocessing") and the sessions apply it.
    host_capable: ClassVar[bool] = False

    def runs_on_host(self, target) -> bool:
        """Whether, lowered for `target`, this layer runs on the host instead of in the graph."""
        return False

    def host_entry(self) -> tuple[dict, dict[str, bytes]]:
        """For a layer that runs on the host: its manifest "preprocessing" fields (beyond kind,
        layer, input and output) and the files they name ({file name in OUT: bytes})."""
        raise NotImplementedError

    @classmethod
    def host_function(cls, entry: dict, out_dir):
        """From a manifest "preprocessing" entry of this kind and the build directory: the
        function (batch of inputs -> graph input array) the sessions apply."""
        raise NotImplementedError

    def host_apply(self, value):
        """The function of `host_entry` for this layer, as built (no files read)."""
        raise NotImplementedError

    def text_words(self) -> tuple[str, ...] | None:
        """For a layer that reads text: words worth putting in generated test texts (its
        vocabulary), None otherwise."""
        return None

    def fused_path(self, target) -> dict | None:
        """For a layer that runs a recurrent operator: {"native": bool, "why_not": str | None,
        "keras_cudnn_conditions_unmet": [...]}, for `summary --target`. None otherwise."""
        return None

    def init_weight(self, key: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Seeded weights used when a spec names no weights file (not Keras's initializers:
        non-zero biases on purpose, so that gate-order mistakes cannot hide)."""
        fan = shape[0] if len(shape) > 1 else 4
        limit = 0.2 if key.endswith("bias") else float(np.sqrt(3.0 / max(fan, 1)))
        return uniform(rng, shape, limit)

    # -- run-time data the verifier needs (generic, not per kind) -----------------------------
    def equal_lengths(self) -> bool:
        """For the verifier: True when the model's variable time axes must all be equal for this
        layer (e.g. a feature-axis Concatenate of two sequences)."""
        return False

    def min_steps(self) -> int:
        """For the verifier: the time steps this layer needs (a window over time needs several)."""
        return 1

    def token_range(self) -> int | None:
        """For a layer that consumes integer ids: how many ids are valid (ids in [0, n))."""
        return None

    def token_range_field(self) -> str | None:
        """The attribute that sets `token_range` (for error paths), e.g. "input_dim"."""
        return None

    def id_range(self) -> int | None:
        """For a layer whose output is integer ids: how many ids it can give (ids in [0, n))."""
        return None

    def pad_value(self) -> float | None:
        """For a layer that derives a mask from its input: the value that marks a padded step."""
        return None

    # -- helpers ------------------------------------------------------------------------------
    def output_type(self, index: int = 0) -> TensorType:
        """The type the shape rule gave output `index` (valid once the model is typed)."""
        return self.output_types_[index]

    def sym(self, value: str, mask: str | None = None, index: int = 0) -> Sym:
        """The lowering result for output `index`: the ONNX value, typed by the shape rule, with
        its mask (None for an unmasked output)."""
        return Sym(value, self.output_types_[index], mask)

    def __repr__(self) -> str:
        return f"<{self.class_name} {self.name!r}>"

    # -- Keras import (rnncompile/keras/, docs/keras_import.md) --------------------------------
    #: Keras layer classes imported as this kind (`("LSTM",)`); empty: none.
    keras_classes: ClassVar[tuple[str, ...]] = ()
    #: Keras cell classes that `keras.layers.RNN(cell)` runs as this kind (`("LSTMCell",)`).
    keras_cells: ClassVar[tuple[str, ...]] = ()
    #: Keras operations (`keras.ops.*` in a functional graph, saved as op nodes from module
    #: keras.src.ops) imported as this kind, called like a layer on one tensor (`("OneHot",)`).
    keras_ops: ClassVar[tuple[str, ...]] = ()
    #: Where a Keras 3 weights file keeps this kind's weights: weight-key group (`""` for
    #: `kernel`, `"forward"` for `forward/kernel`) -> path prefix; the n-th key of a group (in
    #: `weight_shapes` order, which is Keras's save order) is `<prefix><n>`.
    keras_weight_paths: ClassVar[dict[str, str]] = {"": "vars/"}
    #: The tensor parameters of the Keras layer's `call` after its input, in order (`mask`,
    #: `initial_state`): what a saved call may pass, positionally or by keyword.
    keras_call_args: ClassVar[tuple[str, ...]] = ()
    #: Whether Keras's `TimeDistributed(layer)` equals the layer itself (it acts on the last axis).
    keras_time_distributed: ClassVar[bool] = False
    #: The kind may be wrapped by the `TimeDistributed` kind (layers/time_distributed.py): one
    #: input, no state, no mask of its own, each sample computed alone.
    time_distributable: ClassVar[bool] = False

    @classmethod
    def from_keras(cls, f) -> dict[str, Any]:
        """This kind's spec attributes from one Keras layer config, read through `f` (a
        `rnncompile.keras.fields.Fields`: `f.integer("units")`, `f.boolean(...)`,
        `f.activation(...)`, `f.refuse(...)`). Every Keras option the rule does not read must be
        inert or null, or the layer is refused naming it."""
        raise NotImplementedError(f"{cls.__name__} has no Keras mapping")

    def keras_new_mask(self) -> tuple | None:
        """For a kind that computes a new mask: how Keras 3 computes it from the input, in the ops
        it writes into functional configs: `("not_equal", v)` (input != v) or
        `("any_not_equal", v)` (any over the last axis of input != v). None: no such description
        (an explicit Keras mask is then never equal to it)."""
        return None


# ---------------------------------------------------------------------------------------------
# The registry.

REGISTRY: dict[str, type[Layer]] = {}


#: Fields every layer has; a kind's attributes cannot reuse them.
RESERVED_FIELDS = ("class_name", "name", "inputs")
_BUILTIN_MODULE = __name__.rsplit(".", 1)[0] + ".layers."


def register(cls: type[Layer] | None = None, *, replace: bool = False):
    """Class decorator: make a layer kind known to specs, the schema and every pass.

    Checks the kind when it is defined (a plugin's mistakes show at import, naming the class):
    `class_name` set, `output_types`/`reference`/`lower` overridden, every attribute a valid
    JSON Schema whose default it accepts, required attributes declared. Registering a kind under
    a built-in kind's class_name is refused unless `replace=True` (`@register(replace=True)`);
    re-registering a kind from the same module (a plugin imported twice) replaces it."""
    if cls is None:
        return lambda c: register(c, replace=replace)
    name = cls.__name__
    if not cls.class_name:
        raise TypeError(f"{name} must set class_name")
    for method in ("output_types", "reference", "lower"):
        if getattr(cls, method) is getattr(Layer, method):
            raise TypeError(f"{name} ({cls.class_name}) must define {method}()")
    for req in cls.required:
        if req not in cls.attributes:
            raise TypeError(f"{name}: required attribute {req!r} has no schema")
    import jsonschema

    for key, schema in cls.attributes.items():
        if key in RESERVED_FIELDS:
            raise TypeError(f"{name}: attribute {key!r} is reserved (every layer has it)")
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as e:
            raise TypeError(f"{name}: attribute {key!r} has an invalid JSON Schema: {e.message}") from None
        if "default" in schema:
            err = jsonschema.exceptions.best_match(
                jsonschema.Draft202012Validator(schema).iter_errors(schema["default"]))
            if err is not None:
                raise TypeError(f"{name}: default of attribute {key!r} does not fit its schema: {err.message}")
    old = REGISTRY.get(cls.class_name)
    if (old is not None and old is not cls and not replace
            and old.__module__.startswith(_BUILTIN_MODULE) and not cls.__module__.startswith(_BUILTIN_MODULE)):
        raise TypeError(f"{name}: class_name {cls.class_name!r} is a built-in layer kind; choose another "
                        f"name, or register with @register(replace=True) to replace it")
    REGISTRY[cls.class_name] = cls
    return cls


# ---------------------------------------------------------------------------------------------
# Small helpers shared by kinds.


def passthrough(inp: TensorType, shape: tuple | None = None, dtype: str | None = None) -> TensorType:
    """Output type of a layer that keeps the mask of its input (Keras supports_masking)."""
    return TensorType(tuple(shape if shape is not None else inp.shape), dtype or inp.dtype, inp.masked)


def uniform(rng: np.random.Generator, shape: tuple[int, ...], limit: float) -> np.ndarray:
    """float32 values uniform in [-limit, limit), made in float32 (no float64 copy of a large
    weight is ever held)."""
    w = rng.random(shape, dtype=np.float32)
    w *= np.float32(2 * limit)
    w -= np.float32(limit)
    return w


def expect_rank(t: TensorType, ranks: tuple[int, ...], what: str) -> None:
    if t.rank not in ranks:
        want = " or ".join(f"{r - 1}-D" for r in ranks)
        raise LayerError(f"expects {what} of {want} per sample (batch axis excluded), got shape {t}")


def expect_sequence(t: TensorType, what: str = "a sequence") -> None:
    """A float [batch, time, features] input."""
    expect_rank(t, (3,), what)
    expect_float(t)


def expect_fixed_features(t: TensorType) -> int:
    """The static size of the last axis (weights need it); LayerError when it is variable."""
    if t.shape[-1] is None:
        raise LayerError(f"needs a fixed size for the last axis (its weights depend on it), got shape {t}")
    return int(t.shape[-1])


def valid_steps(x: Tensor) -> np.ndarray:
    """Reference helper: the [batch, time] boolean mask of a sequence, all True when unmasked."""
    if x.mask is not None:
        return np.asarray(x.mask, bool)
    return np.ones(np.shape(x.data)[:2], bool)


def expect_float(t: TensorType) -> None:
    if not t.dtype.startswith("float"):
        raise LayerError(f"expects float input, got {t.dtype} (integer token ids need an Embedding first)")


ATTR_UNITS = {"type": "integer", "minimum": 1, "maximum": 1 << 16, "description": "output size"}
ATTR_BOOL = {"type": "boolean"}


__all__ = [
    "Layer", "LayerError", "Ref", "Sym", "Tensor", "TensorType", "REGISTRY", "register",
    "passthrough", "expect_rank", "expect_float", "expect_sequence",
    "expect_fixed_features", "valid_steps", "uniform", "ATTR_BOOL", "ATTR_UNITS",
]
