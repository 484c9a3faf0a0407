"""ZeroMQ inference server: a ROUTER front end, a DEALER back end, worker processes (REP).

Topology::

    clients (REQ/DEALER) --tcp--> ROUTER ==zmq proxy== DEALER --ipc--> N worker processes (REP)

The proxy runs in C (``zmq.proxy_steerable``) in a thread of the main process; the main
thread only supervises: it restarts a worker that dies and turns SIGTERM/SIGINT into a
clean shutdown (proxy stopped, workers told to exit, sockets closed, exit status 0).

Each worker builds its own predict function by calling ``predict_fn_factory()`` once, so a
model is loaded per process and never shared between threads. The factory must be
picklable (a module-level function or class instance, or ``functools.partial`` of one)
because workers are started with the ``spawn`` method: forking a process that may already
run Paddle's thread pools is not safe.

Requests and replies use :mod:`propeller.service.wire`: a request is the model inputs, a
reply the outputs. **Error reply**: when a request cannot be answered (not a protobuf, an
unknown type, dims that disagree with the data, more than ``max_message_bytes`` bytes,
more than ``max_tokens`` tokens, inputs the model rejects, a failing predict function), the
worker answers with a ``Slots`` holding one ``UINT8`` slot with ``dims == [-1]`` whose data
is the UTF-8 message, and goes on serving. ``InferenceClient`` raises
:class:`~propeller.service.wire.ServerError` on it; other peers can test for it with
``wire.parse_error``.

Limits: ``max_message_bytes`` is checked on every request; the front socket also drops,
without a reply, any message over twice that size (ZMQ_MAXMSGSIZE), so a huge message
cannot be buffered in full. ``max_tokens`` bounds batch*seq of every input: the product of
its first two dims (the first dim for a rank-1 input).
"""
import logging
import multiprocessing as mp
import os
import queue
import shutil
import signal
import sys
import tempfile
import threading
import time

import numpy as np
import zmq

from propeller.inference.predictor import BACKENDS, PRECISIONS, Predictor, check_options
from propeller.service import wire

__all__ = ["Server", "serve", "PredictorFactory", "count_tokens", "predictor_options", "worker_cpus",
           "DEFAULT_MAX_TOKENS", "DEFAULT_MAX_MESSAGE_BYTES"]

log = logging.getLogger("propeller.service")

DEFAULT_MAX_MESSAGE_BYTES = wire.DEFAULT_MAX_MESSAGE_BYTES
DEFAULT_MAX_TOKENS = 1 << 20
_POLL_MS = 200  # how often idle workers look at their stop flag and their parent


class PredictorFactory:
    """Picklable factory: each worker gets ``propeller.inference.predictor.Predictor(model_dir, **options).predict``
    (options: num_threads, use_onednn, use_gpu, precision, backend; see :func:`predictor_options`)."""

    def __init__(self, model_dir, **predictor_options):
        self.model_dir = os.path.abspath(model_dir)
        self.options = predictor_options
        self.num_threads = int(predictor_options.get("num_threads", 1))  # read by the CPU pinning

    def __call__(self):
        return Predictor(self.model_dir, **self.options).predict


def count_tokens(shape):
    """batch*seq of one input: product of its first two dims (a rank-1 input: its length)."""
    n = 1
    for d in list(shape)[:2]:
        n *= int(d)
    return n


def handle_request(predict_fn, msg, max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES,
                   max_tokens=DEFAULT_MAX_TOKENS):
    """Answer one request: reply bytes, an error reply for anything that goes wrong."""
    try:
        arrays = wire.deserialize(msg, max_bytes=max_message_bytes)
        if not arrays:
            raise ValueError("request holds no tensors")
        for i, a in enumerate(arrays):
            if max_tokens is not None and count_tokens(a.shape) > max_tokens:
                raise ValueError(f"slot {i}: {count_tokens(a.shape)} tokens {list(a.shape)} "
                                 f"exceed the limit of {max_tokens}")
    except Exception as e:  # noqa: BLE001  - every malformed request gets an answer
        log.debug("bad request: %s", e)
        return wire.serialize_error(f"bad request: {e}")
    try:
        outs = predict_fn(arrays)
        if isinstance(outs, np.ndarray):
            outs = [outs]
        return wire.serialize(list(outs))
    except Exception as e:  # noqa: BLE001
        log.debug("predict failed: %s", e)
        return wire.serialize_error(f"predict failed: {type(e).__name__}: {e}")


def worker_cpus(num_workers, threads_per_worker, mode="auto"):
    """The CPUs each worker is pinned to (a list per worker), or None for no pinning.

    auto: when the workers' threads fit the CPUs this process may use, worker i gets its own
    ``threads_per_worker`` of them (the first CPUs: two servers on one machine would share
    them, so give those ``none`` or disjoint ``taskset`` CPU sets). A worker that wakes up on another core than last time
    finds the weights out of its cache: pinning took the server's own cost at batch 1 from
    0.37 to 0.19 ms and its predict calls 0.3 ms closer to in-process ones (bench_service.py).
    none: leave placement to the OS (e.g. several servers share the machine)."""
    if mode not in ("auto", "none"):
        raise ValueError(f"cpu_affinity must be 'auto' or 'none', got {mode!r}")
    if mode == "none" or not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    t = max(1, int(threads_per_worker))
    if num_workers * t > len(cpus):
        log.info("not pinning workers: %d workers x %d threads > %d CPUs", num_workers, t, len(cpus))
        return None
    return [cpus[i * t:(i + 1) * t] for i in range(num_workers)]


def _worker_main(index, factory, backend, max_message_bytes, max_tokens, status_q, ppid, cpus=None):
    # Ctrl-C hits the whole process group: let the parent decide when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if cpus:  # before the model loads, so Paddle's threads inherit it
        os.sched_setaffinity(0, cpus)
    # While the model loads SIGTERM just ends the worker (nothing to finish yet; paddle's
    # import may swap in its own fatal-signal handler, which ends it too, noisily).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        predict_fn = factory()
    except BaseException as e:  # noqa: BLE001  - report, then exit non-zero
        status_q.put(("failed", index, f"{type(e).__name__}: {e}"))
        sys.exit(1)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ctx = zmq.Context(1)
    sock = ctx.socket(zmq.REP)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(backend)
    status_q.put(("ready", index, os.getpid()))
    try:
        while not stop.is_set() and os.getppid() == ppid:
            if not sock.poll(_POLL_MS, zmq.POLLIN):
                continue
            msg = sock.recv(copy=True)
            # the request in hand is answered even if SIGTERM arrived meanwhile
            sock.send(handle_request(predict_fn, msg, max_message_bytes, max_tokens))
    finally:
        sock.close(0)
        ctx.term()


class Server:
    """The server as an object: ``start()`` returns once every worker is ready.

    ``port=0`` binds a free port (see ``.port`` / ``.address`` after ``start()``).
    """

    def __init__(self, predict_fn_factory, port=8888, num_workers=1, host="127.0.0.1",
                 max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES, max_tokens=DEFAULT_MAX_TOKENS,
                 start_timeout=600., cpu_affinity="auto"):
        if num_workers < 1:
            raise ValueError("num_workers must be >= 1")
        self.factory = predict_fn_factory
        self.host, self.port, self.num_workers = host, int(port), int(num_workers)
        self.max_message_bytes, self.max_tokens = int(max_message_bytes), max_tokens
        self.start_timeout = start_timeout
        # only a factory that says how many threads its workers run can be pinned safely
        threads = getattr(predict_fn_factory, "num_threads", None)
        self.cpus = worker_cpus(self.num_workers, threads, cpu_affinity) if threads else None
        self._mp = mp.get_context("spawn")
        self._workers = []
        self._stop = threading.Event()
        self._ctx = None
        self._proxy_thread = None
        self._tmpdir = None

    @property
    def address(self):
        return f"tcp://{self.host}:{self.port}"

    # -- lifecycle -------------------------------------------------------------------
    def start(self):
        self._ctx = zmq.Context(1)
        self._front = self._ctx.socket(zmq.ROUTER)
        self._front.setsockopt(zmq.LINGER, 0)
        # hard cap: bigger messages are dropped by libzmq before they are buffered
        self._front.setsockopt(zmq.MAXMSGSIZE, 2 * self.max_message_bytes + 4096)
        try:
            if self.port == 0:
                self.port = self._front.bind_to_random_port(f"tcp://{self.host}")
            else:
                self._front.bind(self.address)  # fails fast, before any worker starts
        except zmq.ZMQError as e:
            raise OSError(f"cannot bind {self.address}: {e}") from None
        self._tmpdir = tempfile.mkdtemp(prefix="propeller-srv-")
        self._backend_addr = f"ipc://{self._tmpdir}/workers.sock"
        self._back = self._ctx.socket(zmq.DEALER)
        self._back.setsockopt(zmq.LINGER, 0)
        self._back.bind(self._backend_addr)
        self._status = self._mp.Queue()
        self._workers = [self._spawn(i) for i in range(self.num_workers)]
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self._control = self._ctx.socket(zmq.PAIR)
        self._control.bind(f"inproc://control-{id(self)}")
        control_peer = self._ctx.socket(zmq.PAIR)
        control_peer.connect(f"inproc://control-{id(self)}")

        def run_proxy():
            try:
                zmq.proxy_steerable(self._front, self._back, None, control_peer)
            except zmq.ZMQError as e:  # context terminated under us: shutting down anyway
                log.debug("proxy ended: %s", e)
            finally:
                control_peer.close(0)

        self._proxy_thread = threading.Thread(target=run_proxy, name="zmq-proxy", daemon=True)
        self._proxy_thread.start()
        log.info("serving on %s with %d worker(s)%s", self.address, self.num_workers,
                 f", pinned to CPUs {self.cpus}" if self.cpus else "")
        return self

    def _spawn(self, index):
        p = self._mp.Process(
            target=_worker_main, name=f"propeller-worker-{index}",
            args=(index, self.factory, self._backend_addr, self.max_message_bytes,
                  self.max_tokens, self._status, os.getpid(), self.cpus[index] if self.cpus else None))
        p.start()
        return p

    def _wait_ready(self):
        ready, deadline = set(), time.monotonic() + self.start_timeout
        while len(ready) < self.num_workers:
            if self._stop.is_set():
                raise RuntimeError("stopped while workers were starting")
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers not ready after {self.start_timeout} s")
            try:
                kind, index, info = self._status.get(timeout=0.2)
            except queue.Empty:
                dead = [w for w in self._workers if w.exitcode is not None]
                if dead:
                    raise RuntimeError(f"worker {dead[0].name} exited with code "
                                       f"{dead[0].exitcode} while starting")
                continue
            if kind == "failed":
                raise RuntimeError(f"worker {index} failed to start: {info}")
            ready.add(index)

    def run_forever(self, poll=0.5):
        """Supervise until :meth:`request_stop` (or a signal handler) asks to stop."""
        while not self._stop.wait(poll):
            for i, w in enumerate(self._workers):
                if w.exitcode is not None and not self._stop.is_set():
                    # a crash inside the predictor (e.g. SIGFPE) loses that one request only
                    log.warning("worker %d (pid %s) exited with %s; restarting",
                                i, w.pid, w.exitcode)
                    self._workers[i] = self._spawn(i)
        self.stop()

    def request_stop(self, *_):
        """Safe from a signal handler: the supervising loop does the actual shutdown."""
        self._stop.set()

    def stop(self, grace=5.0):
        self._stop.set()
        if self._proxy_thread is not None:
            self._control.send(b"TERMINATE")
            self._proxy_thread.join(grace)
            self._control.close(0)
            self._proxy_thread = None
        for w in self._workers:
            if w.exitcode is None:
                w.terminate()  # SIGTERM: the worker finishes its request, then exits
        deadline = time.monotonic() + grace
        for w in self._workers:
            w.join(max(0.0, deadline - time.monotonic()))
            if w.exitcode is None:
                log.warning("worker %s did not exit in %.1f s; killing it", w.pid, grace)
                w.kill()
                w.join(1.0)
        self._workers = []
        if getattr(self, "_status", None) is not None:
            self._status.close()
            self._status.cancel_join_thread()  # nothing left to read; never block on exit
            self._status = None
        if self._ctx is not None:
            for s in (getattr(self, "_front", None), getattr(self, "_back", None)):
                if s is not None:
                    s.close(0)
            self._ctx.term()
            self._ctx = None
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def add_server_arguments(ap, default_port=8888):
    """The flags every server command shares (port, host, workers, threads, devices, limits)."""
    ap.add_argument("-p", "--port", type=int, default=default_port, help="tcp port (0: pick a free one)")
    ap.add_argument("--host", default="127.0.0.1",
                    help="address to bind (default 127.0.0.1; 0.0.0.0 for all interfaces)")
    ap.add_argument("--num_workers", type=int, default=1, help="worker processes")
    ap.add_argument("--num_threads", type=int, default=1, help="CPU math threads per worker")
    ap.add_argument("--no_onednn", action="store_true", help="disable oneDNN kernels")
    ap.add_argument("--use_gpu", action="store_true")
    ap.add_argument("--precision", choices=PRECISIONS, default="fp32",
                    help="bf16: oneDNN bf16 kernels, 3-7x faster on CPUs with AMX/AVX512-BF16, "
                         "outputs up to ~7e-2 off fp32")
    ap.add_argument("--backend", choices=BACKENDS, default="paddle",
                    help="onnxruntime: run the export on ONNX Runtime (converted once to <prefix>.onnx "
                         "beside it); 3x faster for small models at batch 1")
    ap.add_argument("--cpu_affinity", choices=("auto", "none"), default="auto",
                    help="auto: pin each worker to its own CPUs when they fit; none: let the OS place them")
    ap.add_argument("--max_message_bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES)
    ap.add_argument("--max_tokens", type=int, default=DEFAULT_MAX_TOKENS,
                    help="largest batch*seq accepted for any input")
    ap.add_argument("-v", "--verbose", action="store_true")
    return ap


def predictor_options(args):
    """The Predictor keyword arguments named by the flags of :func:`add_server_arguments`,
    checked here so that a bad combination fails before any worker is spawned."""
    opts = dict(num_threads=args.num_threads, use_onednn=not args.no_onednn, use_gpu=args.use_gpu,
                precision=args.precision, backend=args.backend)
    check_options(opts["precision"], opts["backend"], opts["use_gpu"], opts["use_onednn"])
    return opts


def serve(predict_fn_factory, port=8888, num_workers=1, host="127.0.0.1",
          max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES, max_tokens=DEFAULT_MAX_TOKENS,
          on_ready=None, cpu_affinity="auto"):
    """Run a server in this process until SIGTERM/SIGINT; returns after a clean shutdown.

    ``predict_fn_factory()`` is called once in each worker and must return
    ``predict_fn(list_of_ndarrays) -> list_of_ndarrays``. ``on_ready(server)`` is called
    once all workers are up (default: print ``ready <address>`` to stdout).
    """
    server = Server(predict_fn_factory, port, num_workers, host, max_message_bytes, max_tokens,
                    cpu_affinity=cpu_affinity)
    old = {s: signal.signal(s, server.request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            server.start()
        except RuntimeError:
            if server._stop.is_set():  # SIGTERM while loading the model: a clean exit
                return
            raise
        if on_ready is None:
            print(f"ready {server.address} workers={num_workers}", flush=True)
        else:
            on_ready(server)
        server.run_forever()
    finally:
        server.stop()
        for s, h in old.items():
            signal.signal(s, h)
