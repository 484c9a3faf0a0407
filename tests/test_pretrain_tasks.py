"""ERNIE 2.0 pre-training tasks on hand-made documents whose answers are known."""
import itertools

import numpy as np
import pytest

from ernie.pretraining.encode import Lexicon, SentenceEncoder
from ernie.pretraining.masking import mask_units
from ernie.pretraining.shards import CAPITALIZED, KNOWLEDGE, UNIT_START, WORD_START, Document, MemoryCorpus
from ernie.pretraining.tasks import (TASKS, Example, KnowledgeMasking, PretrainTask, TaskContext, build_task,
                                     register_task, sr_class, sr_num_classes)
from ernie.tokenizing import FullTokenizer, build_vocab, save_vocab

ZH_DOCS = [
    ["张三 在 北京大学 读书 。", "今天 天气 很 好 。", "但是 ， 明天 会 下雨 。", "我们 去 北京 看 长城 。"],
    ["新华社 北京 电 。", "中国 人民 银行 发布 报告 。", "报告 指出 经济 增长 。"],
    ["甲 乙 丙 。", "丙 丁 。"],
]
EN_DOCS = [
    ["The cat met Alice in Paris .", "It rained all day .", "However , we went out .", "Then Bob came home ."],
    ["Python is a language .", "It is easy to read ."],
]
LEXICON = ["北京大学", "张三", "中国人民银行", "北京"]


def make_tokenizer(tmp_path, docs=ZH_DOCS + EN_DOCS, extra=()):
    text = tmp_path / "vocab_corpus.txt"
    body = "\n".join(" ".join(d) for d in docs) + "\n" + "\n".join(extra) + "\n"
    text.write_text(body * 2, encoding="utf-8")  # twice: build_vocab keeps whole words seen 2+ times
    path = tmp_path / "vocab.txt"
    save_vocab(build_vocab([str(text)]), str(path))
    return FullTokenizer(str(path))


def encode_docs(tok, docs, lexicon=LEXICON, segmentation="auto"):
    enc = SentenceEncoder(tok, Lexicon(lexicon), segmentation)
    return MemoryCorpus([Document(enc.encode_document(d)) for d in docs])


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("vocab"), extra=["我 在 北京大学 读书"])


@pytest.fixture(scope="module")
def zh(tok):
    return encode_docs(tok, ZH_DOCS)


@pytest.fixture(scope="module")
def en(tok):
    return encode_docs(tok, EN_DOCS)


def ctx_for(tok, corpus, max_seqlen=64):
    return TaskContext(len(tok.vocab), max_seqlen, cls_id=tok.cls_id, sep_id=tok.sep_id, mask_id=tok.mask_id,
                       pad_id=tok.pad_id, corpus=corpus, tokenizer=tok)


def text(tok, ids):
    return "".join(tok.convert_ids_to_tokens([int(i) for i in ids]))


def segments(tok, ex):
    """The token-id segments of an example between [CLS]/[SEP]."""
    ids = list(ex.token_ids)
    assert ids[0] == tok.cls_id and ids[-1] == tok.sep_id
    out, cur = [], []
    for t in ids[1:]:
        if t == tok.sep_id:
            out.append(tuple(cur))
            cur = []
        else:
            cur.append(int(t))
    return out


# ----------------------------------------------------------------------------- encoding

def test_encoder_marks_units_entities_and_capitals(tok):
    enc = SentenceEncoder(tok, Lexicon(LEXICON))
    s = enc.encode("张三 在 北京大学 读书 。")  # gold words; 张三 and 北京大学 are lexicon units
    assert text(tok, s.ids) == "张三在北京大学读书。"
    assert list((s.marks & WORD_START) > 0) == [1, 0, 1, 1, 0, 0, 0, 1, 0, 1]
    assert list((s.marks & UNIT_START) > 0) == [1, 0, 1, 1, 0, 0, 0, 1, 0, 1]
    assert list((s.marks & KNOWLEDGE) > 0) == [1, 1, 0, 1, 1, 1, 1, 0, 0, 0]
    # a multi-word entity in gold segmentation is one unit: 北京 大学 -> 北京大学
    s2 = enc.encode("在 北京 大学 读书")
    assert list((s2.marks & UNIT_START) > 0) == [1, 1, 0, 0, 0, 1, 0]
    assert list((s2.marks & WORD_START) > 0) == [1, 1, 0, 1, 0, 1, 0]
    e = enc.encode("The cat met Alice , (see Paris)")
    words = [w for w, m in zip(tok.convert_ids_to_tokens([int(i) for i in e.ids]), e.marks) if m & WORD_START]
    caps = [bool(m & CAPITALIZED) for m in e.marks if m & WORD_START]
    assert words[:4] == ["the", "cat", "met", "alice"]
    assert caps == [True, False, False, True, False, False, False, True, False]


def test_jieba_keeps_lexicon_entity_whole(tok):
    enc = SentenceEncoder(tok, Lexicon(["北京大学"]))
    words, spans = enc.words("我在北京大学读书")  # no spaces: jieba, lexicon entities cut out first
    assert "北京大学" in words
    i = words.index("北京大学")
    assert (i, i + 1) in spans
    s = enc.encode("我在北京大学读书")
    k = np.flatnonzero(s.marks & KNOWLEDGE)
    assert text(tok, s.ids[k]) == "北京大学" and s.marks[k[0]] & UNIT_START and not (s.marks[k[1:]] & UNIT_START).any()


# ----------------------------------------------------------------------------- registry

def test_registry_aliases_and_user_task(zh, tok):
    assert TASKS["km"] is TASKS["knowledge_masking"]
    for short in ("km", "cp", "tdr", "sr", "sd", "dr", "ir", "nsp"):
        assert short in TASKS

    @register_task("test_first_token_parity")
    class FirstTokenParity(PretrainTask):  # a user's task: no library file edited
        level = "sentence"
        num_classes = 2
        default_task_id = 11

        def build(self, doc, rng, ctx):
            ids = np.asarray(doc[0].ids, "int64")
            return Example(self.name, np.concatenate([[ctx.cls_id], ids, [ctx.sep_id]]), np.zeros(len(ids) + 2, "int64"),
                           np.zeros(0, "int64"), np.array([int(ids[0]) % 2]))

    t = build_task("test_first_token_parity")
    ex = t.build(zh[0], np.random.RandomState(0), ctx_for(tok, zh))
    assert ex.task == "test_first_token_parity" and ex.labels[0] == int(zh[0][0].ids[0]) % 2 and t.task_id == 11
    with pytest.raises(ValueError, match="already registered"):
        register_task("km")(type("Other", (PretrainTask,), {}))
    with pytest.raises(KeyError, match="unknown pre-training task"):
        build_task("no_such_task")


# ----------------------------------------------------------------------------- knowledge masking

def test_mask_units_budget_never_splits_units():
    rng = np.random.RandomState(0)
    n = 40
    starts = np.zeros(n, bool)
    starts[::4] = True                      # ten units of four tokens
    maskable = np.ones(n, bool)
    maskable[[0, -1]] = False               # [CLS] / [SEP]
    starts[0] = False
    starts[1] = True
    counts = []
    for _ in range(300):
        ids, pos, lab = mask_units(np.arange(100, 100 + n), starts, maskable, rng, 200, mask_id=3)
        counts.append(len(pos))
        assert len(pos) <= round(0.15 * maskable.sum()) + 3  # at most one unit past the budget
        picked = np.zeros(n, bool)
        picked[pos] = True
        bounds = list(np.flatnonzero(starts)) + [n - 1]
        for a, b in zip(bounds[:-1], bounds[1:]):  # each unit all or nothing
            assert picked[a:b].all() or not picked[a:b].any()
        assert not picked[[0, -1]].any()
        assert list(lab) == list(100 + pos)
    assert abs(np.mean(counts) - 0.15 * maskable.sum()) < 0.5  # the budget, on average


def test_mask_units_80_10_10():
    rng = np.random.RandomState(1)
    n, kinds = 400, np.zeros(3)
    for _ in range(100):
        ids, pos, lab = mask_units(np.full(n, 7), np.ones(n, bool), np.ones(n, bool), rng, 1000, mask_id=3)
        assert len(pos) == 60  # 15% of 400, chars never overshoot
        kinds += [(ids[pos] == 3).sum(), ((ids[pos] != 3) & (ids[pos] != 7)).sum(), (ids[pos] == 7).sum()]
    frac = kinds / kinds.sum()
    assert abs(frac[0] - 0.8) < 0.02 and abs(frac[1] - 0.1) < 0.02 and abs(frac[2] - 0.1) < 0.02


def test_km_lexicon_entity_masked_whole_or_not_at_all(tok, zh):
    km = build_task("km", levels={"unit": 1.0})
    ctx = ctx_for(tok, zh)
    doc = Document([zh[0][0]], 0)  # 张三 在 北京大学 读书 。
    ent = [i + 1 for i in range(len(doc[0].ids)) if doc[0].marks[i] & KNOWLEDGE and
           text(tok, doc[0].ids[i:i + 1]) in "北京大学"]
    assert len(ent) == 4
    whole = 0
    for seed in range(200):
        ex = km.build(doc, np.random.RandomState(seed), ctx)
        if ex is None:  # the budget (2 of 10 tokens) closed on a unit it did not take
            continue
        hit = set(ex.positions) & set(ent)
        assert not hit or hit == set(ent), f"entity split at seed {seed}: {sorted(hit)}"
        whole += bool(hit)
        original = np.concatenate([[tok.cls_id], doc[0].ids, [tok.sep_id]])
        assert list(ex.labels) == list(original[ex.positions])
    assert whole > 10  # and it is masked now and then


def test_km_ernie1_modes_reuse_masking(tok, zh):
    ctx = ctx_for(tok, zh)
    word = build_task("km", levels={"ernie1_word": 1.0})
    doc = Document([zh[1][1]], 1)  # 中国 人民 银行 发布 报告 。: words of 2 chars
    starts = np.flatnonzero(np.concatenate([[0], doc[0].marks & WORD_START, [0]]))
    for seed in range(100):
        ex = word.build(doc, np.random.RandomState(seed), ctx)
        if ex is None:
            continue
        picked = set(int(p) for p in ex.positions)
        for a, b in zip(starts, list(starts[1:]) + [len(doc[0].ids) + 1]):
            assert picked >= set(range(a, b)) or not picked & set(range(a, b))


# ----------------------------------------------------------------------------- capitalization

def test_capitalization_labels_words_before_lowercasing(tok, en):
    cp = build_task("cp")
    ctx = ctx_for(tok, en, max_seqlen=9)  # room for one sentence only
    ex = cp.build(Document([en[0][0]], 0), np.random.RandomState(0), ctx)
    # The cat met Alice in Paris .
    assert text(tok, ex.token_ids[ex.positions]) == "thecatmetaliceinparis."
    assert list(ex.labels) == [1, 0, 0, 1, 0, 1, 0]
    assert cp.level == "token" and cp.num_classes == 2


# ----------------------------------------------------------------------------- token-document relation

def test_token_document_relation_known_answer(tok, zh):
    tdr = build_task("tdr")
    doc = zh[2]  # 甲 乙 丙 。 | 丙 丁 。
    seen = set()
    for seed in range(20):
        ex = tdr.build(doc, np.random.RandomState(seed), ctx_for(tok, zh))
        seg = text(tok, ex.token_ids[ex.positions])
        seen.add(seg)
        expect = {"甲乙丙。": [0, 0, 1, 1], "丙丁。": [1, 0, 1]}[seg]
        assert list(ex.labels) == expect
    assert seen == {"甲乙丙。", "丙丁。"}
    assert tdr.build(Document([doc[0]], 5), np.random.RandomState(0), ctx_for(tok, zh)) is None  # one segment only


# ----------------------------------------------------------------------------- sentence reordering

def test_sr_class_known_values():
    assert sr_num_classes(3) == 9 and sr_num_classes(4) == 33
    assert sr_class([0]) == 0
    assert sr_class([0, 1]) == 1 and sr_class([1, 0]) == 2
    assert [sr_class(p) for p in ([0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0])] == list(range(3, 9))
    assert sorted(sr_class(p) for n in (1, 2, 3, 4) for p in itertools.permutations(range(n))) == list(range(33))


def test_sentence_reordering_shuffle_maps_to_class(tok, zh):
    sr = build_task("sr", max_segments=3)
    ctx = ctx_for(tok, zh, max_seqlen=128)
    doc = Document(zh[0].sentences[:3], 0)
    sents = [tuple(int(x) for x in s.ids) for s in doc]
    ex = sr.shuffled([s.ids for s in doc], [2, 0, 1], ctx)
    assert ex.labels[0] == 7 and segments(tok, ex) == [sents[2], sents[0], sents[1]]
    spans = {sum(sents[k:], ()) for k in range(3)}  # what a paragraph starting at sentence k holds
    classes = set()
    for seed in range(300):
        ex = sr.build(doc, np.random.RandomState(seed), ctx)
        segs = segments(tok, ex)
        # undo the shuffle: the order of the shown segments that rebuilds the paragraph
        fits = [p for p in itertools.permutations(range(len(segs)))
                if sum((segs[p.index(k)] for k in range(len(segs))), ()) in spans]
        assert fits, f"seed {seed}: the segments do not rebuild the paragraph"
        assert int(ex.labels[0]) in {sr_class(p) for p in fits}
        classes.add(int(ex.labels[0]))
    assert classes == set(range(9))


# ----------------------------------------------------------------------------- sentence distance

def test_sentence_distance_labels_match_positions(tok, zh):
    sd = build_task("sd")
    ctx = ctx_for(tok, zh, max_seqlen=128)
    doc = zh[0]
    sents = [tuple(int(x) for x in s.ids) for s in doc]
    others = {tuple(int(x) for x in s.ids) for d in (zh[1], zh[2]) for s in d}
    labels = set()
    for seed in range(100):
        ex = sd.build(doc, np.random.RandomState(seed), ctx)
        if ex is None:
            continue
        a, b = segments(tok, ex)
        i = sents.index(a)
        label = int(ex.labels[0])
        labels.add(label)
        if label == 0:
            assert sents.index(b) == i + 1
        elif label == 1:
            assert abs(sents.index(b) - i) >= 2
        else:
            assert b in others and b not in sents
    assert labels == {0, 1, 2}


# ----------------------------------------------------------------------------- discourse relation

def test_discourse_relation_marker_class_and_removal(tok, zh, en, tmp_path):
    dr = build_task("dr", lang="zh")
    ctx = ctx_for(tok, zh, max_seqlen=128)
    ex = dr.build(zh[0], np.random.RandomState(0), ctx)  # 今天 天气 很 好 。 | 但是 ， 明天 会 下雨 。
    a, b = segments(tok, ex)
    assert text(tok, a) == "今天天气很好。" and text(tok, b) == "明天会下雨。"
    assert dr.classes[int(ex.labels[0])] == "contrast"
    assert dr.build(zh[1], np.random.RandomState(0), ctx) is None  # no marker in that document
    enc = SentenceEncoder(tok)
    # 但是非 is one word: the marker 但是 does not end at a word boundary there
    no = Document(enc.encode_document(["今天 好 。", "但是非 常 好 。"]), 0)
    assert dr.build(no, np.random.RandomState(0), ctx) is None

    dr_en = build_task("dr", lang="en")
    ex = dr_en.build(en[0], np.random.RandomState(0), ctx_for(tok, en, 128))
    # "However , we went out ." and "Then Bob came home ." both begin with markers
    a, b = segments(tok, ex)
    assert (text(tok, a), text(tok, b), dr_en.classes[int(ex.labels[0])]) in {
        ("itrainedallday.", "wewentout.", "contrast"), ("however,wewentout.", "bobcamehome.", "temporal")}

    pairs = tmp_path / "dr.tsv"
    pairs.write_text("text_a\ttext_b\tlabel\n今天 好\t明天 好\tresult\n甲\t乙\t0\n", encoding="utf-8")
    file_task = build_task("dr", lang="zh", pair_files=[str(pairs)])
    exs = [file_task.row_example(r, np.random.RandomState(0), ctx) for r in file_task.file_rows(ctx)]
    got = sorted((text(tok, segments(tok, e)[0]), int(e.labels[0])) for e in exs)
    assert got == [("今天好", dr.classes.index("result")), ("甲", 0)]


# ----------------------------------------------------------------------------- IR relevance

def test_ir_relevance_weak_pairs_rule(tok, zh):
    ir = build_task("ir")
    ctx = ctx_for(tok, zh, max_seqlen=128)
    doc = zh[0]
    sents = [tuple(int(x) for x in s.ids) for s in doc]
    other_titles = {tuple(int(x) for x in d[0].ids) for d in (zh[1], zh[2])}
    seen = set()
    for seed in range(60):
        ex = ir.build(doc, np.random.RandomState(seed), ctx)
        q, title = segments(tok, ex)
        label = int(ex.labels[0])
        seen.add(label)
        if label == 0:
            assert title == sents[0]
        elif label == 1:
            assert title in sents[1:]
        else:
            assert title in other_titles
    assert seen == {0, 1, 2}
    # the query of a sentence holding lexicon entities is those entities
    assert text(tok, ir.query(doc[3])) == "北京"
    assert text(tok, ir.query(doc[1])) == "今天天气很好"  # no entity: its first words


def test_pair_files_read_with_labels(tok, zh, tmp_path):
    f = tmp_path / "ir.tsv"
    f.write_text("北京 大学\t北京大学 介绍\t0\n天气\t长城\t2\n", encoding="utf-8")
    ir = build_task("ir", pair_files=str(f))
    ctx = ctx_for(tok, zh)
    assert build_task("ir").file_rows(ctx) is None  # no files: examples come from documents
    exs = [ir.row_example(r, np.random.RandomState(0), ctx) for r in ir.file_rows(ctx)]
    got = sorted((text(tok, segments(tok, e)[0]), int(e.labels[0])) for e in exs)
    assert got == [("北京大学", 0), ("天气", 2)]
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\t7\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.tsv:1"):
        build_task("ir", pair_files=str(bad)).file_rows(ctx)
    empty = tmp_path / "empty.tsv"
    empty.write_text("query\ttitle\tlabel\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no pairs in"):
        build_task("ir", pair_files=str(empty)).file_rows(ctx)


# ----------------------------------------------------------------------------- next sentence

def test_next_sentence_labels(tok, zh):
    nsp = build_task("nsp")
    ctx = ctx_for(tok, zh, max_seqlen=128)
    doc = zh[0]
    full = sum((tuple(int(x) for x in s.ids) for s in doc), ())
    labels = set()
    for seed in range(40):
        ex = nsp.build(doc, np.random.RandomState(seed), ctx)
        a, b = segments(tok, ex)
        label = int(ex.labels[0])
        labels.add(label)
        joined = a + b
        in_doc = any(full[i:i + len(joined)] == joined for i in range(len(full)))
        assert in_doc == (label == 1)
    assert labels == {0, 1}


def test_cjk_word_shortcut_gives_the_tokenizer_output(tok):
    fast = SentenceEncoder(tok, Lexicon(LEXICON))
    slow = SentenceEncoder(tok, Lexicon(LEXICON))
    slow._fast_cjk = False
    for line in ["张三 在 北京大学 读书 。", "鬱鬱 蔥蔥 龘 的 Paris ， １月 ７日", "我在北京大学读书", "中國 人民 銀行"]:
        a, b = fast.encode(line), slow.encode(line)
        assert a.ids.tolist() == b.ids.tolist() and a.marks.tolist() == b.marks.tolist(), line


def test_km_packing_fills_short_documents_with_others(tok, zh):
    ctx = ctx_for(tok, zh, max_seqlen=48)
    plain, packed = build_task("km", levels={"char": 1.0}), build_task("km", levels={"char": 1.0}, pack=True)
    rng = np.random.RandomState(0)
    short = zh[2]  # "甲 乙 丙 。 / 丙 丁 。": a few tokens
    lens_plain, lens_packed = [], []
    for _ in range(30):
        a, b = plain.build(short, rng, ctx), packed.build(short, rng, ctx)
        lens_plain.append(len(a.token_ids))
        lens_packed.append(len(b.token_ids))
        assert len(b.token_ids) <= 48 and b.token_ids[0] == tok.cls_id and b.token_ids[-1] == tok.sep_id
        seps = np.flatnonzero(b.labels == tok.sep_id)
        assert not len(seps), "a [SEP] was a target"
        assert (b.token_ids == tok.sep_id).sum() >= 2  # spans of other documents joined
    assert max(lens_plain) < 16 and np.mean(lens_packed) > 48 - KnowledgeMasking.MIN_PACKED - 2
