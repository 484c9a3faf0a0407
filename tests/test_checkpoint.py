"""Checkpoints: legacy ERNIE 1.0 params dirs (written by Paddle's own static-graph saver),
PaddleNLP state dicts, our save format, name mapping, strict/partial loading, the convert CLI,
and crash-safe directory writes."""
import json
import os
import shutil

import numpy as np
import paddle
import pytest

from ernie import checkpoint as ckpt
from ernie import legacy_tensor as lt
from ernie.modeling import ErnieConfig, ErnieForPretraining, ErnieForSequenceClassification, ErnieModel
from propeller.fsutil import atomic_dir, atomic_write_text

VOCAB, HIDDEN, LAYERS, HEADS, FFN, MAX_POS, SENT, TASK = 50, 16, 2, 2, 64, 130, 2, 3
# Original-style ernie_config.json: no layer_norm_eps (fluid's layer_norm used 1e-5), and
# max_position 130 so pos_embedding's first dim needs a two-byte varint in the TensorDesc.
LEGACY_CONFIG = {
    "attention_probs_dropout_prob": 0.1, "hidden_act": "relu", "hidden_dropout_prob": 0.1,
    "hidden_size": HIDDEN, "initializer_range": 0.02, "max_position_embeddings": MAX_POS,
    "num_attention_heads": HEADS, "num_hidden_layers": LAYERS, "sent_type_vocab_size": SENT,
    "task_type_vocab_size": TASK, "use_task_id": True, "vocab_size": VOCAB,
}


def _legacy_arrays(seed=0):
    rng = np.random.RandomState(seed)
    shapes = {
        "word_embedding": [VOCAB, HIDDEN], "pos_embedding": [MAX_POS, HIDDEN],
        "sent_embedding": [SENT, HIDDEN], "task_embedding": [TASK, HIDDEN],
        "pre_encoder_layer_norm_scale": [HIDDEN], "pre_encoder_layer_norm_bias": [HIDDEN],
        "pooled_fc.w_0": [HIDDEN, HIDDEN], "pooled_fc.b_0": [HIDDEN],
        "mask_lm_trans_fc.w_0": [HIDDEN, HIDDEN], "mask_lm_trans_fc.b_0": [HIDDEN],
        "mask_lm_trans_layer_norm_scale": [HIDDEN], "mask_lm_trans_layer_norm_bias": [HIDDEN],
        "mask_lm_out_fc.b_0": [VOCAB], "next_sent_fc.w_0": [HIDDEN, 2], "next_sent_fc.b_0": [2],
    }
    for i in range(LAYERS):
        p = f"encoder_layer_{i}_"
        for part in ("query", "key", "value", "output"):
            shapes[f"{p}multi_head_att_{part}_fc.w_0"] = [HIDDEN, HIDDEN]
            shapes[f"{p}multi_head_att_{part}_fc.b_0"] = [HIDDEN]
        shapes.update({f"{p}ffn_fc_0.w_0": [HIDDEN, FFN], f"{p}ffn_fc_0.b_0": [FFN],
                       f"{p}ffn_fc_1.w_0": [FFN, HIDDEN], f"{p}ffn_fc_1.b_0": [HIDDEN]})
        for ln in ("post_att", "post_ffn"):
            shapes[f"{p}{ln}_layer_norm_scale"] = [HIDDEN]
            shapes[f"{p}{ln}_layer_norm_bias"] = [HIDDEN]
    arrays = {}
    for name, shape in shapes.items():
        if name.endswith("_scale"):
            arr = 1.0 + 0.1 * rng.randn(*shape)
        else:
            arr = 0.3 * rng.randn(*shape)
        arrays[name] = arr.astype("float32")
    return arrays


def _paddle_save_vars(dirname, arrays, filename=None):
    """Write ``arrays`` with Paddle's own static-graph saver (the Paddle 1.x params format)."""
    paddle.enable_static()
    try:
        main, startup = paddle.static.Program(), paddle.static.Program()
        with paddle.static.scope_guard(paddle.static.Scope()):
            with paddle.static.program_guard(main, startup):
                params = [paddle.static.create_parameter(shape=list(a.shape), dtype=str(a.dtype), name=n)
                          for n, a in arrays.items()]
            exe = paddle.static.Executor(paddle.CPUPlace())
            exe.run(startup)
            for name, arr in arrays.items():
                paddle.static.global_scope().find_var(name).get_tensor().set(arr, paddle.CPUPlace())
            paddle.static.save_vars(exe, dirname, main, vars=params, filename=filename)
    finally:
        paddle.disable_static()


@pytest.fixture(scope="module")
def legacy(tmp_path_factory):
    """An ERNIE 1.0 release-style dir: root/params/<one file per var> + root/ernie_config.json."""
    root = tmp_path_factory.mktemp("ernie1")
    arrays = _legacy_arrays()
    _paddle_save_vars(str(root / "params"), arrays)
    _paddle_save_vars(str(root / "combined"), arrays, filename="all.bin")
    (root / "ernie_config.json").write_text(json.dumps(LEGACY_CONFIG))
    return root, arrays


def _copy_legacy(legacy, tmp_path):
    root, arrays = legacy
    dst = tmp_path / "copy"
    shutil.copytree(root / "params", dst / "params")
    shutil.copy(root / "ernie_config.json", dst / "ernie_config.json")
    return dst, dict(arrays)


# ---------------------------------------------------------------------------- numpy reference

def _ln(x, g, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def _numpy_ernie(a, ids, sent, task, eps=1e-5):
    """ERNIE 1.0 forward by hand from the legacy arrays (float64): sequence, pooled, MLM, NSP."""
    a = {k: v.astype(np.float64) for k, v in a.items()}

    def fc(h, name):
        return h @ a[name + ".w_0"] + a[name + ".b_0"]

    batch, seq = ids.shape
    word = a["word_embedding"].copy()
    word[0] = 0.0  # our word embedding has padding_idx=0 (as PaddleNLP): id 0 embeds to zeros
    x = word[ids] + a["pos_embedding"][np.arange(seq)][None] + a["sent_embedding"][sent] + a["task_embedding"][task]
    x = _ln(x, a["pre_encoder_layer_norm_scale"], a["pre_encoder_layer_norm_bias"], eps)
    bias = np.where(ids == 0, -1e4, 0.0)[:, None, None, :]  # mask padded keys
    d = HIDDEN // HEADS

    def heads(h):
        return h.reshape(batch, seq, HEADS, d).transpose(0, 2, 1, 3)

    for i in range(LAYERS):
        p = f"encoder_layer_{i}_"
        q, k, v = (heads(fc(x, f"{p}multi_head_att_{n}_fc")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d) + bias
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, seq, HIDDEN)
        x = _ln(x + fc(ctx, f"{p}multi_head_att_output_fc"), a[f"{p}post_att_layer_norm_scale"],
                a[f"{p}post_att_layer_norm_bias"], eps)
        h = np.maximum(fc(x, f"{p}ffn_fc_0"), 0.0)
        x = _ln(x + fc(h, f"{p}ffn_fc_1"), a[f"{p}post_ffn_layer_norm_scale"], a[f"{p}post_ffn_layer_norm_bias"], eps)
    pooled = np.tanh(fc(x[:, 0], "pooled_fc"))
    t = np.maximum(fc(x.reshape(-1, HIDDEN), "mask_lm_trans_fc"), 0.0)
    t = _ln(t, a["mask_lm_trans_layer_norm_scale"], a["mask_lm_trans_layer_norm_bias"], eps)
    mlm = t @ a["word_embedding"].T + a["mask_lm_out_fc.b_0"]  # tied to the full embedding matrix
    nsp = fc(pooled, "next_sent_fc")
    return x, pooled, mlm, nsp


IDS = np.array([[1, 5, 9, 23, 2, 7, 3], [1, 44, 12, 2, 0, 0, 0]], dtype="int64")
SENT_IDS = np.array([[0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 0, 0, 0]], dtype="int64")
TASK_IDS = np.array([[1] * 7, [2] * 7], dtype="int64")


def _state_numpy(model):
    return {k: v.numpy() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------------------- legacy params dir

def test_legacy_dir_loads_and_matches_numpy_forward(legacy):
    root, arrays = legacy
    config = ckpt.load_config(root)
    assert config.layer_norm_eps == ckpt.LEGACY_LAYER_NORM_EPS and config.use_task_id
    model = ErnieForPretraining(config)
    report = ckpt.load_into(model, root)
    assert report.kind == "legacy"
    assert not report.not_loaded and not report.unused and not report.mismatched
    state = _state_numpy(model)
    assert len(report.loaded) == len(state) == len(arrays)
    for legacy_name, arr in arrays.items():
        ours = ckpt.legacy_to_ours(legacy_name)
        key = ours if ours.startswith("cls.") else "ernie." + ours  # encoder sits under "ernie."
        np.testing.assert_array_equal(state[key], arr, err_msg=legacy_name)

    model.eval()
    ids, sent, task = (paddle.to_tensor(x) for x in (IDS, SENT_IDS, TASK_IDS))
    seq, pooled = model.ernie(ids, token_type_ids=sent, task_type_ids=task)
    mlm, nsp = model(ids, token_type_ids=sent, task_type_ids=task)
    ref_seq, ref_pooled, ref_mlm, ref_nsp = _numpy_ernie(arrays, IDS, SENT_IDS, TASK_IDS)
    np.testing.assert_allclose(seq.numpy(), ref_seq, atol=1e-5, rtol=0)
    np.testing.assert_allclose(pooled.numpy(), ref_pooled, atol=1e-5, rtol=0)
    np.testing.assert_allclose(mlm.numpy(), ref_mlm, atol=1e-5, rtol=0)
    np.testing.assert_allclose(nsp.numpy(), ref_nsp, atol=1e-5, rtol=0)


def test_params_dir_itself_and_encoder_only_targets(legacy):
    root, arrays = legacy
    config = ckpt.load_config(root)
    # the params/ dir itself is recognised too, its config found in the parent
    state, cfg, kind = ckpt.load_state(root / "params")
    assert kind == "legacy" and cfg.to_dict() == config.to_dict()
    assert "ernie.embeddings.word_embeddings.weight" in state and "cls.predictions.decoder_bias" in state

    # pretraining checkpoint -> bare encoder: the "ernie." prefix is stripped, heads unused
    enc = ErnieModel(config)
    report = ckpt.load_into(enc, root / "params")
    assert sorted(report.unused) == sorted(k for k in state if k.startswith("cls."))
    assert not report.not_loaded
    np.testing.assert_array_equal(enc.encoder.layers[1].linear2.weight.numpy(), arrays["encoder_layer_1_ffn_fc_1.w_0"])

    # pretraining checkpoint -> classifier: new head left as initialized, pretraining heads unused
    clf = ErnieForSequenceClassification(config, num_labels=3)
    before = clf.classifier.weight.numpy()
    report = ckpt.load_into(clf, root)
    assert sorted(report.not_loaded) == ["classifier.bias", "classifier.weight"]
    np.testing.assert_array_equal(clf.classifier.weight.numpy(), before)
    np.testing.assert_array_equal(clf.ernie.pooler.dense.weight.numpy(), arrays["pooled_fc.w_0"])


def test_numpy_codec_is_byte_identical_to_paddle(legacy, tmp_path):
    root, arrays = legacy
    for name, arr in arrays.items():
        path = root / "params" / name
        assert lt.tensor_bytes(arr) == path.read_bytes(), name
        np.testing.assert_array_equal(lt.read_tensor(path), arr)
        with open(path, "rb") as f:  # file objects work as well as paths
            np.testing.assert_array_equal(lt.read_tensor(f), arr)
    # combined file: Paddle writes the records sorted by name
    combined = lt.read_combined(root / "combined" / "all.bin", sorted(arrays))
    assert list(combined) == sorted(arrays)
    for name in arrays:
        np.testing.assert_array_equal(combined[name], arrays[name])
    assert len(lt.read_combined(root / "combined" / "all.bin")) == len(arrays)
    with pytest.raises(lt.LegacyTensorError, match="more variables than names"):
        lt.read_combined(root / "combined" / "all.bin", sorted(arrays)[:-1])

    # other dtypes, a LoD, and bf16 (read as float32), via Paddle's low-level writer
    from paddle.base import core
    x = np.arange(-3, 3).reshape(2, 3)
    for dtype in ("float16", "float64", "int32", "int64", "uint8", "int8", "bool", "bfloat16"):
        t = paddle.to_tensor(x.astype("float32")).astype(dtype)
        path = str(tmp_path / dtype)
        core.save_dense_tensor(t.value().get_tensor(), path)
        got = lt.read_tensor(path)
        if dtype == "bfloat16":
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, t.astype("float32").numpy())
        else:
            assert got.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(got, t.numpy())
            assert lt.tensor_bytes(got) == open(path, "rb").read(), dtype
    t = core.DenseTensor()
    t.set(np.arange(6, dtype="int64").reshape(6, 1), paddle.CPUPlace())
    t.set_lod([[0, 2, 6]])
    core.save_dense_tensor(t, str(tmp_path / "lod"))
    np.testing.assert_array_equal(lt.read_tensor(tmp_path / "lod").ravel(), np.arange(6))
    assert lt.tensor_bytes(np.arange(6, dtype="int64").reshape(6, 1), lod=[[0, 2, 6]]) == \
        (tmp_path / "lod").read_bytes()
    # numpy-written file read back by Paddle
    lt.write_tensor(tmp_path / "np_written", arrays["pos_embedding"])
    np.testing.assert_array_equal(np.array(core.load_dense_tensor(str(tmp_path / "np_written"))),
                                  arrays["pos_embedding"])


def test_read_tensor_errors_name_the_file(legacy, tmp_path):
    root, _ = legacy
    good = (root / "params" / "pos_embedding").read_bytes()
    cut = tmp_path / "pos_embedding"
    cut.write_bytes(good[:-5])
    with pytest.raises(lt.LegacyTensorError, match=r"pos_embedding: truncated file.*data for shape \[130, 16\]"):
        lt.read_tensor(cut)
    cut.write_bytes(good[:10])
    with pytest.raises(lt.LegacyTensorError, match="truncated file"):
        lt.read_tensor(cut)
    bad = tmp_path / "bad_version"
    bad.write_bytes(b"\x07\x00\x00\x00" + good[4:])
    with pytest.raises(lt.LegacyTensorError, match=r"bad_version: unsupported LoDTensor version 7"):
        lt.read_tensor(bad)
    # data_type 99 in the TensorDesc (first field byte after the 0x08 tag at offset 20)
    data = bytearray(lt.tensor_bytes(np.zeros([2], "float32")))
    assert data[20] == 0x08 and data[21] == 5
    data[21] = 99
    odd = tmp_path / "odd_dtype"
    odd.write_bytes(bytes(data))
    with pytest.raises(lt.LegacyTensorError, match=r"odd_dtype: unknown data_type 99"):
        lt.read_tensor(odd)
    trailing = tmp_path / "trailing"
    trailing.write_bytes(good + b"\x00")
    with pytest.raises(lt.LegacyTensorError, match="1 bytes after the tensor"):
        lt.read_tensor(trailing)
    with pytest.raises(ValueError, match="cannot write dtype"):
        lt.tensor_bytes(np.array(["a"]))
    # and a legacy dir with a damaged file fails naming that file
    broken, _ = _copy_legacy(legacy, tmp_path)
    (broken / "params" / "pos_embedding").write_bytes(good[:-5])
    with pytest.raises(lt.LegacyTensorError, match="pos_embedding: truncated"):
        ckpt.load_state(broken)


def test_strict_load_names_every_bad_tensor(legacy, tmp_path):
    src, arrays = _copy_legacy(legacy, tmp_path)
    params = src / "params"
    os.remove(params / "encoder_layer_1_ffn_fc_0.b_0")                                   # missing
    lt.write_tensor(params / "encoder_layer_2_ffn_fc_0.b_0", np.zeros([FFN], "float32"))  # extra (layer 2 of 2)
    lt.write_tensor(params / "word_embedding", np.zeros([VOCAB + 10, HIDDEN], "float32"))  # vocab mismatch
    lt.write_tensor(params / "word_embedding_moment1_0", np.zeros([1], "float32"))        # optimizer state: ignored
    model = ErnieForPretraining(ckpt.load_config(src))
    before = _state_numpy(model)
    with pytest.raises(ValueError) as e:
        ckpt.load_into(model, src)
    msg = str(e.value)
    assert "ernie.encoder.layers.1.linear1.bias (encoder_layer_1_ffn_fc_0.b_0)" in msg
    assert "ernie.encoder.layers.2.linear1.bias (encoder_layer_2_ffn_fc_0.b_0)" in msg
    assert "ernie.embeddings.word_embeddings.weight (word_embedding): checkpoint [60, 16] vs model [50, 16]" in msg
    assert "moment" not in msg
    after = _state_numpy(model)
    assert all(np.array_equal(before[k], after[k]) for k in before), "a failed strict load must load nothing"

    # each problem alone is an error too
    for break_it in ("missing", "extra", "shape"):
        one, _ = _copy_legacy(legacy, tmp_path / break_it)
        if break_it == "missing":
            os.remove(one / "params" / "pooled_fc.b_0")
            expect = r"missing from the checkpoint \(1\): ernie.pooler.dense.bias \(pooled_fc.b_0\)"
        elif break_it == "extra":
            lt.write_tensor(one / "params" / "some_unknown_var", np.zeros([3], "float32"))
            expect = r"not in the model \(1\): some_unknown_var"
        else:
            lt.write_tensor(one / "params" / "sent_embedding", np.zeros([4, HIDDEN], "float32"))
            expect = r"token_type_embeddings.weight \(sent_embedding\): checkpoint \[4, 16\] vs model \[2, 16\]"
        with pytest.raises(ValueError, match=expect):
            ckpt.load_into(ErnieForPretraining(ckpt.load_config(one)), one)


def test_partial_warm_start_reports_what_was_not_loaded(legacy, tmp_path):
    src, arrays = _copy_legacy(legacy, tmp_path)
    params = src / "params"
    os.remove(params / "encoder_layer_1_ffn_fc_0.b_0")
    lt.write_tensor(params / "encoder_layer_2_ffn_fc_0.b_0", np.zeros([FFN], "float32"))
    lt.write_tensor(params / "word_embedding", np.zeros([VOCAB + 10, HIDDEN], "float32"))
    model = ErnieForPretraining(ckpt.load_config(src))
    before = _state_numpy(model)
    report = ckpt.load_into(model, src, strict=False)
    assert sorted(report.not_loaded) == ["ernie.embeddings.word_embeddings.weight",
                                         "ernie.encoder.layers.1.linear1.bias"]
    assert report.unused == ["ernie.encoder.layers.2.linear1.bias"]
    assert report.mismatched == [("ernie.embeddings.word_embeddings.weight", [60, 16], [50, 16])]
    assert "not loaded" in str(report) and "unused" in str(report)
    after = _state_numpy(model)
    np.testing.assert_array_equal(after["ernie.embeddings.word_embeddings.weight"],
                                  before["ernie.embeddings.word_embeddings.weight"])
    np.testing.assert_array_equal(after["ernie.encoder.layers.1.linear1.bias"],
                                  before["ernie.encoder.layers.1.linear1.bias"])
    np.testing.assert_array_equal(after["ernie.encoder.layers.1.linear1.weight"],
                                  arrays["encoder_layer_1_ffn_fc_0.w_0"])

    # predicate: load only the encoder; the heads keep their initial values and are "skipped"
    root, _ = legacy
    model = ErnieForPretraining(ckpt.load_config(root))
    before = _state_numpy(model)
    report = ckpt.load_into(model, root, predicate=lambda name: not name.startswith("cls."))
    assert report.skipped and all(n.startswith("cls.") for n in report.skipped)
    assert not report.not_loaded and not report.unused
    after = _state_numpy(model)
    np.testing.assert_array_equal(after["cls.seq_relationship.weight"], before["cls.seq_relationship.weight"])
    np.testing.assert_array_equal(after["ernie.pooler.dense.bias"], arrays["pooled_fc.b_0"])


# ---------------------------------------------------------------------------- PaddleNLP

def _paddlenlp():
    return pytest.importorskip("paddlenlp.transformers")


def _pnlp_config(pnlp, **kw):
    return pnlp.ErnieConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                            num_attention_heads=HEADS, intermediate_size=FFN, max_position_embeddings=64,
                            type_vocab_size=4, hidden_act="gelu", **kw)


def test_paddlenlp_pretraining_checkpoint_matches(tmp_path):
    pnlp = _paddlenlp()
    paddle.seed(1)
    theirs = pnlp.ErnieForPretraining(_pnlp_config(pnlp, use_task_id=True, task_type_vocab_size=3))
    theirs.eval()
    theirs.save_pretrained(str(tmp_path))
    state, config, kind = ckpt.load_state(tmp_path)
    assert kind == "paddlenlp" and config.hidden_act == "gelu" and config.use_task_id
    assert "cls.predictions.decoder.weight" not in state and "cls.predictions.decoder.bias" not in state

    ours = ErnieForPretraining(config)
    report = ckpt.load_into(ours, tmp_path)
    assert sorted(report.dropped) == ["cls.predictions.decoder.bias", "cls.predictions.decoder.weight"]
    assert not report.not_loaded and not report.unused
    ours.eval()
    ids, sent = paddle.to_tensor(IDS), paddle.to_tensor(SENT_IDS % 4)
    seq_t, pooled_t = theirs.ernie(ids, token_type_ids=sent)[:2]
    mlm_t, nsp_t = theirs(ids, token_type_ids=sent)[:2]
    seq_o, pooled_o = ours.ernie(ids, token_type_ids=sent)
    mlm_o, nsp_o = ours(ids, token_type_ids=sent)
    np.testing.assert_allclose(seq_o.numpy(), seq_t.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(pooled_o.numpy(), pooled_t.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(mlm_o.numpy(), mlm_t.numpy().reshape(mlm_o.shape), atol=1e-5, rtol=0)
    np.testing.assert_allclose(nsp_o.numpy(), nsp_t.numpy(), atol=1e-5, rtol=0)

    # an untied output projection cannot be represented by our head: warned about, then dropped
    raw = {k: v.numpy() for k, v in theirs.state_dict().items()}
    raw["cls.predictions.decoder.weight"] = raw["cls.predictions.decoder.weight"] + 1.0
    with pytest.warns(UserWarning, match="not equal to the word embeddings"):
        ckpt.load_into(ErnieForPretraining(config), raw)


def test_paddlenlp_encoder_into_ours_and_into_classifier(tmp_path):
    pnlp = _paddlenlp()
    paddle.seed(2)
    theirs = pnlp.ErnieModel(_pnlp_config(pnlp))
    theirs.eval()
    theirs.save_pretrained(str(tmp_path / "enc"))
    ids, sent = paddle.to_tensor(IDS), paddle.to_tensor(SENT_IDS)
    seq_t, pooled_t = theirs(ids, token_type_ids=sent)[:2]

    config = ckpt.load_config(tmp_path / "enc")
    ours = ErnieModel(config)
    report = ckpt.load_into(ours, tmp_path / "enc" / "model_state.pdparams")
    assert report.kind == "paddlenlp" and not report.not_loaded and not report.unused
    ours.eval()
    seq_o, pooled_o = ours(ids, token_type_ids=sent)
    np.testing.assert_allclose(seq_o.numpy(), seq_t.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(pooled_o.numpy(), pooled_t.numpy(), atol=1e-5, rtol=0)

    # bare encoder -> sequence classification: the "ernie." prefix is added
    clf = ErnieForSequenceClassification(config, num_labels=2)
    report = ckpt.load_into(clf, tmp_path / "enc")
    assert sorted(report.not_loaded) == ["classifier.bias", "classifier.weight"]
    assert all(n.startswith("ernie.") for n in report.loaded) and len(report.loaded) == len(ours.state_dict())
    clf.eval()
    np.testing.assert_allclose(clf.ernie(ids, token_type_ids=sent)[1].numpy(), pooled_t.numpy(), atol=1e-5, rtol=0)

    # and our own save format is read back by PaddleNLP
    ckpt.save_pretrained(ours, tmp_path / "ours")
    back = pnlp.ErnieModel.from_pretrained(str(tmp_path / "ours"))
    back.eval()
    np.testing.assert_allclose(back(ids, token_type_ids=sent)[1].numpy(), pooled_t.numpy(), atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------- our format, kinds, CLI

def test_save_pretrained_and_checkpoint_kinds(tmp_path):
    config = ErnieConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=1, num_attention_heads=HEADS)
    model = ErnieForSequenceClassification(config, num_labels=3)
    out = tmp_path / "ours"
    ckpt.save_pretrained(model, out)
    assert sorted(os.listdir(out)) == ["config.json", "model_state.pdparams"]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")], "no temporary leftovers"
    state, cfg, kind = ckpt.load_state(out)
    assert kind == "ernie" and cfg.to_dict() == config.to_dict()
    ref = _state_numpy(model)
    assert set(state) == set(ref) and all(np.array_equal(state[k], ref[k]) for k in ref)

    # saving again replaces the dir; extra files in it (a vocab) are kept
    (out / "vocab.txt").write_text("[PAD]\n")
    ckpt.save_pretrained(model, out)
    assert sorted(os.listdir(out)) == ["config.json", "model_state.pdparams", "vocab.txt"]

    # a bare .pdparams file: no config
    paddle.save(model.state_dict(), str(tmp_path / "x.pdparams"))
    _, cfg, kind = ckpt.load_state(tmp_path / "x.pdparams")
    assert kind == "pdparams" and cfg is None

    # Propeller: model_<step>/model_state.pdparams; a model_dir resolves to its newest step
    model_dir = tmp_path / "run"
    for step in (3, 12):
        paddle.save({k: paddle.full_like(v, step) for k, v in model.state_dict().items()},
                    str(model_dir / f"model_{step}" / "model_state.pdparams"))
    state, _, kind = ckpt.load_state(model_dir / "model_3")
    assert kind == "propeller" and np.all(state["classifier.bias"] == 3)
    state, _, kind = ckpt.load_state(model_dir)
    assert kind == "propeller" and np.all(state["classifier.bias"] == 12)

    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no checkpoint found"):
        ckpt.load_state(tmp_path / "empty")
    with pytest.raises(FileNotFoundError):
        ckpt.load_state(tmp_path / "nope")
    with pytest.raises(ValueError, match="not a model state dict"):
        paddle.save({"LR_Scheduler": {"last_epoch": 3}}, str(tmp_path / "opt.pdparams"))
        ckpt.load_state(tmp_path / "opt.pdparams")


def test_convert_cli_round_trips_a_legacy_dir(legacy, tmp_path, capsys):
    root, arrays = legacy
    out = tmp_path / "converted"
    assert ckpt.main(["convert", "--src", str(root / "params"), "--dst", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "converted legacy checkpoint" in printed and "ErnieForPretraining" in printed
    assert "ernie.embeddings.word_embeddings.weight [50, 16]  <- word_embedding" in printed
    state, config, kind = ckpt.load_state(out)
    assert kind == "ernie" and config.layer_norm_eps == ckpt.LEGACY_LAYER_NORM_EPS
    assert config.vocab_size == VOCAB and config.use_task_id
    model = ErnieForPretraining(config)
    report = ckpt.load_into(model, out)
    assert not report.not_loaded and not report.unused
    legacy_model = ErnieForPretraining(ckpt.load_config(root))
    ckpt.load_into(legacy_model, root)
    ref = _state_numpy(legacy_model)
    got = _state_numpy(model)
    assert set(got) == set(ref) and all(np.array_equal(got[k], ref[k]) for k in ref)

    # no config beside the params and none given: a clear error asking for --config
    bare = tmp_path / "bare"
    shutil.copytree(root / "params", bare / "params")
    assert ckpt.main(["convert", "--src", str(bare), "--dst", str(tmp_path / "never")]) == 2
    assert "--config" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps(LEGACY_CONFIG))
    assert ckpt.main(["convert", "--src", str(bare), "--dst", str(tmp_path / "with_cfg"),
                      "--config", str(cfg_file)]) == 0
    # a config that does not fit the tensors fails before anything is written
    cfg_file.write_text(json.dumps(dict(LEGACY_CONFIG, vocab_size=60)))
    assert ckpt.main(["convert", "--src", str(bare), "--dst", str(tmp_path / "bad"), "--config", str(cfg_file)]) == 2
    assert "vocab_size 50 in the checkpoint, 60 in the model" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


# ---------------------------------------------------------------------------- atomic writes

def test_atomic_dir_leaves_nothing_partial(tmp_path):
    final = tmp_path / "ckpt"
    with pytest.raises(RuntimeError):
        with atomic_dir(final) as tmp:
            (open(os.path.join(tmp, "half"), "w")).write("x")
            raise RuntimeError("crash while writing")
    assert os.listdir(tmp_path) == []

    with atomic_dir(final) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path) and not final.exists()
        atomic_write_text(os.path.join(tmp, "a"), "v1")
    assert (final / "a").read_text() == "v1"

    with pytest.raises(RuntimeError):  # a failed replacement keeps the old version intact
        with atomic_dir(final) as tmp:
            atomic_write_text(os.path.join(tmp, "a"), "v2")
            raise RuntimeError
    assert (final / "a").read_text() == "v1" and os.listdir(tmp_path) == ["ckpt"]

    with atomic_dir(final) as tmp:  # a successful one replaces it whole
        atomic_write_text(os.path.join(tmp, "b"), "v2")
    assert os.listdir(final) == ["b"] and os.listdir(tmp_path) == ["ckpt"]

    atomic_write_text(tmp_path / "f.txt", "one")
    atomic_write_text(tmp_path / "f.txt", "two")
    assert (tmp_path / "f.txt").read_text() == "two" and sorted(os.listdir(tmp_path)) == ["ckpt", "f.txt"]
