"""ERNIE 1.0 pre-training as a schedule of the one engine: the id format read as a corpus, each
file's mask_word_prob honoured, and the original command line on id data and on raw text."""
import gzip
import json
import os

import numpy as np
import pytest

from ernie.pretraining import ernie1
from ernie.pretraining.id_corpus import IdCorpus
from ernie.pretraining.pipeline import TaskStream
from ernie.pretraining.tasks import TaskContext, build_task

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = os.path.join(ROOT, "..", "shared", "reference", "ernie-1.0")
TINY = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
        "max_position_embeddings": 64, "type_vocab_size": 2, "vocab_size": 60, "hidden_act": "relu"}
WORD = 3  # tokens per word in the synthetic rows


def _row(rng, base, words_a=4, words_b=3):
    """An id-format line: [CLS] A [SEP] B [SEP] of 3-token words with ids in [base, base+10)."""
    ids, seg, types = [1], [-1], [0]
    for part, (n, t) in enumerate(((words_a, 0), (words_b, 1))):
        for _ in range(n):
            ids += list(rng.integers(base, base + 10, WORD))
            seg += [0] + [1] * (WORD - 1)
            types += [t] * WORD
        ids, seg, types = ids + [2], seg + [-1], types + [t]
    fields = [ids, types, list(range(len(ids))), seg]
    return ";".join(" ".join(map(str, f)) for f in fields) + f";{int(rng.integers(2))}"


def _id_file(path, base, n, seed):
    rng = np.random.default_rng(seed)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(_row(rng, base) for _ in range(n)) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def id_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("ids")
    chars = _id_file(d / "chars.gz", 10, 60, 1)   # ids 10..19: masked by character (p 0)
    words = _id_file(d / "words.gz", 30, 60, 2)   # ids 30..39: masked by word (p > 1: always)
    (d / "train_filelist").write_text(f"{chars}\t0\n{words}\t1.1\n", encoding="utf-8")
    (d / "valid_filelist").write_text(f"{_id_file(d / 'valid.gz', 10, 20, 3)}\t0.5\n", encoding="utf-8")
    (d / "config.json").write_text(json.dumps(TINY), encoding="utf-8")
    return d


def test_each_files_mask_word_prob_is_honoured(id_data):
    corpus = IdCorpus(str(id_data / "train_filelist"))
    assert sorted({r.mask_word_prob for r in corpus.rows}) == [0.0, 1.1]
    km = build_task("km")
    km.name = "mlm"
    ctx = TaskContext(60, 64, corpus=corpus)
    stream = TaskStream(km, corpus, ctx, seed=5)
    partial = {"char": 0, "word": 0}
    whole = {"char": 0, "word": 0}
    for _ in range(200):
        ex = next(stream)
        kind = "word" if ex.labels.min() >= 30 else "char"
        # word starts sit at 1, 4, 7, 10 in A; B's words start after A's [SEP] (offset 14)
        starts = [1 + WORD * k for k in range(4)] + [14 + WORD * k for k in range(3)]
        picked = set(int(p) for p in ex.positions)
        for s in starts:
            n = len(picked & set(range(s, s + WORD)))
            partial[kind] += 0 < n < WORD
            whole[kind] += n == WORD
    assert partial["word"] == 0 and whole["word"] > 50      # whole words only
    assert partial["char"] > 50                               # characters on their own
    assert whole["char"] < partial["char"] / 5


def test_id_rows_feed_nsp_with_their_own_labels(id_data):
    corpus = IdCorpus(str(id_data / "train_filelist"))
    nsp = build_task("nsp")
    stream = TaskStream(nsp, corpus, TaskContext(60, 64, corpus=corpus), seed=1)
    by_ids = {tuple(r.token_ids): r.nsp_label for r in corpus.rows}
    for _ in range(50):
        ex = next(stream)
        assert ex.labels.tolist() == [by_ids[tuple(ex.token_ids)]]


def test_document_tasks_refuse_an_id_corpus(id_data):
    corpus = IdCorpus(str(id_data / "train_filelist"))
    stream = TaskStream(build_task("sd"), corpus, TaskContext(60, 64, corpus=corpus))
    with pytest.raises(ValueError, match="knowledge_masking and next_sentence only"):
        next(stream)


def test_bad_rows_are_skipped_and_counted(tmp_path, caplog):
    f = tmp_path / "d.txt"
    f.write_text("1 5 2;0 0 0;0 1 2;-1 0 -1;1\n"
                 "1 5 2;0 0;0 1 2;-1 0 -1;1\n"          # lengths differ
                 "1 5 5 2;0 0 0 0;0 1 2 3;-1 0 1 -1;0\n"
                 "1 99 2;0 0 0;0 1 2;-1 0 -1;1\n",      # id past a vocab of 60
                 encoding="utf-8")
    (tmp_path / "fl").write_text("d.txt\t0.5\n", encoding="utf-8")
    corpus = IdCorpus(str(tmp_path / "fl"))
    assert len(corpus) == 3
    corpus.check_ids(60, 2)
    assert len(corpus) == 2
    assert "1 malformed lines skipped" in caplog.text and "1 rows with token ids outside [0, 60)" in caplog.text


def _run(args, tmp_path, steps=6):
    rc = {"model_dir": str(tmp_path / "run"), "max_steps": steps, "eval_steps": steps, "log_steps": 2,
          "save_steps": 100, "eval_max_steps": 2, "seed": 1}
    return ernie1.main(args + ["--run_config", json.dumps(rc),
                               "--hparam", json.dumps({"batch_size": 8, "learning_rate": 1e-3}),
                               "--save_dir", str(tmp_path / "final")])


def test_command_line_on_id_data(id_data, tmp_path):
    state = _run(["--train_filelist", str(id_data / "train_filelist"), "--valid_filelist",
                  str(id_data / "valid_filelist"), "--ernie_config", str(id_data / "config.json"),
                  "--max_seqlen", "64"], tmp_path)
    assert state.gstep == 6
    dev = state.last_eval["dev"]
    assert {"mlm_acc", "mlm_ppl", "nsp_acc", "mlm_loss", "nsp_loss"} <= set(dev)
    assert os.path.isfile(tmp_path / "final" / "model_state.pdparams")
    cfg = json.loads((tmp_path / "final" / "config.json").read_text())
    assert cfg["use_task_id"] is False  # an ERNIE 1.0 config: no task embeddings
    # the losses of both tasks were logged, from mixed batches
    tasks = {json.loads(l)["task"] for l in open(tmp_path / "run" / "task_losses.jsonl", encoding="utf-8")}
    assert tasks == {"mlm", "nsp"}


def test_command_line_on_segmented_text(id_data, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    docs = ["北京 大学 的 学生 。\n今天 天气 很 好 。\n我们 去 长城 。", "上海 是 城市 。\n人民 银行 发布 报告 。"]
    (corpus / "a.txt").write_text("\n\n".join(docs * 6) + "\n", encoding="utf-8")
    chars = sorted(set("".join(docs)) - set(" \n"))
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"] + chars) + "\n",
                                        encoding="utf-8")
    state = _run(["--corpus_dir", str(corpus), "--vocab_file", str(tmp_path / "vocab.txt"),
                  "--ernie_config", str(id_data / "config.json"), "--mask_word_prob", "0.5"], tmp_path, steps=4)
    assert state.gstep == 4
    assert os.path.isfile(tmp_path / "final" / "vocab.txt")


def test_missing_max_steps_is_one_clear_error(id_data, tmp_path):
    with pytest.raises(SystemExit, match="max_steps"):
        ernie1.main(["--train_filelist", str(id_data / "train_filelist"), "--ernie_config",
                     str(id_data / "config.json"), "--run_config", json.dumps({"model_dir": str(tmp_path)})])


@pytest.mark.skipif(not os.path.isfile(os.path.join(REFERENCE, "demo_train_set.gz")),
                    reason="the original ERNIE 1.0 demo data (../shared/reference/ernie-1.0) is not here")
def test_reads_the_original_demo_data(tmp_path):
    (tmp_path / "fl").write_text(os.path.abspath(os.path.join(REFERENCE, "demo_valid_set.gz")) + "\t1.0\n")
    corpus = IdCorpus(str(tmp_path / "fl"), max_seqlen=512)
    assert len(corpus) == 6000
    corpus.check_ids(18000, 2)
    assert len(corpus) == 6000
    assert {r.nsp_label for r in corpus.rows} == {0, 1}
