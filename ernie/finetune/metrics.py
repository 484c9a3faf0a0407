"""Fine-tuning metrics that Propeller does not ship, in its streaming style (update / eval /
state / merge), so the trainer folds them over eval batches like its own."""
import numpy as np

from propeller.metrics import ChunkF1, Metric

__all__ = ["Matthews", "Pearson", "Spearman", "ChunkPrecision", "ChunkRecall"]


def _np(x):
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x)


class Matthews(Metric):
    """Matthews correlation coefficient (CoLA's metric), multi-class as scikit-learn defines it.

    ``pred``: class ids [N] or scores [N, C]. Kept as a C x C confusion matrix."""

    def __init__(self, label=None, pred=None, num_classes=2):
        self.num_classes = int(num_classes)
        super().__init__(label, pred)

    def reset(self):
        self._s = {"confusion": np.zeros([self.num_classes * self.num_classes], np.int64)}

    def update(self, label, pred):
        y = _np(label).reshape(-1).astype(np.int64)
        p = _np(pred)
        p = p.reshape(y.size, -1).argmax(1) if p.size != y.size else p.reshape(-1).astype(np.int64)
        k = self.num_classes
        self.merge({"confusion": np.bincount(y * k + p, minlength=k * k)})

    def eval(self):
        k = self.num_classes
        m = self._s["confusion"].reshape(k, k).astype(np.float64)  # rows: true, cols: predicted
        s, c = m.sum(), np.trace(m)
        t, p = m.sum(1), m.sum(0)
        den = np.sqrt(s * s - (p * p).sum()) * np.sqrt(s * s - (t * t).sum())
        return float((c * s - (t * p).sum()) / den) if den else 0.0


class _Pairs(Metric):
    """Keeps every (label, prediction) pair: correlations need them all."""

    _concat = True

    def __init__(self, label=None, pred=None):
        super().__init__(label, pred)

    def reset(self):
        self._s = {"label": np.zeros([0], np.float64), "pred": np.zeros([0], np.float64)}

    def update(self, label, pred):
        self.merge({"label": _np(label).reshape(-1).astype(np.float64),
                    "pred": _np(pred).reshape(-1).astype(np.float64)})


def _corr(a, b):
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return 0.0  # undefined for a constant side; 0 rather than NaN keeps "best" comparisons sane
    return float(np.corrcoef(a, b)[0, 1])


def _ranks(x):
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], xs.size]
    r = np.empty(x.size)
    r[order] = np.repeat((starts + ends - 1) / 2.0, ends - starts)  # ties share their mean rank
    return r


class Pearson(_Pairs):
    """Pearson correlation (STS-B)."""

    def eval(self):
        return _corr(self._s["label"], self._s["pred"])


class Spearman(_Pairs):
    """Spearman rank correlation (STS-B)."""

    def eval(self):
        return _corr(_ranks(self._s["label"]), _ranks(self._s["pred"]))


class ChunkPrecision(ChunkF1):
    def eval(self):
        return self.precision_recall_f1()[0]


class ChunkRecall(ChunkF1):
    def eval(self):
        return self.precision_recall_f1()[1]
