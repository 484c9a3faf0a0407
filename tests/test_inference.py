"""Export, predictor, text predictor, the C++ demo data format, ONNX and ernie_encoder.

Every check compares against a real peer: the dygraph ``ErnieModel`` the export came from,
``paddle.inference`` (through ``Predictor``) and onnxruntime. A tiny ERNIE (2 layers,
hidden 32) with a small vocabulary keeps the module fast.
"""
import json
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest

from ernie.checkpoint import load_into, ours_to_legacy, save_pretrained
from ernie.legacy_tensor import write_tensor
from ernie.modeling import ErnieConfig, ErnieForSequenceClassification, ErnieModel
from ernie.tokenizing import FullTokenizer
from ernie.export import export_ernie, parse_encode_layer
from ernie.service import demo_data
from ernie.service.text_predictor import TextPredictor
from inference import demo
from inference.export import main as export_main
from propeller.inference.export import META_FILE, export_inference_model, read_meta
from propeller.inference.predictor import Predictor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXTS = ["谁有狂三这张高清的", "英雄联盟什么英雄最好", "好", "这张 高清图 谁有 hello world"]
PAIRS = ["这张高清图，谁有", "英雄联盟最好英雄是什么", "差", "好的"]
SPECIALS = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"]


def write_vocab(path):
    chars = sorted({c for t in TEXTS + PAIRS for c in t if not c.isspace() and not c.isascii()})
    tokens = SPECIALS + chars + ["hello", "world", "##s", "，"]
    path.write_text("\n".join(dict.fromkeys(tokens)) + "\n", encoding="utf-8")
    return len(dict.fromkeys(tokens))


def tiny_config(vocab_size, **kw):
    return ErnieConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=4, intermediate_size=64, hidden_act="gelu",
                       max_position_embeddings=64, **kw)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("inf")
    vocab = d / "vocab.txt"
    n = write_vocab(vocab)
    paddle.seed(11)
    model = ErnieForSequenceClassification(tiny_config(n), num_labels=3)
    model.eval()
    save_pretrained(model, str(d / "ckpt"))
    (d / "ckpt" / "vocab.txt").write_text(vocab.read_text(encoding="utf-8"), encoding="utf-8")
    return {"dir": d, "ckpt": d / "ckpt", "vocab": vocab, "model": model,
            "tok": FullTokenizer(str(vocab))}


@pytest.fixture(scope="module")
def cls_export(ckpt):
    return export_ernie(str(ckpt["ckpt"]), str(ckpt["dir"] / "cls_export"))


def dygraph_rows(model, tok, a, b=None):
    """Per example, unpadded: (logits or pooled, all hidden states)."""
    out = []
    with paddle.no_grad():
        for i, t in enumerate(a):
            ids, types = tok.encode(t, None if b is None else b[i])
            x, y = paddle.to_tensor([ids]), paddle.to_tensor([types])
            if isinstance(model, ErnieModel):
                _, pooled, hs = model(x, y, output_hidden_states=True)
                out.append((pooled.numpy()[0], [h.numpy()[0] for h in hs]))
            else:
                out.append((model(x, y).numpy()[0], None))
    return out


# ---------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------
def test_export_files_and_meta(ckpt, cls_export):
    assert sorted(os.listdir(cls_export)) == ["model.json", "model.pdiparams", META_FILE, "vocab.txt"]
    meta = read_meta(cls_export)
    assert [i["name"] for i in meta["inputs"]] == ["src_ids", "sent_ids"]
    assert meta["outputs"] == ["logits"]
    assert meta["model"] == {"kind": "sequence_classification", "num_labels": 3}
    assert meta["tokenizer"]["vocab_file"] == "vocab.txt"
    assert meta["config"]["hidden_size"] == 32
    assert Predictor(cls_export).input_names == ["src_ids", "sent_ids"]


def test_export_inference_model_keeps_modes_and_plain_meta(tmp_path, ckpt):
    class Wrapper(paddle.nn.Layer):  # built in train mode around a model in eval mode
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, src_ids, sent_ids):
            return self.m(src_ids, sent_ids)

    model = ckpt["model"]
    assert not model.training
    spec = [paddle.static.InputSpec([None, None], "int64", n) for n in ("src_ids", "sent_ids")]
    export_inference_model(Wrapper(model), str(tmp_path / "w"), spec)
    assert not model.training and not model.dropout.training  # dropout stays off
    # without extra meta the file is what BestInferenceModelExporter always wrote
    meta = json.loads((tmp_path / "w" / META_FILE).read_text())
    assert set(meta) == {"prefix", "inputs", "outputs"}


@pytest.mark.parametrize("spec,want", [("pooler", ("pooler", 2)), ("cls", ("layer", 2)),
                                       ("layer0", ("layer", 0)), ("layer1", ("layer", 1)),
                                       ("layer-1", ("layer", 2)), ("LAYER_2", ("layer", 2))])
def test_parse_encode_layer(spec, want):
    assert parse_encode_layer(spec, 2) == want


@pytest.mark.parametrize("spec", ["layer3", "layer-4", "mean", ""])
def test_parse_encode_layer_rejects(spec):
    with pytest.raises(ValueError):
        parse_encode_layer(spec, 2)


def test_classifier_text_predictor_matches_dygraph(ckpt, cls_export):
    ref = dygraph_rows(ckpt["model"], ckpt["tok"], TEXTS, PAIRS)
    # batch_size 3: two batches, padded differently; results must not depend on padding
    p = TextPredictor(cls_export, batch_size=3)
    logits, = p.predict(TEXTS, PAIRS)
    assert logits.shape == (4, 3)
    np.testing.assert_allclose(logits, np.stack([r[0] for r in ref]), atol=1e-5)
    single, = p.predict(TEXTS[0])
    np.testing.assert_allclose(single[0], dygraph_rows(ckpt["model"], ckpt["tok"], TEXTS[:1])[0][0],
                               atol=1e-5)


def test_bigram_model_exports_and_predicts_like_dygraph(ckpt, tmp_path):
    """Character-bigram embeddings (bigram_buckets) are computed from the ids inside the graph:
    the export takes the same inputs and predicts what dygraph does, whatever the padding."""
    paddle.seed(12)
    model = ErnieForSequenceClassification(tiny_config(ckpt["tok"].vocab_size, bigram_buckets=31), num_labels=3)
    model.eval()
    save_pretrained(model, str(tmp_path / "ckpt"))
    (tmp_path / "ckpt" / "vocab.txt").write_text(ckpt["vocab"].read_text(encoding="utf-8"), encoding="utf-8")
    logits, = TextPredictor(export_ernie(str(tmp_path / "ckpt"), str(tmp_path / "exp")), batch_size=3).predict(
        TEXTS, PAIRS)
    np.testing.assert_allclose(logits, np.stack([r[0] for r in dygraph_rows(model, ckpt["tok"], TEXTS, PAIRS)]),
                               atol=1e-5)


@pytest.mark.parametrize("layer,index", [("pooler", None), ("layer0", 0), ("layer1", 1), ("cls", 2)])
def test_encoder_export_matches_hidden_states(ckpt, layer, index):
    out = ckpt["dir"] / f"enc_{layer}"
    export_ernie(str(ckpt["ckpt"]), str(out), encode_layer=layer)
    enc = ErnieModel(ckpt["model"].config)
    load_into(enc, str(ckpt["ckpt"]))
    enc.eval()
    ref = dygraph_rows(enc, ckpt["tok"], TEXTS)
    emb, seq = TextPredictor(str(out), batch_size=2).predict(TEXTS)
    assert read_meta(out)["model"]["encode_layer"] == ("pooler" if layer == "pooler" else f"layer{index}")
    for i, (pooled, hs) in enumerate(ref):
        h = hs[2 if index is None else index]
        np.testing.assert_allclose(emb[i], pooled if index is None else h[0], atol=1e-5)
        assert seq[i].shape == h.shape  # cut to the example's own length
        np.testing.assert_allclose(seq[i], h, atol=1e-5)


def test_pos_ids_and_input_mask_inputs(ckpt):
    out = ckpt["dir"] / "enc_full"
    export_ernie(str(ckpt["ckpt"]), str(out), encode_layer="cls", with_pos_ids=True,
                 with_input_mask=True)
    pred = Predictor(str(out))
    assert pred.input_names == ["src_ids", "sent_ids", "pos_ids", "input_mask"]
    ids, types = ckpt["tok"].encode(TEXTS[0])
    n = len(ids)
    src = np.array([ids + [7, 8, 9]], dtype=np.int64)  # real-looking ids in the tail
    sent = np.array([types + [0, 0, 0]], dtype=np.int64)
    pos = np.arange(n + 3, dtype=np.int64)[None]
    mask = np.array([[1.0] * n + [0.0] * 3], dtype=np.float32)

    def rows(*feed):  # the sequence output's rows of the n real tokens
        return pred.predict(list(feed))[1][0, :n]

    short = rows(src[:, :n], sent[:, :n], pos[:, :n], mask[:, :n])
    np.testing.assert_allclose(rows(src, sent, pos, mask), short, atol=1e-5)  # the mask hides the tail
    # random weights: attention is near uniform, so effects are small but far above the 1e-5 noise
    assert np.abs(rows(src, sent, pos, np.ones_like(mask)) - short).max() > 1e-3
    assert np.abs(rows(src[:, :n], sent[:, :n], pos[:, :n] + 5, mask[:, :n]) - short).max() > 1e-3


def test_text_predictor_ids_and_errors(ckpt, cls_export):
    p = TextPredictor(cls_export)
    enc = [ckpt["tok"].encode(t) for t in TEXTS]
    by_text, = p.predict(TEXTS)
    by_ids, = p.predict_ids([e[0] for e in enc], [e[1] for e in enc])
    np.testing.assert_allclose(by_ids, by_text, atol=1e-6)
    vocab = read_meta(cls_export)["config"]["vocab_size"]
    with pytest.raises(ValueError, match=r"slot 0 \('src_ids'\): values must lie in"):
        p.predict_ids([[1, vocab, 2]])
    with pytest.raises(ValueError, match=r"slot 1 \('sent_ids'\): values must lie in \[0, 2\)"):
        p.predict_ids([[1, 5, 2]], [[0, 2, 0]])
    with pytest.raises(ValueError, match=r"src_ids'\): shape \[1, 65\] exceeds the model's largest \[-1, 64\]"):
        p.predict_ids([[1] * 65])
    with pytest.raises(ValueError, match="second ones"):
        p.predict(["a", "b"], ["c"])
    bare = TextPredictor(cls_export, tokenizer=None)
    os.rename(os.path.join(cls_export, META_FILE), os.path.join(cls_export, "m.bak"))
    try:
        no_meta = TextPredictor(cls_export)  # an export without meta still takes ids
        with pytest.raises(ValueError, match="no tokenizer"):
            no_meta.predict(["x"])
        np.testing.assert_allclose(no_meta.predict_ids([enc[0][0]], [enc[0][1]])[0][0], by_text[0], atol=1e-6)
    finally:
        os.rename(os.path.join(cls_export, "m.bak"), os.path.join(cls_export, META_FILE))
    assert bare.tokenizer is not None


def test_legacy_params_dir_and_propeller_checkpoint(ckpt, tmp_path):
    """A legacy ERNIE 1.0 params/ dir (vocab beside it) and a Propeller model_<step>/ whose
    tensors carry the task model's ``net.`` prefix both export and predict like dygraph."""
    model = ckpt["model"]
    root = tmp_path / "ernie1.0"
    (root / "params").mkdir(parents=True)
    for name, t in model.state_dict().items():
        write_tensor(str(root / "params" / ours_to_legacy(name)), t.numpy())
    cfg = {k: v for k, v in model.config.to_dict().items() if k != "layer_norm_eps"}
    (root / "ernie_config.json").write_text(json.dumps(cfg))
    (root / "vocab.txt").write_text(ckpt["vocab"].read_text(encoding="utf-8"), encoding="utf-8")
    assert export_main(["--model_dir", str(root / "params"), "--out", str(tmp_path / "e1")]) == 0
    assert read_meta(tmp_path / "e1")["config"]["layer_norm_eps"] == 1e-5  # the 1.x default
    legacy = ErnieForSequenceClassification(model.config.copy(layer_norm_eps=1e-5), num_labels=3)
    load_into(legacy, str(root / "params"))
    legacy.eval()
    ref = np.stack([r[0] for r in dygraph_rows(legacy, ckpt["tok"], TEXTS)])
    np.testing.assert_allclose(TextPredictor(str(tmp_path / "e1")).predict(TEXTS)[0], ref, atol=1e-5)

    step = tmp_path / "run" / "model_20"
    step.mkdir(parents=True)
    paddle.save({"net." + k: v for k, v in model.state_dict().items()}, str(step / "model_state.pdparams"))
    model.config.to_json(str(tmp_path / "cfg.json"))
    assert export_main(["--model_dir", str(tmp_path / "run"), "--out", str(tmp_path / "e2"),
                        "--ernie_config", str(tmp_path / "cfg.json"),
                        "--vocab_file", str(ckpt["vocab"])]) == 0
    ref = np.stack([r[0] for r in dygraph_rows(model, ckpt["tok"], TEXTS)])
    np.testing.assert_allclose(TextPredictor(str(tmp_path / "e2")).predict(TEXTS)[0], ref, atol=1e-5)
    # no config anywhere: a clear error, nothing written
    assert export_main(["--model_dir", str(tmp_path / "run"), "--out", str(tmp_path / "e3")]) == 2
    assert not (tmp_path / "e3").exists()


# ---------------------------------------------------------------------------------------
# the C++ demo's data format
# ---------------------------------------------------------------------------------------
def test_parse_line_fields_and_errors():
    f = demo_data.parse_line("1 3 1:1 5 2;1 3 1:0 1 2;1 3 1:0 0 0;1 3 1:1 1 1\n")
    assert list(f) == ["src_ids", "pos_ids", "sent_ids", "self_attn_mask"]
    assert f["src_ids"].shape == (1, 3, 1) and f["src_ids"].dtype == np.int64
    assert f["self_attn_mask"].dtype == np.float32
    assert list(demo_data.parse_line("1 2:1 2;1 2:0 0;")) == ["src_ids", "sent_ids"]  # trailing ';'
    for bad, match in [("1 3:1 2", "2 fields|fields"), ("1 3:1 2;1 3:0 0 0", "needs 3 values"),
                       ("1 x:1;1 1:0", "shape"), ("1 1:a;1 1:0", "int64"), ("1 1 1 1;1 1:0", "shape:data"),
                       ("1 0:;1 0:", "bad shape")]:
        with pytest.raises(ValueError, match=match):
            demo_data.parse_line(bad)


def test_keep_mask_layouts():
    m = np.array([[1, 1, 0]], dtype=np.float32)
    want = m
    outer = m[:, :, None] * m[:, None, :]
    additive = (1 - outer) * -10000.0
    for mask in (m, m[..., None], outer, np.stack([outer, outer], 1), additive,
                 (1 - m[..., None]) * -1e4):
        np.testing.assert_array_equal(demo_data._keep_mask(mask, 1, 3), want)
    np.testing.assert_array_equal(demo_data._keep_mask(np.zeros((1, 3)), 1, 3), [[1, 1, 1]])  # additive, no pad
    causal = np.tril(np.ones((1, 3, 3), np.float32))
    with pytest.raises(ValueError, match="not a padding mask"):
        demo_data._keep_mask(causal, 1, 3)


def test_demo_make_data_and_run(ckpt, cls_export, tmp_path, capsys):
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("text_a\ttext_b\tlabel\n" + "".join(f"{a}\t{b}\t1\n" for a, b in zip(TEXTS, PAIRS)),
                   encoding="utf-8")
    data = tmp_path / "sample"
    assert demo.main(["make_data", "--vocab_file", str(ckpt["vocab"]), "--data", str(tsv),
                      "--out", str(data), "--batch_size", "3", "--max_seqlen", "24"]) == 0
    lines = data.read_text().splitlines()
    assert len(lines) == 2 and lines[0].startswith("3 24 1:1 ")  # [CLS] first, padded to 24
    capsys.readouterr()
    assert demo.main(["run", "--model_dir", cls_export, "--data", str(data)]) == 0
    out = capsys.readouterr()
    got = np.array([[float(x) for x in ln.split("\t")] for ln in out.out.splitlines()])
    logits = np.stack([r[0] for r in dygraph_rows(ckpt["model"], ckpt["tok"], TEXTS, PAIRS)])
    e = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(got, e / e.sum(1, keepdims=True), atol=2e-6)
    assert "Run 4 samples, average latency:" in out.err
    # the same file through a model that takes positions and the mask itself
    full = ckpt["dir"] / "cls_full"
    export_ernie(str(ckpt["ckpt"]), str(full), with_pos_ids=True, with_input_mask=True)
    assert demo.main(["run", "--model_dir", str(full), "--data", str(data)]) == 0
    got2 = np.array([[float(x) for x in ln.split("\t")] for ln in capsys.readouterr().out.splitlines()])
    np.testing.assert_allclose(got2, got, atol=2e-6)
    # a mask that disagrees with the padding cannot be dropped silently for a 2-input model
    bad = lines[0].rsplit(";", 1)[0] + ";" + lines[0].rsplit(";", 1)[1].split(":")[0] + ":" + \
        " ".join(["1"] * 72)
    (tmp_path / "bad").write_text(bad + "\n")
    assert demo.main(["run", "--model_dir", cls_export, "--data", str(tmp_path / "bad")]) == 2
    assert "disagrees" in capsys.readouterr().err


def test_probabilities_passthrough_and_softmax():
    p = np.array([[0.2, 0.8], [1.0, 0.0]])
    np.testing.assert_array_equal(demo_data.probabilities(p), p)
    np.testing.assert_allclose(demo_data.probabilities(np.array([[0.0, np.log(3.0)]])), [[0.25, 0.75]])


# ---------------------------------------------------------------------------------------
# ONNX
# ---------------------------------------------------------------------------------------
def test_onnx_export_matches_onnxruntime(ckpt, tmp_path, capsys):
    try:
        import onnxruntime as ort
        import paddle2onnx  # noqa: F401
    except ImportError as e:  # an optional peer (requirements-test.txt)
        pytest.skip(f"ONNX check needs onnxruntime and paddle2onnx: {e}")
    from inference import onnx_export
    src = ckpt["dir"] / "enc_onnx"
    export_ernie(str(ckpt["ckpt"]), str(src), encode_layer="layer1", with_pos_ids=True)
    out = tmp_path / "enc.onnx"
    assert onnx_export.main(["--model_dir", str(src), "--out", str(out), "--seq", "12"]) == 0
    printed = capsys.readouterr().out
    assert "max abs diff embedding" in printed and "max abs diff sequence" in printed
    # and on our own: onnxruntime against the dygraph model on real text
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["src_ids", "sent_ids", "pos_ids"]
    enc = ErnieModel(ckpt["model"].config)
    load_into(enc, str(ckpt["ckpt"]))
    enc.eval()
    (_, hs), = dygraph_rows(enc, ckpt["tok"], TEXTS[:1], PAIRS[:1])
    ids, types = ckpt["tok"].encode(TEXTS[0], PAIRS[0])
    emb, seq = sess.run(None, {"src_ids": np.array([ids]), "sent_ids": np.array([types]),
                               "pos_ids": np.arange(len(ids))[None]})
    np.testing.assert_allclose(seq[0], hs[1], atol=1e-5)
    np.testing.assert_allclose(emb[0], hs[1][0], atol=1e-5)


# ---------------------------------------------------------------------------------------
# ernie_encoder.py (FAQ1)
# ---------------------------------------------------------------------------------------
def test_read_texts_layouts(tmp_path):
    from ernie.data.corpus import read_texts
    f = tmp_path / "t.tsv"
    f.write_text("label\ttext_b\ttext_a\n1\tb1\ta1\n0\tb2\ta2\n", encoding="utf-8")
    assert read_texts(f) == [("a1", "b1"), ("a2", "b2")]
    f.write_text("a1\t1\na2\t0\n", encoding="utf-8")  # text_a<TAB>label
    assert read_texts(f) == [("a1", None), ("a2", None)]
    f.write_text("a1\tb1\na2\tb2\n\n", encoding="utf-8")
    assert read_texts(f) == [("a1", "b1"), ("a2", "b2")]
    f.write_text("a\tb\tc\td\n", encoding="utf-8")
    with pytest.raises(ValueError, match="text columns"):
        read_texts(f)


def test_ernie_encoder_script(ckpt, tmp_path):
    tsv = tmp_path / "dev.tsv"
    tsv.write_text("text_a\ttext_b\tlabel\n" + "".join(f"{a}\t{b}\t0\n" for a, b in zip(TEXTS, PAIRS)),
                   encoding="utf-8")
    out = tmp_path / "emb"
    cmd = [sys.executable, os.path.join(REPO, "ernie", "ernie_encoder.py"),  # a script path, as in FAQ1
           "--init_pretraining_params", str(ckpt["ckpt"]), "--data_set", str(tsv),
           "--vocab_path", str(ckpt["vocab"]), "--max_seq_len", "16", "--batch_size", "3",
           "--output_dir", str(out)]
    r = subprocess.run(cmd, cwd=str(tmp_path), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ex/s" in r.stderr or "it/s" in r.stderr or "4/4" in r.stderr  # tqdm progress
    cls, top, lens = (np.load(out / n) for n in ("cls_emb.npy", "top_layer_emb.npy", "seq_lens.npy"))
    enc = ErnieModel(ckpt["model"].config)
    load_into(enc, str(ckpt["ckpt"]))
    enc.eval()
    want_lens = [len(ckpt["tok"].encode(a, b, 16)[0]) for a, b in zip(TEXTS, PAIRS)]
    assert lens.tolist() == want_lens and max(want_lens) == 16  # one pair was cut to 16
    assert cls.shape == (4, 32) and top.shape == (sum(want_lens), 32)
    with paddle.no_grad():
        for i, (a, b) in enumerate(zip(TEXTS, PAIRS)):
            ids, types = ckpt["tok"].encode(a, b, 16)
            seq, pooled = enc(paddle.to_tensor([ids]), paddle.to_tensor([types]))
            np.testing.assert_allclose(cls[i], pooled.numpy()[0], atol=1e-5)
            start = sum(want_lens[:i])
            np.testing.assert_allclose(top[start:start + want_lens[i]], seq.numpy()[0], atol=1e-5)
    # the original refuses to clobber earlier results
    r = subprocess.run(cmd, cwd=str(tmp_path), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--overwrite" in r.stderr


# ---------------------------------------------------------------------------------------
# older exports: a legacy-IR .pdmodel with [batch, seq, 1] inputs
# ---------------------------------------------------------------------------------------
LEGACY_EXPORT = '''
import sys
import numpy as np
import paddle

paddle.jit.enable_to_static(True)


class Old(paddle.nn.Layer):
    """Paddle 1.x style inputs [batch, seq, 1]; ops that export in legacy-IR mode."""

    def __init__(self, vocab):
        super().__init__()
        self.word = paddle.nn.Embedding(vocab, 8)
        self.sent = paddle.nn.Embedding(2, 8)
        self.fc = paddle.nn.Linear(8, 3)

    def forward(self, src_ids, sent_ids):
        h = self.word(src_ids[:, :, 0]) + self.sent(sent_ids[:, :, 0])
        return self.fc(h[:, 0])


paddle.seed(2)
m = Old(int(sys.argv[2]))
m.eval()
S = paddle.static.InputSpec
paddle.jit.save(m, sys.argv[1] + "/old", input_spec=[S([None, None, 1], "int64", "src_ids"),
                                                      S([None, None, 1], "int64", "sent_ids")])
np.savez(sys.argv[1] + "/weights.npz", **{k: v.numpy() for k, v in m.state_dict().items()})
'''


def test_text_predictor_on_legacy_pdmodel_export(ckpt, tmp_path):
    script = tmp_path / "old_export.py"
    script.write_text(LEGACY_EXPORT)
    vocab = ckpt["model"].config.vocab_size
    env = dict(os.environ, FLAGS_enable_pir_api="0")
    r = subprocess.run([sys.executable, str(script), str(tmp_path), str(vocab)], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "old.pdmodel").exists() and not (tmp_path / "old.json").exists()
    p = TextPredictor(str(tmp_path / "old"), vocab_file=str(ckpt["vocab"]))
    assert [s.shape for s in p.predictor.input_specs] == [[-1, -1, 1], [-1, -1, 1]]
    logits, = p.predict(TEXTS, PAIRS)
    w = np.load(tmp_path / "weights.npz")
    want = []
    for a, b in zip(TEXTS, PAIRS):
        ids, types = ckpt["tok"].encode(a, b)
        h = w["word.weight"][ids[0]] + w["sent.weight"][types[0]]
        want.append(h @ w["fc.weight"] + w["fc.bias"])
    np.testing.assert_allclose(logits, np.stack(want), atol=1e-5)
