"""Serving: wire format, Predictor, and the ZeroMQ server/client over real sockets.

The server runs as a real subprocess (``python -m propeller.tools.start_server``) on
127.0.0.1, started once for the module; its answers are compared with an in-process
``paddle.inference`` Predictor and with the dygraph model.
"""
import json
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import paddle
import pytest
import zmq

from propeller.inference.export import resolve_model
from propeller.inference.predictor import Predictor, cpu_has_bf16
from propeller.service import server as srv
from propeller.service import wire
from propeller.service.client import InferenceClient, ServerError, ServiceTimeout

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB, MAX_POS, HIDDEN, CLASSES = 50, 160, 16, 4
MAX_TOKENS = 4096
MAX_BYTES = 1_000_000


class TinyModel(paddle.nn.Layer):
    """Embedding + Linear on the first token; two inputs and two outputs to check order."""

    def __init__(self):
        super().__init__()
        self.word = paddle.nn.Embedding(VOCAB, HIDDEN)
        self.pos = paddle.nn.Embedding(MAX_POS, HIDDEN)
        self.fc = paddle.nn.Linear(HIDDEN, CLASSES)
        self.proj = paddle.nn.Linear(HIDDEN, HIDDEN)

    def forward(self, src_ids, pos_ids):
        # only ops that also export in legacy-IR mode (tanh, sum, matmul do not there)
        first = (self.word(src_ids) + self.pos(pos_ids))[:, 0]
        return self.fc(first), self.proj(first)


def input_spec():
    S = paddle.static.InputSpec
    return [S([None, None], "int64", name="src_ids"), S([None, None], "int64", name="pos_ids")]


def make_inputs(rng, b, s):
    ids = rng.integers(0, VOCAB, size=(b, s), dtype=np.int64)
    pos = np.tile(np.arange(s, dtype=np.int64), (b, 1))
    return ids, pos


def dygraph(model, ids, pos):
    with paddle.no_grad():
        return [o.numpy() for o in model(paddle.to_tensor(ids), paddle.to_tensor(pos))]


# ---------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    paddle.seed(7)
    model = TinyModel()
    model.eval()
    d = tmp_path_factory.mktemp("svc_model")
    paddle.jit.save(model, str(d / "tiny"), input_spec=input_spec())
    paddle.save(model.state_dict(), str(d.parent / "tiny_state.pdparams"))
    return model, d


@pytest.fixture(scope="module")
def server(exported):
    _, d = exported
    err = open(d.parent / "server.stderr", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "propeller.tools.start_server", "-m", str(d), "-p", "0",
         "--num_workers", "2", "--max_tokens", str(MAX_TOKENS),
         "--max_message_bytes", str(MAX_BYTES)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=err, text=True)
    address = srv.wait_ready(proc, 60)
    if address is None:
        proc.kill()
        err.seek(0)
        pytest.fail(f"server did not start: {err.read()[-3000:]}")
    yield {"proc": proc, "address": address, "stderr": err}
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)
    err.close()


@pytest.fixture(scope="module")
def local(exported):
    return Predictor(str(exported[1]))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def children(pid):
    """Live child pids of ``pid`` (from /proc)."""
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid and fields[0] != "Z":
                    out.append(int(p))
            except (OSError, IndexError):
                pass
    return out


# ---------------------------------------------------------------------------------------
# wire format
# ---------------------------------------------------------------------------------------
TYPES = {"BOOL": (0, np.bool_), "INT16": (1, np.int16), "INT32": (2, np.int32),
         "INT64": (3, np.int64), "FP16": (4, np.float16), "FP32": (5, np.float32),
         "FP64": (6, np.float64), "SIZE_T": (19, np.uint64), "UINT8": (20, np.uint8),
         "INT8": (21, np.int8)}


@pytest.mark.parametrize("name", sorted(TYPES))
def test_wire_roundtrip_every_dtype(name):
    num, dt = TYPES[name]
    rng = np.random.default_rng(num)
    if dt is np.bool_:
        a = rng.random((3, 4, 2)) > 0.5
    elif np.issubdtype(dt, np.integer):
        info = np.iinfo(dt)
        a = rng.integers(info.min, info.max, size=(3, 4, 2), dtype=dt, endpoint=True)
    else:
        a = rng.standard_normal((3, 4, 2)).astype(dt)
    arrays = [a, a[:, ::2].T, np.array(a.flat[0]), a[:0]]  # strided, 0-d, empty
    buf = wire.serialize(arrays)
    back = wire.deserialize(buf)
    for x, y in zip(arrays, back):
        assert y.dtype == np.dtype(dt) and y.shape == x.shape
        np.testing.assert_array_equal(x, y)
    raw = wire.Slots.FromString(buf)
    assert [s.type for s in raw.slots] == [num] * 4
    assert list(raw.slots[0].dims) == [3, 4, 2]
    assert raw.slots[0].data == a.astype(np.dtype(dt).newbyteorder("<")).tobytes()


def test_wire_little_endian_and_big_endian_input():
    a = np.array([1, 256], dtype=">i4")
    raw = wire.Slots.FromString(wire.serialize([a]))
    assert raw.slots[0].data == b"\x01\x00\x00\x00\x00\x01\x00\x00"
    np.testing.assert_array_equal(wire.deserialize(wire.serialize([a]))[0], [1, 256])


def _slots(*slots):
    m = wire.Slots()
    for t, dims, data in slots:
        m.slots.add(type=t, dims=dims, data=data)
    return m.SerializeToString()


@pytest.mark.parametrize("buf,match", [
    (b"\xff\xff\xff", "not a valid Slots"),
    (_slots((7, [2], b"\0" * 16)), "unknown type 7"),
    (_slots((99, [1], b"\0")), "unknown type 99"),
    (_slots((3, [2, 3], b"\0" * 40)), "need 48 bytes"),
    (_slots((3, [2, -3], b"")), "negative dim"),
    (_slots((3, [1 << 40, 1 << 40], b"\0" * 8)), "need"),
    (_slots((20, [1] * 33, b"\0")), "rank 33"),
    (wire.serialize_error("boom"), "error reply"),
])
def test_wire_rejects_malformed(buf, match):
    with pytest.raises(ValueError, match=match):
        wire.deserialize(buf)


def test_wire_limits_and_unsupported():
    buf = wire.serialize([np.zeros(1000, np.int64)])
    with pytest.raises(ValueError, match="exceeds the limit"):
        wire.deserialize(buf, max_bytes=1000)
    with pytest.raises(ValueError, match="elements"):
        wire.deserialize(buf, max_elements=999)
    for bad in (np.zeros(2, np.complex64), np.array(["a"]), np.array([{}], dtype=object)):
        with pytest.raises(ValueError, match="not supported"):
            wire.serialize([bad])
    with pytest.raises(ServerError, match="boom"):
        wire.deserialize_reply(wire.serialize_error("boom"))
    assert wire.parse_error(wire.Slots.FromString(wire.serialize_error("x"))) == "x"


# ---------------------------------------------------------------------------------------
# Predictor
# ---------------------------------------------------------------------------------------
def test_predictor_matches_dygraph(exported, local):
    model, d = exported
    rng = np.random.default_rng(0)
    assert local.input_names == ["src_ids", "pos_ids"] and len(local.output_names) == 2
    assert [s.shape for s in local.input_specs] == [[-1, -1], [-1, -1]]
    by_prefix = Predictor(str(d / "tiny"), use_onednn=False)
    for b, s in [(1, 5), (7, 19), (3, 64)]:  # dynamic batch and sequence length
        ids, pos = make_inputs(rng, b, s)
        want = dygraph(model, ids, pos)
        for p in (local, by_prefix):
            got = p.predict([ids, pos])
            assert [g.shape for g in got] == [(b, CLASSES), (b, HIDDEN)]
            for g, w in zip(got, want):
                np.testing.assert_allclose(g, w, atol=1e-5, rtol=1e-5)
    ids32 = ids.astype(np.int32)  # a safe cast is done for the caller
    np.testing.assert_allclose(local.predict([ids32, pos])[0], want[0], atol=1e-5)


def test_predictor_rejects_bad_inputs(local):
    ids, pos = make_inputs(np.random.default_rng(1), 2, 4)
    for bad, match in [([ids], "takes 2 inputs"), ([ids.astype(np.float32), pos], "safely"),
                       ([ids[..., None], pos], "rank 3"), ([ids[:0], pos[:0]], "empty"),
                       ([ids + VOCAB, pos], "inference failed")]:
        with pytest.raises((ValueError, RuntimeError), match=match):
            local.predict(bad)
    assert local.predict([ids, pos])[0].shape == (2, CLASSES)  # still usable


def test_predictor_precision_option(exported, local):
    _, d = exported
    with pytest.raises(ValueError, match="precision must be one of"):
        Predictor(str(d), precision="fp16")
    with pytest.raises(ValueError, match="oneDNN"):
        Predictor(str(d), precision="bf16", use_onednn=False)
    if not cpu_has_bf16():
        pytest.skip("this CPU has no native bf16 (avx512_bf16/amx_bf16)")
    # the server flags reach the Predictor through the worker factory
    args = srv.add_server_arguments(__import__("argparse").ArgumentParser()).parse_args(["--precision", "bf16"])
    bf16 = srv.PredictorFactory(str(d), **srv.predictor_options(args))()
    ids, pos = make_inputs(np.random.default_rng(3), 4, 32)
    for g, w in zip(bf16([ids, pos]), local.predict([ids, pos])):
        diff = np.abs(g - w).max()
        assert 1e-6 < diff < 0.05 * max(1.0, np.abs(w).max()), diff  # bf16 ran, and stays close


def test_predictor_onnxruntime_backend(exported, local, tmp_path, monkeypatch, capfd):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("paddle2onnx")
    model, d = exported
    with pytest.raises(ValueError, match="backend must be one of"):
        Predictor(str(d), backend="tvm")
    with pytest.raises(ValueError, match="fp32 on the CPU"):
        Predictor(str(d), backend="onnxruntime", precision="bf16")
    copy = tmp_path / "export"  # a copy, so the module's export dir stays as it was
    __import__("shutil").copytree(d, copy)
    args = srv.add_server_arguments(__import__("argparse").ArgumentParser()).parse_args(["--backend", "onnxruntime"])
    capfd.readouterr()
    ort = Predictor(str(copy), **srv.predictor_options(args))
    out, err = capfd.readouterr()  # the converter's log goes to stderr: a server's stdout is for "ready ..."
    assert "Paddle2ONNX" in err and "Paddle2ONNX" not in out
    assert os.path.isfile(copy / "tiny.onnx") and ort.onnx_file == str(copy / "tiny.onnx")
    assert ort.input_names == local.input_names and len(ort.output_names) == 2
    rng = np.random.default_rng(5)
    for b, s in [(1, 5), (7, 19)]:  # dynamic batch and sequence length
        ids, pos = make_inputs(rng, b, s)
        for g, w in zip(ort.predict([ids, pos]), dygraph(model, ids, pos)):
            np.testing.assert_allclose(g, w, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="rank 3"):
        ort.predict([ids[..., None], pos])
    with pytest.raises(RuntimeError, match="inference failed"):
        ort.predict([ids + VOCAB, pos])  # out of the embedding table: an error, not a crash
    # the conversion is cached, and redone when the export's files change in any way (an
    # older export copied back keeps its old mtime: it must not meet a newer .onnx)
    mtime = os.stat(copy / "tiny.onnx").st_mtime_ns
    Predictor(str(copy), backend="onnxruntime")
    assert os.stat(copy / "tiny.onnx").st_mtime_ns == mtime
    os.utime(copy / "tiny.pdiparams", ns=(mtime - 10 ** 10, mtime - 10 ** 10))
    Predictor(str(copy), backend="onnxruntime")
    assert os.stat(copy / "tiny.onnx").st_mtime_ns > mtime
    # a read-only export dir (faked: root may write anywhere): converted once into a per-user
    # cache named by the same key, then reused
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if os.fspath(p) == str(copy) else real_access(p, mode))
    a = Predictor(str(copy), backend="onnxruntime").onnx_file
    made = os.stat(a).st_mtime_ns
    b = Predictor(str(copy), backend="onnxruntime").onnx_file
    assert a == b and not a.startswith(str(copy)) and os.stat(b).st_mtime_ns == made


def test_worker_cpu_plan(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {4, 5, 6, 7})
    assert srv.worker_cpus(2, 1) == [[4], [5]]
    assert srv.worker_cpus(2, 2) == [[4, 5], [6, 7]]
    assert srv.worker_cpus(3, 2) is None  # does not fit: the OS places them
    assert srv.worker_cpus(2, 1, "none") is None
    with pytest.raises(ValueError, match="cpu_affinity"):
        srv.worker_cpus(1, 1, "all")
    # a factory that does not say how many threads it runs is never pinned
    assert srv.Server(lambda: None, num_workers=2).cpus is None
    assert srv.Server(srv.PredictorFactory("x", num_threads=2), num_workers=2).cpus == [[4, 5], [6, 7]]
    # bad option combinations fail in the server process, before any worker is spawned
    ap = srv.add_server_arguments(__import__("argparse").ArgumentParser())
    with pytest.raises(ValueError, match="fp32 on the CPU"):
        srv.predictor_options(ap.parse_args(["--backend", "onnxruntime", "--precision", "bf16"]))


def test_predictor_legacy_pdmodel_and_dir_resolution(exported, tmp_path):
    model, d = exported
    legacy = tmp_path / "legacy"
    code = ("import sys, paddle; sys.path.insert(0, sys.argv[1]); import test_service as t; "
            "m = t.TinyModel(); m.set_state_dict(paddle.load(sys.argv[2])); m.eval(); "
            "paddle.jit.save(m, sys.argv[3], input_spec=t.input_spec())")
    env = dict(os.environ, FLAGS_enable_pir_api="0")
    r = subprocess.run([sys.executable, "-c", code, os.path.join(REPO, "tests"),
                        str(d.parent / "tiny_state.pdparams"), str(legacy / "old")],
                       env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (legacy / "old.pdmodel").is_file() and not (legacy / "old.json").exists()
    p = Predictor(str(legacy))
    assert p.model_file.endswith(".pdmodel") and p.input_names == ["src_ids", "pos_ids"]
    assert [s.name for s in p.input_specs] == p.input_names
    ids, pos = make_inputs(np.random.default_rng(2), 4, 9)
    want = dygraph(model, ids, pos)
    for g, w in zip(p.predict([ids, pos]), want):
        np.testing.assert_allclose(g, w, atol=1e-5, rtol=1e-5)
    try:  # ONNX Runtime takes the inputs in the program's feed order too (block.vars is sorted)
        import onnxruntime  # noqa: F401
        import paddle2onnx  # noqa: F401
    except ImportError:
        pass
    else:
        ort = Predictor(str(legacy), backend="onnxruntime")
        assert ort.input_names == ["src_ids", "pos_ids"]
        for g, w in zip(ort.predict([ids, pos]), want):
            np.testing.assert_allclose(g, w, atol=1e-5, rtol=1e-5)
    # two exports in one dir: ambiguous until model_meta.json names one
    both = tmp_path / "both"
    both.mkdir()
    for f in ("old.pdmodel", "old.pdiparams"):
        (both / f).write_bytes((legacy / f).read_bytes())
    for f in ("tiny.json", "tiny.pdiparams"):
        (both / f).write_bytes((d / f).read_bytes())
    with pytest.raises(ValueError, match="several models"):
        resolve_model(str(both))
    (both / "model_meta.json").write_text(json.dumps({"prefix": "old"}))
    assert resolve_model(str(both))[0].endswith("old.pdmodel")
    with pytest.raises(FileNotFoundError):
        resolve_model(str(tmp_path / "nothing"))


class SmallEncoder(paddle.nn.Layer):
    """A small transformer: its oneDNN kernels break when a predictor migrates between
    threads while another runs (TinyModel's embedding + fc do not)."""

    def __init__(self):
        super().__init__()
        self.word = paddle.nn.Embedding(VOCAB, 64)
        layer = paddle.nn.TransformerEncoderLayer(64, 4, 256, dropout=0.0, activation="gelu")
        self.encoder = paddle.nn.TransformerEncoder(layer, 2)
        self.fc = paddle.nn.Linear(64, 2)

    def forward(self, src_ids):
        return self.fc(self.encoder(self.word(src_ids))[:, 0])


def test_predictors_shared_by_threads(tmp_path):
    """8 threads share a pool of 2 predictors, shapes changing: each thread must end up on
    its own clone, or oneDNN fails with std::exception."""
    paddle.seed(3)
    model = SmallEncoder()
    model.eval()
    paddle.jit.save(model, str(tmp_path / "enc"),
                    input_spec=[paddle.static.InputSpec([None, None], "int64", name="ids")])
    preds = [Predictor(str(tmp_path)) for _ in range(2)]
    rng = np.random.default_rng(9)
    x32, x1 = make_inputs(rng, 32, 128)[0], make_inputs(rng, 1, 128)[0]
    with paddle.no_grad():
        want = {n: model(paddle.to_tensor(x)).numpy() for n, x in ((1, x1), (32, x32))}
    preds[0].predict([x32])
    pool, errors = queue.Queue(), []
    for p in preds:
        pool.put(p)

    def run(x, n):
        for _ in range(6):
            p = pool.get()
            try:
                np.testing.assert_allclose(p.predict([x])[0], want[n], atol=1e-4, rtol=1e-4)
            except Exception as e:  # noqa: BLE001  - reported by the main thread
                errors.append(e)
            finally:
                pool.put(p)

    for x, n in ((x1, 1), (x32, 32)):
        threads = [threading.Thread(target=run, args=(x, n)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert not errors, errors[:2]


# ---------------------------------------------------------------------------------------
# server + client over real sockets
# ---------------------------------------------------------------------------------------
def test_server_matches_local_predictor_and_dygraph(server, local, exported):
    model, _ = exported
    assert server["address"].startswith("tcp://127.0.0.1:")
    rng = np.random.default_rng(3)
    with InferenceClient(server["address"], batch_size=3, num_coroutine=4, timeout=10) as c:
        for b, s in [(1, 6), (10, 17), (32, 128)]:  # 10 rows -> 4 chunks sent in parallel
            ids, pos = make_inputs(rng, b, s)
            got = c(ids, pos)
            want = local.predict([ids, pos])
            assert [g.shape for g in got] == [w.shape for w in want]
            for g, w in zip(got, want):
                np.testing.assert_allclose(g, w, atol=1e-6, rtol=1e-6)
            for g, w in zip(got, dygraph(model, ids, pos)):
                np.testing.assert_allclose(g, w, atol=1e-5, rtol=1e-5)


def test_eight_concurrent_clients(server, local):
    rng = np.random.default_rng(4)
    jobs = [[make_inputs(rng, int(rng.integers(1, 12)), int(rng.integers(1, 40)))
             for _ in range(6)] for _ in range(8)]
    want = [[local.predict(list(x)) for x in job] for job in jobs]
    results, errors = [None] * 8, []

    def run(k):
        try:
            with InferenceClient(server["address"], batch_size=4, num_coroutine=2,
                                 timeout=15) as c:
                results[k] = [c(*x) for x in jobs[k]]
        except Exception as e:  # noqa: BLE001  - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    for k in range(8):
        for got, w in zip(results[k], want[k]):
            for g, ww in zip(got, w):
                np.testing.assert_allclose(g, ww, atol=1e-6, rtol=1e-6)


def _fuzz_messages(rng, n):
    ids, pos = make_inputs(np.random.default_rng(5), 2, 4)
    good = [(3, list(ids.shape), ids.tobytes()), (3, list(pos.shape), pos.tobytes())]
    big = np.zeros((100, 100), np.int64)  # 10,000 tokens > MAX_TOKENS, 80 KB < MAX_BYTES
    makers = [
        lambda: rng.randbytes(rng.randint(1, 300)),                       # garbage
        lambda: _slots((rng.choice([7, 8, 18, 22, 99, 1000]), [2, 4], b"\0" * 64),
                       good[1]),                                          # unknown type
        lambda: _slots((3, [2, 4], b"\0" * rng.choice([0, 8, 63, 65])),
                       good[1]),                                          # wrong dims
        lambda: _slots((3, [2, 4, 1], ids.tobytes()), good[1]),           # wrong rank
        lambda: _slots((3, [1 << 40, 1 << 30], b"\0" * 64), good[1]),     # oversized dims
        lambda: _slots((3, [100, 100], big.tobytes()), (3, [100, 100], big.tobytes())),
        lambda: _slots((3, [2, -4], b""), good[1]),                       # negative dims
        lambda: _slots(good[0]),                                          # one input short
        lambda: _slots((5, [2, 4], np.zeros(8, np.float32).tobytes()), good[1]),  # dtype
        lambda: _slots((3, [2, 4], (ids + 1000).tobytes()), good[1]),     # id out of vocab
        lambda: _slots((3, [0, 4], b""), (3, [0, 4], b"")),               # empty batch
        lambda: b"",                                                      # no tensors
        lambda: wire.serialize_error("a client sending an error"),
        lambda: _slots((20, [MAX_BYTES + 10], b"\0" * (MAX_BYTES + 10))),  # too many bytes
    ]
    return [makers[i % len(makers)]() for i in range(n)]


def test_fuzzed_requests_get_error_replies(server, local):
    rng = random.Random(11)
    ctx = zmq.Context()
    req = ctx.socket(zmq.REQ)
    dealer = ctx.socket(zmq.DEALER)  # raw DEALER: the empty delimiter frame is ours to add
    for s in (req, dealer):
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RCVTIMEO, 10000)
        s.connect(server["address"])
    try:
        msgs = _fuzz_messages(rng, 200)
        for i, m in enumerate(msgs):
            if i % 2:
                dealer.send_multipart([b"", m])
                delim, reply = dealer.recv_multipart()
                assert delim == b""
            else:
                req.send(m)
                reply = req.recv()
            err = wire.parse_error(wire.Slots.FromString(reply))
            assert err, f"message {i} ({m[:40]!r}) was not answered with an error"
            assert err.startswith(("bad request:", "predict failed:")), err
        ids, pos = make_inputs(np.random.default_rng(6), 3, 8)
        req.send(wire.serialize([ids, pos]))
        got = wire.deserialize_reply(req.recv())
        for g, w in zip(got, local.predict([ids, pos])):
            np.testing.assert_allclose(g, w, atol=1e-6)
    finally:
        req.close(0)
        dealer.close(0)
        ctx.term()
    server["stderr"].seek(0)
    assert "restarting" not in server["stderr"].read()  # no worker died on the way
    assert server["proc"].poll() is None


def test_client_raises_server_error_and_keeps_working(server, local):
    ids, pos = make_inputs(np.random.default_rng(7), 2, 5)
    with InferenceClient(server["address"], timeout=10) as c:
        with pytest.raises(ServerError, match="expected >= 0 and < 50") as ei:
            c(ids + 1000, pos)
        assert server["address"] in str(ei.value)
        with pytest.raises(ServerError, match="tokens"):
            c(np.zeros((1, MAX_TOKENS + 1), np.int64), np.zeros((1, MAX_TOKENS + 1), np.int64))
        np.testing.assert_allclose(c(ids, pos)[0], local.predict([ids, pos])[0], atol=1e-6)
    port = server["address"].rsplit(":", 1)[1]
    with InferenceClient(f"localhost:{port}", timeout=10) as c:  # README-style address
        np.testing.assert_allclose(c(ids, pos)[1], local.predict([ids, pos])[1], atol=1e-6)


def test_client_timeout_names_address_and_recovers():
    addr = f"tcp://127.0.0.1:{free_port()}"  # nothing listens here yet
    x = np.zeros((2, 3), np.int64)
    c = InferenceClient(addr, timeout=0.3)
    t0 = time.monotonic()
    with pytest.raises(ServiceTimeout, match=addr.replace(".", r"\.")):
        c(x)
    assert time.monotonic() - t0 < 3
    # A peer that ignores the first request and answers later ones: after the timeout the
    # client must still work (its stuck REQ socket was replaced).
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.bind(addr)
    stop = threading.Event()

    def peer():
        first = True
        while not stop.is_set():
            if router.poll(100):
                frames = router.recv_multipart()
                if first:
                    first = False
                    continue
                arrays = wire.deserialize(frames[-1])
                router.send_multipart(frames[:-1] + [wire.serialize([a * 2 for a in arrays])])

    th = threading.Thread(target=peer)
    th.start()
    try:
        with pytest.raises(ServiceTimeout):
            c(x + 1)  # the peer swallows this one
        np.testing.assert_array_equal(c(x + 5)[0], (x + 5) * 2)
        np.testing.assert_array_equal(c(x + 6)[0], (x + 6) * 2)
    finally:
        stop.set()
        th.join(5)
        router.close(0)
        ctx.term()
        c.close()


def test_workers_pinned_to_their_own_cpus(server):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 CPUs for 2 pinned workers")
    workers = [k for k in children(server["proc"].pid) if "spawn_main" in cmdline(k)]
    assert len(workers) == 2, [cmdline(k) for k in children(server["proc"].pid)]
    cpus = [os.sched_getaffinity(k) for k in workers]
    assert all(len(c) == 1 for c in cpus) and cpus[0] != cpus[1], cpus


def test_worker_crash_is_survived(server, local):
    workers = [w for w in children(server["proc"].pid) if "spawn_main" in cmdline(w)]
    assert len(workers) == 2, workers
    os.kill(workers[0], signal.SIGKILL)
    time.sleep(0.3)
    ids, pos = make_inputs(np.random.default_rng(8), 2, 6)
    with InferenceClient(server["address"], timeout=10) as c:
        for _ in range(6):  # the surviving worker answers
            np.testing.assert_allclose(c(ids, pos)[0], local.predict([ids, pos])[0], atol=1e-6)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # a replacement worker process appears
        now = [w for w in children(server["proc"].pid) if "spawn_main" in cmdline(w)]
        if len(now) == 2 and workers[0] not in now:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the dead worker was not replaced")


def test_sigterm_shuts_down_cleanly(server):
    proc = server["proc"]
    kids = children(proc.pid)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    assert time.monotonic() - t0 < 8
    time.sleep(0.2)
    assert len(kids) >= 2
    left = [k for k in kids if alive(k)]
    assert not left, f"children left running: {[cmdline(k) for k in left]}"
    with socket.socket() as s:  # the port is released
        s.bind(("127.0.0.1", int(server["address"].rsplit(":", 1)[1])))
