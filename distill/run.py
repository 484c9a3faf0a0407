"""The distillation command shared by ``distill_chnsentocorp.py`` (offline: the teacher's labels
are in the files) and ``distill_chnsentocorp_with_propeller_server.py`` (online: a teacher
server is asked while the student trains). A run may instead load the teacher here
(``--teacher_model_dir``), which a Transformer student needs for layer distillation.

Training goes through Propeller's one loop (``propeller.train_and_eval``): checkpoints in
``model_dir`` (a rerun resumes, also after kill -9), the best student on dev in ``best/``
(state dict + ``distill.json`` + vocab: ``python -m inference.export`` takes it) and
``best_inference/inference`` (ready for ``python -m propeller.tools.start_server``), then the
original ``[dev evaluation]`` / ``[test evaluation]`` lines and ``model_dir/result.json``.
"""
import json
import logging
import math
import os

import numpy as np

import propeller.paddle as propeller
from distill.data import WordTokenizer, read_gold, read_unsup
from distill.layer_distill import align
from distill.model import DistillModel, check_hparams
from distill.students import STUDENTS
from distill.teacher import LocalTeacher, OnlineTeacher, TeacherLabelled, encode_for_teacher, teacher_tokenizer
from propeller.fsutil import atomic_write_text
from propeller.log import setup_logging

__all__ = ["make_parser", "main", "build_student_tokenizer", "META_FILE"]

log = logging.getLogger("distill")
META_FILE = "distill.json"


def make_parser(online=False):
    p = propeller.ArgumentParser("distil a fine-tuned ERNIE teacher into a small student"
                                 + (" (teacher served online)" if online else ""))
    p.add_argument("--data_dir", required=True, help="task data: train/dev/test .tsv (label<TAB>text_a)")
    p.add_argument("--vocab_file", required=True,
                   help="student vocabulary: words (bow/cnn/lstm; python -m distill.data build_vocab) or the "
                        "subword vocab of --sentence_piece_model (ernie_tiny)")
    p.add_argument("--unsupervise_data_dir", default=None,
                   help="augmented/unlabelled text: `label<TAB>probs<TAB>text` lines (teacher-labelled) or `text`")
    p.add_argument("--max_seqlen", type=int, default=128, help="student tokens per example")
    p.add_argument("--num_labels", type=int, default=2)
    p.add_argument("--sentence_piece_model", default=None, help="ernie_tiny student: SentencePiece model")
    p.add_argument("--word_dict", default=None, help="ernie_tiny student: word dict cut before SentencePiece")
    p.add_argument("--teacher_model_dir", default=None,
                   help="load the teacher here (a finetune_classifier.py run's best/): layer distillation for a "
                        "Transformer student, soft labels for any")
    p.add_argument("--teacher_host", default=None, help="online teacher: tcp://HOST:PORT of start_server")
    p.add_argument("--teacher_vocab_file", default=None, help="the teacher's vocab.txt")
    p.add_argument("--teacher_max_seqlen", type=int, default=128)
    p.add_argument("--server_batch_size", type=int, default=64, help="rows per request to the teacher server")
    p.add_argument("--num_coroutine", type=int, default=10, help="parallel requests to the teacher server")
    p.add_argument("--teacher_timeout", type=float, default=10.0, help="seconds per teacher request")
    p.add_argument("--teacher_retries", type=int, default=3, help="re-sends of a timed-out teacher request")
    p.add_argument("--on_bad_line", choices=("error", "skip"), default="error")
    return p


def build_student_tokenizer(student_cls, vocab_file, sentence_piece_model=None, word_dict=None):
    """(tokenizer, encode(text, max_seqlen) -> ids, tokens(ids) -> token strings or None)."""
    if not os.path.isfile(vocab_file):
        raise SystemExit(f"--vocab_file {vocab_file}: no such file" +
                         (" (build one: python -m distill.data build_vocab --data_dir DIR --out FILE)"
                          if student_cls.word_level else ""))
    if student_cls.word_level:
        tok = WordTokenizer(vocab_file)
        return tok, tok.encode, None, len(tok.vocab)
    tok = teacher_tokenizer(vocab_file, sentence_piece_model, word_dict)

    def encode(text, max_seqlen):
        return encode_for_teacher(tok, text, max_seqlen)[0]
    return tok, encode, tok.convert_ids_to_tokens, max(tok.vocab.values()) + 1


def _batches(examples, bs, pads, seed=None):
    ds = propeller.data.Dataset.from_list(examples)
    if seed is not None:
        ds = ds.shuffle(len(examples), seed=seed).repeat()
        ds = ds.bucket_by_length(bs, key=lambda e: len(e[0]), seed=seed)
    else:
        ds = propeller.data.Dataset.from_list(sorted(examples, key=lambda e: len(e[0])))
    return ds.padded_batch(bs, pad_value=list(pads))


def _pack(batch):
    # the last three fields are the labels: (gold, teacher logits, has_teacher)
    return tuple(batch[:-3]) + ((batch[-3], batch[-2], batch[-1]),)


def main(argv=None, online=False):
    setup_logging("distill", "ernie")
    args = make_parser(online).parse_args(argv)
    run_config = propeller.parse_runconfig(args)
    if run_config.model_dir is None:
        run_config = run_config.replace(model_dir="output/distill")
    hp = check_hparams(propeller.parse_hparam(args))
    if online and not args.teacher_host:
        raise SystemExit("--teacher_host tcp://HOST:PORT is required (the teacher served by start_server)")
    if (args.teacher_host or args.teacher_model_dir) and hp["distill_mode"] == "gold":
        log.warning("distill_mode gold: the teacher is not used")
    student_cls = STUDENTS[hp["student"]]
    tok, encode, id2tok, vocab_size = build_student_tokenizer(student_cls, args.vocab_file,
                                                              args.sentence_piece_model, args.word_dict)
    num_labels = int(args.num_labels)
    hp = hp.join(dict(vocab_size=vocab_size, num_labels=num_labels))
    mode = hp["distill_mode"]

    # ---- the teacher: local (in this process), online (server) or offline (labels in the files)
    local = online_t = None
    if mode != "gold" and args.teacher_model_dir:
        local = LocalTeacher(args.teacher_model_dir, num_labels)
    elif mode != "gold" and args.teacher_host:
        if not args.teacher_vocab_file:
            raise SystemExit("--teacher_vocab_file is required with --teacher_host (the teacher's vocab.txt)")
        online_t = OnlineTeacher(args.teacher_host, args.teacher_vocab_file, args.teacher_max_seqlen,
                                 args.server_batch_size, args.num_coroutine, args.teacher_timeout, args.teacher_retries)
        online_t.check(num_labels)  # refuse a teacher of another label space before any training
    if local is not None:
        t_tok = teacher_tokenizer(args.teacher_vocab_file or os.path.join(args.teacher_model_dir, "vocab.txt"))
    elif online_t is not None:
        t_tok = online_t.tokenizer

    # ---- data
    gold = read_gold(args.data_dir, "train", num_labels, args.on_bad_line)
    if not gold:
        raise SystemExit(f"no training data in {args.data_dir} (train.tsv or train/)")
    dev = read_gold(args.data_dir, "dev", num_labels, args.on_bad_line)
    test = read_gold(args.data_dir, "test", num_labels, args.on_bad_line)
    unsup = []
    if args.unsupervise_data_dir and mode != "gold":
        unsup = read_unsup(args.unsupervise_data_dir, num_labels)
        unlabelled = sum(r.probs is None for r in unsup)
        if unlabelled and local is None and online_t is None:
            raise SystemExit(f"{args.unsupervise_data_dir}: {unlabelled} line(s) have no teacher label; label them "
                             f"first (finetune_classifier.py --do_predict, see distill/script/) or give "
                             f"--teacher_host / --teacher_model_dir")
    log.info("student %s (vocab %d), mode %s: %d gold + %d teacher-side training texts", hp["student"], vocab_size,
             mode, len(gold), len(unsup))

    C, ml = num_labels, args.max_seqlen
    zeros = np.zeros(C, np.float32)
    rows = [(t, y, None) for t, y in gold] + [(r.text, -1, r.probs) for r in unsup]
    train_ex = []
    for text, y, probs in rows:
        ids = encode(text, ml)
        if local is None and online_t is None:  # offline: the files' probabilities, as logits
            soft = np.log(np.clip(probs, 1e-7, None)).astype(np.float32) if probs is not None else zeros
            train_ex.append((ids, np.int64(y), soft, np.float32(probs is not None)))
            continue
        t_ids, t_sent = encode_for_teacher(t_tok, text, args.teacher_max_seqlen)
        ex = (ids, t_ids, t_sent)
        if local is not None:
            if id2tok is not None:
                ov = align(id2tok(ids), t_tok.convert_ids_to_tokens(t_ids))
            else:
                ov = np.zeros((1, 1), np.float32)  # no layer distillation: a placeholder
            ex += (ov,)
        train_ex.append(ex + (np.int64(y), zeros, np.float32(0)))
    n_feat = len(train_ex[0]) - 3
    pads = [0] * n_feat + [-1, 0, 0]

    bs = int(hp["batch_size"])
    if run_config.max_steps is None:
        run_config = run_config.replace(max_steps=max(1, math.ceil(float(hp["epoch"]) * len(train_ex) / bs)))
        log.info("%d training rows, %g epochs of batch %d: max_steps %d", len(train_ex), hp["epoch"], bs,
                 run_config.max_steps)
    seed = run_config.seed if run_config.seed is not None else 1  # fixed: a resumed run replays the stream
    train_ds = _batches(train_ex, bs, pads, seed).map(_pack)
    if online_t is not None:
        window = max(1, args.num_coroutine * args.server_batch_size // bs)
        train_ds = TeacherLabelled(train_ds, online_t, window=window)
    ebs = int(hp["eval_batch_size"])
    dev_ex = [(encode(t, ml), np.int64(y)) for t, y in dev]
    test_ex = [(encode(t, ml), np.int64(y)) for t, y in test]

    model_dir = run_config.model_dir
    os.makedirs(model_dir, exist_ok=True)
    meta = dict(student=hp["student"], hparams={k: v for k, v in hp.items()}, vocab_size=vocab_size,
                num_labels=num_labels, max_seqlen=ml, word_level=student_cls.word_level,
                sentence_piece_model=os.path.basename(args.sentence_piece_model) if args.sentence_piece_model else None,
                word_dict=os.path.basename(args.word_dict) if args.word_dict else None,
                teacher=args.teacher_host or args.teacher_model_dir or "offline labels")
    atomic_write_text(os.path.join(model_dir, META_FILE), json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
    assets = {META_FILE: meta, "vocab.txt": args.vocab_file}
    for f in (args.sentence_piece_model, args.word_dict):
        if f:
            assets[os.path.basename(f)] = f
    better = lambda old, new: old is None or new["acc"] > old["acc"]  # noqa: E731
    eval_sets, exporters = None, []
    if dev_ex:
        eval_sets = {"dev": _batches(dev_ex, ebs, [0, 0])}
        exporters = [propeller.BestExporter(os.path.join(model_dir, "best"), cmp_fn=better, assets=assets),
                     propeller.BestInferenceModelExporter(os.path.join(model_dir, "best_inference"), cmp_fn=better)]
    else:
        log.warning("no dev set: no evaluation during training and no best-model export")

    def model_fn(h, m, rc):
        return DistillModel(h, m, rc, teacher=local)

    try:
        propeller.train_and_eval(model_fn, hp, run_config, train_ds, eval_sets, exporters=exporters)
    finally:
        if online_t is not None:
            online_t.close()

    best = os.path.join(model_dir, "best")
    if not os.path.isdir(best):
        return None
    learner = propeller.Learner(model_fn, run_config, hp)
    from propeller.train import load_model_state
    load_model_state(learner.model, best)
    with open(os.path.join(best, "eval_result.json"), encoding="utf-8") as f:
        best_step = json.load(f).get("step")
    result = {"best_step": best_step, "student": hp["student"], "mode": mode}
    for name, ex in (("dev", dev_ex), ("test", test_ex)):
        if ex:
            r = learner.evaluate(_batches(ex, ebs, [0, 0]), name=name)
            result[name] = {"acc": r["acc"], "loss": r["loss"], "data_num": r["data_num"]}
            print(f"[{name} evaluation] ave loss: {r['loss']:.6f}, acc: {r['acc']:.6f}, data_num: {r['data_num']}, "
                  f"elapsed time: {r['elapsed_time']:.6f} s, steps: {best_step}", flush=True)
    atomic_write_text(os.path.join(model_dir, "result.json"), json.dumps(result, indent=1) + "\n")
    return result

