"""Generated valid specs, for the conformance sweep (`rnncompile conformance`, suite
"generated") and the property tests (tests/test_properties.py).

One generator serves both: `generate_spec(chooser)` makes every decision through a small
`Chooser` interface. `RandomChooser` draws from a seeded `random.Random` (the conformance sweep:
spec i of seed s is always the same); `spec_strategy()` wraps it in a Hypothesis strategy, where
each decision is a draw that Hypothesis can shrink (options are listed simplest first).

The specs are random stacks of the built-in kinds: an Input of token ids (Embedding, with or
without mask_zero) or of features (optionally Masking); optional Dense/Activation/Dropout before
the recurrent part; one to three SimpleRNN/LSTM/GRU layers, each possibly wrapped in
Bidirectional (every merge mode), with random units, activations, use_bias, go_backwards,
zero_output_for_mask, reset_after, return_state, stateful, dropout fields, and initial states
taken from extra Inputs or from an encoder's return_state; then optional pooling, Dense (any
activation), Activation and Dropout layers; and default or explicit outputs.

The breadth family (`generate_spec(..., breadth=True)`, `random_spec(seed, breadth=True)`, named
`genb<seed>`) mixes the kinds around the recurrent core with masks: sources of token ids
(Embedding), features (Masking), a bool mask input (SetMask), one-hot ids (CategoryEncoding,
OneHot), image sequences (TimeDistributed Conv2D / MaxPooling2D / AveragePooling2D / Flatten) or
one image (Conv2D, pooling, Flatten, Dense, RepeatVector); body blocks of Conv1D (valid, same,
causal, strides, dilation), MaxPooling1D/AveragePooling1D, Attention/AdditiveAttention (query over
itself, a Dense, recurrent or Conv1D branch: query and value masks differ; causal masks, scales,
concat scores, attention scores as an output), recurrent layers, merges (elementwise, Concatenate
on features or time), normalization, PReLU/LeakyReLU, Reshape/Permute/RepeatVector; and a tail
(last recurrent step, pooling, AttentionPooling1D, Flatten, Dense). It is a separate family, not
new draws in the classic one, so spec i of the classic sweep (and tools/model_hashes.py's
hashes) stays exactly what it was.

`mask_case` makes inputs for an arbitrary [batch, time] validity mask per masked input (the
`random` padding pattern of rnncompile.inputs), on top of the verifier's fixed patterns.
"""
from __future__ import annotations

import random
from typing import Any, Protocol, Sequence, TypeVar

import numpy as np

from .. import activations as act
from ..inputs import input_infos, make_inputs, valid_steps

T = TypeVar("T")

#: Cell activations: those the native ONNX operators compute, then those lowered to a Scan loop.
#: (`exponential` is left out: e^c of a growing cell state overflows float32 within a few steps.)
CELL_ACTIVATIONS = ["tanh", "sigmoid", "hard_sigmoid", "relu", "linear", "softsign",
                    "hard_sigmoid_keras2", "elu", "leaky_relu",
                    "gelu", "selu", "swish", "silu", "softplus", "relu6"]
#: Every activation (Dense, Activation layers).
FEATURE_ACTIVATIONS = ["linear"] + [n for n in act.NAMES if n != "linear"]
#: Gate activations: bounded ones only. An unbounded gate (linear, relu, elu) makes the
#: recurrence explode within a few steps (values of 1e30 and NaN in both runtimes), which tests
#: float32 overflow, not the compiler.
GATE_ACTIVATIONS = ["sigmoid", "hard_sigmoid", "hard_sigmoid_keras2", "tanh", "softsign"]
RNN_KINDS = ["LSTM", "GRU", "SimpleRNN"]
MERGE_MODES = ["concat", "sum", "ave", "mul", None]
N_STATES = {"SimpleRNN": 1, "GRU": 1, "LSTM": 2}


class Chooser(Protocol):
    def choice(self, options: Sequence[T]) -> T: ...

    def integer(self, lo: int, hi: int) -> int: ...

    def boolean(self, p: float = 0.5) -> bool: ...


class RandomChooser:
    """Decisions from a seeded random.Random."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def choice(self, options):
        return options[self.rng.randrange(len(options))]

    def integer(self, lo, hi):
        return self.rng.randint(lo, hi)

    def boolean(self, p=0.5):
        return self.rng.random() < p


class DrawChooser:
    """Decisions drawn by Hypothesis (`draw` of a composite strategy); shrinks to the first
    option, the smallest integer and False."""

    def __init__(self, draw):
        from hypothesis import strategies as st

        self.draw = draw
        self.st = st

    def choice(self, options):
        return self.draw(self.st.sampled_from(list(options)))

    def integer(self, lo, hi):
        return self.draw(self.st.integers(lo, hi))

    def boolean(self, p=0.5):
        # p is a hint for random choosers only; Hypothesis explores both values anyway
        return self.draw(self.st.booleans())


# ---------------------------------------------------------------------------------------------


class _Gen:
    def __init__(self, c: Chooser):
        self.c = c
        self.used_exp = False
        self.layers: list[dict] = []
        self.counts: dict[str, int] = {}

    def name(self, base: str) -> str:
        n = self.counts.get(base, 0)
        self.counts[base] = n + 1
        return f"{base}{n}"

    def add(self, layer: dict, named: bool | None = None) -> dict:
        if named is None:
            named = self.c.boolean(0.3)
        if named:
            layer = {"class_name": layer["class_name"], "name": self.name(layer["class_name"].lower()),
                     **{k: v for k, v in layer.items() if k != "class_name"}}
        self.layers.append(layer)
        return layer

    def ensure_name(self, layer: dict) -> str:
        """A layer's name, giving it one if it has none (Keras default names are not predicted)."""
        if "name" not in layer:
            name = self.name(layer["class_name"].lower())
            items = list(layer.items())
            layer.clear()
            layer.update([items[0], ("name", name), *items[1:]])
        return layer["name"]

    # -- pieces -------------------------------------------------------------------------------
    def source(self, stateful_batch: int | None) -> tuple[dict, str]:
        """The main input and its masking/embedding layer. Returns (last layer, kind)."""
        c = self.c
        time = None if c.boolean(0.75) else c.integer(1, 6)
        kind = c.choice(["tokens", "features", "masked_features"])
        inp: dict[str, Any] = {"class_name": "Input", "name": "x"}
        if kind == "tokens":
            inp["shape"] = [time]
            inp["dtype"] = c.choice(["int32", "int64"])
        else:
            inp["shape"] = [time, c.integer(1, 5)]
        if stateful_batch:
            inp["batch_size"] = stateful_batch
        last = self.add(inp, named=True)
        if kind == "tokens":
            mask_zero = c.boolean(0.6)
            last = self.add({"class_name": "Embedding", "input_dim": c.integer(2, 20),
                             "output_dim": c.integer(1, 5), "mask_zero": mask_zero})
            kind = "tokens_masked" if mask_zero else "tokens"
        elif kind == "masked_features":
            last = self.add({"class_name": "Masking", "mask_value": c.choice([0.0, -1.0, 0.5])})
        return last, kind

    def feature_activation(self, options: list[str]) -> str:
        # exp(exp(x)) overflows float32 where the float64 reference does not: one exponential
        # per model
        a = self.c.choice([n for n in options if n != "exponential" or not self.used_exp])
        self.used_exp = self.used_exp or a == "exponential"
        return a

    def elementwise(self, sequence: bool) -> None:
        """Zero or more Dense/Activation/Dropout layers (they keep the mask)."""
        c = self.c
        for _ in range(c.integer(0, 2)):
            kind = c.choice(["Dense", "Activation", "Dropout", "LayerNormalization", "BatchNormalization",
                             "LeakyReLU", "merge"])
            if kind == "Dense":
                cfg: dict[str, Any] = {"class_name": "Dense", "units": c.integer(1, 5)}
                a = self.feature_activation(FEATURE_ACTIVATIONS)
                if a != "linear":
                    cfg["activation"] = a
                if c.boolean(0.2):
                    cfg["use_bias"] = False
                self.add(cfg)
            elif kind == "Activation":
                self.add({"class_name": "Activation", "activation": self.feature_activation(FEATURE_ACTIVATIONS[1:])})
            elif kind == "merge":
                self.merge_branch()
            elif kind == "Dropout":
                self.add({"class_name": "Dropout", "rate": c.choice([0.0, 0.25, 0.5])})
            elif kind == "LeakyReLU":
                self.add({"class_name": "LeakyReLU", "negative_slope": c.choice([0.01, 0.3, 2.0])})
            else:
                self.add({"class_name": kind, "epsilon": c.choice([0.001, 0.1])})

    def merge_branch(self) -> None:
        """A two-branch merge: the last layer and an activation of it (same shape, same mask)."""
        c = self.c
        a = self.ensure_name(self.layers[-1])
        b = self.add({"class_name": "Activation", "activation": c.choice(["tanh", "relu", "sigmoid"]),
                      "inputs": a}, named=True)["name"]
        kind = c.choice(["Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"])
        self.add({"class_name": kind, "inputs": c.choice([[a, b], [b, a]])}, named=True)

    def cell(self, kind: str, units: int, in_bidi: bool, stateful: bool) -> dict:
        c = self.c
        cfg: dict[str, Any] = {"class_name": kind, "units": units}
        if c.boolean(0.4):
            # A stateful layer runs 3 chunks in a row in verification: an unbounded activation
            # makes that long recurrence ill-conditioned (float32 rounding of the weights alone
            # moves the reference by more than the tolerance), so it gets bounded ones.
            cfg["activation"] = c.choice(GATE_ACTIVATIONS if stateful else CELL_ACTIVATIONS)
        if kind != "SimpleRNN" and c.boolean(0.3):
            # a gate in [-1, 1] (tanh, softsign) lets a GRU amplify its state up to 3x a step:
            # fine over the 9 steps of a verification case, ill-conditioned over 3 chunks
            cfg["recurrent_activation"] = c.choice(GATE_ACTIVATIONS[:3] if stateful else GATE_ACTIVATIONS)
        if c.boolean(0.2):
            cfg["use_bias"] = False
        if kind == "GRU" and c.boolean(0.4):
            cfg["reset_after"] = False
        if not in_bidi and c.boolean(0.3):
            cfg["go_backwards"] = True
        if not in_bidi and c.boolean(0.3):
            cfg["zero_output_for_mask"] = True
        if c.boolean(0.1):
            cfg["dropout"] = 0.2
            cfg["recurrent_dropout"] = 0.1
        if c.boolean(0.1):
            cfg["unroll"] = True
        return cfg

    def ignore_mask(self, layer: dict) -> None:
        """Keras 3 drops the mask of a layer called with initial_state: `ignore_mask` says so."""
        if self.c.boolean(0.15 if not layer.get("initial_state") else 0.4):
            layer["ignore_mask"] = True


def generate_spec(c: Chooser, name: str = "generated", breadth: bool = False,
                  masked_consumer: bool = False) -> dict:
    """A valid spec (see the module doc). `breadth=True`: a spec of the breadth family
    (`specgen_breadth.Breadth`: convolutions, pooling, attention, one-hot, TimeDistributed, SetMask, merges,
    normalization, shape layers around recurrent layers). The classic family (the default) makes
    exactly the decisions it always made: spec i of the seeded sweep is unchanged.
    `masked_consumer=True`: the breadth family's masked chains (see `specgen_breadth.Breadth`)."""
    if breadth or masked_consumer:
        from .specgen_breadth import Breadth   # the breadth family's generator (its own module)

        return Breadth(c, masked_consumer).spec(name)
    g = _Gen(c)
    stateful = c.boolean(0.15)
    batch = c.choice([None, 2, 3]) if stateful else None
    prev, src_kind = g.source(batch)
    g.elementwise(sequence=True)
    prev = g.layers[-1]

    n_rnn = c.integer(1, 3)
    state_refs: list[str] = []  # "name:k" of states a layer returned (explicit outputs)
    last_rnn: dict | None = None
    for i in range(n_rnn):
        final = i == n_rnn - 1
        kind = c.choice(RNN_KINDS)
        units = c.integer(1, 6)
        bidi = c.boolean(0.35)
        layer_stateful = stateful and c.boolean(0.7)
        cell = g.cell(kind, units, bidi, layer_stateful)
        return_sequences = True if not final else c.boolean(0.5)
        return_state = c.boolean(0.25)
        init = not layer_stateful and c.boolean(0.2)
        if return_sequences:
            cell["return_sequences"] = True
        if return_state:
            cell["return_state"] = True
        if layer_stateful:
            cell["stateful"] = True
        if bidi:
            merge = c.choice(MERGE_MODES)
            layer: dict[str, Any] = {"class_name": "Bidirectional", "layer": cell}
            if merge != "concat" or c.boolean(0.3):
                layer["merge_mode"] = merge
        else:
            layer = cell
        if init:
            n_init = N_STATES[kind] * (2 if bidi else 1)
            src = c.choice(["inputs", "encoder"])
            prev_name = g.ensure_name(prev)
            if src == "inputs":
                refs = []
                for _ in range(n_init):
                    inp = g.add({"class_name": "Input", "shape": [units]}, named=True)
                    refs.append(inp["name"])
            else:
                enc_in = g.add({"class_name": "Input", "shape": [None, c.integer(1, 4)]}, named=True)
                enc_cell: dict[str, Any] = {"class_name": kind, "units": units, "return_state": True}
                if not bidi and c.boolean(0.3):
                    enc_cell["go_backwards"] = True
                enc = g.add({"class_name": "Bidirectional", "layer": enc_cell} if bidi else enc_cell,
                            named=True)
                enc["inputs"] = enc_in["name"]
                # outputs [output, states...] (a Bidirectional encoder keeps merge_mode concat)
                refs = [f"{enc['name']}:{1 + k}" for k in range(n_init)]
            layer["inputs"] = prev_name
            layer["initial_state"] = refs
            named = True
        else:
            named = None
        g.ignore_mask(layer)
        prev = g.add(layer, named=named)
        last_rnn = prev
        if return_state and c.boolean(0.5):
            n_out = 1 if not bidi or layer.get("merge_mode", "concat") is not None else 2
            state_refs.append(f"{g.ensure_name(prev)}:{n_out + c.integer(0, N_STATES[kind] * (2 if bidi else 1) - 1)}")
    assert last_rnn is not None

    rnn_seq = (last_rnn.get("layer", last_rnn)).get("return_sequences", False)
    if rnn_seq and c.boolean(0.4):
        pool: dict[str, Any] = {"class_name": c.choice(["GlobalAveragePooling1D", "GlobalMaxPooling1D"])}
        if c.boolean(0.3):
            pool["keepdims"] = True
        g.add(pool)
        rnn_seq = pool.get("keepdims", False)
    g.elementwise(sequence=rnn_seq)
    last = g.layers[-1]

    spec: dict[str, Any] = {"name": name, "layers": g.layers}
    if c.boolean(0.2):
        spec["seed"] = c.integer(0, 1000)
    if state_refs or c.boolean(0.2):
        outs = [g.ensure_name(last)]
        for r in state_refs:
            if r not in outs:
                outs.append(r)
        if c.boolean(0.3) and last is not last_rnn:
            outs.append(g.ensure_name(last_rnn))
        spec["outputs"] = outs
    del src_kind
    return spec


def random_spec(seed: int, name: str | None = None, breadth: bool = False) -> dict:
    """Spec number `seed` of the seeded sweep (always the same spec for the same seed); with
    `breadth`, number `seed` of the breadth family's sweep (default name `genb<seed>`)."""
    if breadth:
        return generate_spec(RandomChooser(seed), name or f"genb{seed}", breadth=True)
    return generate_spec(RandomChooser(seed), name or f"gen{seed}")


def spec_strategy(breadth: bool = False, masked_consumer: bool = False):
    """A Hypothesis strategy of valid specs (needs the `hypothesis` package); `breadth` draws
    specs of the breadth family, `masked_consumer` its masked chains."""
    from hypothesis import strategies as st

    @st.composite
    def specs(draw):
        return generate_spec(DrawChooser(draw), "prop", breadth=breadth, masked_consumer=masked_consumer)
    return specs()


# ---------------------------------------------------------------------------------------------
# Inputs for arbitrary masks.


def mask_case(model, masks: dict[str, np.ndarray] | np.ndarray, rng: np.random.Generator,
              chunks: int | None = None):
    """A verify.Case whose masked inputs are padded exactly where `masks` (a [batch, time] bool
    array of valid steps, per input name, or one array for every masked input) is False.
    Unmasked inputs get random values with the same batch; time axes come from the masks."""
    from ..verify import Case

    infos = input_infos(model)
    if isinstance(masks, np.ndarray):
        masks = {i.name: masks for i in infos if i.pad_value is not None and i.shape}
    some = next(iter(masks.values())) if masks else None
    batch = some.shape[0] if some is not None else 2
    fixed_batch = _fixed_batch(model)
    if fixed_batch is not None and fixed_batch != batch:
        raise ValueError(f"the model has a fixed batch of {fixed_batch}")
    lengths = {}
    # a layer that merges sequences step by step (SetMask, Concatenate on features): unmasked
    # inputs take the masks' time axis too
    same_t = some is not None and any(l.equal_lengths() for l in model.layers.values())
    for info in infos:
        if not info.shape:
            continue
        m = masks.get(info.name)
        lengths[info.name] = info.shape[0] if info.shape[0] is not None else (
            m.shape[1] if m is not None else some.shape[1] if same_t else int(rng.integers(1, 6)))
    n_chunks = chunks or (3 if model.states else 1)
    feeds_list = [make_inputs(infos, batch, lengths, "none", rng, valid=masks) for _ in range(n_chunks)]
    return Case(f"batch{batch}_custom_mask", batch, lengths, "custom", feeds_list)


def _fixed_batch(model) -> int | None:
    return next((model.input_type(n).shape[0] for n in model.inputs
                 if model.input_type(n).shape[0] is not None), None)


def random_masks(model, rng: np.random.Generator, batch: int | None = None,
                 p_valid: float = 0.6) -> dict[str, np.ndarray]:
    """An arbitrary [batch, time] validity mask (padding pattern `random:p_valid`) for each input
    that carries a pad value; no fully masked row when a layer is undefined there. Empty when
    the model has no masked input."""
    batch = _fixed_batch(model) or batch or int(rng.integers(1, 5))
    masks = {}
    infos = [i for i in input_infos(model) if i.pad_value is not None and i.shape]
    # a layer that merges sequences step by step (SetMask, Concatenate on features): one time axis
    same_t = any(l.equal_lengths() for l in model.layers.values())
    shared_t = next((i.shape[0] for i in infos if i.shape[0] is not None), None)
    lo = min_steps(model)
    for info in infos:
        t = info.shape[0] or (shared_t if same_t and shared_t else lo - 1 + int(rng.integers(1, 8)))
        if same_t:
            shared_t = t
        masks[info.name] = valid_steps(f"random:{p_valid}", batch, t, rng,
                                       allow_empty=empty_rows_allowed(model))
    return masks


def min_steps(model) -> int:
    """The fewest steps every window over time (valid Conv1D, pooling) can run on: the verifier's
    bound (the product of the layers' `min_steps()`, at most 64)."""
    shortest = 1
    for l in model.layers.values():
        shortest = min(shortest * l.min_steps(), 64)
    return shortest


def empty_rows_allowed(model) -> bool:
    """False when a layer is undefined on a fully masked row in Keras (GlobalAveragePooling1D)."""
    return all(l.defined_for_empty_rows for l in model.layers.values())


def check_spec(spec: dict, seed: int = 0, extra_cases: list | None = None, make_runner=None,
               target=None):
    """Validate, lower (for `target`, default the default target) and verify a spec against the
    reference (the verifier's seeded cases plus `extra_cases`) on runners `make_runner` makes (a
    RunnerFactory; default onnxruntime, one thread). Returns (model, report, conditioning): when
    verification fails, conditioning says whether float32 rounding alone explains it
    (verify.conditioning), else it is None."""
    from ..backends import default_factory
    from ..build import io_description
    from ..lower import lower
    from ..spec import load_spec
    from ..verify import conditioning, make_cases, verify

    model = load_spec(spec)
    lowered = lower(model) if target is None else lower(model, target)
    io = io_description(model, lowered)
    cases, notes = make_cases(model, seed)
    extra = extra_cases(model) if callable(extra_cases) else (extra_cases or [])
    cases = cases + list(extra)
    runner = (make_runner or default_factory(1))(lowered.model_bytes)
    report = verify(model, runner, io, cases=cases)
    report.notes += notes
    cond = None
    if not report.passed:
        cond = conditioning(model, io, cases, report, seed)
        if cond.ill_conditioned:
            report.notes.append(cond.text)
    return model, report, cond


__all__ = ["Chooser", "RandomChooser", "DrawChooser", "generate_spec", "random_spec",
           "spec_strategy", "mask_case", "random_masks", "check_spec", "empty_rows_allowed", "min_steps"]
