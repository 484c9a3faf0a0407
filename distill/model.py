"""The Propeller Model every student trains as: the student network, the loss mix, and (with a
teacher loaded in-process) the ERNIE-tiny layer losses.

Batches (built by distill.run):
  training  ``(src_ids, [teacher_src, teacher_sent, overlap,] (gold, teacher_logits, has_teacher))``
  eval      ``(src_ids, gold)``
  predict / exported model  ``(src_ids,)`` -> logits
"""
import paddle
import paddle.nn as nn

import propeller.paddle as propeller
from distill.layer_distill import attention_probs, parse_layer_map, student_targets
from distill.losses import MODES, attention_kl, hidden_mse, mixed_loss
from distill.students import STUDENTS

__all__ = ["DistillModel", "DISTILL_HPARAMS", "TRAINER_HPARAMS", "check_hparams"]

# name -> default: the hparams distillation reads
DISTILL_HPARAMS = {
    "student": "bow",            # a name in distill.students.STUDENTS
    "distill_mode": "soft",      # soft (KL at temperature) | hard (teacher argmax) | gold (no teacher)
    "temperature": 1.0,
    "gold_weight": 0.5,          # a row with a gold and a teacher label: gold : teacher = w : 1-w
    "hidden_weight": 1.0,        # layer distillation (transformer student + --teacher_model_dir)
    "attention_weight": 1.0,
    "layer_map": None,           # "0:0,1:2,2:4" student layer : teacher layer; None = uniform
    "batch_size": 32,
    "eval_batch_size": 64,
    "epoch": 3,
    "vocab_size": None,          # set by the runner from the vocabulary
    "num_labels": 2,             # set by the runner from --num_labels
}
# what Propeller's loop and optimiser read (propeller/train/trainer.py, optim.py)
TRAINER_HPARAMS = ("learning_rate", "weight_decay", "warmup_proportion", "warmup_steps", "max_grad_norm", "beta1",
                   "beta2", "epsilon", "gradient_accumulation_steps", "num_workers", "split_batches", "use_fp16",
                   "use_bf16", "init_loss_scaling", "incr_every_n_steps", "decr_every_n_nan_or_inf", "incr_ratio",
                   "decr_ratio", "max_steps", "user")


def check_hparams(hparams):
    """Defaults filled in; an unknown key (a typo would silently do nothing) is an error naming
    the keys this student knows."""
    hp = dict(DISTILL_HPARAMS)
    hp.update(hparams.items() if hasattr(hparams, "items") else hparams)
    if hp["student"] not in STUDENTS:
        raise SystemExit(f"unknown student {hp['student']!r}; registered: {sorted(STUDENTS)}")
    student_cls = STUDENTS[hp["student"]]
    known = set(DISTILL_HPARAMS) | set(TRAINER_HPARAMS) | set(student_cls.HPARAMS)
    unknown = sorted(set(hp) - known)
    if unknown:
        raise SystemExit(f"unknown hparam(s) {unknown} for student {hp['student']!r}; known: {sorted(known)}")
    if hp["distill_mode"] not in MODES:
        raise SystemExit(f"distill_mode must be one of {MODES}, got {hp['distill_mode']!r}")
    for k, v in student_cls.HPARAMS.items():
        hp.setdefault(k, v)
    return propeller.HParams(**hp)


class DistillModel(propeller.train.Model):
    HPARAMS = tuple(DISTILL_HPARAMS)

    @classmethod
    def known_hparams(cls):
        """Propeller's strict check sees the model class only: accept the keys of every registered
        student (check_hparams has already refused those of other students)."""
        base = super().known_hparams() if hasattr(super(), "known_hparams") else frozenset(cls.HPARAMS)
        return frozenset(base) | {k for s in STUDENTS.values() for k in s.HPARAMS}

    def __init__(self, hparams, mode=propeller.RunMode.TRAIN, run_config=None, teacher=None):
        super().__init__(hparams, mode, run_config)
        h = hparams
        self.mode, self.temperature = h["distill_mode"], float(h["temperature"])
        self.gold_weight = float(h["gold_weight"])
        self.hidden_weight, self.attention_weight = float(h["hidden_weight"]), float(h["attention_weight"])
        self.student = STUDENTS[h["student"]](h["vocab_size"], h["num_labels"], h)
        self.to_static = bool(getattr(self.student, "to_static", True))  # the student measured it
        self._teacher = (teacher,)  # a tuple: the frozen teacher is no sublayer (not saved, not trained)
        self.layer_pairs, self.proj = [], None
        if teacher is not None and hasattr(self.student, "encode"):
            s_cfg, t_cfg = self.student.config, teacher.config
            self.layer_pairs = parse_layer_map(h["layer_map"], s_cfg.num_hidden_layers, t_cfg.num_hidden_layers)
            # learned projections student hidden -> teacher hidden (TinyBERT's W_h), one per mapped layer
            self.proj = nn.LayerList([nn.Linear(s_cfg.hidden_size, t_cfg.hidden_size) for _ in self.layer_pairs])

    @property
    def teacher(self):
        return self._teacher[0]

    def forward(self, src_ids, t_src=None, t_sent=None, overlap=None):
        # named teacher inputs, not *args: paddle.jit.to_static (SOT) refuses a varargs forward
        if t_src is None:
            return self.student(src_ids)
        t_logits, t_hidden, t_bias = self.teacher.encode(t_src, t_sent)
        if not self.layer_pairs:
            return self.student(src_ids), t_logits, None
        logits, s_hidden, s_bias = self.student.encode(src_ids)
        rows, cols = student_targets(overlap.astype(s_hidden[0].dtype))
        mask = (src_ids != 0).astype(s_hidden[0].dtype)
        s_layers, t_layers = self.student.net.ernie.encoder.layers, self.teacher.net.ernie.encoder.layers
        hid, att = 0.0, 0.0
        for k, (i, j) in enumerate(self.layer_pairs):
            target = paddle.matmul(rows, t_hidden[j])
            hid = hid + hidden_mse(self.proj[k](s_hidden[i]), target, mask)
            if i >= 1 and j >= 1 and self.attention_weight:
                s_att = attention_probs(s_layers[i - 1], s_hidden[i - 1], s_bias)
                with paddle.no_grad():
                    t_att = attention_probs(t_layers[j - 1], t_hidden[j - 1], t_bias)
                    t_att = paddle.matmul(paddle.matmul(rows, t_att), cols)
                att = att + attention_kl(s_att, t_att, mask)
        return logits, t_logits, self.hidden_weight * hid + self.attention_weight * att

    def loss(self, pred, labels):
        layer_loss = None
        if isinstance(pred, tuple):
            pred, t_logits, layer_loss = pred
            gold = labels[0]
            has_t = paddle.ones([pred.shape[0]], dtype=pred.dtype)
        elif isinstance(labels, (tuple, list)):
            gold, t_logits, has_t = labels
        else:  # evaluation: gold labels only
            gold, t_logits, has_t = labels, None, None
        if t_logits is None:
            loss = mixed_loss(pred, gold, pred, paddle.zeros([pred.shape[0]], pred.dtype), mode="gold")
        else:
            loss = mixed_loss(pred, gold, t_logits, has_t, self.mode, self.temperature, self.gold_weight)
        return loss if layer_loss is None else loss + layer_loss

    def metrics(self, pred, labels):
        return {"acc": propeller.metrics.Acc(labels, pred)}

    def inference_spec(self):
        return [paddle.static.InputSpec([None, None], "int64", "src_ids")]

    def input_limits(self):
        return {"src_ids": {"range": [0, int(self.hparams["vocab_size"])]}}

    def export_meta(self):
        return {"student": self.hparams["student"], "num_labels": int(self.hparams["num_labels"])}
