"""Suite "goldens" of `rnncompile conformance`, and the one reader of the Keras golden cases
(tests/goldens/<case>/spec.json, weights.npz, io.npz, written by tools/make_goldens.py with Keras;
format: tests/goldens/README.md): rnncompile's reference and its built model (onnxruntime by
default), each against Keras's outputs, chunk after chunk for stateful cases. tests/test_goldens.py
runs every case through `check_golden` too."""
from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from pathlib import Path

from ..backends import RunnerFactory, default_factory
from ..errors import ModelFileError, RnnCompileError, SpecError
from .report import CaseOutcome, SuiteResult, _num, tolerance, worst

_IO_KEY = re.compile(r"^chunk(\d+)/(in|out)/(.+)$")


def find_goldens() -> Path | None:
    """tests/goldens of the source tree this package runs from (an editable install or a
    checkout); None for an installed wheel, which carries no test data."""
    here = Path(__file__).resolve().parents[2]
    for root in (here, Path.cwd()):
        d = root / "tests" / "goldens"
        if d.is_dir() and (any(d.glob("*/spec.json")) or (d / "manifest.json").is_file()):
            return d
    return None


def list_cases(root: str | Path) -> list[Path]:
    """The case directories under `root` (those holding a spec.json), sorted by name."""
    return sorted(p.parent for p in Path(root).glob("*/spec.json"))


def read_manifest(root: Path) -> tuple[dict, list[str]]:
    """(cases by name, notes) from root/manifest.json; a missing or unreadable one is a note."""
    path = root / "manifest.json"
    if not path.is_file():
        return {}, []
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
        return {}, [f"cannot read {path}: {e}"]
    if not isinstance(manifest, dict):
        return {}, []
    notes = []
    if manifest.get("keras"):
        notes.append(f"goldens from Keras {manifest.get('keras')} ({manifest.get('backend')} backend), {root}")
    cases = manifest.get("cases", {})
    return (cases if isinstance(cases, dict) else {}), notes


def read_golden(case_dir: str | Path, mask_dropped: bool = False):
    """(model, chunks, layers given ignore_mask) of one golden case, where chunks is
    [(inputs by name, [outputs])]. Uses rnncompile's own safe readers (no pickles).
    `mask_dropped`: the Keras model was built the plain functional way, where Keras 3 drops the
    mask of a layer called with initial_state: such layers that do not say `ignore_mask` get
    ignore_mask=true, which is what Keras computed."""
    from ..npz import read_npz
    from ..spec import load_spec, read_json

    case_dir = Path(case_dir)
    where = str(case_dir / "io.npz")
    spec = read_json(case_dir / "spec.json")
    set_ignore = []
    if mask_dropped and isinstance(spec, dict):
        for layer in spec.get("layers") or []:
            if isinstance(layer, dict) and layer.get("initial_state") and "ignore_mask" not in layer:
                layer["ignore_mask"] = True
                set_ignore.append(str(layer.get("name", layer.get("class_name"))))
    model = load_spec(spec, base_dir=case_dir)
    raw: dict[int, tuple[dict, dict]] = {}
    for key, arr in read_npz(case_dir / "io.npz", "golden io file").items():
        m = _IO_KEY.match(key)
        if m is None:
            raise ModelFileError(f"unexpected key {key!r} (expected chunk<c>/in/<input> or "
                                 f"chunk<c>/out/<k>)", where=where)
        c, kind, name = int(m.group(1)), m.group(2), m.group(3)
        ins, outs = raw.setdefault(c, ({}, {}))
        if kind == "in":
            ins[name] = arr
        else:
            if not name.isdigit():
                raise ModelFileError(f"output key {key!r} is not numbered", where=where)
            outs[int(name)] = arr
    if sorted(raw) != list(range(len(raw))) or not raw:
        raise ModelFileError("chunks are not numbered 0..n-1", where=where)
    chunks = []
    for c in range(len(raw)):
        ins, outs = raw[c]
        if set(ins) != set(model.inputs):
            raise ModelFileError(f"chunk{c} has inputs {sorted(ins)}; the spec has {model.inputs}",
                                 where=where)
        if sorted(outs) != list(range(len(outs))) or len(outs) != len(model.outputs):
            raise ModelFileError(f"chunk{c} holds {len(outs)} output(s); the spec has "
                                 f"{len(model.outputs)}", where=where)
        chunks.append(({n: ins[n] for n in model.inputs}, [outs[i] for i in range(len(outs))]))
    return model, chunks, set_ignore


def check_golden(case_dir: str | Path, make_runner: RunnerFactory | None = None,
                 mask_dropped: bool = False) -> CaseOutcome:
    """One golden case: the reference and the built model (on runners `make_runner` makes,
    default onnxruntime on one thread) against Keras's outputs, every chunk."""
    from ..backends.reference import ReferenceRunner
    from ..build import io_description
    from ..lower import lower
    from ..runtime import Session
    from ..verify import run_and_compare

    case_dir = Path(case_dir)
    c0 = time.perf_counter()
    tol = tolerance()
    try:
        model, chunks, set_ignore = read_golden(case_dir, mask_dropped)
        lowered = lower(model)
        io = io_description(model, lowered)
        built = (make_runner or default_factory(1))(lowered.model_bytes)
        keras = [dict(zip(model.output_names, outs)) for _, outs in chunks]
        feeds = [ins for ins, _ in chunks]
        runtime = built.name.split(" ")[0]
        compared = {}
        for what, runner in (("reference", ReferenceRunner(model)), (runtime, built)):
            compared[f"{what} vs keras"] = [
                replace(r, name=f"chunk{k}/{r.name}") for k, rs in
                run_and_compare(keras, Session(runner, io), feeds, tol) for r in rs]
    except RnnCompileError as e:
        return CaseOutcome(case_dir.name, "failed", detail=f"{type(e).__name__}: {e}",
                           seconds=time.perf_counter() - c0)
    except Exception as e:  # a damaged case or an internal bug: report, keep going
        return CaseOutcome(case_dir.name, "failed", detail=f"internal error {type(e).__name__}: {e}",
                           seconds=time.perf_counter() - c0)
    summary = {what: worst(rs) for what, rs in compared.items()}
    problems = [f"{what}: {p}" for what, (_, _, _, p) in summary.items() if p]
    detail = f"{len(chunks)} chunk(s)"
    if set_ignore:
        detail += (f"; Keras drops the mask of {', '.join(set_ignore)} (called with "
                   f"initial_state): checked with ignore_mask=true there")
    return CaseOutcome(
        case_dir.name, "passed" if all(ok for _, _, ok, _ in summary.values()) else "failed",
        max(_num(a) for a, _, _, _ in summary.values()), max(r for _, r, _, _ in summary.values()),
        "; ".join(problems) or detail, {what: a for what, (a, _, _, _) in summary.items()},
        time.perf_counter() - c0)


def run_goldens_suite(goldens: str | Path | None = None, threads: int = 1,
                      make_runner: RunnerFactory | None = None) -> SuiteResult:
    suite = SuiteResult("goldens", "Keras golden cases (reference and onnxruntime vs Keras)",
                        "outputs of Keras models built from the same specs and weights")
    t0 = time.perf_counter()
    if goldens is None:
        root = find_goldens()
        if root is None:
            suite.notes.append("golden data not found: it lives in the source repository's "
                               "tests/goldens/ and is not installed with the package; run from a "
                               "checkout or pass --goldens DIR. Suite skipped.")
            return suite
    else:
        root = Path(goldens)
        if not root.is_dir():
            raise SpecError("goldens directory not found", where=str(root))
    case_dirs = list_cases(root)
    if not case_dirs:
        suite.notes.append(f"no golden cases in {root} (expected <case>/spec.json, weights.npz, io.npz)")
        return suite
    info, notes = read_manifest(root)
    suite.notes += notes
    make_runner = make_runner or default_factory(threads)
    for d in case_dirs:
        meta = info.get(d.name, {})
        dropped = isinstance(meta, dict) and bool(meta.get("keras_drops_mask_with_initial_state"))
        suite.cases.append(check_golden(d, make_runner, dropped))
    suite.seconds = time.perf_counter() - t0
    return suite
