"""Regenerate the operator table of rnncompile/tensorrt_rules.py from onnx-tensorrt's
docs/operators.md (the parser's documented support matrix).

    python tools/trt_operator_table.py path/to/onnx-tensorrt/docs/operators.md > /tmp/table.txt

Prints one line per operator, `Op Y|N TYPE TYPE ...`, in the format `OPERATOR_MATRIX` holds;
paste it over the block in tensorrt_rules.py and record the onnx-tensorrt commit in SOURCE.
Restrictions (the last column) are not parsed: the ones rnncompile relies on are written as
structured rules in tensorrt_rules.py, each with its source."""
from __future__ import annotations

import re
import sys
from pathlib import Path


def rows(text: str):
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or cells[1] not in ("Y", "N") or not re.fullmatch(r"[A-Za-z0-9]+", cells[0]):
            continue
        types = [t.strip() for t in (cells[2] if len(cells) > 2 else "").split(",") if t.strip()]
        # the upstream table has one typo ("INF64" for ConstantOfShape)
        yield cells[0], cells[1], ["INT64" if t == "INF64" else t for t in types]


def main(path: str) -> None:
    for op, ok, types in rows(Path(path).read_text()):
        print(f"{op} {ok} {' '.join(types)}".rstrip())


if __name__ == "__main__":
    main(sys.argv[1])
