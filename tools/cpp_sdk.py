#!/usr/bin/env python3
"""Find or make what the C++ runtime (cpp/) needs to build: onnxruntime's C/C++ SDK, nlohmann-json,
CMake and a C++17 compiler. Prints one JSON object: the CMake arguments to pass and where each
piece came from (or, with --check, why something is missing; exit status 1 then).

onnxruntime, in this order:
  1. an existing system install (CMake package `onnxruntime`, or pkg-config `libonnxruntime`);
  2. $ONNXRUNTIME_ROOT (an onnxruntime release archive unpacked, or any prefix with include/ and lib/);
  3. made here, in --prefix: the headers of Debian 13's `libonnxruntime-dev` (fetched with apt into
     a private list and unpacked with `dpkg -x`; the system's apt configuration is not touched) plus
     the library of the `onnxruntime` wheel installed in this Python (copied, with the
     `libonnxruntime.so` / `libonnxruntime.so.1` links the wheel lacks). Headers older than the
     library are fine: the C API is versioned.
nlohmann-json: the system's (`nlohmann-json3-dev`), else the same package unpacked into --prefix.
CMake and g++: found on PATH; `--install-missing` installs them with apt-get (root only; CI uses it).

Nothing here executes or unpickles downloaded content: .deb files are unpacked with dpkg -x only.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DEBIAN_SUITE = "trixie"  # the first Debian release that packages onnxruntime (1.21)
DEFAULT_MIRROR = "http://deb.debian.org/debian"
HEADER = "onnxruntime_cxx_api.h"


class Missing(Exception):
    """Something needed cannot be had here; the message says what and how to get it."""


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=False, capture_output=True, text=True, **kw)


# ---- onnxruntime ---------------------------------------------------------------------------------

def system_onnxruntime() -> str | None:
    """'pkg-config' or 'cmake' when the system has onnxruntime's headers and library installed."""
    if shutil.which("pkg-config") and run(["pkg-config", "--exists", "libonnxruntime"]).returncode == 0:
        return "pkg-config libonnxruntime"
    for cfg in glob.glob("/usr/lib/*/cmake/onnxruntime/onnxruntimeConfig.cmake") + \
            glob.glob("/usr/local/lib*/cmake/onnxruntime/onnxruntimeConfig.cmake") + \
            glob.glob("/usr/lib/cmake/onnxruntime/onnxruntimeConfig.cmake"):
        return f"CMake package ({cfg})"
    return None


def root_has_sdk(root: Path) -> bool:
    heads = [root / "include" / HEADER, root / "include" / "onnxruntime" / HEADER,
             root / "include" / "onnxruntime" / "core" / "session" / HEADER]
    libs = list(root.glob("lib*/libonnxruntime.so*")) + list(root.glob("lib*/*/libonnxruntime.so*"))
    return any(h.is_file() for h in heads) and bool(libs)


def wheel_library() -> Path:
    try:
        import onnxruntime
    except ImportError:
        raise Missing("the onnxruntime Python package is not installed (pip install onnxruntime)") from None
    capi = Path(onnxruntime.__file__).parent / "capi"
    libs = sorted(capi.glob("libonnxruntime.so.1*"))
    if not libs:
        raise Missing(f"the onnxruntime wheel has no libonnxruntime.so.1.* in {capi}")
    return libs[-1]


def debian_mirror() -> str:
    """The machine's own Debian mirror (deb822 .sources or one-line sources.list), for the private list."""
    texts = []
    for f in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if f.is_file() and f.suffix in {"", ".list", ".sources"}:
            try:
                texts.append(f.read_text(errors="replace"))
            except OSError:
                pass
    for text in texts:
        for uri in re.findall(r"^\s*URIs:\s*(\S+)", text, re.M) + \
                re.findall(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)", text, re.M):
            if uri.rstrip("/").endswith("/debian"):
                return uri.rstrip("/")
    return DEFAULT_MIRROR


def fetch_debs(packages: list[str], work: Path) -> list[Path]:
    """Download Debian 13 packages with a private apt state (root needed: apt drops to _apt otherwise)."""
    if not shutil.which("apt-get") or not shutil.which("dpkg"):
        raise Missing("apt-get/dpkg not found: not a Debian system; set ONNXRUNTIME_ROOT to an unpacked "
                      "onnxruntime release archive")
    if os.geteuid() != 0:
        raise Missing(f"fetching {', '.join(packages)} from Debian {DEBIAN_SUITE} needs root; as a user, "
                      "set ONNXRUNTIME_ROOT to an unpacked onnxruntime release archive "
                      "(github.com/microsoft/onnxruntime/releases) and install nlohmann-json3-dev")
    lists, cache = work / "lists", work / "cache"
    (lists / "partial").mkdir(parents=True, exist_ok=True)
    (cache / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    source = work / "sources.list"
    source.write_text(f"deb {debian_mirror()} {DEBIAN_SUITE} main\n")
    opts = ["-q", "-o", f"Dir::Etc::SourceList={source}", "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", f"Dir::State::Lists={lists}", "-o", f"Dir::Cache={cache}",
            "-o", "APT::Sandbox::User=root", "-o", "Acquire::Languages=none"]
    r = run(["apt-get", *opts, "update"])
    if r.returncode != 0:
        raise Missing(f"apt-get update of Debian {DEBIAN_SUITE} failed: {r.stderr.strip()[-400:]}")
    r = run(["apt-get", *opts, "download", *packages], cwd=work)
    if r.returncode != 0:
        raise Missing(f"apt-get download {' '.join(packages)} failed: {r.stderr.strip()[-400:]}")
    debs = [next(iter(sorted(work.glob(f"{p}_*.deb"))), None) for p in packages]
    if None in debs:
        raise Missing(f"apt-get download left no .deb for {packages}")
    return debs


def unpack(deb: Path, dest: Path) -> Path:
    r = run(["dpkg", "-x", str(deb), str(dest)])
    if r.returncode != 0:
        raise Missing(f"dpkg -x {deb.name} failed: {r.stderr.strip()}")
    return dest / "usr"


def make_prefix(prefix: Path, need_ort: bool, need_json: bool) -> None:
    """Fill `prefix` with include/ (onnxruntime headers, nlohmann), lib/ (the wheel's library) and
    share/cmake/nlohmann_json, fetching only what is not there yet. The library is copied again
    when this Python's onnxruntime wheel is another version than the one copied before."""
    lib = wheel_library() if need_ort else None
    headers_done = (prefix / "include" / HEADER).is_file()
    json_done = (prefix / "share" / "cmake" / "nlohmann_json").is_dir()
    packages = ([] if headers_done or not need_ort else ["libonnxruntime-dev"]) + \
               ([] if json_done or not need_json else ["nlohmann-json3-dev"])
    (prefix / "include").mkdir(parents=True, exist_ok=True)
    if packages:
        with tempfile.TemporaryDirectory(prefix="rnncompile-sdk-") as tmp:
            work = Path(tmp)
            debs = dict(zip(packages, fetch_debs(packages, work)))
            if "nlohmann-json3-dev" in debs:
                usr = unpack(debs["nlohmann-json3-dev"], work / "json")
                shutil.copytree(usr / "include" / "nlohmann", prefix / "include" / "nlohmann", dirs_exist_ok=True)
                shutil.copytree(usr / "share" / "cmake" / "nlohmann_json",
                                prefix / "share" / "cmake" / "nlohmann_json", dirs_exist_ok=True)
            if "libonnxruntime-dev" in debs:
                usr = unpack(debs["libonnxruntime-dev"], work / "ort")
                shutil.copytree(usr / "include" / "onnxruntime", prefix / "include", dirs_exist_ok=True)
                (prefix / "HEADERS.txt").write_text(f"Debian {DEBIAN_SUITE} {debs['libonnxruntime-dev'].name}\n")
    if lib is not None and not (prefix / "lib" / lib.name).is_file():
        libdir = prefix / "lib"
        if libdir.exists():
            shutil.rmtree(libdir)
        libdir.mkdir()
        shutil.copy2(lib, libdir / lib.name)
        shared = lib.parent / "libonnxruntime_providers_shared.so"
        if shared.is_file():  # the CUDA/TensorRT execution providers load through it
            shutil.copy2(shared, libdir / shared.name)
        for link in ("libonnxruntime.so.1", "libonnxruntime.so"):
            (libdir / link).symlink_to(lib.name)
        (prefix / "LIBRARY.txt").write_text(f"copied from {lib}\n")
    if need_ort and not root_has_sdk(prefix):
        raise Missing(f"{prefix} does not hold onnxruntime's headers and library after unpacking")


# ---- toolchain -----------------------------------------------------------------------------------

def toolchain(install_missing: bool) -> dict:
    missing = [tool for tool, pkg in (("cmake", "cmake"), ("g++", "g++"), ("make", "make"))
               if not shutil.which(tool)]
    if missing and install_missing:
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise Missing(f"{', '.join(missing)} not found and cannot be installed here (needs root and apt)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        r = run(["apt-get", "update", "-q"], env=env)
        r = r if r.returncode else run(["apt-get", "install", "-y", "-q", "--no-install-recommends",
                                        "cmake", "g++", "make", "pkg-config"], env=env)
        if r.returncode != 0:
            raise Missing(f"apt-get install cmake g++ failed: {r.stderr.strip()[-400:]}")
        missing = [t for t in missing if not shutil.which(t)]
    if missing:
        raise Missing(f"{', '.join(missing)} not found: install CMake >= 3.16 and a C++17 compiler "
                      "(Debian: apt-get install cmake g++), or run tools/cpp_sdk.py --install-missing as root")
    return {"cmake": shutil.which("cmake"), "cxx": shutil.which("g++")}


def system_json() -> bool:
    return any(Path(p).is_file() for p in ("/usr/include/nlohmann/json.hpp", "/usr/local/include/nlohmann/json.hpp"))


def resolve(prefix: Path, install_missing: bool) -> dict:
    """The CMake arguments that build cpp/ here, making `prefix` if needed."""
    info = {"toolchain": toolchain(install_missing)}
    cmake_args = []
    found = system_onnxruntime()
    env_root = os.environ.get("ONNXRUNTIME_ROOT")
    if found:
        info["onnxruntime"] = f"system: {found}"
    elif env_root:
        if not root_has_sdk(Path(env_root)):
            raise Missing(f"ONNXRUNTIME_ROOT={env_root} has no include/{HEADER} and lib/libonnxruntime.so*")
        info["onnxruntime"] = f"ONNXRUNTIME_ROOT={env_root}"
        cmake_args.append(f"-DONNXRUNTIME_ROOT={env_root}")
    need_ort = not found and not env_root
    need_json = not system_json()
    make_prefix(prefix, need_ort, need_json)
    if need_ort:
        info["onnxruntime"] = f"Debian {DEBIAN_SUITE} headers + wheel library in {prefix}"
        cmake_args.append(f"-DONNXRUNTIME_ROOT={prefix}")
    info["nlohmann_json"] = "system" if not need_json else f"Debian {DEBIAN_SUITE} package in {prefix}"
    if need_json:
        cmake_args.append(f"-DCMAKE_PREFIX_PATH={prefix}")
    info["cmake_args"] = cmake_args
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prefix", default=str(Path(__file__).resolve().parent.parent / "build" / "cpp-sdk"),
                    help="where to put what is made here (default: build/cpp-sdk in the repository)")
    ap.add_argument("--install-missing", action="store_true",
                    help="apt-get install cmake and g++ when missing (root only)")
    args = ap.parse_args(argv)
    try:
        info = resolve(Path(args.prefix).resolve(), args.install_missing)
    except Missing as e:
        print(json.dumps({"missing": str(e)}))
        return 1
    print(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
