"""Cheap baselines that fine-tuned ERNIE has to beat, on the fine-tuning data as it is.

    python -m ernie.finetune.baselines sentiment --data_dir DIR [--json OUT]
    python -m ernie.finetune.baselines ner --data_dir DIR [--json OUT]

``DIR`` holds ``{train,dev,test}.tsv`` (or directories of .tsv files), read by the same
reader and bad-line policy as the fine-tuning tasks (``ernie.finetune.data``).

* classification (``sentiment``, or any ``label/text_a[/text_b]`` set): the majority class of
  train, and character n-gram TF-IDF + logistic regression;
* NER: a lexicon of the train split's gold entities, tagged by greedy longest match.

Every setting is chosen on dev and then reported on test, as for the fine-tuned model, so the
comparison is fair. ``classification_baselines`` / ``ner_baselines`` return the numbers as a
dict (what ``--json`` writes).
"""
import argparse
import collections
import json
import logging
import sys
import time

import numpy as np

from ernie.finetune.classifier import LAYOUTS as CLS_LAYOUTS
from ernie.finetune.data import BadLineError, BadLines, read_tsv, split_files
from ernie.finetune.ner import LAYOUTS as NER_LAYOUTS
from ernie.finetune.ner import split_units
from propeller.log import setup_logging
from propeller.metrics import ChunkF1, _chunks

__all__ = ["classification_baselines", "ner_baselines", "read_classification", "read_ner",
           "build_lexicon", "filter_lexicon", "longest_match", "chunk_scores", "main"]

SPLITS = ("train", "dev", "test")
PAIR_SEP = " ||| "  # keeps char n-grams from spanning the end of text_a and the start of text_b
NGRAM_RANGES = ((1, 2), (1, 3))
CS = (0.25, 1.0, 4.0, 16.0)
# (min_len, min_count) of lexicon entries; one-char names and one-off entries are noisy
LEXICON_GRID = tuple((n, c) for n in (1, 2) for c in (1, 2, 3))


class DataError(ValueError):
    """Input that cannot be used at all (a missing split, a train set with one label)."""


def _files(data_dir, split):
    files = split_files(data_dir, split)
    if not files:
        raise DataError(f"{data_dir}: no {split} split ({split}.tsv or a {split}/ directory)")
    return files


# ---------------------------------------------------------------------------- classification

def read_classification(data_dir, split, bad):
    """(texts, labels) of one split; text_b, when present, is appended after PAIR_SEP."""
    texts, labels = [], []
    for path, lineno, rec in read_tsv(_files(data_dir, split), CLS_LAYOUTS, bad, required=("text_a", "label")):
        a, b, label = rec["text_a"].strip(), rec.get("text_b"), rec["label"].strip()
        # the same refusals as the fine-tuning reader (encode_text, label_id)
        if not a or (b is not None and not b.strip()) or not label:
            bad(path, lineno, "empty " + ("text_a" if not a else "label" if not label else "text_b"))
            continue
        texts.append(a if b is None else a + PAIR_SEP + b.strip())
        labels.append(label)
    return texts, np.asarray(labels, dtype=object)


def _acc(pred, gold):
    return float(np.mean(np.asarray(pred, dtype=object) == gold)) if len(gold) else 0.0


def classification_baselines(data_dir, ngram_ranges=NGRAM_RANGES, Cs=CS, on_bad_line="error"):
    """Majority class and char n-gram TF-IDF + logistic regression on one classification set.

    Returns ``{"task", "data_dir", "sizes", "bad_lines", "read_seconds", "baselines": {"majority":
    {...}, "tfidf_logreg": {...}}}``; each baseline has ``name``, ``settings``, ``dev``/``test``
    ``{"acc"}``, ``seconds``; ``tfidf_logreg`` also ``grid`` (the dev accuracy of every setting)."""
    from sklearn.feature_extraction.text import TfidfVectorizer  # imported here: the NER path needs none of it
    from sklearn.linear_model import LogisticRegression

    t0, bad = time.time(), BadLines(on_bad_line, "baselines")
    data = {s: read_classification(data_dir, s, bad) for s in SPLITS}
    bad.report()
    (x_tr, y_tr), (x_dev, y_dev), (x_te, y_te) = (data[s] for s in SPLITS)
    counts = collections.Counter(y_tr)
    if len(counts) < 2:
        raise DataError(f"{data_dir}: the train split has {len(counts)} distinct label(s); nothing to learn")
    out = dict(task="classification", data_dir=data_dir, sizes={s: len(data[s][0]) for s in SPLITS},
               bad_lines=bad.count, read_seconds=time.time() - t0, baselines={})

    t0 = time.time()
    # a tie goes to the label seen first in train, so reruns agree
    top = max(counts.values())
    majority = next(y for y in y_tr if counts[y] == top)
    out["baselines"]["majority"] = dict(
        name=f"majority class (label {majority})", settings=dict(label=majority),
        dev=dict(acc=_acc([majority] * len(y_dev), y_dev)), test=dict(acc=_acc([majority] * len(y_te), y_te)),
        seconds=time.time() - t0)

    t0, grid, best = time.time(), [], None
    for lo, hi in ngram_ranges:
        # sublinear tf: a review repeating a character ten times is not ten times as positive
        vec = TfidfVectorizer(analyzer="char", ngram_range=(lo, hi), sublinear_tf=True)
        f_tr, f_dev = vec.fit_transform(x_tr), vec.transform(x_dev)
        for C in Cs:
            t1 = time.time()
            clf = LogisticRegression(C=C, max_iter=2000).fit(f_tr, y_tr)
            dev_acc = _acc(clf.predict(f_dev), y_dev)
            grid.append(dict(ngram_range=[lo, hi], C=C, dev_acc=dev_acc, seconds=time.time() - t1))
            if best is None or dev_acc > best[0]:  # strict: on a tie the earlier, smaller setting stays
                best = (dev_acc, lo, hi, C, vec, clf)
    dev_acc, lo, hi, C, vec, clf = best
    out["baselines"]["tfidf_logreg"] = dict(
        name=f"char {lo}-{hi}gram tfidf + logreg (C={C:g})", settings=dict(ngram_range=[lo, hi], C=C),
        dev=dict(acc=dev_acc), test=dict(acc=_acc(clf.predict(vec.transform(x_te)), y_te)),
        grid=grid, seconds=time.time() - t0)
    return out


# ---------------------------------------------------------------------------- NER

def read_ner(data_dir, split, bad):
    """(sentences, tags): per sentence its units (characters) and BIO tags."""
    sents, tags = [], []
    for path, lineno, rec in read_tsv(_files(data_dir, split), NER_LAYOUTS, bad, required=("text_a", "label")):
        units, tg = split_units(rec["text_a"]), split_units(rec["label"])
        wrong = [t for t in tg if t != "O" and not (t[:2] in ("B-", "I-") and len(t) > 2)]
        why = ("empty text" if not units else
               f"{len(units)} characters but {len(tg)} tags" if len(units) != len(tg) else
               f"tag {wrong[0]!r} is not BIO (B-X, I-X or O)" if wrong else None)
        if why:
            bad(path, lineno, why)
            continue
        sents.append(units)
        tags.append(tg)
    return sents, tags


def build_lexicon(sents, tags):
    """``{surface: (type, count)}``: every gold entity string of the split, with its most frequent
    type and how often it is an entity (ties: the alphabetically first type). Chunks are cut by
    the scorer's own ``_chunks``, so the lexicon holds exactly the spans ChunkF1 counts."""
    seen = collections.Counter()
    for units, tg in zip(sents, tags):
        for typ, s, e in _chunks(tg):
            seen[("".join(units[s:e]), typ)] += 1
    by_surface = collections.defaultdict(dict)
    for (surface, typ), n in seen.items():
        by_surface[surface][typ] = n
    return {surface: (min(types, key=lambda t: (-types[t], t)), sum(types.values()))
            for surface, types in by_surface.items()}


def filter_lexicon(lexicon, min_len=1, min_count=1):
    """``{surface: type}`` of the entries at least ``min_len`` characters long and seen at least
    ``min_count`` times."""
    return {s: typ for s, (typ, n) in lexicon.items() if len(s) >= min_len and n >= min_count}


def longest_match(units, lexicon, prefixes=None):
    """BIO tags for ``units``: left to right, tag the longest lexicon entry starting here and
    continue after it (so nothing is matched inside or across an already-tagged span)."""
    if prefixes is None:
        prefixes = {s[:i] for s in lexicon for i in range(1, len(s) + 1)}
    tags, i, n = ["O"] * len(units), 0, len(units)
    while i < n:
        end, j, text = None, i, ""
        while j < n and text + units[j] in prefixes:  # grow only while some entry still fits
            text += units[j]
            j += 1
            if text in lexicon:
                end = j
        if end is None:
            i += 1
            continue
        typ = lexicon["".join(units[i:end])]
        tags[i:end] = ["B-" + typ] + ["I-" + typ] * (end - i - 1)
        i = end
    return tags


def chunk_scores(gold, pred):
    """Chunk precision/recall/F1 (``propeller.metrics.ChunkF1``, the fine-tuning metric)."""
    if not gold:
        return dict(precision=0.0, recall=0.0, f1=0.0)
    p, r, f = ChunkF1(list(gold), list(pred)).precision_recall_f1()
    return dict(precision=p, recall=r, f1=f)


def _tag_all(sents, lexicon):
    prefixes = {s[:i] for s in lexicon for i in range(1, len(s) + 1)}
    return [longest_match(u, lexicon, prefixes) for u in sents]


def ner_baselines(data_dir, grid=LEXICON_GRID, on_bad_line="error"):
    """Train-lexicon longest match, (min_len, min_count) chosen on dev F1.

    Returns ``{"task", "data_dir", "sizes", "bad_lines", "read_seconds", "baselines": {"lexicon":
    {...}}}``; the baseline has ``name``, ``settings`` (min_len, min_count, lexicon_size),
    ``dev``/``test`` ``{"precision", "recall", "f1"}``, ``seconds`` and ``grid``."""
    t0, bad = time.time(), BadLines(on_bad_line, "baselines")
    data = {s: read_ner(data_dir, s, bad) for s in SPLITS}
    bad.report()
    out = dict(task="ner", data_dir=data_dir, sizes={s: len(data[s][0]) for s in SPLITS},
               bad_lines=bad.count, read_seconds=time.time() - t0, baselines={})

    t0, results, best = time.time(), [], None
    full = build_lexicon(*data["train"])
    for min_len, min_count in grid:
        lex = filter_lexicon(full, min_len, min_count)
        dev = chunk_scores(data["dev"][1], _tag_all(data["dev"][0], lex))
        results.append(dict(min_len=min_len, min_count=min_count, lexicon_size=len(lex), dev_f1=dev["f1"]))
        if best is None or dev["f1"] > best[0]["f1"]:  # strict: on a tie the bigger lexicon stays
            best = (dev, min_len, min_count, lex)
    dev, min_len, min_count, lex = best
    out["baselines"]["lexicon"] = dict(
        name=f"train-lexicon longest match (min_len {min_len}, min_count {min_count}, {len(lex)} entries)",
        settings=dict(min_len=min_len, min_count=min_count, lexicon_size=len(lex)),
        dev=dev, test=chunk_scores(data["test"][1], _tag_all(data["test"][0], lex)),
        grid=results, seconds=time.time() - t0)
    return out


# ---------------------------------------------------------------------------- command line

def _fmt(scores):
    if "acc" in scores:
        return f"acc {scores['acc']:.4f}"
    return f"P {scores['precision']:.4f} R {scores['recall']:.4f} F1 {scores['f1']:.4f}"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m ernie.finetune.baselines", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="task", required=True)
    for name, aliases, what in (("sentiment", ["classification"], "majority class, char TF-IDF + logreg"),
                                ("ner", [], "train-lexicon longest match")):
        s = sub.add_parser(name, aliases=aliases, help=what)
        s.add_argument("--data_dir", required=True, help="holds {train,dev,test}.tsv or such directories")
        s.add_argument("--json", help="also write the numbers to this JSON file")
        s.add_argument("--on_bad_line", choices=("error", "skip"), default="error")
        if name == "sentiment":
            s.add_argument("--ngram_ranges", default=",".join(f"{a}-{b}" for a, b in NGRAM_RANGES),
                           help="char n-gram ranges to try, e.g. 1-2,1-3 (chosen on dev)")
            s.add_argument("--Cs", default=",".join(f"{c:g}" for c in CS), help="inverse regularisation strengths to try")
    args = p.parse_args(argv)
    setup_logging("ernie", level=logging.WARNING)  # skipped lines yes, header notices no
    try:
        if args.task == "ner":
            res = ner_baselines(args.data_dir, on_bad_line=args.on_bad_line)
        else:
            try:
                ranges = [tuple(int(x) for x in r.split("-")) for r in args.ngram_ranges.split(",")]
                cs = [float(c) for c in args.Cs.split(",")]
            except ValueError:
                p.error("--ngram_ranges takes lo-hi[,lo-hi...] and --Cs numbers[,...]")
            res = classification_baselines(args.data_dir, ranges, cs, on_bad_line=args.on_bad_line)
    except (BadLineError, DataError, FileNotFoundError) as e:  # bad input: the message says where
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.data_dir}: {', '.join(f'{n} {s}' for s, n in res['sizes'].items())} examples "
          f"(read in {res['read_seconds']:.1f} s)")
    for b in res["baselines"].values():
        print(f"{b['name']}: dev {_fmt(b['dev'])}, test {_fmt(b['test'])} ({b['seconds']:.1f} s)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(res, f, ensure_ascii=False, indent=1)
    return 0


if __name__ == "__main__":
    from propeller.cli import run_main  # user errors: one message, exit status 2
    sys.exit(run_main(main))
