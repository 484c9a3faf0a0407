"""Does every pre-training task learn? Each task trained alone from random init, measured on
held-out documents against its chance level.

    python bench/bench_tasks.py [--tasks km,cp,tdr,sr,sd,dr,ir,nsp] [--steps 600] [--batch_size 32]
        [--learning_rate 3e-3] [--ernie_config config/ernie_demo_config.json] [--eval_batches 16]
        [--out output/bench_tasks]

Every task but capitalization trains on the demo People's Daily corpus and is measured on its
validation documents (``zh_corpus/valid``); capitalization (English only) on the pydoc corpus
(``en_corpus``). TDR is language-blind and the English corpus (~300 documents) is too small for it:
400 batches of 32 memorise it (training loss 0.24, held-out 0.67 above the prior's 0.62). Each task gets the same budget (``--steps`` batches, one task per batch), through
the pre-training engine itself (``ernie.pretraining.pretrain``), with the same fixed evaluation
batches the engine builds.

Chance level: for a classification task, the entropy of the label distribution of the held-out
examples (what a model that knows only the label prior would score, at best) and the majority
class's share as the accuracy to beat; for knowledge masking, the cross-entropy of the held-out
targets under the training corpus's unigram distribution (add-one smoothed): a model that has
learnt character frequencies and nothing of the context scores exactly that. A task learns when
its held-out loss ends clearly below chance (KM: at least 1 nat; classification: at least 25% of
the prior's entropy) and its accuracy beats the majority class.

Linear probe (sentence-level tasks): is there a signal for a model to find? The task's own
examples (from the same streams: ``--probe_examples`` from the training documents, the same number
from the held-out ones) go to a logistic regression over features any such model could compute:
the characters of each segment (bags, TF-IDF) and how much the segments share (overlap counts and
Jaccard of their character sets and bigrams). Its held-out log loss next to the network's says
whether a task at chance lacks signal in the demo corpus or a model that finds it.
"""
import argparse
import json
import os
import platform
import shutil
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

TASKS = {  # name -> (corpus, options)
    "km": ("zh", {"type": "knowledge_masking", "levels": {"char": 0.2, "word": 0.3, "unit": 0.5}, "pack": True}),
    "cp": ("en", {"type": "capitalization"}),
    "tdr": ("zh", {"type": "token_document_relation"}),
    "sr": ("zh", {"type": "sentence_reordering", "max_segments": 3}),
    "sd": ("zh", {"type": "sentence_distance"}),
    "dr": ("zh", {"type": "discourse_relation", "lang": "zh"}),
    "ir": ("zh", {"type": "ir_relevance"}),
    "nsp": ("zh", {"type": "next_sentence"}),
}
DATA = {
    "zh": {"corpus": "data/demo/zh_corpus/train", "valid_corpus": "data/demo/zh_corpus/valid",
           "vocab": "data/demo/vocab.txt", "lexicon": "data/demo/zh_entities.txt",
           "shards": "output/shards/zh_demo", "valid_shards": "output/shards/zh_demo_valid", "processes_num": 2},
    "en": {"corpus": "data/demo/en_corpus/train", "valid_corpus": "data/demo/en_corpus/valid",
           "vocab": "output/shards/en_demo_vocab.txt", "build_vocab": {"min_freq": 2, "max_wordpiece": 6000},
           "shards": "output/shards/en_demo", "valid_shards": "output/shards/en_demo_valid", "processes_num": 2},
}


def machine():
    model, flags = "?", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name") and model == "?":
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    shown = sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})
    return f"{model} ({os.cpu_count()} CPUs; {' '.join(shown) or 'no avx512/amx'}), Python {platform.python_version()}"


def ensure_demo_data():
    """The demo corpora and the Chinese vocabulary (as script/demo.sh builds them)."""
    if os.path.isfile("data/demo/vocab.txt") and os.path.isdir("data/demo/zh_corpus/train"):
        return
    from ernie.data.demo import build
    from ernie.tokenizing import build_vocab, save_vocab
    build("data/demo")
    save_vocab(build_vocab(["data/demo/zh_corpus_raw.txt", "data/demo/zh_reviews_raw.txt"]), "data/demo/vocab.txt")


def entropy(counts):
    p = np.asarray(counts, dtype=np.float64)
    p = p[p > 0] / p.sum()
    return float(-(p * np.log(p)).sum())


def held_out_labels(evals):
    """Every label of the fixed evaluation batches (each batch: ..., labels tuple last)."""
    return np.concatenate([np.concatenate([np.asarray(x).reshape(-1) for x in batch[-1]]) for batch in evals])


def unigram_cross_entropy(corpus, vocab_size, targets):
    """Nats per target of the training corpus's add-one-smoothed unigram model."""
    counts = np.ones(vocab_size, dtype=np.float64)
    for doc in corpus.documents():
        for s in doc:
            counts += np.bincount(np.asarray(s.ids, dtype=np.int64), minlength=vocab_size)[:vocab_size]
    logp = np.log(counts / counts.sum())
    return float(-logp[targets].mean())


def run_task(name, args):
    from ernie.pretraining import pretrain
    lang, opts = TASKS[name]
    model_dir = os.path.join(args.out, name)
    shutil.rmtree(model_dir, ignore_errors=True)
    cfg = {"seed": args.seed, "batch_size": args.batch_size, "max_seqlen": args.max_seqlen, "mix": "task_per_batch",
           "model": {"ernie_config": args.ernie_config, "overrides": {"vocab_size": "from_data"}},
           "data": dict(DATA[lang], progress=False), "tasks": {name: opts},
           "stages": [{"name": name, "budgets": {name: args.steps}}],
           "run_config": {"model_dir": model_dir, "log_steps": max(1, args.steps // 4), "save_steps": args.steps,
                          "eval_steps": args.steps, "max_ckpt": 1},
           "hparams": {"learning_rate": args.learning_rate, "warmup_proportion": 0.1, "weight_decay": 0.01},
           "eval": {"batches_per_task": args.eval_batches}}
    run = pretrain.build_run(cfg)
    labels = held_out_labels(run.evals["dev"])
    task = run.tasks[0]
    if task.level == "mlm":
        chance = unigram_cross_entropy(run.stream.corpus, run.config.vocab_size, labels)
        chance_what, majority = "unigram cross-entropy", np.bincount(labels).max() / len(labels)
    else:
        chance = entropy(np.bincount(labels))
        chance_what, majority = "label-prior entropy", np.bincount(labels).max() / len(labels)
    probe = None
    if task.level == "sentence" and args.probe_examples:
        vcorpus = pretrain.load_corpus(cfg["data"], model_dir, args.max_seqlen, valid=True)
        vctx = pretrain.task_context(cfg, vcorpus, run.stream.ctx.tokenizer, run.config)
        probe = linear_probe(task, run.stream.corpus, vcorpus, run.stream.ctx, vctx, args.probe_examples)
    t0 = time.time()
    state = pretrain.train_run(run)
    dev = state.last_eval["dev"]
    loss, acc = dev[f"{name}_loss"], dev[f"{name}_acc"]
    gap = chance - loss
    learns = (gap >= 1.0 if task.level == "mlm" else gap >= 0.25 * chance) and acc > majority
    return {"task": name, "corpus": lang, "level": task.level, "classes": task.num_classes or run.config.vocab_size,
            "steps": args.steps, "held_out_examples": int(len(labels)) if task.level == "sentence" else None,
            "held_out_targets": int(len(labels)), "loss": loss, "chance": chance, "chance_is": chance_what,
            "gap_nats": gap, "gap_share": gap / chance, "acc": acc, "majority": float(majority),
            "learns": bool(learns), "seconds": time.time() - t0,
            "probe_loss": probe[0] if probe else None, "probe_acc": probe[1] if probe else None}


def _segments(ex, sep_id):
    ids = [int(x) for x in ex.token_ids[1:]]
    out, cur = [], []
    for t in ids:
        if t == sep_id:
            out.append(cur)
            cur = []
        else:
            cur.append(t)
    return out


def _overlap(a, b):
    sa, sb = set(a), set(b)
    ba, bb = set(zip(a, a[1:])), set(zip(b, b[1:]))
    return [len(sa & sb), len(sa & sb) / max(1, len(sa | sb)), len(ba & bb), len(ba & bb) / max(1, len(ba | bb)),
            len(a), len(b)]


def linear_probe(task, corpus, vcorpus, ctx, vctx, n):
    """Held-out (log loss, accuracy) of a logistic regression on segment features (see the doc)."""
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.preprocessing import StandardScaler
    from ernie.pretraining.pipeline import TaskStream

    def examples(c, cx, seed):
        stream = TaskStream(task, c, cx, seed=seed)
        return [next(stream) for _ in range(n)]

    def feats(exs):
        segs = [_segments(e, ctx.sep_id) for e in exs]
        text = lambda k: [" ".join(map(str, s[k])) if len(s) > k else "" for s in segs]  # noqa: E731
        pairs = [_overlap(s[0], s[1]) if len(s) > 1 else [0] * 6 for s in segs]
        return text(0), text(1), text(2), np.array(pairs, float), np.array([int(e.labels[0]) for e in exs])

    tr, te = feats(examples(corpus, ctx, 11)), feats(examples(vcorpus, vctx, 12))
    blocks_tr, blocks_te = [], []
    for k in range(3):
        vec = TfidfVectorizer(token_pattern=r"\S+", min_df=2)
        if not any(tr[k]):
            continue
        blocks_tr.append(vec.fit_transform(tr[k]))
        blocks_te.append(vec.transform(te[k]))
    sc = StandardScaler().fit(tr[3])
    xtr = hstack(blocks_tr + [csr_matrix(sc.transform(tr[3]))]).tocsr()
    xte = hstack(blocks_te + [csr_matrix(sc.transform(te[3]))]).tocsr()
    best = None
    for c in (0.1, 1.0):
        lr = LogisticRegression(C=c, max_iter=2000).fit(xtr, tr[4])
        prob = lr.predict_proba(xte)
        ll = log_loss(te[4], prob, labels=lr.classes_)
        if best is None or ll < best[0]:
            best = (ll, float((lr.classes_[prob.argmax(1)] == te[4]).mean()))
    return best


def table(rows):
    lines = ["| task | corpus | held-out loss | chance | below chance | accuracy | majority | learns | linear probe loss / acc | s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        probe = f"{r['probe_loss']:.3f} / {r['probe_acc']:.3f}" if r.get("probe_loss") is not None else "–"
        lines.append(f"| {r['task']} | {r['corpus']} | {r['loss']:.3f} | {r['chance']:.3f} ({r['chance_is']}) | "
                     f"{r['gap_nats']:.3f} nats ({100 * r['gap_share']:.0f}%) | {r['acc']:.3f} | {r['majority']:.3f} | "
                     f"{'yes' if r['learns'] else '**no**'} | {probe} | {r['seconds']:.0f} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch_size", type=int, default=32)
    ap.add_argument("--max_seqlen", type=int, default=128)
    ap.add_argument("--learning_rate", type=float, default=3e-3)
    ap.add_argument("--ernie_config", default="config/ernie_demo_config.json")
    ap.add_argument("--eval_batches", type=int, default=16, help="held-out batches per task")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--probe_examples", type=int, default=6000, help="per side, for the linear probe (0: none)")
    ap.add_argument("--out", default="output/bench_tasks")
    args = ap.parse_args(argv)
    os.chdir(ROOT)
    from propeller.log import setup_logging
    setup_logging("ernie")
    ensure_demo_data()
    names = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = sorted(set(names) - set(TASKS))
    if unknown:
        ap.error(f"unknown tasks {unknown}; known: {', '.join(TASKS)}")
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for name in names:
        rows.append(run_task(name, args))
        with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as f:
            json.dump({"machine": machine(), "args": vars(args), "rows": rows}, f, indent=1)
    text = (f"`python bench/bench_tasks.py --steps {args.steps} --batch_size {args.batch_size} --learning_rate "
            f"{args.learning_rate} --ernie_config {args.ernie_config}`\n\nMachine: {machine()}\n\n{table(rows)}\n")
    with open(os.path.join(args.out, "results.md"), "w", encoding="utf-8") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
