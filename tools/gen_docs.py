#!/usr/bin/env python
"""Regenerate the parts of the docs that the layer registry determines: the table of built-in
layer kinds and their fields in docs/spec.md, between the marker comments

    <!-- BEGIN GENERATED: layer kinds (tools/gen_docs.py) -->
    <!-- END GENERATED: layer kinds -->

    python tools/gen_docs.py          # rewrite docs/spec.md
    python tools/gen_docs.py --check  # exit 1 when the committed table is stale

tests/test_docs.py runs the check. Plugin kinds are left out (only rnncompile.layers.*).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC_DOC = ROOT / "docs" / "spec.md"
BEGIN = "<!-- BEGIN GENERATED: layer kinds (tools/gen_docs.py) -->"
END = "<!-- END GENERATED: layer kinds -->"


def _field(name: str, schema: dict, required: bool) -> str:
    if required:
        return f"`{name}`"
    if "default" in schema:
        return f"`{name}` ({json.dumps(schema['default'])})"
    return f"`{name}` (optional)"


def layer_table() -> str:
    """The markdown table of the built-in kinds: class name, description, fields (required
    first, then each optional one with its Keras default)."""
    import rnncompile.layers  # noqa: F401  (registers the built-in kinds)
    from rnncompile.layer import REGISTRY

    rows = ["| kind | what | fields: required, then optional (default) |", "|---|---|---|"]
    for name, cls in sorted(REGISTRY.items()):
        if not cls.__module__.startswith("rnncompile.layers."):
            continue
        fields = [_field(k, cls.attributes.get(k, {}), True) for k in cls.required]
        fields += [_field(k, s, False) for k, s in cls.attributes.items() if k not in cls.required]
        rows.append(f"| `{name}` | {cls.description} | {', '.join(fields) or '-'} |")
    return "\n".join(rows)


def regenerate(text: str) -> str:
    """`text` (docs/spec.md) with the generated table replaced; ValueError without markers."""
    if BEGIN not in text or END not in text or text.index(BEGIN) > text.index(END):
        raise ValueError(f"docs/spec.md has no {BEGIN} ... {END} section")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{layer_table()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    text = SPEC_DOC.read_text()
    new = regenerate(text)
    if "--check" in argv:
        if new != text:
            print("docs/spec.md: the layer table is stale; run python tools/gen_docs.py", file=sys.stderr)
            return 1
        return 0
    if new != text:
        SPEC_DOC.write_text(new)
        print(f"wrote {SPEC_DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
