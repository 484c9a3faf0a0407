"""The ERNIE 2.0 multi-task model: one shared ErnieModel (task embeddings on), one head per task.

Each example's task id goes to ``task_type_ids``; each head runs only on its own examples'
targets (see pipeline.collate for the batch). The loss is the sum over the batch's tasks of
weight * (mean cross-entropy of the task). Per-task losses and accuracies are reported as
``step_scalars`` (console and VisualDL) and per-task metrics in evaluation.

hparams: ``ernie_config`` (dict, taken as it is: the schedule decides ``use_task_id``), ``tasks``
({name: options incl. ``type``}), ``task_order``. A pre-training run builds its task objects once and
hands the same ones to the model, the stream and the evaluation (``tasks=``).
"""
import collections

import numpy as np
import paddle
import paddle.nn as nn

import propeller.paddle as propeller
from ernie.checkpoint import load_into
from ernie.modeling import ErnieConfig, ErnieModel
from ernie.pretraining.tasks import NextSentencePrediction, build_task


def build_tasks(spec, order=None):
    """Task objects from ``{name: options}``; ``options["type"]`` names the registered class
    (default: the name itself), the rest go to its constructor. The instance takes ``name``."""
    out = []
    for name in (order or list(spec)):
        opts = dict(spec[name] or {})
        task = build_task(opts.pop("type", name), **opts)
        task.name = name
        out.append(task)
    ids = [t.task_id for t in out]
    if len(set(ids)) != len(ids):
        raise ValueError(f"two tasks share a task id: {dict(zip([t.name for t in out], ids))}")
    return out


class MultiTaskPretrainModel(propeller.train.Model):
    """Batch: (src, sent, pos, task_ids, stage, present, indices, labels); see pipeline.py."""

    # batch_size: read by the schedule (ernie1.py passes its hparams through)
    HPARAMS = frozenset({"ernie_config", "tasks", "task_order", "scalar_window", "batch_size"})

    def __init__(self, hparams, mode=propeller.RunMode.TRAIN, run_config=None, tasks=None):
        super().__init__(hparams, mode, run_config)
        cfg = hparams.ernie_config
        self.config = cfg if isinstance(cfg, ErnieConfig) else ErnieConfig.from_dict(dict(cfg))
        self.tasks = list(tasks) if tasks is not None else \
            build_tasks(dict(hparams.tasks), list(hparams.get("task_order", None) or hparams.tasks))
        too_big = [t.name for t in self.tasks if t.task_id >= self.config.task_type_vocab_size]
        if too_big and self.config.use_task_id:
            raise ValueError(f"task ids of {too_big} exceed task_type_vocab_size {self.config.task_type_vocab_size}")
        self.ernie = ErnieModel(self.config)
        word = self.ernie.embeddings.word_embeddings.weight
        self.heads = nn.LayerList([t.build_head(self.config, word) for t in self.tasks])
        # step_scalars are running means over each task's last `window` batches: with one task
        # per batch, a log line would otherwise show only the task of that one step
        window = int(hparams.get("scalar_window", 20))
        self._recent = {t.name: collections.deque(maxlen=window) for t in self.tasks}
        self._recent_acc = {t.name: collections.deque(maxlen=window) for t in self.tasks}
        self.step_scalars = {}
        self.step_task_losses = []  # (task, loss) of each micro-batch since the last read

    def forward(self, src_ids, sent_ids, pos_ids, task_ids, stage, present, indices):
        seq, pooled = self.ernie(src_ids, sent_ids, pos_ids, None, task_ids)
        present = [int(k) for k in present.numpy().reshape(-1)]
        logits = tuple(self.heads[k](seq, pooled, idx) for k, idx in zip(present, indices))
        # Parameters no head of this batch reached (other tasks' heads; the pooler when only
        # token tasks ran) join the graph with weight 0, so that under DataParallel every rank
        # produces a gradient for every parameter and the all-reduce never waits for a
        # gradient that will not come.
        idle = [p for k, h in enumerate(self.heads) if k not in present for p in h.parameters()]
        if all(self.tasks[k].level != "sentence" for k in present):
            idle += list(self.ernie.pooler.parameters())
        touch = paddle.add_n([p.sum() for p in idle]) * 0.0 if idle else None
        return present, logits, touch, int(stage.numpy().reshape(-1)[0])

    def loss(self, predictions, labels):
        present, logits, touch, stage = predictions
        total = touch
        record = self.training
        for k, lg, lab in zip(present, logits, labels):
            task = self.tasks[k]
            l = task.loss(lg, lab)
            total = task.weight * l if total is None else total + task.weight * l
            if record:
                v = float(l)
                self._recent[task.name].append(v)
                self.step_task_losses.append((task.name, v))
                acc = (lg.argmax(-1).numpy() == lab.numpy().reshape(-1)).mean() if lab.shape[0] else np.nan
                self._recent_acc[task.name].append(float(acc))
        if record:
            scalars = {"stage": float(stage)}
            for t in self.tasks:
                if self._recent[t.name]:
                    scalars[f"{t.name}_loss"] = float(np.mean(self._recent[t.name]))
                    scalars[f"{t.name}_acc"] = float(np.nanmean(self._recent_acc[t.name]))
                    if t.level == "mlm":  # perplexity of the recent mean masked-LM loss
                        scalars[f"{t.name}_ppl"] = float(np.exp(min(scalars[f"{t.name}_loss"], 50.0)))
            self.step_scalars = scalars
        return total

    def metrics(self, predictions, labels):
        present, logits, _, _ = predictions
        got = {k: (lg, lab) for k, lg, lab in zip(present, logits, labels)}
        out = {}
        for k, task in enumerate(self.tasks):
            lg, lab = got.get(k, (None, None))
            for name, m in task.metrics(lg, lab).items():
                out[f"{task.name}_{name}"] = m
            out[f"{task.name}_loss"] = propeller.metrics.Mean([float(task.loss(lg, lab))]) if lg is not None \
                else propeller.metrics.Mean()
        return out

    def init_output_bias(self, token_counts):
        """Start every masked-LM head at the corpus's unigram distribution (its output bias = the
        log frequencies, add-one smoothed): a model from scratch spends its first hundreds of steps
        learning just that (the KM loss sits at the unigram entropy), and training from there ends
        lower for the same budget (bench/RESULTS.md). Restoring or warm-starting overwrites it."""
        counts = np.asarray(token_counts, dtype="float64") + 1.0
        logp = np.log(counts / counts.sum()).astype("float32")
        for task, head in zip(self.tasks, self.heads):
            if task.level == "mlm":
                bias = head.mlm.decoder_bias
                if list(bias.shape) != [len(logp)]:
                    raise ValueError(f"{len(logp)} token counts for a vocabulary of {bias.shape[0]}")
                bias.set_value(logp)

    def checkpoint_aliases(self):
        """Pre-training heads of ERNIE 1.0 / PaddleNLP checkpoints initialise ours (see
        ernie.checkpoint.match_name): the masked-LM head (``cls.predictions.*``) the first mlm task's,
        the next-sentence head (``cls.seq_relationship.*``) the first next_sentence task's, so
        continual pre-training from ERNIE 1.0 keeps what its heads had learnt."""
        aliases = {}
        mlm = next((k for k, t in enumerate(self.tasks) if t.level == "mlm"), None)
        if mlm is not None:
            aliases["cls.predictions."] = f"heads.{mlm}.mlm."
        nsp = next((k for k, t in enumerate(self.tasks) if isinstance(t, NextSentencePrediction)), None)
        if nsp is not None:
            aliases["cls.seq_relationship."] = f"heads.{nsp}.fc."
        return aliases

    def warm_start(self, from_dir, predicate=None):
        """Our checkpoints, PaddleNLP state dicts or legacy ERNIE params/ dirs: the encoder by its
        PaddleNLP names, heads when names match or ``checkpoint_aliases`` maps them."""
        return load_into(self, from_dir, strict=False, predicate=predicate)
