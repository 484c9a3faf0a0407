"""ERNIE 2.0 continual multi-task pre-training: one command from a schedule config.

    python -m ernie.pretraining.pretrain --schedule config/pretrain/zh_ernie2_demo.json \\
        [--run_config '{"model_dir": "output/zh_ernie2", "max_steps": ...}'] [--hparam '{...}'] \\
        [--init_checkpoint DIR] [--save_dir DIR] [--budget_scale 0.1]
    python -m paddle.distributed.launch --nproc_per_node 2 ernie/pretraining/pretrain.py --schedule ...

The schedule config (JSON) holds everything a run needs:

    {
      "seed": 1, "batch_size": 16, "max_seqlen": 128, "mix": "task_per_batch", "cursor_every": 64,
      "model": {"ernie_config": "config/ernie_small_config.json", "overrides": {"vocab_size": "from_data"}},
      "data": {"corpus": "data/demo/zh_corpus/train", "valid_corpus": "data/demo/zh_corpus/valid",
               "vocab": "data/demo/vocab.txt", "lexicon": "data/demo/zh_entities.txt",
               "shards": "output/shards/zh_demo", "processes_num": 2},
      "tasks": {"km": {"weight": 1.0}, "sr": {"max_segments": 3}, ...},
      "stages": [{"name": "KM", "budgets": {"km": 60}}, {"budgets": {"km": 20, "sr": 40}}, ...],
      "run_config": {"model_dir": "output/zh_ernie2_demo", "log_steps": 10, ...},
      "hparams": {"learning_rate": 5e-4, "warmup_proportion": 0.1},
      "eval": {"batches_per_task": 2}
    }

``model.use_task_id`` (default true) switches the task embeddings; ``model.pretraining_overrides``
holds ErnieConfig fields for pre-training only (the saved model keeps the config's: e.g. no dropout
while pre-training, the config's dropout for fine-tuning). ``batch_size`` is each process's batch;
``global_batch_size`` instead is the step's, split among the launcher's processes. Missing shards
are built from ``data.corpus`` first (rank 0 builds, other ranks wait), and a missing vocab from
the corpus when ``data.build_vocab`` is set. Instead of a corpus, ``data.id_filelist`` (and ``valid_id_filelist``)
names ERNIE 1.0 id-format data (``id_corpus.py``), which the knowledge_masking and next_sentence
tasks read as it is: ERNIE 1.0 pre-training is such a schedule (``ernie1.py``). The command-line --run_config
and --hparam values override the config's; max_steps defaults to the schedule's length (with
``gradient_accumulation_steps`` k, budgets count micro-batches and a step takes k of them).
Restarting the same command resumes from the newest checkpoint in model_dir at the same place
in the schedule: the trainer asks the stream to ``skip`` the batches consumed. Each producer of
batches (the trainer, or each DataLoader worker) logs its task streams' cursors every
``cursor_every`` (default 64) of its batches in ``model_dir/stream_cursors``; on resume it
seeks them to the latest logged position and replays the example generation (about 2.5 ms
per batch of 16) only from there, so resuming costs at most ``cursor_every`` batches wherever
it happens (without a log it replays every batch before). Under the launcher each rank reads
its own share of the documents (``split_batches="none"``) while all ranks follow the same
schedule, so every step trains the same task(s) on every rank.
Per-task losses/accuracies go to the console and VisualDL (train/<task>_loss, ...), every eval
logs per-task metrics, and ``model_dir/task_losses.png`` plots the per-task loss curves
(raw values in ``task_losses.jsonl``).
"""
import functools
import json
import logging
import os
import shutil
import sys
from typing import NamedTuple, Optional

if __name__ == "__main__" and not __package__:
    # Run as a file (paddle.distributed.launch takes a script path, not -m): import the package
    # from the repo root instead of letting this directory's modules shadow top-level names.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

import propeller.paddle as propeller
from propeller.log import setup_logging
from propeller.train import distribution as dist
from propeller.util import format_config, load_dict

from ernie.checkpoint import save_pretrained
from ernie.modeling import ErnieConfig
from ernie.pretraining.encode import load_tokenizer
from ernie.pretraining.id_corpus import IdCorpus
from ernie.pretraining.multitask import MultiTaskPretrainModel, build_tasks
from ernie.pretraining.pipeline import MultiTaskStream, eval_batches
from ernie.pretraining.schedule import Schedule
from ernie.pretraining.shards import INDEX_FILE, ShardCorpus
from ernie.pretraining.tasks import TaskContext

log = logging.getLogger("ernie")
# the keys of a schedule's "model" section (an unknown one is a typo, and an error)
MODEL_KEYS = frozenset({"ernie_config", "overrides", "use_task_id", "pretraining_overrides"})


def load_config(path):
    cfg, _ = load_dict(path, "--schedule")
    for key in ("tasks", "stages", "data"):
        if key not in cfg:
            raise ValueError(f"{path}: the schedule config needs a {key!r} section")
    return cfg


# ----------------------------------------------------------------------------- data

def _stale(shards, corpus, data_cfg):
    """Why the shards at ``shards`` are not those of this corpus and settings ([] if they are)."""
    with open(os.path.join(shards, INDEX_FILE), encoding="utf-8") as f:
        idx = json.load(f)
    if not corpus:
        return []
    from ernie.pretraining.preprocess import _sha1, corpus_files
    want = {"sources": [os.path.abspath(p) for p in corpus_files(corpus)],
            "tokenizer": data_cfg.get("tokenizer", "full"), "format": data_cfg.get("format", "sentences"),
            "segmentation": data_cfg.get("segmentation", "auto"),
            "lexicon": os.path.abspath(data_cfg["lexicon"]) if data_cfg.get("lexicon") else None,
            "seed": int(data_cfg.get("seed", 1))}
    diff = [k for k, v in want.items() if idx.get(k) != v]
    if data_cfg.get("vocab") and os.path.exists(data_cfg["vocab"]) and idx.get("vocab_sha1") != _sha1(data_cfg["vocab"]):
        diff.append("vocab")
    return diff


def ensure_shards(corpus, shards, data_cfg, timeout=3600):
    """Shards at ``shards``, built from ``corpus`` when missing or built from other data or
    settings (by rank 0; the other ranks wait for them)."""
    index = os.path.join(shards, INDEX_FILE)
    stale = _stale(shards, corpus, data_cfg) if os.path.exists(index) else None
    if stale == []:
        return ShardCorpus(shards)
    if not corpus:
        raise FileNotFoundError(f"no shards at {shards} and no corpus to build them from")

    def build():
        from ernie.pretraining.preprocess import build_shards
        log.info("building shards of %s in %s%s", corpus, shards,
                 f" (the old ones differ in {', '.join(stale)})" if stale else "")
        os.makedirs(os.path.dirname(os.path.abspath(shards)), exist_ok=True)
        build_shards(corpus, data_cfg["vocab"], shards, int(data_cfg.get("processes_num", 1)),
                     data_cfg.get("lexicon"), int(data_cfg.get("seed", 1)), data_cfg.get("tokenizer", "full"),
                     data_cfg.get("format", "sentences"), data_cfg.get("segmentation", "auto"),
                     progress=data_cfg.get("progress", True))

    def ready():
        try:
            return os.path.exists(index) and not _stale(shards, corpus, data_cfg)
        except (OSError, ValueError):  # caught in the middle of rank 0's swap
            return False

    dist.build_once(ready, build, shards, timeout)
    return ShardCorpus(shards)


def ensure_vocab(data_cfg, timeout=600):
    """``data.vocab``, built from ``data.corpus`` when missing and ``data.build_vocab`` is set
    (``{"max_wordpiece": N, "min_freq": k}`` or true): rank 0 builds, the others wait."""
    vocab = data_cfg.get("vocab")
    if not vocab or os.path.exists(vocab):
        return vocab
    opts = data_cfg.get("build_vocab")
    if not opts:
        raise FileNotFoundError(f"vocab {vocab} does not exist (set data.build_vocab to build it from the corpus)")

    def build():
        from ernie.pretraining.preprocess import corpus_files
        from ernie.tokenizing import build_vocab, save_vocab
        kw = opts if isinstance(opts, dict) else {}
        v = build_vocab(corpus_files(data_cfg["corpus"]), min_freq=int(kw.get("min_freq", 1)),
                        max_wordpiece=kw.get("max_wordpiece"))
        os.makedirs(os.path.dirname(os.path.abspath(vocab)), exist_ok=True)
        tmp = f"{vocab}.tmp-{os.getpid()}"
        save_vocab(v, tmp)
        os.replace(tmp, vocab)
        log.info("built a vocabulary of %d entries from %s -> %s", len(v), data_cfg["corpus"], vocab)

    dist.build_once(lambda: os.path.exists(vocab), build, vocab, timeout)
    return vocab


def load_corpus(data_cfg, model_dir, max_seqlen, valid=False):
    """The training (``valid``: validation) corpus the data section names, or None: an ERNIE 1.0
    id-format filelist (``id_filelist`` / ``valid_id_filelist``), or memory-mapped shards
    (``shards`` / ``valid_shards``) built from ``corpus`` / ``valid_corpus`` when missing."""
    pre = "valid_" if valid else ""
    if data_cfg.get(pre + "id_filelist"):
        return IdCorpus(data_cfg[pre + "id_filelist"], max_seqlen)
    if not valid:
        shards = data_cfg.get("shards") or os.path.join(model_dir, "shards", "train")
        return ensure_shards(data_cfg.get("corpus"), shards, data_cfg)
    if not (data_cfg.get("valid_corpus") or data_cfg.get("valid_shards")):
        return None
    train = data_cfg.get("shards") or os.path.join(model_dir, "shards", "train")
    shards = data_cfg.get("valid_shards") or os.path.join(os.path.dirname(os.path.abspath(train)),
                                                          os.path.basename(train.rstrip("/")) + "_valid")
    return ensure_shards(data_cfg.get("valid_corpus"), shards, data_cfg)


def model_config(cfg, corpus):
    """The ErnieConfig of the schedule's ``model`` section: a config file or dict, ``overrides``
    (``"from_data"`` takes the corpus's vocabulary size), and ``use_task_id`` (default true: task
    embeddings are what mark each example's task in ERNIE 2.0; an ERNIE 1.0 model has none)."""
    mcfg = cfg.get("model", {})
    unknown = sorted(set(mcfg) - MODEL_KEYS)
    if unknown:
        raise ValueError(f"model.{unknown[0]}: unknown key (expected one of {', '.join(sorted(MODEL_KEYS))})")
    base = mcfg.get("ernie_config", "config/ernie_small_config.json")
    d = ErnieConfig.from_json(base).to_dict() if isinstance(base, str) else dict(base)
    for k, v in (mcfg.get("overrides") or {}).items():
        if v == "from_data" and not corpus.vocab_size:
            raise ValueError(f"model.overrides.{k} is \"from_data\" but the corpus does not know its vocabulary size")
        d[k] = corpus.vocab_size if v == "from_data" else v
    d["use_task_id"] = bool(mcfg.get("use_task_id", True))
    config = ErnieConfig.from_dict(d)
    if corpus.vocab_size and config.vocab_size < corpus.vocab_size:
        raise ValueError(f"the model's vocab_size {config.vocab_size} is smaller than the data's vocabulary "
                         f"({corpus.vocab_size}); set model.overrides.vocab_size (\"from_data\")")
    return config


def pretraining_config(cfg, config):
    """The config the model trains with: ``config`` plus ``model.pretraining_overrides``, ErnieConfig
    fields that hold while pre-training only. The saved model keeps ``config``'s values, so
    fine-tuning gets them back: the demo pre-trains without dropout (an under-trained model has
    nothing to regularise, and dropout's random numbers cost ~17% of a step on this CPU) and
    fine-tunes with the config's 0.1."""
    over = cfg.get("model", {}).get("pretraining_overrides") or {}
    unknown = sorted(set(over) - set(ErnieConfig.DEFAULTS))
    if unknown:
        raise ValueError(f"model.pretraining_overrides.{unknown[0]}: not an ErnieConfig field")
    return ErnieConfig.from_dict(dict(config.to_dict(), **over)) if over else config


def per_process_batch_size(cfg, world):
    """Each process's batch: ``batch_size`` is per process; ``global_batch_size`` (not both) is the
    step's, split evenly among the processes, so one schedule trains the same steps whether it runs
    in one process or under ``paddle.distributed.launch``."""
    if "global_batch_size" not in cfg:
        return int(cfg.get("batch_size", 32))
    if "batch_size" in cfg:
        raise ValueError("the schedule gives both batch_size (per process) and global_batch_size; keep one")
    total = int(cfg["global_batch_size"])
    if total < world or total % world:
        raise ValueError(f"global_batch_size {total} does not split evenly among {world} processes")
    return total // world


def task_context(cfg, corpus, tokenizer, config):
    sp = (getattr(corpus, "index", None) or {}).get("special_ids", {})
    return TaskContext(config.vocab_size, int(cfg.get("max_seqlen", 128)), cls_id=sp.get("cls", 1),
                       sep_id=sp.get("sep", 2), mask_id=sp.get("mask", 3), pad_id=sp.get("pad", 0), corpus=corpus,
                       tokenizer=tokenizer, type_vocab_size=config.type_vocab_size)


# ----------------------------------------------------------------------------- hooks

class StageHook(propeller.RunHook):
    """Logs each stage as it begins, with its tasks and step range."""

    def __init__(self, schedule):
        self.schedule, self.current = schedule, None
        self.switches = []  # (gstep, stage) seen by this run, for tests and the plot

    def _check(self, consumed, gstep):
        if consumed >= self.schedule.total:
            return
        k = self.schedule.stage_of(consumed)
        if k != self.current:
            self.current = k
            self.switches.append((gstep, k))
            st = self.schedule.stages[k]
            log.info("stage %d/%d (%s) from step %d: %s", k + 1, len(self.schedule.stages), st["name"], gstep,
                     ", ".join(f"{t} x{n}" for t, n in st["budgets"].items()))

    def before_train(self, state):
        self._check(state.consumed, state.gstep)

    def after_step(self, state):
        self._check(state.consumed, state.gstep)


class TaskCurveHook(propeller.RunHook):
    """Appends each step's per-task losses to ``task_losses.jsonl`` (rank 0) and plots them at
    the end. On resume, records past the checkpoint (from the interrupted run) are dropped."""

    def __init__(self, model, model_dir, schedule, accum=1):
        self.model, self.schedule, self.accum = model, schedule, accum
        self.path = os.path.join(model_dir, "task_losses.jsonl")
        self.png = os.path.join(model_dir, "task_losses.png")
        self.f = None

    def before_train(self, state):
        if not dist.is_master():
            return
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        keep = []
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as f:
                keep = [l for l in f if l.strip() and json.loads(l)["step"] <= state.gstep]
        with open(self.path, "w", encoding="utf-8") as f:
            f.writelines(keep)
        self.f = open(self.path, "a", encoding="utf-8")

    def after_step(self, state):
        losses, self.model.step_task_losses = self.model.step_task_losses, []
        if self.f is not None:
            stage = self.model.step_scalars.get("stage", 0)
            for task, v in losses:
                self.f.write(json.dumps({"step": state.gstep, "task": task, "loss": v, "stage": int(stage)}) + "\n")
            self.f.flush()

    def after_train(self, state):
        if self.f is not None:
            self.f.close()
            self.f = None
            try:
                plot_task_losses(self.path, self.png, [int(s) // self.accum for s in self.schedule.starts[1:-1]])
                log.info("per-task loss curves: %s", self.png)
            except Exception as e:  # a plot must never fail a finished training run
                log.warning("could not plot the loss curves: %s", e)


def plot_task_losses(jsonl, png, stage_steps=(), smooth=10):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    per = {}
    with open(jsonl, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            per.setdefault(r["task"], []).append((r["step"], r["loss"]))
    fig, ax = plt.subplots(figsize=(9, 5))
    for task, pts in per.items():
        steps, vals = np.array(pts).T
        k = max(1, min(smooth, len(vals) // 3 or 1))
        sm = np.convolve(vals, np.ones(k) / k, mode="valid")
        ax.plot(steps[k - 1:], sm, label=task)
    for s in stage_steps:
        ax.axvline(s, color="grey", ls="--", lw=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel(f"loss (moving mean of {smooth})")
    ax.set_title("per-task training loss; dashed lines: stage switches")
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


# ----------------------------------------------------------------------------- main

def _schedule_text(ns):
    """``--print_config``: the schedule after its ``base`` files, then the command-line overrides."""
    cfg, _, origins = load_dict(ns.schedule, "--schedule", with_origins=True)
    rc, _, rc_origins = load_dict(ns.run_config, "--run_config", with_origins=True) if ns.run_config else ({}, 0, {})
    hp, hp_origins = propeller.parse_hparam(ns, with_origins=True) if ns.hparam else ({}, {})
    return format_config([("schedule (merged)", cfg, origins, "?"),
                          ("--run_config: overrides the schedule's run_config", rc, rc_origins, "?"),
                          ("--hparam: overrides the schedule's hparams", dict(hp and hp.to_dict()), hp_origins, "?")])


def make_parser():
    p = propeller.ArgumentParser("ERNIE 2.0 continual multi-task pre-training", print_config=_schedule_text)
    p.add_argument("--schedule", required=True, help="schedule config JSON (config/pretrain/*.json)")
    p.add_argument("--init_checkpoint", "--warm_start_from", dest="init_checkpoint",
                   help="our checkpoint, a PaddleNLP one, or a legacy ERNIE params/ dir")
    p.add_argument("--save_dir", help="write the final model here (save_pretrained layout, with vocab.txt)")
    p.add_argument("--budget_scale", type=float, default=1.0,
                   help="multiply every stage budget (e.g. 0.1 for a quick run of the whole schedule)")
    return p


class PretrainRun(NamedTuple):
    """Everything a pre-training run trains with (:func:`build_run`)."""
    run_config: object   # propeller.RunConfig
    hparams: object      # propeller.HParams: optimiser settings, ernie_config, tasks, task_order
    config: ErnieConfig  # the model's config as saved (without model.pretraining_overrides)
    tasks: list          # the task objects, shared by the model, the stream and the evaluation
    schedule: Schedule
    stream: MultiTaskStream
    evals: Optional[dict]  # {"dev": fixed eval batches} when the data names a validation corpus
    vocab: Optional[str]   # the vocabulary file, copied beside the saved model


def build_run(cfg, run_config_overrides=None, hparam_overrides=None):
    """A :class:`PretrainRun` from a schedule config (a dict, see the module doc), with
    ``--run_config`` / ``--hparam`` style overrides."""
    data = cfg["data"]
    rc = dict(cfg.get("run_config") or {})
    rc.update(run_config_overrides or {})
    if not rc.get("model_dir"):
        raise ValueError("run_config.model_dir is required (in the schedule config or --run_config)")
    # a typo'd key fails now, not after the corpus is loaded (the Learner checks the same)
    propeller.HParams(**dict(cfg.get("hparams") or {}, **(hparam_overrides or {}))).check(
        propeller.train.trainer.known_hparams(MultiTaskPretrainModel))
    max_seqlen, seed = int(cfg.get("max_seqlen", 128)), int(cfg.get("seed", 0))
    batch_size = per_process_batch_size(cfg, dist.world_size())
    vocab = ensure_vocab(data)
    corpus = load_corpus(data, rc["model_dir"], max_seqlen)
    vocab = vocab or (getattr(corpus, "index", None) or {}).get("vocab")
    tokenizer = load_tokenizer(vocab, data.get("tokenizer", "full")) if vocab else None
    config = model_config(cfg, corpus)
    vcorpus = load_corpus(data, rc["model_dir"], max_seqlen, valid=True)
    for c in (corpus, vcorpus):
        if isinstance(c, IdCorpus):
            c.check_ids(config.vocab_size, config.type_vocab_size)
    order = list(cfg["tasks"])
    tasks = build_tasks(cfg["tasks"], order)
    hp = {"learning_rate": 5e-4, "warmup_proportion": 0.1, "weight_decay": 0.01}
    hp.update(cfg.get("hparams") or {})
    hp.update(hparam_overrides or {})
    hp.update(ernie_config=pretraining_config(cfg, config).to_dict(), tasks=cfg["tasks"], task_order=order)
    hparams = propeller.HParams(**hp)
    accum = int(hp.get("gradient_accumulation_steps", 1))
    schedule = Schedule(cfg["stages"], order, batch_size, cfg.get("mix", "task_per_batch"), seed)
    rc.setdefault("max_steps", schedule.total // accum)
    rc.setdefault("seed", seed)
    run_config = propeller.RunConfig.from_dict(rc)
    # each rank (and worker) logs its own cursors there: rank is in the file names
    stream = MultiTaskStream(tasks, schedule, corpus, task_context(cfg, corpus, tokenizer, config), seed=seed,
                             rank=dist.rank(), world=dist.world_size(),
                             cursor_dir=os.path.join(run_config.model_dir, "stream_cursors"),
                             cursor_every=int(cfg.get("cursor_every", 64)))
    evals = None
    if vcorpus is not None:
        n = int((cfg.get("eval") or {}).get("batches_per_task", 2))
        evals = {"dev": eval_batches(tasks, vcorpus, task_context(cfg, vcorpus, tokenizer, config), batch_size, n,
                                     seed)}
    return PretrainRun(run_config, hparams, config, tasks, schedule, stream, evals, vocab)


def train(cfg, run_config_overrides=None, hparam_overrides=None, init_checkpoint=None, save_dir=None):
    """Pre-train as the schedule config says (resuming from model_dir's newest checkpoint);
    ``save_dir``: write the final model there (save_pretrained layout, with vocab.txt). Returns
    the trainer's RunState. Both front ends (this module's and ``ernie.pretraining.ernie1``) call it."""
    return train_run(build_run(cfg, run_config_overrides, hparam_overrides), init_checkpoint, save_dir)


def train_run(run, init_checkpoint=None, save_dir=None):
    """Train a :class:`PretrainRun` (see :func:`train`)."""
    log.info("%s", run.schedule.describe())
    corpus = run.stream.corpus
    log.info("corpus: %d %s, %d tokens; model: hidden %d, %d layers, vocab %d; tasks: %s", len(corpus),
             "rows" if isinstance(corpus, IdCorpus) else "documents", corpus.index.get("num_tokens", 0),
             run.config.hidden_size, run.config.num_hidden_layers, run.config.vocab_size,
             ", ".join(f"{t.name}(id {t.task_id}, w {t.weight})" for t in run.tasks))
    ws = propeller.WarmStartSetting(predicate_fn=lambda n: True, from_dir=init_checkpoint) if init_checkpoint else None
    # split_batches="none": each rank's stream already reads its own share of the documents
    learner = propeller.Learner(functools.partial(MultiTaskPretrainModel, tasks=run.tasks), run.run_config,
                                run.hparams, ws, split_batches="none")
    if hasattr(corpus, "token_counts") and any(t.level == "mlm" for t in run.tasks):
        learner.model.init_output_bias(corpus.token_counts(run.config.vocab_size))
    accum = int(run.hparams.get("gradient_accumulation_steps", 1))
    curve = TaskCurveHook(learner.model, run.run_config.model_dir, run.schedule, accum)
    state = learner.train(run.stream, train_hooks=[StageHook(run.schedule), curve], eval_datasets=run.evals)
    if save_dir and dist.is_master():
        save_pretrained(learner.model, save_dir, run.config)
        if run.vocab and os.path.exists(run.vocab):
            shutil.copy(run.vocab, os.path.join(save_dir, "vocab.txt"))
        log.info("saved the pre-trained model to %s", save_dir)
    return state


def main(argv=None):
    setup_logging("ernie")
    args = make_parser().parse_args(argv)
    cfg = load_config(args.schedule)
    if args.budget_scale != 1.0:
        cfg["stages"] = [dict(st, budgets={t: max(1, int(round(n * args.budget_scale))) for t, n in st["budgets"].items()})
                         for st in cfg["stages"]]
    rc_over = load_dict(args.run_config, "--run_config")[0] if args.run_config else {}
    hp_over = propeller.parse_hparam(args).to_dict() if args.hparam else {}
    return train(cfg, rc_over, hp_over, args.init_checkpoint, args.save_dir)


if __name__ == "__main__":
    from propeller.cli import run_main  # user errors: one message, exit status 2
    sys.exit(run_main(main))
