"""Adversarial training (FGM / PGD on the embeddings) through the Learner, checked against a
two-pass update computed by hand in numpy."""
import numpy as np
import paddle
import pytest

import propeller.paddle as propeller
from propeller.train.adversarial import Adversary

VOCAB, DIM, CLASSES, LR = 12, 5, 3, 0.1
IDS = np.array([[1, 2, 3, 4], [5, 6, 1, 7], [8, 9, 10, 2]], dtype="int64")
LABELS = np.array([0, 2, 1], dtype="int64")


class MeanEmbedding(propeller.train.Model):
    """logits = mean_t E[ids_t] W + b; cross-entropy; plain SGD (so an update is -LR * gradient)."""

    def __init__(self, hparams, mode=None, run_config=None):
        super().__init__(hparams, mode, run_config)
        self.word_embeddings = paddle.nn.Embedding(VOCAB, DIM)
        self.fc = paddle.nn.Linear(DIM, CLASSES)

    def forward(self, ids):
        return self.fc(self.word_embeddings(ids).mean(axis=1))

    def loss(self, logits, labels):
        return paddle.nn.functional.cross_entropy(logits, labels)

    def optimizer(self, max_steps):
        return paddle.optimizer.SGD(learning_rate=LR, parameters=self.parameters()), None


def _grads(E, W, b):
    """Gradients of the mean cross-entropy of MeanEmbedding at (E, W, b) on (IDS, LABELS)."""
    n, t = IDS.shape
    h = E[IDS].mean(axis=1)
    z = h @ W + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz = (p - np.eye(CLASSES)[LABELS]) / n
    dE = np.zeros_like(E)
    np.add.at(dE, IDS, np.repeat((dz @ W.T)[:, None, :] / t, t, axis=1))
    return dE, h.T @ dz, dz.sum(0)


def _by_hand(E, W, b, method, epsilon, alpha=None, steps=1):
    """Parameters after one SGD step of FGM / PGD training, and the final perturbation's norm."""
    gE, gW, gb = _grads(E, W, b)
    d, r = gE, np.zeros_like(E)
    for _ in range(1 if method == "fgm" else steps):
        r = r + (epsilon if method == "fgm" else alpha) * d / np.linalg.norm(d)
        if np.linalg.norm(r) > epsilon:
            r *= epsilon / np.linalg.norm(r)
        aE, aW, ab = _grads(E + r, W, b)
        d = aE
    return (E - LR * (gE + aE), W - LR * (gW + aW), b - LR * (gb + ab)), np.linalg.norm(r)


def _train_one_step(tmp_path, adversarial, to_static):
    paddle.seed(3)
    rc = propeller.RunConfig(model_dir=str(tmp_path / "m"), max_steps=1, save_steps=None, log_steps=None,
                             to_static=to_static)
    learner = propeller.Learner(MeanEmbedding, rc, {"adversarial": adversarial} if adversarial else {})
    m = learner.model
    start = [x.numpy().copy() for x in (m.word_embeddings.weight, m.fc.weight, m.fc.bias)]
    learner.train([(IDS, LABELS)])
    after = [x.numpy() for x in (m.word_embeddings.weight, m.fc.weight, m.fc.bias)]
    return learner, start, after


@pytest.mark.parametrize("to_static", [False, True])
def test_fgm_step_equals_the_two_pass_update_by_hand(tmp_path, to_static):
    learner, start, after = _train_one_step(tmp_path, {"method": "fgm", "epsilon": 0.7}, to_static)
    expected, norm = _by_hand(*start, "fgm", 0.7)
    assert learner.adversary.last_norms == pytest.approx([0.7], rel=1e-5)
    for got, want in zip(after, expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # and it is not the plain update: the perturbed pass changed the gradients
    _, start2, plain = _train_one_step(tmp_path / "plain", None, to_static)
    assert not np.allclose(plain[0], after[0], atol=1e-6)


def test_pgd_steps_projected_into_the_epsilon_ball(tmp_path):
    # three steps of 0.5 would leave the ball of radius 0.8: the last perturbation sits on its edge
    learner, start, after = _train_one_step(tmp_path, {"method": "pgd", "epsilon": 0.8, "alpha": 0.5, "steps": 3},
                                            to_static=False)
    expected, norm = _by_hand(*start, "pgd", 0.8, alpha=0.5, steps=3)
    assert norm == pytest.approx(0.8) and learner.adversary.last_norms == pytest.approx([norm], rel=1e-5)
    for got, want in zip(after, expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_accumulation_attacks_each_micro_batch_with_its_own_gradient(tmp_path):
    # two identical micro-batches of half the loss each: the same update as one batch
    paddle.seed(3)
    rc = propeller.RunConfig(model_dir=str(tmp_path / "m"), max_steps=1, save_steps=None, log_steps=None)
    learner = propeller.Learner(MeanEmbedding, rc, {"adversarial": {"method": "fgm", "epsilon": 0.7},
                                                    "gradient_accumulation_steps": 2})
    m = learner.model
    start = [x.numpy().copy() for x in (m.word_embeddings.weight, m.fc.weight, m.fc.bias)]
    learner.train([(IDS, LABELS), (IDS, LABELS)])
    expected, _ = _by_hand(*start, "fgm", 0.7)
    for got, want in zip((m.word_embeddings.weight, m.fc.weight, m.fc.bias), expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("value, message", [
    ({"method": "vat"}, "must be one of"),
    ({"epsilon": 1.0}, "must be a dict with a 'method'"),
    ({"method": "fgm", "eps": 1.0}, r"unknown keys \['eps'\]"),
    ({"method": "fgm", "param": "no_such_layer"}, "no trainable parameter .* 'no_such_layer'"),
    ({"method": "pgd", "steps": 0}, "steps >= 1"),
])
def test_bad_settings_are_refused(value, message):
    with pytest.raises(ValueError, match=message):
        Adversary.from_hparams(MeanEmbedding(None), value)
