"""Paddle 1.x LoDTensor files (one variable per file, as in ERNIE 1.0 ``params/`` dirs), in numpy.

No paddle import: reading a released checkpoint must not depend on Paddle keeping its
legacy loaders, and the layout is small. One record is (little-endian)::

    uint32 version (0) | uint64 lod_level | lod_level x (uint64 nbytes, nbytes of uint64 offsets)
    uint32 tensor version (0) | int32 desc_size | desc_size bytes of protobuf VarType.TensorDesc
    | row-major data

TensorDesc: field 1 (varint) data_type, field 2 (repeated int64) dims. A "combined" file
(``save_combine``) is the same records back to back.
"""
import contextlib
import os
import struct

import numpy as np

__all__ = ["LegacyTensorError", "read_tensor", "read_combined", "write_tensor", "tensor_bytes"]

# VarType.Type values used in TensorDesc.data_type. BF16 has no numpy dtype: stored as raw
# uint16 and widened to float32 on read.
_CODE_TO_DTYPE = {
    0: np.dtype("bool"), 1: np.dtype("<i2"), 2: np.dtype("<i4"), 3: np.dtype("<i8"),
    4: np.dtype("<f2"), 5: np.dtype("<f4"), 6: np.dtype("<f8"), 20: np.dtype("u1"),
    21: np.dtype("i1"), 22: np.dtype("<u2"), 23: np.dtype("<c8"), 24: np.dtype("<c16"),
}
_BF16 = 22
# keyed by (kind, itemsize) so byte order does not matter on write
_KIND_TO_CODE = {(dt.kind, dt.itemsize): code for code, dt in _CODE_TO_DTYPE.items() if code != _BF16}

# Sanity bounds so a file that is not a tensor fails with a clear message instead of a
# huge allocation.
_MAX_LOD_LEVEL = 64
_MAX_DESC_SIZE = 1 << 16


class LegacyTensorError(ValueError):
    """A file is not a readable Paddle 1.x LoDTensor (the message names the file)."""


class _Reader:
    """Exact-size reads with one byte of push-back, so EOF between records can be detected on
    any file object (pipes and BytesIO included)."""

    def __init__(self, f, name):
        self.f, self.name, self.pending = f, name, b""

    def at_eof(self):
        if not self.pending:
            self.pending = self.f.read(1)
        return not self.pending

    def remaining(self):
        data, self.pending = self.pending + self.f.read(), b""
        return len(data)

    def exact(self, n, what):
        data, self.pending = self.pending, b""
        if n > len(data):
            data += self.f.read(n - len(data))
        if len(data) != n:
            raise LegacyTensorError(f"{self.name}: truncated file: expected {n} bytes of {what}, got {len(data)}")
        return data

    def unpack(self, fmt, what):
        return struct.unpack(fmt, self.exact(struct.calcsize(fmt), what))[0]


def _varint(buf, pos, name):
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise LegacyTensorError(f"{name}: corrupt TensorDesc (varint runs past its end)")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise LegacyTensorError(f"{name}: corrupt TensorDesc (varint longer than 10 bytes)")


def _parse_desc(buf, name):
    """(data_type, dims) from a serialized TensorDesc."""
    data_type, dims, pos = None, [], 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos, name)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos, name)
            if field == 1:
                data_type = value
            elif field == 2:
                dims.append(value)
        elif wire == 2:
            size, pos = _varint(buf, pos, name)
            chunk, pos = buf[pos:pos + size], pos + size
            if len(chunk) != size:
                raise LegacyTensorError(f"{name}: corrupt TensorDesc (field {field} runs past its end)")
            if field == 2:  # packed dims, as a newer protobuf writer could emit
                p = 0
                while p < len(chunk):
                    value, p = _varint(chunk, p, name)
                    dims.append(value)
        elif wire in (1, 5):  # fixed64 / fixed32 fields we do not use
            pos += 8 if wire == 1 else 4
        else:
            raise LegacyTensorError(f"{name}: corrupt TensorDesc (wire type {wire})")
    if data_type is None:
        raise LegacyTensorError(f"{name}: TensorDesc has no data_type")
    dims = [d - (1 << 64) if d >= 1 << 63 else d for d in dims]  # int64 two's complement
    if any(d < 0 for d in dims):
        raise LegacyTensorError(f"{name}: negative dimension in shape {dims}")
    return data_type, dims


def _read_record(r):
    """Read one record; returns (array, lod)."""
    version = r.unpack("<I", "LoDTensor version")
    if version != 0:
        raise LegacyTensorError(f"{r.name}: unsupported LoDTensor version {version} (expected 0); "
                                f"is this a Paddle 1.x tensor file?")
    lod_level = r.unpack("<Q", "lod_level")
    if lod_level > _MAX_LOD_LEVEL:
        raise LegacyTensorError(f"{r.name}: implausible lod_level {lod_level}; not a Paddle tensor file?")
    lod = []
    for level in range(lod_level):
        nbytes = r.unpack("<Q", f"LoD level {level} size")
        if nbytes % 8:
            raise LegacyTensorError(f"{r.name}: LoD level {level} size {nbytes} is not a multiple of 8")
        lod.append(np.frombuffer(r.exact(nbytes, f"LoD level {level}"), dtype="<u8").tolist())
    version = r.unpack("<I", "tensor version")
    if version != 0:
        raise LegacyTensorError(f"{r.name}: unsupported tensor version {version} (expected 0)")
    desc_size = r.unpack("<i", "TensorDesc size")
    if not 0 < desc_size <= _MAX_DESC_SIZE:
        raise LegacyTensorError(f"{r.name}: implausible TensorDesc size {desc_size}; not a Paddle tensor file?")
    code, dims = _parse_desc(r.exact(desc_size, "TensorDesc"), r.name)
    if code not in _CODE_TO_DTYPE:
        raise LegacyTensorError(f"{r.name}: unknown data_type {code} in TensorDesc "
                                f"(known: {sorted(_CODE_TO_DTYPE)})")
    dtype = _CODE_TO_DTYPE[code]
    numel = int(np.prod(dims, dtype=np.int64)) if dims else 1
    nbytes = numel * dtype.itemsize
    arr = np.frombuffer(r.exact(nbytes, f"data for shape {dims} {dtype.name}"), dtype=dtype).reshape(dims)
    if code == _BF16:
        arr = (arr.astype(np.uint32) << 16).view(np.float32)
    else:
        arr = arr.astype(dtype.newbyteorder("="), copy=True)  # writable, native byte order
    return arr, lod


def _open(path_or_fileobj):
    """(context manager giving a binary file, name for messages); a caller's file is not closed."""
    if hasattr(path_or_fileobj, "read"):
        return contextlib.nullcontext(path_or_fileobj), str(getattr(path_or_fileobj, "name", "<stream>"))
    path = os.fspath(path_or_fileobj)
    return open(path, "rb"), path


def read_tensor(path_or_fileobj):
    """Read a single-variable LoDTensor file into a numpy array (LoD dropped, bf16 -> float32)."""
    f, name = _open(path_or_fileobj)
    with f as fh:
        r = _Reader(fh, name)
        arr, _ = _read_record(r)
        extra = r.remaining()
        if extra:
            raise LegacyTensorError(f"{name}: {extra} bytes after the tensor; a combined file? "
                                    f"use read_combined with the variable names")
    return arr


def read_combined(path_or_fileobj, names=None):
    """Read a combined file (records back to back, as ``save_combine`` writes them).

    With ``names`` (the variable names in file order, e.g. sorted names for ``save_vars(...,
    filename=...)``) returns ``{name: array}`` and checks the count; without, a list of arrays.
    """
    f, name = _open(path_or_fileobj)
    arrays = []
    with f as fh:
        r = _Reader(fh, name)
        while True:
            if names is not None and len(arrays) == len(names):
                extra = r.remaining()
                if extra:
                    raise LegacyTensorError(f"{name}: {extra} bytes left after the {len(names)} named tensors; "
                                            f"the file holds more variables than names were given")
                break
            if names is None and r.at_eof():
                break
            try:
                arrays.append(_read_record(r)[0])
            except LegacyTensorError as e:
                which = names[len(arrays)] if names is not None else f"record {len(arrays)}"
                raise LegacyTensorError(f"{e} (while reading {which})") from None
    if names is None:
        return arrays
    return dict(zip(names, arrays))


def _encode_varint(value):
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def tensor_bytes(array, lod=None):
    """Serialize ``array`` (and optional LoD, a list of offset lists) as one LoDTensor record."""
    arr = np.asarray(array)
    code = _KIND_TO_CODE.get((arr.dtype.kind, arr.dtype.itemsize))
    if code is None:
        raise ValueError(f"cannot write dtype {arr.dtype} as a Paddle tensor (supported: "
                         f"{sorted(_CODE_TO_DTYPE[c].name for c in _KIND_TO_CODE.values())})")
    dtype = _CODE_TO_DTYPE[code]
    lod = lod or []
    parts = [struct.pack("<IQ", 0, len(lod))]
    for level in lod:
        offsets = np.asarray(level, dtype="<u8")
        parts += [struct.pack("<Q", offsets.nbytes), offsets.tobytes()]
    desc = b"\x08" + _encode_varint(code) + b"".join(b"\x10" + _encode_varint(int(d)) for d in arr.shape)
    parts += [struct.pack("<Ii", 0, len(desc)), desc, np.ascontiguousarray(arr, dtype=dtype).tobytes()]
    return b"".join(parts)


def write_tensor(path_or_fileobj, array, lod=None):
    """Write ``array`` as a Paddle 1.x LoDTensor file (byte-identical to Paddle's own writer).

    A path is written atomically (temporary file + rename)."""
    data = tensor_bytes(array, lod)
    if hasattr(path_or_fileobj, "write"):
        path_or_fileobj.write(data)
    else:
        from propeller.fsutil import atomic_write_bytes
        atomic_write_bytes(os.fspath(path_or_fileobj), data)

