"""Benchmark study: distillation on demo sentiment (issue 11). Not a timed test.

    python bench/bench_distill.py [--out output/distill_bench] [--seeds 1,2,3] \\
        [--students bow,cnn,lstm,ernie_tiny] [--variants gold,hard,soft,online] \\
        [--teacher_dir DIR | --teacher_init CKPT --teacher_steps 3000] [--aug_times 10] [--json out.json]

Steps (each reused when its output exists, so an interrupted study continues):
1. augmentation (``distill.augment``, 10x), the students' word vocabulary and subword vocabulary;
2. the teacher: ``example/finetune_classifier.py`` (``--teacher_init``: a pre-trained checkpoint;
   else random init with config/ernie_demo_config.json), or ``--teacher_dir`` an existing run;
3. offline teacher labels (``--do_predict`` on stdin), the teacher served by start_server;
4. every student x variant x seed: ``gold`` (gold labels only), ``hard`` / ``soft`` (offline
   teacher labels), ``online`` (soft labels from the server while training); the ernie_tiny
   student's ``soft`` is layer distillation from the teacher loaded in-process. Selection on dev,
   test accuracy reported as mean +- std over the seeds;
5. speed: each exported student vs the exported teacher (paddle.inference, 1 thread, batch 1
   and 32, real test sentences), the subword vs character sequence length; student training
   steps/s online vs offline; the teacher server's throughput at num_coroutine 1/4/10.
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
PY = sys.executable
ENV = dict(os.environ, PYTHONPATH=REPO)
ENV.setdefault("OMP_NUM_THREADS", "1")


def sh(args, log=None, stdin=None, stdout=None):
    t0 = time.time()
    with open(log, "w") if log else open(os.devnull, "w") as err:
        r = subprocess.run(args, cwd=REPO, env=ENV, stdin=stdin, stdout=stdout or err, stderr=err)
    if r.returncode:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(args)}; see {log}")
    return time.time() - t0


def steps_per_s(log):
    with open(log) as f:
        v = [float(x) for x in re.findall(r"speed: ([0-9.]+) steps/s", f.read())]
    return statistics.median(v) if v else None


def test_acc_of_finetune(log):
    with open(log) as f:
        m = re.findall(r"^\[test evaluation\].*?acc: ([0-9.]+)", f.read(), re.M)
    return float(m[-1]) if m else None


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data_dir", default="data/demo/sentiment")
    ap.add_argument("--teacher_vocab", default="data/demo/vocab.txt")
    ap.add_argument("--out", default="output/distill_bench")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--students", default="bow,cnn,lstm,ernie_tiny")
    ap.add_argument("--variants", default="gold,hard,soft,online")
    ap.add_argument("--teacher_dir", default=None)
    ap.add_argument("--teacher_init", default=None)
    ap.add_argument("--teacher_config", default="config/ernie_demo_config.json")
    ap.add_argument("--teacher_steps", type=int, default=3000)
    ap.add_argument("--aug_times", type=int, default=10)
    ap.add_argument("--epoch", type=float, default=1.0, help="student epochs over gold + augmented rows")
    ap.add_argument("--no_speed", action="store_true")
    ap.add_argument("--speed_shapes", default="config/ernie_config.json,config/ernie_tiny_config.json",
                    help="ERNIE configs timed beside the teacher with random weights (latency does not depend "
                         "on them): the original's base teacher and ERNIE-tiny; '' for none")
    ap.add_argument("--json", default=None)
    return ap.parse_args()


def prepare(a, out):
    aug = os.path.join(out, "aug")
    if not os.path.isfile(os.path.join(aug, "part.0")):
        sh([PY, "-m", "distill.augment", "--data_dir", a.data_dir, "--out", aug, "--times", str(a.aug_times)],
           os.path.join(out, "augment.log"))
    vocab = os.path.join(out, "vocab.bow.txt")
    if not os.path.isfile(vocab):
        sh([PY, "-m", "distill.data", "build_vocab", "--data_dir", a.data_dir, "--unsupervise_data_dir", aug,
            "--out", vocab], os.path.join(out, "vocab.log"))
    sw = os.path.join(out, "subword")
    if not os.path.isfile(os.path.join(sw, "spm.model")):
        sh([PY, "-m", "distill.subword", "--data_dir", a.data_dir, "--out", sw, "--vocab_size", "12000"],
           os.path.join(out, "subword.log"))
    return aug, vocab, sw


def teacher(a, out):
    tdir = a.teacher_dir or os.path.join(out, "teacher")
    log = os.path.join(out, "teacher.log")
    if not os.path.isfile(os.path.join(tdir, "best", "model_state.pdparams")):
        init = ["--warm_start_from", a.teacher_init] if a.teacher_init else ["--ernie_config", a.teacher_config]
        sh([PY, "example/finetune_classifier.py", "--data_dir", a.data_dir, "--vocab_file", a.teacher_vocab, *init,
            "--max_seqlen", "128", "--run_config", json.dumps({"model_dir": tdir, "max_steps": a.teacher_steps,
                                                              "eval_steps": 500, "save_steps": 500, "seed": 1}),
            "--hparam", json.dumps({"batch_size": 32, "learning_rate": 5e-4})], log)
    return tdir, test_acc_of_finetune(log) if os.path.isfile(log) else None


def label(tdir, aug, out):
    lab = os.path.join(out, "aug_labelled")
    if os.path.isfile(os.path.join(lab, "part.0")):
        return lab
    os.makedirs(lab, exist_ok=True)
    pred = os.path.join(out, "aug.pred")
    with open(os.path.join(aug, "part.0")) as fin, open(pred, "w") as fout:
        dt = sh([PY, "example/finetune_classifier.py", "--do_predict", "--run_config",
                 json.dumps({"model_dir": tdir})], os.path.join(out, "label.log"), stdin=fin, stdout=fout)
    with open(pred) as p, open(os.path.join(aug, "part.0")) as t, open(os.path.join(lab, "part.0"), "w") as o:
        n = 0
        for pl, tl in zip(p, t):
            if pl.strip():
                o.write(pl.rstrip("\n") + "\t" + tl)
                n += 1
    print(f"labelled {n} augmented texts in {dt:.0f} s")
    return lab


def start_server(model_dir):
    proc = subprocess.Popen([PY, "-m", "propeller.tools.start_server", "-m", model_dir, "-p", "0",
                             "--num_workers", "1"], cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if not line.startswith("ready"):
        raise SystemExit(f"teacher server did not start: {line!r}")
    return proc, line.split()[1]


def run_student(a, out, student, variant, seed, aug, lab, vocab, sw, tdir, addr):
    name = f"{student}_{variant}_s{seed}"
    mdir = os.path.join(out, "runs", name)
    res = os.path.join(mdir, "result.json")
    log = os.path.join(out, "logs", name + ".log")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    if not os.path.isfile(res):
        hp = {"student": student, "distill_mode": "gold" if variant == "gold" else ("hard" if variant == "hard" else "soft"),
              "epoch": a.epoch, "batch_size": 32, "learning_rate": 1e-3 if student != "ernie_tiny" else 5e-4,
              "temperature": 2.0}
        args = ["--data_dir", a.data_dir, "--max_seqlen", "128",
                "--run_config", json.dumps({"model_dir": mdir, "eval_steps": 1000, "save_steps": 1000, "seed": seed,
                                            "log_steps": 100}),
                "--hparam", json.dumps(hp)]
        if student == "ernie_tiny":
            args += ["--vocab_file", os.path.join(sw, "vocab.txt"), "--sentence_piece_model",
                     os.path.join(sw, "spm.model"), "--word_dict", os.path.join(sw, "word_dict.txt")]
        else:
            args += ["--vocab_file", vocab]
        script = "distill/distill_chnsentocorp.py"
        if variant in ("hard", "soft") and student != "ernie_tiny":
            args += ["--unsupervise_data_dir", lab]
        elif variant == "soft":  # ernie_tiny: layer distillation from the teacher loaded here
            args += ["--unsupervise_data_dir", aug, "--teacher_model_dir", os.path.join(tdir, "best"),
                     "--teacher_vocab_file", a.teacher_vocab]
        elif variant == "online":
            script = "distill/distill_chnsentocorp_with_propeller_server.py"
            args += ["--unsupervise_data_dir", aug, "--teacher_host", addr, "--teacher_vocab_file", a.teacher_vocab,
                     "--server_batch_size", "64", "--num_coroutine", "10"]
        sh([PY, script, *args], log)
    with open(res) as f:
        r = json.load(f)
    return {"name": name, "student": student, "dev": r["dev"]["acc"], "test": r["test"]["acc"],
            "steps_per_s": steps_per_s(log)}


def shape_export(out, config_path):
    """An exported classifier of the shape in ``config_path`` with random weights (for latency only)."""
    import paddle

    from ernie.export import export_ernie
    from ernie.modeling import ErnieConfig, ErnieForSequenceClassification
    name = os.path.splitext(os.path.basename(config_path))[0]
    ckpt, exp = os.path.join(out, "speed_shapes", name), os.path.join(out, "speed_shapes", name + "_inference")
    if not os.path.isfile(os.path.join(exp, "model_meta.json")):
        os.makedirs(ckpt, exist_ok=True)
        config = ErnieConfig.from_json(config_path)
        paddle.seed(1)
        paddle.save(ErnieForSequenceClassification(config, num_labels=2).state_dict(),
                    os.path.join(ckpt, "model_state.pdparams"))
        config.to_json(os.path.join(ckpt, "config.json"))
        export_ernie(ckpt, exp, task="sequence_classification")
    return name, exp


def speed(a, out, tdir, rows):
    """Latency (ms, median of runs) of each exported model at batch 1 and 32, one thread: the
    teacher, each student, and ``--speed_shapes`` (random weights; subword input for a config
    named *tiny*, as ERNIE-tiny reads subwords; the teacher's characters otherwise)."""
    import numpy as np

    from distill.data import WordTokenizer
    from distill.teacher import encode_for_teacher, teacher_tokenizer
    from propeller.inference.predictor import Predictor
    with open(os.path.join(a.data_dir, "test.tsv"), encoding="utf-8") as f:
        texts = [line.rstrip("\n").split("\t")[1] for line in f][1:][:256]
    ttok = teacher_tokenizer(a.teacher_vocab)
    t_ids = [encode_for_teacher(ttok, t, 128)[0] for t in texts]
    models = {"teacher": (os.path.join(tdir, "best_inference", "inference"), t_ids, True)}
    sw = os.path.join(out, "subword")
    lens = {"teacher_chars": float(np.mean([len(x) for x in t_ids]))}
    cache = {}

    def subword_ids():  # the ERNIE-tiny student and the ERNIE-tiny shape read the same subwords
        if "subword" not in cache:
            tok = teacher_tokenizer(os.path.join(sw, "vocab.txt"), os.path.join(sw, "spm.model"),
                                    os.path.join(sw, "word_dict.txt"))
            cache["subword"] = [encode_for_teacher(tok, t, 128)[0] for t in texts]
            lens["subword"] = float(np.mean([len(x) for x in cache["subword"]]))
        return cache["subword"]

    for r in rows:
        d = os.path.join(out, "runs", r["name"], "best_inference", "inference")
        student = r["student"]
        if student in [m for m in models] or not os.path.isdir(d):
            continue
        if student == "ernie_tiny":
            ids = subword_ids()
        else:
            tok = WordTokenizer(os.path.join(out, "vocab.bow.txt"))
            ids = [tok.encode(t, 128) for t in texts]
            lens["words"] = float(np.mean([len(x) for x in ids]))
        models[student] = (d, ids, False)
    for config_path in filter(None, a.speed_shapes.split(",")):
        name, exp = shape_export(out, config_path)
        if "tiny" in name:
            models[name + " (random weights, subwords)"] = (exp, subword_ids(), True)
        else:
            models[name + " (random weights, characters)"] = (exp, t_ids, True)
    out_t = {}
    for name, (d, ids, with_sent) in models.items():
        p = Predictor(d, num_threads=1)
        for bs in (1, 32):
            times = []
            for i in range(0, min(len(ids), 64 if bs == 1 else 256), bs):
                chunk = ids[i:i + bs]
                n = max(len(x) for x in chunk)
                src = np.array([np.pad(x, (0, n - len(x))) for x in chunk], np.int64)
                feed = [src, np.zeros_like(src)] if with_sent else [src]
                t0 = time.perf_counter()
                p.predict(feed)
                times.append((time.perf_counter() - t0) * 1000)
            out_t[f"{name}@{bs}"] = statistics.median(times[1:] or times)
    return out_t, lens


def teacher_throughput(addr, a):
    import numpy as np

    from distill.teacher import encode_for_teacher, teacher_tokenizer
    from propeller.service.client import InferenceClient
    with open(os.path.join(a.data_dir, "dev.tsv"), encoding="utf-8") as f:
        texts = [line.rstrip("\n").split("\t")[1] for line in f][1:][:1024]
    tok = teacher_tokenizer(a.teacher_vocab)
    enc = [encode_for_teacher(tok, t, 128) for t in texts]
    n = max(len(e[0]) for e in enc)
    src = np.array([np.pad(e[0], (0, n - len(e[0]))) for e in enc])
    sent = np.zeros_like(src)
    out = {}
    for k in (1, 4, 10):
        with InferenceClient(addr, batch_size=64, num_coroutine=k, timeout=60) as c:
            c(src[:64], sent[:64])
            t0 = time.time()
            c(src, sent)
            out[k] = len(src) / (time.time() - t0)
    return out


def main():
    a = parse()
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    aug, vocab, sw = prepare(a, out)
    tdir, t_acc = teacher(a, out)
    lab = label(tdir, aug, out)
    seeds = [int(s) for s in a.seeds.split(",")]
    variants = a.variants.split(",")
    server, addr = (None, None)
    rows = []
    try:
        if "online" in variants:
            server, addr = start_server(os.path.join(tdir, "best_inference", "inference"))
        for student in a.students.split(","):
            for variant in variants:
                if student == "ernie_tiny" and variant in ("hard", "online"):
                    continue
                for seed in seeds:
                    r = run_student(a, out, student, variant, seed, aug, lab, vocab, sw, tdir, addr)
                    print(json.dumps(r), flush=True)
                    rows.append(r)
        thr = teacher_throughput(addr, a) if server else None
    finally:
        if server:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
    lat, lens = ({}, {}) if a.no_speed else speed(a, out, tdir, rows)
    table = {}
    for r in rows:
        key = r["name"].rsplit("_s", 1)[0]
        table.setdefault(key, []).append(r)
    summary = {"teacher_test_acc": t_acc, "teacher_dir": tdir, "seeds": seeds, "latency_ms": lat,
               "seq_len": lens, "teacher_rows_per_s": thr, "runs": rows,
               "mean_std": {k: (statistics.mean(x["test"] for x in v),
                                statistics.stdev([x["test"] for x in v]) if len(v) > 1 else None,
                                statistics.median([x["steps_per_s"] or 0 for x in v]))
                            for k, v in table.items()}}
    print("| run | test acc (mean ± std) | seeds | train steps/s |")
    print("|---|---|---|---|")
    print(f"| teacher | {t_acc} | 1 | |")
    for k, (m, s, sps) in summary["mean_std"].items():
        print(f"| {k} | {m:.4f}{'' if s is None else f' ± {s:.4f}'} | {len(table[k])} | {sps:.1f} |")
    for k, v in lat.items():
        print(f"latency {k}: {v:.2f} ms")
    print("sequence lengths:", lens, "teacher rows/s by num_coroutine:", thr)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
