"""ERNIE 2.0 pre-training tasks, one class each, behind a registry.

A task knows its task-type id (fed to the task embedding), how it builds one training example
from a document, its label space, its head (token- or sentence-level), its loss and metrics:

    @register_task("my_task")
    class MyTask(PretrainTask):
        level = "sentence"          # "sentence": classify the pooled [CLS]; "token": classify
        num_classes = 2             #  chosen positions; "mlm": predict vocabulary ids there
        default_task_id = 9
        def build(self, doc, rng, ctx):
            ...                     # an Example, or None when this document cannot give one
            return Example(self.name, token_ids, type_ids, positions, labels)

and it can be named in a schedule config; nothing in the library needs editing. Built-in:

    name                     short  level     classes
    knowledge_masking        km     mlm       vocabulary
    capitalization           cp     token     2
    token_document_relation  tdr    token     2
    sentence_reordering      sr     sentence  sum_{n=1..m} n!
    sentence_distance        sd     sentence  3
    discourse_relation       dr     sentence  marker classes
    ir_relevance             ir     sentence  3
    next_sentence            nsp    sentence  2

Examples are plain numpy (token ids, sentence-type ids, target positions, labels): positions
index the example's tokens for token/mlm tasks and are empty for sentence tasks, whose labels
hold one class. ``build`` takes all its randomness from ``rng`` (a numpy RandomState; the
pipeline gives each document visit its own, keyed by the seed and the visit), so the example
stream is a function of the seed and can start at any visit. A task that learns from labelled
files instead returns their rows from ``file_rows`` and turns one row into an Example in
``row_example(row, rng, ctx)`` (as DR and IR do with ``pair_files``, and KM and NSP do with the
rows of an ERNIE 1.0 id-format corpus, :class:`~ernie.pretraining.id_corpus.IdCorpus`).
"""
import json
import math
import os
from typing import NamedTuple

import numpy as np

from ernie.pretraining.id_corpus import IdCorpus
from ernie.pretraining.masking import mask_example, mask_units
from propeller.registry import Registry
from ernie.pretraining.shards import CAPITALIZED, KNOWLEDGE, UNIT_START, WORD_START

__all__ = ["Example", "TaskContext", "PretrainTask", "TASKS", "register_task", "build_task",
           "sr_class", "sr_num_classes", "DEFAULT_MARKERS"]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_MARKERS = os.path.join(ROOT, "config", "pretrain", "discourse_markers.json")


class Example(NamedTuple):
    task: str
    token_ids: np.ndarray   # int64 [n]
    type_ids: np.ndarray    # int64 [n] sentence-type ids
    positions: np.ndarray   # int64 [k] target positions (token/mlm tasks), empty otherwise
    labels: np.ndarray      # int64 [k] (token/mlm) or [1] (sentence)


class TaskContext:
    """What tasks need besides the document: special ids, length limit, the corpus (to draw
    another document) and the tokenizer (to read labelled text files)."""

    def __init__(self, vocab_size, max_seqlen=128, cls_id=1, sep_id=2, mask_id=3, pad_id=0,
                 corpus=None, tokenizer=None, type_vocab_size=2):
        self.vocab_size, self.max_seqlen = int(vocab_size), int(max_seqlen)
        self.cls_id, self.sep_id, self.mask_id, self.pad_id = cls_id, sep_id, mask_id, pad_id
        self.corpus, self.tokenizer, self.type_vocab_size = corpus, tokenizer, type_vocab_size
        self._encoder = None

    def other_document(self, rng, doc):
        """A random document of the corpus other than ``doc`` (None if there is none)."""
        n = len(self.corpus) if self.corpus is not None else 0
        if n < 2:
            return None
        i = int(rng.randint(n - 1))
        if i >= doc.index >= 0:
            i += 1
        return self.corpus[i]

    def encode_text(self, text):
        """(ids, marks) of a text, through the same encoder as the preprocessing."""
        if self._encoder is None:
            if self.tokenizer is None:
                raise ValueError("reading labelled text files needs a tokenizer in the TaskContext")
            from ernie.pretraining.encode import SentenceEncoder
            self._encoder = SentenceEncoder(self.tokenizer)
        s = self._encoder.encode(text)
        return s.ids.astype("int64"), s.marks


# ----------------------------------------------------------------------------- registry

TASKS = Registry("pre-training task")


def register_task(name, *aliases):
    """Class decorator: make a PretrainTask subclass available under ``name`` (and aliases)."""
    def deco(cls):
        if cls.__dict__.get("name") is None:
            cls.name = name
        return TASKS.register(name, *aliases)(cls)
    return deco


def build_task(name, **options):
    return TASKS.build(name, **options)


# ----------------------------------------------------------------------------- helpers

def _cat(parts, dtype="int64"):
    return np.concatenate([np.asarray(p, dtype) for p in parts]) if parts else np.zeros(0, dtype)


def _span(doc, start, budget, end=None):
    """Ids and marks of consecutive sentences from ``start`` (before ``end``) that fit in
    ``budget`` tokens (the first is cut if it alone is too long); and the index after them."""
    end = len(doc) if end is None else end
    ids, marks, n, i = [], [], 0, start
    while i < end and (not ids or n + len(doc[i].ids) <= budget):
        ids.append(doc[i].ids)
        marks.append(doc[i].marks)
        n += len(doc[i].ids)
        i += 1
    return _cat(ids)[:budget], _cat(marks, "uint8")[:budget], i


def _truncate_pair(a, b, budget):
    """Longest-first truncation of two arrays to ``budget`` tokens together (as BERT does)."""
    la, lb = len(a), len(b)
    while la + lb > budget:
        if la > lb:
            la -= 1
        else:
            lb -= 1
    return a[:la], b[:lb]


def _assemble(segments, ctx):
    """[CLS] s0 [SEP] s1 [SEP] ...; sentence types alternate 0/1 per segment (within the
    model's type vocabulary). Returns (ids, types, offset of each segment)."""
    ids, types, offsets = [np.array([ctx.cls_id])], [np.array([0])], []
    pos = 1
    for k, seg in enumerate(segments):
        t = k % max(1, ctx.type_vocab_size)
        offsets.append(pos)
        ids += [np.asarray(seg, "int64"), np.array([ctx.sep_id])]
        types.append(np.full(len(seg) + 1, t))
        pos += len(seg) + 1
    return _cat(ids), _cat(types), offsets


def _sentence_example(name, segments, label, ctx):
    ids, types, _ = _assemble(segments, ctx)
    return Example(name, ids, types, np.zeros(0, "int64"), np.array([label], "int64"))


# ----------------------------------------------------------------------------- base class

class PretrainTask:
    """Base of the pre-training tasks. Subclasses set ``level``, ``num_classes`` (or the
    property), ``default_task_id`` and implement ``build``."""

    name = None
    level = "sentence"         # "sentence", "token" or "mlm"
    num_classes = 2
    default_task_id = 0

    def __init__(self, task_id=None, weight=1.0):
        self.task_id = self.default_task_id if task_id is None else int(task_id)
        self.weight = float(weight)

    def setup(self, ctx):
        """Called once before the first ``build`` (e.g. to tokenize a marker list)."""

    def build(self, doc, rng, ctx):
        raise NotImplementedError

    def file_rows(self, ctx):
        """The rows of labelled files to learn from instead of documents (a list, loaded once per
        stream), or None to build from documents. The stream visits them epoch by epoch in a
        shuffled order and turns each into an example with ``row_example``."""
        if isinstance(ctx.corpus, IdCorpus):
            raise ValueError(f"task {self.name} builds its examples from documents; an id-format corpus "
                             f"(ERNIE 1.0's finished pairs) feeds knowledge_masking and next_sentence only")
        return None

    def row_example(self, row, rng, ctx):
        """The Example of one row of ``file_rows``, its randomness from ``rng`` (as ``build``)."""
        raise NotImplementedError

    # -- model side: imported lazily so that data workers never import paddle
    def build_head(self, config, word_embedding):
        from ernie.pretraining import heads
        if self.level == "mlm":
            return heads.MLMTaskHead(config, word_embedding)
        if self.level == "token":
            return heads.TokenTaskHead(config, self.num_classes)
        return heads.SentenceTaskHead(config, self.num_classes)

    def loss(self, logits, labels):
        import paddle.nn.functional as F
        return F.cross_entropy(logits, labels.reshape([-1, 1]).astype("int64"), reduction="mean")

    def metric_names(self):
        return ["acc", "ppl"] if self.level == "mlm" else ["acc"]

    def metrics(self, logits=None, labels=None):
        """{metric name: propeller metric} for one batch (empty metrics when given nothing)."""
        from propeller import metrics as M
        if logits is None or labels is None or int(labels.shape[0]) == 0:
            out = {"acc": M.Acc()}
            if self.level == "mlm":
                out["ppl"] = M.Ppl(from_logits=True)
            return out
        lab, lg = labels.numpy(), logits.numpy()
        out = {"acc": M.Acc(lab, lg)}
        if self.level == "mlm":
            out["ppl"] = M.Ppl(lab, lg, from_logits=True)
        return out

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r}, task_id={self.task_id}, weight={self.weight})"


# ----------------------------------------------------------------------------- tasks

@register_task("knowledge_masking", "km")
class KnowledgeMasking(PretrainTask):
    """Masked LM over knowledge units (ERNIE 1.0/2.0).

    Each example draws a unit level with the weights of ``levels``:
      char   every token is a unit;
      word   words (gold segmentation, jieba, English words);
      unit   lexicon entities/phrases are single units, other words are units;
      ernie1_char / ernie1_word   ERNIE 1.0's own modes on the same tokens (masking.mask_example:
             each token / each word picked with p 0.15, no budget).
    Budget modes pick whole units until ``budget`` (15%) of the tokens is reached, never splitting
    one; picked tokens become [MASK] 80%, random 10%, unchanged 10%.

    ``pack``: when the span of a short document leaves room, fill it with spans of other documents
    of the corpus, each after a [SEP] (as RoBERTa packs its inputs), so that an example holds about
    ``max_seqlen`` tokens. On a corpus of short texts (reviews: 73 characters on average) batches
    otherwise carry a third or more of padding, computed for nothing."""

    level = "mlm"
    default_task_id = 0
    LEVELS = ("char", "word", "unit", "ernie1_char", "ernie1_word")

    def __init__(self, levels=None, budget=0.15, pack=False, task_id=None, weight=1.0):
        super().__init__(task_id, weight)
        self.pack = bool(pack)
        levels = levels or {"char": 0.2, "word": 0.3, "unit": 0.5}
        bad = set(levels) - set(self.LEVELS)
        if bad:
            raise ValueError(f"knowledge_masking levels must be among {self.LEVELS}, got {sorted(bad)}")
        self.level_names = sorted(levels)
        p = np.array([float(levels[k]) for k in self.level_names])
        self.level_probs = p / p.sum()
        self.budget = float(budget)

    @property
    def num_classes(self):
        return None  # the vocabulary

    def file_rows(self, ctx):
        return ctx.corpus.rows if isinstance(ctx.corpus, IdCorpus) else super().file_rows(ctx)

    def row_example(self, row, rng, ctx):
        """An id-format row, masked as ERNIE 1.0 did: whole words with its file's
        ``mask_word_prob``, else characters (``masking.mask_example`` on its seg_labels)."""
        word_mode = rng.rand() < row.mask_word_prob
        masked, pos, labels = mask_example(row.token_ids, row.seg_labels, word_mode, rng, ctx.vocab_size,
                                           mask_id=ctx.mask_id)
        if not len(pos):
            return None
        return Example(self.name, masked, row.type_ids, pos, labels)

    MIN_PACKED = 8  # a packed span shorter than this is not worth its [SEP]

    def _spans(self, doc, rng, ctx):
        """(ids, marks) of the example's spans: one of ``doc``, then (``pack``) of other documents."""
        room = ctx.max_seqlen - 2
        ids, marks, _ = _span(doc, int(rng.randint(len(doc))), room)
        spans = [(ids, marks)]
        room -= len(ids)
        while self.pack and room > self.MIN_PACKED and len(spans) < 16:
            other = ctx.other_document(rng, doc)
            if other is None or not len(other):
                break
            ids, marks, _ = _span(other, int(rng.randint(len(other))), room - 1)
            spans.append((ids, marks))
            room -= len(ids) + 1
        return spans

    def build(self, doc, rng, ctx, level=None):
        if not len(doc):
            return None
        spans = self._spans(doc, rng, ctx)
        if level is None:
            level = self.level_names[int(rng.choice(len(self.level_names), p=self.level_probs))]
        full = _cat([[ctx.cls_id]] + [p for ids, _ in spans for p in (ids, [ctx.sep_id])])
        m = _cat([[0]] + [p for _, marks in spans for p in (marks, [0])], "uint8")
        special = np.zeros(len(full), bool)
        special[0] = True
        special[full == ctx.sep_id] = True
        if level.startswith("ernie1_"):
            seg = np.where(special, -1, np.where(m & WORD_START, 0, 1))
            masked, pos, labels = mask_example(full, seg, level == "ernie1_word", rng, ctx.vocab_size,
                                               mask_id=ctx.mask_id)
        else:
            starts = {"char": ~special, "word": (m & WORD_START) > 0, "unit": (m & UNIT_START) > 0}[level]
            masked, pos, labels = mask_units(full, starts, ~special, rng, ctx.vocab_size, mask_id=ctx.mask_id,
                                             budget=self.budget)
        if not len(pos):
            return None
        return Example(self.name, masked, np.zeros(len(full), "int64"), pos, labels)


@register_task("capitalization", "cp")
class CapitalizationPrediction(PretrainTask):
    """English: for each word (its first token), was it capitalised in the raw text? (label 1)."""

    level = "token"
    num_classes = 2
    default_task_id = 1

    def build(self, doc, rng, ctx):
        if not len(doc):
            return None
        ids, marks, _ = _span(doc, int(rng.randint(len(doc))), ctx.max_seqlen - 2)
        pos = np.flatnonzero(marks & WORD_START)
        if not len(pos):
            return None
        labels = ((marks[pos] & CAPITALIZED) > 0).astype("int64")
        full = _cat([[ctx.cls_id], ids, [ctx.sep_id]])
        return Example(self.name, full, np.zeros(len(full), "int64"), pos + 1, labels)


@register_task("token_document_relation", "tdr")
class TokenDocumentRelation(PretrainTask):
    """A segment (a run of sentences) of a document; each token is labelled 1 when its id also
    occurs in the rest of the document (the other segments), else 0."""

    level = "token"
    num_classes = 2
    default_task_id = 2

    def build(self, doc, rng, ctx):
        if len(doc) < 2:
            return None
        start = int(rng.randint(len(doc)))
        # leave at least one sentence outside the segment
        end_limit = len(doc) if start > 0 else len(doc) - 1
        ids, _, end = _span(doc, start, ctx.max_seqlen - 2, end_limit)
        rest = _cat([s.ids for k, s in enumerate(doc) if not start <= k < end])
        labels = np.isin(ids, rest).astype("int64")
        full = _cat([[ctx.cls_id], ids, [ctx.sep_id]])
        return Example(self.name, full, np.zeros(len(full), "int64"), np.arange(1, len(ids) + 1), labels)


def sr_num_classes(m):
    return sum(math.factorial(n) for n in range(1, m + 1))


def sr_class(perm):
    """Class of a shuffle: the offset of its length n (sum of k! for k < n) plus the
    lexicographic rank of ``perm`` among the n! permutations (identity = 0).

    ``perm[k]`` is the original index of the segment shown k-th."""
    perm = list(perm)
    n = len(perm)
    rank = 0
    for i in range(n):
        smaller = sum(1 for j in range(i + 1, n) if perm[j] < perm[i])
        rank += smaller * math.factorial(n - 1 - i)
    return sum(math.factorial(k) for k in range(1, n)) + rank


@register_task("sentence_reordering", "sr")
class SentenceReordering(PretrainTask):
    """A paragraph (consecutive sentences) is cut into n segments, n drawn from 1..m, at
    sentence boundaries when it has enough sentences, else at word boundaries; the segments are
    shuffled and the class is the permutation (``sr_class``)."""

    level = "sentence"
    default_task_id = 3

    def __init__(self, max_segments=3, task_id=None, weight=1.0):
        super().__init__(task_id, weight)
        if not 1 <= int(max_segments) <= 6:
            raise ValueError("sentence_reordering max_segments must be in 1..6")
        self.m = int(max_segments)

    @property
    def num_classes(self):
        return sr_num_classes(self.m)

    def build(self, doc, rng, ctx):
        if not len(doc):
            return None
        start = int(rng.randint(len(doc)))
        ids, marks, end = _span(doc, start, ctx.max_seqlen - 1 - self.m)
        n = int(rng.randint(1, self.m + 1))
        # sentence boundaries inside the span first, word boundaries if there are too few
        cuts_s = np.cumsum([len(doc[k].ids) for k in range(start, end)])[:-1]
        cuts_s = cuts_s[cuts_s < len(ids)]
        cands = cuts_s if len(cuts_s) >= n - 1 else np.flatnonzero(marks & WORD_START)[1:]
        n = min(n, len(cands) + 1)
        cuts = np.sort(rng.choice(cands, n - 1, replace=False)) if n > 1 else np.zeros(0, "int64")
        segs = np.split(ids, cuts)
        perm = rng.permutation(n)
        return _sentence_example(self.name, [segs[k] for k in perm], sr_class(perm), ctx)

    def shuffled(self, segments, perm, ctx):
        """The example for given segments shown in the order ``perm`` (for tests and tools)."""
        return _sentence_example(self.name, [np.asarray(segments[k]) for k in perm], sr_class(perm), ctx)


@register_task("sentence_distance", "sd")
class SentenceDistance(PretrainTask):
    """Sentence pair: 0 = B follows A in the document, 1 = same document, not adjacent
    (at least one sentence between), 2 = B is from another document. The class is drawn
    uniformly first; a document that cannot give it gives no example."""

    level = "sentence"
    num_classes = 3
    default_task_id = 4

    def build(self, doc, rng, ctx, label=None):
        n = len(doc)
        label = int(rng.randint(3)) if label is None else label
        if label == 0:
            if n < 2:
                return None
            i = int(rng.randint(n - 1))
            b = doc[i + 1].ids
        elif label == 1:
            if n < 3:
                return None
            firsts = [i for i in range(n) if i >= 2 or i + 2 < n]  # those with a non-adjacent partner
            i = firsts[int(rng.randint(len(firsts)))]
            far = [j for j in range(n) if abs(j - i) >= 2]
            b = doc[far[int(rng.randint(len(far)))]].ids
        else:
            if n < 1:
                return None
            other = ctx.other_document(rng, doc)
            if other is None or not len(other):
                return None
            i = int(rng.randint(n))
            b = other[int(rng.randint(len(other)))].ids
        a, b = _truncate_pair(np.asarray(doc[i].ids, "int64"), np.asarray(b, "int64"), ctx.max_seqlen - 3)
        return _sentence_example(self.name, [a, b], label, ctx)


def load_markers(path=None, lang="zh"):
    """{marker text: class name} and the sorted class names from a marker config."""
    with open(path or DEFAULT_MARKERS, encoding="utf-8") as f:
        cfg = json.load(f)
    if lang not in cfg.get("markers", {}):
        raise ValueError(f"{path or DEFAULT_MARKERS}: no markers for language {lang!r}")
    classes = list(cfg["classes"])
    markers = cfg["markers"][lang]
    unknown = sorted(set(markers.values()) - set(classes))
    if unknown:
        raise ValueError(f"{path or DEFAULT_MARKERS}: markers of undeclared classes {unknown}")
    return markers, classes


def _read_pairs(paths, n_fields=3):
    """(text_a, text_b, label) rows of tab-separated files; a header line whose last field is
    'label' is skipped."""
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                parts = line.rstrip("\r\n").split("\t")
                if len(parts) != n_fields:
                    if line.strip():
                        raise ValueError(f"{path}:{lineno}: expected {n_fields} tab-separated fields, got {len(parts)}")
                    continue
                if lineno == 1 and parts[-1] == "label":
                    continue
                yield path, lineno, parts


class _PairFileTask(PretrainTask):
    """Sentence-pair tasks that also read labelled ``a<TAB>b<TAB>label`` files."""

    def __init__(self, pair_files=None, task_id=None, weight=1.0):
        super().__init__(task_id, weight)
        self.pair_files = [pair_files] if isinstance(pair_files, str) else list(pair_files or [])

    def label_id(self, label, path, lineno):
        try:
            k = int(label)
        except ValueError:
            raise ValueError(f"{path}:{lineno}: label {label!r} is not a class id") from None
        if not 0 <= k < self.num_classes:
            raise ValueError(f"{path}:{lineno}: label {k} outside 0..{self.num_classes - 1}")
        return k

    def file_rows(self, ctx):
        if not self.pair_files:
            return super().file_rows(ctx)
        rows = [(self.label_id(lab, p, n), a, b) for p, n, (a, b, lab) in _read_pairs(self.pair_files)]
        if not rows:
            raise ValueError(f"{self.name}: no pairs in {self.pair_files}")
        return rows

    def row_example(self, row, rng, ctx):
        label, a, b = row
        ia, _ = ctx.encode_text(a)
        ib, _ = ctx.encode_text(b)
        ia, ib = _truncate_pair(ia, ib, ctx.max_seqlen - 3)
        return _sentence_example(self.name, [ia, ib], label, ctx)


@register_task("discourse_relation", "dr")
class DiscourseRelation(_PairFileTask):
    """Two adjacent sentences whose second begins with a discourse marker (a list per language in
    ``config/pretrain/discourse_markers.json``): the class is the marker's class, and the marker
    (plus a comma right after it) is removed from the input. The marker must end at a word
    boundary (但是 matches 但是, not 但是非). With ``pair_files`` it reads labelled
    ``sentence_a<TAB>sentence_b<TAB>label`` files instead (label: class name or id)."""

    level = "sentence"
    default_task_id = 5

    def __init__(self, lang="zh", markers=None, pair_files=None, task_id=None, weight=1.0):
        super().__init__(pair_files, task_id, weight)
        self.lang, self.markers_path = lang, markers
        self.marker_text, self.classes = load_markers(markers, lang)
        self._markers = None

    @property
    def num_classes(self):
        return len(self.classes)

    def label_id(self, label, path, lineno):
        if label in self.classes:
            return self.classes.index(label)
        return super().label_id(label, path, lineno)

    def setup(self, ctx):
        tok = ctx.tokenizer
        if tok is None:
            raise ValueError("discourse_relation needs the tokenizer in the TaskContext to read its markers")
        self._markers = {}
        for text, cls in self.marker_text.items():
            ids = tuple(tok.convert_tokens_to_ids(tok.tokenize(text)))
            if ids and tok.unk_id not in ids:  # a marker the vocab cannot spell can never match
                self._markers[ids] = self.classes.index(cls)
        # by first token, longest first: a sentence start is checked against a handful
        self._by_first = {}
        for m, cls in sorted(self._markers.items(), key=lambda kv: -len(kv[0])):
            self._by_first.setdefault(m[0], []).append((m, cls))
        self._commas = set(tok.convert_tokens_to_ids([c for c in (",", "，", "、") if c in tok.vocab]))

    def match(self, sentence):
        """(marker length incl. a following comma, class) if the sentence begins with a marker."""
        ids, marks = sentence.ids, sentence.marks
        cands = self._by_first.get(int(ids[0])) if len(ids) else None
        if not cands:
            return None
        for m, cls in cands:
            L = len(m)
            if L <= len(ids) and tuple(int(x) for x in ids[:L]) == m and (L == len(ids) or marks[L] & WORD_START):
                break
        else:
            return None
        if L < len(ids) and int(ids[L]) in self._commas:
            L += 1
        return L, cls

    def build(self, doc, rng, ctx):
        if self._markers is None:
            self.setup(ctx)
        found = []
        for i in range(1, len(doc)):
            hit = self.match(doc[i])
            if hit is not None and hit[0] < len(doc[i].ids):
                found.append((i, hit))
        if not found:
            return None
        i, (L, cls) = found[int(rng.randint(len(found)))]
        a, b = _truncate_pair(np.asarray(doc[i - 1].ids, "int64"), np.asarray(doc[i].ids[L:], "int64"),
                              ctx.max_seqlen - 3)
        return _sentence_example(self.name, [a, b], cls, ctx)


@register_task("ir_relevance", "ir")
class IRRelevance(_PairFileTask):
    """Query-title relevance: 0 = strong (clicked), 1 = weak (shown, not clicked), 2 = none.

    Real data: ``pair_files`` of ``query<TAB>title<TAB>label``. Without them, weak pairs come
    from the corpus by this rule: a document's first sentence is its title (the demo corpora
    start each article with its headline); a query is made from another sentence s of the
    document, as the lexicon entities/phrases in s (up to ``query_tokens`` tokens), or its first
    ``query_words`` words when s has none. Label 0 pairs the query with its document's title;
    1 with a third sentence of the same document (related, but not what was asked); 2 with the
    title of a random other document. The label is drawn uniformly first."""

    level = "sentence"
    num_classes = 3
    default_task_id = 6

    def __init__(self, query_tokens=16, query_words=4, pair_files=None, task_id=None, weight=1.0):
        super().__init__(pair_files, task_id, weight)
        self.query_tokens, self.query_words = int(query_tokens), int(query_words)

    def query(self, sentence):
        ids, marks = np.asarray(sentence.ids, "int64"), sentence.marks
        know = (marks & KNOWLEDGE) > 0
        if know.any():
            q = ids[know]
        else:
            starts = np.flatnonzero(marks & WORD_START)
            end = starts[self.query_words] if len(starts) > self.query_words else len(ids)
            q = ids[:end]
        return q[:self.query_tokens]

    def build(self, doc, rng, ctx, label=None):
        n = len(doc)
        if n < 2:
            return None
        label = int(rng.randint(3)) if label is None else label
        s = int(rng.randint(1, n))
        q = self.query(doc[s])
        if label == 0:
            title = doc[0].ids
        elif label == 1:
            others = [j for j in range(1, n) if j != s]
            if not others:
                return None
            title = doc[others[int(rng.randint(len(others)))]].ids
        else:
            other = ctx.other_document(rng, doc)
            if other is None or not len(other):
                return None
            title = other[0].ids
        q, t = _truncate_pair(q, np.asarray(title, "int64"), ctx.max_seqlen - 3)
        return _sentence_example(self.name, [q, t], label, ctx)


@register_task("next_sentence", "nsp")
class NextSentencePrediction(PretrainTask):
    """ERNIE 1.0 / BERT: A = consecutive sentences, B = the sentences after them (label 1) or
    from another document (label 0), each half of the time; [CLS] A [SEP] B [SEP]."""

    level = "sentence"
    num_classes = 2
    default_task_id = 7

    def file_rows(self, ctx):
        return ctx.corpus.rows if isinstance(ctx.corpus, IdCorpus) else super().file_rows(ctx)

    def row_example(self, row, rng, ctx):
        """An id-format row: the pair as it is, its own next-sentence label."""
        return Example(self.name, row.token_ids, row.type_ids, np.zeros(0, "int64"),
                       np.array([row.nsp_label], "int64"))

    def build(self, doc, rng, ctx):
        if len(doc) < 2:
            return None
        budget = ctx.max_seqlen - 3
        start = int(rng.randint(len(doc) - 1))
        a, _, i = _span(doc, start, budget // 2, len(doc) - 1)
        if rng.rand() < 0.5:
            b, _, _ = _span(doc, i, budget - len(a))
            label = 1
        else:
            other = ctx.other_document(rng, doc)
            if other is None or not len(other):
                return None
            b, _, _ = _span(other, int(rng.randint(len(other))), budget - len(a))
            label = 0
        a, b = _truncate_pair(a, b, budget)
        return _sentence_example(self.name, [a, b], label, ctx)
