"""Extractive reading comprehension on SQuAD-style JSON (DRCD, CMRC2018), scored by EM and F1.

Input JSON: ``{"data": [{"paragraphs": [{"context": ..., "qas": [{"id", "question",
"answers": [{"text", "answer_start"}]}]}]}]}``.

* The context is cut into units: a run of non-CJK letters/digits is one unit (a word or a
  number), every other non-space character is a unit of its own (CJK characters,
  punctuation). Each unit is tokenized on its own, so every token maps back to a unit and
  every unit to its characters: answers come out as exact substrings of the context.
* A feature is ``[CLS] question [SEP] window [SEP]``; the question keeps at most
  ``max_query_len`` tokens and the context is cut into windows that fill ``max_seqlen``,
  each starting ``doc_stride`` tokens after the previous one. A token scores only in the
  window where it has the most context on both sides (as BERT's ``_check_is_max_context``).
* Training labels: the answer's first/last token in the window, or [CLS] (0, 0) when the
  window does not hold the whole answer.
* Decoding (n-best): over all windows of a question, the ``n_best`` highest start and end
  logits are paired (start <= end, at most ``max_answer_len`` tokens); the best sum wins.
* EM / F1 (percent): after lower-casing and dropping punctuation and English articles, text is
  compared as tokens where each CJK character is a token and other words are split on spaces
  (the CMRC2018 / SQuAD scripts' rules); the best over the gold answers counts.
"""
import collections
import functools
import hashlib
import json
import string
import unicodedata

import numpy as np
import paddle.nn.functional as F

from ernie.finetune.common import ErnieTaskModel
from ernie.finetune.data import read_text
from ernie.finetune.runner import Task, predict_rows
from ernie.modeling import ErnieForQuestionAnswering
from propeller.data import BadLineError
from propeller.metrics import Metric

__all__ = ["MrcModel", "MrcTask", "FeatureStore", "context_units", "em_f1", "read_squad"]

_CJK = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2CEAF), (0xF900, 0xFAFF),
        (0x2F800, 0x2FA1F))


def _is_cjk(c):
    o = ord(c)
    return any(a <= o <= b for a, b in _CJK)


def _wordish(c):
    return c.isalnum() and not _is_cjk(c)


def context_units(text):
    """Character spans ``[(start, end)]`` of the units of ``text`` (see the module doc)."""
    spans, i, n = [], 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        j = i + 1
        if _wordish(text[i]):
            while j < n and _wordish(text[j]):
                j += 1
        spans.append((i, j))
        i = j
    return spans


# ---------------------------------------------------------------------------- scoring

_EXTRA_PUNCT = set("，。、；：？！“”‘’（）《》【】—…·「」『』〈〉～　﹏")


def _norm_tokens(text):
    toks, word = [], []
    for c in text.lower():
        if c.isspace() or c in string.punctuation or c in _EXTRA_PUNCT or unicodedata.category(c).startswith("P"):
            toks.append("".join(word))
            word = []
        elif _is_cjk(c):
            toks += ["".join(word), c]
            word = []
        else:
            word.append(c)
    toks.append("".join(word))
    return [t for t in toks if t and t not in ("a", "an", "the")]


def em_f1(pred, golds):
    """(exact match, F1) of one prediction against the gold answers, each in [0, 1]."""
    p = _norm_tokens(pred)
    em = f1 = 0.0
    for g in golds:
        g = _norm_tokens(g)
        em = max(em, float(p == g))
        common = sum((collections.Counter(p) & collections.Counter(g)).values())
        if common:
            prec, rec = common / len(p), common / len(g)
            f1 = max(f1, 2 * prec * rec / (prec + rec))
    return em, f1


# ---------------------------------------------------------------------------- examples and features

class MrcExample:
    __slots__ = ("qid", "question", "context", "units", "unit_of_token", "token_ids", "answers", "span")

    def __init__(self, qid, question, context, units, unit_of_token, token_ids, answers, span):
        self.qid, self.question, self.context, self.units = qid, question, context, units
        self.unit_of_token, self.token_ids, self.answers, self.span = unit_of_token, token_ids, answers, span

    def text(self, tok_start, tok_end):
        """The context characters covered by doc tokens tok_start..tok_end (inclusive)."""
        a = self.units[self.unit_of_token[tok_start]][0]
        b = self.units[self.unit_of_token[tok_end]][1]
        return self.context[a:b]


class Feature:
    __slots__ = ("example", "offset", "start", "length", "max_context")

    def __init__(self, example, offset, start, length, max_context):
        self.example, self.offset, self.start, self.length, self.max_context = \
            example, offset, start, length, max_context


class FeatureStore:
    """Every feature built so far, by global id: the model's metrics only see tensors (the
    feature ids travel with the labels), so decoding looks the windows up here."""

    def __init__(self):
        self.features = []
        self._cache = {}

    def add(self, feature):
        self.features.append(feature)
        return len(self.features) - 1

    def decode(self, fids, starts, ends, n_best=20, max_answer_len=30):
        """``{example: answer text}`` from per-feature start/end logits (rows aligned with fids)."""
        best = {}
        for fid, s_log, e_log in zip(fids, starts, ends):
            f = self.features[int(fid)]
            s = np.asarray(s_log[f.offset:f.offset + f.length], np.float64)
            e = np.asarray(e_log[f.offset:f.offset + f.length], np.float64)
            top_s = np.argsort(-s, kind="stable")[:n_best]
            top_e = np.argsort(-e, kind="stable")[:n_best]
            for i in top_s:
                if not f.max_context[i]:
                    continue
                for j in top_e:
                    if j < i or j - i + 1 > max_answer_len:
                        continue
                    score = s[i] + e[j]
                    if f.example not in best or score > best[f.example][0]:
                        best[f.example] = (score, f.start + int(i), f.start + int(j))
        out = {}
        for fid in fids:
            ex = self.features[int(fid)].example
            if ex not in out:
                hit = best.get(ex)
                out[ex] = ex.text(hit[1], hit[2]) if hit else ""
        return out

    def scores(self, fids, starts, ends, n_best, max_answer_len):
        """(EM, F1, questions) in percent over the questions these rows cover (cached: EM and
        F1 are two metrics over the same rows)."""
        key = hashlib.sha1(np.ascontiguousarray(fids).tobytes() + np.ascontiguousarray(starts).tobytes()
                           + np.ascontiguousarray(ends).tobytes()).hexdigest()
        if key not in self._cache:
            answers = self.decode(fids, starts, ends, n_best, max_answer_len)
            pairs = [em_f1(a, ex.answers) for ex, a in answers.items()]
            em = 100.0 * float(np.mean([p[0] for p in pairs])) if pairs else 0.0
            f1 = 100.0 * float(np.mean([p[1] for p in pairs])) if pairs else 0.0
            self._cache = {key: (em, f1, len(pairs))}  # only the latest evaluation is worth keeping
        return self._cache[key]


def _max_context(windows, n_tokens):
    """For each window, whether each of its tokens has its most balanced context there."""
    best = np.full(n_tokens, -1.0)
    owner = np.full(n_tokens, -1)
    for w, (start, length) in enumerate(windows):
        pos = np.arange(start, start + length)
        score = np.minimum(pos - start, start + length - 1 - pos) + 0.01 * length
        better = score > best[pos]
        best[pos[better]] = score[better]
        owner[pos[better]] = w
    return [owner[start:start + length] == w for w, (start, length) in enumerate(windows)]


class SquadReader:
    def __init__(self, tokenizer, max_seqlen, max_query_len=64, doc_stride=128):
        if max_query_len + 3 >= max_seqlen:
            raise SystemExit(f"--max_query_len {max_query_len} leaves no room for the context in "
                             f"--max_seqlen {max_seqlen}")
        self.tok, self.max_seqlen, self.max_query_len, self.doc_stride = tokenizer, max_seqlen, max_query_len, doc_stride
        self._contexts = {}

    def _context(self, text):
        """Units and their tokens for one context (shared by its questions)."""
        if text not in self._contexts:
            units = context_units(text)
            unit_of_token, ids = [], []
            for u, (a, b) in enumerate(units):
                for t in self.tok.convert_tokens_to_ids(self.tok.tokenize(text[a:b])):
                    unit_of_token.append(u)
                    ids.append(t)
            self._contexts = {text: (units, unit_of_token, ids)}  # consecutive questions share a context
        return self._contexts[text]

    def example(self, qid, question, context, answers, answer_start=None):
        if not question.strip():
            raise ValueError("empty question")
        if not context.strip():
            raise ValueError("empty context")
        units, unit_of_token, ids = self._context(context)
        if not ids:
            raise ValueError("the context gives no tokens")
        span = None
        if answer_start is not None:
            text = answers[0]
            if not text.strip():
                raise ValueError("empty answer text")
            a = answer_start if context[answer_start:answer_start + len(text)] == text else context.find(text)
            if a < 0:
                raise ValueError(f"answer {text!r} is not in the context")
            b = a + len(text)
            toks = [i for i, u in enumerate(unit_of_token) if units[u][0] < b and units[u][1] > a]
            if not toks:
                raise ValueError(f"answer {text!r} covers no token")
            span = (toks[0], toks[-1])
        return MrcExample(qid, question, context, units, unit_of_token, ids, list(answers), span)

    def features(self, ex, store):
        """Feature tuples ``(src_ids, sent_ids, start, end, feature_id)`` of one example."""
        t = self.tok
        q = t.convert_tokens_to_ids(t.tokenize(ex.question))[:self.max_query_len]
        room = self.max_seqlen - len(q) - 3
        n = len(ex.token_ids)
        windows, start = [], 0
        while True:
            length = min(room, n - start)
            windows.append((start, length))
            if start + length >= n:
                break
            start += min(length, self.doc_stride)
        offset = len(q) + 2
        out = []
        for (start, length), max_ctx in zip(windows, _max_context(windows, n)):
            src = [t.cls_id] + q + [t.sep_id] + ex.token_ids[start:start + length] + [t.sep_id]
            sent = [0] * offset + [1] * (length + 1)
            s = e = 0
            if ex.span is not None and start <= ex.span[0] and ex.span[1] < start + length:
                s, e = ex.span[0] - start + offset, ex.span[1] - start + offset
            fid = store.add(Feature(ex, offset, start, length, max_ctx))
            out.append((np.asarray(src, np.int64), np.asarray(sent, np.int64), np.int64(s), np.int64(e),
                        np.int64(fid)))
        return out


def read_squad(path, text, reader, store, bad, with_answers=True):
    """Features of every question in one SQuAD JSON text; a bad question goes to ``bad``
    (named by file and question id)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadLineError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise BadLineError(f"{path}: expected SQuAD JSON: an object with a 'data' list")
    out = []
    for art in doc["data"]:
        for para in art.get("paragraphs", []):
            context = para.get("context", "")
            for qa in para.get("qas", []):
                qid = str(qa.get("id", "?"))
                try:
                    answers = [a.get("text", "") for a in qa.get("answers") or []]
                    if with_answers:
                        if not answers:
                            raise ValueError("no answers")
                        start = qa["answers"][0].get("answer_start")
                        if not isinstance(start, int):
                            raise ValueError("answer_start missing or not an integer")
                        ex = reader.example(qid, qa.get("question", ""), context, answers, start)
                    else:
                        ex = reader.example(qid, qa.get("question", ""), context, answers)
                    out.extend(reader.features(ex, store))
                except ValueError as e:
                    bad(path, 0, f"question {qid}: {e}")
    return out


# ---------------------------------------------------------------------------- model and metrics

class _SpanMetric(Metric):
    """EM or F1: keeps every feature's logits (padded to ``width``) and decodes at eval()."""

    _concat = True

    def __init__(self, fid=None, start=None, end=None, store=None, which="f1", width=512, n_best=20,
                 max_answer_len=30):
        self.store, self.which, self.width = store, which, width
        self.n_best, self.max_answer_len = n_best, max_answer_len
        super().__init__(fid, start, end)

    def reset(self):
        self._s = {"fid": np.zeros([0], np.int64), "start": np.zeros([0, self.width], np.float32),
                   "end": np.zeros([0, self.width], np.float32)}

    def _pad(self, x):
        x = np.asarray(x.numpy() if hasattr(x, "numpy") else x, np.float32)
        out = np.full((x.shape[0], self.width), -1e4, np.float32)
        out[:, :x.shape[1]] = x[:, :self.width]
        return out

    def update(self, fid, start, end):
        fid = np.asarray(fid.numpy() if hasattr(fid, "numpy") else fid, np.int64).reshape(-1)
        self.merge({"fid": fid, "start": self._pad(start), "end": self._pad(end)})

    def eval(self):
        em, f1, _ = self.store.scores(self._s["fid"], self._s["start"], self._s["end"], self.n_best,
                                      self.max_answer_len)
        return em if self.which == "em" else f1


class MrcModel(ErnieTaskModel):
    """Start and end logits [B, S]; labels ``(start [B], end [B], feature ids [B])``."""

    HPARAMS = frozenset({"max_seqlen", "n_best", "max_answer_len"})
    EXPORT_KIND = "span"

    def __init__(self, hparams, mode=None, run_config=None, store=None):
        super().__init__(hparams, mode, run_config)
        self.store = store if store is not None else FeatureStore()
        self.width = int(hparams["max_seqlen"])  # the task's (TaskOptions), handed over in model_hparams
        self.n_best = int(hparams.get("n_best", 20))
        self.max_answer_len = int(hparams.get("max_answer_len", 30))

    def build_net(self, config, hparams):
        return ErnieForQuestionAnswering(config)

    def loss(self, predictions, labels):
        start_logits, end_logits = predictions
        s, e, _ = labels
        return (F.cross_entropy(start_logits, s.reshape([-1, 1]))
                + F.cross_entropy(end_logits, e.reshape([-1, 1]))) / 2

    def metrics(self, predictions, labels):
        start_logits, end_logits = predictions
        fid = labels[2]
        kw = dict(store=self.store, width=self.width, n_best=self.n_best, max_answer_len=self.max_answer_len)
        return {"em": _SpanMetric(fid, start_logits, end_logits, which="em", **kw),
                "f1": _SpanMetric(fid, start_logits, end_logits, which="f1", **kw)}


class MrcTask(Task):
    name = "mrc"
    model_class = MrcModel
    data_exts = (".json",)
    best_metric, higher_is_better = "f1", True
    shown_metrics = ("em", "f1")

    @staticmethod
    def add_args(p):
        p.add_argument("--doc_stride", type=int, default=None, help="tokens between window starts (default 128)")
        p.add_argument("--max_query_len", type=int, default=None, help="question tokens kept (default 64)")
        p.add_argument("--n_best", type=int, default=None, help="start/end candidates paired in decoding (20)")
        p.add_argument("--max_answer_len", type=int, default=None, help="longest answer in tokens (default 30)")
        p.add_argument("--sentence_piece_model", help="ERNIE-tiny: SentencePiece model for tokenization")
        p.add_argument("--word_dict", help="ERNIE-tiny: word dict for segmentation before SentencePiece")

    def __init__(self, options, tokenizer, meta=None):
        super().__init__(options, tokenizer, meta)

        def pick(name, default):
            return options.flag(name, self.meta.get(name, default))

        self.doc_stride, self.max_query_len = pick("doc_stride", 128), pick("max_query_len", 64)
        self.n_best, self.max_answer_len = pick("n_best", 20), pick("max_answer_len", 30)
        self.store = FeatureStore()
        self.reader = SquadReader(tokenizer, self.max_seqlen, self.max_query_len, self.doc_stride)

    def task_meta(self):
        return dict(doc_stride=self.doc_stride, max_query_len=self.max_query_len, n_best=self.n_best,
                    max_answer_len=self.max_answer_len)

    def model_hparams(self):
        return dict(max_seqlen=self.max_seqlen, n_best=self.n_best, max_answer_len=self.max_answer_len)

    def model_fn(self):
        return functools.partial(MrcModel, store=self.store)  # the model decodes with our features

    @property
    def pad_values(self):
        return (self.tokenizer.pad_id or 0, 0, 0, 0, 0)

    def to_batch(self, batch):
        return batch[0], batch[1], (batch[2], batch[3], batch[4])

    def read(self, files, bad):
        out = []
        for path in files:
            out.extend(read_squad(path, read_text(path), self.reader, self.store, bad))
        return out

    def data_num(self, examples):
        return len({id(self.store.features[int(e[4])].example) for e in examples})

    def eval_line(self, name, result, files, epoch, steps, data_num=None):
        em, f1 = result.get("em", 0.0), result.get("f1", 0.0)
        return (f"[{name} evaluation] ave loss: {result['loss']:.6f}, em: {em:.6f}, f1: {f1:.6f}, "
                f"avg: {(em + f1) / 2:.6f}, question_num: {data_num}, "
                f"elapsed time: {result.get('elapsed_time', 0.0):.6f} s, file: {','.join(files)}, "
                f"epoch: {epoch}, steps: {steps}")

    def predict(self, learner, inp, out, bad):
        """stdin: one SQuAD JSON document (answers optional); stdout: ``{id: answer}`` JSON."""
        feats = read_squad("<stdin>", read_text("<stdin>", inp.read()), self.reader, self.store, bad,
                           with_answers=False)
        rows = predict_rows(self, learner, [f[:2] for f in feats])
        fids = [int(f[4]) for f in feats]
        answers = self.store.decode(fids, [r[0] for r in rows], [r[1] for r in rows], self.n_best,
                                    self.max_answer_len)
        result = collections.OrderedDict((ex.qid, text) for ex, text in answers.items())
        out.write(json.dumps(result, ensure_ascii=False, indent=1) + "\n")
        out.flush()

