"""The cost of reading Keras model files' HDF5 data in a contained child process (the default:
a libhdf5 crash, hang or memory blow-up then costs a clean error, not the host process) versus
in this process, on the seed models of tests/keras_models, measured side by side in one run.

    python benchmarks/keras_import_cost.py [--repeat 5]

For each file, `rnncompile.keras.import_keras` is timed alternately in both modes; the table
gives the median of each and the difference.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from rnncompile.keras import KerasLimits, import_keras  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    files = sorted(p for p in (ROOT / "tests" / "keras_models").iterdir()
                   if p.suffix in (".keras", ".h5") and not p.name.startswith("refuse"))
    modes = {"in process": KerasLimits(contained=False), "contained": KerasLimits(contained=True)}
    import_keras(files[0], modes["contained"])  # warm the file cache and imports
    rows, totals = [], {m: 0.0 for m in modes}
    for f in files:
        times: dict[str, list[float]] = {m: [] for m in modes}
        for _ in range(args.repeat):
            for m, limits in modes.items():
                t = time.perf_counter()
                import_keras(f, limits)
                times[m].append(time.perf_counter() - t)
        med = {m: statistics.median(v) for m, v in times.items()}
        for m in modes:
            totals[m] += med[m]
        rows.append((f.name, med["in process"], med["contained"]))
    print(f"{'file':<36}{'in process ms':>15}{'contained ms':>14}{'extra ms':>10}")
    for name, a, b in rows:
        print(f"{name:<36}{1000 * a:>15.1f}{1000 * b:>14.1f}{1000 * (b - a):>10.1f}")
    n = len(rows)
    a, b = totals["in process"] / n, totals["contained"] / n
    print(f"{'mean of ' + str(n) + ' files':<36}{1000 * a:>15.1f}{1000 * b:>14.1f}{1000 * (b - a):>10.1f}")


if __name__ == "__main__":
    main()
