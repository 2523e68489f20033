"""Suite "onnx" of `rnncompile conformance`: the ONNX operator conformance cases for LSTM, GRU and
RNN (the `expect` cases of onnx.backend.test.case.node, built in memory: onnx wheels ship no data
files) plus seeded random-weight twins, each run as given on a runner (onnxruntime by default)
against the outputs the ONNX project computed and, where a Keras layer computes the same, as that
layer through rnncompile (its reference and its built model). Cases onnxruntime refuses
(layout=1, batch-major) are listed as unsupported by the runtime, not hidden; rnncompile itself
always emits layout=0.

The Keras-layout weights of a case come from inverting the layer kind's own `onnx_params` (the
compiler's one copy of the gate-order conversion), probed with index-valued weights.
"""
from __future__ import annotations

import dataclasses
import time
import zlib

import numpy as np

from ..backends import RunnerFactory, runner_factory
from ..errors import RnnCompileError
from ..layer import REGISTRY
from ..verify import compare_all
from .report import PRECISION, CaseOutcome, SuiteResult, tolerance, worst

ONNX_OPS = ("LSTM", "GRU", "RNN")
_ONNX_MODULES = ("lstm", "gru", "rnn")


@dataclasses.dataclass(frozen=True)
class NodeCase:
    """One ONNX node test case: a one-node model and [(inputs, expected outputs)]."""

    name: str
    model: object  # onnx.ModelProto
    data_sets: list


def _as_case(node, inputs, outputs, name, **kwargs) -> NodeCase:
    """What onnx's `expect` records, built with onnx.helper's public API."""
    import onnx
    from onnx import helper

    def infos(names, arrays):
        return [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.asarray(a).dtype),
                                              np.shape(a)) for n, a in zip(names, arrays)]
    graph = helper.make_graph([node], name, infos([x for x in node.input if x], inputs),
                              infos([x for x in node.output if x], outputs))
    opsets = kwargs.get("opset_imports") or [helper.make_operatorsetid(
        node.domain, onnx.defs.get_schema(node.op_type, domain=node.domain).since_version)]
    model = helper.make_model_gen_version(graph, producer_name="backend-test", opset_imports=opsets)
    return NodeCase(name, model, [(list(inputs), list(outputs))])


def onnx_node_cases() -> list[NodeCase]:
    """The LSTM, GRU and RNN node test cases of onnx.backend.test.case.node, generated in memory
    by running their `export*` functions with each module's public `expect` pointed at a
    collector for the duration (onnx's own collect_testcases would run all ~200 operator
    modules; nothing of onnx's own collection is touched)."""
    import importlib

    import onnx.backend.test.case.node as node_cases
    from onnx.backend.test.case.base import Base

    collected: list[NodeCase] = []

    def collect(node, inputs, outputs, name, **kwargs):
        if node.op_type in ONNX_OPS:
            collected.append(_as_case(node, inputs, outputs, name, **kwargs))

    original = node_cases.expect
    node_cases.expect = collect  # a module imported now runs its exports into the collector
    modules = []
    try:
        for m in _ONNX_MODULES:
            modules.append(importlib.import_module(f"onnx.backend.test.case.node.{m}"))
            modules[-1].expect = collect
        collected.clear()
        for mod in modules:
            for obj in vars(mod).values():
                if (isinstance(obj, type) and issubclass(obj, Base) and obj is not Base
                        and obj.__module__ == mod.__name__):
                    for attr in sorted(vars(obj)):
                        if attr.startswith("export"):
                            np.random.seed(0)  # as onnx does before each export
                            getattr(obj, attr)()
    finally:
        node_cases.expect = original
        for mod in modules:
            mod.expect = original
    return collected


def random_weight_variants(cases) -> list:
    """The ONNX cases use constant weights (every W and R entry 0.1 in most of them), which hides
    gate-order and transposition mistakes, and none runs initial states through a Keras-expressible
    node. Each case without sequence_lens gets two twins with seeded random inputs, weights and
    biases: `<case>_random_weights`, and `<case>_random_initial_state`, which also feeds random
    initial_h (and initial_c) and a bias. Their expected outputs come from onnx's own reference
    implementation (onnx.reference), which reproduces every original case exactly."""
    import onnx
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    out = []
    for case in cases:
        node = case.model.graph.node[0]
        if len(node.input) > 4 and node.input[4]:
            continue  # onnx.reference ignores sequence_lens
        rng = np.random.default_rng(zlib.crc32(case.name.encode()))
        inputs, _ = case.data_sets[0]
        rand = [(rng.standard_normal(np.shape(a)) * 0.5).astype(np.float32) for a in inputs]
        names = [i.name for i in case.model.graph.input]
        expected = ReferenceEvaluator(case.model).run(None, dict(zip(names, rand)))
        out.append(dataclasses.replace(case, name=f"{case.name}_random_weights", data_sets=[(rand, expected)]))

        # with a bias and initial states
        attrs = _node_attributes(case.model)
        X, W = rand[0], rand[1]
        dirs, gh = W.shape[0], W.shape[1]
        hidden = int(attrs["hidden_size"])
        batch = X.shape[1] if int(attrs.get("layout", 0)) == 0 else X.shape[0]
        state_shape = ((dirs, batch, hidden) if int(attrs.get("layout", 0)) == 0
                       else (batch, dirs, hidden))
        feeds = {"X": X, "W": W, "R": rand[2],
                 "B": (rng.standard_normal((dirs, 2 * gh)) * 0.5).astype(np.float32),
                 "initial_h": (rng.standard_normal(state_shape) * 0.5).astype(np.float32)}
        if node.op_type == "LSTM":
            feeds["initial_c"] = (rng.standard_normal(state_shape) * 0.5).astype(np.float32)
        twins = [("_random_initial_state", attrs)]
        if node.op_type == "GRU":  # Keras 3's default GRU (reset_after=True); no onnx case has it
            twins.append(("_random_linear_before_reset", dict(attrs, linear_before_reset=1)))
        for suffix, twin_attrs in twins:
            n = helper.make_node(node.op_type, ["X", "W", "R", "B", "", *list(feeds)[4:]],
                                 list(node.output), **twin_attrs)
            graph = helper.make_graph([n], f"{case.name}{suffix}",
                                      [helper.make_tensor_value_info(k, onnx.TensorProto.FLOAT, v.shape)
                                       for k, v in feeds.items()], list(case.model.graph.output))
            model = helper.make_model(graph, opset_imports=list(case.model.opset_import),
                                      ir_version=case.model.ir_version)
            expected = ReferenceEvaluator(model).run(None, feeds)
            out.append(dataclasses.replace(case, name=f"{case.name}{suffix}", model=model,
                                data_sets=[(list(feeds.values()), expected)]))
    return out


def _node_attributes(model) -> dict:
    from onnx import helper

    node = model.graph.node[0]
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


class _NotKeras(Exception):
    """An ONNX case that no Keras layer computes (peepholes, clip, ...)."""


def _kind_of(op: str):
    """The built-in layer kind lowered to ONNX operator `op` (LSTM, GRU, SimpleRNN)."""
    return next(cls for cls in REGISTRY.values() if getattr(cls, "onnx_op", None) == op)


def keras_weights(cell, W, R, B) -> dict[str, np.ndarray]:
    """Keras-layout weights of one direction of `cell` (a Recurrent layer) from ONNX W [G*H, I],
    R [G*H, H] and B [2*G*H] (or None): the inverse of the cell's own `onnx_params`. Probing it
    with weights whose every entry is its column index shows where each Keras gate column lands
    (LSTM: Keras i, f, c, o -> ONNX i, o, f, c); a bias probe shows which ONNX bias entries the
    kind fills. Kinds without a recurrent bias of their own (ONNX Rb all zero) get Wb + Rb, which
    ONNX adds alike (for GRU with linear_before_reset=0 too: Rbh sits outside the reset gate)."""
    gh = W.shape[0]
    col = np.arange(gh, dtype=np.float64)[None, :]
    probe = {"kernel": col, "recurrent_kernel": col}
    shape = cell.bias_shape()
    n_bias = int(np.prod(shape))
    if cell["use_bias"]:
        probe["bias"] = np.arange(1, n_bias + 1, dtype=np.float64).reshape(shape)
    pw, _, pb = cell.onnx_params(probe)
    perm = np.rint(pw[:, 0]).astype(int)  # ONNX row j holds Keras column perm[j]
    out = {"kernel": np.empty((W.shape[1], gh)), "recurrent_kernel": np.empty((R.shape[1], gh))}
    out["kernel"][:, perm] = np.asarray(W, np.float64).T
    out["recurrent_kernel"][:, perm] = np.asarray(R, np.float64).T
    if B is not None and cell["use_bias"]:
        src = np.rint(pb).astype(int)  # 0: a fixed zero; k > 0: flat Keras bias entry k-1
        b = np.asarray(B, np.float64)
        if not src[gh:].any():
            b, src = b[:gh] + b[gh:], src[:gh]
        flat = np.zeros(n_bias)
        flat[src[src > 0] - 1] = b[src > 0]
        out["bias"] = flat.reshape(shape)
    return {k: v.astype(np.float32) for k, v in out.items()}


def onnx_case_as_keras(case):
    """Express an ONNX LSTM/GRU/RNN node test case as a spec with Keras-layout weights. Returns
    (spec, weights, feeds, to_onnx) where to_onnx maps the model's outputs (by name) to the
    node's outputs in ONNX layout. Raises _NotKeras for cases no Keras layer computes."""
    from ..spec import load_spec

    node = case.model.graph.node[0]
    op = node.op_type
    kind = _kind_of(op)
    attrs = _node_attributes(case.model)
    inputs, _ = case.data_sets[0]
    present = [n for n in node.input if n]
    given = dict(zip(present, [np.asarray(a) for a in inputs]))

    def arg(k):
        return given.get(node.input[k]) if k < len(node.input) and node.input[k] else None

    X, W, R, B, L, H0 = (arg(k) for k in range(6))
    C0 = arg(6) if op == "LSTM" else None
    P = arg(7) if op == "LSTM" else None
    acts = attrs.get("activations")
    dirs = 2 if attrs.get("direction") == "bidirectional" else 1
    if attrs.get("clip") is not None:
        raise _NotKeras("clip has no Keras equivalent")
    if attrs.get("input_forget"):
        raise _NotKeras("input_forget has no Keras equivalent")
    if P is not None and np.any(P):
        raise _NotKeras("peepholes (P) have no Keras equivalent")
    layout = int(attrs.get("layout", 0))
    x = np.asarray(X, np.float32)
    if layout == 0:
        x = x.transpose(1, 0, 2)  # [B, T, I]
    batch, steps, features = x.shape
    if L is not None and np.any(np.asarray(L) != steps):
        raise _NotKeras("sequence_lens shorter than the sequence (a Keras mask is per step)")
    hidden = int(attrs["hidden_size"])
    cell: dict = {"class_name": kind.class_name, "units": hidden, "return_sequences": True,
                  "return_state": True, "use_bias": B is not None}
    if "reset_after" in kind.attributes:  # ONNX linear_before_reset (GRU)
        cell["reset_after"] = bool(attrs.get("linear_before_reset", 0))
    layers: list[dict] = [{"class_name": "Input", "name": "x", "shape": [None, features]}]
    feeds = {"x": x}
    init = []
    if H0 is not None or C0 is not None:
        h0 = np.asarray(H0 if H0 is not None else np.zeros((dirs, batch, hidden)), np.float32)
        c0 = np.asarray(C0 if C0 is not None else np.zeros((dirs, batch, hidden)), np.float32)
        if layout == 1:
            h0, c0 = h0.transpose(1, 0, 2), c0.transpose(1, 0, 2)
        for d in range(dirs):
            for sname, arr in (("h", h0), ("c", c0))[:len(kind.state_names)]:
                layers.append({"class_name": "Input", "name": f"{sname}0_{d}", "shape": [hidden]})
                feeds[f"{sname}0_{d}"] = arr[d]
                init.append(f"{sname}0_{d}")
    n_states = len(kind.state_names)
    if dirs == 2:
        layer = {"class_name": "Bidirectional", "name": "rnn", "layer": cell, "merge_mode": None,
                 "inputs": "x"}
        sides = ("forward", "backward")
    else:
        layer = dict(cell, name="rnn", inputs="x")
        if attrs.get("direction") == "reverse":
            layer["go_backwards"] = True
        sides = (None,)
    if init:
        layer["initial_state"] = init
    layers.append(layer)
    spec = {"name": case.name, "layers": layers}
    rnn = load_spec(spec).layers["rnn"]  # seeded weights: only its configuration is used
    cell = getattr(rnn, "inner", rnn)
    if acts is not None and [a.lower() for a in acts] != cell.cell_activations() * dirs:
        raise _NotKeras(f"activations {list(acts)}")
    weights = {}
    for d, side in enumerate(sides):
        prefix = "rnn" if side is None else f"rnn/{side}"
        weights.update({f"{prefix}/{k}": v for k, v in keras_weights(
            cell, W[d], R[d], B[d] if B is not None else None).items()})

    def to_onnx(outs: dict, output_names: list[str]) -> dict:
        vals = [outs[n] for n in output_names]
        if dirs == 2:
            seqs, states = vals[:2], vals[2:]
            hs = [states[0], states[n_states]]
            cs = [states[1], states[n_states + 1]] if n_states == 2 else []
        else:
            seq = vals[0][:, ::-1] if attrs.get("direction") == "reverse" else vals[0]
            seqs, hs, cs = [seq], [vals[1]], ([vals[2]] if n_states == 2 else [])
        if layout == 0:
            y = np.stack([q.transpose(1, 0, 2) for q in seqs], axis=1)  # [T, dirs, B, H]
            yh, yc = np.stack(hs), (np.stack(cs) if cs else None)
        else:
            y = np.stack(seqs, axis=2)  # [B, T, dirs, H]
            yh, yc = np.stack(hs, axis=1), (np.stack(cs, axis=1) if cs else None)
        full = [y, yh, yc]
        return {name: full[k] for k, name in enumerate(node.output) if name}
    return spec, weights, feeds, to_onnx




def _runtime(runner) -> str:
    return runner.name.split(" ")[0]


def _keras_checks(case, tol, make_runner: RunnerFactory) -> tuple[list, str]:
    """The case as a Keras layer: rnncompile's reference and its built ONNX model against the
    ONNX outputs. Returns (results by comparison, note)."""
    from ..backends.reference import ReferenceRunner
    from ..lower import lower
    from ..spec import load_spec

    spec, weights, feeds, to_onnx = onnx_case_as_keras(case)
    model = load_spec(spec, weights=weights)
    built = make_runner(lower(model).model_bytes)
    _, expected = case.data_sets[0]
    node = case.model.graph.node[0]
    want = dict(zip([n for n in node.output if n], [np.asarray(e) for e in expected]))
    checks = []
    for label, runner in (("rnncompile reference vs onnx", ReferenceRunner(model)),
                          (f"rnncompile build ({_runtime(built)}) vs onnx", built)):
        got = to_onnx(runner.run(dict(feeds)), model.output_names)
        checks.append((label, compare_all(want, got, tol)))
    layer = model.layers["rnn"]
    kind = (f"Bidirectional({layer.inner.class_name})" if hasattr(layer, "inner") else
            layer.class_name + (" go_backwards" if layer.config.get("go_backwards") else ""))
    return checks, f"as Keras {kind}"


def _first_line(e: RnnCompileError) -> str:
    msg = e.problems[0].message if e.problems else str(e)
    return msg.splitlines()[0] if msg else type(e).__name__


def run_onnx_suite(threads: int = 1, make_runner: RunnerFactory | None = None) -> SuiteResult:
    """Every case on runners `make_runner` makes (default: onnxruntime, `threads`, quiet: a
    refused model is reported here, not logged by onnxruntime)."""
    import onnx

    make_runner = make_runner or runner_factory("onnxruntime", threads=threads, quiet=True)
    suite = SuiteResult("onnx", "ONNX operator conformance (LSTM, GRU, RNN)",
                        "outputs computed by the ONNX project's reference (onnx.backend.test.case.node)")
    t0 = time.perf_counter()
    tol = tolerance()
    try:
        cases = onnx_node_cases()
        cases = cases + random_weight_variants(cases)
    except Exception as e:  # an onnx release that moved its test cases: a failure, not a pass
        suite.cases.append(CaseOutcome("generate the ONNX node test cases", "failed",
                                       detail=f"{type(e).__name__}: {e}"))
        suite.seconds = time.perf_counter() - t0
        return suite
    for case in cases:
        c0 = time.perf_counter()
        op = case.model.graph.node[0].op_type
        attrs = _node_attributes(case.model)
        errors: dict = {}
        notes: list[str] = []
        results = []
        status = "passed"
        # 1. the node as given
        try:
            runner = make_runner(case.model.SerializeToString())
        except RnnCompileError as e:
            runner = None
            if attrs.get("layout") == 1:
                status = "unsupported"
                notes.append("unsupported by runtime: onnxruntime refuses layout=1 (batch-major) "
                             "for LSTM/GRU/RNN; rnncompile always emits layout=0 with Transposes "
                             "around the op")
            else:
                status = "failed"
                notes.append(_first_line(e))
        if runner is not None:
            as_given = []
            for inputs, expected in case.data_sets:
                feeds = {i.name: np.asarray(a) for i, a in zip(runner.inputs, inputs)}
                try:
                    got = runner.run(feeds)
                except RnnCompileError as e:
                    status = "failed"
                    notes.append(_first_line(e))
                    break
                as_given += compare_all(dict(zip(got, [np.asarray(e) for e in expected])), got, tol)
            if as_given:
                a, _, ok, first = worst(as_given)
                errors[f"{_runtime(runner)} vs onnx"] = a
                results += as_given
                if not ok:
                    status = "failed"
                    notes.append(f"{_runtime(runner)} vs onnx: {first}")
        # 2. the same computation as a Keras layer through rnncompile
        try:
            checks, how = _keras_checks(case, tol, make_runner)
            for what, rs in checks:
                a, _, ok, first = worst(rs)
                errors[what] = a
                results += rs
                if not ok:
                    status = "failed"
                    notes.append(f"{what}: {first}")
            notes.append(f"{how}: reference and build match" if all(
                r.passed for _, rs in checks for r in rs) else how)
        except _NotKeras as e:
            notes.append(f"no Keras equivalent ({e}): checked on onnxruntime only")
        except RnnCompileError as e:
            status = "failed"
            notes.append(f"as a Keras layer: {type(e).__name__}: {e}")
        abs_, rel, _, _ = worst(results)
        detail = "; ".join(notes + [", ".join(f"{k}={v}" for k, v in attrs.items())])
        suite.cases.append(CaseOutcome(f"{op}: {case.name}", status, abs_ if results else None,
                                       rel if results else None, detail, errors,
                                       time.perf_counter() - c0))
    n_random = sum("_random_" in c.name for c in suite.cases)
    suite.notes.append(f"{len(suite.cases) - n_random} case(s) from onnx {onnx.__version__} and {n_random} "
                       f"twin(s) with random weights (`_random_weights`, `_random_initial_state`, "
                       f"`_random_linear_before_reset`: the "
                       f"originals mostly use constant weights, blind to gate order; their expected "
                       f"outputs come from onnx.reference). Each runs as given on onnxruntime and, where a Keras "
                       f"layer computes it, as that layer through rnncompile (Keras-layout "
                       f"weights: reference and built model). onnx's own check uses rtol=1e-3, "
                       f"atol=1e-7; this suite the {PRECISION} tolerance table")
    suite.seconds = time.perf_counter() - t0
    return suite
