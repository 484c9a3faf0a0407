"""Data augmentation for data distillation (the ERNIE Slim recipe).

A teacher can label any text, so the student is trained on many more sentences than the gold
set holds. Each augmented copy of a training sentence (its words from ``jieba.posseg``) is made
by three noises, each with its own probability:

* **[UNK] noise**: each word becomes ``[UNK]`` with ``p_unk`` (0.1);
* **same-POS swap**: each word becomes a random word of the same part of speech drawn from the
  data set's words (``p_pos``, 0.1); one draw per word, so a word gets at most one of the two;
* **n-sampling**: with ``p_ngram`` (0.25) the copy is cut to a random span of random length
  (at least ``ngram_min_ratio`` of the words, at least one word).

``times`` (10) copies per sentence; copies identical to the original are drawn again (a few
tries). Everything flows from one ``seed``: the same input and seed give the same output in any
process (the POS vocabulary is sorted, no hash order is involved).

Augmented text is written with its words separated by single spaces: the student reads the
words back exactly, and an ERNIE teacher's tokenizer ignores the spaces between Chinese words.

    python -m distill.augment --data_dir data/demo/sentiment --out output/distill/aug \\
        [--times 10] [--seed 1] [--unsupervise_data_dir DIR] [--p_unk 0.1 --p_pos 0.1 --p_ngram 0.25]

writes ``OUT/part.0`` (one text a line, teacher-unlabelled) and ``OUT/.pos_vocab.json`` (hidden, so
readers of the directory skip it).
"""
import argparse
import collections
import json
import logging
import os
import random
import sys

__all__ = ["UNK", "Augmenter", "pos_tag", "pos_vocab", "read_texts", "main"]

UNK = "[UNK]"
log = logging.getLogger("distill")

# tags whose words carry no content worth swapping (punctuation, unknown tokens)
_NO_SWAP_TAGS = frozenset({"x", "eng", "m", "un"})


def _jieba():
    import jieba
    import jieba.posseg
    jieba.setLogLevel(logging.WARNING)  # its dictionary-loading chatter is not ours to print
    return jieba.posseg


def pos_tag(text):
    """[(word, tag)] from jieba.posseg, whitespace dropped. A pre-segmented text (words joined
    by spaces) keeps its words: each is tagged alone when jieba would cut it differently."""
    pseg = _jieba()
    out = []
    for chunk in text.split():
        if chunk == UNK:
            out.append((UNK, "un"))
            continue
        out.extend((p.word, p.flag) for p in pseg.cut(chunk) if p.word.strip())
    return out


def pos_vocab(tagged_sentences, min_count=1):
    """{tag: sorted distinct words} over the data set (the same-POS swap draws from it)."""
    counts = collections.Counter(wt for sent in tagged_sentences for wt in sent)
    vocab = collections.defaultdict(set)
    for (w, t), c in counts.items():
        if c >= min_count and w != UNK:
            vocab[t].add(w)
    return {t: sorted(ws) for t, ws in sorted(vocab.items())}


class Augmenter:
    def __init__(self, pos_words, p_unk=0.1, p_pos=0.1, p_ngram=0.25, ngram_min_ratio=0.3, seed=1,
                 max_tries=5):
        for name, p in (("p_unk", p_unk), ("p_pos", p_pos), ("p_ngram", p_ngram)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {p}")
        if p_unk + p_pos > 1.0:
            raise ValueError(f"p_unk + p_pos must be <= 1 (one draw per word), got {p_unk + p_pos}")
        if not 0.0 < ngram_min_ratio <= 1.0:
            raise ValueError(f"ngram_min_ratio must be in (0, 1], got {ngram_min_ratio}")
        self.pos_words = pos_words
        self.p_unk, self.p_pos, self.p_ngram = p_unk, p_pos, p_ngram
        self.ngram_min_ratio, self.max_tries = ngram_min_ratio, max_tries
        self.rng = random.Random(seed)

    def noise(self, tagged):
        """The words after [UNK] noise and same-POS swaps (same length as the input)."""
        rng, out = self.rng, []
        for w, t in tagged:
            x = rng.random()
            if x < self.p_unk:
                out.append(UNK)
            elif x < self.p_unk + self.p_pos and t not in _NO_SWAP_TAGS:
                cands = self.pos_words.get(t, ())
                if len(cands) > 1:
                    r = rng.choice(cands)
                    while r == w:  # a swap to the same word is no swap
                        r = rng.choice(cands)
                    out.append(r)
                else:
                    out.append(w)
            else:
                out.append(w)
        return out

    def ngram(self, words):
        """A random contiguous span of random length (>= ngram_min_ratio of the words)."""
        n = len(words)
        lo = max(1, int(round(self.ngram_min_ratio * n)))
        k = self.rng.randint(lo, n)
        start = self.rng.randint(0, n - k)
        return words[start:start + k]

    def augment(self, tagged):
        """One augmented copy (a word list) of a tagged sentence, different from it when the
        noise allows (else the last try)."""
        orig = [w for w, _ in tagged]
        words = orig
        for _ in range(self.max_tries):
            words = self.noise(tagged)
            if words and self.rng.random() < self.p_ngram:
                words = self.ngram(words)
            if words != orig:
                break
        return words

    def augment_all(self, tagged_sentences, times=10):
        """``times`` copies of each sentence, sentence by sentence, as word lists."""
        for tagged in tagged_sentences:
            if not tagged:
                continue
            for _ in range(times):
                yield self.augment(tagged)


def read_texts(path):
    """The texts of a TSV file (its ``text_a`` column: header-named, else the last column) or of a
    plain text file (one a line)."""
    texts, col = [], None
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if i == 0 and "text_a" in [x.strip().lower() for x in fields]:
                col = [x.strip().lower() for x in fields].index("text_a")
                continue
            texts.append(fields[col] if col is not None else fields[-1])
    return texts


def _files(path):
    if os.path.isfile(path):
        return [path]
    if os.path.isdir(path):
        return [os.path.join(path, f) for f in sorted(os.listdir(path))
                if not f.startswith(".") and os.path.isfile(os.path.join(path, f))]
    raise SystemExit(f"{path}: no such file or directory")


def main(argv=None):
    from propeller.fsutil import atomic_write_text
    from propeller.log import setup_logging
    setup_logging("distill")
    ap = argparse.ArgumentParser(prog="python -m distill.augment", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data_dir", required=True, help="task data dir with train.tsv or train/ (the text to augment)")
    ap.add_argument("--out", required=True, help="output dir: part.0 (augmented text), .pos_vocab.json")
    ap.add_argument("--times", type=int, default=10, help="augmented copies per training sentence")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--p_unk", type=float, default=0.1)
    ap.add_argument("--p_pos", type=float, default=0.1)
    ap.add_argument("--p_ngram", type=float, default=0.25)
    ap.add_argument("--ngram_min_ratio", type=float, default=0.3)
    ap.add_argument("--unsupervise_data_dir", default=None,
                    help="unlabelled in-domain text (files, one text a line) added to the output as is")
    ap.add_argument("--limit", type=int, default=None, help="augment only the first N training sentences")
    args = ap.parse_args(argv)

    train = os.path.join(args.data_dir, "train")
    src = train if os.path.isdir(train) else train + ".tsv"
    texts = [t for f in _files(src) for t in read_texts(f)]
    if args.limit:
        texts = texts[:args.limit]
    log.info("POS-tagging %d training sentences (jieba.posseg)", len(texts))
    tagged = [pos_tag(t) for t in texts]
    vocab = pos_vocab(tagged)
    aug = Augmenter(vocab, args.p_unk, args.p_pos, args.p_ngram, args.ngram_min_ratio, seed=args.seed)
    lines = [" ".join(words) for words in aug.augment_all(tagged, args.times)]
    n_aug = len(lines)
    if args.unsupervise_data_dir:
        for f in _files(args.unsupervise_data_dir):
            lines.extend(" ".join(w for w, _ in pos_tag(t)) for t in read_texts(f))
    os.makedirs(args.out, exist_ok=True)
    atomic_write_text(os.path.join(args.out, "part.0"), "".join(x + "\n" for x in lines if x))
    atomic_write_text(os.path.join(args.out, ".pos_vocab.json"), json.dumps(vocab, ensure_ascii=False) + "\n")
    log.info("wrote %d augmented + %d unlabelled texts to %s/part.0", n_aug, len(lines) - n_aug, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
