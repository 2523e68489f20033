"""Check one model directory of a Triton model repository the way the server reads it, on a CPU:
config.pbtxt parsed with Triton's own schema (tritonclient's `model_config_pb2`, protobuf text
format), then compared with the ONNX model it ships: names, element types, dims (batch axis
excluded when max_batch_size > 0), the START control, and the implicit states (each pair present
with the right type and dims, and paired the same way by Triton's sorted-name pairing,
triton-inference-server/server#8586).

Needs `tritonclient[grpc]` (the `dev` extra): `python -m rnncompile.triton_check REPO/NAME`.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .errors import Problem, RunError, SpecError
from .onnx_graph import describe

#: Triton's DataType enum names -> ours
_DTYPES = {"TYPE_BOOL": "bool", "TYPE_UINT8": "uint8", "TYPE_INT8": "int8", "TYPE_INT32": "int32",
           "TYPE_INT64": "int64", "TYPE_FP16": "float16", "TYPE_FP32": "float32",
           "TYPE_FP64": "float64", "TYPE_BF16": "bfloat16", "TYPE_STRING": "string"}
_MODEL_FILES = {"onnxruntime_onnx": "model.onnx", "tensorrt_plan": "model.plan"}


def parse_config(path: Path):
    """config.pbtxt as Triton's ModelConfig message (SpecError naming the file when it does not
    parse against the schema)."""
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError:
        raise RunError("checking a Triton config needs tritonclient[grpc]: pip install "
                       "'tritonclient[grpc]'", where=str(path)) from None
    try:
        return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
    except (text_format.ParseError, UnicodeDecodeError) as e:
        raise SpecError(f"not a valid Triton model configuration: {e}", where=str(path)) from None
    except OSError as e:
        raise RunError(f"cannot read it: {e}", where=str(path)) from None


def check_model_dir(model_dir: str | Path):
    """Parse and check REPO/NAME; returns the parsed ModelConfig, raises SpecError listing every
    disagreement."""
    model_dir = Path(model_dir)
    cfg = parse_config(model_dir / "config.pbtxt")
    from tritonclient.grpc import model_config_pb2 as pb
    problems: list[Problem] = []

    def bad(where: str, msg: str) -> None:
        problems.append(Problem(f"{model_dir / 'config.pbtxt'}: {where}", msg))

    if cfg.name != model_dir.name:
        bad("name", f"{cfg.name!r} differs from the model directory {model_dir.name!r}")
    versions = [d for d in model_dir.iterdir() if d.is_dir() and d.name.isdigit() and not d.name.startswith("0")]
    model_file = cfg.default_model_filename or _MODEL_FILES.get(cfg.platform)
    if model_file is None:
        bad("platform", f"{cfg.platform!r} is not one rnncompile exports")
        raise SpecError(problems)
    if not versions:
        bad("versions", "no version directory (an integer >= 1)")
    for v in versions:
        if not (v / model_file).is_file():
            bad(f"version {v.name}", f"{model_file} is missing")
    if problems or cfg.platform != "onnxruntime_onnx":
        if problems:
            raise SpecError(problems)
        return cfg  # a plan's bindings cannot be read without TensorRT
    io = describe((versions[0] / model_file).read_bytes())
    graph_in = {t["name"]: t for t in io["inputs"]}
    graph_out = {t["name"]: t for t in io["outputs"]}
    batched = cfg.max_batch_size > 0
    seq = cfg.sequence_batching if cfg.HasField("sequence_batching") else None
    dtype_name = pb.DataType.Name

    def same_tensor(where: str, t: dict | None, dtype: int, dims, reshape=None) -> None:
        if t is None:
            bad(where, "is not in the ONNX model")
            return
        if _DTYPES.get(dtype_name(dtype)) != t["dtype"]:
            bad(where, f"data_type {dtype_name(dtype)}, the ONNX model has {t['dtype']}")
        shape = list(t["shape"])
        if batched:
            if shape and isinstance(shape[0], int):
                bad(where, f"the ONNX model fixes the batch axis to {shape[0]}; max_batch_size > 0 "
                           "needs it dynamic")
            shape = shape[1:]
        want = [d if isinstance(d, int) else -1 for d in shape]
        got = list(reshape) if reshape is not None else list(dims)
        if got != want:
            bad(where, f"dims {list(dims)}{' reshaped to ' + str(got) if reshape is not None else ''}, "
                       f"the ONNX model has {want} (batch axis excluded: {batched})")

    for i in cfg.input:
        same_tensor(f"input {i.name!r}", graph_in.get(i.name), i.data_type, i.dims,
                    i.reshape.shape if i.HasField("reshape") else None)
    for o in cfg.output:
        same_tensor(f"output {o.name!r}", graph_out.get(o.name), o.data_type, o.dims,
                    o.reshape.shape if o.HasField("reshape") else None)
    listed_in = {i.name for i in cfg.input}
    listed_out = {o.name for o in cfg.output}
    if seq is not None:
        for c in seq.control_input:
            t = graph_in.get(c.name)
            listed_in.add(c.name)
            for ctl in c.control:
                dtype = ("int32" if ctl.int32_false_true else "float32" if ctl.fp32_false_true
                         else "bool" if ctl.bool_false_true else None)
                if t is None or t["dtype"] != dtype or [d if isinstance(d, int) else -1
                                                        for d in t["shape"][1:]] != [1]:
                    bad(f"control_input {c.name!r}", f"needs a {dtype} [batch, 1] model input; the "
                                                     f"ONNX model has {t}")
        for s in seq.state:
            if s.input_name in listed_in:
                bad(f"state {s.input_name!r}", "a state input must not also be listed in input")
            same_tensor(f"state input {s.input_name!r}", graph_in.get(s.input_name), s.data_type, s.dims)
            same_tensor(f"state output {s.output_name!r}", graph_out.get(s.output_name), s.data_type, s.dims)
            for init in s.initial_state:
                if list(init.dims) != list(s.dims) or init.data_type != s.data_type:
                    bad(f"state {s.input_name!r}", f"initial_state {dtype_name(init.data_type)} "
                                                   f"{list(init.dims)} differs from the state's "
                                                   f"{dtype_name(s.data_type)} {list(s.dims)}")
            listed_in.add(s.input_name)
            listed_out.add(s.output_name)
        configured = [(s.input_name, s.output_name) for s in seq.state]
        paired = list(zip(sorted(i for i, _ in configured), sorted(o for _, o in configured)))
        if sorted(configured) != sorted(paired):
            bad("sequence_batching.state", f"Triton pairs states by sorted name "
                                           f"(server#8586): it would pair {paired}, not {configured}")
    if set(graph_in) != listed_in:
        bad("input", f"the ONNX model's inputs {sorted(graph_in)} are not those the config feeds "
                     f"{sorted(listed_in)}")
    if set(graph_out) != listed_out:
        bad("output", f"the ONNX model's outputs {sorted(graph_out)} are not those the config "
                      f"reads {sorted(listed_out)}")
    if problems:
        raise SpecError(problems)
    return cfg


def main(argv: list[str] | None = None) -> int:
    from .errors import RnnCompileError

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m rnncompile.triton_check REPO/NAME", file=sys.stderr)
        return 2
    try:
        cfg = check_model_dir(args[0])
    except RnnCompileError as e:
        for p in e.problems:
            print(f"error: {p}", file=sys.stderr)
        return e.exit_code
    print(f"ok: {cfg.name}: {cfg.platform}, {len(cfg.input)} input(s), {len(cfg.output)} output(s)"
          + (f", {len(cfg.sequence_batching.state)} implicit state(s)"
             if cfg.HasField("sequence_batching") else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
