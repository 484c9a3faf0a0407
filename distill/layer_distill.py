"""ERNIE-tiny / TinyBERT-style layer distillation helpers.

* ``attention_probs``: a layer's attention distributions, recomputed from its input hidden
  state with its own query/key projections (the encoder does not return them; recomputing
  costs two small matmuls and leaves ernie.modeling untouched). Heads are averaged, so a
  student may have another head count than its teacher.
* ``align``: which teacher tokens each student token covers, as an overlap matrix ``O``
  [S_student, S_teacher]. With the teacher's own tokenizer it is the identity; a subword
  student covers several teacher characters per token. Token spans are measured in
  characters (``##`` / ``▁`` markers dropped, specials one character) and the student's are
  scaled to the teacher's total, so truncation or unknown characters cannot leave a token
  unmatched. [CLS] and the final [SEP] always match each other.
* ``layer_map``: student layer -> teacher layer (0 = embeddings), "0:0,1:2,2:4" or uniform.
"""
import numpy as np
import paddle
import paddle.nn.functional as F

__all__ = ["attention_probs", "token_lengths", "align", "parse_layer_map", "student_targets"]


def attention_probs(layer, x, bias):
    """Head-averaged attention distributions [B, S, S] of ``layer`` (an ErnieEncoderLayer) on its input ``x``."""
    att = layer.self_attn
    b, s = x.shape[0], x.shape[1]
    q = att.q_proj(x).reshape([b, s, att.num_heads, att.head_dim]).transpose([0, 2, 1, 3])
    k = att.k_proj(x).reshape([b, s, att.num_heads, att.head_dim]).transpose([0, 2, 1, 3])
    scores = paddle.matmul(q * (att.head_dim ** -0.5), k, transpose_y=True) + bias
    return F.softmax(scores, axis=-1).mean(axis=1)


_SPECIAL = ("[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]")


def token_lengths(tokens):
    """Characters each token stands for (at least 1)."""
    out = []
    for t in tokens:
        if t in _SPECIAL:
            out.append(1)
            continue
        t = t[2:] if t.startswith("##") else t
        out.append(max(1, len(t.replace("\u2581", ""))))
    return out


def align(student_tokens, teacher_tokens):
    """Overlap matrix [len(student), len(teacher)] (float32) of two tokenizations of one text,
    both ``[CLS] ... [SEP]``."""
    ns, nt = len(student_tokens), len(teacher_tokens)
    o = np.zeros((ns, nt), np.float32)
    o[0, 0] = 1.0
    o[ns - 1, nt - 1] = 1.0
    ls, lt = token_lengths(student_tokens[1:-1]), token_lengths(teacher_tokens[1:-1])
    if not ls or not lt:
        return o
    es, et = np.cumsum(ls, dtype=np.float64), np.cumsum(lt, dtype=np.float64)
    es *= et[-1] / es[-1]
    ss, st = np.concatenate([[0.0], es[:-1]]), np.concatenate([[0.0], et[:-1]])
    ov = np.minimum(es[:, None], et[None, :]) - np.maximum(ss[:, None], st[None, :])
    o[1:-1, 1:-1] = np.clip(ov, 0.0, None)
    return o


def parse_layer_map(spec, n_student, n_teacher):
    """[(student layer, teacher layer)]; default: 0->0 and student layer i -> round(i*Lt/Ls)."""
    if spec in (None, "", "uniform"):
        return [(i, int(round(i * n_teacher / n_student))) for i in range(n_student + 1)]
    pairs = spec.items() if isinstance(spec, dict) else (p.split(":") for p in str(spec).split(","))
    out = []
    for s, t in pairs:
        s, t = int(s), int(t)
        if not (0 <= s <= n_student and 0 <= t <= n_teacher):
            raise ValueError(f"layer_map {s}:{t} is out of range (student layers 0..{n_student}, "
                             f"teacher layers 0..{n_teacher}; 0 = embeddings)")
        out.append((s, t))
    return out


def student_targets(overlap):
    """From overlap [B, S, T]: ``rows`` [B, S, T] averaging teacher tokens into each student token
    (for hidden states and attention queries) and ``cols`` [B, T, S] sending each teacher token's
    attention mass to the student tokens that cover it (for attention keys)."""
    rows = overlap / paddle.clip(overlap.sum(axis=-1, keepdim=True), min=1e-6)
    cols = overlap / paddle.clip(overlap.sum(axis=1, keepdim=True), min=1e-6)
    return rows, cols.transpose([0, 2, 1])
