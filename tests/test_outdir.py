"""Output paths: rnncompile replaces only a directory it can prove it created, checks again at
publish under a lock, refuses links and anything else with exit 2 naming what it found, and
cleans up its temporary directory on SIGINT (exit 130) and SIGTERM (exit 143). Also the other
outputs: `import -o` never overwrites the model it reads, `run --save` into a missing directory."""
from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from test_hostile import GOOD, cli, expect_error, write_spec

import importlib

import rnncompile
from rnncompile.build import build
from rnncompile.errors import OutputError

build_module = importlib.import_module("rnncompile.build")

ROOT = Path(__file__).resolve().parent.parent
SMALL = {"name": "s", "layers": [{"class_name": "Input", "name": "x", "shape": [None, 2]},
                                 {"class_name": "SimpleRNN", "name": "r", "units": 2}]}


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".rnncompile-" in p.name)


def refused(tmp_path, out, *fragments):
    err = expect_error(["build", write_spec(tmp_path, SMALL), "-o", out], *fragments)
    assert not leftovers(out.parent), leftovers(out.parent)
    return err


def test_rebuild_into_its_own_previous_build(tmp_path):
    out = tmp_path / "out"
    for _ in range(2):
        rc, _, err = cli("build", write_spec(tmp_path, SMALL), "-o", out)
        assert rc == 0, err
    marker = json.loads((out / ".rnncompile-build").read_text())
    assert sorted(marker["files"]) == ["manifest.json", "model.onnx", "report.json", "spec.json", "weights.npz"]
    assert not leftovers(tmp_path)


def test_user_directory_named_like_artifacts_is_never_removed(tmp_path):
    """A manifest.json and a *directory* model.onnx/ holding the user's work."""
    out = tmp_path / "out"
    (out / "model.onnx").mkdir(parents=True)
    (out / "model.onnx" / "thesis.tex").write_text("years of work")
    (out / "manifest.json").write_text("{}")
    refused(tmp_path, out, str(out), "no .rnncompile-build marker", "refusing to overwrite it")
    assert (out / "model.onnx" / "thesis.tex").read_text() == "years of work"


def test_directory_holding_only_a_manifest_is_not_replaced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text('{"mine": true}')
    refused(tmp_path, out, "holds 'manifest.json' but no .rnncompile-build marker")
    assert json.loads((out / "manifest.json").read_text()) == {"mine": True}


def test_a_file_saved_into_out_during_the_build_survives(tmp_path, monkeypatch):
    """OUT is absent when the build starts; the user saves a file there while it verifies."""
    out = tmp_path / "out"
    real_verify = build_module.verify

    def verify_while_the_user_saves(*args, **kwargs):
        out.mkdir()
        (out / "notes.txt").write_text("mine")
        return real_verify(*args, **kwargs)

    monkeypatch.setattr(build_module, "verify", verify_while_the_user_saves)
    with pytest.raises(OutputError, match="notes.txt"):
        build(SMALL, out)
    assert (out / "notes.txt").read_text() == "mine" and sorted(os.listdir(out)) == ["notes.txt"]
    assert not leftovers(tmp_path)


def test_a_previous_build_changed_or_added_to_is_not_replaced(tmp_path):
    out = tmp_path / "out"
    build(SMALL, out)
    (out / "extra.txt").write_text("mine")
    refused(tmp_path, out, "holds 'extra.txt', which rnncompile did not write there")
    (out / "extra.txt").unlink()
    report = out / "report.json"
    report.write_text(report.read_text() + " ")
    refused(tmp_path, out, "'report.json' changed since rnncompile wrote it")
    assert report.read_text().endswith(" ")


def test_a_build_made_before_markers_is_recognised_by_its_model_hash(tmp_path):
    out = tmp_path / "out"
    build(SMALL, out)
    (out / ".rnncompile-build").unlink()
    build(SMALL, out)  # the manifest's model_sha256 is model.onnx's: provably ours
    assert (out / ".rnncompile-build").is_file()
    (out / ".rnncompile-build").unlink()
    (out / "model.onnx").write_bytes(b"user bytes")
    refused(tmp_path, out, "no proof that rnncompile wrote it")
    assert (out / "model.onnx").read_bytes() == b"user bytes"


def test_empty_directory_is_used(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    build(SMALL, out)
    assert (out / "model.onnx").is_file()


@pytest.mark.parametrize("target,what", [
    ("build", "which looks like a build directory"),
    ("empty", "a symbolic link to the empty directory"),
    ("dangling", "which does not exist"),
])
def test_symlinked_out_is_refused(tmp_path, target, what):
    real = tmp_path / "real"
    if target == "build":
        build(SMALL, real)
    elif target == "empty":
        real.mkdir()
    before = sorted(os.listdir(real)) if real.exists() else None
    out = tmp_path / "link"
    out.symlink_to(real)
    refused(tmp_path, out, "link", what, "never replaces a link")
    assert out.is_symlink() and (sorted(os.listdir(real)) if real.exists() else None) == before


def test_parent_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    expect_error(["build", write_spec(tmp_path, SMALL), "-o", tmp_path / "f" / "out"], "is a file")


def test_out_is_a_file(tmp_path):
    (tmp_path / "out").write_text("x")  # the CLI's option parser refuses it too
    with pytest.raises(OutputError, match="exists and is not a directory"):
        build(SMALL, tmp_path / "out")
    assert (tmp_path / "out").read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_parent(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        expect_error(["build", write_spec(tmp_path, SMALL), "-o", ro / "out"], "permission denied")
    finally:
        ro.chmod(0o700)


def test_unwritable_parent_message(tmp_path, monkeypatch):
    """The same refusal where the tests run as root (who may write anywhere)."""
    from rnncompile import outdir

    monkeypatch.setattr(outdir.os, "access", lambda path, mode: False)
    with pytest.raises(OutputError, match="cannot write there: permission denied"):
        build(SMALL, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _cli_process(args, env_extra=None, prelude=""):
    code = (f"import sys\n{prelude}\nfrom rnncompile.cli import main\n"
            "sys.argv = ['rnncompile'] + sys.argv[1:]\nmain()")
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def test_publish_waits_for_the_lock_of_another_build(tmp_path):
    """Publishing happens under a lock on OUT's parent: while another holder has it, the build
    does not touch OUT; once released, it publishes."""
    spec = write_spec(tmp_path, SMALL)
    out = tmp_path / "out"
    fd = os.open(tmp_path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        proc = _cli_process(["build", spec, "-o", out, "--no-verify"])
        deadline = time.time() + 60
        while time.time() < deadline and not leftovers(tmp_path):
            time.sleep(0.05)
        time.sleep(0.5)
        assert proc.poll() is None and not out.exists(), "published without the lock"
    finally:
        os.close(fd)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert (out / "model.onnx").is_file() and not leftovers(tmp_path)


def test_concurrent_builds_into_one_out(tmp_path):
    spec = write_spec(tmp_path, SMALL)
    out = tmp_path / "out"
    procs = [_cli_process(["build", spec, "-o", out, "--no-verify"]) for _ in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    rc, _, err = cli("verify", out)
    assert rc == 0, err
    assert not leftovers(tmp_path)


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_the_write_phase_cleans_up(tmp_path, sig, code):
    """The process is stopped while it writes into its temporary directory."""
    spec = write_spec(tmp_path, SMALL)
    out = tmp_path / "out"
    slow = ("import time, numpy\n_savez = numpy.savez\n"
            "def savez(*a, **k):\n    time.sleep(60)\n    return _savez(*a, **k)\n"
            "numpy.savez = savez")
    proc = _cli_process(["build", spec, "-o", out], prelude=slow)
    deadline = time.time() + 120
    while time.time() < deadline and not leftovers(tmp_path):
        time.sleep(0.05)
    assert leftovers(tmp_path), "the build never reached its write phase"
    time.sleep(0.3)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, (proc.returncode, err)
    assert "Traceback" not in err and "interrupted" in err or "terminated" in err
    assert not out.exists() and not leftovers(tmp_path)


def test_import_never_overwrites_the_model_it_reads(tmp_path):
    pytest.importorskip("h5py")
    src = sorted((ROOT / "tests" / "keras_models").glob("*.keras"))[0]
    model = tmp_path / "m.keras"
    model.write_bytes(src.read_bytes())
    before = model.read_bytes()
    expect_error(["import", model, "-o", model], "is the input file", "would destroy the input")
    assert model.read_bytes() == before
    (tmp_path / "m2.npz").symlink_to(model)  # the weights would go to m2.npz: a link to the model
    expect_error(["import", model, "-o", tmp_path / "m2.json"], "is the input file")
    assert model.read_bytes() == before


def test_run_save_into_a_missing_directory(tmp_path):
    out = tmp_path / "out"
    build(GOOD, out)
    f = tmp_path / "x.npy"
    np.save(f, np.array([[1, 2]], np.int32))
    expect_error(["run", out, "-i", f, "--save", tmp_path / "nope" / "y.npz"], "nope",
                 "does not exist")
    expect_error(["run", out, "-i", f, "--save", f], "is the input file")
    assert np.load(f).tolist() == [[1, 2]]


def test_files_rnncompile_adds_to_a_build_are_adopted(tmp_path):
    """`rnncompile engine` adds model.plan to OUT after the build: recorded in the marker, so the
    next build may replace OUT; a user's own file added the same way still blocks it."""
    from rnncompile import outdir

    out = tmp_path / "out"
    rnncompile.build(ROOT / "examples/lstm_classifier.json", out)
    (out / "model.plan").write_bytes(b"engine")
    outdir.adopt(out, ["model.plan"])
    rnncompile.build(ROOT / "examples/lstm_classifier.json", out)  # replaced
    assert not (out / "model.plan").exists()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(rnncompile.RnnCompileError, match="notes.txt"):
        rnncompile.build(ROOT / "examples/lstm_classifier.json", out)
