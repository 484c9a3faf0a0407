"""Distillation end to end on a slice of the demo data (the units are in test_distill_units.py):
students trained and exported, the offline and online teachers (a tiny fine-tuned ERNIE, exported,
served by the real server, asked by the real client), kill -9 resume, and the label-space refusal."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import paddle
import pytest
import zmq

from distill.data import build_vocab, read_unsup
from distill.teacher import OnlineTeacher, softmax
from ernie.tokenizing import SentencepieceTokenizer
from propeller.service import wire
from propeller.service.client import InferenceClient, ServiceTimeout

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(REPO, "data", "demo", "sentiment")
TEACHER_VOCAB = os.path.join(REPO, "data", "demo", "vocab.txt")
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=REPO)


# ---------------------------------------------------------------------------- the tiny task
def _slice(src, dst, n):
    with open(src, encoding="utf-8") as f:
        lines = f.readlines()
    with open(dst, "w", encoding="utf-8") as f:
        f.writelines(lines[:n + 1])  # the header and n examples


def _demo_sentiment(tmp_path_factory):
    """(sentiment dir, teacher vocab): the repo's data/demo when built, else a small slice built
    here from the installed corpora (a fresh clone, CI), in about a second."""
    if os.path.isfile(os.path.join(DEMO, "train.tsv")) and os.path.isfile(TEACHER_VOCAB):
        return DEMO, TEACHER_VOCAB
    out = tmp_path_factory.mktemp("demo")
    for cmd in (["-m", "ernie.data.demo", "--out", str(out), "--max_docs", "50", "--max_reviews", "3000"],
                ["-m", "ernie.tokenizing", "build_vocab", "--corpus", str(out / "zh_reviews_raw.txt"),
                 "--out", str(out / "vocab.txt")]):
        subprocess.run([sys.executable, *cmd], check=True, cwd=REPO, env=ENV, capture_output=True)
    return str(out / "sentiment"), str(out / "vocab.txt")


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    data = root / "data"
    data.mkdir()
    demo, teacher_vocab = _demo_sentiment(tmp_path_factory)
    _slice(os.path.join(demo, "train.tsv"), data / "train.tsv", 1200)
    _slice(os.path.join(demo, "dev.tsv"), data / "dev.tsv", 300)
    _slice(os.path.join(demo, "test.tsv"), data / "test.tsv", 300)
    shutil.copyfile(teacher_vocab, root / "teacher_vocab.txt")
    subprocess.run([sys.executable, "-m", "distill.augment", "--data_dir", str(data), "--out", str(root / "aug"),
                    "--times", "2", "--limit", "300"], check=True, cwd=REPO, env=ENV, capture_output=True)
    texts = [line.split("\t", 1)[1] for line in open(data / "train.tsv", encoding="utf-8").read().splitlines()[1:]]
    (root / "vocab.txt").write_text("".join(w + "\n" for w in build_vocab(texts)), encoding="utf-8")
    return root


def _run(script, *args, timeout=240):
    r = subprocess.run([sys.executable, os.path.join(REPO, script), *args], cwd=REPO, env=ENV, capture_output=True,
                       text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def _test_acc(model_dir):
    with open(os.path.join(model_dir, "result.json")) as f:
        return json.load(f)["test"]["acc"]


def _majority(task):
    labels = [line.split("\t")[0] for line in open(task / "data" / "test.tsv", encoding="utf-8").read().splitlines()[1:]]
    return max(labels.count(x) for x in set(labels)) / len(labels)


def test_bow_student_beats_the_majority_class(task):
    out = task / "bow_gold"
    _run("distill/distill_chnsentocorp.py", "--data_dir", str(task / "data"), "--vocab_file", str(task / "vocab.txt"),
         "--run_config", json.dumps({"model_dir": str(out), "max_steps": 150, "eval_steps": 75, "log_steps": 50}),
         "--hparam", json.dumps({"student": "bow", "distill_mode": "gold", "learning_rate": 5e-3}))
    acc = _test_acc(out)
    assert acc > _majority(task) + 0.05, acc
    # the best student exports with inference.export and predicts what training measured
    r = subprocess.run([sys.executable, "-m", "inference.export", "--model_dir", str(out / "best"),
                        "--out", str(task / "bow_export")], cwd=REPO, env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert os.path.isfile(task / "bow_export" / "vocab.txt")


@pytest.fixture(scope="module")
def teacher(task):
    """A tiny ERNIE classifier fine-tuned by example/finetune_classifier.py, served by start_server."""
    cfg = task / "tiny.json"
    vocab_size = len((task / "teacher_vocab.txt").read_text(encoding="utf-8").splitlines())
    cfg.write_text(json.dumps({"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                               "intermediate_size": 64, "max_position_embeddings": 130, "vocab_size": vocab_size}))
    tdir = task / "teacher"
    _run("example/finetune_classifier.py", "--data_dir", str(task / "data"),
         "--vocab_file", str(task / "teacher_vocab.txt"),
         "--ernie_config", str(cfg), "--max_seqlen", "64",
         "--run_config", json.dumps({"model_dir": str(tdir), "max_steps": 40, "eval_steps": 40, "seed": 1}),
         "--hparam", json.dumps({"batch_size": 32, "learning_rate": 3e-3}))
    proc = subprocess.Popen([sys.executable, "-m", "propeller.tools.start_server", "-m",
                             str(tdir / "best_inference" / "inference"), "-p", "0", "--num_workers", "1"],
                            cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("ready "), line
        yield {"dir": tdir, "address": line.split()[1], "proc": proc}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def test_online_and_offline_teacher_labels_agree(task, teacher):
    texts = open(task / "aug" / "part.0", encoding="utf-8").read().splitlines()[:40]
    r = subprocess.run([sys.executable, os.path.join(REPO, "example/finetune_classifier.py"), "--do_predict",
                        "--run_config", json.dumps({"model_dir": str(teacher["dir"])})],
                       input="".join(t + "\n" for t in texts), cwd=REPO, env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    offline = np.array([[float(x) for x in line.split("\t")[1].split()] for line in r.stdout.splitlines()])
    t = OnlineTeacher(teacher["address"], str(task / "teacher_vocab.txt"), max_seqlen=64, server_batch_size=16,
                      num_coroutine=3)
    try:
        t.check(2)
        enc = [t.encode(x) for x in texts]
        n = max(len(e[0]) for e in enc)
        src = np.array([np.pad(e[0], (0, n - len(e[0]))) for e in enc])
        sent = np.array([np.pad(e[1], (0, n - len(e[1]))) for e in enc])
        online = softmax(t.logits(src, sent))
        with pytest.raises(SystemExit, match="gives 2 classes but the student has 3 labels"):
            t.check(3)
    finally:
        t.close()
    assert offline.shape == online.shape == (40, 2)
    np.testing.assert_allclose(online, offline, atol=5e-6)
    # the offline files hold the same probabilities; a 3-label student refuses them
    lab = task / "lab"
    lab.mkdir(exist_ok=True)
    (lab / "part.0").write_text("".join(f"{p}\t{t}\n" for p, t in zip(r.stdout.splitlines(), texts)), encoding="utf-8")
    recs = read_unsup(str(lab), 2)
    np.testing.assert_allclose(np.stack([x.probs for x in recs]), online, atol=5e-6)
    with pytest.raises(SystemExit, match="does not match the task's label space"):
        read_unsup(str(lab), 3)


def test_online_distillation_trains_through_the_server(task, teacher):
    out = task / "bow_online"
    r = _run("distill/distill_chnsentocorp_with_propeller_server.py", "--data_dir", str(task / "data"),
             "--vocab_file", str(task / "vocab.txt"), "--unsupervise_data_dir", str(task / "aug"),
             "--teacher_host", teacher["address"], "--teacher_vocab_file", str(task / "teacher_vocab.txt"),
             "--teacher_max_seqlen", "64",
             "--server_batch_size", "64", "--num_coroutine", "4",
             "--run_config", json.dumps({"model_dir": str(out), "max_steps": 60, "eval_steps": 60, "log_steps": 20}),
             "--hparam", json.dumps({"student": "bow", "learning_rate": 5e-3, "temperature": 2.0}))
    assert "answers with 2-class logits" in r.stderr
    assert os.path.isfile(out / "best_inference" / "inference" / "model.json")
    # a 3-label student is refused before training, naming the address
    r = subprocess.run([sys.executable, os.path.join(REPO, "distill/distill_chnsentocorp_with_propeller_server.py"),
                        "--data_dir", str(task / "data"), "--vocab_file", str(task / "vocab.txt"), "--num_labels", "3",
                        "--teacher_host", teacher["address"], "--teacher_vocab_file", str(task / "teacher_vocab.txt"),
                        "--run_config", json.dumps({"model_dir": str(task / "refused")})],
                       cwd=REPO, env=ENV, capture_output=True, text=True)
    assert r.returncode != 0 and teacher["address"] in r.stderr and "label space" in r.stderr


def test_layer_distillation_of_a_subword_transformer(task, teacher):
    sw = task / "subword"
    subprocess.run([sys.executable, "-m", "distill.subword", "--data_dir", str(task / "data"), "--out", str(sw),
                    "--vocab_size", "3000"], check=True, cwd=REPO, env=ENV, capture_output=True)
    # the point of subwords: sequences shorter than characters (SentencePiece's unigram model on
    # this 1,200-review slice made them 3-4% longer; BPE 5-8% shorter)
    tok = SentencepieceTokenizer(sw / "vocab.txt", sw / "spm.model", word_dict=sw / "word_dict.txt")
    with open(task / "data" / "dev.tsv", encoding="utf-8") as f:
        dev = [line.rstrip("\n").split("\t")[1] for line in f][1:]
    assert sum(len(tok.tokenize(t)) for t in dev) < 0.98 * sum(len(t) for t in dev)
    out = task / "tiny_student"
    r = _run("distill/distill_chnsentocorp.py", "--data_dir", str(task / "data"), "--vocab_file", str(sw / "vocab.txt"),
             "--sentence_piece_model", str(sw / "spm.model"), "--word_dict", str(sw / "word_dict.txt"),
             "--unsupervise_data_dir", str(task / "aug"), "--teacher_model_dir", str(teacher["dir"] / "best"),
             "--max_seqlen", "64", "--teacher_max_seqlen", "64",
             "--run_config", json.dumps({"model_dir": str(out), "max_steps": 12, "eval_steps": 12, "log_steps": 4,
                                         "to_static": True}),
             "--hparam", json.dumps({"student": "ernie_tiny", "layer_map": "0:0,1:2", "learning_rate": 1e-3,
                                     "ernie_config": {"hidden_size": 48, "num_hidden_layers": 1,
                                                      "num_attention_heads": 3, "intermediate_size": 96}}))
    losses = [float(x.split("loss: ")[1].split(",")[0]) for x in r.stderr.splitlines() if "step: " in x]
    assert len(losses) == 3 and all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    assert "to_static failed" not in r.stderr  # the teacher + student forward compiles
    state = paddle.load(str(out / "best" / "model_state.pdparams"))
    assert any(k.startswith("proj.") for k in state)  # the learned hidden-state projections
    r = subprocess.run([sys.executable, "-m", "inference.export", "--model_dir", str(out / "best"),
                        "--out", str(task / "tiny_export")], cwd=REPO, env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert os.path.isfile(task / "tiny_export" / "spm.model")


def test_kill_9_resume_ends_like_an_uninterrupted_run(task):
    args = ["--data_dir", str(task / "data"), "--vocab_file", str(task / "vocab.txt")]
    hp = json.dumps({"student": "bow", "distill_mode": "gold", "learning_rate": 3e-3, "batch_size": 16})

    def rc(d):
        return json.dumps({"model_dir": str(d), "max_steps": 160, "save_steps": 20, "eval_steps": 100,
                           "log_steps": 50, "seed": 3})
    full = task / "resume_full"
    _run("distill/distill_chnsentocorp.py", *args, "--run_config", rc(full), "--hparam", hp)
    cut = task / "resume_cut"
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, "distill/distill_chnsentocorp.py"), *args,
                             "--run_config", rc(cut), "--hparam", hp], cwd=REPO, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not os.path.isdir(cut / "model_40") and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert not os.path.isfile(cut / "result.json"), "the run ended before it could be killed"
    r = _run("distill/distill_chnsentocorp.py", *args, "--run_config", rc(cut), "--hparam", hp)
    assert "resumed from" in r.stderr
    a = paddle.load(str(full / "model_160" / "model_state.pdparams"))
    b = paddle.load(str(cut / "model_160" / "model_state.pdparams"))
    for k in a:
        np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), atol=1e-5, err_msg=k)


# ---------------------------------------------------------------------------- the client
def _peer(addr, swallow, stop):
    """A REP-like peer answering x -> 2x, ignoring the first ``swallow`` requests."""
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.bind(addr)

    def run():
        seen = 0
        while not stop.is_set():
            if router.poll(50):
                frames = router.recv_multipart()
                seen += 1
                if seen <= swallow:
                    continue
                router.send_multipart(frames[:-1] + [wire.serialize([a * 2 for a in wire.deserialize(frames[-1])])])
        router.close(0)
        ctx.term()
    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_client_retries_a_slow_or_restarting_teacher_and_names_the_address():
    addr = f"tcp://127.0.0.1:{_free_port()}"
    x = np.arange(6, dtype=np.int64).reshape(2, 3)
    with InferenceClient(addr, timeout=0.3, retries=2, retry_wait=0.05) as c:
        t0 = time.monotonic()
        with pytest.raises(ServiceTimeout, match=addr.replace(".", r"\.") + ".*3 tries"):
            c(x)  # nobody there: three tries, then the address in the error
        assert time.monotonic() - t0 < 5
        stop = threading.Event()
        th = _peer(addr, swallow=2, stop=stop)  # a teacher that drops two requests (restarting, overloaded)
        try:
            np.testing.assert_array_equal(c(x)[0], x * 2)
        finally:
            stop.set()
            th.join(5)
        stop = threading.Event()
        th = _peer(addr, swallow=0, stop=stop)  # restarted on the same address
        try:
            np.testing.assert_array_equal(c(x + 1)[0], (x + 1) * 2)
        finally:
            stop.set()
            th.join(5)


def test_both_scripts_run_on_a_data_slice(task, tmp_path):
    """distill/script/*.sh end to end (teacher fine-tuning, augmentation, labelling, student;
    then the served teacher) with tiny budgets."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(ENV, TASK_DATA_PATH=str(task / "data"), OUT=str(tmp_path / "out"), TEACHER_STEPS="20",
               TEACHER_VOCAB=str(task / "teacher_vocab.txt"),
               AUG_TIMES="1", PORT=str(port), PYTHON=sys.executable,
               STUDENT_HPARAM=json.dumps({"student": "bow", "epoch": 0.3, "learning_rate": 5e-3}))
    for script in ("distill_chnsenticorp.sh", "distill_chnsenticorp_with_propeller_server.sh"):
        r = subprocess.run(["sh", os.path.join(REPO, "distill", "script", script)], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        assert "[test evaluation]" in r.stdout
    assert os.path.isfile(tmp_path / "out" / "student_bow" / "result.json")
    assert os.path.isfile(tmp_path / "out" / "student_bow_online" / "result.json")
    labelled = (tmp_path / "out" / "aug_labelled" / "part.0").read_text(encoding="utf-8").splitlines()
    assert len(labelled) == 1200 and all(len(x.split("\t")) == 3 for x in labelled)
