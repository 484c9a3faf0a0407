#!/usr/bin/env python
"""Convert the GLUE data (as the GLUE download script lays it out) to the classifier's TSV.

    python script/en_glue/preprocess/glue_to_tsv.py GLUE_DIR OUT_DIR [--tasks CoLA SST-2 ...]

For each task writes ``OUT_DIR/<TASK>/{train,dev,test}.tsv``: a header ``text_a[<TAB>text_b]
<TAB>label`` and one example a line, labels as class ids (``--label_map``-free: the ids below)
or the STS-B score. Test sets have no labels (header without ``label``): the classifier writes
predictions for them instead of scores. MNLI: ``dev``/``test`` are the matched sets, the
mismatched ones go to ``MNLI/mismatched/{dev,test}.tsv``. Lines with the wrong number of
columns (QQP has a few) are skipped and counted.
"""
import argparse
import csv
import os
import sys

NLI3 = {"contradiction": 0, "entailment": 1, "neutral": 2}
ENTAIL2 = {"entailment": 0, "not_entailment": 1}

# task -> text_a column, text_b column (or None), label column, label map (None: keep the value),
#         {split: source file}; columns are header names, or indices for header-less files
TASKS = {
    "CoLA": (3, None, 1, None, {"train": "train.tsv", "dev": "dev.tsv"}, {"test": ("test.tsv", "sentence")}),
    "SST-2": ("sentence", None, "label", None, {"train": "train.tsv", "dev": "dev.tsv"}, {"test": ("test.tsv", "sentence")}),
    "MRPC": ("#1 String", "#2 String", "Quality", None, {"train": "train.tsv", "dev": "dev.tsv"},
             {"test": ("test.tsv", "#1 String", "#2 String")}),
    "STS-B": ("sentence1", "sentence2", "score", None, {"train": "train.tsv", "dev": "dev.tsv"},
              {"test": ("test.tsv", "sentence1", "sentence2")}),
    "QQP": ("question1", "question2", "is_duplicate", None, {"train": "train.tsv", "dev": "dev.tsv"},
            {"test": ("test.tsv", "question1", "question2")}),
    "MNLI": ("sentence1", "sentence2", "gold_label", NLI3,
             {"train": "train.tsv", "dev": "dev_matched.tsv", "mismatched/dev": "dev_mismatched.tsv"},
             {"test": ("test_matched.tsv", "sentence1", "sentence2"),
              "mismatched/test": ("test_mismatched.tsv", "sentence1", "sentence2")}),
    "QNLI": ("question", "sentence", "label", ENTAIL2, {"train": "train.tsv", "dev": "dev.tsv"},
             {"test": ("test.tsv", "question", "sentence")}),
    "RTE": ("sentence1", "sentence2", "label", ENTAIL2, {"train": "train.tsv", "dev": "dev.tsv"},
            {"test": ("test.tsv", "sentence1", "sentence2")}),
    "WNLI": ("sentence1", "sentence2", "label", None, {"train": "train.tsv", "dev": "dev.tsv"},
             {"test": ("test.tsv", "sentence1", "sentence2")}),
}


def _rows(path):
    with open(path, encoding="utf-8", newline="") as f:
        # GLUE quotes nothing; csv's quoting would swallow lines with a stray '"'
        yield from csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)


def _clean(s):
    return " ".join(s.split())  # no tabs or newlines may reach our TSV


def convert(src, dst, cols, label_map=None):
    """Rows of ``src`` -> ``dst``; cols = (text_a, text_b or None[, label]) as names or indices.
    Returns (written, skipped)."""
    rows = _rows(src)
    named = any(isinstance(c, str) for c in cols if c is not None)
    header = [h.lstrip("\ufeff") for h in next(rows)] if named else None  # MRPC starts with a BOM
    idx = [header.index(c) if named else c for c in cols if c is not None]
    has_b, has_label = cols[1] is not None, len(cols) > 2
    out_header = ["text_a"] + (["text_b"] if has_b else []) + (["label"] if has_label else [])
    n = bad = 0
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with open(dst, "w", encoding="utf-8") as out:
        out.write("\t".join(out_header) + "\n")
        width = len(header) if header else None
        for row in rows:
            if (width and len(row) != width) or max(idx) >= len(row):
                bad += 1
                continue
            vals = [_clean(row[i]) for i in idx]
            if has_label:
                lab = vals[-1]
                if label_map is not None:
                    if lab not in label_map:
                        bad += 1
                        continue
                    vals[-1] = str(label_map[lab])
            if not all(vals):
                bad += 1
                continue
            out.write("\t".join(vals) + "\n")
            n += 1
    return n, bad


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("glue_dir", help="GLUE data root holding CoLA/, SST-2/, ...")
    ap.add_argument("out_dir")
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    args = ap.parse_args(argv)
    for task in args.tasks:
        a, b, lab, label_map, labelled, unlabelled = TASKS[task]
        src_dir = os.path.join(args.glue_dir, task)
        if not os.path.isdir(src_dir):
            print(f"[{task}] {src_dir} missing, skipped", file=sys.stderr)
            continue
        jobs = [(split, fname, (a, b, lab)) for split, fname in labelled.items()]
        jobs += [(split, spec[0], (spec[1], spec[2] if len(spec) > 2 else None)) for split, spec in unlabelled.items()]
        for split, fname, cols in jobs:
            src = os.path.join(src_dir, fname)
            if not os.path.isfile(src):
                print(f"[{task}] {src} missing, skipped", file=sys.stderr)
                continue
            dst = os.path.join(args.out_dir, task, split + ".tsv")
            n, bad = convert(src, dst, cols, label_map)
            print(f"[{task}] {dst}: {n} examples" + (f", {bad} malformed lines skipped" if bad else ""))


if __name__ == "__main__":
    main()
