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


def mask_units(token_ids, unit_starts, maskable, rng, vocab_size, mask_id=3, low_id=1, budget=MASK_PROB):
    """Knowledge masking with a token budget (ERNIE 2.0): whole units until ``budget`` of the
    maskable tokens are picked. Returns (masked_ids, positions, labels) as int64 arrays.

    ``unit_starts`` marks the first token of each unit (a char, word, phrase or entity); a unit
    runs to the next start or non-maskable token. Units are visited in a random order; one
    that fits in what is left of the budget is taken whole; the first one larger than what is
    left is taken with probability left/size, and picking ends there. So a unit is never
    split, the expected number of masked tokens is the budget, and a long entity in a short
    text still gets masked now and then (a strict "never exceed" rule would never pick it). Each picked
    token then becomes [MASK] 80%, a random id in [low_id, vocab_size) 10%, itself 10%.
    """
    ids = np.array(token_ids, dtype="int64")
    n = len(ids)
    maskable = np.asarray(maskable, dtype=bool)
    starts = np.flatnonzero(np.asarray(unit_starts, dtype=bool) & maskable)
    if not len(starts):
        return ids, np.zeros(0, "int64"), np.zeros(0, "int64")
    bounds = np.flatnonzero(np.asarray(unit_starts, dtype=bool) | ~maskable)
    ends = np.append(bounds, n)[np.searchsorted(bounds, starts, side="right")]
    target = max(1, int(round(budget * int(maskable.sum()))))
    picked = np.zeros(n, dtype=bool)
    left = target
    order = rng.permutation(len(starts))
    draws = rng.rand(len(order))
    for u, d in zip(order, draws):
        size = ends[u] - starts[u]
        if size <= left:
            picked[starts[u]:ends[u]] = True
            left -= size
        else:
            if d < left / size:
                picked[starts[u]:ends[u]] = True
            left = 0
        if not left:
            break
    positions = np.flatnonzero(picked).astype("int64")
    labels = ids[positions].copy()
    draw = rng.rand(len(positions))
    replace = rng.randint(low_id, vocab_size, size=len(positions))
    ids[positions[draw < 0.8]] = mask_id
    rnd = (draw >= 0.8) & (draw < 0.9)
    ids[positions[rnd]] = replace[rnd]
    return ids, positions, labels
