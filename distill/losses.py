"""Distillation losses (paddle): soft labels (KL at a temperature), hard labels, gold labels,
their per-row mix, and the ERNIE-tiny layer losses (hidden states, attention distributions)."""
import paddle
import paddle.nn.functional as F

__all__ = ["soft_kl", "probs_to_logits", "mixed_loss", "hidden_mse", "attention_kl", "MODES"]

MODES = ("soft", "hard", "gold")
_EPS = 1e-7


def probs_to_logits(probs):
    """Teacher probabilities back to logits (up to a per-row constant, which softmax ignores):
    the offline teacher's ``--do_predict`` prints probabilities, the server returns logits."""
    return paddle.log(paddle.clip(probs, min=_EPS))


def soft_kl(student_logits, teacher_logits, temperature=1.0, reduction="none"):
    """KL(softmax(t/T) || softmax(s/T)) per row, times T^2 (Hinton et al.: keeps the gradient
    scale of the soft term independent of T)."""
    t = float(temperature)
    p = F.softmax(teacher_logits / t, axis=-1)
    log_q = F.log_softmax(student_logits / t, axis=-1)
    log_p = paddle.log(paddle.clip(p, min=1e-30))
    kl = (p * (log_p - log_q)).sum(axis=-1) * (t * t)
    return kl.mean() if reduction == "mean" else kl


def mixed_loss(logits, gold, teacher_logits, has_teacher, mode="soft", temperature=1.0, gold_weight=0.5):
    """Mean over rows of the gold and teacher terms.

    ``gold``: int64 [B] (-1: no gold label); ``teacher_logits``: [B, C]; ``has_teacher``: float
    [B] (1: the row has a teacher label). ``mode``: ``soft`` (KL at ``temperature``), ``hard``
    (cross-entropy on the teacher's argmax) or ``gold`` (teacher ignored). A row with both
    labels weighs them ``gold_weight`` : ``1 - gold_weight``; a row with one uses it alone.
    """
    if mode not in MODES:
        raise ValueError(f"distill mode must be one of {MODES}, got {mode!r}")
    gold = gold.reshape([-1])
    has_gold = (gold >= 0).astype(logits.dtype)
    ce_gold = F.cross_entropy(logits, paddle.clip(gold, min=0).reshape([-1, 1]), reduction="none").reshape([-1])
    if mode == "gold":
        return (ce_gold * has_gold).sum() / paddle.clip(has_gold.sum(), min=1.0)
    has_t = has_teacher.reshape([-1]).astype(logits.dtype)
    if mode == "soft":
        t_term = soft_kl(logits, teacher_logits, temperature)
    else:
        hard = paddle.argmax(teacher_logits, axis=-1).reshape([-1, 1])
        t_term = F.cross_entropy(logits, hard, reduction="none").reshape([-1])
    w = float(gold_weight)
    w_gold = has_gold * (has_t * w + (1.0 - has_t))
    w_t = has_t * (has_gold * (1.0 - w) + (1.0 - has_gold))
    return (ce_gold * w_gold + t_term * w_t).mean()


def hidden_mse(student_h, teacher_h, mask):
    """Mean squared error over the unmasked positions (``mask`` [B, S], 1 = real token)."""
    m = mask.astype(student_h.dtype).unsqueeze(-1)
    se = ((student_h - teacher_h) ** 2 * m).sum()
    return se / paddle.clip(m.sum() * student_h.shape[-1], min=1.0)


def attention_kl(student_att, teacher_att, mask):
    """KL(teacher || student) of each query row's attention distribution over the keys,
    averaged over the unmasked query rows. Both [B, S, S] (heads already averaged)."""
    log_s = paddle.log(paddle.clip(student_att, min=1e-12))
    log_t = paddle.log(paddle.clip(teacher_att, min=1e-12))
    kl = (teacher_att * (log_t - log_s)).sum(axis=-1)  # [B, S]
    m = mask.astype(kl.dtype)
    return (kl * m).sum() / paddle.clip(m.sum(), min=1.0)
