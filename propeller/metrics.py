"""Streaming evaluation metrics.

Every metric has ``update(...)`` (call once per batch), ``eval()`` (a Python float over all
batches so far), ``reset()``, and ``state()`` / ``merge(state)`` so results from several
processes or several metric objects can be combined: gather the ``state()`` dicts (small dicts
of numpy arrays, picklable) and ``merge`` them into one metric, then ``eval()``.

Inputs may be numpy arrays, lists, or paddle Tensors (read with ``.numpy()``). Constructors
take the same arguments as ``update`` followed by keyword options, so the original style
``Acc(label, pred)`` (a metric built from one batch) works and such per-batch objects can be
folded together with ``merge``:  ``total.merge(Acc(label, pred).state())``.

Shapes: ``label`` is flattened to N values. A classification ``pred`` is either N class ids
or N*C scores (logits/probabilities, shape [..., C]), reduced with argmax. A score ``pred``
for binary metrics (Auc, Mrr, RecallAtPrecision, PrecisionAtThreshold) is N positive-class
scores, or [N, 2] from which column 1 is used. ``mask`` (same size as label) drops positions.
"""
import math

import numpy as np

__all__ = [
    "Metric",
    "Mean",
    "Ppl",
    "Acc",
    "MSE",
    "Cosine",
    "Precision",
    "Recall",
    "F1",
    "Auc",
    "Mrr",
    "ChunkF1",
    "RecallAtPrecision",
    "PrecisionAtThreshold",
]


def _np(x):
    if x is None:
        return None
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "numpy"):  # paddle.Tensor, without importing paddle here
        return np.asarray(x.numpy())
    return np.asarray(x)


def _flat_mask(mask, n):
    if mask is None:
        return None
    m = _np(mask).reshape(-1).astype(bool)
    if m.size != n:
        raise ValueError("mask has %d elements, label has %d" % (m.size, n))
    return m


def _class_ids(pred, n):
    """Class ids from ``pred``: N ids, or N*C scores reduced by argmax over the last axis."""
    p = _np(pred)
    if p.size == n:
        p = p.reshape(-1)
        if p.dtype.kind == "f":
            if not np.all(np.mod(p, 1) == 0):
                raise ValueError(
                    "pred has one float per label but they are not class ids; pass [N, C] scores "
                    "or threshold the probabilities first"
                )
        return p.astype(np.int64)
    if n and p.size % n == 0:
        return p.reshape(n, -1).argmax(axis=1).astype(np.int64)
    raise ValueError("pred with %d elements does not match %d labels" % (p.size, n))


def _scores(pred, n):
    """Positive-class scores: N values, or column 1 of [N, 2]."""
    p = _np(pred).astype(np.float64)
    if p.size == n:
        return p.reshape(-1)
    if p.size == 2 * n:
        return p.reshape(n, 2)[:, 1]
    raise ValueError("pred with %d elements is neither N=%d scores nor [N, 2]" % (p.size, n))


def _div(a, b):
    return float(a) / float(b) if b else 0.0


class Metric:
    """Base: subclasses set ``self._s`` (dict of numpy arrays) in ``reset`` and combine states
    either by summing (``_concat = False``) or by concatenating (``_concat = True``)."""

    _concat = False

    def __init__(self, *args, **kwargs):
        self.reset()
        if any(a is not None for a in args) or kwargs:
            self.update(*args, **kwargs)

    def reset(self):
        raise NotImplementedError

    def update(self, *args, **kwargs):
        raise NotImplementedError

    def eval(self):
        raise NotImplementedError

    def state(self):
        return {k: np.array(v) for k, v in self._s.items()}

    def merge(self, state):
        """Fold in another metric's ``state()`` (or the metric itself); returns self."""
        if isinstance(state, Metric):
            state = state.state()
        for k, v in state.items():
            v = np.asarray(v)
            if self._concat:
                self._s[k] = np.concatenate([self._s[k], v.astype(self._s[k].dtype)])
            else:
                self._s[k] = _padded_add(self._s[k], v)
        return self

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, self.eval())


def _padded_add(a, b):
    # Per-class count vectors grow with the largest class id seen, so lengths can differ.
    if a.shape != b.shape and a.ndim == 1 and b.ndim == 1:
        n = max(a.size, b.size)
        a = np.pad(a, (0, n - a.size))
        b = np.pad(b, (0, n - b.size))
    return a + b


class _SumMetric(Metric):
    def reset(self):
        self._s = {"sum": np.zeros((), np.float64), "count": np.zeros((), np.float64)}

    def _add(self, total, count):
        self._s["sum"] = self._s["sum"] + total
        self._s["count"] = self._s["count"] + count

    def eval(self):
        return _div(self._s["sum"], self._s["count"]) if self._s["count"] else float("nan")


class Mean(_SumMetric):
    """Mean of all values seen (e.g. a per-batch loss); ``weight`` per value, default 1."""

    def __init__(self, values=None, weight=None):
        super().__init__(values, weight)

    def update(self, values, weight=None):
        v = _np(values).astype(np.float64).reshape(-1)
        if weight is None:
            self._add(v.sum(), v.size)
        else:
            w = np.broadcast_to(_np(weight).astype(np.float64).reshape(-1), v.shape)
            self._add((v * w).sum(), w.sum())


class Ppl(_SumMetric):
    """Perplexity: exp of the mean negative log-likelihood of ``label`` under ``pred``.

    ``pred`` holds probabilities [..., C] (or logits with ``from_logits=True``); ``label`` the
    target ids [...]. ``mask`` drops positions such as padding.
    """

    def __init__(self, label=None, pred=None, mask=None, from_logits=False):
        self.from_logits = from_logits
        super().__init__(label, pred, mask)

    def update(self, label, pred, mask=None):
        y = _np(label).reshape(-1).astype(np.int64)
        p = _np(pred).astype(np.float64).reshape(y.size, -1)
        if self.from_logits:
            p = p - p.max(axis=1, keepdims=True)
            logp = p - np.log(np.exp(p).sum(axis=1, keepdims=True))
        else:
            logp = np.log(np.clip(p, np.finfo(np.float64).tiny, None))
        nll = -logp[np.arange(y.size), y]
        m = _flat_mask(mask, y.size)
        if m is not None:
            nll = nll[m]
        self._add(nll.sum(), nll.size)

    def eval(self):
        return math.exp(super().eval()) if self._s["count"] else float("nan")


class Acc(_SumMetric):
    """Accuracy: fraction of positions where the predicted class equals the label."""

    def __init__(self, label=None, pred=None, mask=None):
        super().__init__(label, pred, mask)

    def update(self, label, pred, mask=None):
        y = _np(label).reshape(-1)
        p = _class_ids(pred, y.size)
        hit = p == y.astype(np.int64)
        m = _flat_mask(mask, y.size)
        if m is not None:
            hit = hit[m]
        self._add(hit.sum(), hit.size)


class MSE(_SumMetric):
    """Mean squared error over all elements (sklearn's uniform average for multi-output)."""

    def __init__(self, label=None, pred=None):
        super().__init__(label, pred)

    def update(self, label, pred):
        y = _np(label).astype(np.float64).reshape(-1)
        p = _np(pred).astype(np.float64).reshape(-1)
        if y.size != p.size:
            raise ValueError("MSE: label has %d elements, pred %d" % (y.size, p.size))
        self._add(((y - p) ** 2).sum(), y.size)


class Cosine(_SumMetric):
    """Mean cosine similarity between corresponding rows (last axis = vector) of label and pred."""

    def __init__(self, label=None, pred=None):
        super().__init__(label, pred)

    def update(self, label, pred):
        y = _np(label).astype(np.float64)
        p = _np(pred).astype(np.float64)
        if y.shape != p.shape:
            raise ValueError("Cosine: label shape %s != pred shape %s" % (y.shape, p.shape))
        y = y.reshape(-1, y.shape[-1] if y.ndim else 1)
        p = p.reshape(y.shape)
        norm = np.linalg.norm(y, axis=1) * np.linalg.norm(p, axis=1)
        cos = np.where(norm > 0, (y * p).sum(axis=1) / np.where(norm > 0, norm, 1), 0.0)
        self._add(cos.sum(), cos.size)


class _ClassCounts(Metric):
    """Per-class true-positive / predicted / true counts (vectors indexed by class id)."""

    def __init__(self, label=None, pred=None, mask=None, average="binary", pos_label=1):
        if average not in ("binary", "micro", "macro"):
            raise ValueError("average must be 'binary', 'micro' or 'macro', got %r" % (average,))
        self.average, self.pos_label = average, int(pos_label)
        super().__init__(label, pred, mask)

    def reset(self):
        self._s = {k: np.zeros([0], np.int64) for k in ("tp", "n_pred", "n_true")}

    def update(self, label, pred, mask=None):
        y = _np(label).reshape(-1).astype(np.int64)
        p = _class_ids(pred, y.size)
        m = _flat_mask(mask, y.size)
        if m is not None:
            y, p = y[m], p[m]
        if y.size and min(y.min(), p.min()) < 0:
            raise ValueError("class ids must be >= 0")
        k = max(int(y.max(initial=-1)), int(p.max(initial=-1)), self.pos_label) + 1
        add = {
            "tp": np.bincount(y[y == p], minlength=k),
            "n_pred": np.bincount(p, minlength=k),
            "n_true": np.bincount(y, minlength=k),
        }
        self.merge(add)

    def _prf(self):
        """(precision, recall, f1) per the ``average`` setting, zero when undefined (as sklearn)."""
        tp, npred, ntrue = (self._s[k].astype(np.float64) for k in ("tp", "n_pred", "n_true"))
        if self.average == "binary":
            c = self.pos_label
            tp, npred, ntrue = (v[c] if c < v.size else 0.0 for v in (tp, npred, ntrue))
            return _div(tp, npred), _div(tp, ntrue), _div(2 * tp, npred + ntrue)
        if self.average == "micro":
            tp, npred, ntrue = tp.sum(), npred.sum(), ntrue.sum()
            return _div(tp, npred), _div(tp, ntrue), _div(2 * tp, npred + ntrue)
        present = (npred + ntrue) > 0  # sklearn's default labels: union of y_true and y_pred
        if not present.any():
            return 0.0, 0.0, 0.0
        safe = lambda a, b: np.where(b > 0, a / np.where(b > 0, b, 1), 0.0)  # noqa: E731
        prec = safe(tp, npred)[present].mean()
        rec = safe(tp, ntrue)[present].mean()
        f1 = safe(2 * tp, npred + ntrue)[present].mean()
        return float(prec), float(rec), float(f1)


class Precision(_ClassCounts):
    """Precision of class ``pos_label`` (``average='binary'``), or micro/macro over classes."""

    def eval(self):
        return self._prf()[0]


class Recall(_ClassCounts):
    """Recall, averaged like Precision."""

    def eval(self):
        return self._prf()[1]


class F1(_ClassCounts):
    """F1, averaged like Precision (macro = mean of per-class F1, as sklearn)."""

    def eval(self):
        return self._prf()[2]


class _ScoreMetric(Metric):
    """Keeps every (label, score) pair: the exact metric needs the whole ranking."""

    _concat = True

    def reset(self):
        self._s = {"label": np.zeros([0], np.int64), "score": np.zeros([0], np.float64)}

    def _append(self, label, pred):
        y = _np(label).reshape(-1).astype(np.int64)
        s = _scores(pred, y.size)
        self.merge({"label": y, "score": s})


class Auc(_ScoreMetric):
    """Area under the ROC curve of ``pred`` scores for ``label == pos_label``; ties count half."""

    def __init__(self, label=None, pred=None, pos_label=1):
        self.pos_label = pos_label
        super().__init__(label, pred)

    def update(self, label, pred):
        self._append(label, pred)

    def eval(self):
        pos = self._s["label"] == self.pos_label
        n_pos, n_neg = int(pos.sum()), int((~pos).sum())
        if n_pos == 0 or n_neg == 0:
            return float("nan")  # undefined with one class
        ranks = _average_ranks(self._s["score"])
        # Mann-Whitney U: the probability that a random positive outranks a random negative.
        u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0
        return float(u / (n_pos * n_neg))


def _average_ranks(x):
    """1-based ranks of ``x``, ties sharing their average rank."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    # Start index of each run of equal values.
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], xs.size]
    avg = (starts + ends + 1) / 2.0  # mean of ranks start+1 .. end
    ranks = np.empty(x.size, np.float64)
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


class Mrr(_ScoreMetric):
    """Mean reciprocal rank over queries: within each ``qid``, documents are ranked by ``pred``
    (descending) and a query scores 1/rank of its first relevant (``label > 0``) document, 0 if
    it has none. Ties count against the model (a relevant document tied with others takes the
    lowest of their ranks), so the result does not depend on input or merge order and a
    constant scorer gets no credit for ties.
    """

    def __init__(self, qid=None, label=None, pred=None):
        super().__init__(qid, label, pred)

    def reset(self):
        super().reset()
        self._s["qid"] = np.zeros([0], np.int64)

    def update(self, qid, label, pred):
        y = _np(label).reshape(-1).astype(np.int64)
        q = _np(qid).reshape(-1).astype(np.int64)
        if q.size != y.size:
            raise ValueError("Mrr: %d qids for %d labels" % (q.size, y.size))
        self.merge({"qid": q, "label": y, "score": _scores(pred, y.size)})

    def eval(self):
        q, y, s = self._s["qid"], self._s["label"], self._s["score"]
        if q.size == 0:
            return float("nan")
        _, group = np.unique(q, return_inverse=True)
        order = np.lexsort((-s, group))  # by group, then score descending
        g, s, rel = group[order], s[order], y[order] > 0
        n = q.size
        new_group = np.r_[True, g[1:] != g[:-1]]
        group_start = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
        new_run = new_group | np.r_[True, s[1:] != s[:-1]]  # runs of equal score inside a group
        run_id = np.cumsum(new_run) - 1
        run_last = np.r_[np.flatnonzero(new_run)[1:] - 1, n - 1][run_id]
        rank = run_last - group_start + 1  # pessimistic 1-based rank within the query
        best = np.full(int(g.max()) + 1, np.inf)
        np.minimum.at(best, g[rel], rank[rel])
        return float(np.where(np.isfinite(best), 1.0 / best, 0.0).mean())


class RecallAtPrecision(_ScoreMetric):
    """The highest recall reachable by a threshold whose precision is >= ``precision``
    (predicted positive: score >= threshold); 0 if none reaches it."""

    def __init__(self, label=None, pred=None, precision=0.9, pos_label=1):
        self.precision, self.pos_label = precision, pos_label
        super().__init__(label, pred)

    def update(self, label, pred):
        self._append(label, pred)

    def eval(self):
        y = self._s["label"] == self.pos_label
        s = self._s["score"]
        n_pos = int(y.sum())
        if n_pos == 0:
            return 0.0
        order = np.argsort(-s, kind="mergesort")
        s, y = s[order], y[order]
        last = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.size - 1]  # last index of each distinct score
        tp = np.cumsum(y)[last]
        fp = (last + 1) - tp
        prec = tp / (tp + fp)
        ok = prec >= self.precision
        return float(tp[ok].max() / n_pos) if ok.any() else 0.0


class PrecisionAtThreshold(_SumMetric):
    """Precision when ``score >= threshold`` is predicted positive (0 if nothing is)."""

    def __init__(self, label=None, pred=None, threshold=0.5, pos_label=1):
        self.threshold, self.pos_label = threshold, pos_label
        super().__init__(label, pred)

    def update(self, label, pred):
        y = _np(label).reshape(-1) == self.pos_label
        hit = _scores(pred, y.size) >= self.threshold
        self._add((hit & y).sum(), hit.sum())  # sum = true positives, count = predicted positives

    def eval(self):
        return _div(self._s["sum"], self._s["count"])


class ChunkF1(Metric):
    """Span-level F1 of BIO tagging, micro-averaged over chunk types (as seqeval/conlleval).

    ``label``/``pred``: [B, T] tag ids with ``seqlen`` [B] (or ``mask`` [B, T]) marking the
    real tokens, or lists of per-sentence tag sequences (ids or strings). Ids are mapped to
    tags with ``id2tag`` (a list, an ``{id: tag}`` dict, or a ``{tag: id}`` label map).
    A chunk starts at B-X, or at I-X not continuing a chunk of type X; it ends at O, B, or a
    type change. Chunks never cross sentences.
    """

    def __init__(self, label=None, pred=None, seqlen=None, mask=None, id2tag=None):
        self.id2tag = _id2tag(id2tag)
        super().__init__(label, pred, seqlen, mask)

    def reset(self):
        self._s = {k: np.zeros((), np.int64) for k in ("tp", "n_pred", "n_true")}

    def update(self, label, pred, seqlen=None, mask=None):
        gold = self._sentences(label, seqlen, mask)
        guess = self._sentences(pred, seqlen, mask)
        if len(gold) != len(guess):
            raise ValueError("ChunkF1: %d label sentences, %d pred sentences" % (len(gold), len(guess)))
        tp = n_pred = n_true = 0
        for g, p in zip(gold, guess):
            if len(g) != len(p):
                raise ValueError("ChunkF1: sentence lengths differ (%d label, %d pred tags)" % (len(g), len(p)))
            gc, pc = _chunks(g), _chunks(p)
            tp += len(gc & pc)
            n_pred += len(pc)
            n_true += len(gc)
        self.merge({"tp": tp, "n_pred": n_pred, "n_true": n_true})

    def _sentences(self, x, seqlen, mask):
        if isinstance(x, (list, tuple)) and x and not np.isscalar(x[0]):
            rows = [list(r) if isinstance(r, (list, tuple)) else list(_np(r).reshape(-1)) for r in x]
        else:
            a = _np(x)
            rows = [list(r) for r in (a.reshape(1, -1) if a.ndim == 1 else a.reshape(a.shape[0], -1))]
        if mask is not None:
            m = _np(mask).astype(bool)
            m = m.reshape(1, -1) if m.ndim == 1 else m.reshape(m.shape[0], -1)
            rows = [[t for t, keep in zip(r, mr) if keep] for r, mr in zip(rows, m)]
        elif seqlen is not None:
            lens = _np(seqlen).reshape(-1).astype(np.int64)
            rows = [r[:n] for r, n in zip(rows, lens)]
        return [[self._tag(t) for t in r] for r in rows]

    def _tag(self, t):
        if isinstance(t, str):
            return t
        if self.id2tag is None:
            raise ValueError("ChunkF1 got tag ids but no id2tag mapping")
        return self.id2tag[int(t)]

    def precision_recall_f1(self):
        tp, n_pred, n_true = (int(self._s[k]) for k in ("tp", "n_pred", "n_true"))
        return _div(tp, n_pred), _div(tp, n_true), _div(2 * tp, n_pred + n_true)

    def eval(self):
        return self.precision_recall_f1()[2]


def _id2tag(m):
    if m is None:
        return None
    if isinstance(m, dict):
        if m and all(isinstance(k, str) for k in m):  # a label map {tag: id}
            return {int(v): k for k, v in m.items()}
        return {int(k): v for k, v in m.items()}
    return dict(enumerate(m))


def _split_tag(tag):
    if tag == "O":
        return "O", None
    prefix, _, ctype = tag.partition("-")
    if prefix not in ("B", "I"):
        raise ValueError("ChunkF1 expects BIO tags (B-X, I-X, O), got %r" % (tag,))
    return prefix, ctype


def _chunks(tags):
    """Set of (type, start, end) spans in one sentence of BIO tags."""
    spans = set()
    start, ctype = None, None
    for i, tag in enumerate(list(tags) + ["O"]):  # a trailing O closes the last chunk
        prefix, t = _split_tag(tag)
        if start is not None and (prefix in ("O", "B") or t != ctype):
            spans.add((ctype, start, i))
            start = None
        if prefix == "B" or (prefix == "I" and start is None):
            start, ctype = i, t
    return spans
