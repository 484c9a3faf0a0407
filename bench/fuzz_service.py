"""Fuzz both ZeroMQ servers with malformed requests, a valid request after each (issue 12).

    python bench/fuzz_service.py [--n 1000] [--n_big 1000] [--repo DIR] [--servers export,encoder]

Builds a small random ERNIE (vocab 5917, 2 layers, hidden 32, 64 positions), exports it twice
(classifier head for ``python -m propeller.tools.start_server``, pooler encoder for
``ernie/service/encoder_server.py``) and starts both servers from ``--repo`` (default: this
checkout; point it at an older checkout to measure the "before"). Then, through a raw ZeroMQ
REQ socket, per server and per kind of malformed request, ``--n`` requests (``--n_big`` of the
50 MB ones), each followed by a valid request whose answer is compared with an in-process
prediction:

* malformed: error reply expected; a data reply is a **wrong answer** (for bit flips that still
  decode to a valid request, the reply must equal the local prediction of what was sent);
* follow-up: the right answer expected; anything else is a wrong answer;
* **timeout**: no reply in ``--timeout`` s (the socket is replaced);
* **worker deaths**: the server's log lines saying a worker exited or crashed;
* RSS of the server process and its workers before and after.

Prints the CPU model and a markdown table. A fuzz benchmark, not a timed one.
"""
import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import zmq

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from propeller.service import wire  # noqa: E402
from propeller.service.server import wait_ready  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_tasks import machine  # noqa: E402  (CPU model and flags, as every benchmark prints)

VOCAB, TYPES, MAX_POS, HIDDEN = 5917, 2, 64, 32
KINDS = ("multipart", "token_ids", "type_ids", "broadcast_dims", "dtype", "rank", "slot_count",
         "random_bytes", "bit_flips", "zero_rows", "past_max_positions", "50MB")


def tree_rss_mb(pid):
    """RSS of ``pid`` and its children (from /proc), MB."""
    pids, total = {pid}, 0
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        pids.add(int(p))
            except (OSError, IndexError, ValueError):
                pass
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


# ----------------------------------------------------------------------------- models
def build_models(work):
    import paddle
    from ernie.checkpoint import save_pretrained
    from ernie.export import export_ernie
    from ernie.modeling import ErnieConfig, ErnieForSequenceClassification
    paddle.seed(12)
    cfg = ErnieConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=MAX_POS, type_vocab_size=TYPES)
    ckpt = os.path.join(work, "ckpt")
    save_pretrained(ErnieForSequenceClassification(cfg, num_labels=2), ckpt)
    cls_dir, enc_dir = os.path.join(work, "cls_export"), os.path.join(work, "enc_export")
    export_ernie(ckpt, cls_dir, task="sequence_classification")
    export_ernie(ckpt, enc_dir, encode_layer="pooler", with_sequence=False)
    return cls_dir, enc_dir


class Local:
    """The in-process reference of a server: predict(arrays) -> outputs, ValueError if invalid."""

    def __init__(self, kind, export_dir):
        from propeller.inference.predictor import Predictor
        if kind == "export":
            self.fn = Predictor(export_dir).predict
        else:
            from ernie.service.encoder_server import EncoderPredict
            self.fn = EncoderPredict(export_dir)

    def __call__(self, arrays):
        return self.fn(arrays)


# ----------------------------------------------------------------------------- servers
def start_server(kind, export_dir, repo, log_path):
    if kind == "export":
        cmd = [sys.executable, "-m", "propeller.tools.start_server", "-m", export_dir]
    else:
        cmd = [sys.executable, os.path.join(repo, "ernie", "service", "encoder_server.py"), "-m", export_dir]
    cmd += ["-p", "0", "--num_workers", "1", "--cpu_affinity", "none"]
    env = dict(os.environ, PYTHONPATH=repo)
    log = open(log_path, "w+")
    proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    address = wait_ready(proc, 300)
    if address is None:
        proc.kill()
        log.seek(0)
        raise RuntimeError(f"{kind} server did not start: {log.read()[-3000:]}")
    return proc, address, log


def worker_deaths(log):
    log.flush()
    with open(log.name, encoding="utf-8", errors="replace") as f:
        return sum(1 for line in f if "restarting" in line and "worker" in line)


# ----------------------------------------------------------------------------- requests
def valid_arrays(rng, kind, b=None, s=None):
    b = b or int(rng.integers(1, 5))
    s = s or int(rng.integers(3, 20))
    src = rng.integers(1, VOCAB, size=(b, s), dtype=np.int64)
    sent = rng.integers(0, TYPES, size=(b, s), dtype=np.int64)
    if kind == "encoder" and rng.random() < 0.3:
        return [src]
    return [src, sent]


def malformed(rng, kind, which, good, big):
    """One malformed request: a list of frames."""
    a = valid_arrays(rng, "export")
    src, sent = a
    b, s = src.shape
    if which == "multipart":
        n = int(rng.integers(2, 5))
        return [good] * (n - 1) + [rng.choice([good, b"", b"x"])]
    if which == "token_ids":
        bad = int(rng.choice([VOCAB, 10 * VOCAB, 2 ** 31, 2 ** 62, -1, -VOCAB, -2 ** 40, -2 ** 63,
                              int(rng.integers(VOCAB, 2 ** 63 - 1)), -int(rng.integers(1, 2 ** 63 - 1))]))
        src[rng.integers(0, b), rng.integers(0, s)] = bad
    elif which == "type_ids":
        sent[rng.integers(0, b), rng.integers(0, s)] = int(rng.choice([-1, TYPES, 2 ** 31, -2 ** 63, 2 ** 62]))
    elif which == "broadcast_dims":
        choice = rng.integers(0, 3)
        if choice == 0:
            src = np.concatenate([src, src])  # [2B, S] vs [B, S]
            sent = sent[:1]
            if src.shape[0] == 1:
                src = np.concatenate([src, src])
        elif choice == 1:
            sent = sent[:, :max(1, s - int(rng.integers(1, s)))] if s > 1 else np.zeros((b, 2), np.int64)
        else:
            sent = np.zeros((b, 1), np.int64)
            if s == 1:
                sent = np.zeros((b, 2), np.int64)
    elif which == "dtype":
        dt = rng.choice([np.float32, np.float64, np.uint64, np.float16])
        if rng.random() < 0.5:
            src = src.astype(dt)
        else:
            sent = sent.astype(dt)
    elif which == "rank":
        choice = rng.integers(0, 3)
        src = src.reshape(-1) if choice == 0 else (src[..., None] if choice == 1 else np.array(5, np.int64))
    elif which == "slot_count":
        return [wire.serialize([src, sent] + [sent] * int(rng.integers(1, 4)))] if rng.random() < 0.8 \
            else [wire.serialize([])]
    elif which == "random_bytes":
        return [rng.bytes(int(rng.integers(0, 2000)))]
    elif which == "bit_flips":
        buf = bytearray(good)
        for _ in range(int(rng.integers(1, 9))):
            i = int(rng.integers(0, len(buf)))
            buf[i] ^= 1 << int(rng.integers(0, 8))
        return [bytes(buf)]
    elif which == "zero_rows":
        src, sent = src[:0], sent[:0]
        if rng.random() < 0.3:
            src, sent = a[0][:, :0], a[1][:, :0]
    elif which == "past_max_positions":
        s2 = MAX_POS + int(rng.integers(1, 200))
        src = rng.integers(1, VOCAB, size=(b, s2), dtype=np.int64)
        sent = np.zeros((b, s2), np.int64)
    elif which == "50MB":
        return [big[int(rng.integers(0, len(big)))]]
    # the encoder server also takes [src_ids] alone: only when src itself is the bad part
    src_only = kind == "encoder" and which in ("token_ids", "rank", "zero_rows", "past_max_positions") \
        and rng.random() < 0.5
    if which == "dtype" and src.dtype == np.int64:  # sent carries the bad dtype
        src_only = False
    return [wire.serialize([src] if src_only else [src, sent])]


def big_messages(rng):
    """50 MB requests: a well-formed slot far past max_tokens, random bytes, dims that disagree
    with the data, and a [1, 6.5M] pair of ids."""
    n = 50 << 20
    huge = np.ones((1, n // 8), np.int64)
    s = wire.Slots()
    s.slots.add(type=3, dims=[7, 7], data=b"\x01" * n)
    return [wire.serialize([huge]), rng.bytes(n), s.SerializeToString(),
            wire.serialize([huge[:, : n // 16], huge[:, : n // 16]])]


# ----------------------------------------------------------------------------- the run
class Client:
    def __init__(self, address, timeout):
        self.address, self.timeout, self.ctx = address, timeout, zmq.Context()
        self.sock = None
        self._new()

    def _new(self):
        if self.sock is not None:
            self.sock.close(0)
        self.sock = self.ctx.socket(zmq.REQ)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(self.address)

    def ask(self, frames):
        """Reply bytes, or None on timeout (the socket is replaced)."""
        self.sock.send_multipart(frames)
        if not self.sock.poll(int(self.timeout * 1000), zmq.POLLIN):
            self._new()
            return None
        return self.sock.recv()

    def close(self):
        self.sock.close(0)
        self.ctx.term()


def same(got, want):
    return len(got) == len(want) and all(
        g.shape == w.shape and np.allclose(g, w, atol=1e-4, rtol=1e-4) for g, w in zip(got, want))


def judge(reply, expect):
    """'error', 'ok' or 'wrong' for a reply; ``expect`` is None (an error is right) or outputs."""
    try:
        got = wire.deserialize_reply(reply)
    except wire.ServerError:
        return "error" if expect is None else "wrong"
    except ValueError:
        return "wrong"
    return "ok" if expect is not None and same(got, expect) else "wrong"


def fuzz_server(kind, export_dir, args, rng):
    local = Local(kind, export_dir)
    proc, address, log = start_server(kind, export_dir, args.repo, os.path.join(args.work, f"{kind}.log"))
    rows = []
    try:
        client = Client(address, args.timeout)
        pool = []
        for _ in range(16):  # valid follow-ups with their in-process answers
            a = valid_arrays(rng, kind)
            pool.append((wire.serialize(a), local(a)))
        for msg, want in pool[:3]:  # warm up
            client.ask([msg])
        rss0 = tree_rss_mb(proc.pid)
        big = big_messages(rng) if "50MB" in args.kinds else None
        for which in args.kinds:
            n = args.n_big if which == "50MB" else args.n
            c = dict(kind=which, sent=0, error=0, right=0, wrong=0, timeouts=0, follow_wrong=0, follow_timeouts=0)
            deaths0, t0 = worker_deaths(log), time.monotonic()
            for i in range(n):
                good, good_out = pool[i % len(pool)]
                frames = malformed(rng, kind, which, good, big)
                expect = None
                if which == "bit_flips":  # a flip may leave a valid request: its answer must be right
                    try:
                        expect = local(wire.deserialize(frames[0]))
                    except Exception:  # noqa: BLE001  - invalid: an error reply is right
                        expect = None
                reply = client.ask(frames)
                c["sent"] += 1
                if reply is None:
                    c["timeouts"] += 1
                else:
                    verdict = judge(reply, expect)
                    c["error"] += verdict == "error"
                    c["right"] += verdict == "ok"  # a bit flip that left a valid request
                    c["wrong"] += verdict == "wrong"
                f_msg, f_out = pool[(i * 7 + 3) % len(pool)]
                reply = client.ask([f_msg])
                if reply is None:
                    c["follow_timeouts"] += 1
                elif judge(reply, f_out) != "ok":
                    c["follow_wrong"] += 1
            time.sleep(0.3)  # let the server log a death before counting
            c["deaths"] = worker_deaths(log) - deaths0
            c["seconds"] = time.monotonic() - t0
            rows.append(c)
            print(f"  {kind:8s} {which:18s} {c}", flush=True)
        rss1 = tree_rss_mb(proc.pid)
        client.close()
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    return rows, rss0, rss1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="malformed requests of each kind")
    ap.add_argument("--n_big", type=int, default=1000, help="50 MB requests")
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--repo", default=REPO, help="checkout whose servers are fuzzed (default: this one)")
    ap.add_argument("--servers", default="export,encoder")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--seed", type=int, default=12)
    args = ap.parse_args()
    args.kinds = args.kinds.split(",")
    args.repo = os.path.abspath(args.repo)
    print(f"Machine: {machine()}; servers from {args.repo}", flush=True)
    rng = np.random.default_rng(args.seed)
    random.seed(args.seed)
    args.work = tempfile.mkdtemp(prefix="fuzz-service-")
    try:
        cls_dir, enc_dir = build_models(args.work)
        results = {}
        for kind in args.servers.split(","):
            results[kind] = fuzz_server(kind, cls_dir if kind == "export" else enc_dir, args, rng)
    finally:
        shutil.rmtree(args.work, ignore_errors=True)
    print()
    print("| server | kind | malformed sent | error replies | right answers (still valid) | wrong answers "
          "| timeouts | worker deaths | follow-ups wrong | follow-up timeouts | s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for kind, (rows, rss0, rss1) in results.items():
        tot = {k: sum(r[k] for r in rows) for k in ("sent", "error", "right", "wrong", "timeouts", "deaths",
                                                    "follow_wrong", "follow_timeouts")}
        for r in rows:
            print(f"| {kind} | {r['kind']} | {r['sent']} | {r['error']} | {r['right']} | {r['wrong']} | "
                  f"{r['timeouts']} | {r['deaths']} | {r['follow_wrong']} | {r['follow_timeouts']} | "
                  f"{r['seconds']:.0f} |")
        print(f"| **{kind}** | **all** | **{tot['sent']}** | **{tot['error']}** | **{tot['right']}** | "
              f"**{tot['wrong']}** | **{tot['timeouts']}** | **{tot['deaths']}** | **{tot['follow_wrong']}** | "
              f"**{tot['follow_timeouts']}** | |")
    print()
    for kind, (rows, rss0, rss1) in results.items():
        print(f"{kind} server RSS (server + workers): {rss0:.0f} MB before, {rss1:.0f} MB after")


if __name__ == "__main__":
    main()
