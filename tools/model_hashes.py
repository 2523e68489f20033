"""sha256 of model.onnx for every example and N generated specs, to show which models' bytes a
change alters (run on two revisions, compare the JSON files).

    python tools/model_hashes.py out.json [--specs 300] [--target onnxruntime]
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from rnncompile.lower import lower
from rnncompile.qa.specgen import random_spec
from rnncompile.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--specs", type=int, default=300)
    ap.add_argument("--target", default="onnxruntime")
    args = ap.parse_args(argv)
    hashes = {}
    for p in sorted((ROOT / "examples").glob("*.json")):
        hashes[p.name] = hashlib.sha256(lower(load_spec(p), args.target).model_bytes).hexdigest()
    for seed in range(args.specs):
        try:
            data = lower(load_spec(random_spec(seed)), args.target).model_bytes
            hashes[f"gen{seed}"] = hashlib.sha256(data).hexdigest()
        except Exception as e:  # a spec the target refuses is recorded, not fatal
            hashes[f"gen{seed}"] = f"error {type(e).__name__}"
    args.out.write_text(json.dumps(hashes, indent=1) + "\n")
    print(f"{len(hashes)} models -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
