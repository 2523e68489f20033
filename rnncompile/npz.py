"""Reading .npz and .npy files as data: plain numeric arrays only, never pickles. Every size is
checked before anything is inflated: the zip directory's declared sizes against the byte limit,
each .npy header's shape x dtype against the member that holds it, and (for weights and inputs)
the member names against what the caller expects, so unexpected members are never inflated."""
from __future__ import annotations

import lzma
import struct
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from . import limits
from .errors import ModelFileError, Problem

_ALLOWED_KINDS = "biuf"  # bool, int, uint, float
#: What zipfile, zlib and numpy's .npy header parser raise on damaged data (found by fuzzing:
#: corrupt deflate streams, unknown compression methods, the encryption flag, garbled headers;
#: tools/fuzz.py found tokenize.TokenError from numpy's header parser on a damaged .npy).
_DAMAGED = (zipfile.BadZipFile, OSError, EOFError, ValueError, TypeError, KeyError, zlib.error,
            lzma.LZMAError, NotImplementedError, RuntimeError, OverflowError, struct.error,
            SyntaxError, MemoryError, tokenize.TokenError)
#: Problems listed one by one before the rest are summed up in one line.
MAX_LISTED = 10


def _limit_hint() -> str:
    return "raise it with --max-npz-bytes or RNNCOMPILE_MAX_NPZ_BYTES"


def _read_header(f: BinaryIO, held: int, where: str, error=ModelFileError,
                 kinds: str = _ALLOWED_KINDS) -> tuple[tuple, np.dtype]:
    """The .npy header of stream `f` (positioned at its start), checked: numeric dtype, and a
    claimed size within the limit and within the `held` bytes that hold the array."""
    version = np.lib.format.read_magic(f)
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise error(f"unsupported .npy format version {version}", where=where)
    reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
              else np.lib.format.read_array_header_2_0)
    shape, _, dtype = reader(f)
    if dtype.hasobject or dtype.kind not in kinds:
        raise error(f"holds {dtype} data (Python objects are never unpickled; expected a numeric "
                    f"array{' or text' if 'U' in kinds else ''})", where=where)
    claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
    limit = limits.current().npz_bytes
    if claimed > limit:
        raise error(f"array header claims {claimed} bytes, over the limit of {limit} ({_limit_hint()})",
                    where=where)
    left = held - f.tell()
    if claimed > left:
        raise error(f"array header claims {claimed} bytes but the member holds {max(left, 0)} "
                    f"(a damaged or lying .npy header)", where=where)
    return tuple(shape), dtype


class NpzFile:
    """An open .npz whose directory was checked: member count, duplicate names, non-.npy members,
    and the sum of the declared uncompressed sizes against the byte limit. Nothing is inflated
    until `read`. Use as a context manager."""

    def __init__(self, path: str | Path, what: str = "weights file", kinds: str = _ALLOWED_KINDS):
        self.path = Path(path)
        self.kinds = kinds   # dtype kinds a member may hold (never objects): numbers, or text too
        where = str(self.path)
        try:
            if not self.path.is_file():
                raise ModelFileError(f"{what} not found", where=where)
            f = self._file = open(self.path, "rb")
        except OSError as e:
            raise ModelFileError(f"cannot open {what}: {e.strerror or e}", where=where) from None
        try:
            self._zf = zipfile.ZipFile(f)
        except _DAMAGED as e:
            f.close()
            raise ModelFileError(f"not a valid .npz (zip) file: {e}", where=where) from None
        try:
            self._infos = self._check_directory(where)
        except BaseException:
            self.close()
            raise

    def _check_directory(self, where: str) -> dict[str, zipfile.ZipInfo]:
        lim = limits.current()
        infos = self._zf.infolist()
        if len(infos) > lim.npz_members:
            raise ModelFileError(f"too many arrays ({len(infos)} > {lim.npz_members}; raise the limit "
                                 f"with --max-npz-members)", where=where)
        total = sum(i.file_size for i in infos)
        if total > lim.npz_bytes:
            raise ModelFileError(f"arrays would take {total} bytes uncompressed (limit {lim.npz_bytes}): "
                                 f"{_limit_hint()}", where=where)
        out: dict[str, zipfile.ZipInfo] = {}
        problems = []
        for info in infos:
            name = info.filename
            if not name.endswith(".npy"):
                problems.append(Problem(f"{where}[{name}]", "member is not a .npy array"))
            elif name[:-4] in out:
                problems.append(Problem(f"{where}[{name}]", "member appears twice in the zip "
                                                            "(which one is meant is ambiguous)"))
            else:
                out[name[:-4]] = info
        if problems:
            raise ModelFileError(summarize(problems, "more damaged members"))
        return out

    def __enter__(self) -> "NpzFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._zf.close()
        self._file.close()

    @property
    def keys(self) -> list[str]:
        return list(self._infos)

    def _where(self, key: str) -> str:
        return f"{self.path}[{key}.npy]"

    def header(self, key: str) -> tuple[tuple, np.dtype]:
        """(shape, dtype) from the member's .npy header, checked, without reading the data."""
        info = self._infos[key]
        try:
            with self._zf.open(info) as f:
                return _read_header(f, info.file_size, self._where(key), kinds=self.kinds)
        except ModelFileError:
            raise
        except _DAMAGED as e:
            raise ModelFileError(f"damaged array: {e}", where=self._where(key)) from None

    def read(self, key: str) -> np.ndarray:
        self.header(key)
        try:
            with self._zf.open(self._infos[key]) as f:
                return np.lib.format.read_array(f, allow_pickle=False)
        except _DAMAGED as e:
            raise ModelFileError(f"damaged array: {e}", where=self._where(key)) from None


def read_npz(path: str | Path, what: str = "weights file") -> dict[str, np.ndarray]:
    """Every array of an .npz (callers that know the names to expect check `NpzFile.keys`
    first, so that unexpected members are never inflated)."""
    with NpzFile(path, what) as npz:
        return {k: npz.read(k) for k in npz.keys}


def read_npy(path: str | Path, error=ModelFileError, kinds: str = _ALLOWED_KINDS) -> np.ndarray:
    """One .npy file, its header checked against the file's size and the byte limit first.
    `kinds`: the dtype kinds accepted (never objects)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(0)
            _read_header(f, size, str(path), error, kinds)
            f.seek(0)
            return np.lib.format.read_array(f, allow_pickle=False)
    except error:
        raise
    except _DAMAGED as e:
        raise error(f"not a readable .npy array: {e}", where=str(path)) from None


def summarize(problems: list[Problem], rest: str) -> list[Problem]:
    """At most MAX_LISTED problems, then one line counting the rest: a file with thousands of
    bad entries gives a message of bounded size."""
    if len(problems) <= MAX_LISTED:
        return problems
    extra = len(problems) - MAX_LISTED
    return problems[:MAX_LISTED] + [Problem(problems[MAX_LISTED].where, f"... and {extra} {rest}")]


def expected_text(names: list[str]) -> str:
    shown = ", ".join(sorted(names)[:20]) or "none"
    return shown + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
