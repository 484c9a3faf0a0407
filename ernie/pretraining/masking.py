"""Knowledge masking as ERNIE 1.0 did it, on the seg_labels of its id format.

seg_labels: 0 = first token of a unit (char, word, phrase or entity), 1 = inside a unit,
-1 = [CLS]/[SEP] (never masked).

- char mode: every token is picked with p 0.15 on its own;
- word (unit) mode: one draw at the unit start picks the whole unit with p 0.15, so a unit is
  masked whole or not at all.
Each picked token becomes [MASK] 80% of the time, a random id 10%, and stays itself 10%; it
is predicted in every case. In word mode the unit-start token reuses its picking draw for the
80/10/10 choice (as the original did), the other tokens of the unit draw afresh.
"""
import numpy as np

MASK_PROB = 0.15


def mask_example(token_ids, seg_labels, word_mode, rng, vocab_size, mask_id=3, low_id=1, mask_prob=MASK_PROB):
    """Mask one example. Returns (masked_ids, positions, labels) as int64 arrays.

    ``rng`` is a ``numpy.random.RandomState``; random replacements come from [low_id, vocab_size)."""
    ids = np.array(token_ids, dtype="int64")
    seg = np.asarray(seg_labels)
    n = len(ids)
    probs = rng.rand(n)
    replace = rng.randint(low_id, vocab_size, size=n)
    picked = np.zeros(n, dtype=bool)
    action = np.zeros(n, dtype="int8")  # 0 keep, 1 mask, 2 replace
    special = seg == -1
    if word_mode:
        starts = np.flatnonzero(seg == 0)
        # a unit runs from its start to the next start or special token
        bounds = np.flatnonzero(seg != 1)
        for s in starts:
            if probs[s] > mask_prob:
                continue
            nxt = bounds[np.searchsorted(bounds, s, side="right")] if bounds[-1] > s else n
            picked[s:nxt] = True
            # the start token: its own draw, scaled to the 0.15 band
            action[s] = 1 if probs[s] > 0.2 * mask_prob else (2 if probs[s] > 0.1 * mask_prob else 0)
            inner = probs[s + 1:nxt]
            action[s + 1:nxt] = np.where(inner > 0.2, 1, np.where(inner > 0.1, 2, 0))
    else:
        picked = (probs <= mask_prob) & ~special
        action = np.where(probs > 0.2 * mask_prob, 1, np.where(probs > 0.1 * mask_prob, 2, 0)).astype("int8")
    picked &= ~special
    positions = np.flatnonzero(picked).astype("int64")
    labels = ids[positions].copy()
    act = action[positions]
    ids[positions[act == 1]] = mask_id
    ids[positions[act == 2]] = replace[positions[act == 2]]
    return ids, positions, labels
