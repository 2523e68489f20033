"""Output directories: rnncompile replaces only a directory it can prove it created.

The rule (docs/security.md):

* A build writes its artifacts into a fresh temporary directory beside OUT, plus a marker file,
  `.rnncompile-build`, holding the build's id and the size and mtime of every file it wrote.
* OUT is then published: under a lock on OUT's parent directory (so two builds cannot race),
  OUT is inspected AGAIN, and only if it is absent, empty, or exactly what an rnncompile build
  left there (the marker's files, unchanged, and nothing else) is it replaced, by renames.
  The old build is moved aside, checked once more, and removed file by file (never `rmtree`
  on OUT): a file that appeared meanwhile survives.
* Anything else is refused with exit 2, naming what was found: a file, a symbolic link (to a
  build, an empty or a missing target), a user's directory, a directory holding only a
  manifest.json, a build changed or added to since it was written.
* A build made before markers existed is recognised by proof, not by names: only artifact files,
  and a manifest whose model sha256 is that of the model.onnx beside it.
* The temporary directory is removed on any failure, Ctrl-C (exit 130) and SIGTERM (exit 143);
  renames happen with both signals blocked, so OUT is always the old or the complete new build.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import signal
import tempfile
import uuid
from pathlib import Path
from typing import Callable, Iterator

from .errors import OutputError

MARKER = ".rnncompile-build"
ARTIFACTS = ("model.onnx", "manifest.json", "report.json", "spec.json", "weights.npz",
             # tensorrt target (rnncompile/backends/tensorrt.py): trtexec line, engine and its files
             "trtexec.sh", "model.plan", "engine.json", "engine_report.json", "timing.cache")
_MAX_MARKER_BYTES = 1 << 20


def _listing(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(n) for n in sorted(names)[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise OutputError(f"a parent of {str(path)!r} is a file, not a directory", where=str(path)) from None
    except OSError as e:
        raise OutputError(f"cannot inspect it: {e.strerror or e}", where=str(path)) from None


def _describe_link(path: Path) -> str:
    target = os.readlink(path)
    try:
        real = Path(path).resolve(strict=True)
    except (OSError, RuntimeError):
        return f"a symbolic link to {target!r}, which does not exist"
    if real.is_dir():
        entries = os.listdir(real)
        if not entries:
            return f"a symbolic link to the empty directory {target!r}"
        if MARKER in entries or "manifest.json" in entries:
            return f"a symbolic link to {target!r}, which looks like a build directory"
        return f"a symbolic link to the directory {target!r}"
    return f"a symbolic link to {target!r}, which is not a directory"


def _file_stats(directory: Path, names: list[str]) -> dict[str, list[int]]:
    out = {}
    for n in names:
        st = os.lstat(directory / n)
        out[n] = [st.st_size, st.st_mtime_ns]
    return out


def _owned_files(out: Path) -> list[str]:
    """The files of `out` to remove when replacing it, if rnncompile provably wrote them all;
    raises OutputError naming what it found otherwise. [] for an empty directory."""
    try:
        entries = os.listdir(out)
    except OSError as e:
        raise OutputError(f"cannot list it: {e.strerror or e}", where=str(out)) from None
    if not entries:
        return []
    not_files = [n for n in entries if not _is_plain_file(out / n)]
    if MARKER in entries:
        recorded = _read_marker(out)
        extra = [n for n in entries if n != MARKER and n not in recorded]
        if extra:
            raise OutputError(f"holds {_listing(extra)}, which rnncompile did not write there; refusing "
                              f"to overwrite it (move those files out, or choose another OUT)", where=str(out))
        if not_files:
            raise OutputError(f"{_listing(not_files)} is no longer the file rnncompile wrote (a directory "
                              f"or link now); refusing to overwrite it", where=str(out))
        changed = [n for n, st in _file_stats(out, [n for n in entries if n != MARKER]).items()
                   if st != recorded[n]]
        if changed:
            raise OutputError(f"{_listing(changed)} changed since rnncompile wrote it; refusing to "
                              f"overwrite it (save your changes elsewhere, or choose another OUT)", where=str(out))
        return entries
    if _is_legacy_build(out, entries, not_files):
        return entries
    if "manifest.json" in entries:
        raise OutputError(f"holds {_listing(entries)} but no {MARKER} marker and no proof that "
                          f"rnncompile wrote it (its manifest.json does not describe a model.onnx "
                          f"beside it); refusing to overwrite it", where=str(out))
    raise OutputError(f"is not empty ({_listing(entries)}) and was not written by rnncompile; "
                      f"refusing to overwrite it (choose another OUT, or empty it yourself)", where=str(out))


def _is_plain_file(path: Path) -> bool:
    st = os.lstat(path)
    return (st.st_mode & 0o170000) == 0o100000


def _read_marker(out: Path) -> dict[str, list[int]]:
    path = out / MARKER
    try:
        if not _is_plain_file(path) or os.lstat(path).st_size > _MAX_MARKER_BYTES:
            raise ValueError("not a small plain file")
        data = json.loads(path.read_text(encoding="utf-8"))
        files = data["files"]
        if not (isinstance(data.get("build_id"), str) and isinstance(files, dict)
                and all(isinstance(k, str) and isinstance(v, list) and len(v) == 2
                        and all(isinstance(i, int) for i in v) for k, v in files.items())):
            raise ValueError("unexpected layout")
        return files
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:
        raise OutputError(f"its {MARKER} marker is damaged ({e}); refusing to overwrite it",
                          where=str(out)) from None


def _is_legacy_build(out: Path, entries: list[str], not_files: list[str]) -> bool:
    """A build from before markers: only artifact files, and a manifest whose model_sha256 is
    the sha256 of the model.onnx beside it."""
    if not_files or not set(entries) <= set(ARTIFACTS) or not {"manifest.json", "model.onnx"} <= set(entries):
        return False
    try:
        if os.lstat(out / "manifest.json").st_size > 64 << 20:
            return False
        man = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        h = hashlib.sha256()
        with open(out / "model.onnx", "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return isinstance(man, dict) and man.get("model_sha256") == h.hexdigest()
    except (OSError, ValueError, RecursionError):
        return False


def check(out: str | Path) -> str:
    """Whether a build may publish into `out`: 'absent', 'empty' or 'build' (a previous
    rnncompile build). Raises OutputError naming what was found otherwise. Also checks that the
    parent directory is (or can be made) a writable directory."""
    out = Path(os.path.abspath(out))
    st = _lstat(out)
    if st is not None and (st.st_mode & 0o170000) == 0o120000:
        raise OutputError(f"is {_describe_link(out)}; rnncompile never replaces a link nor writes "
                          f"through one (name the target directly, or remove the link)", where=str(out))
    _check_parent(out.parent)
    if st is None:
        return "absent"
    if (st.st_mode & 0o170000) != 0o040000:
        raise OutputError("exists and is not a directory; refusing to overwrite it", where=str(out))
    return "build" if _owned_files(out) else "empty"


def _check_parent(parent: Path) -> None:
    p = parent
    while _lstat(p) is None:
        p = p.parent
    if not p.is_dir():
        raise OutputError(f"cannot create the output directory: {str(p)!r} is a file, not a directory",
                          where=str(parent))
    if not os.access(p, os.W_OK | os.X_OK):
        raise OutputError("cannot write there: permission denied", where=str(p))


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    sigs = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def publish(out: str | Path, write: Callable[[Path], None]) -> None:
    """Write a build with `write(tmp_dir)` into a temporary directory beside `out`, add the
    marker, then replace `out` by the rule above. Raises OutputError (nothing changed in `out`)
    when `out` is no longer replaceable."""
    out = Path(os.path.abspath(out))
    check(out)
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name[:100]}.rnncompile-", dir=parent))
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # as `mkdir OUT` would make it (mkdtemp gives 0700)
    except OSError as e:
        raise OutputError(f"cannot create the output directory: {e.strerror or e}", where=str(out)) from None
    try:
        write(tmp)
        names = sorted(os.listdir(tmp))
        marker = {"build_id": uuid.uuid4().hex, "files": _file_stats(tmp, names)}
        (tmp / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
        with _locked(parent), _signals_blocked():
            _replace(out, tmp)
    except OSError as e:
        raise OutputError(f"cannot write the output: {e.strerror or e}", where=str(out)) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)  # our own temporary directory, never OUT


def adopt(out: str | Path, names: list[str]) -> None:
    """Record in OUT's marker files that rnncompile itself has just added to a build it wrote
    (e.g. `rnncompile engine`'s model.plan), so a later build may still replace OUT. Raises
    OutputError when OUT is not a build rnncompile can prove it wrote."""
    out = Path(os.path.abspath(out))
    with _locked(out.parent):
        recorded = _read_marker(out)
        recorded.update(_file_stats(out, list(names)))
        path = out / MARKER
        data = json.loads(path.read_text(encoding="utf-8"))
        data["files"] = recorded
        tmp = out / f"{MARKER}.tmp"
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)


def _replace(out: Path, tmp: Path) -> None:
    """Called under the lock with signals blocked: inspect `out` again, then swap."""
    state = check(out)
    if state != "build":
        try:
            os.rename(tmp, out)  # onto nothing, or onto an empty directory
        except OSError as e:
            if e.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise OutputError("was filled while the build ran; refusing to overwrite it",
                                  where=str(out)) from None
            raise
        return
    old = out.with_name(f".{out.name[:100]}.rnncompile-old-{uuid.uuid4().hex[:12]}")
    os.rename(out, old)
    try:
        files = _owned_files(old)  # again, now that nobody can add to it under OUT's name
    except OutputError as e:
        os.rename(old, out)
        raise OutputError([type(p)(str(out), p.message) for p in e.problems]) from None
    os.rename(tmp, out)
    for n in files:
        with contextlib.suppress(OSError):
            os.unlink(old / n)
    with contextlib.suppress(OSError):
        os.rmdir(old)  # fails, and keeps it, if anything else appeared in it


def check_not_overwriting(sources: list[str | Path], targets: list[str | Path]) -> None:
    """Refuse to write any target that is (a link to) one of the sources being read, e.g.
    `rnncompile import m.keras -o m.keras`."""
    for t in targets:
        t = Path(t)
        for s in sources:
            try:
                same = os.path.realpath(t) == os.path.realpath(s) or (
                    t.exists() and Path(s).exists() and os.path.samefile(t, s))
            except OSError:
                same = False
            if same:
                raise OutputError(f"is the input file {str(s)!r}; writing it would destroy the "
                                  f"input (choose another output name)", where=str(t))
