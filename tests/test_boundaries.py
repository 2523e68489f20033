"""The package's boundaries, checked statically: the compiler never imports its QA package
(rnncompile.qa), the CLI only inside the commands that run QA; ONNX protobuf stays in the graph
builders and onnxruntime in its backend (ruff's TID251 enforces the coarse rule in CI, checked
here to really fire; the finer split it cannot express is checked with ast)."""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "rnncompile"
#: the CLI commands allowed to import rnncompile.qa, lazily, inside their function body
QA_COMMANDS = {"conformance", "bench", "audit"}


def imports(path: Path, source: str | None = None):
    """(absolute module name, the names of the functions enclosing the import) of every import
    in a module of rnncompile (its file, or `source` as if it were that file), relative imports
    resolved ("from . import qa" -> rnncompile.qa)."""
    rel = path.relative_to(ROOT).with_suffix("")
    package = list(rel.parts[:-1])  # the package a module (or an __init__) sits in
    tree = ast.parse(path.read_text() if source is None else source, str(path))
    found = []

    def visit(node, funcs):
        for child in ast.iter_child_nodes(node):
            inner = funcs + [child.name] if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else funcs
            if isinstance(child, ast.Import):
                found.extend((a.name, inner) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    up = package[:len(package) - (child.level - 1)] if child.level > 1 else package
                    base = ".".join(up + ([child.module] if child.module else []))
                found.append((base, inner))
                found.extend((f"{base}.{a.name}", inner) for a in child.names)
            visit(child, inner)
    visit(tree, [])
    return found


def _within(name: str, module: str) -> bool:
    return name == module or name.startswith(module + ".")


def compiler_modules():
    return [p for p in sorted(PKG.rglob("*.py")) if "qa" not in p.relative_to(PKG).parts[:1]]


def test_the_import_scanner_sees_every_form():
    """The scanner itself: each way of importing the qa package is seen (a test of the test)."""
    top = imports(PKG / "probe.py", "from . import qa\nfrom .qa import bench\nimport rnncompile.qa.conformance\n")
    assert {"rnncompile.qa", "rnncompile.qa.bench", "rnncompile.qa.conformance"} <= {n for n, _ in top}
    nested = imports(PKG / "layers" / "probe.py", "from . import qa\ndef f():\n    from ..qa.specgen import x\n")
    assert ("rnncompile.layers.qa", []) in nested  # `from . import qa` in rnncompile/layers
    assert ("rnncompile.qa.specgen.x", ["f"]) in nested


def test_the_compiler_never_imports_qa():
    offenders = []
    for path in compiler_modules():
        for name, funcs in imports(path):
            if not _within(name, "rnncompile.qa"):
                continue
            if path == PKG / "cli.py" and funcs and funcs[0] in QA_COMMANDS:
                continue
            offenders.append(f"{path.relative_to(ROOT)}: {name} (in {'/'.join(funcs) or 'module'})")
    assert not offenders, offenders


def test_onnx_and_onnxruntime_stay_in_their_modules():
    graph = [p for p in PKG.glob("onnx_*.py")]
    assert PKG / "onnx_graph.py" in graph
    for path in compiler_modules():
        names = [n for n, _ in imports(path)]
        uses_onnx = any(_within(n, "onnx") for n in names)
        uses_ort = any(_within(n, "onnxruntime") for n in names)
        assert not uses_onnx or path in graph, f"{path}: imports onnx"
        assert not uses_ort or path == PKG / "backends" / "onnxruntime.py", f"{path}: imports onnxruntime"


def _ruff():
    exe = shutil.which("ruff")
    if exe:
        return [exe]
    try:
        import ruff  # noqa: F401
    except ImportError:
        pytest.skip("ruff is not installed (pip install -e .[dev])")
    return [sys.executable, "-m", "ruff"]


@pytest.mark.parametrize("where,fires", [
    ("rnncompile/lower.py", True), ("rnncompile/layers/lstm.py", True), ("rnncompile/verify.py", True),
    ("rnncompile/onnx_graph.py", False), ("rnncompile/qa/bench.py", False), ("tests/test_x.py", False),
])
def test_ruff_bans_onnx_imports_outside_their_modules(where, fires):
    code = "def f():\n    import onnxruntime as ort\n    from onnx import helper\n    return ort, helper\n"
    r = subprocess.run(_ruff() + ["check", "--no-cache", "--select", "TID251", "--stdin-filename", where, "-"],
                       input=code, capture_output=True, text=True, cwd=ROOT)
    assert (r.returncode != 0) == fires, r.stdout + r.stderr
    assert ("TID251" in r.stdout) == fires


def test_qa_constructs_no_runtime_session():
    """QA code runs models through runner factories: no onnxruntime session or options of its own."""
    for path in sorted((PKG / "qa").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        used |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        assert not used & {"InferenceSession", "SessionOptions"}, path
