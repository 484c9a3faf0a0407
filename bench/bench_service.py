"""Benchmark: the ZeroMQ inference server vs calling the Predictor in-process.

    python bench/bench_service.py [--seconds 3] [--workers 2] [--json out.json]

Model: a small transformer classifier (vocab 8000, hidden 128, 2 layers, 4 heads, FFN 512)
exported with ``paddle.jit.save`` into a temp dir. Inputs (src_ids, pos_ids) int64 [B, 128].
For batch 1 and 32 and 1 and 8 concurrent clients it reports requests/s and p50/p99 latency:

* ``inproc``: ``Predictor.predict`` called directly (with 8 clients: threads sharing a pool of
  ``--workers`` predictors, the same compute the server has);
* ``server``: ``python -m propeller.tools.start_server`` with ``--workers`` processes, each
  client its own ``InferenceClient``;
* ``echo``: the same server machinery with a predict function that returns its input, i.e.
  the pure cost of serialisation + ZeroMQ + proxy + worker hop.

Every worker and predictor uses one math thread. Numbers are noisy on a shared machine.
"""
import argparse
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402

import propeller  # noqa: E402,F401  (CPU env tuning before paddle loads, as the server does)

SEQ, VOCAB = 128, 8000


def build_model_class():
    import paddle

    class SmallEncoder(paddle.nn.Layer):
        def __init__(self, hidden=128, layers=2, heads=4, classes=2):
            super().__init__()
            self.word = paddle.nn.Embedding(VOCAB, hidden)
            self.pos = paddle.nn.Embedding(512, hidden)
            layer = paddle.nn.TransformerEncoderLayer(hidden, heads, 4 * hidden, dropout=0.0,
                                                      activation="gelu")
            self.encoder = paddle.nn.TransformerEncoder(layer, layers)
            self.cls = paddle.nn.Linear(hidden, classes)

        def forward(self, src_ids, pos_ids):
            h = self.encoder(self.word(src_ids) + self.pos(pos_ids))
            return self.cls(h[:, 0])

    return SmallEncoder


def export(d):
    import paddle
    paddle.seed(0)
    m = build_model_class()()
    m.eval()
    S = paddle.static.InputSpec
    paddle.jit.save(m, os.path.join(d, "enc"),
                    input_spec=[S([None, None], "int64", name="src_ids"),
                                S([None, None], "int64", name="pos_ids")])


class Echo:
    """Predict-function factory for the echo server (picklable: module level)."""

    def __call__(self):
        return lambda arrays: arrays


def inputs(batch):
    rng = np.random.default_rng(batch)
    return (rng.integers(1, VOCAB, size=(batch, SEQ), dtype=np.int64),
            np.tile(np.arange(SEQ, dtype=np.int64), (batch, 1)))


def run_round(calls, seconds):
    """One thread per call() for ``seconds``; returns (latencies in ms, wall seconds)."""
    lat, errors, lock = [], [], threading.Lock()
    barrier = threading.Barrier(len(calls) + 1)

    def worker(call):
        barrier.wait()
        mine, end = [], time.perf_counter() + seconds
        try:
            while True:
                t = time.perf_counter()
                if t > end:
                    break
                call()
                mine.append((time.perf_counter() - t) * 1e3)
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        with lock:
            lat.extend(mine)

    ths = [threading.Thread(target=worker, args=(c,)) for c in calls]
    for t in ths:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in ths:
        t.join(seconds + 120)  # a wedged call must not hang the benchmark forever
    if errors:
        raise errors[0]
    return lat, time.perf_counter() - t0


def measure(kinds, n_clients, seconds, rounds=5, warmup=3):
    """Interleave short rounds of each kind so drifting background load hits all alike.

    ``kinds``: name -> factory of one client's ``call()``; each client warms up first.
    """
    calls = {k: [f() for _ in range(n_clients)] for k, f in kinds.items()}
    for cs in calls.values():
        for c in cs:
            for _ in range(warmup):
                c()
    lat = {k: [] for k in kinds}
    wall = {k: 0.0 for k in kinds}
    for _ in range(rounds):
        for k, cs in calls.items():
            l, w = run_round(cs, seconds / rounds)
            lat[k] += l
            wall[k] += w
    out = {}
    for k in kinds:
        a = np.array(lat[k])
        out[k] = {"req_s": len(a) / wall[k], "p50_ms": float(np.percentile(a, 50)),
                  "p99_ms": float(np.percentile(a, 99)), "n": int(len(a))}
    return out


def start_server(args_list):
    proc = subprocess.Popen([sys.executable] + args_list, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if not line.startswith("ready "):
        proc.kill()
        raise RuntimeError(f"server failed to start: {line!r}")
    return proc, line.split()[1]


def stop_server(proc):
    proc.terminate()
    proc.wait(20)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0,
                    help="measuring time per kind and config (split into 5 interleaved rounds)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--clients", default="1,8")
    ap.add_argument("--json", default=None)
    ap.add_argument("--_echo_server", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._echo_server:
        from propeller.service.server import serve
        serve(Echo(), port=0, num_workers=args.workers)
        return

    from propeller.inference.predictor import Predictor
    from propeller.service.client import InferenceClient
    rows = []

    def report(kind, batch, clients, r):
        rows.append(dict(kind=kind, batch=batch, clients=clients, **r))
        print(f"{kind:7s} batch {batch:3d} clients {clients}: {r['req_s']:8.1f} req/s  "
              f"p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  (n={r['n']})", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench_service_") as d:
        export(d)
        preds = [Predictor(d, num_threads=1) for _ in range(args.workers)]
        pool = queue.Queue()
        for p in preds:
            pool.put(p)

        def inproc_call(x):
            def call():
                p = pool.get()
                try:
                    p.predict(list(x))
                finally:
                    pool.put(p)
            return call

        model_srv, model_addr = start_server(
            ["-m", "propeller.tools.start_server", "-m", d, "-p", "0",
             "--num_workers", str(args.workers)])
        echo_srv, echo_addr = start_server([os.path.abspath(__file__), "--_echo_server",
                                            "--workers", str(args.workers)])
        clients = []

        def client_call(addr, x):
            def make():
                c = InferenceClient(addr, batch_size=128, num_coroutine=1, timeout=60)
                clients.append(c)
                return lambda: c(*x)
            return make

        try:
            for batch in [int(b) for b in args.batches.split(",")]:
                x = inputs(batch)
                for n in [int(c) for c in args.clients.split(",")]:
                    res = measure({"inproc": lambda: inproc_call(x),
                                   "server": client_call(model_addr, x),
                                   "echo": client_call(echo_addr, x)}, n, args.seconds)
                    for kind, r in res.items():
                        report(kind, batch, n, r)
        finally:
            for c in clients:
                c.close()
            stop_server(model_srv)
            stop_server(echo_srv)
    print("\nserver - inproc at p50 (1 client):")
    for batch in sorted({r["batch"] for r in rows if r["clients"] == 1}):
        pick = {r["kind"]: r for r in rows if r["batch"] == batch and r["clients"] == 1}
        print(f"  batch {batch:3d}: {pick['server']['p50_ms'] - pick['inproc']['p50_ms']:+.2f} ms"
              f"  (echo round trip p50 {pick['echo']['p50_ms']:.2f} ms)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"workers": args.workers, "seq": SEQ, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
