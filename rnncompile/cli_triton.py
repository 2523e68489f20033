"""`rnncompile triton OUT REPO --name NAME`: the command line of rnncompile.triton. cli.py calls
`register(main, command)` (its group and its error-handling decorator), so this module never
imports cli.py (which also runs as `python -m rnncompile.cli`)."""
from __future__ import annotations

from pathlib import Path

import click

from .console import echo


def register(group: click.Group, command) -> None:
    group.add_command(click.command("triton")(_options(command(triton))))


def _options(f):
    for option in reversed(_OPTIONS):
        f = option(f)
    return f


def triton(out_dir, repo, name, version, max_batch_size, instance_count, instance_kind, preferred,
           max_queue_delay_us, no_dynamic_batching, strategy, max_sequence_idle_us,
           max_candidate_sequences, model_format, seed, threads):
    """Package the build in OUT_DIR as model NAME of the Triton Inference Server model repository
    REPO (REPO/NAME/config.pbtxt, REPO/NAME/VERSION/model.onnx). Stateful models get a verified
    graph for the sequence batcher with implicit state. Exit 0 written, 1 the stateful graph
    failed verification, 2 bad request (nothing written)."""
    from .triton import TritonOptions, export_triton
    from .verify import render

    opts = TritonOptions(name=name, version=version, max_batch_size=max_batch_size,
                         instance_count=instance_count, instance_kind=instance_kind,
                         preferred_batch_sizes=tuple(preferred), max_queue_delay_us=max_queue_delay_us,
                         dynamic_batching=not no_dynamic_batching, strategy=strategy,
                         max_sequence_idle_us=max_sequence_idle_us,
                         max_candidate_sequences=max_candidate_sequences, model_format=model_format)
    result = export_triton(out_dir, repo, opts, seed=seed, threads=threads)
    echo(f"wrote {result.model_dir}/config.pbtxt and {result.model_dir}/{version}/{result.model_file}")
    if result.stateful:
        echo("stateful: sequence batcher, implicit state "
                   + ", ".join(f"{p.input} -> {p.output}" for p in result.states))
    if result.report is not None:
        echo(render(result.report))
    for n, v in result.pad_values.items():
        echo(f"batching tip: pad input {n!r} with {v:g} to a common length; the model masks it")


_OPTIONS = [
    click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path)),
    click.argument("repo", type=click.Path(path_type=Path)),
    click.option("--name", required=True, help="Model name: REPO/NAME, and /v2/models/NAME on the server."),
    click.option("--version", "version", default=1, show_default=True, type=int,
                 help="Version directory (an integer >= 1)."),
    click.option("--max-batch-size", default=8, show_default=True, type=int,
                 help="Triton's max_batch_size (0: no batching; a stateful model needs >= 1)."),
    click.option("--instances", "instance_count", default=1, show_default=True, type=int,
                 help="Model instances (instance_group count)."),
    click.option("--kind", "instance_kind", default="auto", show_default=True,
                 type=click.Choice(["auto", "cpu", "gpu"]), help="Where instances run (KIND_CPU/KIND_GPU)."),
    click.option("--preferred-batch-size", "preferred", multiple=True, type=int,
                 help="Preferred batch size of the dynamic batcher (or of the oldest strategy). Repeatable."),
    click.option("--max-queue-delay-us", type=int, default=None,
                 help="How long the batcher may hold a request to form a larger batch (microseconds)."),
    click.option("--no-dynamic-batching", is_flag=True, help="Stateless models: no dynamic_batching block."),
    click.option("--strategy", default="direct", show_default=True, type=click.Choice(["direct", "oldest"]),
                 help="Stateful models: the sequence batcher's strategy."),
    click.option("--max-sequence-idle-us", type=int, default=None,
                 help="Stateful models: idle time after which Triton ends a sequence (microseconds)."),
    click.option("--max-candidate-sequences", type=int, default=None,
                 help="Stateful models, oldest strategy (default: max_batch_size)."),
    click.option("--format", "model_format", default="auto", show_default=True,
                 type=click.Choice(["auto", "onnx", "plan"]),
                 help="model.onnx (onnxruntime_onnx) or the build's TensorRT model.plan (tensorrt_plan); "
                      "auto: the plan when the build has one."),
    click.option("--seed", default=0, show_default=True, help="Seed of the stateful graph's verification."),
    click.option("--threads", type=int, default=None, help="onnxruntime threads for verification."),
]
