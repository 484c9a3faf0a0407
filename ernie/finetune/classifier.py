"""Sentence and sentence-pair classification (and regression, ``--num_labels 1``: STS-B).

Data: TSV ``text_a[<TAB>text_b]<TAB>label``, or any column order under a header naming the
columns (``label<TAB>text_a`` in ChnSentiCorp). Labels are ``0 .. num_labels-1``, or the names
of a label map (``--label_map``: JSON ``{label: id}`` or one label a line); a float for
regression. Input is ``[CLS] a [SEP] (b [SEP])`` with sentence types 0/1.
"""
import numpy as np
import paddle.nn.functional as F

import propeller.paddle as propeller
from ernie.finetune.common import ErnieTaskModel
from ernie.finetune.data import BadLines, read_label_map, read_tsv
from ernie.finetune.metrics import Matthews, Pearson, Spearman
from ernie.finetune.runner import Task, predict_rows, run_predict_tsv
from ernie.modeling import POOLINGS, ErnieForSequenceClassification

__all__ = ["ClassifierModel", "ClassificationTask", "encode_text"]

LAYOUTS = {2: ("text_a", "label"), 3: ("text_a", "text_b", "label")}
PREDICT_LAYOUTS = {1: ("text_a",), 2: ("text_a", "text_b")}


def encode_text(tokenizer, text_a, text_b, max_seqlen):
    """(src_ids, sent_ids) for ``[CLS] a [SEP] (b [SEP])``; ValueError for an empty text."""
    if not text_a.strip():
        raise ValueError("empty text_a")
    if text_b is not None and not text_b.strip():
        raise ValueError("empty text_b")
    ids, types = tokenizer.encode(text_a, text_b, max_seqlen)
    if len(ids) <= (2 if text_b is None else 3):
        raise ValueError("the text gives no tokens")
    return np.asarray(ids, np.int64), np.asarray(types, np.int64)


class ClassifierModel(ErnieTaskModel):
    """Logits [B, num_labels] from the pooled [CLS] vector; with num_labels 1 a regression
    score trained with mean squared error."""

    HPARAMS = frozenset({"num_labels", "pooling"})

    def build_net(self, config, hparams):
        self.num_labels = int(hparams.get("num_labels", 2))
        return ErnieForSequenceClassification(config, num_labels=self.num_labels,
                                              pooling=hparams.get("pooling", "cls"))

    @property
    def regression(self):
        return self.num_labels == 1

    def loss(self, logits, labels):
        if self.regression:
            return F.mse_loss(logits.reshape([-1]), labels.astype(logits.dtype).reshape([-1]))
        return F.cross_entropy(logits, labels.reshape([-1, 1]))

    def metrics(self, logits, labels):
        if self.regression:
            score = logits.reshape([-1])
            return {"mse": propeller.metrics.MSE(labels, score), "pearson": Pearson(labels, score),
                    "spearman": Spearman(labels, score)}
        m = {"acc": propeller.metrics.Acc(labels, logits)}
        if self.num_labels == 2:
            m["f1"] = propeller.metrics.F1(labels, logits)
        m["matthews"] = Matthews(labels, logits, num_classes=self.num_labels)
        return m


class ClassificationTask(Task):
    name = "classifier"
    model_class = ClassifierModel

    @staticmethod
    def add_args(p):
        p.add_argument("--num_labels", type=int, default=None,
                       help="number of classes (default 2, or the size of --label_map); 1 = regression")
        p.add_argument("--label_map", help="label names: JSON {label: id}, or one label a line")
        p.add_argument("--sentence_piece_model", help="ERNIE-tiny: SentencePiece model for tokenization")
        p.add_argument("--word_dict", help="ERNIE-tiny: word dict for segmentation before SentencePiece")
        p.add_argument("--pooling", choices=POOLINGS, default=None,
                       help="sentence vector for the classifier: cls (ERNIE's pooler, the default) or mean "
                            "(mean of the top layer over the tokens, which a masked-LM pre-training does train)")
        p.add_argument("--best_metric", default=None,
                       help="dev metric that picks the best model: acc (default), f1, matthews; "
                            "regression: pearson (default), spearman, mse")

    def __init__(self, options, tokenizer, meta=None):
        super().__init__(options, tokenizer, meta)
        label_map = self.meta.get("label_map")
        if options.flag("label_map"):
            label_map = read_label_map(options.flag("label_map"))
        num = options.flag("num_labels") or self.meta.get("num_labels") or (len(label_map) if label_map else 2)
        if label_map and num != 1 and sorted(label_map.values()) != list(range(num)):
            raise SystemExit(f"the label map {label_map} does not give ids 0..{num - 1}")
        self.label_map, self.num_labels = label_map, int(num)
        self.pooling = options.flag("pooling") or self.meta.get("pooling") or "cls"
        self.id2label = {v: k for k, v in label_map.items()} if label_map else None
        if self.num_labels == 1:
            self.best_metric, self.higher_is_better = "pearson", True
            self.shown_metrics = ("mse", "pearson", "spearman")
        else:
            self.shown_metrics = ("acc", "f1", "matthews") if self.num_labels == 2 else ("acc", "matthews")
        chosen = options.flag("best_metric", self.meta.get("best_metric"))
        if chosen:
            if chosen not in self.shown_metrics:
                raise SystemExit(f"--best_metric {chosen}: this task reports {', '.join(self.shown_metrics)}")
            self.best_metric, self.higher_is_better = chosen, chosen != "mse"

    def task_meta(self):
        return dict(num_labels=self.num_labels, label_map=self.label_map, best_metric=self.best_metric,
                    pooling=self.pooling)

    def model_hparams(self):
        return dict(num_labels=self.num_labels, pooling=self.pooling)

    @property
    def pad_values(self):
        return (self.tokenizer.pad_id or 0, 0, 0)

    def label_id(self, text):
        text = text.strip()
        if not text:
            raise ValueError("empty label")
        if self.num_labels == 1:
            try:
                return np.float32(float(text))
            except ValueError:
                raise ValueError(f"label {text!r} is not a number (regression task)") from None
        if self.label_map is not None:
            if text not in self.label_map:
                raise ValueError(f"unknown label {text!r} (known: {', '.join(sorted(self.label_map))})")
            return np.int64(self.label_map[text])
        if text.lstrip("-").isdigit() and 0 <= int(text) < self.num_labels:
            return np.int64(int(text))
        raise ValueError(f"unknown label {text!r} (expected 0..{self.num_labels - 1}, or give --label_map)")

    def encode(self, rec):
        return encode_text(self.tokenizer, rec["text_a"], rec.get("text_b"), self.max_seqlen)

    def read(self, files, bad):
        out = []
        for path, lineno, rec in read_tsv(files, LAYOUTS, bad, required=("text_a", "label")):
            try:
                out.append((*self.encode(rec), self.label_id(rec["label"])))
            except ValueError as e:
                bad(path, lineno, str(e))
        return out

    def has_labels(self, files):
        """False for a test set without a label column (GLUE test files)."""
        with open(files[0], "rb") as f:  # a bad byte here is reported with its line by read_tsv
            first = f.readline().decode("utf-8", "replace").rstrip("\r\n").split("\t")
        names = [x.strip().lower() for x in first]
        return not ("text_a" in names and "label" not in names)

    # ---- prediction
    def format_output(self, logits):
        if self.num_labels == 1:
            return f"{float(logits.reshape(-1)[0]):.6f}"
        p = np.exp(logits - logits.max())
        p /= p.sum()
        k = int(p.argmax())
        label = self.id2label[k] if self.id2label else str(k)
        return label + "\t" + " ".join(f"{x:.6f}" for x in p)

    def predict(self, learner, inp, out, bad):
        run_predict_tsv(self, learner, inp, out, bad, PREDICT_LAYOUTS, self.encode,
                        lambda rec, ex, logits: self.format_output(logits))

    def write_predictions(self, learner, files, out_path):
        exs = [self.encode(rec) for _, _, rec in read_tsv(files, PREDICT_LAYOUTS, BadLines("error", "test"))]
        with open(out_path, "w", encoding="utf-8") as f:
            for logits in predict_rows(self, learner, exs):
                f.write(self.format_output(logits) + "\n")

