"""Data augmentation for distillation: each noise on fixed input, with the properties it must have."""
import os
import subprocess
import sys

import pytest

from distill.augment import UNK, Augmenter, pos_tag, pos_vocab

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SENTENCES = ["这家酒店的服务很好，房间也干净", "书的质量太差了，快递也慢", "手机屏幕很清楚，电池不耐用",
             "我们非常喜欢这本书", "价格便宜，味道不错，下次还来", "客服态度恶劣，再也不买了"]


@pytest.fixture(scope="module")
def tagged():
    return [pos_tag(s) for s in SENTENCES]


def _long(n=3000):
    # a synthetic tagged sentence: words of a few tags, many of each
    tags = ["n", "v", "a", "d"]
    return [(f"{t}{i % 50}", t) for i, t in ((i, tags[i % 4]) for i in range(n))]


def test_unk_rate_is_near_p():
    sent = _long()
    for p in (0.1, 0.3):
        aug = Augmenter(pos_vocab([sent]), p_unk=p, p_pos=0.0, p_ngram=0.0, seed=3)
        out = aug.noise(sent)
        assert len(out) == len(sent)
        rate = sum(w == UNK for w in out) / len(out)
        assert abs(rate - p) < 0.03, rate
        assert all(w == UNK or w == o for w, (o, _) in zip(out, sent))  # nothing else changes


def test_same_pos_replacement_keeps_the_pos(tagged):
    vocab = pos_vocab(tagged)
    word_tags = {}
    for sent in tagged:
        for w, t in sent:
            word_tags.setdefault(w, set()).add(t)
    aug = Augmenter(vocab, p_unk=0.0, p_pos=0.5, p_ngram=0.0, seed=7)
    changed = swappable = 0
    for _ in range(30):
        for sent in tagged:
            out = aug.noise(sent)
            for new, (old, tag) in zip(out, sent):
                if len(vocab.get(tag, ())) > 1 and tag not in ("x", "eng", "m", "un"):
                    swappable += 1
                if new != old:
                    changed += 1
                    assert new != UNK
                    assert new in vocab[tag] and tag in word_tags[new], (old, new, tag)
    assert swappable and abs(changed / swappable - 0.5) < 0.1, (changed, swappable)
    # the swaps draw from the data set's words, tagged by jieba as the word they replace
    sent = _long(400)
    out = Augmenter(pos_vocab([sent]), p_unk=0.0, p_pos=1.0, p_ngram=0.0, seed=1).noise(sent)
    assert all(w[0] == o[0] and w != o for w, (o, _) in zip(out, sent))


def test_n_sampling_gives_a_contiguous_span():
    sent = [(f"w{i}", "n") for i in range(40)]
    words = [w for w, _ in sent]
    aug = Augmenter({}, p_unk=0.0, p_pos=0.0, p_ngram=1.0, ngram_min_ratio=0.3, seed=5)
    lengths = set()
    for _ in range(50):
        out = aug.augment(sent)
        start = words.index(out[0])
        assert out == words[start:start + len(out)]
        assert 12 <= len(out) <= 40
        lengths.add(len(out))
    assert len(lengths) > 5  # random length, not a fixed cut


def test_deterministic_with_seed(tagged):
    vocab = pos_vocab(tagged)
    run = lambda seed: list(Augmenter(vocab, seed=seed).augment_all(tagged, times=10))  # noqa: E731
    a, b, c = run(1), run(1), run(2)
    assert a == b and a != c
    assert len(a) == 10 * len(tagged)
    assert sum(x != [w for w, _ in t] for x, t in zip(a, [t for t in tagged for _ in range(10)])) > 50


def test_bad_probabilities_are_refused():
    with pytest.raises(ValueError, match="p_unk"):
        Augmenter({}, p_unk=1.5)
    with pytest.raises(ValueError, match="<= 1"):
        Augmenter({}, p_unk=0.6, p_pos=0.6)


def test_cli_writes_times_copies_deterministically(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.tsv").write_text("label\ttext_a\n" + "".join(f"{i % 2}\t{s}\n" for i, s in enumerate(SENTENCES)),
                                    encoding="utf-8")
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "a.txt").write_text("没有标签的评论\n", encoding="utf-8")
    outs = []
    for k in range(2):
        out = tmp_path / f"aug{k}"
        subprocess.run([sys.executable, "-m", "distill.augment", "--data_dir", str(data), "--out", str(out),
                        "--times", "4", "--seed", "3", "--unsupervise_data_dir", str(tmp_path / "extra")],
                       check=True, cwd=REPO, capture_output=True)
        outs.append((out / "part.0").read_text(encoding="utf-8"))
    lines = outs[0].splitlines()
    assert outs[0] == outs[1]
    assert len(lines) == 4 * len(SENTENCES) + 1 and lines[-1] == "没有 标签 的 评论"
    assert os.listdir(tmp_path / "aug0") == ["part.0"] or sorted(os.listdir(tmp_path / "aug0"))[0].startswith(".")
