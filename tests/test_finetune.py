"""Real fine-tuning runs of the example CLIs on the demo data, with a tiny ERNIE trained from
scratch (hidden 64, 2 layers): sentiment classification and NER must clearly beat their
majority / all-O baselines; ranking and MRC (sets built from the demo corpus by
ernie.finetune.demo_tasks' rules) run end to end with finite metrics. Each run exports its
best model, which paddle.inference loads, and ``--do_predict`` works on stdin."""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "example")
TINY = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128,
        "max_position_embeddings": 128, "hidden_act": "gelu", "type_vocab_size": 2}


def _env():
    return dict(os.environ, GLOG_minloglevel="2", PYTHONPATH=ROOT)


def run_example(name, args, stdin=None, check=True):
    r = subprocess.run([sys.executable, os.path.join(EXAMPLES, f"finetune_{name}.py"), *args], input=stdin,
                       capture_output=True, text=True, timeout=600, env=_env())
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from ernie.finetune import demo_tasks
    from ernie.tokenizing import build_vocab, save_vocab
    root = tmp_path_factory.mktemp("finetune")
    data = root / "data"
    subprocess.run([sys.executable, "-m", "ernie.data.demo", "--out", str(data), "--max_docs", "300",
                    "--max_reviews", "3000"], check=True, capture_output=True, timeout=300, env=_env())
    texts = root / "sentiment_text.txt"
    with open(data / "sentiment" / "train.tsv", encoding="utf-8") as f, open(texts, "w", encoding="utf-8") as out:
        out.writelines(line.split("\t", 1)[1] for line in f)
    vocab = build_vocab([str(data / "zh_corpus_raw.txt"), str(texts)], min_freq=2)
    save_vocab(vocab, str(root / "vocab.txt"))
    cfg = dict(TINY, vocab_size=len(vocab))
    (root / "tiny.json").write_text(json.dumps(cfg))
    demo_tasks.main(["--demo_dir", str(data), "--max_queries", "300", "--max_questions", "600"])
    return root


def _common(demo, max_seqlen=64):
    return ["--vocab_file", str(demo / "vocab.txt"), "--max_seqlen", str(max_seqlen), "--hparam", str(demo / "tiny.json")]


def _last(stdout, name):
    lines = [l for l in stdout.splitlines() if l.startswith(f"[{name} evaluation]")]
    assert lines, stdout
    return lines[-1], dict((k, float(v)) for k, v in re.findall(r"(\w+): (-?[\d.]+|nan)", lines[-1]))


def _labels(path, col):
    with open(path, encoding="utf-8") as f:
        rows = [l.rstrip("\n").split("\t") for l in f][1:]
    return [r[col] for r in rows]


def _inference_probs(export_dir, ids_rows):
    import paddle.inference as pi
    prefix = os.path.join(export_dir, "model")
    cfg = pi.Config(prefix + ".json", prefix + ".pdiparams")
    cfg.disable_gpu()
    pred = pi.create_predictor(cfg)
    n = max(len(r) for r in ids_rows)
    ids = np.zeros((len(ids_rows), n), np.int64)
    for i, r in enumerate(ids_rows):
        ids[i, :len(r)] = r
    for name, arr in zip(pred.get_input_names(), (ids, np.zeros_like(ids))):
        h = pred.get_input_handle(name)
        h.reshape(arr.shape)
        h.copy_from_cpu(arr)
    pred.run()
    logits = pred.get_output_handle(pred.get_output_names()[0]).copy_to_cpu()
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_sentiment_classifier_beats_majority(demo, tmp_path):
    data = tmp_path / "sentiment"
    shutil.copytree(demo / "data" / "sentiment", data)
    with open(data / "train.tsv", "a", encoding="utf-8") as f:  # two bad lines, skipped and counted
        f.write("1\t好\textra column\n7\t标签不对\n")
    model_dir = tmp_path / "model"
    # mean pooling: --do_predict and both exports below must rebuild it from task.json (with the
    # default cls pooling instead, their probabilities would differ)
    r = run_example("classifier", ["--data_dir", str(data), *_common(demo), "--on_bad_line", "skip", "--pooling", "mean",
                                   "--result_file", str(tmp_path / "result.json"),
                                   "--run_config", json.dumps({"model_dir": str(model_dir), "max_steps": 200,
                                                               "eval_steps": 100, "save_steps": 200, "seed": 1}),
                                   "--hparam", '{"batch_size": 32, "learning_rate": 1e-3, "warmup_proportion": 0.1}'])
    assert "[train] 2 bad line(s) skipped" in r.stderr
    line, dev = _last(r.stdout, "dev")
    labels = _labels(data / "dev.tsv", 0)
    majority = max(labels.count("0"), labels.count("1")) / len(labels)
    print(f"sentiment dev acc {dev['acc']:.4f} vs majority {majority:.4f}: {line}")
    assert dev["acc"] > majority + 0.12
    assert f"file: {data / 'dev.tsv'}" in line and dev["data_num"] == len(labels)
    _, test = _last(r.stdout, "test")
    assert test["acc"] > majority + 0.1
    # --result_file: the same final figures, flat, for propeller.tools.search / kfold
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["dev.acc"] == pytest.approx(dev["acc"], abs=1e-6) and result["test.acc"] == pytest.approx(test["acc"], abs=1e-6)
    assert result["dev.data_num"] == len(labels) and result["best_step"] in (100, 200)
    assert os.path.isfile(model_dir / "best" / "model_state.pdparams")
    assert json.loads((model_dir / "task.json").read_text())["pooling"] == "mean"

    # --do_predict on review texts: the trained model, not a fresh one, answers
    with open(data / "dev.tsv", encoding="utf-8") as f:
        rows = [l.rstrip("\n").split("\t") for l in f][1:81]
    gold, texts = [r[0] for r in rows], [r[1] for r in rows]
    p = run_example("classifier", ["--do_predict", "--run_config", json.dumps({"model_dir": str(model_dir)})],
                    stdin="\n".join(texts) + "\n")
    out = [l.split("\t") for l in p.stdout.splitlines()]
    assert len(out) == 80 and all(o[0] in ("0", "1") for o in out)
    probs = np.array([[float(x) for x in o[1].split()] for o in out])
    assert np.allclose(probs.sum(1), 1, atol=1e-4) and (probs.argmax(1) == [int(o[0]) for o in out]).all()
    assert np.mean([o[0] == g for o, g in zip(out, gold)]) > majority
    # the exported inference model gives the same probabilities
    from ernie.tokenizing import FullTokenizer
    tok = FullTokenizer(str(demo / "vocab.txt"))
    ids = [tok.encode(t, None, 64)[0] for t in texts[:32]]
    assert np.allclose(_inference_probs(model_dir / "best_inference" / "inference", ids), probs[:32], atol=1e-4)
    # best/ is complete on its own (config + vocab): exporting it needs no other flag
    from inference.export import main as export_main
    assert json.loads((model_dir / "best" / "config.json").read_text())["hidden_size"] > 0
    assert (model_dir / "best" / "vocab.txt").read_bytes() == (demo / "vocab.txt").read_bytes()
    assert export_main(["--model_dir", str(model_dir / "best"), "--out", str(tmp_path / "exp")]) in (None, 0)
    assert np.allclose(_inference_probs(tmp_path / "exp", ids), probs[:32], atol=1e-4)


def test_ner_beats_all_o(demo, tmp_path):
    from propeller.metrics import ChunkF1
    data = demo / "data" / "msra_ner"
    model_dir = tmp_path / "model"
    r = run_example("ner", ["--data_dir", str(data), *_common(demo),
                            "--run_config", json.dumps({"model_dir": str(model_dir), "max_steps": 300,
                                                        "eval_steps": 150, "save_steps": 300, "seed": 1}),
                            "--hparam", '{"batch_size": 32, "learning_rate": 2e-3, "warmup_proportion": 0.1}'])
    line, dev = _last(r.stdout, "dev")
    gold = [t.split() for t in _labels(data / "dev.tsv", 1)]
    all_o = ChunkF1([g for g in gold], [["O"] * len(g) for g in gold]).eval()
    print(f"NER dev chunk F1 {dev['f1']:.4f} vs all-O {all_o:.4f}: {line}")
    assert all_o == 0.0 and dev["f1"] > all_o + 0.1
    assert 0 < dev["precision"] <= 1 and 0 < dev["recall"] <= 1
    assert os.path.isfile(model_dir / "best_inference" / "inference" / "model.json")
    # best/ exports as what it was fine-tuned for (task.json), not as a sentence classifier
    from inference.export import main as export_main
    from propeller.inference.export import read_meta
    from propeller.inference.predictor import Predictor
    assert export_main(["--model_dir", str(model_dir / "best"), "--out", str(tmp_path / "exp")]) == 0
    meta = read_meta(tmp_path / "exp")
    assert meta["model"]["kind"] == "token_classification" and meta["tokenizer"]["max_seqlen"] == 64
    ids = np.random.default_rng(0).integers(5, 100, size=(3, 12))
    got = Predictor(str(tmp_path / "exp")).predict([ids, np.zeros_like(ids)])[0]
    want = Predictor(str(model_dir / "best_inference" / "inference")).predict([ids, np.zeros_like(ids)])[0]
    assert got.shape == (3, 12, 7) and np.allclose(got, want, atol=1e-5)
    # the training run's own export declares the id ranges the predictor checks
    vocab = json.loads((model_dir / "best" / "config.json").read_text())["vocab_size"]
    inputs = read_meta(model_dir / "best_inference" / "inference")["inputs"]
    assert [(i["name"], i["range"]) for i in inputs] == [("src_ids", [0, vocab]), ("sent_ids", [0, 2])]
    with pytest.raises(ValueError, match="src_ids"):
        Predictor(str(model_dir / "best_inference" / "inference")).predict([ids + vocab, np.zeros_like(ids)])

    long_line = " ".join("北京" * 50)  # 100 characters: past max_seqlen, the tail gets O
    p = run_example("ner", ["--do_predict", "--run_config", json.dumps({"model_dir": str(model_dir)})],
                    stdin=f"新 华 社 北 京 １ 月 ８ 日 电\n{long_line}\n")
    out = [l.split() for l in p.stdout.splitlines()]
    assert [len(x) for x in out] == [10, 100]
    assert all(t in ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC") for x in out for t in x)
    assert out[1][62:] == ["O"] * 38
    assert any(t != "O" for t in out[0])  # 新华社 / 北京 are the demo corpus' commonest entities


def test_ranker_end_to_end(demo, tmp_path):
    data = demo / "data" / "ranking"
    model_dir = tmp_path / "model"
    r = run_example("ranker", ["--data_dir", str(data), *_common(demo),
                               "--run_config", json.dumps({"model_dir": str(model_dir), "max_steps": 60,
                                                           "eval_steps": 60, "save_steps": 60, "seed": 1}),
                               "--hparam", '{"batch_size": 32, "learning_rate": 1e-3}'])
    line, dev = _last(r.stdout, "dev")
    print(f"ranking dev: {line}")
    for k in ("acc", "f1", "mrr"):
        assert 0.0 <= dev[k] <= 1.0, line
    assert dev["mrr"] >= 0.25  # at worst every candidate tied (ties count against the model): 1/4
    p = run_example("ranker", ["--do_predict", "--run_config", json.dumps({"model_dir": str(model_dir)})],
                    stdin="q1\t今天天气很好\t明天会下雨\nq1\t今天天气很好\t北京工作\n")
    rows = [l.split("\t") for l in p.stdout.splitlines()]
    assert [r[0] for r in rows] == ["q1", "q1"] and all(r[1] in ("0", "1") for r in rows)
    assert all(abs(sum(map(float, r[2].split())) - 1) < 1e-4 for r in rows)


def test_mrc_end_to_end(demo, tmp_path):
    data = tmp_path / "mrc"  # train and dev only: a test set would just add another evaluation
    data.mkdir()
    for split in ("train", "dev"):
        shutil.copy(demo / "data" / "mrc" / f"{split}.json", data)
    model_dir = tmp_path / "model"
    r = run_example("mrc", ["--data_dir", str(data), *_common(demo, 96), "--doc_stride", "48",
                            "--max_query_len", "40",
                            "--run_config", json.dumps({"model_dir": str(model_dir), "max_steps": 80,
                                                        "eval_steps": 80, "save_steps": 80, "seed": 1}),
                            "--hparam", '{"batch_size": 32, "learning_rate": 1e-3}'])
    line, dev = _last(r.stdout, "dev")
    with open(data / "dev.json", encoding="utf-8") as f:
        doc = json.load(f)
    n_q = sum(len(p["qas"]) for p in doc["data"][0]["paragraphs"])
    print(f"MRC dev: {line}")
    assert dev["question_num"] == n_q
    assert np.isfinite(dev["em"]) and np.isfinite(dev["f1"]) and dev["f1"] >= dev["em"] >= 0
    # a random span almost never matches an entity; the copy task is learnable
    assert dev["f1"] > 5.0
    for p in doc["data"][0]["paragraphs"]:
        for qa in p["qas"]:
            del qa["answers"]
    pr = run_example("mrc", ["--do_predict", "--run_config", json.dumps({"model_dir": str(model_dir)})],
                     stdin=json.dumps(doc, ensure_ascii=False))
    answers = json.loads(pr.stdout)
    assert len(answers) == n_q
    contexts = [p["context"] for p in doc["data"][0]["paragraphs"]]
    assert all(a == "" or any(a in c for c in contexts) for a in answers.values())


def test_bad_data_line_stops_the_run_naming_file_and_line(demo, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.tsv").write_text("label\ttext_a\n1\t很好\n1\t好\n2\t标签不对\n", encoding="utf-8")
    r = run_example("classifier", ["--data_dir", str(data), *_common(demo),
                                   "--run_config", json.dumps({"model_dir": str(tmp_path / "m")})], check=False)
    assert r.returncode != 0
    assert f"{data / 'train.tsv'}:4: unknown label '2'" in r.stderr and "Traceback" not in r.stderr
