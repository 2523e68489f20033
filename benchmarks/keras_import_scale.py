"""Keras import at scale: generates legacy .h5 Keras files with h5py (no Keras needed) and times
`rnncompile.keras.import_keras` on them, to show that graph ordering and weight lookup are linear.

    python benchmarks/keras_import_scale.py                          # 10,000 layers; 20,000 calls
    python benchmarks/keras_import_scale.py --layers 2500,5000,10000 --calls 5000,10000,20000

Two files per size N:
  * `dense_N.h5`: a Sequential model of N layers (an InputLayer and N - 1 Dense layers, each
    with its weights; N = 10,000 is the most max_layers allows): weight lookup.
  * `calls_N.h5`: a Functional model of N calls of min(N/2, 9,999) Dense layers (a chain through
    every layer, then through every layer again, ...), its layer entries listed in reverse order
    of the chain, the worst case for an ordering that makes passes over the calls.
Per file: the time to read it (config, and every weight array through the contained HDF5
reader), the time to rebuild the graph as a spec (ordering, masks, weight lookup), and both per
layer or call (flat when the cost is linear).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rnncompile.keras import KerasLimits  # noqa: E402
from rnncompile.keras.graph import Converter  # noqa: E402
from rnncompile.keras.reader import open_source  # noqa: E402

UNITS = 2


def _input(name: str) -> dict:
    return {"class_name": "InputLayer", "name": name,
            "config": {"batch_input_shape": [None, 3, UNITS], "dtype": "float32", "name": name},
            "inbound_nodes": []}


def _dense(name: str) -> dict:
    return {"class_name": "Dense", "name": name,
            "config": {"name": name, "units": UNITS, "activation": "linear", "use_bias": True}}


def _write(path: Path, config: dict, layers: list[str]) -> None:
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"] = "2.15.0"
        mw = f.create_group("model_weights")
        for name in layers:
            g = mw.create_group(name)
            g.attrs["weight_names"] = [f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()]
            g[f"{name}/kernel:0"] = rng.standard_normal((UNITS, UNITS)).astype(np.float32)
            g[f"{name}/bias:0"] = rng.standard_normal(UNITS).astype(np.float32)


def dense_chain(path: Path, n: int) -> None:
    """n layers: an InputLayer and n - 1 Dense layers."""
    names = [f"dense_{i}" for i in range(n - 1)]
    layers = [dict(_input("x"), inbound_nodes=None)] + [_dense(nm) for nm in names]
    for l in layers:
        l.pop("inbound_nodes", None)
    _write(path, {"class_name": "Sequential", "config": {"name": "chain", "layers": layers}}, names)


def calls_chain(path: Path, calls: int, max_layers: int = 10_000) -> None:
    """`calls` calls of min(calls / 2, max_layers - 1) Dense layers, chained round after round."""
    n = min(calls // 2, max_layers - 1)
    names = [f"dense_{i}" for i in range(n)]
    entries = {nm: dict(_dense(nm), inbound_nodes=[]) for nm in names}
    prev = ["x", 0, 0]
    for c in range(calls):
        nm = names[c % n]
        entries[nm]["inbound_nodes"].append([[*prev, {}]])
        prev = [nm, c // n, 0]
    layers = [_input("x")] + [entries[nm] for nm in reversed(names)]
    config = {"class_name": "Functional", "config": {
        "name": "calls", "layers": layers, "input_layers": [["x", 0, 0]], "output_layers": [prev]}}
    _write(path, config, names)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", default="10000", help="Dense layer counts of dense_N (comma-separated)")
    ap.add_argument("--calls", default="20000", help="call counts of calls_N (comma-separated)")
    ap.add_argument("--in-process", action="store_true", help="read the HDF5 data in this process")
    args = ap.parse_args()
    limits = KerasLimits(contained=not args.in_process)
    print(f"HDF5 reader: {'in process' if args.in_process else 'child process'}")
    print(f"{'file':<16}{'bytes':>10}{'read s':>8}{'graph s':>9}{'read ms/unit':>14}{'graph ms/unit':>15}  result")
    jobs = [(dense_chain, "dense", int(n)) for n in args.layers.split(",") if n] + \
           [(calls_chain, "calls", int(n)) for n in args.calls.split(",") if n]
    with tempfile.TemporaryDirectory() as tmp:
        for make, label, n in jobs:
            p = Path(tmp) / f"{label}_{n}.h5"
            make(p, n)
            t0 = time.perf_counter()
            with open_source(p, limits) as src:
                t1 = time.perf_counter()
                spec, weights = Converter(src).run()
                t2 = time.perf_counter()
            result = f"{len(spec['layers'])} spec layers, {len(weights)} weights"
            print(f"{p.name:<16}{p.stat().st_size:>10}{t1 - t0:>8.2f}{t2 - t1:>9.2f}"
                  f"{1000 * (t1 - t0) / n:>14.3f}{1000 * (t2 - t1) / n:>15.3f}  {result}", flush=True)
            p.unlink()


if __name__ == "__main__":
    main()
