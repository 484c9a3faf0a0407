"""Serving: ZeroMQ wire format, inference server and client.

``wire`` and ``client`` do not import paddle, so clients stay light; the server imports
paddle only inside its worker processes (through the predict function factory).
"""
from propeller.service.wire import ServerError, deserialize, serialize  # noqa: F401
