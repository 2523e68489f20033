"""The `rnncompile` command. It only parses arguments and renders results; the work is in the
library. Exit codes: 0 ok, 1 verification failed, 2 invalid input, 3 internal error, 130
interrupted by SIGINT (Ctrl-C), 143 terminated by SIGTERM (docs/security.md)."""
from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import sys
import threading
from pathlib import Path

import click
import numpy as np

from . import limits
from .console import echo, safe_text
from .errors import RnnCompileError, RunError, Terminated, VerificationError

EXIT_SIGINT = 130
EXIT_SIGTERM = 143
_MAX_WHERE = 400


def _short(where: str) -> str:
    return where if len(where) <= _MAX_WHERE else where[:_MAX_WHERE // 2] + " ... " + where[-_MAX_WHERE // 2:]


def _fail(e: RnnCompileError) -> None:
    for p in e.problems:  # one line each, whatever a file put in a name or path
        echo(f"error: {safe_text(_short(p.where), False)}: {safe_text(p.message, False)}", err=True)
    report = e.report if isinstance(e, VerificationError) else None
    if report is not None:
        from .verify import render
        echo(render(report), err=True)
    sys.exit(e.exit_code)


def _on_sigterm(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def _sigterm_unwinds():
    """SIGTERM raises Terminated (as SIGINT raises KeyboardInterrupt), so temporary files are
    removed on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _size_option(ctx, param, value):
    if value is None:
        return None
    try:
        return limits.parse_size(value, f"--{param.name.replace('_', '-')}")
    except RnnCompileError as e:
        raise click.BadParameter(e.problems[0].message) from None


def command(f):
    """Common options (plugins, limits) and error handling for every subcommand."""
    @click.option("--plugin", "plugins", multiple=True, metavar="MODULE",
                  help="Import a module (or .py file) defining custom layer kinds. Repeatable.")
    @click.option("--max-json-bytes", callback=_size_option, metavar="SIZE",
                  help="Largest JSON file read (spec, inputs, manifest). Default 64M.")
    @click.option("--max-json-depth", callback=_size_option, metavar="N",
                  help="Deepest JSON nesting accepted. Default 64.")
    @click.option("--max-npz-bytes", callback=_size_option, metavar="SIZE",
                  help="Largest uncompressed .npz/.npy (weights, inputs). Default 4G.")
    @click.option("--max-npz-members", callback=_size_option, metavar="N",
                  help="Most arrays in one .npz. Default 100000.")
    @click.option("--allow-external-weights", is_flag=True, default=None,
                  help="Let a spec's `weights` path leave the spec's directory (absolute, `..`, "
                       "symbolic links).")
    @functools.wraps(f)
    def wrapper(*args, plugins=(), max_json_bytes=None, max_json_depth=None, max_npz_bytes=None,
                max_npz_members=None, allow_external_weights=None, **kwargs):
        from . import plugins as plug
        try:
            with _sigterm_unwinds(), limits.override(
                    json_bytes=max_json_bytes, json_depth=max_json_depth, npz_bytes=max_npz_bytes,
                    npz_members=max_npz_members, allow_external_weights=allow_external_weights):
                plug.load_entry_points()
                for p in plugins:
                    plug.load_plugin(p)
                return f(*args, **kwargs)
        except RnnCompileError as e:
            _fail(e)
        except KeyboardInterrupt:
            echo("error: interrupted (SIGINT): temporary files removed; any output is either as it "
                 "was or complete", err=True)
            sys.exit(EXIT_SIGINT)
        except Terminated:
            echo("error: terminated (SIGTERM): temporary files removed; any output is either as it "
                 "was or complete", err=True)
            sys.exit(EXIT_SIGTERM)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except MemoryError:
            echo("error: out of memory: the model or its inputs are too large for this machine "
                 "(nothing was written)", err=True)
            sys.exit(2)
        except Exception as e:  # an internal bug: say so plainly, no traceback unless asked
            if os.environ.get("RNNCOMPILE_DEBUG"):
                raise
            echo(f"internal error: {type(e).__name__}: {e} (set RNNCOMPILE_DEBUG=1 for a traceback; "
                 "please report it)", err=True)
            sys.exit(3)
    return wrapper


def target_options(f):
    """--target and --precision, for the commands that lower a model."""
    from .targets import PRECISION_ALIASES, TARGETS

    f = click.option("--precision", default="fp32", show_default=True,
                     type=click.Choice(sorted(PRECISION_ALIASES), case_sensitive=False),
                     help="Float precision of the graph (typed fp16/bf16 graphs).")(f)
    f = click.option("--tokenizer", default="auto", show_default=True, type=click.Choice(["auto", "graph", "host"]),
                     help="Where text preprocessing (TextVectorization) runs: in the graph (ONNX string ops), "
                          "on the host (a tokenizer in the manifest, applied by the Python and C++ sessions), "
                          "or auto: the graph where that is exact on the target, else the host.")(f)
    return click.option("--target", default="onnxruntime", show_default=True,
                        type=click.Choice(sorted(TARGETS)),
                        help="The runtime the ONNX graph is for (rnncompile.targets).")(f)


def backend_option(f):
    return click.option("--backend", default="onnxruntime", show_default=True,
                        type=click.Choice(["onnxruntime", "tensorrt"]),
                        help="Runtime: onnxruntime (model.onnx) or tensorrt (OUT/model.plan from "
                             "`rnncompile engine`; needs a GPU and TensorRT).")(f)


def _factory(backend, out_dir):
    """None (the default onnxruntime factory) or the tensorrt one, on OUT's engine."""
    if backend == "onnxruntime":
        return None
    from .backends import runner_factory
    from .build import read_manifest

    return runner_factory(backend, out_dir=str(out_dir), precision=read_manifest(out_dir).get("precision"))


class _Group(click.Group):
    """Click's own messages (usage errors naming a path, "Aborted!") go through `echo` too, and
    Ctrl-C while arguments are parsed exits 130 like everywhere else."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.ClickException as e:
            ctx = getattr(e, "ctx", None)
            if isinstance(e, click.UsageError) and ctx is not None:
                echo(f"{ctx.get_usage()}\nTry '{ctx.command_path} {ctx.help_option_names[0]}' for help.\n",
                     err=True)
            echo(f"Error: {e.format_message()}", err=True)
            sys.exit(e.exit_code)
        except click.exceptions.Abort as e:
            interrupted = isinstance(e.__cause__, KeyboardInterrupt)
            echo("error: interrupted (SIGINT)" if interrupted else "Aborted!", err=True)
            sys.exit(EXIT_SIGINT if interrupted else 1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rnncompile")
def main():
    """Compile Keras-style recurrent models (JSON spec or .keras/.h5 file) to verified ONNX."""


@main.command()
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output directory (created; replaced only if it holds a previous build).")
@click.option("--seed", default=0, show_default=True, help="Seed of the verification inputs.")
@click.option("--no-verify", is_flag=True, help="Skip verification (the report is then absent).")
@click.option("--threads", type=int, default=None, help="onnxruntime threads for verification.")
@target_options
@command
def build(source, out_dir, seed, no_verify, threads, target, precision, tokenizer):
    """Compile SOURCE (spec.json, model.keras or model.h5) into OUT: model.onnx, manifest.json,
    report.json. Exit 0 when verified, 1 when verification fails, 2 for invalid input."""
    from .build import build as do_build
    from .verify import render

    from .targets import get_target

    result = do_build(source, out_dir, seed=seed, verify_model=not no_verify, threads=threads,
                      target=get_target(target, precision, tokenizer))
    man = result.manifest
    echo(f"built {out_dir}/model.onnx  (opset {man['opset']}, {len(man['layers'])} layers, "
               f"compile {man['compile_seconds'] * 1000:.0f} ms)")
    for l in man["layers"]:
        if l["class_name"] != "Input":
            name, kind = safe_text(l["name"], False), safe_text(l["class_name"], False)
            echo(f"  {name:<24} {kind:<22} {safe_text(l['lowering'], False)}")
    if result.report is not None:
        echo(render(result.report))
        echo("verified: yes")
    else:
        echo("verified: no (--no-verify)")


@main.command()
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@target_options
@command
def check(source, target, precision, tokenizer):
    """Validate SOURCE (shapes, masks, weights) without building, and that every layer can be
    lowered for the target."""
    from .build import load_model
    from .errors import TargetError
    from .lower import check_target
    from .targets import get_target

    model = load_model(source)
    t = get_target(target, precision, tokenizer)
    blocked = check_target(model, t)
    if blocked:
        raise TargetError(blocked)
    echo(f"ok: {model.name}: {len(model.layers)} layers, {model.parameter_count:,} parameters; "
               f"lowers for {t}")


@main.command()
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@target_options
@command
def summary(source, as_json, target, precision, tokenizer):
    """Print a Keras-like table of SOURCE's layers, shapes, masks and lowerings on the target,
    with whether each recurrent layer gets the native fused op there and, if not, why."""
    from .build import load_model
    from .summary import render_summary, summary_rows
    from .targets import get_target

    model = load_model(source)
    t = get_target(target, precision, tokenizer)
    echo(json.dumps(summary_rows(model, t), indent=2) if as_json else render_summary(model, t))


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--input", "-i", "input_files", multiple=True, required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Inputs: .npz (one array per input), .npy (single-input models) or .json. "
                   "Several files are fed one after another (stateful models carry state).")
@click.option("--save", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the outputs to this .npz instead of printing them.")
@click.option("--threads", type=int, default=None)
@backend_option
@command
def run(out_dir, input_files, save, threads, backend):
    """Run a built model on inputs from files."""
    from .build import open_session
    from .feeds import read_inputs

    session = open_session(out_dir, threads=threads, runner_factory=_factory(backend, out_dir))
    if save:
        _check_save_path(save, [*input_files, *(out_dir / a for a in ("model.onnx", "manifest.json"))])
    results = []
    texts_of = None
    for path in input_files:
        feeds = read_inputs(path, names=session.input_names)
        if list(feeds) == [""]:
            feeds = feeds[""]
            if feeds.dtype == object:
                texts_of = feeds
        results.append(session.run(feeds))
    if save:
        arrays = {(f"{k}" if len(results) == 1 else f"call{i}/{k}"): v
                  for i, r in enumerate(results) for k, v in r.items()}
        tmp = save.with_name(save.name + ".tmp")
        try:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, save)
        except OSError as e:
            raise RunError(f"cannot write the outputs: {e.strerror or e}", where=str(save)) from None
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        echo(f"wrote {save} ({', '.join(arrays)})")
        return
    np.set_printoptions(precision=6, suppress=True, linewidth=120, threshold=200)
    if len(results) == 1 and texts_of is not None:   # texts in: one line per text, its outputs first
        _echo_per_text(results[0], texts_of)
        return
    for i, r in enumerate(results):
        for k, v in r.items():
            label = safe_text(k if len(results) == 1 else f"call {i}: {k}", False)
            echo(f"{label} {v.dtype} {list(v.shape)}\n{v}")


def _echo_per_text(outputs: dict, texts) -> None:
    """One line per input text: every output's values for that row, then the text (shortened)."""
    names = list(outputs)
    echo("  ".join(safe_text(n, False) for n in names) + "  text")
    for b, text in enumerate(np.asarray(texts).reshape(-1)):
        vals = "  ".join(np.array2string(np.asarray(outputs[n][b]).reshape(-1), precision=4, separator=" ")
                         for n in names)
        short = text if len(text) <= 60 else text[:57] + "..."
        echo(f"{vals}  {safe_text(short, False)}")


def _check_save_path(save: Path, reads: list[Path]) -> None:
    from .outdir import check_not_overwriting

    parent = save.parent
    if not parent.is_dir():
        raise RunError(f"cannot save there: the directory {str(parent)!r} does not exist "
                       f"(create it first)", where=str(save))
    if save.is_dir():
        raise RunError("is a directory; expected an .npz file name", where=str(save))
    check_not_overwriting(reads, [save])


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", default=1, show_default=True, help="Seed of the verification inputs.")
@click.option("--threads", type=int, default=None)
@backend_option
@command
def verify(out_dir, seed, threads, backend):
    """Re-verify a built model against the reference (fresh seeded inputs)."""
    from .build import verify_dir
    from .verify import render

    # raises, with the report, on failure
    report = verify_dir(out_dir, seed=seed, threads=threads, runner_factory=_factory(backend, out_dir))
    echo(render(report))
    echo("verified: yes")


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--profile", "profiles", multiple=True, metavar="INPUT:MIN,OPT,MAX",
              help="Optimization profile of an input, shapes like 1x1,8x128,64x512. Repeatable; "
                   "axes left open get defaults (batch 1,8,64; time 1,128,512).")
@click.option("--workspace", "workspace_mib", default=1024, show_default=True, type=click.IntRange(16),
              help="Builder workspace limit, MiB.")
@click.option("--timing-cache", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Timing cache file, read before and written after the build (default OUT/timing.cache).")
@click.option("--no-verify", is_flag=True, help="Skip verifying the engine against the reference.")
@command
def engine(out_dir, profiles, workspace_mib, timing_cache, no_verify):
    """Build a TensorRT engine from a tensorrt-target build: OUT/model.plan, OUT/engine.json (engine
    summary) and, verified against the reference, OUT/engine_report.json. Needs an NVIDIA GPU and
    TensorRT; the same engine can be built with OUT/trtexec.sh."""
    from .backends.tensorrt import build_engine, probe, profiles_for
    from .build import read_manifest, verify_dir
    from .errors import RunError
    from .verify import render

    man = read_manifest(out_dir)
    if man.get("target") != "tensorrt":
        raise RunError(f"built for target {man.get('target')!r}; rebuild with --target tensorrt "
                       "(TensorRT's parser rejects the default target's graphs)", where=str(out_dir))
    profiles_for(man, tuple(profiles))  # bad flags are refused before looking for a GPU
    info = probe()
    if not info["available"]:
        raise RunError(f"cannot build engines here: {info['reason']}", where="rnncompile engine")
    summary = build_engine(out_dir, tuple(profiles), workspace_mib, timing_cache)
    echo(f"built {out_dir}/model.plan (TensorRT {summary['tensorrt']}, {summary['gpu']}, "
               f"{summary['build_seconds']} s)")
    if not no_verify:
        report = verify_dir(out_dir, runner_factory=_factory("tensorrt", out_dir))
        (Path(out_dir) / "engine_report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        echo(render(report))
        echo("verified: yes")


@main.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for <model>_<precision>_drift.json and .png.")
@click.option("--precision", default="fp16", show_default=True, type=click.Choice(["fp16", "bf16"]))
@click.option("--steps", default=1000, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--target", default="tensorrt", show_default=True, type=click.Choice(["onnxruntime", "tensorrt"]))
@click.option("--no-plot", is_flag=True, help="JSON only (the plot needs matplotlib).")
@command
def drift(sources, out_dir, precision, steps, target, no_plot):
    """Half-precision drift: max error per time step of the typed graph against the float64
    reference over long sequences, per output, for each SOURCE (JSON + PNG plot)."""
    from .build import load_model
    from .drift import drift as measure, write
    from .targets import PRECISION_ALIASES

    for source in sources:
        report = measure(load_model(source), PRECISION_ALIASES[precision], steps, target=target)
        paths = write(report, out_dir, plot=not no_plot)
        worst = ", ".join(f"{o.name} {max(o.max_abs_error):.2e}" + (
            f" (out of tolerance from step {o.first_step_out_of_tolerance})" if o.first_step_out_of_tolerance
            else "") for o in report.outputs)
        echo(f"{report.model}: {worst}; wrote {', '.join(str(p) for p in paths)}")
        for note in report.notes:
            echo(f"  note: {note}")


@main.command("lint-tensorrt")
@click.argument("model_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@command
def lint_tensorrt(model_path, as_json):
    """Check any ONNX file against TensorRT's ONNX parser rules (op, attributes, input types),
    on the CPU. Exit 0 when clean, 1 with findings, 2 when the file cannot be read."""
    from .onnx_trt_check import check_model, render

    result = check_model(model_path)
    echo(json.dumps(result.to_dict(), indent=2) if as_json else render(result))
    if not result.clean:
        sys.exit(1)


@main.command()
@command
def schema():
    """Print the spec's JSON Schema (with plugin layer kinds)."""
    from .schema import spec_schema

    echo(json.dumps(spec_schema(), indent=2))


@main.command("import")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Spec file to write; its weights go to the same name with .npz.")
@command
def import_(source, out_path):
    """Turn a Keras model file (.keras or .h5) into a spec and a weights file."""
    from .keras import write_spec
    from .outdir import check_not_overwriting

    npz_path = out_path.with_suffix(".npz")  # where write_spec puts the weights
    if npz_path == out_path:
        npz_path = out_path.with_name(out_path.name + ".npz")
    check_not_overwriting([source], [out_path, npz_path])
    written = write_spec(source, out_path)
    echo(f"wrote {', '.join(str(p) for p in written)}")


def _int_list(ctx, param, value):
    try:
        items = [int(v) for v in str(value).split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not items or any(i < 1 for i in items):
        raise click.BadParameter(f"expected positive integers, got {value!r}")
    return items


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--batch", "batches", default="1,32", show_default=True, callback=_int_list,
              help="Batch sizes, comma-separated.")
@click.option("--steps", default="100", show_default=True, callback=_int_list,
              help="Sequence lengths, comma-separated (ignored when the model fixes its time axis).")
@click.option("--threads", default="1", show_default=True, callback=_int_list,
              help="onnxruntime intra-op thread counts, comma-separated.")
@click.option("--pattern", "patterns", default="none,left", show_default=True,
              help="Padding patterns for masked inputs (rnncompile.inputs): none, left, right, gaps "
                   "(random amount per row), left:F / right:F (fraction F of every row), empty, "
                   "mixed, random[:P], combined; comma-separated.")
@click.option("--runs", default=100, show_default=True, type=click.IntRange(1),
              help="Timed calls per configuration (after --warmup untimed ones).")
@click.option("--warmup", default=10, show_default=True, type=click.IntRange(0))
@click.option("--seed", default=0, show_default=True, help="Seed of the benchmark inputs.")
@click.option("--no-process", is_flag=True,
              help="Skip timing `rnncompile build` and `rnncompile run` in fresh processes.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the full result as JSON to this file ('-' for stdout only).")
@command
def bench(out_dir, batches, steps, threads, patterns, runs, warmup, seed, no_process, json_path):
    """Benchmark a built model on onnxruntime: latency (median, p90), throughput, matmul FLOPs
    and fraction of the machine's fp32 matmul peak (measured in the same run), plus compile time
    and peak memory of `rnncompile build` and `rnncompile run`."""
    from .qa.bench import bench_dir, render

    plugins = click.get_current_context().params.get("plugins", ())
    result = bench_dir(out_dir, batches=batches, steps=steps, threads=threads,
                       patterns=[p.strip() for p in patterns.split(",") if p.strip()], runs=runs,
                       warmup=warmup, seed=seed, processes=not no_process, plugins=tuple(plugins))
    data = json.dumps(result.to_dict(), indent=2)
    if json_path is not None and str(json_path) == "-":
        echo(data)
        return
    echo(render(result))
    if json_path is not None:
        json_path.write_text(data + "\n")
        echo(f"wrote {json_path}")


@main.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--against", "source", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The spec or Keras file (.keras, .h5) MODEL claims to implement.")
@click.option("--map", "maps", multiple=True, metavar="THEIRS=OURS",
              help="Pair an input or output of MODEL with one of SOURCE's. Repeatable. Default: "
                   "by name, then by order.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the full audit (every call, every finding) as JSON to this file.")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "bf16"]), default=None,
              help="Tolerance row (default: fp16 when MODEL takes float16 inputs, else fp32).")
@click.option("--bench", is_flag=True, help="Also time MODEL next to rnncompile's build of SOURCE.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**31 - 1))
@click.option("--threads", type=int, default=None, help="onnxruntime threads (--bench: 1 unless set).")
@click.option("-v", "--verbose", is_flag=True, help="List every call.")
@command
def audit(model_path, source, maps, report_path, precision, bench, seed, threads, verbose):
    """Check an ONNX file made by any tool against the Keras semantics of SOURCE, on every input
    pattern the verifier knows. Exit 0 when it conforms, 1 when it does not, 2 for bad input."""
    from .qa.audit import audit as run_audit, parse_maps
    from .qa.audit_verdict import render
    from .errors import RunError

    result = run_audit(model_path, source, parse_maps(maps), seed=seed, precision=precision,
                       bench=bench, threads=threads)
    echo(render(result, verbose=verbose))
    if report_path is not None:
        try:
            report_path.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
        except OSError as e:
            raise RunError(f"cannot write the report: {e.strerror}", where=str(report_path)) from None
        echo(f"wrote {report_path}")
    sys.exit(0 if result.conforms else 1)


@main.command()
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the full report (every case) as JSON to this file.")
@click.option("--examples", default=200, show_default=True, type=click.IntRange(0, 1_000_000),
              help="Number of generated specs of each family (classic, breadth) in the 'generated' suite.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**31 - 1),
              help="Seed of the generated specs and their inputs.")
@click.option("--goldens", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory of Keras golden cases (default: tests/goldens of the source tree).")
@click.option("--suite", "suites", multiple=True, type=click.Choice(["onnx", "goldens", "generated"]),
              help="Run only this suite. Repeatable. Default: all.")
@click.option("-v", "--verbose", is_flag=True, help="List every case, passed ones included.")
@command
def conformance(report_path, examples, seed, goldens, suites, verbose):
    """Run the conformance suites (ONNX operator cases, Keras goldens, generated specs) and print
    per-suite counts and the worst error. Exit 0 when nothing failed, 1 when a case failed."""
    from .qa.conformance import render, run_conformance, write_report
    from .errors import VerificationError

    report = run_conformance(examples=examples, seed=seed, goldens=goldens, suites=suites)
    echo(render(report, verbose=verbose))
    if report_path is not None:
        write_report(report, report_path)
        echo(f"wrote {report_path}")
    if not report.passed:
        raise VerificationError(f"{report.failed} conformance case(s) failed", where="conformance")


from .cli_triton import register as _register_triton  # noqa: E402

_register_triton(main, command)  # `rnncompile triton`

if __name__ == "__main__":
    main()
