"""The IDX file format of MNIST-like datasets: a strict reader and a writer (for fixtures and tests).

Layout: a big-endian magic ``0x0000TTDD`` (TT = 0x08 for unsigned bytes, DD = number of dimensions), one big-endian
uint32 per dimension, then the values. Files may be gzip-compressed. The reader checks the magic, the header and
that the payload has exactly the size the header promises, so a truncated or corrupt file is refused by name and
never half loaded.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from ..core.errors import InputError

_UBYTE = 0x08


class IdxError(InputError):
    """A file that is not a complete IDX file of unsigned bytes."""


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as f:
        head = f.read(2)
        f.seek(0)
        raw = f.read()
    if head == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as e:
            raise IdxError(f"{path}: the gzip stream is damaged or cut short ({e})") from None
    return raw


def read_idx(path: str | Path, expect_ndim: int | None = None) -> np.ndarray:
    """Read one IDX file (plain or gzip) into a uint8 array of the shape its header states."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise IdxError(f"{path}: {len(data)} bytes is too short for an IDX header")
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != _UBYTE or not 1 <= ndim <= 4:
        raise IdxError(f"{path}: wrong magic number 0x{data[:4].hex()}; an IDX file of unsigned bytes starts with "
                       "0x00000801 (labels) or 0x00000803 (images)")
    if expect_ndim is not None and ndim != expect_ndim:
        kind = {1: "labels", 3: "images"}.get(expect_ndim, f"{expect_ndim}-d")
        raise IdxError(f"{path}: has {ndim} dimensions, expected {expect_ndim} ({kind})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError(f"{path}: the header is cut short")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(dims, dtype=np.int64))
    actual = len(data) - header
    if actual != expected:
        raise IdxError(f"{path}: the header promises {expected} values {tuple(dims)} but the file holds {actual}; "
                       "it is truncated or corrupt")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write a uint8 array as IDX (gzip when ``compress`` is true or the name ends in .gz)."""
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, _UBYTE, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        payload = gzip.compress(payload, mtime=0)
    path.write_bytes(payload)
