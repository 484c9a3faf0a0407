"""Distillation units that need no data: the losses against numpy, tokenization alignment, the
hparam check, the students' pooling, export and prediction (tests/test_distill.py runs the
end-to-end students and teachers on a slice of the demo data)."""
import numpy as np
import paddle
import pytest

from distill.layer_distill import align, student_targets
from distill.losses import mixed_loss, soft_kl
from distill.model import check_hparams
from distill.teacher import TeacherLabelled, softmax


def _np_kl(s, t, T):
    p, q = softmax(t / T), softmax(s / T)
    return (p * (np.log(p) - np.log(q))).sum(-1) * T * T


# ---------------------------------------------------------------------------- losses
def test_soft_loss_equals_numpy_kl():
    rng = np.random.RandomState(0)
    s, t = rng.randn(6, 3).astype(np.float32) * 2, rng.randn(6, 3).astype(np.float32) * 2
    for T in (1.0, 2.0, 5.0):
        got = soft_kl(paddle.to_tensor(s), paddle.to_tensor(t), T).numpy()
        np.testing.assert_allclose(got, _np_kl(s, t, T), rtol=1e-4, atol=1e-6)
    assert abs(float(soft_kl(paddle.to_tensor(t), paddle.to_tensor(t), 2.0, "mean"))) < 1e-6


def test_mixed_loss_weights_gold_and_teacher_rows():
    rng = np.random.RandomState(1)
    s, t = rng.randn(4, 2).astype(np.float32), rng.randn(4, 2).astype(np.float32)
    gold = np.array([1, -1, 0, 1], np.int64)          # row 1 has no gold label
    has_t = np.array([0, 1, 1, 1], np.float32)       # row 0 has no teacher label
    T, w = 2.0, 0.3
    ce = -np.log(softmax(s))[np.arange(4), np.clip(gold, 0, None)]
    kl = _np_kl(s, t, T)
    want = np.mean([ce[0], kl[1], w * ce[2] + (1 - w) * kl[2], w * ce[3] + (1 - w) * kl[3]])
    args = [paddle.to_tensor(x) for x in (s, gold, t, has_t)]
    np.testing.assert_allclose(float(mixed_loss(*args, mode="soft", temperature=T, gold_weight=w)), want, rtol=1e-5)
    hard = -np.log(softmax(s))[np.arange(4), t.argmax(-1)]
    want = np.mean([ce[0], hard[1], w * ce[2] + (1 - w) * hard[2], w * ce[3] + (1 - w) * hard[3]])
    np.testing.assert_allclose(float(mixed_loss(*args, mode="hard", gold_weight=w)), want, rtol=1e-5)
    np.testing.assert_allclose(float(mixed_loss(*args, mode="gold")), np.mean(ce[[0, 2, 3]]), rtol=1e-5)


def test_alignment_of_two_tokenizations():
    same = ["[CLS]", "好", "看", "[SEP]"]
    np.testing.assert_array_equal(align(same, same), np.eye(4, dtype=np.float32))
    o = align(["[CLS]", "▁好看", "▁的", "[SEP]"], ["[CLS]", "好", "看", "的", "[SEP]"])
    np.testing.assert_array_equal(o > 0, [[1, 0, 0, 0, 0], [0, 1, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1]])
    rows, cols = student_targets(paddle.to_tensor(o[None]))
    np.testing.assert_allclose(rows.numpy().sum(-1), 1.0, rtol=1e-6)   # student rows average teacher tokens
    np.testing.assert_allclose(cols.numpy().sum(-1), 1.0, rtol=1e-6)   # teacher keys go to student tokens


def test_unknown_hparam_is_refused_naming_the_student():
    assert check_hparams({"student": "cnn"})["kernel_size"] == 3
    with pytest.raises(SystemExit, match="unknown hparam.*'kernel_size'.*'bow'"):
        check_hparams({"student": "bow", "kernel_size": 5})
    with pytest.raises(SystemExit, match="unknown student"):
        check_hparams({"student": "gpt"})


# ---------------------------------------------------------------------------- students
def test_max_over_real_positions_matches_numpy_and_routes_the_gradient():
    from distill.students import _max_over_real_positions
    rng = np.random.RandomState(0)
    x = rng.randn(2, 5, 3).astype("float32")
    x[1, 3:] = 50.0                                  # pads with the largest values: must not win
    m = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], np.float32)[:, :, None]
    xt = paddle.to_tensor(x, stop_gradient=False)
    got = _max_over_real_positions(xt, paddle.to_tensor(m))
    want = np.stack([x[0].max(0), x[1, :3].max(0)])
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
    got.sum().backward()
    g = xt.grad.numpy()
    np.testing.assert_array_equal(g.sum(1), np.ones((2, 3)))   # one winner per (row, channel)
    assert g[1, 3:].sum() == 0 and g[0, x[0].argmax(0), range(3)].tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("name", ["bow", "cnn", "lstm", "ernie_tiny"])
def test_student_exports_and_predicts_like_dygraph(name, tmp_path):
    import propeller.paddle as propeller
    from distill.model import DistillModel
    from propeller.inference.export import export_inference_model
    from propeller.inference.predictor import Predictor
    paddle.seed(0)
    hp = check_hparams({"student": name, "vocab_size": 50, "num_labels": 3,
                        **({"ernie_config": {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                                             "intermediate_size": 32}} if name == "ernie_tiny" else {})})
    model = DistillModel(hp)
    model.eval()
    ids = np.array([[5, 6, 7, 8, 9], [3, 4, 0, 0, 0]], np.int64)
    want = model(paddle.to_tensor(ids)).numpy()
    assert want.shape == (2, 3)
    # padding does not change a row's logits
    np.testing.assert_allclose(model(paddle.to_tensor(ids[1:, :2])).numpy(), want[1:], atol=1e-5)
    export_inference_model(model, str(tmp_path))
    got = Predictor(str(tmp_path)).predict([ids])[0]
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert isinstance(propeller.HParams(**dict(hp.items())), propeller.HParams)


def test_online_labels_fill_only_the_rows_without_gold_as_offline_files_do():
    from propeller.data import Dataset

    class FakeTeacher:
        pad_id = 0

        def logits(self, src, sent):  # one distinct row of logits per row sent
            return np.stack([src.sum(1), -src.sum(1)], 1).astype(np.float32)

    batches = [(np.array([[5], [6]]), np.array([[1, 2], [3, 0]]), np.zeros((2, 2), np.int64),
                (np.array([1, -1]), np.zeros((2, 2), np.float32), np.zeros(2, np.float32))),
               (np.array([[7]]), np.array([[4, 4, 4]]), np.zeros((1, 3), np.int64),
                (np.array([-1]), np.zeros((1, 2), np.float32), np.zeros(1, np.float32)))]
    ds = Dataset.from_list(batches)
    out = list(TeacherLabelled(ds, FakeTeacher(), window=2, prefetch=0))
    assert len(out) == 2 and out[0][0].tolist() == [[5], [6]]
    gold, t_logits, has_t = out[0][1]
    assert gold.tolist() == [1, -1] and has_t.tolist() == [0.0, 1.0]  # the gold row keeps gold alone
    assert t_logits.tolist() == [[3.0, -3.0], [3.0, -3.0]]
    assert out[1][1][2].tolist() == [1.0] and out[1][1][1].tolist() == [[12.0, -12.0]]
