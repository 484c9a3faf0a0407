"""The per-dataset shell scripts: hyper-parameters as in DESIGN.md section 7, input checks with
clear messages, and one script run end to end on a tiny model and the demo sentiment data."""
import glob
import json
import os
import re
import shutil
import subprocess
import sys


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "script", "zh_task", "ernie_base", "run_ChnSentiCorp.sh")

# DESIGN.md section 7: batch, epochs, max_seq_len, learning rate
DESIGN = {"ChnSentiCorp": (24, 10, 256, "5e-5"), "lcqmc": (32, 3, 128, "2e-5"), "bq": (64, 3, 128, "3e-5"),
          "xnli": (8192, 3, 512, "1e-4"), "thuc": (8, 3, 512, "3e-5"), "dbqa": (8, 3, 512, "2e-5"),
          "msra_ner": (16, 6, 256, "5e-5"), "drcd": (16, 2, 512, "5e-5"), "cmrc2018": (16, 2, 512, "3e-5")}
GLUE = ("CoLA", "SST-2", "STS-B", "QQP", "MNLI", "QNLI", "RTE", "MRPC", "WNLI")


def _settings(path):
    text = open(path, encoding="utf-8").read()
    return {k: v for k, v in re.findall(r'"\$\{(\w+):=([^}]*)\}"', text)}, text


def test_scripts_exist_parse_and_carry_the_original_hyper_parameters():
    for model in ("base", "large", "tiny"):
        for task in DESIGN:
            assert os.path.isfile(os.path.join(ROOT, f"script/zh_task/ernie_{model}/run_{task}.sh"))
    for model in ("base", "large"):
        for task in GLUE:
            assert os.path.isfile(os.path.join(ROOT, f"script/en_glue/ernie_{model}/{task}/task.sh"))
    scripts = glob.glob(os.path.join(ROOT, "script/zh_task/**/*.sh"), recursive=True) + \
        glob.glob(os.path.join(ROOT, "script/en_glue/**/*.sh"), recursive=True)
    for s in scripts:
        r = subprocess.run(["bash", "-n", s], capture_output=True, text=True)
        assert r.returncode == 0, (s, r.stderr)
    for task, (bs, ep, seq, lr) in DESIGN.items():
        got, text = _settings(os.path.join(ROOT, f"script/zh_task/ernie_base/run_{task}.sh"))
        assert (int(got["BATCH_SIZE"]), int(got["EPOCH"]), int(got["MAX_SEQLEN"]), got["LR"]) == (bs, ep, seq, lr), task
    assert _settings(os.path.join(ROOT, "script/zh_task/ernie_base/run_xnli.sh"))[0]["IN_TOKENS"] == "true"
    assert _settings(os.path.join(ROOT, "script/zh_task/ernie_base/run_drcd.sh"))[0]["DOC_STRIDE"] == "128"
    assert "ERNIE_TINY" in _settings(os.path.join(ROOT, "script/zh_task/ernie_tiny/run_msra_ner.sh"))[0]
    assert _settings(os.path.join(ROOT, "script/en_glue/ernie_base/STS-B/task.sh"))[0]["NUM_LABELS"] == "1"
    # README batch sizes (large / base)
    for task, large, base in (("CoLA", 32, 64), ("SST-2", 64, 256), ("RTE", 16, 4), ("MRPC", 16, 32), ("WNLI", 8, 8)):
        for model, bs in (("large", large), ("base", base)):
            assert _settings(os.path.join(ROOT, f"script/en_glue/ernie_{model}/{task}/task.sh"))[0]["BATCH_SIZE"] == str(bs)


def _run(script, env, *args):
    full = {k: v for k, v in os.environ.items() if k not in ("TASK_DATA_PATH", "MODEL_PATH")}
    full.update(env, GLOG_minloglevel="2")
    return subprocess.run(["sh", script, *args], capture_output=True, text=True, timeout=600, env=full, cwd=ROOT)


def test_missing_paths_give_clear_messages(tmp_path):
    r = _run(SCRIPT, {})
    assert r.returncode == 2 and "TASK_DATA_PATH is not set" in r.stderr and "chnsenticorp/" in r.stderr
    r = _run(SCRIPT, {"TASK_DATA_PATH": str(tmp_path)})
    assert r.returncode == 2 and f"TASK_DATA_PATH={tmp_path} has no chnsenticorp/ directory" in r.stderr
    (tmp_path / "chnsenticorp").mkdir()
    r = _run(SCRIPT, {"TASK_DATA_PATH": str(tmp_path), "MODEL_PATH": str(tmp_path / "nope")})
    assert r.returncode == 2 and f"MODEL_PATH={tmp_path / 'nope'} does not exist" in r.stderr
    r = _run(SCRIPT, {"TASK_DATA_PATH": str(tmp_path), "MODEL_PATH": str(tmp_path)})
    assert r.returncode == 2 and "holds no pre-trained weights" in r.stderr
    r = _run(os.path.join(ROOT, "script/en_glue/ernie_large/SST-2/task.sh"), {})
    assert r.returncode == 2 and "SST-2/" in r.stderr


def test_chnsenticorp_script_runs_end_to_end(tmp_path):
    import paddle
    from ernie.checkpoint import save_pretrained
    from ernie.modeling import ErnieConfig, ErnieModel
    from ernie.tokenizing import build_vocab, save_vocab
    demo = tmp_path / "demo"
    subprocess.run([sys.executable, "-m", "ernie.data.demo", "--out", str(demo), "--max_docs", "20",
                    "--max_reviews", "400"], check=True, capture_output=True, timeout=300)
    task_data = tmp_path / "task_data" / "chnsenticorp"
    shutil.copytree(demo / "sentiment", task_data)
    texts = tmp_path / "texts.txt"
    texts.write_text("".join(l.split("\t", 1)[1] for l in open(task_data / "train.tsv", encoding="utf-8")),
                     encoding="utf-8")
    model = tmp_path / "model"  # a stand-in for a downloaded model: config, weights and vocab
    vocab = build_vocab([str(texts)])
    cfg = ErnieConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=64)
    paddle.seed(0)
    save_pretrained(ErnieModel(cfg), str(model))
    save_vocab(vocab, str(model / "vocab.txt"))
    out = tmp_path / "out"
    r = _run(SCRIPT, {"TASK_DATA_PATH": str(tmp_path / "task_data"), "MODEL_PATH": str(model), "MAX_STEPS": "12",
                      "BATCH_SIZE": "16", "MAX_SEQLEN": "48", "EVAL_STEPS": "6", "OUTPUT_DIR": str(out),
                      "LR": "1e-3"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert "[ChnSentiCorp_base] data" in r.stdout and "batch 16" in r.stdout
    dev = [l for l in r.stdout.splitlines() if l.startswith("[dev evaluation]")]
    test = [l for l in r.stdout.splitlines() if l.startswith("[test evaluation]")]
    assert len(dev) >= 2 and len(test) == 1
    assert re.search(r"acc: [\d.]+, .*data_num: \d+, elapsed time: [\d.]+ s, file: .*chnsenticorp/dev\.tsv, "
                     r"epoch: \d+, steps: (6|12)$", dev[0])
    # the encoder came from MODEL_PATH (its config too), the classifier is new
    assert f"from {model}" in r.stderr and "left as initialised: classifier" in r.stderr
    meta = json.load(open(out / "task.json", encoding="utf-8"))
    assert meta["ernie_config"]["hidden_size"] == 32 and meta["max_seqlen"] == 48
    assert os.path.isdir(out / "best_inference" / "inference")
