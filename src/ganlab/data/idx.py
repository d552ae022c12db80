"""Read and write IDX files, the format of MNIST and Fashion-MNIST (plain or gzipped).

Format: 2 zero bytes, a type byte (0x08 = uint8), a byte giving the number of dimensions, one big-endian
int32 per dimension, then the raw data.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

UINT8 = 0x08


class DataFileError(RuntimeError):
    """A data file is missing, truncated or not an IDX file. The message names the path and the fix."""


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path: str | Path) -> torch.Tensor:
    """Return the uint8 array stored in an IDX file as a tensor, e.g. (60000, 28, 28) for images."""
    path = Path(path)
    fix = "delete it so that it is downloaded again, or replace it with an intact copy"
    try:
        with _open(path) as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:  # gzip raises BadGzipFile (an OSError) or EOFError
        raise DataFileError(f"{path}: cannot read ({err}); {fix}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != UINT8:
        raise DataFileError(f"{path}: not a uint8 IDX file (bad header); {fix}")
    ndim = raw[3]
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DataFileError(f"{path}: truncated IDX header; {fix}")
    shape = struct.unpack(f">{ndim}i", raw[4:header_size])
    expected = int(np.prod(shape)) if shape else 0
    found = len(raw) - header_size
    if found != expected:
        raise DataFileError(
            f"{path}: truncated or corrupt IDX file (shape {shape} needs {expected} bytes, found {found}); {fix}"
        )
    array = np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)
    return torch.from_numpy(array.copy())


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file, gzipped when the name ends in .gz."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, UINT8, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    path = Path(path)
    opener = (lambda p: gzip.GzipFile(p, "wb", mtime=0)) if path.suffix == ".gz" else (lambda p: open(p, "wb"))
    with opener(path) as f:
        f.write(header + array.tobytes())
