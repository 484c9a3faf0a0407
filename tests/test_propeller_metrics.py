"""Propeller metrics against scikit-learn / seqeval / direct computation on the same random inputs.

Every metric is fed in several uneven batches, and also split across two objects merged through
``state()``, so both the streaming and the merging paths must agree with the reference.
"""
import math

import numpy as np
import pytest
from seqeval.metrics import f1_score as seqeval_f1
from seqeval.metrics import precision_score as seqeval_precision
from sklearn import metrics as skm

import propeller.paddle as propeller

M = propeller.metrics
RNG_SEEDS = [0, 1, 2]


def _batches(n, rng):
    """Uneven batch boundaries over n items."""
    cuts = np.sort(rng.choice(np.arange(1, n), size=4, replace=False))
    return list(zip(np.r_[0, cuts], np.r_[cuts, n]))


def _stream(metric_factory, arrays, rng):
    """Feed arrays batch by batch into one metric; also into two halves merged via state()."""
    n = len(arrays[0])
    whole = metric_factory()
    a, b = metric_factory(), metric_factory()
    for i, (s, e) in enumerate(_batches(n, rng)):
        batch = [x[s:e] for x in arrays]
        whole.update(*batch)
        (a if i % 2 else b).update(*batch)
    merged = a.merge(b.state())
    return whole.eval(), merged.eval()


def _check(metric_factory, arrays, expected, rng, tol=1e-9):
    got, got_merged = _stream(metric_factory, arrays, rng)
    assert got == pytest.approx(expected, rel=tol, abs=tol)
    assert got_merged == pytest.approx(expected, rel=tol, abs=tol)


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_acc_matches_sklearn_with_ids_and_logits(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, 200)
    logits = rng.normal(size=(200, 4)).astype(np.float32)
    ids = logits.argmax(1)
    expected = skm.accuracy_score(y, ids)
    _check(M.Acc, [y, ids], expected, rng)
    _check(M.Acc, [y.reshape(-1, 1), logits], expected, rng)  # [N,1] labels, [N,C] scores


def test_acc_mask_drops_positions():
    y = np.array([[1, 2, 0], [1, 1, 0]])
    p = np.array([[1, 0, 3], [1, 1, 3]])
    mask = np.array([[1, 1, 0], [1, 1, 0]])
    assert M.Acc(y, p, mask).eval() == pytest.approx(3 / 4)


@pytest.mark.parametrize("seed", RNG_SEEDS)
@pytest.mark.parametrize("average", ["binary", "micro", "macro"])
def test_precision_recall_f1_match_sklearn(seed, average):
    rng = np.random.default_rng(seed)
    k = 2 if average == "binary" else 5
    y = rng.integers(0, k, 300)
    p = np.where(rng.random(300) < 0.6, y, rng.integers(0, k, 300))
    if average == "macro":
        p[p == 4] = 3  # class 4 only in y_true: its precision is 0 (undefined), as sklearn counts it
    for cls, sk in ((M.Precision, skm.precision_score), (M.Recall, skm.recall_score), (M.F1, skm.f1_score)):
        expected = sk(y, p, average=average, zero_division=0)
        _check(lambda: cls(average=average), [y, p], expected, rng)


def test_binary_f1_with_probabilities_and_pos_label():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 100)
    probs = rng.random((100, 2))
    ids = probs.argmax(1)
    assert M.F1(y, probs).eval() == pytest.approx(skm.f1_score(y, ids))
    assert M.Precision(y, ids, pos_label=0).eval() == pytest.approx(skm.precision_score(y, ids, pos_label=0))
    with pytest.raises(ValueError, match="not class ids"):
        M.F1(y, probs[:, 1])  # one probability per label is ambiguous: must be thresholded first


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_auc_matches_sklearn_including_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 400)
    score = np.round(rng.random(400) + 0.3 * y, 1)  # rounding creates many ties
    expected = skm.roc_auc_score(y, score)
    _check(M.Auc, [y, score], expected, rng)
    two_col = np.stack([1 - score, score], axis=1)
    _check(M.Auc, [y, two_col], expected, rng)


def test_auc_single_class_is_nan():
    assert math.isnan(M.Auc([1, 1], [0.2, 0.3]).eval())


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_mse_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(150, 3))
    p = y + rng.normal(scale=0.5, size=(150, 3))
    _check(M.MSE, [y, p], skm.mean_squared_error(y, p), rng)


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_cosine_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(120, 8))
    b = a + rng.normal(size=(120, 8))
    expected = np.diag(skm.pairwise.cosine_similarity(a, b)).mean()
    _check(M.Cosine, [a, b], expected, rng)


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_ppl_is_exp_of_sklearn_log_loss(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(250, 6))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = rng.integers(0, 6, 250)
    expected = math.exp(skm.log_loss(y, probs, labels=np.arange(6)))
    _check(M.Ppl, [y, probs], expected, rng, tol=1e-7)
    _check(lambda: M.Ppl(from_logits=True), [y, logits], expected, rng, tol=1e-7)


def test_mean_and_weighted_mean():
    rng = np.random.default_rng(0)
    v = rng.normal(size=90)
    _check(M.Mean, [v], v.mean(), rng)
    w = rng.random(90)
    m = M.Mean()
    m.update(v[:40], w[:40])
    m.update(v[40:], w[40:])
    assert m.eval() == pytest.approx(np.average(v, weights=w))


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_precision_at_threshold_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    score = np.clip(rng.random(300) * 0.8 + 0.3 * y, 0, 1)
    for t in (0.3, 0.5, 0.9):
        expected = skm.precision_score(y, score >= t, zero_division=0)
        _check(lambda: M.PrecisionAtThreshold(threshold=t), [y, score], expected, rng)


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_recall_at_precision_matches_sklearn_pr_curve(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    score = np.round(rng.random(300) * 0.8 + 0.4 * y, 2)
    prec, rec, _ = skm.precision_recall_curve(y, score)
    for target in (0.6, 0.8, 0.9, 0.97):
        ok = prec >= target
        expected = rec[ok].max() if ok.any() else 0.0
        _check(lambda: M.RecallAtPrecision(precision=target), [y, score], expected, rng)


def test_recall_at_precision_target_reached_exactly():
    y, score = [1, 1, 0, 1, 0], [0.9, 0.8, 0.7, 0.6, 0.5]
    # top-4 has precision exactly 3/4 and recall 1; ">=" must accept it
    assert M.RecallAtPrecision(y, score, precision=0.75).eval() == 1.0
    assert M.RecallAtPrecision(y, score, precision=0.76).eval() == pytest.approx(2 / 3)


def _mrr_reference(qid, label, score):
    """Plain-Python MRR; a relevant document's rank is the number of documents of its query
    scoring at least as high (ties count against the model)."""
    total, queries = 0.0, sorted(set(qid))
    for q in queries:
        docs = [i for i in range(len(qid)) if qid[i] == q]
        ranks = [sum(score[j] >= score[i] for j in docs) for i in docs if label[i] > 0]
        total += 1.0 / min(ranks) if ranks else 0.0
    return total / len(queries)


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_mrr_matches_direct_computation(seed):
    rng = np.random.default_rng(seed)
    n = 300
    qid = rng.integers(0, 40, n)  # queries scattered across batches, some without relevant docs
    label = (rng.random(n) < 0.25).astype(np.int64)
    score = np.round(rng.random(n), 1)  # ties inside queries
    _check(M.Mrr, [qid, label, score], _mrr_reference(qid, label, score), rng)


def test_mrr_hand_example():
    # q1: relevant doc ranked 2nd -> 1/2; q2: relevant ranked 1st -> 1; q3: none relevant -> 0;
    # q4: relevant tied with one other at the top -> rank 2
    m = M.Mrr([1, 1, 1, 2, 2, 3, 4, 4, 4], [0, 1, 0, 1, 0, 0, 0, 1, 0], [0.9, 0.5, 0.1, 0.7, 0.2, 0.3, 0.8, 0.8, 0.1])
    assert m.eval() == pytest.approx((0.5 + 1 + 0 + 0.5) / 4)


TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]


def _random_tag_ids(rng, n_sent, max_len):
    lens = rng.integers(1, max_len + 1, n_sent)
    gold = [rng.choice(len(TAGS), size=L, p=[0.4] + [0.1] * 6) for L in lens]
    pred = [np.where(rng.random(L) < 0.7, g, rng.integers(0, len(TAGS), L)) for g, L in zip(gold, lens)]
    return gold, pred, lens


@pytest.mark.parametrize("seed", RNG_SEEDS)
def test_chunk_f1_matches_seqeval_on_random_bio(seed):
    # Random tags include ill-formed I-X after O or after another type, which seqeval's default
    # (conlleval) mode treats as chunk starts; the metric must agree on those too.
    rng = np.random.default_rng(seed)
    gold, pred, lens = _random_tag_ids(rng, 60, 12)
    gold_s = [[TAGS[i] for i in s] for s in gold]
    pred_s = [[TAGS[i] for i in s] for s in pred]
    expected = seqeval_f1(gold_s, pred_s)
    assert 0.2 < expected < 0.95

    # padded id arrays + seqlen, in batches of 16 sentences
    T = max(lens)
    pad = lambda seqs: np.array([np.r_[s, np.zeros(T - len(s), np.int64)] for s in seqs])  # noqa: E731
    G, P = pad(gold), pad(pred)
    m = M.ChunkF1(id2tag=TAGS)
    for s in range(0, 60, 16):
        m.update(G[s : s + 16], P[s : s + 16], lens[s : s + 16])
    assert m.eval() == pytest.approx(expected)
    assert m.precision_recall_f1()[0] == pytest.approx(seqeval_precision(gold_s, pred_s))

    # ragged string lists, label map {tag: id} irrelevant here; mask instead of seqlen
    assert M.ChunkF1(gold_s, pred_s).eval() == pytest.approx(expected)
    mask = np.arange(T)[None, :] < lens[:, None]
    label_map = {t: i for i, t in enumerate(TAGS)}
    assert M.ChunkF1(G, P, mask=mask, id2tag=label_map).eval() == pytest.approx(expected)


def test_chunk_f1_spans_not_tokens():
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    half = [["B-PER", "O", "O", "B-LOC"]]  # the PER span is cut short: wrong chunk
    assert M.ChunkF1(gold, half).eval() == pytest.approx(0.5)
    assert M.ChunkF1(gold, gold).eval() == 1.0
    with pytest.raises(ValueError, match="BIO"):
        M.ChunkF1([["E-PER"]], [["O"]])


def test_paddle_tensors_accepted():
    import paddle

    y = paddle.to_tensor([0, 1, 1, 0])
    logits = paddle.to_tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.5], [0.1, 0.2]])
    assert M.Acc(y, logits).eval() == pytest.approx(0.5)
    assert M.Auc(y, paddle.nn.functional.softmax(logits)).eval() == pytest.approx(
        skm.roc_auc_score([0, 1, 1, 0], [-1, 3, -0.5, 0.1])
    )


def test_state_is_plain_numpy_and_survives_pickle():
    import pickle

    m = M.F1(average="macro")
    m.update([0, 1, 2], [0, 2, 2])
    st = pickle.loads(pickle.dumps(m.state()))
    assert all(isinstance(v, np.ndarray) for v in st.values())
    other = M.F1(average="macro")
    other.update([5], [5])  # longer per-class vectors: merge pads
    other.merge(st)
    assert other.eval() == pytest.approx(skm.f1_score([5, 0, 1, 2], [5, 0, 2, 2], average="macro"))
