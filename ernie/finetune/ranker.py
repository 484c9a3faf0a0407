"""Ranking by pairwise relevance (NLPCC-DBQA style): a binary classifier over
``[CLS] query [SEP] candidate [SEP]`` whose positive-class probability ranks each query's
candidates. Scored by MRR over queries, and by F1/accuracy of the relevance label.

Data: TSV ``qid<TAB>text_a<TAB>text_b<TAB>label`` (label 0/1), or the same columns under a
header in any order. Candidates of one query share its ``qid``.
"""
import numpy as np
import paddle.nn.functional as F

import propeller.paddle as propeller
from ernie.finetune.classifier import encode_text
from ernie.finetune.common import ErnieTaskModel
from ernie.finetune.data import read_tsv
from ernie.finetune.runner import Task, run_predict_tsv
from ernie.modeling import ErnieForSequenceClassification

__all__ = ["RankerModel", "RankingTask"]

LAYOUTS = {4: ("qid", "text_a", "text_b", "label")}
PREDICT_LAYOUTS = {3: ("qid", "text_a", "text_b"), 4: ("qid", "text_a", "text_b", "label")}
_COLUMNS = ("qid", "text_a", "text_b")


class RankerModel(ErnieTaskModel):
    """Logits [B, 2]; labels are ``(relevance [B], query ids [B])``."""

    num_labels = 2

    def build_net(self, config, hparams):
        return ErnieForSequenceClassification(config, num_labels=2)

    def loss(self, logits, labels):
        label, _ = labels
        return F.cross_entropy(logits, label.reshape([-1, 1]))

    def metrics(self, logits, labels):
        label, qid = labels
        prob = F.softmax(logits, axis=-1)[:, 1]
        return {"acc": propeller.metrics.Acc(label, logits), "f1": propeller.metrics.F1(label, logits),
                "mrr": propeller.metrics.Mrr(qid, label, prob)}


class RankingTask(Task):
    name = "ranker"
    model_class = RankerModel
    best_metric, higher_is_better = "mrr", True
    shown_metrics = ("acc", "f1", "mrr")

    @staticmethod
    def add_args(p):
        p.add_argument("--sentence_piece_model", help="ERNIE-tiny: SentencePiece model for tokenization")
        p.add_argument("--word_dict", help="ERNIE-tiny: word dict for segmentation before SentencePiece")

    @property
    def pad_values(self):
        return (self.tokenizer.pad_id or 0, 0, 0, 0)

    def to_batch(self, batch):
        return batch[0], batch[1], (batch[2], batch[3])

    def encode(self, rec):
        if not rec["qid"].strip():
            raise ValueError("empty qid")
        return encode_text(self.tokenizer, rec["text_a"], rec["text_b"], self.max_seqlen)

    def read(self, files, bad):
        qids, out = {}, []
        for path, lineno, rec in read_tsv(files, LAYOUTS, bad, required=_COLUMNS + ("label",)):
            label = rec["label"].strip()
            if label not in ("0", "1"):
                bad(path, lineno, f"unknown label {label!r} (expected 0 or 1)")
                continue
            try:
                src, sent = self.encode(rec)
            except ValueError as e:
                bad(path, lineno, str(e))
                continue
            # Mrr groups by integer ids: number the qid strings in order of appearance
            qid = qids.setdefault(rec["qid"].strip(), len(qids))
            out.append((src, sent, np.int64(label), np.int64(qid)))
        return out

    def predict(self, learner, inp, out, bad):
        def fmt(rec, ex, logits):
            p = np.exp(logits - logits.max())
            p /= p.sum()
            return f"{rec['qid']}\t{int(p.argmax())}\t" + " ".join(f"{x:.6f}" for x in p)

        run_predict_tsv(self, learner, inp, out, bad, PREDICT_LAYOUTS, self.encode, fmt, required=_COLUMNS)
