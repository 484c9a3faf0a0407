"""ZeroMQ inference server: a ROUTER front end, a broker thread, worker processes.

Topology::

    clients (REQ/DEALER) --tcp--> ROUTER == broker thread == ROUTER --ipc--> N worker processes (DEALER)

The broker (a thread of the main process) hands each request to an idle worker and remembers
whose request every worker holds. That is what contains a crash of the predict function
itself (a segfault or abort inside Paddle, the OOM killer): the broker sees the worker's
process end, answers the request it held with an error reply, counts and logs the crash and
starts a replacement. A worker never exits because of a request. The main thread only waits;
SIGTERM/SIGINT become a clean shutdown (broker stopped, workers told to exit, sockets closed,
exit status 0).

Each worker builds its own predict function by calling ``predict_fn_factory()`` once, so a
model is loaded per process and never shared between threads. The factory must be
picklable (a module-level function or class instance, or ``functools.partial`` of one)
because workers are started with the ``spawn`` method: forking a process that may already
run Paddle's thread pools is not safe.

Requests and replies use :mod:`propeller.service.wire`: a request is one message frame
holding the model inputs (after the REQ/DEALER envelope), a reply the outputs. **Error
reply**: when a request cannot be answered (several frames, not a protobuf, an unknown type,
dims that disagree with the data, more than ``max_message_bytes`` bytes, more than
``max_tokens`` tokens, inputs the model's spec rejects -- the ``Predictor`` checks slot count,
dtype, rank, dims, id ranges and sizes against the export --, a failing or crashing predict
function), the answer is a ``Slots`` holding one ``UINT8`` slot with ``dims == [-1]`` whose
data is the UTF-8 message naming the slot and what was expected. ``InferenceClient`` raises
:class:`~propeller.service.wire.ServerError` on it; other peers can test for it with
``wire.parse_error``.

Limits: ``max_message_bytes`` is checked on every request; the front socket also drops,
without a reply, any message over twice that size (ZMQ_MAXMSGSIZE), so a huge message
cannot be buffered in full. ``max_tokens`` bounds batch*seq of every input: the product of
its first two dims (the first dim for a rank-1 input).
"""
import collections
import logging
import multiprocessing as mp
import os
import queue
import select
import shutil
import signal
import sys
import tempfile
import threading
import time

import numpy as np
import zmq

from propeller.cli import add_debug_argument
from propeller.inference.predictor import BACKENDS, PRECISIONS, Predictor, check_options
from propeller.service import wire

__all__ = ["Server", "serve", "PredictorFactory", "count_tokens", "handle_request", "predictor_options",
           "worker_cpus", "DEFAULT_MAX_TOKENS", "DEFAULT_MAX_MESSAGE_BYTES"]

log = logging.getLogger("propeller.service")

DEFAULT_MAX_MESSAGE_BYTES = wire.DEFAULT_MAX_MESSAGE_BYTES
DEFAULT_MAX_TOKENS = 1 << 20
_POLL_MS = 200  # how often idle workers look at their stop flag and their parent
# worker -> broker message kinds (first frame); broker -> worker requests start with _REQUEST,
# so a request of zero frames still reaches the worker (and gets its error reply)
_READY, _ANSWER, _ERROR, _REQUEST = b"R", b"A", b"E", b"Q"
# a worker that dies before it was ever ready is restarted after this many seconds (doubling
# up to _MAX_BACKOFF): a model that cannot load must not turn into a busy respawn loop
_BACKOFF, _MAX_BACKOFF = 0.5, 30.0


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


def _answer(predict_fn, frames, max_message_bytes, max_tokens):
    """``(ok, reply bytes)`` for one request (its message frames, envelope removed)."""
    try:
        if len(frames) != 1:
            # a second frame would be silently ignored: the request is not what the client meant
            raise ValueError(f"expected 1 message frame (a serialized Slots), got {len(frames)}")
        msg = frames[0]
        msg = msg.buffer if isinstance(msg, zmq.Frame) else msg
        arrays = wire.deserialize(msg, max_bytes=max_message_bytes)
        if not arrays:
            raise ValueError("request holds no tensors")
        for i, a in enumerate(arrays):
            if max_tokens is not None and count_tokens(a.shape) > max_tokens:
                raise ValueError(f"slot {i}: {count_tokens(a.shape)} tokens {list(a.shape)} "
                                 f"exceed the limit of {max_tokens}")
    except Exception as e:  # noqa: BLE001  - every malformed request gets an answer
        log.debug("bad request: %s", e)
        return False, wire.serialize_error(f"bad request: {e}")
    try:
        outs = predict_fn(arrays)
        if isinstance(outs, np.ndarray):
            outs = [outs]
        return True, wire.serialize(list(outs))
    except BaseException as e:  # noqa: BLE001  - even SystemExit from user code: the worker stays
        log.debug("predict failed: %s", e)
        return False, wire.serialize_error(f"predict failed: {type(e).__name__}: {e}")


def handle_request(predict_fn, msg, max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES,
                   max_tokens=DEFAULT_MAX_TOKENS):
    """Answer one request (its bytes, or the list of its message frames): reply bytes, an
    error reply for anything that goes wrong."""
    frames = list(msg) if isinstance(msg, (list, tuple)) else [msg]
    return _answer(predict_fn, frames, max_message_bytes, max_tokens)[1]


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


def _worker_main(index, factory, backend, identity, max_message_bytes, max_tokens, status_q, ppid,
                 cpus=None):
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
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IDENTITY, identity)
    sock.connect(backend)
    sock.send(_READY)
    status_q.put(("ready", index, os.getpid()))
    try:
        while not stop.is_set() and os.getppid() == ppid:
            if not sock.poll(_POLL_MS, zmq.POLLIN):
                continue
            frames = sock.recv_multipart(copy=False)[1:]  # less the _REQUEST header
            # the request in hand is answered even if SIGTERM arrived meanwhile
            ok, reply = _answer(predict_fn, frames, max_message_bytes, max_tokens)
            sock.send_multipart([_ANSWER if ok else _ERROR, reply])
    finally:
        sock.close(0)
        ctx.term()


def _split_envelope(frames):
    """``(envelope, body)`` of a message read by the front ROUTER: a REQ peer (or a DEALER that
    adds it) puts an empty delimiter frame after its routing frames; a DEALER that does not has
    just its identity frame."""
    for k in range(1, len(frames)):
        if len(frames[k]) == 0:
            return frames[:k + 1], frames[k + 1:]
    return frames[:1], frames[1:]


def _exit_text(code):
    if code is not None and code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


class _Worker:
    """The broker's view of one worker slot: its process, identity and the request it holds."""

    def __init__(self, index, process, identity):
        self.index, self.process, self.identity = index, process, identity
        self.envelope = None      # routing frames of the request in hand (None: idle or starting)
        self.ready = False
        self.started = time.monotonic()


class Server:
    """The server as an object: ``start()`` returns once every worker is ready.

    ``port=0`` binds a free port (see ``.port`` / ``.address`` after ``start()``). ``stats``
    counts requests, error replies, worker crashes (a worker that died while answering a
    request: that request got an error reply) and restarts.
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
        self._broker_thread = None
        self._tmpdir = None
        self._generation = 0
        self.stats = collections.Counter(requests=0, error_replies=0, worker_crashes=0, restarts=0)

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
        self._back = self._ctx.socket(zmq.ROUTER)
        self._back.setsockopt(zmq.LINGER, 0)
        self._back.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a send to a vanished worker raises
        self._back.bind(self._backend_addr)
        self._status = self._mp.Queue()
        self._workers = [self._spawn(i) for i in range(self.num_workers)]
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self._broker_thread = threading.Thread(target=self._broker, name="propeller-broker", daemon=True)
        self._broker_thread.start()
        log.info("serving on %s with %d worker(s)%s", self.address, self.num_workers,
                 f", pinned to CPUs {self.cpus}" if self.cpus else "")
        return self

    def _spawn(self, index):
        self._generation += 1
        identity = f"w{index}-{self._generation}".encode()
        p = self._mp.Process(
            target=_worker_main, name=f"propeller-worker-{index}",
            args=(index, self.factory, self._backend_addr, identity, self.max_message_bytes,
                  self.max_tokens, self._status, os.getpid(), self.cpus[index] if self.cpus else None))
        p.start()
        return _Worker(index, p, identity)

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
                dead = [w.process for w in self._workers if w.process.exitcode is not None]
                if dead:
                    raise RuntimeError(f"worker {dead[0].name} exited with code "
                                       f"{dead[0].exitcode} while starting")
                continue
            if kind == "failed":
                raise RuntimeError(f"worker {index} failed to start: {info}")
            ready.add(index)

    # -- the broker ------------------------------------------------------------------
    def _broker(self):
        """Route requests to idle workers and replies back; watch the workers' processes (their
        sentinel fds wake the poll when one ends). Per request this costs ~0.1 ms of Python."""
        front, back = self._front, self._back
        by_id = {w.identity: w for w in self._workers}
        idle = collections.deque()
        respawn_at, failures = {}, collections.Counter()
        poller = zmq.Poller()
        poller.register(back, zmq.POLLIN)
        for w in by_id.values():
            poller.register(w.process.sentinel, zmq.POLLIN)
        front_polled, next_check = False, 0.0
        try:
            while not self._stop.is_set():
                if bool(idle) != front_polled:  # requests wait in libzmq's queue while every worker is busy
                    front_polled = bool(idle)
                    if front_polled:
                        poller.register(front, zmq.POLLIN)
                    else:
                        poller.unregister(front)
                events = dict(poller.poll(100))
                if events.pop(back, 0):
                    self._from_worker(back.recv_multipart(), by_id, idle, front, failures)
                if events.pop(front, 0) and idle:
                    self._to_worker(front.recv_multipart(), by_id, idle, front, back)
                now = time.monotonic()
                if events or respawn_at or now >= next_check:  # a sentinel fired, or now and then
                    next_check = now + 0.5
                    for w in list(by_id.values()):
                        if w.process.exitcode is not None:
                            poller.unregister(w.process.sentinel)
                            self._worker_died(w, by_id, idle, front, respawn_at, failures)
                    for index, when in list(respawn_at.items()):
                        if now >= when and not self._stop.is_set():
                            del respawn_at[index]
                            old, w = self._workers[index], self._spawn(index)
                            self._workers[index] = w
                            by_id[w.identity] = w
                            poller.register(w.process.sentinel, zmq.POLLIN)
                            self.stats["restarts"] += 1
                            try:
                                old.process.close()  # its sentinel fd: a crash-looping server must not leak them
                            except ValueError:
                                pass
                    while True:  # drain start-up reports so the queue never fills
                        try:
                            kind, index, info = self._status.get_nowait()
                        except (queue.Empty, OSError, ValueError):
                            break
                        if kind == "failed":
                            log.error("worker %d failed to start: %s", index, info)
        except Exception:  # noqa: BLE001  - a bug here must not hang clients silently
            log.exception("broker failed; stopping the server")
            self._stop.set()

    def _from_worker(self, frames, by_id, idle, front, failures):
        w = by_id.get(frames[0])
        if w is None or len(frames) < 2:
            return
        kind = frames[1]
        if kind == _READY:
            w.ready = True
            failures[w.index] = 0
            idle.append(w)
            return
        if w.envelope is not None and len(frames) == 3:
            if kind == _ERROR:
                self.stats["error_replies"] += 1
            front.send_multipart(w.envelope + [frames[2]], copy=False)
        w.envelope = None
        idle.append(w)

    def _to_worker(self, frames, by_id, idle, front, back):
        envelope, body = _split_envelope(frames)
        self.stats["requests"] += 1
        while idle:
            w = idle.popleft()
            if w.identity not in by_id or w.process.exitcode is not None:
                continue
            try:
                back.send_multipart([w.identity, _REQUEST] + body, copy=False)
            except zmq.ZMQError:  # gone between its last message and now: try the next one
                continue
            w.envelope = envelope
            return
        self.stats["error_replies"] += 1
        front.send_multipart(envelope + [wire.serialize_error("server error: no worker could take the request")])

    def _worker_died(self, w, by_id, idle, front, respawn_at, failures):
        by_id.pop(w.identity, None)
        if w in idle:
            idle.remove(w)
        w.process.join(0)
        how = _exit_text(w.process.exitcode)
        if w.envelope is not None:
            # the predict function itself crashed (segfault, abort, OOM kill): that request is
            # the one that did it, and it gets an answer instead of a client timeout
            self.stats["worker_crashes"] += 1
            self.stats["error_replies"] += 1
            front.send_multipart(w.envelope + [wire.serialize_error(
                f"predict failed: the worker crashed ({how}) while answering this request; "
                f"it has been restarted")])
            log.warning("worker %d (pid %s) crashed with %s while answering a request "
                        "(crash #%d); restarting", w.index, w.process.pid, how, self.stats["worker_crashes"])
        else:
            log.warning("worker %d (pid %s) exited with %s; restarting", w.index, w.process.pid, how)
        delay = 0.0
        if not w.ready:  # it never came up: back off before the next try
            failures[w.index] += 1
            delay = min(_MAX_BACKOFF, _BACKOFF * 2 ** (failures[w.index] - 1))
        respawn_at[w.index] = time.monotonic() + delay

    def run_forever(self, poll=0.5):
        """Wait until :meth:`request_stop` (or a signal handler) asks to stop."""
        while not self._stop.wait(poll):
            pass
        self.stop()

    def request_stop(self, *_):
        """Safe from a signal handler: the supervising loop does the actual shutdown."""
        self._stop.set()

    def stop(self, grace=5.0):
        self._stop.set()
        if self._broker_thread is not None:
            self._broker_thread.join(grace)
            self._broker_thread = None
            log.info("served %d request(s): %d error replies, %d worker crash(es), %d restart(s)",
                     self.stats["requests"], self.stats["error_replies"], self.stats["worker_crashes"],
                     self.stats["restarts"])
        procs = [w.process for w in self._workers]
        for p in procs:
            if p.exitcode is None:
                p.terminate()  # SIGTERM: the worker finishes its request, then exits
        deadline = time.monotonic() + grace
        for p in procs:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.exitcode is None:
                log.warning("worker %s did not exit in %.1f s; killing it", p.pid, grace)
                p.kill()
                p.join(1.0)
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
    add_debug_argument(ap)
    return ap


def predictor_options(args):
    """The Predictor keyword arguments named by the flags of :func:`add_server_arguments`,
    checked here so that a bad combination fails before any worker is spawned."""
    opts = dict(num_threads=args.num_threads, use_onednn=not args.no_onednn, use_gpu=args.use_gpu,
                precision=args.precision, backend=args.backend)
    check_options(opts["precision"], opts["backend"], opts["use_gpu"], opts["use_onednn"])
    return opts


def wait_ready(proc, timeout):
    """The address a server started as ``proc`` (``subprocess.Popen`` with ``stdout=PIPE, text=True``)
    printed on its ``ready <address>`` line (see :func:`serve`), or None if it exited or printed
    none within ``timeout`` seconds. For launchers, tests and benchmarks."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if select.select([proc.stdout], [], [], 0.5)[0]:
            line = proc.stdout.readline()
            if line.startswith("ready "):
                return line.split()[1]
    return None


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
