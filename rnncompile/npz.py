"""Reading .npz files as data: plain numeric arrays only, never pickles, with size limits checked
from the zip directory before anything is decompressed."""
from __future__ import annotations

import lzma
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .errors import ModelFileError

MAX_MEMBER_BYTES = 4 << 30
MAX_TOTAL_BYTES = 8 << 30
MAX_MEMBERS = 100_000
_ALLOWED_KINDS = "biuf"  # bool, int, uint, float
#: What zipfile, zlib and numpy's .npy header parser raise on damaged data (found by fuzzing:
#: corrupt deflate streams, unknown compression methods, the encryption flag, garbled headers).
_DAMAGED = (zipfile.BadZipFile, OSError, EOFError, ValueError, TypeError, KeyError, zlib.error,
            lzma.LZMAError, NotImplementedError, RuntimeError, OverflowError, struct.error)


def read_npz(path: str | Path, what: str = "weights file") -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{what} not found", where=str(path))
    try:
        zf = zipfile.ZipFile(path)
    except _DAMAGED as e:
        raise ModelFileError(f"not a valid .npz (zip) file: {e}", where=str(path)) from None
    arrays: dict[str, np.ndarray] = {}
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise ModelFileError(f"too many arrays ({len(infos)} > {MAX_MEMBERS})", where=str(path))
        total = sum(i.file_size for i in infos)
        if total > MAX_TOTAL_BYTES:
            raise ModelFileError(f"arrays would take {total} bytes uncompressed (limit {MAX_TOTAL_BYTES})",
                                 where=str(path))
        for info in infos:
            name = info.filename
            where = f"{path}[{name}]"
            if not name.endswith(".npy"):
                raise ModelFileError("member is not a .npy array", where=where)
            if info.file_size > MAX_MEMBER_BYTES:
                raise ModelFileError(f"array of {info.file_size} bytes exceeds the limit "
                                     f"of {MAX_MEMBER_BYTES}", where=where)
            try:
                with zf.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                              else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = reader(f)
                    if dtype.hasobject or dtype.kind not in _ALLOWED_KINDS:
                        raise ModelFileError(f"holds {dtype} data (Python objects are never unpickled; "
                                             f"expected a numeric array)", where=where)
                    expected = int(np.prod(shape, dtype=object)) * dtype.itemsize
                    if expected > MAX_MEMBER_BYTES:
                        raise ModelFileError(f"array header claims {expected} bytes", where=where)
                    held = info.file_size - f.tell()
                    if expected > held:
                        raise ModelFileError(f"array header claims {expected} bytes but the member "
                                             f"holds {max(held, 0)}", where=where)
                with zf.open(info) as f:
                    arr = np.lib.format.read_array(f, allow_pickle=False)
            except ModelFileError:
                raise
            except _DAMAGED as e:
                raise ModelFileError(f"damaged array: {e}", where=where) from None
            arrays[name[:-4]] = arr
    return arrays
