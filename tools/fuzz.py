"""Byte-level fuzzing of every reader of untrusted input, each input run in a worker process with
memory and time limits, so that a native crash (SIGSEGV in libhdf5, onnxruntime) or a hang is
recorded, never fatal to the fuzzer.

Targets (all mutate the committed fixtures in tests/fuzz_corpus/ and tests/keras_models/):
  spec      a spec JSON file                    -> rnncompile.spec.load_spec, then lowering
  weights   the spec's .npz weights             -> load_spec
  npz, npy, json   `rnncompile run` input files -> rnncompile.feeds.read_inputs + Session.run
  keras     .keras / .h5 model files            -> rnncompile.build.load_model (the public entry)

Outcomes: ok, error (a clean RnnCompileError), and the failures: bug (any other exception),
memory (MemoryError under the address-space limit), crash (the worker died of a signal), hang
(no answer within --timeout seconds). A failure is re-run in a fresh worker; the input is saved
under tests/fuzz_regressions/<target>/, listed in its found.jsonl (tests/test_fuzz.py replays them).

    python tools/fuzz.py --minutes 30                 # all targets, until time is up
    python tools/fuzz.py --count 200 --targets keras  # a fixed number of inputs per target
"""
from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import io
import json
import os
import random
import select
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fuzz_corpus"
REGRESSIONS = ROOT / "tests" / "fuzz_regressions"
KERAS_MODELS = ROOT / "tests" / "keras_models"
TARGETS = ("spec", "weights", "npz", "npy", "json", "keras")
FAILURES = ("bug", "memory", "crash", "hang")
INDEX = "found.jsonl"  # one line per saved input: file, outcome, detail
SUFFIX = {"spec": ".json", "weights": ".npz", "npz": ".npz", "npy": ".npy", "json": ".json"}


def seeds(target: str) -> list[Path]:
    """The committed fixtures a target mutates."""
    if target == "keras":
        files = sorted(KERAS_MODELS.glob("*.keras")) + sorted(KERAS_MODELS.glob("*.h5"))
        return [p for p in files if p.stat().st_size < 64 << 10]
    name = {"spec": "spec.json", "weights": "weights.npz", "npz": "input.npz", "npy": "input.npy",
            "json": "input.json"}[target]
    return [CORPUS / name]


# ---------------------------------------------------------------------------------------------
# Mutations.

INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, ord("0"), ord("9"), ord("-"), ord("["), ord("{"), ord('"'), ord("e")]


def mutate_file(src: Path, rng: random.Random) -> bytes:
    """Mutated bytes of `src`. A zip (.keras, .npz) has, half of the time, one of its members
    mutated and the zip rebuilt intact around it, so that the bytes reach the member's reader
    (HDF5, JSON, .npy) instead of failing the zip's checksum."""
    data = src.read_bytes()
    if data[:2] == b"PK" and rng.random() < 0.5:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                infos = zf.infolist()
                victim = rng.choice(infos).filename
                members = [(i, zf.read(i)) for i in infos]
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as out:
                for info, body in members:
                    out.writestr(info, mutate(body, rng) if info.filename == victim else body)
            return buf.getvalue()
        except (zipfile.BadZipFile, OSError, ValueError):
            pass
    return mutate(data, rng)


def mutate(data: bytes, rng: random.Random) -> bytes:
    """1-8 byte-level edits: flip, set to an interesting byte, insert, delete, duplicate or
    overwrite a chunk, truncate."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if not b:
            b = bytearray(rng.randbytes(rng.randint(1, 16)))
        i = rng.randrange(len(b))
        op = rng.randrange(8)
        if op == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[i] = rng.choice(INTERESTING)
        elif op == 2:
            b[i] = rng.randrange(256)
        elif op == 3:
            b[i:i] = rng.randbytes(rng.randint(1, 8))
        elif op == 4:
            del b[i:i + rng.randint(1, 16)]
        elif op == 5:
            j = rng.randrange(len(b))
            b[i:i] = b[j:j + rng.randint(1, 64)]
        elif op == 6:
            j = rng.randrange(len(b))
            chunk = b[j:j + rng.randint(1, 8)]
            b[i:i + len(chunk)] = chunk
        else:
            del b[rng.randrange(len(b)) + 1:]
    return bytes(b)


# ---------------------------------------------------------------------------------------------
# The worker: reads {"target", "path"} lines, answers {"outcome", "detail"} lines.


def _worker(memory_bytes: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    import numpy as np

    from rnncompile.build import build, load_model, open_session
    from rnncompile.errors import RnnCompileError
    from rnncompile.feeds import read_inputs
    from rnncompile.lower import lower
    from rnncompile.spec import load_spec

    work = Path(tempfile.mkdtemp(prefix="rnncompile-fuzz-"))
    built: list = []

    def session():
        if not built:  # built on first use: a worker for Keras files never needs it
            spec = json.loads((CORPUS / "spec.json").read_text())
            spec.pop("weights", None)
            build(spec, work / "built", verify_model=False)
            built.append(open_session(work / "built", threads=1))
        return built[0]

    def run_input(path: Path) -> None:
        s = session()
        s.reset_states()
        feeds = read_inputs(path, names=s.input_names)
        s.run(feeds[""] if list(feeds) == [""] else feeds)

    def run_spec(path: Path) -> None:
        lower(load_spec(path))

    def run_weights(path: Path) -> None:
        d = Path(tempfile.mkdtemp(dir=work))
        (d / "weights.npz").write_bytes(path.read_bytes())
        (d / "spec.json").write_text((CORPUS / "spec.json").read_text())
        load_spec(d / "spec.json")

    actions = {"spec": run_spec, "weights": run_weights, "npz": run_input, "npy": run_input,
               "json": run_input, "keras": load_model,
               # to test the harness itself
               "selftest-crash": lambda p: os.kill(os.getpid(), 11), "selftest-hang": lambda p: time.sleep(3600)}
    np.seterr(all="ignore")
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        try:
            actions[job["target"]](Path(job["path"]))
            answer = {"outcome": "ok"}
        except RnnCompileError as e:
            bad = not e.problems or any(not (p.where and p.message) for p in e.problems)
            answer = {"outcome": "bug" if bad else "error", "detail": str(e)[:300]}
        except MemoryError:
            answer = {"outcome": "memory", "detail": "MemoryError"}
        except Exception as e:  # noqa: BLE001 - any other exception is what we look for
            answer = {"outcome": "bug", "detail": f"{type(e).__name__}: {e}"[:300]}
        print(json.dumps(answer), flush=True)


class Worker:
    """A worker process, restarted after a crash or a hang."""

    def __init__(self, memory_bytes: int, timeout: float):
        self.memory_bytes, self.timeout = memory_bytes, timeout
        self.proc: subprocess.Popen | None = None

    def _start(self) -> None:
        path = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=path)
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker",
                                      "--memory", str(self.memory_bytes)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        ready = self._answer(120)
        if not ready or not ready.get("ready"):
            raise RuntimeError("the fuzz worker did not start")

    def _answer(self, timeout: float) -> dict | None:
        """The worker's next answer; None when it has not answered in time; {} when it died."""
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else {}

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def run(self, target: str, path: Path) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        self.proc.stdin.write(json.dumps({"target": target, "path": str(path)}) + "\n")
        self.proc.stdin.flush()
        answer = self._answer(self.timeout)
        if answer:
            return answer
        if answer is None:
            self.stop()
            return {"outcome": "hang", "detail": f"no answer within {self.timeout} s"}
        code = self.proc.wait()
        self.proc = None
        return {"outcome": "crash", "detail": f"worker died with exit status {code}"}


# ---------------------------------------------------------------------------------------------


def fuzz(targets=TARGETS, count: int | None = None, minutes: float | None = None, seed: int = 0,
         save: Path | None = REGRESSIONS, memory_bytes: int = 3 << 30, timeout: float = 60,
         log=print) -> dict:
    """Mutate each target's fixtures `count` times (or round-robin until `minutes` pass). Returns
    {"runs": {target: n}, "outcomes": {outcome: n}, "failures": [{target, file, outcome, detail}]}."""
    rng = random.Random(seed)
    worker = Worker(memory_bytes, timeout)
    fresh = Worker(memory_bytes, timeout)
    stats = {"runs": {t: 0 for t in targets}, "outcomes": {}, "failures": []}
    deadline = time.time() + minutes * 60 if minutes else None
    tmp = Path(tempfile.mkdtemp(prefix="rnncompile-fuzz-in-"))
    try:
        i = 0
        while True:
            if deadline is not None and time.time() >= deadline:
                break
            if deadline is None and i >= count * len(targets):
                break
            target = targets[i % len(targets)]
            i += 1
            src = rng.choice(seeds(target))
            data = mutate_file(src, rng)
            path = tmp / f"input{src.suffix if target == 'keras' else SUFFIX[target]}"
            path.write_bytes(data)
            answer = worker.run(target, path)
            if answer["outcome"] in FAILURES:
                again = fresh.run(target, path)  # a fresh process: not a leftover of earlier inputs
                fresh.stop()
                if again["outcome"] in FAILURES:
                    answer = again
                    record = {"target": target, "seed_file": src.name, **answer}
                    if save is not None:
                        d = save / target
                        d.mkdir(parents=True, exist_ok=True)
                        name = hashlib.sha1(data).hexdigest()[:12] + path.suffix
                        (d / name).write_bytes(data)
                        record["file"] = str((d / name).relative_to(ROOT) if d.is_relative_to(ROOT) else d / name)
                        with open(d / INDEX, "a") as f:  # what was found, for the replaying tests
                            f.write(json.dumps({"file": name, "outcome": answer["outcome"],
                                                "detail": answer.get("detail", ""), "seed_file": src.name}) + "\n")
                    stats["failures"].append(record)
                    log(f"FAILURE {target} {answer['outcome']}: {answer.get('detail', '')} "
                        f"[{record.get('file', src.name)}]")
            stats["runs"][target] += 1
            stats["outcomes"][answer["outcome"]] = stats["outcomes"].get(answer["outcome"], 0) + 1
    finally:
        worker.stop()
        fresh.stop()
        for p in tmp.iterdir():
            p.unlink()
        tmp.rmdir()
    return stats


def replay(paths: list[Path], memory_bytes: int = 3 << 30, timeout: float = 60) -> dict[Path, dict]:
    """The outcome each saved input (tests/fuzz_regressions/<target>/<file>) gets today. Keras
    files (which may hang until the timeout) each run in their own worker, concurrently; the
    others one after another in one worker, restarted after any crash or hang."""
    def run_all(group: list[Path]) -> dict[Path, dict]:
        worker = Worker(memory_bytes, timeout)
        try:
            return {p: worker.run(p.parent.name, p) for p in group}
        finally:
            worker.stop()

    groups = [[p] for p in paths if p.parent.name == "keras"]
    groups.append([p for p in paths if p.parent.name != "keras"])
    out: dict[Path, dict] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        for result in pool.map(run_all, [g for g in groups if g]):
            out.update(result)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, help="run round-robin over the targets this long")
    ap.add_argument("--count", type=int, default=50, help="inputs per target (without --minutes)")
    ap.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated: {', '.join(TARGETS)}")
    ap.add_argument("--seed", type=int, default=None, help="default: time-based (printed)")
    ap.add_argument("--timeout", type=float, default=60, help="seconds per input before it is a hang")
    ap.add_argument("--memory", type=int, default=3 << 30, help="worker address-space limit, bytes")
    ap.add_argument("--no-save", action="store_true", help="do not save failing inputs")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        _worker(args.memory)
        return 0
    targets = tuple(t.strip() for t in args.targets.split(",") if t.strip())
    unknown = set(targets) - set(TARGETS)
    if unknown:
        ap.error(f"unknown target(s): {', '.join(sorted(unknown))}")
    seed = args.seed if args.seed is not None else int(time.time())
    print(f"fuzz: seed {seed}, targets {', '.join(targets)}, "
          + (f"{args.minutes} minutes" if args.minutes else f"{args.count} inputs each"), flush=True)
    t0 = time.time()
    stats = fuzz(targets, count=args.count, minutes=args.minutes, seed=seed,
                 save=None if args.no_save else REGRESSIONS, memory_bytes=args.memory,
                 timeout=args.timeout, log=lambda m: print(m, flush=True))
    print(json.dumps({"seed": seed, "seconds": round(time.time() - t0, 1), "runs": stats["runs"],
                      "outcomes": stats["outcomes"], "failures": len(stats["failures"])}, indent=1))
    return 1 if stats["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
