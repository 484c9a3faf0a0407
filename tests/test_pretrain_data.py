"""Corpus -> shards: determinism whatever the number of processes, malformed-line reports,
memory-mapped streaming split across ranks and DataLoader workers."""
import json
import os

import numpy as np
import pytest

from ernie.pretraining.preprocess import build_shards, main as preprocess_main
from ernie.pretraining.shards import KNOWLEDGE, UNIT_START, ShardCorpus, partition
from test_pretrain_tasks import EN_DOCS, ZH_DOCS, make_tokenizer

RAW = ["我在北京大学读书。今天天气很好！但是明天会下雨。", "中国人民银行发布报告。报告指出经济增长？是的。"]


def _write_corpus(d, n_docs=60):
    """Two files of segmented documents (one sentence a line) and one of raw documents (one a line)."""
    d.mkdir(exist_ok=True)
    docs = [[s.replace("。", f" {k} 。") for s in doc] for k in range(n_docs) for doc in (ZH_DOCS + EN_DOCS)]
    half = len(docs) // 2
    for name, part in (("a.txt", docs[:half]), ("b.txt", docs[half:])):
        (d / name).write_text("\n\n".join("\n".join(doc) for doc in part) + "\n", encoding="utf-8")
    return docs


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pre")
    make_tokenizer(tmp, extra=RAW)
    docs = _write_corpus(tmp / "corpus")
    lex = tmp / "lex.txt"
    lex.write_text("北京大学\tORG\t3\n中国人民银行\tORG\t2\n", encoding="utf-8")
    return tmp, docs, str(tmp / "vocab.txt"), str(lex)


def _files(d):
    return {f: open(os.path.join(d, f), "rb").read() for f in sorted(os.listdir(d)) if f.endswith(".npy")}


def test_same_shards_for_one_and_two_processes(env):
    tmp, docs, vocab, lex = env
    kw = dict(lexicon=lex, seed=7, chunk_mb=0.002, progress=False)  # ~2 KB chunks: many shards
    i1 = build_shards([str(tmp / "corpus")], vocab, str(tmp / "p1"), processes_num=1, **kw)
    i2 = build_shards([str(tmp / "corpus")], vocab, str(tmp / "p2"), processes_num=2, **kw)
    assert len(i1["shards"]) > 4
    f1, f2 = _files(tmp / "p1"), _files(tmp / "p2")
    assert f1 == f2
    assert i1["shards"] == i2["shards"] and i1["num_docs"] == len(docs)
    i3 = build_shards([str(tmp / "corpus")], vocab, str(tmp / "p3"), processes_num=2, **dict(kw, seed=8))
    assert _files(tmp / "p3") != f1 and i3["num_tokens"] == i1["num_tokens"]  # the seed shuffles documents
    # every document is there, sentence by sentence
    c = ShardCorpus(str(tmp / "p1"))
    assert len(c) == len(docs)
    sentences = sorted(len(c[i]) for i in range(len(c)))
    assert sentences == sorted(len(d) for d in docs)


def test_raw_documents_a_line_with_jieba_and_lexicon(env):
    tmp, _, vocab, lex = env
    raw = tmp / "raw.txt"
    raw.write_text("\n".join(RAW) + "\n", encoding="utf-8")
    idx = build_shards([str(raw)], vocab, str(tmp / "raw"), lexicon=lex, fmt="docs", progress=False)
    assert idx["num_docs"] == 2 and idx["num_sentences"] == 6
    c = ShardCorpus(str(tmp / "raw"))
    from ernie.tokenizing import FullTokenizer
    tok = FullTokenizer(vocab)
    found = []
    for i in range(len(c)):
        for s in c[i]:
            k = np.flatnonzero(s.marks & KNOWLEDGE)
            if len(k):
                found.append("".join(tok.convert_ids_to_tokens([int(x) for x in s.ids[k]])))
                assert ((s.marks[k] & UNIT_START) > 0).sum() == 1  # one unit, never split
    assert sorted(found) == ["中国人民银行", "北京大学"]


def test_malformed_lines_reported_with_file_and_line(env, capsys):
    tmp, _, vocab, _ = env
    bad = tmp / "bad"
    bad.mkdir()
    lines = [f"句子 {k} 。".encode() for k in range(40)]
    lines[2] = b"\xff\xfe broken"          # line 3: not UTF-8
    lines[6] = "有\x01控制 字符".encode()   # line 7: control character
    for k in (10, 20, 30):                 # document breaks (chunks end at one)
        lines[k] = b""
    lines[33] = b"\x00"                    # line 34, in a later chunk
    (bad / "x.txt").write_bytes(b"\n".join(lines) + b"\n")
    idx = build_shards([str(bad)], vocab, str(tmp / "badout"), chunk_mb=0.0002, progress=False)
    assert len(idx["shards"]) > 1
    assert idx["malformed_lines"] == 3
    path = str(bad / "x.txt")
    reasons = idx["malformed_examples"]
    assert [r.split(": ")[0] for r in reasons] == [f"{path}:3", f"{path}:7", f"{path}:34"]
    assert "not UTF-8" in reasons[0] and "control character" in reasons[1]
    assert idx["num_sentences"] == 40 - 3 - 3 and idx["num_docs"] == 4  # the rest is all there
    # the command line reports them too and exits 0
    preprocess_main(["--corpus", str(bad), "--vocab", vocab, "--out", str(tmp / "badcli"), "--chunk_mb", "0.0002"])
    assert f"{path}:34" in capsys.readouterr().err


def test_partition_is_disjoint_and_complete():
    for world, workers in ((1, 1), (2, 1), (2, 2), (3, 2)):
        got = [i for r in range(world) for w in range(workers) for i in partition(23, r, world, w, workers)]
        assert sorted(got) == list(range(23))


def test_shards_stream_through_two_dataloader_workers_without_duplicates(env):
    import paddle
    from ernie.pretraining.pipeline import ShardDocumentDataset
    tmp, docs, vocab, lex = env
    path = str(tmp / "p1")
    if not os.path.exists(path):
        build_shards([str(tmp / "corpus")], vocab, path, lexicon=lex, seed=7, chunk_mb=0.002, progress=False)
    corpus = ShardCorpus(path)
    assert isinstance(corpus[0][0].ids, np.memmap) or isinstance(corpus[0][0].ids.base, np.memmap)
    seen = {}
    for rank in (0, 1):  # two Fleet ranks, each with two DataLoader workers
        loader = paddle.io.DataLoader(ShardDocumentDataset(corpus, rank=rank, world=2), batch_size=None, num_workers=2)
        ids = [int(idx.numpy()[0]) for idx, tokens in loader]
        assert len(ids) == len(set(ids))
        seen[rank] = ids
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == list(range(len(corpus)))
