"""The ERNIE embedding server and ErnieClient over real sockets on 127.0.0.1.

One server (``python ernie/service/encoder_server.py``, run by its script path as the README
shows) is started for the module on a checkpoint; its answers are compared with the dygraph
``ErnieModel`` and with the text predictor on an encoder export. The last test stops it with
SIGTERM and checks the clean exit.
"""
import os
import random
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import paddle
import pytest
import zmq

from ernie.checkpoint import load_into, save_pretrained
from ernie.modeling import ErnieConfig, ErnieForSequenceClassification, ErnieModel
from ernie.service.client import ErnieClient, ServerError, ServiceTimeout
from ernie.service.encoder_server import prepare_model
from propeller.service.server import wait_ready
from ernie.tokenizing import FullTokenizer
from ernie.export import export_ernie
from ernie.service.text_predictor import TextPredictor
from propeller.service import wire

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXTS = ["谁有狂三这张高清的", "英雄联盟什么英雄最好", "好", "这张高清图，谁有", "英雄联盟最好英雄是什么",
         "谁", "高清的英雄联盟", "什么最好"]
MAX_TOKENS = 4096


def write_vocab(path):
    chars = sorted({c for t in TEXTS for c in t})
    tokens = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"] + chars
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return len(tokens)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("enc_srv")
    vocab = d / "vocab.txt"
    n = write_vocab(vocab)
    config = ErnieConfig(vocab_size=n, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=64, hidden_act="relu", max_position_embeddings=64)
    paddle.seed(5)
    model = ErnieForSequenceClassification(config, num_labels=2)  # a fine-tuned model: head ignored
    save_pretrained(model, str(d / "ckpt"))
    enc = ErnieModel(config)
    load_into(enc, str(d / "ckpt"))
    enc.eval()
    return {"dir": d, "ckpt": d / "ckpt", "vocab": str(vocab), "enc": enc,
            "tok": FullTokenizer(str(vocab))}


def expected(ckpt, a, b=None, max_seqlen=128):
    """Pooled output of each example alone (no padding), from dygraph."""
    rows = []
    with paddle.no_grad():
        for i, t in enumerate(a):
            ids, types = ckpt["tok"].encode(t, None if b is None else b[i], max_seqlen)
            rows.append(ckpt["enc"](paddle.to_tensor([ids]), paddle.to_tensor([types]))[1].numpy()[0])
    return np.stack(rows)


def children(pid):
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


@pytest.fixture(scope="module")
def server(ckpt):
    err = open(ckpt["dir"] / "server.stderr", "w+")
    proc = subprocess.Popen(
        [sys.executable, os.path.join(REPO, "ernie", "service", "encoder_server.py"),
         "-m", str(ckpt["ckpt"]), "-p", "0", "--encode_layer", "pooler", "--num_workers", "2",
         "--max_tokens", str(MAX_TOKENS)],
        cwd=str(ckpt["dir"]), stdout=subprocess.PIPE, stderr=err, text=True)
    address = wait_ready(proc, 90)
    if address is None:
        proc.kill()
        err.seek(0)
        pytest.fail(f"server did not start: {err.read()[-3000:]}")
    port = int(address.rsplit(":", 1)[1])
    yield {"proc": proc, "port": port, "address": address, "stderr": err}
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)
    err.close()


def test_answers_equal_dygraph_and_text_predictor(ckpt, server):
    with ErnieClient(ckpt["vocab"], host="127.0.0.1", port=server["port"]) as client:
        single = client(TEXTS[:2])
        pairs = client(TEXTS[:4], TEXTS[4:])
        one = client(TEXTS[2])
    assert single.shape == (2, 32) and single.dtype == np.float32
    np.testing.assert_allclose(single, expected(ckpt, TEXTS[:2]), atol=1e-5)
    np.testing.assert_allclose(pairs, expected(ckpt, TEXTS[:4], TEXTS[4:]), atol=1e-5)
    np.testing.assert_allclose(one, expected(ckpt, TEXTS[2:3]), atol=1e-5)
    # the text predictor on an export of the same checkpoint agrees too
    exp = ckpt["dir"] / "export"
    export_ernie(str(ckpt["ckpt"]), str(exp), encode_layer="pooler", vocab_file=ckpt["vocab"])
    emb, _ = TextPredictor(str(exp)).predict(TEXTS[:4], TEXTS[4:])
    np.testing.assert_allclose(pairs, emb, atol=1e-5)


def test_chunks_in_parallel_and_truncation(ckpt, server):
    with ErnieClient(ckpt["vocab"], "127.0.0.1", server["port"], batch_size=3,
                     num_coroutine=3, max_seqlen=6) as client:
        got = client(TEXTS)
    np.testing.assert_allclose(got, expected(ckpt, TEXTS, max_seqlen=6), atol=1e-5)


def test_eight_concurrent_clients(ckpt, server):
    rng = random.Random(3)
    jobs = [[rng.choice(TEXTS) for _ in range(rng.randint(1, 5))] for _ in range(8)]
    want = [expected(ckpt, j) for j in jobs]
    errors, results = [], [None] * 8
    barrier = threading.Barrier(8)

    def work(i):
        try:
            with ErnieClient(ckpt["vocab"], "127.0.0.1", server["port"], batch_size=2) as c:
                barrier.wait()
                results[i] = [c(jobs[i]) for _ in range(3)]
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    for got, w in zip(results, want):
        for g in got:
            np.testing.assert_allclose(g, w, atol=1e-5)


def _ask(sock, payload, timeout_ms=10000):
    sock.send(payload)
    assert sock.poll(timeout_ms), "no reply"
    return sock.recv()


def test_malformed_requests_get_errors_and_serving_goes_on(ckpt, server):
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(server["address"])
    vocab = ckpt["enc"].config.vocab_size
    good_ids = np.array([ckpt["tok"].encode(TEXTS[0])[0]], dtype=np.int64)
    bad = {
        b"\x00garbage\xff": "not a valid Slots",
        wire.serialize([good_ids[0]]): "expected a \\[batch, seq\\] array",
        wire.serialize([good_ids.astype(np.float32)]): "float32 cannot be safely cast",
        wire.serialize([np.array([[1, vocab]])]): "src_ids'\\): values must lie in",
        wire.serialize([np.array([[1, -3]])]): "src_ids'\\): values must lie in",
        wire.serialize([good_ids, np.full_like(good_ids, 5)]): "sent_ids'\\): values must lie in \\[0, 2\\)",
        wire.serialize([good_ids, good_ids[:, :2]]): "seq dim \\(axis 1\\) is 2",
        wire.serialize([good_ids, good_ids[:1].repeat(2, 0)]): "batch dim \\(axis 0\\) is 2",
        wire.serialize([good_ids, good_ids, good_ids]): "expected \\[src_ids\\]",
        wire.serialize([np.ones((1, 65), np.int64)]): "exceeds the model's largest",
        wire.serialize([np.ones((100, 50), np.int64)]): "exceed the limit",
        wire.serialize([]): "no tensors",
    }
    import re
    for payload, match in bad.items():
        msg = wire.Slots.FromString(_ask(sock, payload))
        err = wire.parse_error(msg)
        assert err is not None and re.search(match, err), (match, err)
    rng = np.random.default_rng(0)
    for _ in range(100):  # fuzz: every message answered
        n = int(rng.integers(0, 64))
        reply = wire.Slots.FromString(_ask(sock, rng.bytes(n)))
        assert reply is not None
    got = wire.deserialize_reply(_ask(sock, wire.serialize([good_ids])))[0]
    np.testing.assert_allclose(got, expected(ckpt, TEXTS[:1]), atol=1e-5)  # sent_ids optional
    sock.close(0)
    with ErnieClient(ckpt["vocab"], "127.0.0.1", server["port"]) as client:
        np.testing.assert_allclose(client(TEXTS[:1]), expected(ckpt, TEXTS[:1]), atol=1e-5)
    assert server["proc"].poll() is None


def test_client_cli(ckpt, server, tmp_path):
    tsv = tmp_path / "in.tsv"
    tsv.write_text("".join(f"{a}\t{b}\n" for a, b in zip(TEXTS[:4], TEXTS[4:])), encoding="utf-8")
    out = tmp_path / "emb.npy"
    r = subprocess.run([sys.executable, "-m", "ernie.service.client", "--vocab_file", ckpt["vocab"],
                        "--host", "127.0.0.1", "--port", str(server["port"]), "--data", str(tsv),
                        "--out", str(out), "--batch_size", "3"],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(np.load(out), expected(ckpt, TEXTS[:4], TEXTS[4:]), atol=1e-5)


def test_client_errors(ckpt, server):
    with socket_free_port() as port:
        pass
    with ErnieClient(ckpt["vocab"], "127.0.0.1", port, timeout=0.3) as client:
        with pytest.raises(ServiceTimeout, match=f"127.0.0.1:{port}"):
            client(["好"])
    with ErnieClient(ckpt["vocab"], "127.0.0.1", server["port"]) as client:
        with pytest.raises(ValueError, match="second ones"):
            client(["a", "b"], ["c"])
        with pytest.raises(TypeError):
            client([1, 2])
    with ErnieClient(ckpt["vocab"], "127.0.0.1", server["port"], max_seqlen=100) as client:
        with pytest.raises(ServerError, match="exceeds the model's largest"):
            client(["好" * 80])


class socket_free_port:
    def __enter__(self):
        import socket
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        return self.s.getsockname()[1]

    def __exit__(self, *exc):
        self.s.close()


def test_prepare_model_checks_exports(ckpt):
    enc = ckpt["dir"] / "enc_layer1"
    export_ernie(str(ckpt["ckpt"]), str(enc), encode_layer="layer1")
    assert prepare_model(str(enc), "layer1") == (str(enc), None)
    assert prepare_model(str(enc), "layer-2") == (str(enc), None)  # same layer, counted from the top
    with pytest.raises(ValueError, match="exported for --encode_layer layer1"):
        prepare_model(str(enc), "pooler")
    cls = ckpt["dir"] / "cls"
    export_ernie(str(ckpt["ckpt"]), str(cls))
    with pytest.raises(ValueError, match="not of an encoder"):
        prepare_model(str(cls))


def test_start_server_serves_classifier_export(ckpt):
    """A fine-tuned classifier exported by the CLI, served by propeller.tools.start_server in
    another process: InferenceClient answers equal the text predictor and dygraph."""
    from propeller.service.client import InferenceClient
    exp = ckpt["dir"] / "cls_cli"
    r = subprocess.run([sys.executable, "-m", "inference.export", "--model_dir", str(ckpt["ckpt"]),
                        "--out", str(exp), "--vocab_file", ckpt["vocab"]],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    proc = subprocess.Popen([sys.executable, "-m", "propeller.tools.start_server", "-m", str(exp),
                             "-p", "0"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        address = wait_ready(proc, 60)
        assert address is not None, "start_server did not start"
        pred = TextPredictor(str(exp))
        ids, types = pred.encode(TEXTS[:3], TEXTS[3:6])
        src, sent, _ = pred.feeder.pad(ids, types)
        with InferenceClient(address, batch_size=2) as client:
            logits, = client(src, sent)
        local, = pred.predict(TEXTS[:3], TEXTS[3:6])
        np.testing.assert_allclose(logits, local, atol=1e-5)
        model = ErnieForSequenceClassification(ckpt["enc"].config, num_labels=2)
        load_into(model, str(ckpt["ckpt"]))
        model.eval()
        with paddle.no_grad():
            ref = model(paddle.to_tensor(src), paddle.to_tensor(sent)).numpy()
        np.testing.assert_allclose(logits, ref, atol=1e-5)
        # the generic server checks the ERNIE export's declared id ranges and length before
        # paddle sees the request, answers with an error, and goes on serving
        cfg = ckpt["enc"].config
        with InferenceClient(address, batch_size=8) as client:
            for bad_src, bad_sent, why in ((np.full_like(src, cfg.vocab_size), sent, "src_ids"),
                                           (src, np.full_like(sent, cfg.type_vocab_size), "sent_ids"),
                                           (np.ones((1, cfg.max_position_embeddings + 1), np.int64),
                                            np.zeros((1, cfg.max_position_embeddings + 1), np.int64), "exceeds")):
                with pytest.raises(ServerError, match=why):
                    client(bad_src, bad_sent)
            again, = client(src, sent)
        np.testing.assert_allclose(again, logits, atol=1e-6)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_sigterm_clean_exit(server):
    """Last: SIGTERM stops the server and its workers and removes the temporary export."""
    proc = server["proc"]
    workers = children(proc.pid)
    assert len(workers) >= 2
    server["stderr"].seek(0)
    log = server["stderr"].read()
    tmp = log.split("temporary export in ", 1)[1].split()[0]
    assert os.path.isdir(tmp)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(w) for w in workers):
        time.sleep(0.1)
    assert not any(alive(w) for w in workers)
    assert not os.path.exists(tmp)
