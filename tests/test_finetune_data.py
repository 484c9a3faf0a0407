"""Fine-tuning readers, features, metrics and helpers, without training (fast)."""
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from ernie.finetune.classifier import ClassificationTask
from ernie.finetune.common import load_weights, resolve_ernie_config
from ernie.finetune.data import BadLineError, BadLines, split_files, token_batches
from ernie.finetune.metrics import Matthews, Pearson, Spearman
from ernie.finetune.mrc import FeatureStore, MrcTask, context_units, em_f1
from ernie.finetune.ner import IGNORE, MSRA_LABELS, NerTask
from ernie.finetune.ranker import RankingTask
from ernie.finetune.runner import TaskOptions
from ernie.tokenizing import FullTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHARS = "今天天气很好差书质量太了北京上海张三在工作新华社电。，的是一本"
TINY = dict(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
            max_position_embeddings=64)


@pytest.fixture(scope="module")
def tok():
    vocab = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"] + sorted(set(CHARS)) + ["hello", "world", "##s", "12"]
    return FullTokenizer({t: i for i, t in enumerate(vocab)})


def _args(max_seqlen=16, cased=False, **flags):
    return TaskOptions(max_seqlen=max_seqlen, cased=cased, flags=flags)


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


# ---------------------------------------------------------------------------- files and columns

def test_split_files_dir_or_single_file(tmp_path):
    _write(tmp_path / "a" / "train" / "part-1", "x\t1\n")
    _write(tmp_path / "a" / "train" / "part-0", "x\t1\n")
    _write(tmp_path / "a" / "train" / ".hidden", "")
    _write(tmp_path / "a" / "dev.tsv", "x\t1\n")
    assert [os.path.basename(f) for f in split_files(str(tmp_path / "a"), "train")] == ["part-0", "part-1"]
    assert split_files(str(tmp_path / "a"), "dev") == [str(tmp_path / "a" / "dev.tsv")]
    assert split_files(str(tmp_path / "a"), "test") == []
    os.makedirs(tmp_path / "a" / "test")
    with pytest.raises(FileNotFoundError, match="holds no data files"):
        split_files(str(tmp_path / "a"), "test")


def test_classifier_columns_by_header_name(tmp_path, tok):
    task = ClassificationTask(_args(), tok)
    plain = _write(tmp_path / "plain.tsv", "今天天气很好\t1\n书质量太差了\t0\n")
    chnsenti = _write(tmp_path / "chnsenti.tsv", "label\ttext_a\n1\t今天天气很好\n0\t书质量太差了\n")
    with_qid = _write(tmp_path / "qid.tsv", "qid\tlabel\ttext_a\n7\t1\t今天天气很好\n8\t0\t书质量太差了\n")
    got = [task.read([p], BadLines()) for p in (plain, chnsenti, with_qid)]
    for other in got[1:]:
        assert len(other) == 2
        for x, y in zip(got[0], other):
            assert all(np.array_equal(a, b) for a, b in zip(x, y))
    ids, types_, label = got[0][0]
    assert ids[0] == tok.cls_id and ids[-1] == tok.sep_id and len(ids) == len("今天天气很好") + 2
    assert label == 1 and not types_.any()
    # pairs: any column order under a header; positional text_a, text_b, label without one
    pair_h = _write(tmp_path / "pair_h.tsv", "text_b\tlabel\ttext_a\n北京\t1\t上海\n")
    pair = _write(tmp_path / "pair.tsv", "上海\t北京\t1\n")
    (a,), (b,) = task.read([pair_h], BadLines()), task.read([pair], BadLines())
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert list(a[1]) == [0, 0, 0, 0, 1, 1, 1]  # [CLS] 上 海 [SEP] | 北 京 [SEP]


def test_classifier_bad_lines_error_or_skip(tmp_path, tok):
    path = _write(tmp_path / "train.tsv", "label\ttext_a\n1\t今天天气很好\n1\t好\tEXTRA\n5\t书\n0\t   \n0\t上海\n")
    task = ClassificationTask(_args(), tok)
    with pytest.raises(BadLineError, match=r"train\.tsv:3: expected 2 tab-separated columns"):
        task.read([path], BadLines("error"))
    bad = BadLines("skip")
    assert len(task.read([path], bad)) == 2 and bad.count == 3
    lines = open(path, encoding="utf-8").read().splitlines()
    for line, msg in ((4, "unknown label '5'"), (5, "empty text_a")):
        only = _write(tmp_path / f"only{line}.tsv", f"label\ttext_a\n{lines[line - 1]}\n")
        with pytest.raises(BadLineError, match=f"only{line}.tsv:2: {msg}"):
            task.read([only], BadLines())
    header_without_label = _write(tmp_path / "nolabel.tsv", "text_a\n书\n")
    with pytest.raises(BadLineError, match="no column 'label'"):
        task.read([header_without_label], BadLines("skip"))


def test_classifier_label_map_and_regression(tmp_path, tok):
    lm = _write(tmp_path / "labels.json", json.dumps({"neg": 0, "pos": 1, "mid": 2}))
    task = ClassificationTask(_args(label_map=lm), tok)
    assert task.num_labels == 3
    (ex,) = task.read([_write(tmp_path / "a.tsv", "书\tmid\n")], BadLines())
    assert ex[2] == 2
    reg = ClassificationTask(_args(num_labels=1), tok)
    (ex,) = reg.read([_write(tmp_path / "b.tsv", "书\t北京\t3.25\n")], BadLines())
    assert ex[2].dtype == np.float32 and ex[2] == 3.25 and reg.best_metric == "pearson"
    with pytest.raises(BadLineError, match="not a number"):
        reg.read([_write(tmp_path / "c.tsv", "书\t北京\thigh\n")], BadLines())


def test_ner_alignment_and_bad_lines(tmp_path, tok):
    task = NerTask(_args(max_seqlen=6), tok)
    path = _write(tmp_path / "ner.tsv", "text_a\tlabel\n张 三 在 北 京\tB-PER I-PER O B-LOC I-LOC\n"
                                       "上\x02海\tB-LOC\x02I-LOC\n")
    (a, b) = task.read([path], BadLines())
    ids, _, labels = a
    assert len(ids) == 6 and ids[0] == tok.cls_id and ids[-1] == tok.sep_id  # cut to max_seqlen - 2 chars
    tag = {t: i for i, t in enumerate(MSRA_LABELS)}
    assert list(labels) == [IGNORE, tag["B-PER"], tag["I-PER"], tag["O"], tag["B-LOC"], IGNORE]
    assert list(b[2]) == [IGNORE, tag["B-LOC"], tag["I-LOC"], IGNORE]
    assert b[0][1] == tok.vocab["上"]
    bad_path = _write(tmp_path / "bad.tsv", "张 三\tB-PER\n张 三\tB-PER B-XYZ\n \tO\n张 三\tB-PER I-PER\n")
    with pytest.raises(BadLineError, match=r"bad\.tsv:1: 2 characters but 1 tags"):
        task.read([bad_path], BadLines())
    bad = BadLines("skip")
    assert len(task.read([bad_path], bad)) == 1 and bad.count == 3


def test_ranker_reader(tmp_path, tok):
    task = RankingTask(_args(), tok)
    path = _write(tmp_path / "r.tsv", "qid\ttext_a\ttext_b\tlabel\nq9\t书\t上海\t1\nq9\t书\t北京\t0\n"
                                     "q2\t书\t张三\t1\nq2\t书\t张三\t2\n")
    bad = BadLines("skip")
    rows = task.read([path], bad)
    assert [int(r[3]) for r in rows] == [0, 0, 1] and [int(r[2]) for r in rows] == [1, 0, 1] and bad.count == 1
    batch = task.to_batch(tuple(np.stack([r[i] for r in rows[:1]]) for i in range(4)))
    assert len(batch) == 3 and len(batch[2]) == 2  # labels travel as (relevance, qid)


def test_token_batches_respect_the_budget():
    exs = [(np.ones(n, np.int64), np.zeros(n, np.int64), np.int64(0)) for n in (3, 5, 2, 8, 8, 1)]
    batches = list(token_batches(exs, 16, (0, 0, 0)))
    assert sum(len(b[0]) for b in batches) == len(exs)
    assert all(b[0].size <= 16 for b in batches)


# ---------------------------------------------------------------------------- MRC

def _squad(paragraphs):
    return {"data": [{"paragraphs": paragraphs}]}


def test_mrc_units_windows_and_answer_round_trip(tmp_path, tok):
    ctx = "今天hello world12在北京工作。张三是新华社的，上海天气很好"
    assert [ctx[a:b] for a, b in context_units(ctx)][:4] == ["今", "天", "hello", "world12"]
    qas = []
    for i, ans in enumerate(["北京", "hello world12", "新华社", "上海天气"]):
        qas.append({"id": f"q{i}", "question": "在哪里工作", "answers": [{"text": ans, "answer_start": ctx.index(ans)}]})
    qas.append({"id": "bad", "question": "？", "answers": [{"text": "不在", "answer_start": 3}]})
    path = _write(tmp_path / "train.json", json.dumps(_squad([{"context": ctx, "qas": qas}]), ensure_ascii=False))
    task = MrcTask(_args(max_seqlen=16, doc_stride=4, max_query_len=5), tok)
    with pytest.raises(BadLineError, match=r"question bad: answer '不在' is not in the context"):
        task.read([path], BadLines())
    feats = task.read([path], BadLines("skip"))
    store = task.store
    by_ex = {}
    for f in feats:
        by_ex.setdefault(store.features[int(f[4])].example.qid, []).append(f)
    assert len(by_ex) == 4 and all(len(v) > 1 for v in by_ex.values())  # several windows each
    for qid, fs in by_ex.items():
        ex = store.features[int(fs[0][4])].example
        assert ex.text(*ex.span) == ex.answers[0]  # token span -> original characters, exactly
        # each doc token scores in exactly one window
        owners = np.zeros(len(ex.token_ids), int)
        for f in fs:
            feat = store.features[int(f[4])]
            owners[feat.start:feat.start + feat.length] += feat.max_context
            assert len(f[0]) <= 16 and f[1][feat.offset] == 1 and f[1][feat.offset - 1] == 0
        assert (owners == 1).all()
        # logits peaked at the training labels decode back to the answer
        labelled = [f for f in fs if f[2] > 0]
        assert labelled
        start = np.full((len(fs), 16), -5.0)
        end = np.full((len(fs), 16), -5.0)
        for r, f in enumerate(fs):
            if f[2] > 0:
                start[r, f[2]], end[r, f[3]] = 5.0, 5.0
        got = store.decode([int(f[4]) for f in fs], start, end, n_best=5, max_answer_len=30)
        assert got == {ex: ex.answers[0]}


def test_mrc_metric_decoding_limits():
    class Ex:  # an example whose text is its token span
        answers = ["0-1"]

        def text(self, s, e):
            return f"{s}-{e}"

    store, ex = FeatureStore(), Ex()
    store.add(types.SimpleNamespace(example=ex, offset=2, start=0, length=6, max_context=np.ones(6, bool)))
    start = np.array([[0, 0, 1, 9, 0, 0, 0, 0]], float)
    end = np.array([[0, 0, 0, 0, 0, 0, 0, 9]], float)
    assert store.decode([0], start, end, 20, 30)[ex] == "1-5"
    assert store.decode([0], start, end, 20, 2)[ex] == "1-1"  # the best span of at most 2 tokens
    em, f1, n = store.scores(np.array([0]), start, end, 20, 30)
    assert n == 1 and em == 0.0


def test_em_f1_rules():
    assert em_f1("北京", ["北京"]) == (1.0, 1.0)
    assert em_f1("北京市", ["北京"]) == (0.0, 0.8)
    assert em_f1("The Cat!", ["cat"]) == (1.0, 1.0)  # case, punctuation, articles
    assert em_f1("上海", ["北京", "上海，"]) == (1.0, 1.0)  # the best gold answer counts
    assert em_f1("", ["北京"]) == (0.0, 0.0)


# ---------------------------------------------------------------------------- metrics

def test_matthews_and_correlations_match_references():
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import matthews_corrcoef
    rng = np.random.RandomState(0)
    y, p = rng.randint(0, 3, 200), rng.randint(0, 3, 200)
    p[:120] = y[:120]
    m = Matthews(num_classes=3)
    for i in range(0, 200, 64):  # streamed in batches, as the trainer does
        m.merge(Matthews(y[i:i + 64], np.eye(3)[p[i:i + 64]], num_classes=3))
    assert m.eval() == pytest.approx(matthews_corrcoef(y, p))
    a, b = rng.rand(50), rng.rand(50)
    b[:25] = a[:25] * 3
    b[30:33] = b[29]  # ties
    assert Pearson(a, b).eval() == pytest.approx(pearsonr(a, b)[0])
    assert Spearman(a, b).eval() == pytest.approx(spearmanr(a, b)[0])
    assert Pearson(a, np.ones(50)).eval() == 0.0


# ---------------------------------------------------------------------------- config and weights

def test_config_resolution_order(tmp_path):
    from propeller.types import HParams
    cfg_file = _write(tmp_path / "c.json", json.dumps(dict(TINY, hidden_size=32)))
    hp = HParams(**TINY, batch_size=4)
    assert resolve_ernie_config(cfg_file, hp).hidden_size == 32  # --ernie_config wins
    assert resolve_ernie_config(None, hp).hidden_size == 16  # then the model fields of the hparams
    with pytest.raises(SystemExit, match="no model config"):
        resolve_ernie_config(None, HParams(batch_size=4), [None])


def test_load_weights_pretrained_and_finetuned(tmp_path):
    import paddle
    from ernie.checkpoint import save_pretrained
    from ernie.finetune.classifier import ClassifierModel
    from ernie.modeling import ErnieConfig, ErnieModel
    from propeller.types import HParams
    paddle.seed(0)
    cfg = ErnieConfig(**TINY)
    save_pretrained(ErnieModel(cfg), str(tmp_path / "pre"))  # a bare encoder: no classifier
    hp = HParams(ernie_config=cfg.to_dict(), num_labels=3)
    m = ClassifierModel(hp)
    report = m.warm_start(str(tmp_path / "pre"))
    assert sorted(report.not_loaded) == ["classifier.bias", "classifier.weight"]
    # a fine-tuned model's own state dict (keys under "net.") loads completely into a fresh one
    paddle.save(m.state_dict(), str(tmp_path / "model_state.pdparams"))
    m2 = ClassifierModel(hp)
    report = load_weights(m2.net, str(tmp_path / "model_state.pdparams"))
    assert not report.not_loaded
    for k, v in m.state_dict().items():
        assert np.array_equal(v.numpy(), m2.state_dict()[k].numpy())
    bigger = ClassifierModel(HParams(ernie_config=dict(cfg.to_dict(), hidden_size=32), num_labels=3))
    with pytest.raises(ValueError, match="shape mismatch"):
        bigger.warm_start(str(tmp_path / "pre"))


# ---------------------------------------------------------------------------- GLUE conversion

def test_glue_to_tsv(tmp_path):
    g = tmp_path / "glue"
    _write(g / "CoLA" / "train.tsv", "gj04\t1\t\tOur friends won't buy this analysis.\ngj04\t0\t*\tOne more pseudo.\n")
    _write(g / "CoLA" / "test.tsv", "index\tsentence\n0\tBill whistled past the house.\n")
    _write(g / "MRPC" / "train.tsv", "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tA b.\tA  c.\n")
    _write(g / "MNLI" / "dev_matched.tsv", "index\tsentence1\tsentence2\tgold_label\n0\tA.\tB.\tneutral\n"
                                           "1\tA.\tB.\tcontradiction\n2\tbroken line\n")
    _write(g / "STS-B" / "dev.tsv", "index\tsentence1\tsentence2\tscore\n0\tA.\tB.\t3.8\n")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "script/en_glue/preprocess/glue_to_tsv.py"), str(g), str(out)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    read = lambda p: open(out / p, encoding="utf-8").read().splitlines()  # noqa: E731
    assert read("CoLA/train.tsv") == ["text_a\tlabel", "Our friends won't buy this analysis.\t1", "One more pseudo.\t0"]
    assert read("CoLA/test.tsv") == ["text_a", "Bill whistled past the house."]
    assert read("MRPC/train.tsv") == ["text_a\ttext_b\tlabel", "A b.\tA c.\t1"]
    assert read("MNLI/dev.tsv") == ["text_a\ttext_b\tlabel", "A.\tB.\t2", "A.\tB.\t0"]
    assert "1 malformed lines skipped" in r.stdout
    assert read("STS-B/dev.tsv")[1] == "A.\tB.\t3.8"


def test_stdin_records_header_blank_and_bad_lines():
    from ernie.finetune.runner import stdin_records
    from ernie.finetune.classifier import PREDICT_LAYOUTS
    lines = ["label\ttext_b\ttext_a\n", "1\t北京\t上海\n", "\n", "0\t书\n"]
    bad = BadLines("skip")
    (chunk,) = list(stdin_records(iter(lines), PREDICT_LAYOUTS, bad))
    # the header gets no output line; the blank and the short line keep theirs (as None)
    assert chunk == [(2, {"label": "1", "text_b": "北京", "text_a": "上海"}), (3, None), (4, None)]
    assert bad.count == 2
    with pytest.raises(BadLineError, match="<stdin>:2: expected 1 .* got 3"):
        list(stdin_records(iter(["书\n", "a\tb\tc\n"]), PREDICT_LAYOUTS, BadLines()))


def test_ernie_tiny_tokenizers(tmp_path):
    """--sentence_piece_model/--word_dict build the ERNIE-tiny tokenizer; NER's
    --use_sentence_piece_vocab finds characters stored as word-initial pieces."""
    from ernie.finetune.common import build_tokenizer
    from ernie.tokenizing import SentencepieceTokenizer, train_sentencepiece
    text = "".join(f"今天天气很好{i}北京上海张三在工作\n新华社电书质量太差了\n" for i in range(50))
    corpus = _write(tmp_path / "c.txt", text)
    words = _write(tmp_path / "words.txt", "北京\n上海\n新华社\n")
    model, vocab = train_sentencepiece([corpus], str(tmp_path / "sp"), 60, word_dict=words)
    tok = build_tokenizer(vocab, model, words)
    assert isinstance(tok, SentencepieceTokenizer)
    (ex,) = ClassificationTask(_args(max_seqlen=32), tok).read([_write(tmp_path / "t.tsv", "北京天气很好\t1\n")],
                                                               BadLines())
    assert ex[0][0] == tok.cls_id and tok.unk_id not in ex[0][1:-1]
    with pytest.raises(SystemExit, match="--word_dict only applies"):
        build_tokenizer(vocab, None, words)
    sp_vocab = {t: i for i, t in enumerate(["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]", "\u2581上", "海"])}
    tok = FullTokenizer(sp_vocab)
    plain, tiny = NerTask(_args(), tok), NerTask(_args(use_sentence_piece_vocab=True), tok)
    assert [plain.char_id(c) for c in "上海"] == [tok.unk_id, 6]
    assert [tiny.char_id(c) for c in "上海"] == [5, 6]


def test_regression_and_multiclass_heads():
    import paddle
    from ernie.finetune.classifier import ClassifierModel
    from propeller.types import HParams
    paddle.seed(0)
    ids = paddle.to_tensor(np.array([[1, 5, 6, 2], [1, 7, 2, 0]], np.int64))
    types_ = paddle.zeros_like(ids)
    reg = ClassifierModel(HParams(ernie_config=TINY, num_labels=1))
    out = reg(ids, types_)
    label = paddle.to_tensor(np.array([0.5, 4.0], np.float32))
    loss = reg.loss(out, label)
    assert out.shape == [2, 1] and float(loss) == pytest.approx(float(((out.reshape([-1]) - label) ** 2).mean()))
    assert set(reg.metrics(out, label)) == {"mse", "pearson", "spearman"}
    cls = ClassifierModel(HParams(ernie_config=TINY, num_labels=3))
    out = cls(ids, types_)
    m = cls.metrics(out, paddle.to_tensor(np.array([2, 0], np.int64)))
    assert out.shape == [2, 3] and set(m) == {"acc", "matthews"}
    assert len(cls.inference_spec()) == 2


def test_warm_start_from_a_legacy_params_dir(tmp_path):
    """MODEL_PATH of the original release: params/ (one Paddle 1.x tensor file per variable) and
    ernie_config.json beside it; the config comes from there too."""
    import paddle
    from ernie.checkpoint import ours_to_legacy
    from ernie.finetune.ner import NerModel
    from ernie.legacy_tensor import write_tensor
    from ernie.modeling import ErnieModel, ErnieConfig
    from propeller.types import HParams
    paddle.seed(1)
    enc = ErnieModel(ErnieConfig(**TINY))
    (tmp_path / "params").mkdir()
    for name, v in enc.state_dict().items():
        write_tensor(str(tmp_path / "params" / ours_to_legacy(name)), v.numpy())
    _write(tmp_path / "ernie_config.json", json.dumps(TINY))
    cfg = resolve_ernie_config(None, HParams(batch_size=2), [str(tmp_path)])
    assert cfg.hidden_size == 16 and cfg.layer_norm_eps == 1e-5  # the legacy static-graph epsilon
    model = NerModel(HParams(ernie_config=cfg.to_dict()))
    report = model.warm_start(str(tmp_path))
    assert report.kind == "legacy" and sorted(report.not_loaded) == ["classifier.bias", "classifier.weight"]
    np.testing.assert_array_equal(model.net.ernie.encoder.layers[0].linear1.weight.numpy(),
                                  enc.encoder.layers[0].linear1.weight.numpy())


def test_training_batches_in_tokens_mode(tmp_path, tok):
    from ernie.finetune.runner import _batches
    task = ClassificationTask(_args(max_seqlen=16), tok)
    lines = "".join(f"{'今天天气很好北京上海'[:1 + i % 9]}\t{i % 2}\n" for i in range(40))
    exs = task.read([_write(tmp_path / "t.tsv", lines)], BadLines())
    it = iter(_batches(task, exs, 48, in_tokens=True, shuffle_seed=1))  # repeats forever
    seen = 0
    for _ in range(30):
        src, sent, label = next(it)
        assert src.size <= 48 and src.shape == sent.shape and label.shape == (src.shape[0],)
        seen += src.shape[0]
    assert seen > len(exs)  # went round more than once
    first = [next(iter(_batches(task, exs, 48, in_tokens=True, shuffle_seed=1)))[0] for _ in range(2)]
    assert np.array_equal(*first)  # seeded: a resumed run replays the same stream
