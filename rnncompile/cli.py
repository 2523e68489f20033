"""The `rnncompile` command. It only parses arguments and renders results; the work is in the
library. Exit codes: 0 ok, 1 verification failed, 2 invalid input, 3 internal error."""
from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import click
import numpy as np

from .errors import RnnCompileError


def _fail(e: RnnCompileError) -> None:
    for p in e.problems:
        click.echo(f"error: {p.where}: {p.message}", err=True)
    report = getattr(e, "report", None)
    if report is not None:
        from .verify import render
        click.echo(render(report), err=True)
    sys.exit(e.exit_code)


def command(f):
    """Common options and error handling for every subcommand."""
    @click.option("--plugin", "plugins", multiple=True, metavar="MODULE",
                  help="Import a module (or .py file) defining custom layer kinds. Repeatable.")
    @functools.wraps(f)
    def wrapper(*args, plugins=(), **kwargs):
        from . import plugins as plug
        try:
            plug.load_entry_points()
            for p in plugins:
                plug.load_plugin(p)
            return f(*args, **kwargs)
        except RnnCompileError as e:
            _fail(e)
        except (KeyboardInterrupt, click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except MemoryError:
            click.echo("error: out of memory: the model or its inputs are too large for this machine "
                       "(nothing was written)", err=True)
            sys.exit(2)
        except Exception as e:  # an internal bug: say so plainly, no traceback unless asked
            if os.environ.get("RNNCOMPILE_DEBUG"):
                raise
            click.echo(f"internal error: {type(e).__name__}: {e} (set RNNCOMPILE_DEBUG=1 for a traceback; "
                       "please report it)", err=True)
            sys.exit(3)
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
@command
def build(source, out_dir, seed, no_verify, threads):
    """Compile SOURCE (spec.json, model.keras or model.h5) into OUT: model.onnx, manifest.json,
    report.json. Exit 0 when verified, 1 when verification fails, 2 for invalid input."""
    from .build import build as do_build
    from .verify import render

    result = do_build(source, out_dir, seed=seed, verify_model=not no_verify, threads=threads)
    man = result.manifest
    click.echo(f"built {out_dir}/model.onnx  (opset {man['opset']}, {len(man['layers'])} layers, "
               f"compile {man['compile_seconds'] * 1000:.0f} ms)")
    for l in man["layers"]:
        if l["class_name"] != "Input":
            click.echo(f"  {l['name']:<24} {l['class_name']:<22} {l['lowering']}")
    if result.report is not None:
        click.echo(render(result.report))
        click.echo("verified: yes")
    else:
        click.echo("verified: no (--no-verify)")


@main.command()
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@command
def check(source):
    """Validate SOURCE (shapes, masks, weights) without building."""
    from .build import load_model

    model = load_model(source)
    click.echo(f"ok: {model.name}: {len(model.layers)} layers, {model.parameter_count:,} parameters")


@main.command()
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@command
def summary(source, as_json):
    """Print a Keras-like table of SOURCE's layers, shapes, masks and lowerings."""
    from .build import load_model
    from .summary import render_summary, summary_rows

    model = load_model(source)
    click.echo(json.dumps(summary_rows(model), indent=2) if as_json else render_summary(model))


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--input", "-i", "input_files", multiple=True, required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Inputs: .npz (one array per input), .npy (single-input models) or .json. "
                   "Several files are fed one after another (stateful models carry state).")
@click.option("--save", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the outputs to this .npz instead of printing them.")
@click.option("--threads", type=int, default=None)
@command
def run(out_dir, input_files, save, threads):
    """Run a built model on inputs from files."""
    from .build import open_session
    from .feeds import read_inputs

    session = open_session(out_dir, threads=threads)
    results = []
    for path in input_files:
        feeds = read_inputs(path)
        if list(feeds) == [""]:
            feeds = feeds[""]
        results.append(session.run(feeds))
    if save:
        arrays = {(f"{k}" if len(results) == 1 else f"call{i}/{k}"): v
                  for i, r in enumerate(results) for k, v in r.items()}
        tmp = save.with_name(save.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, save)
        click.echo(f"wrote {save} ({', '.join(arrays)})")
        return
    np.set_printoptions(precision=6, suppress=True, linewidth=120, threshold=200)
    for i, r in enumerate(results):
        for k, v in r.items():
            label = k if len(results) == 1 else f"call {i}: {k}"
            click.echo(f"{label} {v.dtype} {list(v.shape)}\n{v}")


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", default=1, show_default=True, help="Seed of the verification inputs.")
@click.option("--threads", type=int, default=None)
@command
def verify(out_dir, seed, threads):
    """Re-verify a built model against the reference (fresh seeded inputs)."""
    from .build import verify_dir
    from .verify import render

    report = verify_dir(out_dir, seed=seed, threads=threads)  # raises, with the report, on failure
    click.echo(render(report))
    click.echo("verified: yes")


@main.command()
@command
def schema():
    """Print the spec's JSON Schema (with plugin layer kinds)."""
    from .schema import spec_schema

    click.echo(json.dumps(spec_schema(), indent=2))


@main.command("import")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Spec file to write; its weights go to the same name with .npz.")
@command
def import_(source, out_path):
    """Turn a Keras model file (.keras or .h5) into a spec and a weights file."""
    from .keras import write_spec

    written = write_spec(source, out_path)
    click.echo(f"wrote {', '.join(str(p) for p in written)}")


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
              help="Padding patterns for masked inputs: none, left, right, gaps (random amount per "
                   "row), left:F / right:F (fraction F of every row), comma-separated.")
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
    from .bench import bench_dir, render

    plugins = click.get_current_context().params.get("plugins", ())
    result = bench_dir(out_dir, batches=batches, steps=steps, threads=threads,
                       patterns=[p.strip() for p in patterns.split(",") if p.strip()], runs=runs,
                       warmup=warmup, seed=seed, processes=not no_process, plugins=tuple(plugins))
    data = json.dumps(result.to_dict(), indent=2)
    if json_path is not None and str(json_path) == "-":
        click.echo(data)
        return
    click.echo(render(result))
    if json_path is not None:
        json_path.write_text(data + "\n")
        click.echo(f"wrote {json_path}")


@main.command()
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the full report (every case) as JSON to this file.")
@click.option("--examples", default=200, show_default=True, type=click.IntRange(0, 1_000_000),
              help="Number of generated specs in the 'generated' suite.")
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
    from .conformance import render, run_conformance, write_report
    from .errors import VerificationError

    report = run_conformance(examples=examples, seed=seed, goldens=goldens, suites=suites)
    click.echo(render(report, verbose=verbose))
    if report_path is not None:
        write_report(report, report_path)
        click.echo(f"wrote {report_path}")
    if not report.passed:
        raise VerificationError(f"{report.failed} conformance case(s) failed", where="conformance")


if __name__ == "__main__":
    main()
