"""Wire format of the propeller inference server: numpy arrays <-> protobuf ``Slots``.

Schema (``interface.proto`` next to this file has the same text for other languages)::

    message Slot  { Type type = 1; repeated int64 dims = 2; bytes data = 3; }
    message Slots { repeated Slot slots = 1; }
    enum Type { BOOL=0, INT16=1, INT32=2, INT64=3, FP16=4, FP32=5, FP64=6,
                SIZE_T=19, UINT8=20, INT8=21 }

``data`` is the tensor in C order, little-endian, and its length must equal
``prod(dims) * itemsize``. A request carries the model inputs in order, a reply its outputs.

Error reply: a ``Slots`` holding exactly one slot with ``type=UINT8``, ``dims=[-1]`` and the
UTF-8 error message as ``data``. A data slot can never have a negative dim, so the two are
unambiguous, and the format stays the one the original ERNIE peers speak. Use
:func:`serialize_error` to build one and :func:`deserialize_reply` (which raises
:class:`ServerError`) to read a reply.

The message classes are built at runtime from a ``FileDescriptorProto`` in a private
descriptor pool: there is no protoc here, and a private pool cannot clash with protos that
other libraries (paddle) register in the default pool. Nothing is ever unpickled.
"""
import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

__all__ = [
    "Slot", "Slots", "TYPE_TO_DTYPE", "DTYPE_TO_TYPE", "ServerError",
    "serialize", "deserialize", "serialize_error", "deserialize_reply", "parse_error",
    "DEFAULT_MAX_MESSAGE_BYTES", "MAX_RANK",
]

DEFAULT_MAX_MESSAGE_BYTES = 64 << 20
# numpy 1.x supports at most 32 dims; anything deeper is garbage, not a tensor.
MAX_RANK = 32
# Error text is for humans; cap it so a reply stays small whatever the exception says.
MAX_ERROR_BYTES = 8192

_TYPES = [
    ("BOOL", 0, np.bool_), ("INT16", 1, np.int16), ("INT32", 2, np.int32),
    ("INT64", 3, np.int64), ("FP16", 4, np.float16), ("FP32", 5, np.float32),
    ("FP64", 6, np.float64), ("SIZE_T", 19, np.uint64), ("UINT8", 20, np.uint8),
    ("INT8", 21, np.int8),
]
# Little-endian dtypes: the wire is little-endian whatever the host is.
TYPE_TO_DTYPE = {num: np.dtype(t).newbyteorder("<") for _, num, t in _TYPES}
DTYPE_TO_TYPE = {np.dtype(t).newbyteorder("<"): num for _, num, t in _TYPES}
TYPE_NAMES = {num: name for name, num, _ in _TYPES}
_UINT8 = 20


def _build_classes():
    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(
        name="propeller/service/interface.proto", package="propeller", syntax="proto3")
    slot = fdp.message_type.add(name="Slot")
    enum = slot.enum_type.add(name="Type")
    for name, num, _ in _TYPES:
        enum.value.add(name=name, number=num)
    slot.field.add(name="type", number=1, label=F.LABEL_OPTIONAL, type=F.TYPE_ENUM,
                   type_name=".propeller.Slot.Type")
    slot.field.add(name="dims", number=2, label=F.LABEL_REPEATED, type=F.TYPE_INT64)
    slot.field.add(name="data", number=3, label=F.LABEL_OPTIONAL, type=F.TYPE_BYTES)
    slots = fdp.message_type.add(name="Slots")
    slots.field.add(name="slots", number=1, label=F.LABEL_REPEATED, type=F.TYPE_MESSAGE,
                    type_name=".propeller.Slot")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return (message_factory.GetMessageClass(pool.FindMessageTypeByName("propeller.Slot")),
            message_factory.GetMessageClass(pool.FindMessageTypeByName("propeller.Slots")))


Slot, Slots = _build_classes()


class ServerError(RuntimeError):
    """The server answered with an error reply (the message is the server's)."""


def _to_wire_array(i, a):
    a = np.asarray(a)
    dt = a.dtype.newbyteorder("<") if a.dtype.byteorder in "<>=" else a.dtype
    if dt not in DTYPE_TO_TYPE:
        raise ValueError(f"array {i}: dtype {a.dtype} is not supported on the wire "
                         f"(supported: {sorted(str(d) for d in DTYPE_TO_TYPE)})")
    if a.ndim > MAX_RANK:
        raise ValueError(f"array {i}: rank {a.ndim} > {MAX_RANK}")
    # not ascontiguousarray: it turns 0-d arrays into 1-d ones
    return np.asarray(a, dtype=dt, order="C"), DTYPE_TO_TYPE[dt]


def serialize(arrays):
    """Encode a list of numpy arrays as ``Slots`` bytes."""
    if isinstance(arrays, np.ndarray):
        raise TypeError("serialize() takes a list of arrays, not a single array")
    msg = Slots()
    for i, a in enumerate(arrays):
        a, t = _to_wire_array(i, a)
        msg.slots.add(type=t, dims=a.shape, data=a.tobytes())
    return msg.SerializeToString()


def serialize_error(message):
    """Encode an error reply (see the module docstring) carrying ``message``."""
    data = str(message).encode("utf-8", "replace")[:MAX_ERROR_BYTES]
    msg = Slots()
    msg.slots.add(type=_UINT8, dims=[-1], data=data)
    return msg.SerializeToString()


def _parse(buf, max_bytes):
    if not isinstance(buf, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, got {type(buf).__name__}")
    if max_bytes is not None and len(buf) > max_bytes:
        raise ValueError(f"message of {len(buf)} bytes exceeds the limit of {max_bytes} bytes")
    msg = Slots()
    try:
        msg.ParseFromString(bytes(buf))
    except (DecodeError, RuntimeError, ValueError) as e:  # upb may raise any of these
        raise ValueError(f"not a valid Slots protobuf message: {e}") from None
    return msg


def parse_error(msg):
    """Return the error text if the parsed ``Slots`` is an error reply, else None."""
    if (len(msg.slots) == 1 and msg.slots[0].type == _UINT8
            and list(msg.slots[0].dims) == [-1]):
        return msg.slots[0].data.decode("utf-8", "replace")
    return None


def _decode(msg, max_elements, copy):
    out = []
    for i, s in enumerate(msg.slots):
        if s.type not in TYPE_TO_DTYPE:
            raise ValueError(f"slot {i}: unknown type {s.type}")
        dims = list(s.dims)
        if len(dims) > MAX_RANK:
            raise ValueError(f"slot {i}: rank {len(dims)} > {MAX_RANK}")
        if any(d < 0 for d in dims):
            raise ValueError(f"slot {i}: negative dim in {dims}")
        n = 1
        for d in dims:  # Python ints: huge declared dims cannot overflow
            n *= d
        if max_elements is not None and n > max_elements:
            raise ValueError(f"slot {i}: {n} elements {dims} exceed the limit of {max_elements}")
        dt = TYPE_TO_DTYPE[s.type]
        if n * dt.itemsize != len(s.data):
            raise ValueError(f"slot {i}: dims {dims} of {TYPE_NAMES[s.type]} need "
                             f"{n * dt.itemsize} bytes but data has {len(s.data)}")
        a = np.frombuffer(s.data, dtype=dt).reshape(dims)
        if not np.little_endian and dt.itemsize > 1:  # hand back native byte order
            a = a.astype(dt.newbyteorder("="))
        out.append(a.copy() if copy else a)
    return out


def deserialize(buf, max_bytes=DEFAULT_MAX_MESSAGE_BYTES, max_elements=None, copy=True):
    """Decode ``Slots`` bytes into a list of numpy arrays.

    Raises ``ValueError`` for anything malformed: bytes over ``max_bytes``, an invalid
    protobuf, an unknown type, negative dims (so also an error reply), more than
    ``max_elements`` elements in one slot, or data whose length disagrees with the dims.
    With ``copy=False`` the arrays are read-only views of the message bytes.
    """
    msg = _parse(buf, max_bytes)
    if parse_error(msg) is not None:
        raise ValueError("this is an error reply, not data: " + parse_error(msg)[:200])
    return _decode(msg, max_elements, copy)


def deserialize_reply(buf, max_bytes=None, copy=True):
    """Decode a server reply; raise :class:`ServerError` if it is an error reply."""
    msg = _parse(buf, max_bytes)
    err = parse_error(msg)
    if err is not None:
        raise ServerError(err)
    return _decode(msg, None, copy)
