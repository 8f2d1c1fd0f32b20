"""Reading ``.npz`` files that may be damaged or hostile, without pickle and without surprises.

`read_npz` is the one reader behind checkpoints and run states. It never calls ``np.load``:
it opens the zip itself, parses each member's ``.npy`` header, and checks the header
against the bytes actually stored *before* allocating the array, so

* a file that is empty, text, truncated, or not a zip is a ValueError naming the file;
* an entry whose header claims more data than it holds (``shape=(10**12,)``) is refused
  before any allocation; a zip member that would inflate more than 1100-fold is refused;
* an entry of Python objects (a pickle payload) is refused without being unpickled;
* an entry whose dtype is not a number or text (structured, void) is refused.

`read_json_entry` reads a JSON object stored as a 0-d string entry (``__meta__``,
``__run__``) and checks its keys and their types, naming the file and the entry. Every
error is a ValueError of the form ``"<file>: entry '<name>': what is wrong"``; only a
missing or unreadable file raises an OSError (``FileNotFoundError``, ...).
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first member, or an empty zip
_KINDS = "biufcUS"  # booleans, integers, floats, complex, text: everything else is refused
_MAX_INFLATION = 1100  # deflate cannot compress more than ~1032:1; a larger ratio is a bomb
_DAMAGE = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    zlib.error,
    struct.error,
    NotImplementedError,
    RuntimeError,
    ValueError,
    OverflowError,
    OSError,
)


def read_npz(path) -> dict[str, np.ndarray]:
    """Every entry of an ``.npz`` file as a writable array, read eagerly and checked.

    Equal to ``dict(np.load(path, allow_pickle=False))`` for a file ``np.savez`` wrote;
    anything else is a ValueError naming ``path`` (and the entry, if one is at fault).
    """
    path = Path(path)
    with open(path, "rb") as f:  # a missing file stays a FileNotFoundError
        head = f.read(4)
        if head not in _ZIP_MAGIC:
            what = "it is empty" if not head else f"it starts with {head!r}, not a zip header"
            raise ValueError(f"{path}: not an .npz archive ({what})")
        f.seek(0)
        try:
            with zipfile.ZipFile(f) as archive:
                return _read_members(path, archive, os.fstat(f.fileno()).st_size)
        except _NpzEntryError as e:
            raise ValueError(str(e)) from None
        except _DAMAGE as e:
            raise ValueError(
                f"{path}: damaged .npz archive (truncated or corrupted?): {type(e).__name__}: {e}"
            ) from None


class _NpzEntryError(Exception):
    """A fully worded error about one entry (kept apart from zipfile's own ValueErrors)."""


def _read_members(path: Path, archive: zipfile.ZipFile, size: int) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for info in archive.infolist():
        if info.header_offset + info.compress_size > size:  # before zipfile allocates for it
            raise _NpzEntryError(
                f"{path}: member {info.filename!r} claims {info.compress_size} bytes at offset "
                f"{info.header_offset}, beyond the end of the {size}-byte file (truncated?)"
            )
        if not info.filename.endswith(".npy"):
            raise _NpzEntryError(f"{path}: member {info.filename!r} is not an .npy array")
        name = info.filename[: -len(".npy")]
        if name in arrays:
            raise _NpzEntryError(f"{path}: entry {name!r} appears twice")
        if info.file_size > _MAX_INFLATION * max(info.compress_size, 1):
            raise _NpzEntryError(
                f"{path}: entry {name!r} claims {info.file_size} bytes from "
                f"{info.compress_size} compressed ones (a decompression bomb?)"
            )
        arrays[name] = _parse_npy(path, name, archive.read(info))
    return arrays


def _parse_npy(path: Path, name: str, data: bytes) -> np.ndarray:
    """The array in ``data`` (the bytes of one ``.npy`` file), checked before it is built."""
    where = f"{path}: entry {name!r}"
    buffer = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(buffer)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(buffer)
        elif version in ((2, 0), (3, 0)):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(buffer)
        else:
            raise ValueError(f"unknown .npy format version {version}")
    except (ValueError, EOFError, struct.error, SyntaxError) as e:
        raise _NpzEntryError(f"{where}: unreadable .npy header ({e})") from None
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise _NpzEntryError(f"{where}: its header declares an impossible shape {shape}")
    if dtype.hasobject:
        raise _NpzEntryError(
            f"{where}: holds Python objects (pickled data, dtype {dtype}); "
            f"refused, it is never unpickled"
        )
    if dtype.kind not in _KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise _NpzEntryError(f"{where}: unsupported dtype {dtype} (numbers and text only)")
    count = math.prod(shape)  # Python ints: no overflow, whatever the header claims
    stored = len(data) - buffer.tell()
    if count * dtype.itemsize != stored:
        raise _NpzEntryError(
            f"{where}: its header declares shape {shape} of {dtype} ({count * dtype.itemsize} "
            f"bytes) but it holds {stored} bytes (truncated or corrupted?)"
        )
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=buffer.tell())
    return flat.reshape(shape, order="F" if fortran_order else "C").copy(order="K")


_JSON_TYPES = {int: "an integer", float: "a number", str: "a string", bool: "true/false",
               dict: "a JSON object", list: "a JSON list", type(None): "null"}  # fmt: skip


def read_json_entry(
    path, arrays: dict[str, np.ndarray], key: str, required: dict, what: str = "a minialign file"
) -> dict:
    """The JSON object stored in the 0-d text entry ``arrays[key]``, with its keys checked.

    ``required`` maps each key the object must have to its type, or a tuple of types
    (``int`` excludes ``bool``; ``float`` accepts ints; ``None`` means null). Other keys
    are allowed. Any problem is a ValueError naming ``path`` and the entry; without the
    entry the file is "not ``what``"."""
    where = f"{path}: entry {key!r}"
    if key not in arrays:
        raise ValueError(f"{path}: no {key!r} entry; not {what}")
    entry = arrays[key]
    if entry.shape != () or entry.dtype.kind != "U":
        raise ValueError(
            f"{where}: must be a 0-d text array holding JSON, got dtype {entry.dtype} "
            f"and shape {entry.shape}"
        )
    try:
        value = json.loads(str(entry))
    except (ValueError, RecursionError) as e:  # JSONDecodeError, or an int of 5000 digits
        raise ValueError(f"{where}: not valid JSON ({type(e).__name__}: {e})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{where}: must be a JSON object, got {_describe(value)}")
    missing = sorted(set(required) - value.keys())
    if missing:
        raise ValueError(f"{where}: lacks the keys {missing}")
    for k, types in required.items():
        types = tuple(
            type(None) if t is None else t
            for t in (types if isinstance(types, tuple) else (types,))
        )
        if not _is_instance(value[k], types):
            expected = " or ".join(_JSON_TYPES.get(t, t.__name__) for t in types)
            raise ValueError(f"{where}: key {k!r} must be {expected}, got {_describe(value[k])}")
    return value


def _is_instance(value, types: tuple) -> bool:
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, int) and float in types:
        return True
    return isinstance(value, types)


def _describe(value) -> str:
    try:
        text = json.dumps(value)[:60]
    except (ValueError, RecursionError):
        text = "(too deep to show)"
    return f"{_JSON_TYPES.get(type(value), type(value).__name__)} {text}"
