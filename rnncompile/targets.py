"""Targets: what the runtime that will execute a graph accepts, as data the lowering consults.

A lowering never asks "is this TensorRT?"; it asks the target in `g.target` a question of fact:
which form a recurrent activation takes (`rnn_activation`), whether an op may take a dtype
(`accepts`), whether loops may be emitted (`allows_loops`), how the `activation_alpha/beta` lists
of a recurrent op are laid out (`activation_params`). Everything a target says comes with its
source in docs (docs/tensorrt.md for the TensorRT rules and where they come from).

  * `onnxruntime` (the default): native LSTM/GRU ops; SimpleRNN's RNN op as an exact Scan, since
    onnxruntime's CPU RNN kernel is slower than one (`rnn_ops_as_scan`, docs/rnn_scan.md).
  * `tensorrt`: graphs TensorRT's ONNX parser (10.x, 11.x) accepts. What can be proved about it on
    a CPU is: onnxruntime runs the exact bytes TensorRT would get and matches the reference, and the
    parser-rules checker finds nothing. Engines need a GPU (rnncompile.backends.tensorrt).

Adding a target: one `Target(...)` value registered in TARGETS; lowerings that need a new kind of
fact get a new field here (with its default), never a branch on the target's name.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

from . import tensorrt_rules as trt_rules
from .errors import SpecError

#: Float element types, as the precision of a target and of ONNX tensors.
PRECISIONS = ("float32", "float16", "bfloat16")
#: Short names accepted on the command line.
PRECISION_ALIASES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16",
                     "float32": "float32", "float16": "float16", "bfloat16": "bfloat16"}

#: Every activation the ONNX RNN/GRU/LSTM operators define (opset 17), with the parameters each
#: consumes from `activation_alpha` / `activation_beta`.
ONNX_RNN_ACTIVATIONS: dict[str, tuple[bool, bool]] = {
    # name: (takes alpha, takes beta)
    "Relu": (False, False), "Tanh": (False, False), "Sigmoid": (False, False),
    "Affine": (True, True), "LeakyRelu": (True, False), "ThresholdedRelu": (True, False),
    "ScaledTanh": (True, True), "HardSigmoid": (True, True), "Elu": (True, False),
    "Softsign": (False, False), "Softplus": (False, False),
}


@dataclass(frozen=True)
class StateControl:
    """Carried states kept between requests by the server, not by the caller (Triton's sequence
    batcher with implicit state): the graph takes a `start` control input (int32 [batch, 1]; a
    nonzero row starts a new sequence, so that row's input states are replaced by zeros inside
    the graph, whatever the server fed), and each state `<layer>_<state>` is named
    `<input_prefix><layer>_<state>` / `<output_prefix><layer>_<state>`. The direction comes first,
    so the input names sorted and the output names sorted pair the same states (Triton pairs
    implicit states by sorted position: triton-inference-server/server#8586)."""

    start: str = "START"
    input_prefix: str = "state_in_"
    output_prefix: str = "state_out_"

    def names(self, layer: str, suffix: str) -> tuple[str, str]:
        """(input name, output name) of the carried state `suffix` of `layer`."""
        stem = f"{layer}_{suffix}"
        return self.input_prefix + stem, self.output_prefix + stem


@dataclass(frozen=True)
class Target:
    """What one runtime accepts. Fields are facts; docs/tensorrt.md gives the TensorRT ones with
    their sources, docs/rnn_scan.md the onnxruntime kernel measurement."""

    name: str
    description: str
    #: Float precision of the graph's weights and float activations (the typed-graph precision).
    precision: str = "float32"
    #: ONNX RNN-family activations the runtime accepts inside LSTM/GRU/RNN nodes.
    rnn_activations: frozenset[str] = frozenset(ONNX_RNN_ACTIVATIONS)
    #: Per Keras activation name, the ONNX RNN form to use instead of the activation table's
    #: (`rnncompile.activations`), or None to say there is no native form on this target.
    rnn_activation_overrides: Mapping[str, tuple[str, tuple[float, ...]] | None] = field(default_factory=dict)
    #: How a recurrent op's activation_alpha/beta lists are laid out: "compact" (only activations
    #: that take a parameter consume the next value, as the ONNX spec and onnxruntime read them) or
    #: "positional" (entry i belongs to activation i, as TensorRT's parser reads GRU/RNN; the lists
    #: are filled so that both readings give every activation its parameters).
    activation_params: str = "compact"
    #: Whether Scan/Loop may be emitted (the exact fallback for cells no native op computes).
    allows_loops: bool = True
    #: Restrictions on input element types, by op (absent op: any type the ONNX spec allows).
    op_input_dtypes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: Element type of the recurrent ops' `sequence_lens` input.
    sequence_lens_dtype: str = "int32"
    #: Ops the runtime's importer does not take at all (a graph holding one is refused).
    unsupported_ops: frozenset[str] = frozenset()
    #: None: carried states are plain graph inputs/outputs the caller feeds (zeros to start).
    #: A StateControl: the server keeps them and a START control resets them in the graph.
    state_control: StateControl | None = None
    #: Recurrent ops whose kernel on this runtime is slower than an ONNX Scan over the same cell;
    #: the lowering computes them as that Scan (exact; layers/rnn_scan.py). Only "RNN" has a Scan
    #: form. Needs `allows_loops`.
    rnn_ops_as_scan: frozenset[str] = frozenset()
    #: In a typed fp16/bf16 graph, give recurrent ops their initial states explicitly (in the
    #: graph's precision): the runtime's importer makes FLOAT zeros for absent ones, which a
    #: strongly typed network cannot mix with half-precision gates (tensorrt_rules.py).
    typed_rnn_initial_states: bool = False
    #: A module whose `check_model(model_bytes)` must find nothing in every graph lowered for this
    #: target (the runtime's import rules, checked on the CPU), or None.
    graph_checker: str | None = None
    #: The backend (rnncompile.backends) that builds engines from this target's graphs, or None
    #: (the runtime loads model.onnx itself). Its `artifacts(manifest)` adds files to OUT.
    engine_backend: str | None = None
    #: Whether the runtime runs ONNX string ops (StringNormalizer, StringSplit, LabelEncoder on
    #: strings): where it does not, text preprocessing (TextVectorization) runs on the host.
    string_ops: bool = True
    #: Where text preprocessing layers run (a build option, `--tokenizer`): "graph" (in model.onnx,
    #: refused where it cannot be exact), "host" (a tokenizer described in the manifest, applied by
    #: the Python and C++ sessions before the graph) or "auto" (the graph where it can be exact on
    #: this target, else the host).
    tokenizer: str = "auto"

    def accepts(self, op: str, dtype: str) -> bool:
        """Whether `op` may take an input of element type `dtype` on this target."""
        allowed = self.op_input_dtypes.get(op)
        return (allowed is None or dtype in allowed) and op not in self.unsupported_ops

    def rnn_activation(self, name: str, table_form: tuple[str, tuple[float, ...]] | None):
        """The native (op, params) form of Keras activation `name` on this target, given the
        activation table's form; None when no native form exists here."""
        form = self.rnn_activation_overrides.get(name, table_form)
        if form is None or form[0] not in self.rnn_activations:
            return None
        return form

    def with_precision(self, precision: str) -> "Target":
        return replace(self, precision=precision)

    def with_tokenizer(self, tokenizer: str) -> "Target":
        return replace(self, tokenizer=tokenizer)

    def __str__(self) -> str:
        return self.name if self.precision == "float32" else f"{self.name} ({self.precision})"


ONNXRUNTIME = Target(
    name="onnxruntime",
    description="onnxruntime, tuned for its CPU execution provider: the default",
    # its CPU RNN kernel applies the activation one scalar at a time: a Scan of Gemm + a
    # vectorized activation is faster from batch 2 up and on the seed models; slower at batch 1
    # for some small SimpleRNN-only models (docs/rnn_scan.md, BENCHMARKS.md)
    rnn_ops_as_scan=frozenset({"RNN"}),
)

TENSORRT = Target(
    name="tensorrt",
    description="NVIDIA TensorRT 10.x/11.x through its ONNX parser (onnx-tensorrt)",
    # The parser's rules are data in tensorrt_rules.py (with their sources): accepted recurrent
    # activations (Affine is not), input types per op (CumSum float-only, no BOOL into
    # Equal/Less/Greater, Not/And/Or BOOL-only, ...), ops not imported at all.
    rnn_activations=trt_rules.RNN_ACTIVATIONS & frozenset(ONNX_RNN_ACTIVATIONS),
    # linear = LeakyRelu with alpha 1 (x >= 0: x; x < 0: 1 * x), exact.
    rnn_activation_overrides={"linear": ("LeakyRelu", (1.0,))},
    activation_params="positional",
    allows_loops=False,
    op_input_dtypes=trt_rules.input_dtypes(),
    sequence_lens_dtype="int32",
    unsupported_ops=trt_rules.unsupported_ops() | trt_rules.AVOIDED_OPS,
    typed_rnn_initial_states=True,
    graph_checker="rnncompile.onnx_trt_check",
    engine_backend="tensorrt",
    string_ops=False,
)

TARGETS: dict[str, Target] = {t.name: t for t in (ONNXRUNTIME, TENSORRT)}


#: Where text preprocessing may run (Target.tokenizer).
TOKENIZER_PLACES = ("auto", "graph", "host")


def get_target(target: "str | Target | None" = None, precision: str | None = None,
               tokenizer: str | None = None) -> Target:
    """A Target by name (or the one given), at `precision` (fp32/fp16/bf16 or full names), with
    text preprocessing placed by `tokenizer` (auto, graph, host)."""
    if target is None:
        t = ONNXRUNTIME
    elif isinstance(target, Target):
        t = target
    else:
        t = TARGETS.get(str(target))
        if t is None:
            raise SpecError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)}",
                            where="--target")
    if precision is not None:
        p = PRECISION_ALIASES.get(str(precision).lower())
        if p is None:
            raise SpecError(f"unknown precision {precision!r}; expected fp32, fp16 or bf16",
                            where="--precision")
        t = t.with_precision(p)
    if tokenizer is not None:
        if tokenizer not in TOKENIZER_PLACES:
            raise SpecError(f"unknown tokenizer place {tokenizer!r}; expected one of {', '.join(TOKENIZER_PLACES)}",
                            where="--tokenizer")
        t = t.with_tokenizer(tokenizer)
    return t


def positional_params(acts: list[tuple[str, tuple[float, ...]]]) -> tuple[list[float], list[float]]:
    """activation_alpha/beta lists, one entry per activation, that a compact reader (onnxruntime:
    the k-th activation that takes a parameter gets entry k) and a positional reader (TensorRT:
    activation i gets entry i) both read right. Real cells always have a solution (an LSTM's two
    cell activations are equal; a Bidirectional's directions are equal); a ValueError says when
    none exists."""
    lists = []
    for slot in (0, 1):  # alpha, beta
        values: list[float | None] = [None] * len(acts)
        k = 0
        for i, (op, params) in enumerate(acts):
            if not ONNX_RNN_ACTIVATIONS[op][slot]:
                continue
            v = float(params[slot])
            for pos in (i, k):  # positional reading, compact reading
                if values[pos] is not None and values[pos] != v:
                    raise ValueError(f"activations {[a for a, _ in acts]}: no activation_"
                                     f"{'alpha' if slot == 0 else 'beta'} list serves both readings")
                values[pos] = v
            k += 1
        half = len(acts) // 2
        if len(acts) % 2 == 0 and [a for a, _ in acts[:half]] == [a for a, _ in acts[half:]]:
            # a bidirectional op: TensorRT's parser also requires both directions' lists to be
            # equal (onnxOpCheckers.cpp), unused entries included
            for i, v in enumerate(values):
                if v is None:
                    values[i] = values[(i + half) % len(acts)]
        lists.append([0.0 if v is None else v for v in values] if k else [])
    return lists[0], lists[1]
