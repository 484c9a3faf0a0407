"""The ERNIE-tiny student's input: a SentencePiece vocabulary trained on the task's corpus, cut
at word boundaries from a word dict (frequent jieba words of the same corpus), through
``ernie.tokenizing``'s SentencePiece + word-dict tokenizer. Subwords make the sequence shorter
than ERNIE's characters (the ERNIE-tiny claim: ~40%), which is where much of its speed comes from.

    python -m distill.subword --data_dir data/demo/sentiment --out output/distill/subword \\
        [--vocab_size 8000] [--model_type bpe] [--unsupervise_data_dir DIR]

writes ``OUT/spm.model``, ``OUT/vocab.txt`` (ERNIE format, [PAD] [CLS] [SEP] [MASK] [UNK] first)
and ``OUT/word_dict.txt``.
"""
import argparse
import collections
import logging
import os
import sys

__all__ = ["build_word_dict", "main"]


def build_word_dict(texts, min_count=3, max_words=30000):
    """Multi-character jieba words seen at least ``min_count`` times (the cut points the
    SentencePiece pieces must respect)."""
    import jieba
    jieba.setLogLevel(logging.WARNING)
    counts = collections.Counter(w for t in texts for w in jieba.lcut(t) if len(w.strip()) > 1)
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return words[:max_words]


def main(argv=None):
    from distill.data import read_gold, read_unsup
    from ernie.tokenizing import train_sentencepiece
    from propeller.fsutil import atomic_write_text
    ap = argparse.ArgumentParser(prog="python -m distill.subword", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data_dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab_size", type=int, default=8000, help="upper bound of SentencePiece pieces")
    ap.add_argument("--unsupervise_data_dir", default=None, help="more in-domain text to train on")
    # BPE, not SentencePiece's default unigram: on demo sentiment's 13.9k training reviews (word
    # dict as below) unigram stopped at 7,443 of 12,000 pieces and split frequent dict words
    # (好像 -> 好 + 像): dev reviews 16.7% shorter than characters; BPE 31.1% at 12,000 pieces,
    # 32.7% at 20,000 (bench/RESULTS.md, issue 11, seventh session).
    ap.add_argument("--model_type", default="bpe", choices=["bpe", "unigram"],
                    help="SentencePiece model type (bpe: shorter sequences on a small corpus)")
    ap.add_argument("--min_word_count", type=int, default=3)
    ap.add_argument("--character_coverage", type=float, default=0.995,
                    help="rarer characters become [UNK] (Chinese has more characters than a small vocab holds)")
    args = ap.parse_args(argv)
    texts = [t for t, _ in read_gold(args.data_dir, "train", num_labels=1 << 30)]
    if args.unsupervise_data_dir:
        texts += [r.text.replace(" ", "") for r in read_unsup(args.unsupervise_data_dir) if "[UNK]" not in r.text]
    os.makedirs(args.out, exist_ok=True)
    words = build_word_dict(texts, args.min_word_count)
    wd = os.path.join(args.out, "word_dict.txt")
    atomic_write_text(wd, "".join(w + "\n" for w in words))
    corpus = os.path.join(args.out, "corpus.txt")
    atomic_write_text(corpus, "".join(t.replace("\n", " ") + "\n" for t in texts))
    model, vocab = train_sentencepiece([corpus], os.path.join(args.out, "spm"), args.vocab_size, word_dict=wd,
                                       model_type=args.model_type, character_coverage=args.character_coverage,
                                       vocab_out=os.path.join(args.out, "vocab.txt"), num_threads=1)
    os.remove(corpus)
    print(f"{model}, {vocab}, {wd} ({len(words)} words)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
