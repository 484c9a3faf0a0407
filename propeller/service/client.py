"""Client of the propeller inference server.

    client = InferenceClient("tcp://localhost:8888", batch_size=128, num_coroutine=10, timeout=10.,
                             retries=0, retry_wait=0.5)
    outputs = client(src_ids, pos_ids)      # numpy arrays in, list of numpy arrays out

The inputs are split along axis 0 into chunks of ``batch_size`` rows, the chunks go out in
parallel over up to ``num_coroutine`` REQ sockets (threads), and the replies are joined in
order along axis 0. ``timeout`` (seconds) applies to each chunk's round trip. Errors:

* :class:`~propeller.service.wire.ServerError` when the server answers with an error reply;
* :class:`ServiceTimeout` (a ``TimeoutError``) when no reply comes in time. The socket that
  timed out is discarded, since a REQ socket cannot send again before it gets its reply;
  the client stays usable.

``retries`` (default 0) re-sends a chunk that timed out or could not be sent, on a fresh
socket, after ``retry_wait`` seconds (doubled after each try): a server that restarts or is
briefly overloaded is ridden out (inference requests are idempotent, so sending one twice is
harmless). An error reply is never retried: the same request would fail the same way. The
final ServiceTimeout names the address, the timeout and the number of tries.

Safe to call from several threads at once. Paddle is not imported.
"""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import zmq

from propeller.service import wire

__all__ = ["InferenceClient", "ServiceTimeout", "ServerError"]

ServerError = wire.ServerError


class ServiceTimeout(TimeoutError):
    """No reply from the server within the client's timeout."""


def _normalise_address(address):
    return address if "://" in address else "tcp://" + address


class InferenceClient:
    def __init__(self, address, batch_size=128, num_coroutine=10, timeout=10., retries=0, retry_wait=0.5):
        if batch_size < 1 or num_coroutine < 1:
            raise ValueError("batch_size and num_coroutine must be >= 1")
        if retries < 0 or retry_wait < 0 or timeout <= 0:
            raise ValueError("retries and retry_wait must be >= 0 and timeout > 0")
        self.retries, self.retry_wait = int(retries), float(retry_wait)
        self.address = _normalise_address(address)
        self.batch_size = int(batch_size)
        self.num_coroutine = int(num_coroutine)
        self.timeout = float(timeout)
        self._ctx = zmq.Context(1)
        self._idle = []  # REQ sockets not in use; handed between threads under the lock
        self._lock = threading.Lock()
        self._pool = None
        self._closed = False

    # -- sockets ---------------------------------------------------------------------
    def _take_socket(self):
        with self._lock:
            if self._closed:
                raise RuntimeError("client is closed")
            if self._idle:
                return self._idle.pop()
            s = self._ctx.socket(zmq.REQ)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(self.address)
        return s

    def _give_back(self, s):
        with self._lock:
            if self._closed:
                s.close(0)
            else:
                self._idle.append(s)

    def _request(self, payload):
        wait = self.retry_wait
        for attempt in range(self.retries + 1):
            try:
                return self._request_once(payload)
            except ServiceTimeout as e:
                if attempt == self.retries:
                    if self.retries:
                        raise ServiceTimeout(f"{e} ({self.retries + 1} tries)") from None
                    raise
            time.sleep(wait)
            wait *= 2

    def _request_once(self, payload):
        s = self._take_socket()
        ok = False
        try:
            ms = int(self.timeout * 1000)
            if not s.poll(ms, zmq.POLLOUT):
                raise ServiceTimeout(f"could not send to {self.address} within "
                                     f"{self.timeout:g} s")
            s.send(payload, zmq.NOBLOCK)
            if not s.poll(ms, zmq.POLLIN):
                raise ServiceTimeout(f"no reply from {self.address} within "
                                     f"{self.timeout:g} s (is the server running?)")
            reply = s.recv()
            ok = True
        finally:
            if ok:
                self._give_back(s)
            else:
                s.close(0)  # stuck mid request: a fresh socket replaces it next time
        try:
            return wire.deserialize_reply(reply)
        except ServerError as e:
            raise ServerError(f"{self.address}: {e}") from None
        except ValueError as e:
            raise ValueError(f"{self.address} sent a malformed reply: {e}") from None

    # -- public ----------------------------------------------------------------------
    def __call__(self, *arrays):
        if not arrays:
            raise ValueError("no inputs given")
        arrays = [np.asarray(a) for a in arrays]
        if any(a.ndim == 0 for a in arrays):
            raise ValueError("inputs must have a batch axis (rank >= 1)")
        n = len(arrays[0])
        if any(len(a) != n for a in arrays):
            raise ValueError(f"inputs disagree on the batch size: {[len(a) for a in arrays]}")
        if n == 0:
            raise ValueError("empty batch")
        starts = range(0, n, self.batch_size)
        payloads = [wire.serialize([a[i:i + self.batch_size] for a in arrays]) for i in starts]
        if len(payloads) == 1:
            return self._request(payloads[0])
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.num_coroutine,
                                                thread_name_prefix="inference-client")
        futures = [self._pool.submit(self._request, p) for p in payloads]
        # wait for every chunk so no socket is left in flight, then report the first error
        errors = [f.exception() for f in futures]
        for e in errors:
            if e is not None:
                raise e
        parts = [f.result() for f in futures]
        if len({len(p) for p in parts}) != 1:
            raise ValueError(f"{self.address}: replies disagree on the number of outputs")
        try:
            return [np.concatenate(outs, axis=0) for outs in zip(*parts)]
        except ValueError as e:
            raise ValueError(f"cannot join the outputs of {len(parts)} chunks along axis 0 "
                             f"(does every output have a batch axis?): {e}") from None

    def close(self):
        with self._lock:
            if self._closed:
                return
            self._closed = True
            idle, self._idle = self._idle, []
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        for s in idle:
            s.close(0)
        self._ctx.term()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001  - interpreter teardown
            pass
