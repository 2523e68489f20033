"""Property tests: every generated valid spec validates, lowers, and onnxruntime equals the
float64 reference within the float32 tolerance, on the verifier's padding patterns (none, right,
left, gaps, empty rows, mixed) and on an arbitrary mask drawn by Hypothesis.

The generator is rnncompile.qa.specgen (shared with `rnncompile conformance`, suite "generated").

CI runs a fixed, bounded set of examples (derandomized, no example database). A longer,
randomized run is one command:

    HYPOTHESIS_PROFILE=long python -m pytest tests/test_properties.py

The breadth family of the generator (convolutions, pooling, attention, one-hot, TimeDistributed,
SetMask, merges, normalization, shape layers) has its own properties below: both targets, and the
mask invariant (padded steps never reach a masked consumer). Its seeded sweep checks
RNNCOMPILE_BREADTH_SWEEP specs (default 60).

Failures that Hypothesis shrank are kept below as explicit regression tests.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from rnncompile.errors import RnnCompileError, SpecError  # noqa: E402
from rnncompile.lower import lower  # noqa: E402
from rnncompile.schema import spec_schema  # noqa: E402
from rnncompile.spec import load_spec  # noqa: E402
from rnncompile.qa.specgen import (check_spec, empty_rows_allowed, generate_spec,  # noqa: E402
                                mask_case, min_steps, random_spec, spec_strategy, RandomChooser)
from rnncompile.inputs import input_infos  # noqa: E402
from rnncompile.verify import render  # noqa: E402

_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
PROFILES = {
    # CI: the same examples on every run, bounded time (2 cores: well under a minute in all)
    "ci": dict(max_examples=int(os.environ.get("RNNCOMPILE_PROPERTY_EXAMPLES", 200)),
               derandomize=True, database=None, deadline=None, suppress_health_check=_SLOW,
               print_blob=True),
    # long: randomized, many more examples; failures are saved in .hypothesis/ and replayed
    "long": dict(max_examples=int(os.environ.get("RNNCOMPILE_PROPERTY_EXAMPLES", 3000)),
                 deadline=None, suppress_health_check=_SLOW, print_blob=True),
}
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
if PROFILE not in PROFILES:
    PROFILE = "ci"


def profile(scale: float = 1.0) -> settings:
    opts = dict(PROFILES[PROFILE])
    opts["max_examples"] = max(1, int(opts["max_examples"] * scale))
    return settings(**opts)


def _drawn_masks(data, model) -> dict[str, np.ndarray]:
    """An arbitrary validity mask per masked input, drawn by Hypothesis (shrinks to all-valid)."""
    infos = [i for i in input_infos(model) if i.pad_value is not None and i.shape]
    if not infos:
        return {}
    fixed = next((model.input_type(n).shape[0] for n in model.inputs
                  if model.input_type(n).shape[0] is not None), None)
    batch = fixed or data.draw(st.integers(1, 4), label="batch")
    # a layer that merges sequences step by step (SetMask, Concatenate on features) needs one time axis
    same_t = any(l.equal_lengths() for l in model.layers.values())
    lo = min_steps(model)
    shared_t = next((i.shape[0] for i in infos if i.shape[0] is not None), None)
    if same_t and shared_t is None:
        shared_t = data.draw(st.integers(lo, lo + 6), label="time")
    masks = {}
    for info in infos:
        t = info.shape[0] or (shared_t if same_t else data.draw(st.integers(lo, lo + 6), label=f"{info.name} time"))
        rows = data.draw(st.lists(st.lists(st.booleans(), min_size=t, max_size=t),
                                  min_size=batch, max_size=batch), label=f"{info.name} valid steps")
        m = np.array(rows, bool).reshape(batch, t)
        if not empty_rows_allowed(model):
            m[~m.any(axis=1), 0] = True  # Keras is undefined (0/0) on a fully masked row there
        masks[info.name] = m
    return masks


def _assert_verified(spec, data=None, seed=0):
    def extra(model):
        if data is None:
            return []
        masks = _drawn_masks(data, model)
        if not masks:
            return []
        return [mask_case(model, masks, np.random.default_rng(seed))]
    model, report, cond = check_spec(spec, seed=seed, extra_cases=extra)
    if not report.passed and data is not None and cond.ill_conditioned:
        # float32 rounding alone moves the reference as much: not verifiable at this tolerance
        hypothesis.event("ill-conditioned example discarded")
        hypothesis.assume(False)
    assert report.passed, f"spec:\n{json.dumps(spec)}\n{render(report)}"
    return model, report


# ---------------------------------------------------------------------------------------------
# Properties.


@profile()
@given(spec=spec_strategy(), data=st.data())
def test_generated_spec_builds_and_matches_reference(spec, data):
    """Validates, lowers, and onnxruntime == reference on every padding pattern and on an
    arbitrary drawn mask (right/left padding, gaps and empty rows are all reachable)."""
    _assert_verified(spec, data)


@profile(0.5)
@given(spec=spec_strategy())
def test_generated_spec_conforms_to_the_json_schema_and_lowers_deterministically(spec):
    import jsonschema

    jsonschema.Draft202012Validator(spec_schema()).validate(spec)
    model = load_spec(spec)
    assert lower(model).model_bytes == lower(load_spec(json.loads(json.dumps(spec)))).model_bytes


@profile(0.5)
@given(spec=spec_strategy(), field=st.sampled_from(["units", "output_dim", "input_dim"]),
       value=st.sampled_from([0, -1, 1.5, "3", None, True]))
def test_breaking_a_generated_spec_gives_a_spec_error(spec, field, value):
    """Any invalid size in an otherwise valid spec is a SpecError naming the layer's JSON path."""
    where = [(i, l) for i, l in enumerate(spec["layers"]) if field in l]
    if not where:
        where = [(i, l["layer"]) for i, l in enumerate(spec["layers"]) if field in l.get("layer", {})]
    if not where:
        return
    i, layer = where[0]
    layer[field] = value
    with pytest.raises(SpecError) as e:
        load_spec(spec)
    assert f"$.layers[{i}]" in str(e.value)


def test_the_seeded_sweep_is_reproducible():
    assert [random_spec(i) for i in range(20)] == [random_spec(i) for i in range(20)]
    assert len({json.dumps(random_spec(i)) for i in range(20)}) == 20


def test_the_generator_reaches_every_feature():
    """Coverage of the generator itself over the first 300 seeds of the sweep."""
    seen: set[str] = set()
    for i in range(300):
        spec = random_spec(i)
        for l in spec["layers"]:
            seen.add(l["class_name"])
            inner = l.get("layer", l)
            seen.add(inner["class_name"])
            for k in ("return_state", "go_backwards", "stateful", "zero_output_for_mask",
                      "initial_state", "ignore_mask", "mask_zero", "keepdims"):
                if inner.get(k) or l.get(k):
                    seen.add(k)
            if inner.get("reset_after") is False:
                seen.add("reset_before")
            if inner.get("use_bias") is False:
                seen.add("no_bias")
            if l["class_name"] == "Bidirectional":
                seen.add(f"merge_{l.get('merge_mode', 'concat')}")
        if "outputs" in spec:
            seen.add("outputs")
    want = {"Input", "Embedding", "Masking", "Dense", "Activation", "Dropout", "SimpleRNN", "LSTM",
            "GRU", "Bidirectional", "GlobalAveragePooling1D", "GlobalMaxPooling1D", "return_state",
            "go_backwards", "stateful", "zero_output_for_mask", "initial_state", "ignore_mask",
            "mask_zero", "keepdims", "reset_before", "no_bias", "merge_concat", "merge_sum",
            "merge_ave", "merge_mul", "merge_None", "outputs"}
    assert want <= seen, f"never generated: {sorted(want - seen)}"


# ---------------------------------------------------------------------------------------------
# The breadth family: the kinds around the recurrent core (specgen_breadth.Breadth).

BREADTH_KINDS = {"Conv1D", "MaxPooling1D", "AveragePooling1D", "Conv2D", "MaxPooling2D", "AveragePooling2D",
                 "TimeDistributed(Conv2D)", "TimeDistributed(MaxPooling2D)", "TimeDistributed(AveragePooling2D)",
                 "TimeDistributed(Flatten)", "Attention", "AdditiveAttention", "AttentionPooling1D",
                 "CategoryEncoding", "OneHot", "SetMask", "Embedding", "Masking", "Concatenate", "Add", "Subtract",
                 "Multiply", "Average", "Maximum", "Minimum", "LayerNormalization", "BatchNormalization", "PReLU",
                 "LeakyReLU", "Reshape", "Permute", "RepeatVector", "Flatten", "GlobalAveragePooling1D",
                 "GlobalMaxPooling1D", "LSTM", "GRU", "SimpleRNN", "Bidirectional", "Dense"}


def _features(spec: dict) -> set[str]:
    seen = set()
    for l in spec["layers"]:
        seen.add(l["class_name"])
        if "layer" in l:
            seen.add(f"{l['class_name']}({l['layer']['class_name']})")
        for k in ("use_causal_mask", "return_attention_scores", "use_scale"):
            if l.get(k) is not None:
                seen.add(f"{l['class_name']}.{k}")
        if l.get("score_mode") == "concat":
            seen.add("Attention.concat")
        if l["class_name"] == "Concatenate" and l.get("axis") == 1:
            seen.add("Concatenate.time")
        if l["class_name"] == "Conv1D":
            seen.add(f"Conv1D.{l.get('padding', 'valid')}")
            if "dilation_rate" in l:
                seen.add("Conv1D.dilation")
            if "strides" in l:
                seen.add("Conv1D.strides")
    return seen


def test_the_breadth_family_reaches_every_kind_and_option():
    """Coverage of the breadth family over the first 300 seeds of its sweep (genb0..genb299)."""
    seen: set[str] = set()
    masks = set()
    for i in range(300):
        spec = random_spec(i, breadth=True)
        seen |= _features(spec)
        model = load_spec(spec)
        for l in model.layers.values():
            if l.class_name in ("Attention", "AdditiveAttention"):
                q, v = l.input_types[0], l.input_types[1]
                masks.add((q.masked, v.masked))
    want = BREADTH_KINDS | {"Attention.use_causal_mask", "AdditiveAttention.use_causal_mask",
                            "Attention.return_attention_scores", "Attention.use_scale", "Attention.concat",
                            "Concatenate.time", "Conv1D.valid", "Conv1D.same", "Conv1D.causal", "Conv1D.dilation",
                            "Conv1D.strides"}
    assert want <= seen, f"never generated: {sorted(want - seen)}"
    assert masks == {(True, True), (True, False), (False, True), (False, False)}, masks   # query/value masks


def test_the_breadth_family_is_seeded_and_separate():
    """Deterministic per seed; distinct from the classic family, which it leaves unchanged."""
    assert [random_spec(i, breadth=True) for i in range(20)] == [random_spec(i, breadth=True) for i in range(20)]
    assert len({json.dumps(random_spec(i, breadth=True)) for i in range(20)}) == 20
    assert random_spec(3, breadth=True)["name"] == "genb3" and random_spec(3)["name"] == "gen3"
    assert random_spec(3) == generate_spec(RandomChooser(3), "gen3")


def _check_both_targets(spec, data=None, seed=0):
    """onnxruntime == reference for the default target; for tensorrt, the graph passes the parser
    rules and (run on onnxruntime) matches too, or lowering refuses it with a reason."""
    from rnncompile.errors import TargetError
    from rnncompile.onnx_trt_check import check_model

    model, report = _assert_verified(spec, data, seed)
    try:
        low = lower(model, "tensorrt")
    except TargetError as e:
        assert str(e).strip(), "a tensorrt refusal gives its reason"
        return "refused"
    findings = check_model(low.model_bytes).findings
    assert not findings, f"spec:\n{json.dumps(spec)}\n{findings}"
    _, trt_report, cond = check_spec(spec, seed=seed, target="tensorrt")
    if not trt_report.passed and cond is not None and cond.ill_conditioned:
        return "ill-conditioned"
    assert trt_report.passed, f"tensorrt target, spec:\n{json.dumps(spec)}\n{render(trt_report)}"
    return "both"


@profile(0.25)
@given(spec=spec_strategy(breadth=True), data=st.data())
def test_breadth_spec_matches_reference_on_both_targets(spec, data):
    """Every breadth spec validates against the schema, lowers, and matches the reference on every
    padding pattern and a drawn mask, for the default target and for tensorrt where it accepts it."""
    import jsonschema

    jsonschema.Draft202012Validator(spec_schema()).validate(spec)
    hypothesis.event(f"tensorrt: {_check_both_targets(spec, data)}")


#: specs of the seeded breadth sweep the default run checks (RNNCOMPILE_BREADTH_SWEEP=1000 for more)
BREADTH_SWEEP = int(os.environ.get("RNNCOMPILE_BREADTH_SWEEP", 60))


@pytest.mark.parametrize("start", range(0, BREADTH_SWEEP, 20))
def test_breadth_seeded_sweep_on_both_targets(start):
    """The seeded breadth sweep genb0.. (the specs `rnncompile conformance` would name genb<i>), 20
    per test, on both targets."""
    for i in range(start, min(start + 20, BREADTH_SWEEP)):
        _check_both_targets(random_spec(i, breadth=True), seed=i)


@profile(0.25)
@given(spec=spec_strategy(masked_consumer=True), data=st.data())
def test_padded_steps_never_reach_a_masked_consumer(spec, data):
    """Mask invariant: a bool input m masks x (SetMask), blocks that keep the mask (Dense,
    normalization, attention, recurrent layers, merges) follow, and a mask consumer (last
    recurrent step, masked mean, attention pooling) makes the output. Any values at x's padded
    steps then give the same output, in the reference and in onnxruntime (rows with a valid
    step: attention over no valid step weighs every step, as Keras does)."""
    from rnncompile.backends import default_factory

    model = load_spec(spec)
    fixed_t = model.input_type("x").shape[1]
    batch = data.draw(st.integers(1, 3), label="batch")
    t = fixed_t or data.draw(st.integers(1, 6), label="time")
    f = model.input_type("x").shape[2]
    m = np.array(data.draw(st.lists(st.lists(st.booleans(), min_size=t, max_size=t), min_size=batch,
                                    max_size=batch), label="valid steps"), bool).reshape(batch, t)
    m[~m.any(axis=1), 0] = True
    rng = np.random.default_rng(data.draw(st.integers(0, 1000), label="seed"))
    x = rng.normal(size=(batch, t, f)).astype(np.float32)
    x2 = np.where(m[..., None], x, rng.normal(scale=3.0, size=x.shape)).astype(np.float32)
    assert not np.array_equal(x, x2) or m.all()
    from rnncompile.reference import run_reference
    ref = [run_reference(model, {"x": v, "m": m})[0] for v in (x, x2)]
    runner = default_factory(1)(lower(model).model_bytes)
    ort = [runner.run({"x": v, "m": m}) for v in (x, x2)]
    for a, b in zip(*ref):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=json.dumps(spec))
    for k in ort[0]:
        np.testing.assert_allclose(ort[0][k], ort[1][k], rtol=1e-5, atol=1e-6, err_msg=json.dumps(spec))


@pytest.mark.parametrize("pattern", ["right", "left", "gaps", "empty", "all_valid"])
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "SimpleRNN"])
def test_every_mask_pattern_on_every_cell(kind, pattern):
    """The five named patterns, explicitly, on a Bidirectional and a go_backwards layer with
    return_state (the property test reaches them by chance; this pins them)."""
    spec = {"layers": [
        {"class_name": "Input", "name": "tokens", "shape": [None], "dtype": "int32"},
        {"class_name": "Embedding", "input_dim": 9, "output_dim": 3, "mask_zero": True},
        {"class_name": "Bidirectional", "name": "bi", "merge_mode": "ave",
         "layer": {"class_name": kind, "units": 3, "return_sequences": True}},
        {"class_name": kind, "name": "back", "units": 2, "go_backwards": True, "return_state": True}]}
    t = 6
    m = np.ones((4, t), bool)
    if pattern == "right":
        m[:, 4:] = False
    elif pattern == "left":
        m[:, :3] = False
    elif pattern == "gaps":
        m[:, [1, 3]] = False
    elif pattern == "empty":
        m[[0, 2]] = False
    model = load_spec(spec)
    case = mask_case(model, {"tokens": m}, np.random.default_rng(0))
    _, report, _ = check_spec(spec, extra_cases=[case])
    assert report.passed, render(report)


# ---------------------------------------------------------------------------------------------
# Regression tests: failures found by the generator, shrunk, kept explicitly.


def test_regression_stateful_layer_with_return_state():
    """Shrunk from the sweep: a stateful layer with return_state had an output `rnn_state_h`
    that collided with its carried-state input `rnn_state_h` (SpecError on a valid spec). Fixed:
    state inputs are `<layer>_<state>_in`."""
    spec = {"layers": [{"class_name": "Input", "name": "x", "shape": [None, 2], "batch_size": 2},
                       {"class_name": "GRU", "name": "rnn", "units": 3, "stateful": True,
                        "return_state": True}]}
    model, _ = _assert_verified(spec)
    assert "rnn_state_h" in model.output_names
    assert all(s.input_name != "rnn_state_h" for s in model.states)


def test_regression_stateful_bidirectional_with_return_state():
    spec = {"layers": [{"class_name": "Input", "name": "x", "shape": [None, 2]},
                       {"class_name": "Masking"},
                       {"class_name": "Bidirectional", "name": "b", "merge_mode": None,
                        "layer": {"class_name": "LSTM", "units": 2, "stateful": True,
                                  "return_state": True, "return_sequences": True}}]}
    _assert_verified(spec)


def test_regression_unbounded_gate_activation_explodes_in_both_runtimes():
    """Found by the sweep: a GRU whose *gate* activation is linear explodes (1e30, then NaN) in
    the reference and in onnxruntime alike. That is float overflow, not a compiler bug, so the
    generator only uses bounded gate activations; this pins that such a spec still validates and
    lowers, and that the verifier reports the NaN instead of passing it."""
    spec = {"layers": [{"class_name": "Input", "name": "x", "shape": [None, 4]},
                       {"class_name": "GRU", "units": 4, "recurrent_activation": "linear",
                        "activation": "linear", "return_sequences": True}], "seed": 3}
    model = load_spec(spec)
    lower(model)
    x = np.full((1, 200, 4), 50.0, np.float32)
    from rnncompile.reference import run_reference
    with np.errstate(all="ignore"):
        (y,), _ = run_reference(model, {"x": x})
    from rnncompile.verify import TOLERANCES, compare
    r = compare("y", y, np.zeros_like(y), TOLERANCES["float32"])
    assert not r.passed


def test_regression_linear_lstm_after_relu_is_ill_conditioned_not_wrong():
    """Shrunk by the long property run: a linear LSTM with tanh gates after a 1-unit relu
    SimpleRNN differs from the reference by 1.5x the tolerance on one case. Rerunning the
    reference with its weights rounded differently at float32 level moves it by 2x the
    tolerance: the model amplifies rounding, the compiler is right. Such examples are
    classified (check_spec's conditioning), not counted as failures."""
    spec = {"layers": [{"class_name": "Input", "name": "x", "shape": [None, 2]},
                       {"class_name": "Masking", "mask_value": 0.0},
                       {"class_name": "Bidirectional", "merge_mode": "sum",
                        "layer": {"class_name": "LSTM", "units": 3, "return_sequences": True}},
                       {"class_name": "SimpleRNN", "units": 1, "activation": "relu",
                        "return_sequences": True},
                       {"class_name": "LSTM", "units": 3, "activation": "linear",
                        "recurrent_activation": "tanh", "go_backwards": True}]}
    _, report, cond = check_spec(spec)
    if not report.passed:
        assert cond.ill_conditioned, render(report)


def test_conditioning_does_not_excuse_a_real_error():
    """A runtime that is off by 1e-3 on a well-conditioned model is a failure, not
    ill-conditioning."""
    from rnncompile.build import io_description
    from rnncompile.backends.onnxruntime import OnnxRuntimeRunner
    from rnncompile.verify import conditioning, make_cases, verify

    spec = {"layers": [{"class_name": "Input", "name": "x", "shape": [None, 3]},
                       {"class_name": "LSTM", "units": 4, "return_sequences": True}]}
    model = load_spec(spec)
    low = lower(model)
    io = io_description(model, low)
    inner = OnnxRuntimeRunner(low.model_bytes, threads=1)

    class OffByALittle:
        name = "broken"
        precision = "float32"

        def run(self, feeds):
            return {k: v + np.float32(1e-3) for k, v in inner.run(feeds).items()}

    cases, _ = make_cases(model)
    report = verify(model, OffByALittle(), io, cases=cases)
    assert not report.passed
    c = conditioning(model, io, cases, report)
    assert not c.ill_conditioned
    assert all(e > 30 * s for _, e, s in c.items)


def test_regression_generator_chooser_protocol():
    """generate_spec works with any chooser (the conformance sweep's RandomChooser here)."""
    spec = generate_spec(RandomChooser(123), "x")
    assert load_spec(spec).name == "x"


def test_errors_are_rnncompile_errors():
    with pytest.raises(RnnCompileError):
        load_spec({"layers": [{"class_name": "LSTM", "units": 0}]})
