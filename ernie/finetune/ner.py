"""Sequence labeling (NER) with BIO tags, scored by chunk F1.

Data: TSV ``chars<TAB>tags`` (header ``text_a<TAB>label`` optional): the characters separated
by spaces (or by ``\\x02`` as in the original MSRA-NER files) and one tag per character. Each
character is one token (``[CLS] c1 .. cn [SEP]``) so tags stay aligned; [CLS], [SEP] and
padding carry no label. Characters beyond ``max_seqlen - 2`` are cut (at prediction time they
get ``O``).
"""
import numpy as np
import paddle
import paddle.nn.functional as F

from ernie.finetune.common import ErnieTaskModel
from ernie.finetune.data import read_label_map, read_tsv
from ernie.finetune.metrics import ChunkPrecision, ChunkRecall
from ernie.finetune.runner import Task, run_predict_tsv
from ernie.modeling import ErnieForTokenClassification
from propeller.metrics import ChunkF1

__all__ = ["NerModel", "NerTask", "MSRA_LABELS", "split_units"]

# the label_map.json of the original MSRA-NER release
MSRA_LABELS = ("B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "O")
IGNORE = -1  # label of [CLS], [SEP] and padding: no loss, not scored
LAYOUTS = {2: ("text_a", "label")}
PREDICT_LAYOUTS = {1: ("text_a",), 2: ("text_a", "label")}


def split_units(text):
    return text.split("\x02") if "\x02" in text else text.split()


class NerModel(ErnieTaskModel):
    """Per-token logits [B, S, num_labels]; labels [B, S] with -1 where nothing is scored."""

    HPARAMS = frozenset({"labels"})
    EXPORT_KIND = "token_classification"

    @property
    def num_labels(self):
        return len(self.labels)

    def build_net(self, config, hparams):
        self.labels = list(hparams.get("labels") or MSRA_LABELS)
        return ErnieForTokenClassification(config, num_labels=len(self.labels))

    def loss(self, logits, labels):
        mask = (labels != IGNORE).astype(logits.dtype)
        ce = F.cross_entropy(logits, labels.clip(min=0).unsqueeze(-1), reduction="none").squeeze(-1)
        # mean over the labelled tokens only (padding would otherwise dilute it)
        return (ce * mask).sum() / paddle.clip(mask.sum(), min=1.0)

    def metrics(self, logits, labels):
        pred, mask = logits.argmax(-1), labels != IGNORE
        return {k: cls(labels, pred, mask=mask, id2tag=self.labels)
                for k, cls in (("f1", ChunkF1), ("precision", ChunkPrecision), ("recall", ChunkRecall))}


class NerTask(Task):
    name = "ner"
    model_class = NerModel
    best_metric, higher_is_better = "f1", True
    shown_metrics = ("f1", "precision", "recall")

    @staticmethod
    def add_args(p):
        p.add_argument("--label_map", help="tags: JSON {tag: id} (MSRA-NER's label_map.json) or one a line; "
                                           "default the 7 MSRA tags")
        p.add_argument("--use_sentence_piece_vocab", action="store_true",
                       help="ERNIE-tiny: look characters up in its SentencePiece vocab (also as '\u2581c'); "
                            "input stays one token per character")

    def __init__(self, options, tokenizer, meta=None):
        super().__init__(options, tokenizer, meta)
        labels = self.meta.get("labels")
        if options.flag("label_map"):
            m = read_label_map(options.flag("label_map"))
            labels = [t for t, _ in sorted(m.items(), key=lambda kv: kv[1])]
        self.labels = list(labels or MSRA_LABELS)
        for t in self.labels:
            if t != "O" and not (t[:2] in ("B-", "I-") and len(t) > 2):
                raise SystemExit(f"tag {t!r} is not BIO (B-X, I-X or O)")
        self.tag_id = {t: i for i, t in enumerate(self.labels)}
        self.sp_vocab = bool(options.flag("use_sentence_piece_vocab") or self.meta.get("use_sentence_piece_vocab"))
        self.lower = not options.cased

    def task_meta(self):
        return dict(labels=self.labels, use_sentence_piece_vocab=self.sp_vocab)

    def model_hparams(self):
        return dict(labels=self.labels)

    @property
    def pad_values(self):
        return (self.tokenizer.pad_id or 0, 0, IGNORE)

    def char_id(self, c):
        vocab = self.tokenizer.vocab
        keys = [c, c.lower()] if self.lower else [c]
        if self.sp_vocab:  # SentencePiece vocabularies hold word-initial pieces as '\u2581x'
            keys += ["\u2581" + k for k in keys]
        for k in keys:
            if k in vocab:
                return vocab[k]
        return self.tokenizer.unk_id

    def encode_chars(self, text):
        units = split_units(text)
        if not units:
            raise ValueError("empty text")
        keep = units[:self.max_seqlen - 2]
        t = self.tokenizer
        ids = np.asarray([t.cls_id] + [self.char_id(c) for c in keep] + [t.sep_id], np.int64)
        return units, ids, np.zeros_like(ids)

    def encode(self, rec):
        units, ids, types = self.encode_chars(rec["text_a"])
        tags = rec["label"].split("\x02") if "\x02" in rec["label"] else rec["label"].split()
        if len(tags) != len(units):
            raise ValueError(f"{len(units)} characters but {len(tags)} tags")
        unknown = [x for x in tags if x not in self.tag_id]
        if unknown:
            raise ValueError(f"unknown tag {unknown[0]!r} (known: {', '.join(self.labels)})")
        lab = [IGNORE] + [self.tag_id[x] for x in tags[:len(ids) - 2]] + [IGNORE]
        return ids, types, np.asarray(lab, np.int64)

    def read(self, files, bad):
        out = []
        for path, lineno, rec in read_tsv(files, LAYOUTS, bad, required=("text_a", "label")):
            try:
                out.append(self.encode(rec))
            except ValueError as e:
                bad(path, lineno, str(e))
        return out

    def predict(self, learner, inp, out, bad):
        def encode(rec):
            units, ids, types = self.encode_chars(rec["text_a"])
            return ids, types, len(units)

        def fmt(rec, ex, logits):
            n = ex[2]
            tags = [self.labels[int(k)] for k in logits[1:len(ex[0]) - 1].argmax(-1)]
            return " ".join(tags + ["O"] * (n - len(tags)))

        run_predict_tsv(self, learner, inp, out, bad, PREDICT_LAYOUTS, encode, fmt)
