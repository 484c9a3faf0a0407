"""Student-side text handling: the word tokenizer and vocabulary of the small students, and the
files a distillation run reads.

* Gold data: the task's ``train``/``dev``/``test`` TSV (``label<TAB>text_a`` with a header, or
  ``text_a<TAB>label``), read with ``ernie.finetune``'s reader.
* ``--unsupervise_data_dir``: files of teacher-labelled or plain text. A line is
  ``label<TAB>p_0 p_1 ...<TAB>text`` (``paste`` of ``finetune_classifier.py --do_predict``'s
  output and its input: offline distillation) or just ``text`` (to be labelled by the teacher
  server while the student trains: online distillation).

The BOW/CNN/LSTM students read words: text is split on whitespace (augmented text is written
pre-segmented) and each chunk cut by jieba; ``[UNK]`` stays one token. Their vocabulary is
built from the training text (``build_vocab``, also ``python -m distill.data build_vocab``).
"""
import argparse
import collections
import logging
import os
import sys

import numpy as np

__all__ = ["SPECIALS", "WordTokenizer", "build_vocab", "load_vocab", "UnsupRecord", "read_unsup", "read_gold",
           "num_label_columns"]

log = logging.getLogger("distill")

SPECIALS = ("[PAD]", "[UNK]")  # ids 0 and 1 in every student word vocabulary


def _jieba():
    import jieba
    jieba.setLogLevel(logging.WARNING)
    return jieba


class WordTokenizer:
    """Words via jieba (cached per chunk: augmented copies repeat their source's words)."""

    def __init__(self, vocab, lower=True):
        self.vocab = vocab if isinstance(vocab, dict) else load_vocab(vocab)
        for i, tok in enumerate(SPECIALS):
            if self.vocab.get(tok) != i:
                raise ValueError(f"a student vocabulary must have {tok} as id {i}")
        self.pad_id, self.unk_id, self.lower = 0, 1, lower
        self._cut = _jieba().lcut
        self._cache = {}

    def tokenize(self, text):
        if self.lower:
            text = text.lower()
        out = []
        for chunk in text.split():
            if chunk in ("[unk]", "[UNK]"):
                out.append("[UNK]")
                continue
            words = self._cache.get(chunk)
            if words is None:
                words = [w for w in self._cut(chunk) if w.strip()]
                if len(self._cache) < 1_000_000:
                    self._cache[chunk] = words
            out.extend(words)
        return out

    def encode(self, text, max_seqlen=None):
        get, unk = self.vocab.get, self.unk_id
        ids = [get(w, unk) for w in self.tokenize(text)]
        if max_seqlen:
            ids = ids[:max_seqlen]
        if not ids:
            ids = [unk]  # an empty text still needs one position (a bag of nothing)
        return np.asarray(ids, np.int64)


def load_vocab(path):
    """One token a line (``token`` or ``token<TAB>id``); ids are line numbers."""
    vocab = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            tok = line.rstrip("\r\n").split("\t")[0]
            if tok and tok not in vocab:
                vocab[tok] = len(vocab)
    if not vocab:
        raise ValueError(f"{path}: empty vocabulary")
    return vocab


def build_vocab(texts, max_size=35000, min_freq=1, lower=True):
    """[PAD], [UNK], then words by frequency (ties by word): the original BOW's 35000 rows."""
    tok = WordTokenizer({s: i for i, s in enumerate(SPECIALS)}, lower=lower)
    counts = collections.Counter(w for t in texts for w in tok.tokenize(t))
    for s in SPECIALS:
        counts.pop(s, None)
    words = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
    return list(SPECIALS) + words[:max(0, max_size - len(SPECIALS))]


class UnsupRecord(tuple):
    """(text, teacher label or None, teacher probabilities or None)."""

    __slots__ = ()

    def __new__(cls, text, label=None, probs=None):
        return super().__new__(cls, (text, label, probs))

    text = property(lambda self: self[0])
    label = property(lambda self: self[1])
    probs = property(lambda self: self[2])


def _files(path):
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise SystemExit(f"{path}: no such file or directory")
    files = [os.path.join(path, f) for f in sorted(os.listdir(path))
             if not f.startswith(".") and os.path.isfile(os.path.join(path, f))]
    if not files:
        raise SystemExit(f"{path}: no data files in it")
    return files


def read_unsup(path, num_labels=None):
    """UnsupRecords of every file under ``path``. A labelled line's probabilities must have
    ``num_labels`` entries: a teacher of another label space is refused, naming the line."""
    out = []
    for f in _files(path):
        with open(f, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                fields = line.split("\t")
                if len(fields) == 1:
                    out.append(UnsupRecord(fields[0]))
                    continue
                if len(fields) != 3:
                    raise SystemExit(f"{f}:{lineno}: expected `text` or `label<TAB>probabilities<TAB>text`, "
                                     f"got {len(fields)} columns")
                try:
                    probs = np.asarray([float(x) for x in fields[1].split()], np.float32)
                    label = int(fields[0])
                except ValueError:
                    raise SystemExit(f"{f}:{lineno}: the teacher's label/probabilities are not numbers: "
                                     f"{fields[0]!r} {fields[1]!r}") from None
                if num_labels is not None and len(probs) != num_labels:
                    raise SystemExit(f"{f}:{lineno}: the teacher gives {len(probs)} class probabilities but "
                                     f"the student has {num_labels} labels: this teacher does not match the "
                                     f"task's label space")
                out.append(UnsupRecord(fields[2], label, probs))
    return out


def num_label_columns(records):
    return {len(r.probs) for r in records if r.probs is not None}


def read_gold(data_dir, split, num_labels, on_bad_line="error"):
    """[(text, label id)] of one split ([] when the split is absent)."""
    from ernie.finetune.data import BadLines, read_tsv, split_files
    files = split_files(data_dir, split)
    if not files:
        return []
    bad, out = BadLines(on_bad_line, split), []
    layouts = {2: ("text_a", "label")}
    for path, lineno, rec in read_tsv(files, layouts, bad, required=("text_a", "label")):
        lab = rec["label"].strip()
        if not lab.isdigit() or int(lab) >= num_labels:
            bad(path, lineno, f"label {lab!r} is not one of 0..{num_labels - 1}")
            continue
        out.append((rec["text_a"], int(lab)))
    bad.report()
    return out


def main(argv=None):
    from propeller.fsutil import atomic_write_text
    ap = argparse.ArgumentParser(prog="python -m distill.data")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build_vocab", help="word vocabulary of the small students")
    b.add_argument("--data_dir", required=True, help="task data: its train split is counted")
    b.add_argument("--unsupervise_data_dir", default=None, help="more text to count (augmented)")
    b.add_argument("--out", required=True)
    b.add_argument("--max_size", type=int, default=35000)
    b.add_argument("--min_freq", type=int, default=1)
    args = ap.parse_args(argv)
    texts = [t for t, _ in read_gold(args.data_dir, "train", num_labels=1 << 30)]
    if args.unsupervise_data_dir:
        texts += [r.text for r in read_unsup(args.unsupervise_data_dir)]
    words = build_vocab(texts, args.max_size, args.min_freq)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    atomic_write_text(args.out, "".join(w + "\n" for w in words))
    print(f"{len(words)} words -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
