"""Call a model that `rnncompile triton` exported, on a running Triton server, over HTTP (or
gRPC with --protocol grpc); with --build, check every answer against the Python Session of the
same build (within 1e-5).

    pip install 'tritonclient[http]'     # or 'tritonclient[grpc]'
    # stateless (dynamic batching): one request holding a batch of padded rows
    python examples/triton/client.py --model sentiment --build out/sentiment
    # stateful (sequence batcher): two sequences interleaved, each chunk one request
    python examples/triton/client.py --model stateful_lstm --build out/stateful_lstm --requests 3

Inputs are random (token inputs in [1, --vocab), or the build's vocabulary), right-padded with 0
in some rows when the model masks (that is how rows of different lengths share a batch).
"""
from __future__ import annotations

import argparse
import sys

import numpy as np


def protocol_module(protocol: str):
    """tritonclient.http or tritonclient.grpc: the same client API."""
    if protocol == "grpc":
        import tritonclient.grpc as module
    else:
        import tritonclient.http as module
    return module


def metadata_and_config(client, model: str) -> tuple[dict, dict]:
    """Model metadata and configuration as plain dicts, from either protocol's client (gRPC
    gives JSON with int64 values as strings, and the config wrapped in {"config": ...})."""
    as_json = {} if type(client).__module__.startswith("tritonclient.http") else {"as_json": True}
    metadata = client.get_model_metadata(model, **as_json)
    config = client.get_model_config(model, **as_json)
    for t in metadata["inputs"] + metadata.get("outputs", []):
        t["shape"] = [int(d) for d in t["shape"]]
    return metadata, config.get("config", config)


def model_inputs(metadata: dict, states: set[str]) -> list[dict]:
    """The inputs a client sends (Triton's model metadata; the START control and the implicit
    states are the server's, not the client's)."""
    return [i for i in metadata["inputs"] if i["name"] not in states and i["name"] != "START"]


def random_feeds(inputs: list[dict], batch: int, steps: int, rng, vocab: dict[str, int],
                 pad: dict[str, float]) -> dict[str, np.ndarray]:
    """One request's tensors; the server's batch axis (-1 first in the metadata) is `batch`,
    other variable axes are `steps`."""
    from tritonclient.utils import triton_to_np_dtype

    feeds = {}
    for i in inputs:
        shape = [batch] + [steps if d == -1 else d for d in i["shape"][1:]]
        dtype = triton_to_np_dtype(i["datatype"])
        if np.issubdtype(dtype, np.integer):
            x = rng.integers(1, vocab.get(i["name"], 10), size=shape).astype(dtype)
        else:
            x = rng.standard_normal(shape).astype(dtype)
        if i["name"] in pad and len(shape) >= 2:
            for b in range(1, batch, 2):  # every other row shorter: right padding
                x[b, steps // 2 + 1:] = pad[i["name"]]
        feeds[i["name"]] = x
    return feeds


def infer(client, protocol, model: str, feeds: dict[str, np.ndarray], outputs: list[str],
          **sequence) -> dict[str, np.ndarray]:
    """One request; `sequence`: sequence_id, sequence_start, sequence_end (stateful models)."""
    from tritonclient.utils import np_to_triton_dtype

    inputs = []
    for name, value in feeds.items():
        t = protocol.InferInput(name, list(value.shape), np_to_triton_dtype(value.dtype))
        t.set_data_from_numpy(value)
        inputs.append(t)
    result = client.infer(model, inputs, **sequence)
    return {name: result.as_numpy(name) for name in outputs}


def compare(label: str, got: dict, want: dict | None, atol: float = 1e-5) -> bool:
    ok = True
    for name, value in got.items():
        if want is None:
            print(f"{label} {name} {value.dtype} {list(value.shape)}")
            continue
        err = float(np.max(np.abs(value.astype(np.float64) - want[name]))) if value.size else 0.0
        ok &= err <= atol
        print(f"{label} {name} {list(value.shape)} max abs diff vs Python session {err:.2e} "
              f"{'ok' if err <= atol else 'DIFFERS'}")
    return ok


def run(client, protocol, model: str, build: str | None, batch: int, steps: int, requests: int,
        seed: int, vocab: int) -> bool:
    rng = np.random.default_rng(seed)
    session_for = None
    states, ranges, pads = set(), {}, {}
    if build is not None:
        from rnncompile import open_session

        def session_for():
            return open_session(build, threads=1)
        io = session_for().io  # a ModelIO
        states = io.state_inputs
        ranges = {i.name: i.token_range for i in io.inputs if i.token_range is not None}
        pads = {i.name: i.pad_value for i in io.inputs if i.pad_value is not None}
    metadata, config = metadata_and_config(client, model)
    inputs = model_inputs(metadata, states)
    outputs = [o["name"] for o in config["output"]]
    vocab_of = {i["name"]: ranges.get(i["name"], vocab) for i in inputs}
    ok = True
    if not config.get("sequence_batching", {}).get("state"):
        feeds = random_feeds(inputs, batch, steps, rng, vocab_of, pads)
        got = infer(client, protocol, model, feeds, outputs)
        ok = compare("batch", got, session_for().run(feeds) if session_for else None)
        return ok
    # stateful: sequences 1 and 2 interleaved, one row per request; the server carries state
    sessions = {sid: session_for() if session_for else None for sid in (1, 2)}
    for k in range(requests):
        for sid in (1, 2):
            feeds = random_feeds(inputs, 1, steps, rng, vocab_of, pads)
            got = infer(client, protocol, model, feeds, outputs, sequence_id=sid, sequence_start=k == 0,
                        sequence_end=k == requests - 1)
            want = sessions[sid].run(feeds) if sessions[sid] else None
            ok &= compare(f"sequence {sid} request {k}", got, want)
    return ok


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default=None, help="Triton's endpoint (localhost:8000 for HTTP, "
                                               "localhost:8001 for gRPC)")
    p.add_argument("--protocol", choices=["http", "grpc"], default="http")
    p.add_argument("--model", required=True, help="the --name given to `rnncompile triton`")
    p.add_argument("--build", default=None, help="the rnncompile build (OUT) to check answers against")
    p.add_argument("--batch", type=int, default=4, help="rows in the stateless request")
    p.add_argument("--steps", type=int, default=12, help="length of variable axes")
    p.add_argument("--requests", type=int, default=3, help="requests per sequence (stateful)")
    p.add_argument("--vocab", type=int, default=10, help="token ids drawn from [1, VOCAB) without --build")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    protocol = protocol_module(args.protocol)
    url = args.url or ("localhost:8001" if args.protocol == "grpc" else "localhost:8000")
    client = protocol.InferenceServerClient(url=url)
    if not client.is_model_ready(args.model):
        print(f"model {args.model!r} is not ready on {url}", file=sys.stderr)
        return 2
    ok = run(client, protocol, args.model, args.build, args.batch, args.steps, args.requests,
             args.seed, args.vocab)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
