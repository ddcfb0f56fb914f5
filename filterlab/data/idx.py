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
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np

from ..core.errors import InputError
from ..core.regular import NotRegularFile, open_regular

_UBYTE = 0x08


class IdxError(InputError):
    """A file that is not a complete IDX file of unsigned bytes."""


MAX_ITEMS = 20_000_000  # records (images, labels) an IDX file may declare: 300 times MNIST's 60,000
MAX_READ = 4 << 30  # bytes read whole at most (full MNIST: 47 MB); past it, only the records a run needs are read
CHUNK = 16 << 20  # bytes decompressed at a time when only some records are kept


def _exact(stream: BinaryIO, n: int, path: Path, what: str) -> bytes:
    try:
        data = stream.read(n)
    except (EOFError, OSError, zlib.error) as e:
        raise IdxError(f"{path}: the gzip stream is damaged or cut short ({e})") from None
    if len(data) != n:
        raise IdxError(f"{path}: {what} is cut short; it is truncated or corrupt")
    return data


def _open(path: Path) -> BinaryIO:
    """The file's bytes as a stream, decompressed as they are read when it is gzip (never all at once)."""
    f = open_regular(path, "an IDX file")
    head = f.read(2)
    f.seek(0)
    return cast(BinaryIO, gzip.GzipFile(fileobj=f, mode="rb")) if head == b"\x1f\x8b" else f


def read_idx(path: str | Path, expect_ndim: int | None = None,
             rows: Callable[[int], np.ndarray] | None = None) -> np.ndarray:
    """Read one IDX file (plain or gzip) into a uint8 array of the shape its header states.

    ``rows``: given the number of records the header declares, the indices of the records wanted (in the order
    wanted); only those are kept, the rest is decompressed a chunk at a time and dropped, so memory follows what a
    run needs (data.train_limit), not what the header declares. Either way the whole file is checked: a payload
    shorter or longer than the header promises is refused by name.
    """
    path = Path(path)
    try:
        stream = _open(path)
    except NotRegularFile as e:
        raise IdxError(str(e)) from None
    except OSError as e:
        raise IdxError(f"{path}: cannot be read ({e.strerror or e})") from None
    with stream:
        head = _exact(stream, 4, path, "the IDX header")
        zero, dtype, ndim = struct.unpack(">HBB", head)
        if zero != 0 or dtype != _UBYTE or not 1 <= ndim <= 4:
            raise IdxError(f"{path}: wrong magic number 0x{head.hex()}; an IDX file of unsigned bytes starts with "
                           "0x00000801 (labels) or 0x00000803 (images)")
        if expect_ndim is not None and ndim != expect_ndim:
            kind = {1: "labels", 3: "images"}.get(expect_ndim, f"{expect_ndim}-d")
            raise IdxError(f"{path}: has {ndim} dimensions, expected {expect_ndim} ({kind})")
        dims = struct.unpack(f">{ndim}I", _exact(stream, 4 * ndim, path, "the IDX header"))
        n, record = dims[0], int(np.prod(dims[1:], dtype=np.int64))
        if n > MAX_ITEMS:
            raise IdxError(f"{path}: the header declares {n:,} records; accepted: at most {MAX_ITEMS:,}")
        if record > 1 << 24:
            raise IdxError(f"{path}: the header declares records of {record:,} values {tuple(dims[1:])}; accepted: "
                           f"at most {1 << 24:,} (a 4096x4096 image)")
        if rows is None:
            if n * record > MAX_READ:
                raise IdxError(f"{path}: the header declares {n * record:,} bytes of data; a split is read whole only "
                               f"up to {MAX_READ:,} bytes; set data.train_limit to read fewer images")
            out = np.frombuffer(_exact(stream, n * record, path, _promise(n * record, dims)),
                                dtype=np.uint8).reshape(dims)
        else:
            out = _some_rows(stream, path, dims, record, np.asarray(rows(n), dtype=np.int64))
        try:
            extra = stream.read(1)
        except (EOFError, OSError, zlib.error) as e:
            raise IdxError(f"{path}: the gzip stream is damaged or cut short ({e})") from None
        if extra:
            raise IdxError(f"{path}: the header promises {n * record} values {tuple(dims)} but the file holds more; "
                           "it is truncated or corrupt")
    return out


def _promise(count: int, dims: tuple[int, ...]) -> str:
    return f"the data (the header promises {count} values {tuple(dims)})"


def _some_rows(stream: BinaryIO, path: Path, dims: tuple[int, ...], record: int, want: np.ndarray) -> np.ndarray:
    """The records at ``want`` (any order, repeats allowed), reading the payload once, CHUNK bytes at a time."""
    n = dims[0]
    if want.size and (want.min() < 0 or want.max() >= n):
        raise IdxError(f"{path}: a record index outside 0 to {n - 1} was asked for")
    out = np.empty((len(want), *dims[1:]), dtype=np.uint8)
    flat = out.reshape(len(want), record)
    order = np.argsort(want, kind="stable")
    ranked = want[order]
    per = max(1, CHUNK // max(record, 1))
    for start in range(0, n, per):
        count = min(per, n - start)
        chunk = np.frombuffer(_exact(stream, count * record, path, _promise(n * record, dims)),
                              dtype=np.uint8).reshape(count, record)
        lo, hi = np.searchsorted(ranked, [start, start + count])
        if hi > lo:
            flat[order[lo:hi]] = chunk[ranked[lo:hi] - start]
    return out


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write a uint8 array as IDX (gzip when ``compress`` is true or the name ends in .gz)."""
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, _UBYTE, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        payload = gzip.compress(payload, mtime=0)
    path.write_bytes(payload)
