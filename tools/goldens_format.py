"""Reader for the Keras golden test data under tests/goldens/ (see tests/goldens/README.md).

Plain NumPy: importing this module never imports Keras or torch.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

GOLDENS_DIR = Path(__file__).resolve().parent.parent / "tests" / "goldens"

_IO_KEY = re.compile(r"^chunk(\d+)/(in|out)/(.+)$")


def list_cases(root: str | Path | None = None) -> list[Path]:
    """The case directories (those holding a spec.json), sorted by name."""
    root = Path(root) if root is not None else GOLDENS_DIR
    return sorted(p.parent for p in root.glob("*/spec.json"))


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def load_golden(case_dir: str | Path):
    """Load one golden case.

    Returns ``(spec, weights, chunks)``:
      - spec: the spec dict (its ``"weights"`` field is relative to ``case_dir``),
      - weights: dict ``"<layer>/<weight>"`` -> np.ndarray (float32, Keras layout),
      - chunks: list of ``(inputs, outputs)``, one per chunk in feeding order;
        ``inputs`` is a dict input name -> np.ndarray (in the spec's Input order),
        ``outputs`` a list of np.ndarray in the order of ``spec["outputs"]``.
        Non-stateful cases have one chunk; stateful ones several, fed one after
        the other to the same model without resetting the state.
    """
    case_dir = Path(case_dir)
    spec = json.loads((case_dir / "spec.json").read_text())
    weights = _load_npz(case_dir / spec.get("weights", "weights.npz"))
    io = _load_npz(case_dir / "io.npz")

    raw: dict[int, tuple[dict, dict]] = {}
    for key, arr in io.items():
        m = _IO_KEY.match(key)
        if m is None:
            raise ValueError(f"{case_dir}/io.npz: unexpected key {key!r}")
        c, kind, name = int(m.group(1)), m.group(2), m.group(3)
        ins, outs = raw.setdefault(c, ({}, {}))
        if kind == "in":
            ins[name] = arr
        else:
            outs[int(name)] = arr
    if sorted(raw) != list(range(len(raw))):
        raise ValueError(f"{case_dir}/io.npz: chunks are not numbered 0..n-1")

    input_names = [l["name"] for l in spec["layers"] if l["class_name"] == "Input"]
    chunks = []
    for c in range(len(raw)):
        ins, outs = raw[c]
        if set(ins) != set(input_names):
            raise ValueError(f"{case_dir}: chunk{c} inputs {sorted(ins)} != {input_names}")
        if sorted(outs) != list(range(len(outs))):
            raise ValueError(f"{case_dir}: chunk{c} outputs are not numbered 0..n-1")
        chunks.append(({n: ins[n] for n in input_names}, [outs[i] for i in range(len(outs))]))
    return spec, weights, chunks
