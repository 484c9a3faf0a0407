"""The cheap baselines (ernie/finetune/baselines.py) on tiny hand-made sets (fast)."""
import json
import os
import subprocess
import sys

import pytest
from seqeval.metrics import f1_score, precision_score, recall_score

from ernie.finetune.baselines import (build_lexicon, classification_baselines, filter_lexicon,
                                      longest_match, main, ner_baselines, read_classification, read_ner)
from ernie.finetune.data import BadLines

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return str(path)


def _sentiment(d, sizes=((60, 40), (10, 10), (3, 7))):
    """Separable reviews: praise characters for 1, complaint characters for 0, shared filler.
    (label-1, label-0) counts per split: train's majority (1) is test's minority."""
    good, poor, filler = "好棒赞爱值", "差烂坏退慢", "的了是我这个书"
    for split, (n1, n0) in zip(("train", "dev", "test"), sizes):
        rows = []
        for i in range(n1 + n0):
            label, keys = (1, good) if i < n1 else (0, poor)
            text = filler[i % 7] + keys[i % 5] + filler[(i * 3) % 7] + keys[(i * 2) % 5] + filler[(i + 2) % 7]
            rows.append(f"{label}\t{text}")
        _write(d / f"{split}.tsv", ["label\ttext_a"] + rows)
    return str(d)


# ---------------------------------------------------------------------------- classification

def test_logreg_beats_majority_class(tmp_path):
    res = classification_baselines(_sentiment(tmp_path))
    maj, lr = res["baselines"]["majority"], res["baselines"]["tfidf_logreg"]
    assert res["sizes"] == {"train": 100, "dev": 20, "test": 10}
    # the majority label comes from train (1), so on a test set that is 70% label 0 it scores 0.3
    assert maj["settings"]["label"] == "1"
    assert maj["dev"]["acc"] == pytest.approx(0.5) and maj["test"]["acc"] == pytest.approx(0.3)
    assert lr["dev"]["acc"] == 1.0 and lr["test"]["acc"] == 1.0
    assert len(lr["grid"]) == 8 and lr["seconds"] >= 0


def test_selection_is_made_on_dev(tmp_path):
    """Train: the label is carried by the trigram order of the words ("xxyx" for 0, "xyxx" for 1;
    same unigram and bigram counts) and, for 4 in 5 lines, by a marker character. Dev and test:
    the word order is flipped and the marker always right. So 1-3grams fit train best but 1-2grams
    win on dev; a choice by train score, or simply the first setting, would pick 1-3."""
    for split, n in (("train", 100), ("dev", 20), ("test", 20)):
        rows = []
        for i in range(n):
            label = i % 2
            word = ("xxyx", "xyxx")[label ^ (split != "train")]
            marker = "pn"[label ^ (split == "train" and i % 10 in (0, 1))]
            rows.append(f"{word} {word} {marker} {word}\t{label}")
        _write(tmp_path / f"{split}.tsv", rows)  # no header: text_a<TAB>label
    res = classification_baselines(str(tmp_path), ngram_ranges=((1, 3), (1, 2)), Cs=(1.0, 16.0))
    lr = res["baselines"]["tfidf_logreg"]
    by_ngram = {n: max(g["dev_acc"] for g in lr["grid"] if g["ngram_range"] == list(n)) for n in ((1, 2), (1, 3))}
    assert by_ngram[(1, 2)] > by_ngram[(1, 3)]
    assert lr["settings"]["ngram_range"] == [1, 2]
    best = max(lr["grid"], key=lambda g: g["dev_acc"])
    assert lr["dev"]["acc"] == best["dev_acc"]
    assert [lr["settings"]["C"], lr["settings"]["ngram_range"]] == [best["C"], best["ngram_range"]]
    assert lr["test"]["acc"] >= 0.9


def test_pairs_are_joined_and_headerless_layout(tmp_path):
    _write(tmp_path / "train.tsv", ["今天\t天气\t1", "x\ty\t0"])
    texts, labels = read_classification(str(tmp_path), "train", BadLines())
    # a separator, so no character n-gram glues the end of text_a to the start of text_b
    assert texts == ["今天 ||| 天气", "x ||| y"] and list(labels) == ["1", "0"]


# ---------------------------------------------------------------------------- NER

LEX = {"北京": "LOC", "北京大学": "ORG", "京大": "LOC", "学生": "PER", "大学": "ORG"}


@pytest.mark.parametrize("text, tags", [
    # the longest entry wins over the shorter one starting at the same place
    ("我在北京大学读书", "O O B-ORG I-ORG I-ORG I-ORG O O"),
    # nothing inside or across a tagged span: 京大 and 学生 stay untagged
    ("北京大学生", "B-ORG I-ORG I-ORG I-ORG O"),
    # a longer entry that starts matching but does not complete falls back to the shorter one
    ("北京大楼", "B-LOC I-LOC O O"),
    # greedy from the left: 京大 is taken, so 大学 (overlapping it) is not
    ("京大学", "B-LOC I-LOC O"),
    ("天气", "O O"),
])
def test_longest_match(text, tags):
    assert longest_match(list(text), LEX) == tags.split()


def test_lexicon_types_counts_and_filter():
    sents = [list("上海上海李"), list("上海北京"), list("上海东方东方")]
    tags = ["B-ORG I-ORG B-LOC I-LOC B-PER".split(), "B-LOC I-LOC I-LOC I-LOC".split(),
            "B-LOC I-LOC B-PER I-PER B-ORG I-ORG".split()]
    lex = build_lexicon(sents, tags)
    # 上海: LOC twice, ORG once; 上海北京 is one chunk (I- continues it); 东方: a tie, the first type
    assert lex == {"上海": ("LOC", 3), "李": ("PER", 1), "上海北京": ("LOC", 1), "东方": ("ORG", 2)}
    assert filter_lexicon(lex, min_len=2) == {"上海": "LOC", "上海北京": "LOC", "东方": "ORG"}
    assert filter_lexicon(lex, min_count=2) == {"上海": "LOC", "东方": "ORG"}


def _ner(d):
    train = [("张 三 在 北 京 大 学", "B-PER I-PER O B-ORG I-ORG I-ORG I-ORG"),
             ("李 明 去 上 海", "B-PER I-PER O B-LOC I-LOC"),
             ("老 李 在 上 海", "O B-PER O B-LOC I-LOC"),
             ("上 海 队 赢 了", "B-ORG I-ORG O O O")]
    # one-char 李 is mostly not a name here: dev must choose min_len 2
    dev = [("李 子 好 吃", "O O O O"), ("李 树 在 北 京", "O O O B-LOC I-LOC"), ("张 三 来 了", "B-PER I-PER O O")]
    test = [("张 三 在 上 海", "B-PER I-PER O B-ORG I-ORG"),        # 上海 tagged LOC: a type error
            ("王 五 去 北 京 大 学", "I-PER I-PER O B-ORG I-ORG I-ORG I-ORG"),  # gold chunk opened by I-
            ("李 明 见 张 三", "B-PER I-PER O B-PER I-PER")]
    _write(d / "train.tsv", ["text_a\tlabel"] + [f"{a}\t{b}" for a, b in train])
    _write(d / "dev.tsv", ["text_a\tlabel"] + [f"{a}\t{b}" for a, b in dev])
    # headerless, characters and tags separated by \x02 as in the original MSRA-NER files
    _write(d / "test" / "part-0", [a.replace(" ", "\x02") + "\t" + b.replace(" ", "\x02") for a, b in test])
    return str(d)


def test_ner_baseline_chooses_on_dev_and_matches_seqeval(tmp_path):
    d = _ner(tmp_path)
    res = ner_baselines(d)
    b = res["baselines"]["lexicon"]
    assert res["sizes"] == {"train": 4, "dev": 3, "test": 3}
    assert b["settings"]["min_len"] == 2 and b["settings"]["min_count"] == 1
    assert b["dev"]["f1"] == max(g["dev_f1"] for g in b["grid"]) > b["grid"][0]["dev_f1"]

    # the same predictions again, scored by seqeval
    lex = filter_lexicon(build_lexicon(*read_ner(d, "train", BadLines())), 2, 1)
    sents, gold = read_ner(d, "test", BadLines())
    pred = [longest_match(u, lex) for u in sents]
    assert pred[0] == "B-PER I-PER O B-LOC I-LOC".split()
    assert 0 < b["test"]["f1"] < 1
    assert b["test"]["f1"] == pytest.approx(f1_score(gold, pred))
    assert b["test"]["precision"] == pytest.approx(precision_score(gold, pred))
    assert b["test"]["recall"] == pytest.approx(recall_score(gold, pred))
    assert (b["test"]["precision"], b["test"]["recall"]) == (pytest.approx(4 / 5), pytest.approx(4 / 6))


# ---------------------------------------------------------------------------- command line

def test_cli_prints_and_writes_json(tmp_path, capsys):
    d, out = _sentiment(tmp_path / "s"), str(tmp_path / "r.json")
    assert main(["sentiment", "--data_dir", d, "--json", out]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("majority class (label 1): dev acc 0.5000, test acc 0.3000 (")
    assert "tfidf + logreg (C=" in lines[2] and "test acc 1.0000" in lines[2]
    with open(out, encoding="utf-8") as f:
        res = json.load(f)
    assert res["baselines"]["majority"]["test"]["acc"] == pytest.approx(0.3)

    assert main(["ner", "--data_dir", _ner(tmp_path / "n"), "--json", out]) == 0
    assert "train-lexicon longest match (min_len 2" in capsys.readouterr().out
    with open(out, encoding="utf-8") as f:
        assert json.load(f)["baselines"]["lexicon"]["settings"]["min_len"] == 2


def test_cli_bad_line_exits_2_naming_file_and_line(tmp_path):
    d = _sentiment(tmp_path)
    dev = _write(tmp_path / "dev.tsv", ["label\ttext_a", "1\t好", "0\t差\textra column", "1\t棒"])
    p = subprocess.run([sys.executable, "-m", "ernie.finetune.baselines", "sentiment", "--data_dir", d],
                       capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT))
    assert p.returncode == 2, p.stderr
    assert f"{dev}:3: expected 2 tab-separated columns" in p.stderr
    assert "Traceback" not in p.stderr and p.stdout == ""


def test_cli_bad_input_in_process(tmp_path, capsys):
    d = _ner(tmp_path / "n")
    test = _write(tmp_path / "n" / "test" / "part-0", ["张\x02三\tB-PER", "北\x02京\tB-LOC\x02I-LOC"])
    assert main(["ner", "--data_dir", d]) == 2
    assert f"{test}:1: 2 characters but 1 tags" in capsys.readouterr().err
    # the message's own advice works: the line is skipped and counted
    out = str(tmp_path / "r.json")
    assert main(["ner", "--data_dir", d, "--on_bad_line", "skip", "--json", out]) == 0
    with open(out, encoding="utf-8") as f:
        res = json.load(f)
    assert res["bad_lines"] == 1 and res["sizes"]["test"] == 1
    # a missing split is named too
    os.remove(tmp_path / "n" / "dev.tsv")
    assert main(["ner", "--data_dir", d]) == 2
    assert "no dev split" in capsys.readouterr().err
