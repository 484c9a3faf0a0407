"""The command line shared by the fine-tuning examples: train with Propeller's
``train_and_eval`` (best model exported as a state dict and as an inference model), evaluate
the best model on dev and test, or ``--do_predict`` from stdin.

Outputs in ``model_dir`` (run_config; default ``./output``):
  model_<step>/, ckpt_info     Propeller checkpoints (a rerun resumes from the newest)
  best/                        the best model by the task's dev metric (model_state.pdparams,
                               config.json, vocab.txt, task.json: inference.export takes it as is)
  best_inference/inference/    the same model exported for paddle.inference
  task.json                    model config, labels, tokenizer files: what --do_predict needs
"""
import dataclasses
import functools
import json
import logging
import math
import os
import sys

import numpy as np

import propeller.paddle as propeller
from ernie.finetune.common import MODEL_FIELDS, build_tokenizer, check_vocab, load_weights, resolve_ernie_config
from ernie.finetune.data import BadLineError, BadLines, Columns, HeaderError, decode_line, split_files, token_batches
from propeller.cli import run_main
from propeller.fsutil import atomic_write_text
from propeller.train.trainer import known_hparams
from propeller.log import setup_logging

log = logging.getLogger("ernie.finetune")

__all__ = ["Task", "TaskOptions", "task_options", "make_parser", "main", "EvalLogHook", "DEFAULT_MAX_SEQLEN"]

TASK_FILE = "task.json"
BEST_DIR, BEST_INFERENCE_DIR = "best", "best_inference"
DEFAULT_MAX_SEQLEN = 128


@dataclasses.dataclass(frozen=True)
class TaskOptions:
    """What a task is built with, resolved once (:func:`task_options`): ``max_seqlen`` and
    ``cased`` from the flags, else the trained model's task.json, else the defaults; ``flags``
    holds the task's own flags (those its ``add_args`` declares; None when not given)."""
    max_seqlen: int = DEFAULT_MAX_SEQLEN
    cased: bool = False
    flags: dict = dataclasses.field(default_factory=dict)

    def flag(self, name, default=None):
        v = self.flags.get(name)
        return default if v is None else v


def task_options(args, meta=None, task_flags=()):
    """The TaskOptions of a command line (``meta``: a trained model's task.json, for --do_predict)."""
    meta = meta or {}
    return TaskOptions(max_seqlen=int(args.max_seqlen or meta.get("max_seqlen") or DEFAULT_MAX_SEQLEN),
                       cased=bool(args.cased or meta.get("cased")),
                       flags={name: getattr(args, name, None) for name in task_flags})


class Task:
    """What differs between classification, ranking, NER and MRC. Examples are tuples whose
    first field is the token ids; ``to_batch`` turns a padded batch into the trainer's
    ``(src_ids, sent_ids, labels)``."""

    name = "task"
    model_class = None
    data_exts = (".tsv",)
    best_metric, higher_is_better = "acc", True
    shown_metrics = ("acc",)

    def __init__(self, options, tokenizer, meta=None):
        self.options, self.tokenizer, self.meta = options, tokenizer, dict(meta or {})
        self.max_seqlen = options.max_seqlen

    @staticmethod
    def add_args(parser):
        pass

    # ---- what is saved and rebuilt
    def task_meta(self):
        """Saved to task.json at training time and handed back as ``meta`` for --do_predict."""
        return {}

    def model_hparams(self):
        return {}

    def model_fn(self):
        return self.model_class

    # ---- data
    @property
    def pad_values(self):
        return (self.tokenizer.pad_id or 0, 0, 0)

    def read(self, files, bad):
        raise NotImplementedError

    def to_batch(self, batch):
        return batch[0], batch[1], batch[2]

    def data_num(self, examples):
        """The data_num shown in log lines (None: the evaluated rows)."""
        return None

    def has_labels(self, files):
        return True

    def write_predictions(self, learner, files, out_path):
        raise SystemExit(f"{files}: no labels to evaluate against")

    def predict(self, learner, inp, out, bad):
        raise NotImplementedError

    # ---- the original log line
    def eval_line(self, name, result, files, epoch, steps, data_num=None):
        shown = "".join(f", {k}: {result[k]:.6f}" for k in self.shown_metrics if k in result)
        return (f"[{name} evaluation] ave loss: {result['loss']:.6f}{shown}, "
                f"data_num: {data_num if data_num is not None else result.get('data_num')}, "
                f"elapsed time: {result.get('elapsed_time', 0.0):.6f} s, file: {','.join(files)}, "
                f"epoch: {epoch}, steps: {steps}")

    def better(self, old, new):
        if old is None:
            return True
        a, b = old.get(self.best_metric), new[self.best_metric]
        if a is None or not math.isfinite(a):
            return math.isfinite(b)
        return b > a if self.higher_is_better else b < a


class EvalLogHook(propeller.RunHook):
    """Prints each evaluation the trainer ran in the original ERNIE format (stdout)."""

    def __init__(self, task, files, examples_per_epoch, batch_size, data_num=None, out=None):
        self.task, self.files, self.n, self.bs = task, files, max(1, examples_per_epoch), batch_size
        self.data_num, self.out, self._seen = data_num or {}, out or sys.stdout, {}

    def _emit(self, state):
        for name, result in (state.last_eval or {}).items():
            if self._seen.get(name) is result:
                continue
            self._seen[name] = result
            epoch = state.gstep * self.bs // self.n
            print(self.task.eval_line(name, result, self.files.get(name, []), epoch, state.gstep,
                                      self.data_num.get(name)), file=self.out, flush=True)

    def after_step(self, state):
        self._emit(state)

    def after_train(self, state):
        self._emit(state)


def make_parser(task_cls, description=None):
    p = propeller.ArgumentParser(description or f"ERNIE fine-tuning: {task_cls.name}")
    p.add_argument("--data_dir", help="task data: {train,dev,test}/ directories or {train,dev,test}%s files"
                   % task_cls.data_exts[0])
    p.add_argument("--vocab_file", help="vocab.txt of the pre-trained model (default at predict time: the "
                                        "one recorded in model_dir/task.json)")
    p.add_argument("--max_seqlen", type=int, default=None,
                   help=f"max tokens per example (default: the trained model's at predict time, else {DEFAULT_MAX_SEQLEN})")
    p.add_argument("--do_predict", action="store_true", help="read examples from stdin, print predictions")
    p.add_argument("--warm_start_from", help="pre-trained model to start from (ours, PaddleNLP, a legacy "
                                             "params/ dir); with --do_predict: the fine-tuned model to use")
    p.add_argument("--ernie_config", help="model config JSON (or put the model fields in --hparam; default: "
                                          "the config of --warm_start_from)")
    p.add_argument("--on_bad_line", choices=("error", "skip"), default="error",
                   help="a malformed data line stops the run naming file and line, or is skipped and counted")
    p.add_argument("--cased", action="store_true", help="do not lower-case the text (cased vocabularies)")
    p.add_argument("--result_file", help="after training, write the best-on-dev model's dev and test metrics here as "
                                         "one JSON object ({\"dev.acc\": ..., \"test.acc\": ..., \"best_step\": ...}; "
                                         "what propeller.tools.search and kfold read)")
    common = {a.dest for a in p._actions}
    task_cls.add_args(p)
    p.task_flags = tuple(a.dest for a in p._actions if a.dest not in common)
    return p


def _hp(hparams, key, default):
    v = hparams.get(key, default)
    return default if v is None else v


def _load_meta(model_dir):
    path = os.path.join(model_dir, TASK_FILE)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _abs(p):
    return os.path.abspath(p) if p else p


def _batches(task, examples, batch_size, in_tokens=False, shuffle_seed=None):
    """Training batches (``shuffle_seed``: shuffled, repeated, of similar lengths) or evaluation
    batches: in length order, which pads least; every metric here is order-free."""
    if shuffle_seed is None:
        examples = sorted(examples, key=lambda e: len(e[0]))
    ds = propeller.data.Dataset.from_list(examples)
    if shuffle_seed is not None:
        ds = ds.shuffle(len(examples), seed=shuffle_seed).repeat()
        if not in_tokens:  # batches of similar lengths: half the padding, twice the speed
            ds = ds.bucket_by_length(batch_size, key=lambda e: len(e[0]), seed=shuffle_seed)
    if in_tokens:
        rows, pads = ds, task.pad_values
        ds = propeller.data.Dataset.from_generator_func(lambda: token_batches(iter(rows), batch_size, pads))
    else:
        ds = ds.padded_batch(batch_size, pad_value=list(task.pad_values))
    return ds.map(task.to_batch)


def _read_split(task, args, split, required=False):
    files = split_files(args.data_dir, split, task.data_exts)
    if not files:
        if required:
            raise SystemExit(f"no {split} data in {args.data_dir} (expected {split}/ or "
                             f"{split}{task.data_exts[0]})")
        return files, None
    if not task.has_labels(files):
        return files, None
    bad = BadLines(args.on_bad_line, split)
    examples = task.read(files, bad)
    bad.report()
    log.info("[%s] %d examples from %s", split, len(examples), ", ".join(files))
    if not examples:
        raise SystemExit(f"no usable {split} examples in {', '.join(files)}")
    return files, examples


def main(task_cls, argv=None):
    """The command line of a fine-tuning example. User errors (a bad config or hparam key, a
    missing or corrupt file, a bad data line) are one message and exit status 2
    (:func:`propeller.cli.run_main`; ``--debug`` shows the traceback)."""
    return run_main(functools.partial(_main, task_cls), argv)


def _main(task_cls, argv=None):
    setup_logging("ernie")
    parser = make_parser(task_cls)
    args = parser.parse_args(argv)
    run_config = propeller.parse_runconfig(args)
    hparams = propeller.parse_hparam(args)
    # a typo (learnig_rate) must not train silently with the default: refuse it before any work
    hparams.check(known_hparams(task_cls.model_class) | MODEL_FIELDS, source="--hparam")
    if run_config.model_dir is None:
        run_config = run_config.replace(model_dir="output")
    if args.do_predict:
        return predict(task_cls, args, parser.task_flags, run_config, hparams)
    return train(task_cls, args, parser.task_flags, run_config, hparams)


def train(task_cls, args, task_flags, run_config, hparams):
    if not args.data_dir:
        raise SystemExit("--data_dir is required for training")
    if not os.path.isdir(args.data_dir):
        raise SystemExit(f"--data_dir {args.data_dir}: no such directory")
    opts = task_options(args, None, task_flags)
    sp, wd = opts.flag("sentence_piece_model"), opts.flag("word_dict")
    tokenizer = build_tokenizer(args.vocab_file, sp, wd, not opts.cased)
    config = resolve_ernie_config(args.ernie_config, hparams, [args.warm_start_from])
    check_vocab(config, tokenizer, opts.max_seqlen)
    task = task_cls(opts, tokenizer)

    train_files, train_ex = _read_split(task, args, "train", required=True)
    if train_ex is None:
        raise SystemExit(f"{train_files}: the training data has no label column")
    dev_files, dev_ex = _read_split(task, args, "dev")
    test_files, test_ex = _read_split(task, args, "test")

    bs = int(_hp(hparams, "batch_size", 32))
    in_tokens = bool(_hp(hparams, "in_tokens", False))
    n_train = len(train_ex)
    if in_tokens:  # batch_size counts tokens: estimate examples per batch from the mean length
        mean_len = float(np.mean([len(e[0]) for e in train_ex]))
        rows_per_batch = max(1, int(bs // max(mean_len, 1)))
    else:
        rows_per_batch = bs
    if run_config.max_steps is None:
        epochs = float(_hp(hparams, "epoch", 3))
        run_config = run_config.replace(max_steps=max(1, math.ceil(epochs * n_train / rows_per_batch)))
        log.info("%d training examples, %g epochs of batch %d: max_steps %d", n_train, epochs, bs,
                 run_config.max_steps)
    seed = run_config.seed if run_config.seed is not None else 1  # fixed, so a resumed run replays the stream
    full_hparams = propeller.HParams(**{k: v for k, v in hparams.items() if k not in MODEL_FIELDS}).join(
        dict(ernie_config=config.to_dict(), **task.model_hparams()))

    model_dir = run_config.model_dir
    master = propeller.train.distribution.is_master()  # under paddle.distributed.launch only rank 0 writes
    os.makedirs(model_dir, exist_ok=True)
    meta = dict(task=task.name, ernie_config=config.to_dict(), max_seqlen=opts.max_seqlen,
                vocab_file=_abs(args.vocab_file), cased=opts.cased, sentence_piece_model=_abs(sp),
                word_dict=_abs(wd), **task.task_meta())
    if master:
        atomic_write_text(os.path.join(model_dir, TASK_FILE), json.dumps(meta, indent=1, ensure_ascii=False) + "\n")

    train_ds = _batches(task, train_ex, bs, in_tokens, shuffle_seed=seed)
    eval_bs = int(_hp(hparams, "eval_batch_size", bs if not in_tokens else max(1, rows_per_batch)))
    eval_sets, exporters = None, []
    if dev_ex:
        eval_sets = {"dev": _batches(task, dev_ex, eval_bs)}
        cmp = task.better
        # best/ gets the config, the vocab and the task meta too: inference.export takes it as
        # is (head, casing, max_seqlen from task.json)
        assets = {"config.json": config.to_dict(), TASK_FILE: meta}
        if args.vocab_file:
            assets["vocab.txt"] = args.vocab_file
        # best_inference/inference/ carries the meta inference.export writes (outputs, model,
        # config from the model; the tokenizer and its vocab from here), so TextPredictor and the
        # servers take it as it is
        tok = None
        if args.vocab_file and not sp:
            tok = {"class": "FullTokenizer", "vocab_file": "vocab.txt", "do_lower_case": not opts.cased,
                   "max_seqlen": opts.max_seqlen}
        infer_assets = {"vocab.txt": args.vocab_file} if args.vocab_file else {}
        exporters = [propeller.BestExporter(os.path.join(model_dir, BEST_DIR), cmp_fn=cmp, assets=assets),
                     propeller.BestInferenceModelExporter(os.path.join(model_dir, BEST_INFERENCE_DIR), cmp_fn=cmp,
                                                          assets=infer_assets, meta={"tokenizer": tok})]
    else:
        log.warning("no dev set: no evaluation during training and no best-model export")
    ws = None
    if args.warm_start_from:
        ws = propeller.WarmStartSetting(predicate_fn=lambda name: True, from_dir=args.warm_start_from)
    hook = EvalLogHook(task, {"dev": dev_files}, n_train, rows_per_batch,
                       data_num={"dev": task.data_num(dev_ex)} if dev_ex else None)
    propeller.train_and_eval(task.model_fn(), full_hparams, run_config, train_ds, eval_sets, ws,
                             train_hooks=[hook], exporters=exporters)

    # the best model on dev and test, as the original scripts reported at the end
    best = os.path.join(model_dir, BEST_DIR)
    if not master or not os.path.isdir(best):
        return None
    learner = propeller.Learner(task.model_fn(), run_config, full_hparams)
    load_weights(learner.model.net, best)
    with open(os.path.join(best, "eval_result.json"), encoding="utf-8") as f:
        best_dev = json.load(f)  # the dev evaluation that made this model the best
    best_step = best_dev.pop("step", None)
    final = {}
    epoch = (best_step or 0) * rows_per_batch // max(1, n_train)
    for name, files, examples in (("dev", dev_files, dev_ex), ("test", test_files, test_ex)):
        if examples:
            # dev: that evaluation of these very weights, not a second pass (~4% of a demo run)
            res = best_dev if name == "dev" else learner.evaluate(_batches(task, examples, eval_bs), name=name)
            final[name] = res
            print(task.eval_line(name, res, files, epoch, best_step, task.data_num(examples)),
                  flush=True)
        elif files:  # a test set without labels (GLUE): write predictions as the original did
            out_path = os.path.join(model_dir, f"{name}_out.tsv")
            print(f"testing {','.join(files)}, save to {out_path}", flush=True)
            task.write_predictions(learner, files, out_path)
    if args.result_file:
        flat = {f"{split}.{k}": v for split, res in final.items() for k, v in res.items()
                if isinstance(v, (int, float)) and k != "elapsed_time"}
        atomic_write_text(args.result_file, json.dumps(dict(flat, best_step=best_step), indent=1) + "\n")
    return final


def predict(task_cls, args, task_flags, run_config, hparams):
    model_dir = run_config.model_dir
    meta = _load_meta(model_dir)
    if meta and meta.get("task") != task_cls.name:
        raise SystemExit(f"{model_dir}/{TASK_FILE} is from a {meta.get('task')} model, not {task_cls.name}")
    opts = task_options(args, meta, task_flags)
    sp = opts.flag("sentence_piece_model", meta.get("sentence_piece_model"))
    wd = opts.flag("word_dict", meta.get("word_dict"))
    tokenizer = build_tokenizer(args.vocab_file or meta.get("vocab_file"), sp, wd, not opts.cased)
    source = args.warm_start_from
    if not source:
        best = os.path.join(model_dir, BEST_DIR)
        source = best if os.path.isdir(best) else model_dir  # else the newest checkpoint there
    if not os.path.exists(source):
        raise SystemExit(f"no model to predict with: {source} does not exist (train first, or give "
                         f"--warm_start_from)")
    task_json = os.path.join(model_dir, TASK_FILE)
    config = resolve_ernie_config(args.ernie_config, hparams, [task_json if meta else None, source])
    check_vocab(config, tokenizer, opts.max_seqlen)
    task = task_cls(opts, tokenizer, meta)
    full_hparams = propeller.HParams(**{k: v for k, v in hparams.items() if k not in MODEL_FIELDS}).join(
        dict(ernie_config=config.to_dict(), **task.model_hparams()))
    learner = propeller.Learner(task.model_fn(), run_config, full_hparams)
    load_weights(learner.model.net, source)
    bad = BadLines(args.on_bad_line, "predict")
    # bytes: each line is decoded on its own, so an undecodable one is a bad line, not a crash
    task.predict(learner, getattr(sys.stdin, "buffer", sys.stdin), sys.stdout, bad)
    bad.report()


# ---------------------------------------------------------------------------- helpers for tasks

def predict_rows(task, learner, examples, batch_size=32):
    """Model outputs (numpy, one item per example, in order) for a list of examples."""
    if not examples:
        return []
    ds = propeller.data.Dataset.from_list(examples).padded_batch(batch_size, pad_value=list(task.pad_values[:2]))
    return list(learner.predict(ds))


def stdin_records(inp, layouts, bad, required=("text_a",), chunk=512):
    """Chunks of ``[(lineno, record or None)]`` from stdin TSV lines; None marks a bad or blank
    line (it still gets an output line so outputs stay aligned with inputs). A header line
    names the columns and gets no output line."""
    cols, buf = Columns(layouts, required=required), []
    for lineno, line in enumerate(inp, 1):
        rec = None
        try:
            line = decode_line(line)
        except ValueError as e:
            bad("<stdin>", lineno, str(e))
            buf.append((lineno, None))
            continue
        line = line.rstrip("\n").rstrip("\r")
        fields = line.split("\t")
        if not line.strip():
            bad("<stdin>", lineno, "empty line")
        else:
            try:
                if cols.is_header(fields):
                    continue
                rec = cols.parse(fields)
            except HeaderError as e:
                raise BadLineError(f"<stdin>:{lineno}: {e}") from None
            except ValueError as e:
                bad("<stdin>", lineno, str(e))
        buf.append((lineno, rec))
        if len(buf) >= chunk:
            yield buf
            buf = []
    if buf:
        yield buf


def run_predict_tsv(task, learner, inp, out, bad, layouts, encode, fmt, required=("text_a",)):
    """--do_predict for the TSV tasks: ``encode(record) -> example`` (ValueError: bad line),
    ``fmt(record, output) -> line``; a bad line prints an empty line."""
    for chunk in stdin_records(inp, layouts, bad, required):
        items = []
        for lineno, rec in chunk:
            ex = None
            if rec is not None:
                try:
                    ex = encode(rec)
                except ValueError as e:
                    bad("<stdin>", lineno, str(e))
            items.append((rec, ex))
        outs = iter(predict_rows(task, learner, [ex[:2] for _, ex in items if ex is not None]))
        for rec, ex in items:
            out.write((fmt(rec, ex, next(outs)) if ex is not None else "") + "\n")
        out.flush()
