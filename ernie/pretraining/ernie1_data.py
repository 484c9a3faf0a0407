"""ERNIE 1.0 pre-training data: the id format, examples from segmented documents, and batches.

Id format (gzip or text, one example a line, ids space-separated):
    token_ids;sentence_type_ids;position_ids;seg_labels;next_sentence_label
seg_labels: 0 = unit (word) start, 1 = inside a unit, -1 = [CLS]/[SEP].
A filelist line is ``path<TAB>mask_word_prob``.
"""
import gzip
import logging
import os

import numpy as np

from ernie.pretraining.masking import mask_example

log = logging.getLogger("ernie")


class Example(tuple):
    """(token_ids, sent_ids, pos_ids, seg_labels, nsp_label)"""
    __slots__ = ()


def parse_id_line(line, path="<string>", lineno=0):
    fields = line.rstrip("\n").split(";")
    if len(fields) != 5:
        raise ValueError(f"{path}:{lineno}: expected 5 ';'-separated fields "
                         f"(token_ids;sentence_type_ids;position_ids;seg_labels;next_sentence_label), got {len(fields)}")
    try:
        cols = [np.array(f.split(), dtype="int64") for f in fields[:4]]
        nsp = int(fields[4])
    except ValueError as e:
        raise ValueError(f"{path}:{lineno}: non-integer id ({e})") from None
    if not (len(cols[0]) == len(cols[1]) == len(cols[2]) == len(cols[3])) or len(cols[0]) == 0:
        raise ValueError(f"{path}:{lineno}: token_ids, sentence_type_ids, position_ids and seg_labels "
                         f"must have the same non-zero length, got {[len(c) for c in cols]}")
    return Example((*cols, nsp))


def read_id_file(path, on_bad_line="error", stats=None):
    """Yield Examples from one id-format file (``.gz`` or text). on_bad_line: 'error' or 'skip'."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield parse_id_line(line, path, lineno)
            except ValueError as e:
                if on_bad_line != "skip":
                    raise
                if stats is not None:
                    stats["bad_lines"] = stats.get("bad_lines", 0) + 1
                log.warning("skipped: %s", e)


def read_filelist(path):
    """[(data_path, mask_word_prob)] from a filelist; relative paths resolve against its dir."""
    out = []
    base = os.path.dirname(os.path.abspath(path))
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            try:
                prob = float(parts[1]) if len(parts) > 1 else 0.0
            except ValueError:
                raise ValueError(f"{path}:{lineno}: expected 'path<TAB>mask_word_prob', got {line.strip()!r}") from None
            p = parts[0] if os.path.isabs(parts[0]) else os.path.join(base, parts[0])
            out.append((p, prob))
    return out


def tokenize_sentence(words, tokenizer):
    """Token ids and seg labels for a sentence given as words (gold or jieba segmentation)."""
    ids, seg = [], []
    for word in words:
        toks = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(word))
        ids.extend(toks)
        seg.extend([0] + [1] * (len(toks) - 1))
    return ids, seg


def documents_to_examples(documents, tokenizer, max_seqlen=128, seed=0, cls_id=1, sep_id=2):
    """ERNIE 1.0 pairs from documents (each a list of sentences, each a list of words).

    Segment A is a run of consecutive sentences; B is the sentences that follow it (label 1)
    or, half of the time, sentences from another document (label 0). Both are cut to fit
    ``[CLS] A [SEP] B [SEP]`` into max_seqlen."""
    rng = np.random.RandomState(seed)
    docs = [[tokenize_sentence(s, tokenizer) for s in doc] for doc in documents]
    docs = [[s for s in d if s[0]] for d in docs]
    docs = [d for d in docs if d]
    budget = max_seqlen - 3
    for di, doc in enumerate(docs):
        i = 0
        while i < len(doc):
            a, i = _take(doc, i, budget // 2)
            if len(docs) > 1 and (rng.rand() < 0.5 or i >= len(doc)):
                other = docs[(di + 1 + rng.randint(len(docs) - 1)) % len(docs)]
                b, _ = _take(other, rng.randint(len(other)), budget - len(a[0]))
                label = 0
            elif i < len(doc):
                b, i = _take(doc, i, budget - len(a[0]))
                label = 1
            else:
                break
            ids = [cls_id] + a[0] + [sep_id] + b[0] + [sep_id]
            seg = [-1] + a[1] + [-1] + b[1] + [-1]
            sent = [0] * (len(a[0]) + 2) + [1] * (len(b[0]) + 1)
            yield Example((np.array(ids, "int64"), np.array(sent, "int64"), np.arange(len(ids), dtype="int64"),
                           np.array(seg, "int64"), label))


def _take(doc, start, budget):
    ids, seg, i = [], [], start
    while i < len(doc) and (not ids or len(ids) + len(doc[i][0]) <= budget):
        ids += doc[i][0]
        seg += doc[i][1]
        i += 1
    return (ids[:budget], seg[:budget]), i


def collate(examples, word_mode_flags, rng, vocab_size, mask_id=3, pad_id=0):
    """Pad a list of Examples and mask them. Returns
    (src_ids, sent_ids, pos_ids, mask_pos, (mask_label, nsp_label)); mask_pos indexes the
    flattened [B*S] positions, as the masked-LM head expects."""
    max_len = max(len(e[0]) for e in examples)
    b = len(examples)
    src = np.full((b, max_len), pad_id, "int64")
    sent = np.zeros((b, max_len), "int64")
    pos = np.zeros((b, max_len), "int64")
    mask_pos, mask_label = [], []
    for i, (ex, word_mode) in enumerate(zip(examples, word_mode_flags)):
        ids, p, lab = mask_example(ex[0], ex[3], word_mode, rng, vocab_size, mask_id=mask_id)
        n = len(ids)
        src[i, :n], sent[i, :n], pos[i, :n] = ids, ex[1], ex[2]
        mask_pos.append(p + i * max_len)
        mask_label.append(lab)
    nsp = np.array([e[4] for e in examples], "int64")
    return src, sent, pos, np.concatenate(mask_pos), (np.concatenate(mask_label), nsp)


def batches(examples_fn, batch_size, vocab_size, mask_word_prob=0.5, seed=0, mask_id=3, repeat=True):
    """A generator function of masked batches over ``examples_fn()`` (re-called each epoch).

    Deterministic for a seed, so a resumed run can fast-forward to where it stopped."""
    def gen():
        rng = np.random.RandomState(seed)
        while True:
            buf, flags = [], []
            for ex in examples_fn():
                buf.append(ex)
                flags.append(rng.rand() < mask_word_prob)
                if len(buf) == batch_size:
                    yield collate(buf, flags, rng, vocab_size, mask_id)
                    buf, flags = [], []
            if buf:
                yield collate(buf, flags, rng, vocab_size, mask_id)
            if not repeat:
                return
    return gen
