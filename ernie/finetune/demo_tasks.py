"""Small ranking and MRC sets built from the demo corpus (``python -m ernie.data.demo``), so the
ranker and MRC examples run end to end without downloads. Weak labels, by rule:

* ranking (``ranking/{train,dev,test}.tsv``, ``qid text_a text_b label``): from the segmented
  People's Daily documents (``zh_corpus/``), the query is a sentence (spaces removed), its one
  positive candidate is the next sentence of the same document, and ``negatives`` candidates
  are sentences drawn at random from other documents. Sentences shorter than 5 characters are
  not used. Train comes from ``zh_corpus/train``; dev and test are the two halves of
  ``zh_corpus/valid`` (documents alternate).
* MRC (``mrc/{train,dev,test}.json``, SQuAD format): from ``msra_ner/{train,dev,test}.tsv``,
  ``sentences_per_context`` consecutive sentences form a context; each of them holding an
  entity gives one question: the sentence with its first entity replaced by ``＿＿``, whose
  answer is that entity at its position in the context.

    python -m ernie.finetune.demo_tasks --demo_dir data/demo [--out data/demo] [--max_queries N]
"""
import argparse
import json
import os
import random

from ernie.data.corpus import read_documents

__all__ = ["build_ranking", "build_mrc", "main"]

BLANK = "＿＿"


def _sentences(doc):
    return ["".join(s) for s in doc]


def ranking_rows(docs, rng, negatives=3, max_queries=None, prefix="q"):
    """``(qid, query, candidate, label)`` rows (see the module doc)."""
    docs = [[s for s in _sentences(d) if len(s) >= 5] for d in docs]
    pool = [(i, s) for i, d in enumerate(docs) for s in d]
    rows, n = [], 0
    for i, d in enumerate(docs):
        for a, b in zip(d, d[1:]):
            if max_queries is not None and n >= max_queries:
                return rows
            qid = f"{prefix}{n}"
            cands = [(b, 1)]
            while len(cands) < negatives + 1 and len(pool) > len(d):
                j, s = pool[rng.randrange(len(pool))]
                if j != i:
                    cands.append((s, 0))
            rng.shuffle(cands)  # the positive must not always come first
            rows.extend((qid, a, c, label) for c, label in cands)
            n += 1
    return rows


def build_ranking(demo_dir, out_dir, seed=1, negatives=3, max_queries=None):
    rng = random.Random(f"{seed}:ranking")
    train_docs = list(read_documents(os.path.join(demo_dir, "zh_corpus", "train")))
    valid_docs = list(read_documents(os.path.join(demo_dir, "zh_corpus", "valid")))
    splits = {"train": train_docs, "dev": valid_docs[0::2], "test": valid_docs[1::2]}
    os.makedirs(out_dir, exist_ok=True)
    counts = {}
    for split, docs in splits.items():
        rows = ranking_rows(docs, rng, negatives, max_queries, prefix=f"{split}-")
        with open(os.path.join(out_dir, f"{split}.tsv"), "w", encoding="utf-8") as f:
            f.write("qid\ttext_a\ttext_b\tlabel\n")
            for r in rows:
                f.write("\t".join(map(str, r)) + "\n")
        counts[split] = len(rows)
    return counts


def _ner_sentences(path):
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            parts = line.rstrip("\n").split("\t")
            if i == 0 and parts[0] == "text_a" or len(parts) != 2:
                continue
            chars, tags = parts[0].split(" "), parts[1].split(" ")
            if len(chars) == len(tags):
                yield chars, tags


def _first_entity(tags):
    for i, t in enumerate(tags):
        if t.startswith("B-"):
            j = i + 1
            while j < len(tags) and tags[j] == "I-" + t[2:]:
                j += 1
            return i, j
    return None


def mrc_paragraphs(sentences, per_context=4, max_questions=None, prefix="q"):
    """SQuAD paragraphs (see the module doc)."""
    paras, group, n = [], [], 0
    sentences = list(sentences)
    for k in range(0, len(sentences), per_context):
        group = sentences[k:k + per_context]
        context, qas, offset = "", [], 0
        for chars, tags in group:
            text = "".join(chars)
            ent = _first_entity(tags)
            if ent is not None and (max_questions is None or n < max_questions):
                a, b = ent
                answer = "".join(chars[a:b])
                question = "".join(chars[:a]) + BLANK + "".join(chars[b:])
                start = offset + len("".join(chars[:a]))
                qas.append({"id": f"{prefix}{n}", "question": question,
                            "answers": [{"text": answer, "answer_start": start}]})
                n += 1
            context += text
            offset += len(text)
        if qas:
            paras.append({"context": context, "qas": qas})
    return paras


def build_mrc(demo_dir, out_dir, per_context=4, max_questions=None):
    os.makedirs(out_dir, exist_ok=True)
    counts = {}
    for split in ("train", "dev", "test"):
        paras = mrc_paragraphs(_ner_sentences(os.path.join(demo_dir, "msra_ner", f"{split}.tsv")), per_context,
                               max_questions, prefix=f"{split}-")
        with open(os.path.join(out_dir, f"{split}.json"), "w", encoding="utf-8") as f:
            json.dump({"version": "demo", "data": [{"title": f"demo {split}", "paragraphs": paras}]}, f,
                      ensure_ascii=False, indent=0)
        counts[split] = sum(len(p["qas"]) for p in paras)
    return counts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--demo_dir", default=os.path.join("data", "demo"), help="output of python -m ernie.data.demo")
    ap.add_argument("--out", default=None, help="write ranking/ and mrc/ here (default: --demo_dir)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--negatives", type=int, default=3, help="random candidates per ranking query")
    ap.add_argument("--max_queries", type=int, default=None, help="ranking queries per split at most")
    ap.add_argument("--max_questions", type=int, default=None, help="MRC questions per split at most")
    ap.add_argument("--sentences_per_context", type=int, default=4)
    args = ap.parse_args(argv)
    out = args.out or args.demo_dir
    r = build_ranking(args.demo_dir, os.path.join(out, "ranking"), args.seed, args.negatives, args.max_queries)
    m = build_mrc(args.demo_dir, os.path.join(out, "mrc"), args.sentences_per_context, args.max_questions)
    print("ranking rows:", r)
    print("mrc questions:", m)


if __name__ == "__main__":
    import sys

    from propeller.cli import run_main  # user errors: one message, exit status 2
    sys.exit(run_main(main))
