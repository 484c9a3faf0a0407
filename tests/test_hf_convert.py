"""Hugging Face transformers checkpoints both ways (``python -m ernie.checkpoint convert`` from a
transformers ErnieModel/BertModel directory, ``export_hf`` to one): random small models give
transformers' outputs, heads and labels survive the round trip, the tokenizer files read by
BertTokenizer give our FullTokenizer's ids, and bad input is one message with exit status 2.

The comparisons with transformers itself need torch and transformers (requirements-test.txt)
and are skipped without them; the round trip through our own export and the error cases
need neither. Nothing is downloaded: every model is built here and saved to a temp dir."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import paddle
import pytest

from ernie import checkpoint as ckpt
from ernie.modeling import ErnieConfig, ErnieForPretraining, ErnieForSequenceClassification, ErnieModel
from ernie.tokenizing import FullTokenizer, save_vocab

VOCAB, HIDDEN, LAYERS, HEADS, FFN, MAX_POS, TYPES, TASKS = 100, 32, 2, 4, 64, 40, 2, 3
TOL = 1e-5
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# An ERNIE 1.0 style vocab (token<TAB>id), under VOCAB entries: specials, CJK chars, word pieces.
_TOKENS = (["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"] + list("我爱北京天安门模型在年发布，。,!.?-")
           + ["hello", "world", "hell", "##o", "un", "##aff", "##able", "naive", "cafe", "ernie", "2", "0",
              "##0", "##19", "Hello", "World", "ERNIE", "Café", "the", "model", "##s", "€", "$"])


def _transformers():
    pytest.importorskip("torch", reason="comparing with transformers needs torch (requirements-test.txt)")
    return pytest.importorskip("transformers", reason="comparing with transformers needs it (requirements-test.txt)")


def _write_vocab(path):
    save_vocab({t: i for i, t in enumerate(_TOKENS)}, path, format="tab")
    return path


def _our_config(**kw):
    base = dict(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                intermediate_size=FFN, max_position_embeddings=MAX_POS, type_vocab_size=TYPES,
                task_type_vocab_size=TASKS, use_task_id=True, hidden_act="gelu", layer_norm_eps=1e-12)
    base.update(kw)
    return ErnieConfig(**base)


def _hf_config(transformers, bert=False, **kw):
    base = dict(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                intermediate_size=FFN, max_position_embeddings=MAX_POS, type_vocab_size=TYPES, hidden_act="gelu")
    if not bert:
        base.update(use_task_id=True, task_type_vocab_size=TASKS)
    base.update(kw)
    return (transformers.BertConfig if bert else transformers.ErnieConfig)(**base)


def _randomize_torch(model, seed, pad_row=False):
    """Every parameter random (LayerNorm scales around 1), so a swapped or untransposed tensor
    shows. The [PAD] row of the word embeddings stays zero, as transformers initialises it and
    as Paddle's Embedding(padding_idx) reads it, unless ``pad_row`` (a BERT converted from
    TensorFlow has one)."""
    import torch
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(0.2 * torch.randn(p.shape, generator=g) + (1.0 if "LayerNorm.weight" in name else 0.0))
        if not pad_row:
            model.get_input_embeddings().weight[model.config.pad_token_id] = 0
    return model.eval()


def _randomize_ours(model, seed):
    rng = np.random.RandomState(seed)
    for name, p in model.state_dict().items():
        scale = name.endswith(("layer_norm.weight", "norm1.weight", "norm2.weight"))
        p.set_value((0.2 * rng.randn(*p.shape) + (1.0 if scale else 0.0)).astype("float32"))
    return model.eval()


def _inputs(seed=0, batch=3, seq=12):
    """ids, token types, task types and a padding mask (rows 1 and 2 padded)."""
    rng = np.random.RandomState(seed)
    ids = rng.randint(1, VOCAB, (batch, seq))
    mask = np.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 4:] = 0
    ids[mask == 0] = 0
    return {"input_ids": ids, "token_type_ids": rng.randint(0, TYPES, ids.shape),
            "task_type_ids": rng.randint(0, TASKS, ids.shape), "attention_mask": mask}


def _run_ours(model, inputs):
    t = {k: paddle.to_tensor(v) for k, v in inputs.items()}
    with paddle.no_grad():
        out = model(t["input_ids"], token_type_ids=t["token_type_ids"], attention_mask=t["attention_mask"],
                    task_type_ids=t.get("task_type_ids"))
    return [o.numpy() for o in out] if isinstance(out, (tuple, list)) else out.numpy()


def _run_hf(model, inputs, **kw):
    import torch
    with torch.no_grad():
        return model(**{k: torch.tensor(v) for k, v in inputs.items()}, **kw)


def _assert_same_weights(got, want):
    """Tensor for tensor, but for the [PAD] row of the word embeddings: export_hf writes it as
    zeros, which is what Paddle's Embedding(padding_idx) reads whatever the row holds."""
    got = {k: v.numpy() for k, v in got.state_dict().items()}
    want = {k: v.numpy() for k, v in want.state_dict().items()}
    assert set(got) == set(want)
    for k in want:
        if k.endswith("word_embeddings.weight"):
            assert not got[k][0].any()
            got[k], want[k] = got[k][1:], want[k][1:]
        assert np.array_equal(got[k], want[k]), k


def _close(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=TOL)


def _load_ours(cls, path, *args, strict=True):
    _, config, _ = ckpt.load_state(path)
    model = cls(config, *args)
    ckpt.load_into(model, path, strict=strict)
    return model.eval(), config


def _convert(src, dst, capsys=None):
    assert ckpt.main(["convert", "--src", str(src), "--dst", str(dst)]) == 0
    return capsys.readouterr().out if capsys else None


def _export(src, dst, *flags):
    assert ckpt.main(["export_hf", "--src", str(src), "--dst", str(dst), *flags]) == 0


def _fails(argv, capsys, *expected):
    """The command exits 2 with one error line naming what is wrong, and writes nothing."""
    capsys.readouterr()
    assert ckpt.main(argv) == 2
    # log lines may come first when an earlier test left a handler on stderr; the error is one line
    err = capsys.readouterr().err
    err = "\n".join(line for line in err.splitlines() if not re.match(r"\[(INFO|WARNING) ", line))
    assert err.startswith("error: ") and err.count("error: ") == 1 and "Traceback" not in err, err
    for text in expected:
        assert text in err, err
    dst = argv[argv.index("--dst") + 1] if "--dst" in argv else None
    assert dst is None or not os.path.exists(dst)
    return err


@pytest.fixture
def our_encoder(tmp_path):
    """A random ErnieModel checkpoint of ours (gelu, task ids) with an ERNIE 1.0 style vocab.txt."""
    model = _randomize_ours(ErnieModel(_our_config()), seed=1)
    src = tmp_path / "ours"
    ckpt.save_pretrained(model, src)
    _write_vocab(src / "vocab.txt")
    return model, src


# ---------------------------------------------------------------------------- transformers -> ours

@pytest.mark.parametrize("act,eps", [("gelu", 1e-12), ("relu", 1e-5)])
def test_hf_ernie_safetensors_to_ours_matches_transformers(tmp_path, capsys, act, eps):
    transformers = _transformers()
    hf = _randomize_torch(transformers.ErnieModel(_hf_config(transformers, hidden_act=act, layer_norm_eps=eps)), 0)
    src = tmp_path / "hf"
    hf.save_pretrained(src, safe_serialization=True)
    _write_vocab(src / "vocab.txt")
    assert sorted(os.listdir(src)) == ["config.json", "model.safetensors", "vocab.txt"]

    printed = _convert(src, tmp_path / "ours", capsys)
    assert "converted hf checkpoint" in printed
    assert "encoder.layers.1.self_attn.q_proj.weight [32, 32]  <- encoder.layer.1.attention.self.query.weight" in printed
    ours, config = _load_ours(ErnieModel, tmp_path / "ours")
    assert (config.hidden_act, config.layer_norm_eps, config.use_task_id, config.task_type_vocab_size) == \
        (act, eps, True, TASKS)
    assert (tmp_path / "ours" / "vocab.txt").read_text() == (src / "vocab.txt").read_text()

    inputs = _inputs()
    seq, pooled = _run_ours(ours, inputs)
    ref = _run_hf(hf, inputs)
    _close(seq, ref.last_hidden_state)
    _close(pooled, ref.pooler_output)
    # the task ids matter: other task ids give other outputs on both sides
    other = dict(inputs, task_type_ids=(inputs["task_type_ids"] + 1) % TASKS)
    assert np.abs(_run_ours(ours, other)[0] - seq).max() > 1e-2
    _close(_run_ours(ours, other)[0], _run_hf(hf, other).last_hidden_state)


def test_hf_bert_pretraining_bin_to_ours_matches_transformers(tmp_path, capsys):
    """BertForPreTraining saved as pytorch_model.bin: bert. prefix, MLM + NSP heads, tied decoder."""
    transformers = _transformers()
    hf = _randomize_torch(transformers.BertForPreTraining(_hf_config(transformers, bert=True)), 2, pad_row=True)
    src = tmp_path / "bert"
    hf.save_pretrained(src, safe_serialization=False)
    assert "pytorch_model.bin" in os.listdir(src)

    printed = _convert(src, tmp_path / "ours", capsys)
    assert "ErnieForPretraining" in printed
    assert "cls.predictions.decoder_bias [100]  <- cls.predictions.bias" in printed
    assert "dropped (2): cls.predictions.decoder.bias, cls.predictions.decoder.weight" in printed  # tied copies
    assert "row 0 ([PAD]) of the word embeddings is not zero" in printed
    ours, config = _load_ours(ErnieForPretraining, tmp_path / "ours")
    assert not config.use_task_id

    # Paddle reads [PAD] as zeros: the padded positions differ, the others and [CLS] do not
    inputs = {k: v for k, v in _inputs(seed=3).items() if k != "task_type_ids"}
    real = inputs["attention_mask"].reshape(-1) == 1
    mlm, nsp = _run_ours(ours, inputs)
    ref = _run_hf(hf, inputs, output_hidden_states=True)
    _close(mlm[real], ref.prediction_logits.numpy().reshape(-1, VOCAB)[real])
    assert not np.allclose(mlm[~real], ref.prediction_logits.numpy().reshape(-1, VOCAB)[~real], atol=TOL)
    _close(nsp, ref.seq_relationship_logits)
    seq = _run_ours(ours.ernie, inputs)[0].reshape(-1, HIDDEN)
    _close(seq[real], ref.hidden_states[-1].numpy().reshape(-1, HIDDEN)[real])


def test_hf_masked_lm_round_trip_without_pooler(tmp_path, capsys):
    """ErnieForMaskedLM has no pooler and one of the two pre-training heads: converted, our
    encoder loads it strictly (pooler left as initialized), and export_hf gives it back."""
    transformers = _transformers()
    hf = _randomize_torch(transformers.ErnieForMaskedLM(_hf_config(transformers)), 4)
    src = tmp_path / "mlm"
    hf.save_pretrained(src, safe_serialization=True)
    _write_vocab(src / "vocab.txt")
    printed = _convert(src, tmp_path / "ours", capsys)
    assert "has no pooler" in printed
    state, _, _ = ckpt.load_state(tmp_path / "ours")
    assert not any("pooler" in k or "seq_relationship" in k for k in state)

    inputs = _inputs(seed=5)
    ref = _run_hf(hf, inputs, output_hidden_states=True)
    encoder, _ = _load_ours(ErnieModel, tmp_path / "ours")  # strict: the missing pooler is allowed
    _close(_run_ours(encoder, inputs)[0], ref.hidden_states[-1])
    pretraining, _ = _load_ours(ErnieForPretraining, tmp_path / "ours", strict=False)
    _close(_run_ours(pretraining, inputs)[0], ref.logits.numpy().reshape(-1, VOCAB))

    _export(tmp_path / "ours", tmp_path / "back")
    assert json.loads((tmp_path / "back" / "config.json").read_text())["architectures"] == ["ErnieForMaskedLM"]
    back, info = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path / "back", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    _close(_run_hf(back.eval(), inputs).logits, ref.logits)


# ---------------------------------------------------------------------------- ours -> transformers

def test_ours_to_hf_matches_transformers(our_encoder, tmp_path, capsys):
    transformers = _transformers()
    ours, src = our_encoder
    _export(src, tmp_path / "hf")
    out = tmp_path / "hf"
    assert sorted(os.listdir(out)) == ["config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt"]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model_type"] == "ernie" and cfg["architectures"] == ["ErnieModel"]
    assert cfg["use_task_id"] is True and cfg["task_type_vocab_size"] == TASKS and cfg["hidden_act"] == "gelu"

    hf, info = transformers.AutoModel.from_pretrained(out, output_loading_info=True)
    assert type(hf).__name__ == "ErnieModel"
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    inputs = _inputs(seed=6)
    seq, pooled = _run_ours(ours, inputs)
    ref = _run_hf(hf.eval(), inputs)
    _close(ref.last_hidden_state, seq)
    _close(ref.pooler_output, pooled)


def test_classification_round_trip(tmp_path, capsys):
    """Our classifier with a fine-tuning run's task.json -> ErnieForSequenceClassification with
    its labels -> back to ours, tensor for tensor."""
    transformers = _transformers()
    ours = _randomize_ours(ErnieForSequenceClassification(_our_config(hidden_act="relu"), num_labels=3), 7)
    src = tmp_path / "run" / "best"
    ckpt.save_pretrained(ours, src)
    _write_vocab(src / "vocab.txt")
    labels = {"neg": 0, "neu": 1, "pos": 2}
    (src / "task.json").write_text(json.dumps({"task": "classifier", "label_map": labels, "pooling": "cls"}))
    _export(src, tmp_path / "hf")

    hf, info = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "hf",
                                                                               output_loading_info=True)
    assert type(hf).__name__ == "ErnieForSequenceClassification" and not info["missing_keys"]
    assert hf.config.num_labels == 3 and hf.config.id2label == {0: "neg", 1: "neu", 2: "pos"}
    assert hf.config.hidden_act == "relu"
    inputs = _inputs(seed=8)
    _close(_run_hf(hf.eval(), inputs).logits, _run_ours(ours, inputs))

    _convert(tmp_path / "hf", tmp_path / "again")
    again, config = _load_ours(ErnieForSequenceClassification, tmp_path / "again", 3)
    assert config.extra["id2label"] == {"0": "neg", "1": "neu", "2": "pos"}
    _assert_same_weights(again, ours)
    # the labels survive the next export without task.json
    _export(tmp_path / "again", tmp_path / "hf2")
    assert json.loads((tmp_path / "hf2" / "config.json").read_text())["id2label"]["2"] == "pos"


def test_encoder_only_export_drops_the_heads(tmp_path, capsys):
    transformers = _transformers()
    model = _randomize_ours(ErnieForPretraining(_our_config()), 9)
    src = tmp_path / "pre"
    ckpt.save_pretrained(model, src)
    _write_vocab(src / "vocab.txt")
    _export(src, tmp_path / "full")
    assert json.loads((tmp_path / "full" / "config.json").read_text())["architectures"] == ["ErnieForPreTraining"]
    capsys.readouterr()
    _export(src, tmp_path / "enc", "--encoder_only")
    printed = capsys.readouterr().out
    assert "dropped (7): " in printed and "cls.seq_relationship.weight" in printed.split("dropped (7): ")[1]
    hf, info = transformers.AutoModel.from_pretrained(tmp_path / "enc", output_loading_info=True)
    assert type(hf).__name__ == "ErnieModel" and not info["missing_keys"] and not info["unexpected_keys"]
    inputs = _inputs(seed=10)
    _close(_run_hf(hf.eval(), inputs).pooler_output, _run_ours(model.ernie, inputs)[1])
    pre = transformers.AutoModelForPreTraining.from_pretrained(tmp_path / "full").eval()
    mlm, nsp = _run_ours(model, inputs)
    ref = _run_hf(pre, inputs)
    # all but the [PAD] logit: our tied decoder reads the [PAD] row the embedding lookup ignores,
    # and the export keeps the lookup's zeros
    _close(ref.prediction_logits.numpy().reshape(-1, VOCAB)[:, 1:], mlm[:, 1:])
    _close(ref.seq_relationship_logits, nsp)


@pytest.mark.parametrize("cased", [False, True])
def test_tokenizer_files_give_our_ids(our_encoder, tmp_path, cased):
    transformers = _transformers()
    _, src = our_encoder
    _export(src, tmp_path / "hf", *(["--cased"] if cased else []))
    vocab_lines = (tmp_path / "hf" / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert vocab_lines == _TOKENS  # one token a line, in id order
    assert json.loads((tmp_path / "hf" / "tokenizer_config.json").read_text())["do_lower_case"] is (not cased)
    ours = FullTokenizer(str(src / "vocab.txt"), do_lower_case=not cased)
    texts = ["我爱北京天安门", "Hello, World! unaffable", "Héllo naïve Café?", "ERNIE 2019 模型在年发布。",
             "the models-unknownword hello!!"]
    for cls in (transformers.BertTokenizer, transformers.AutoTokenizer):
        theirs = cls.from_pretrained(str(tmp_path / "hf"))
        for text in texts:
            assert theirs.convert_tokens_to_ids(theirs.tokenize(text)) == \
                ours.convert_tokens_to_ids(ours.tokenize(text)), (cls.__name__, text)
            ids, types = ours.encode(text, "hello world")
            encoded = theirs(text, "hello world")
            assert encoded["input_ids"] == ids and encoded["token_type_ids"] == types
        # the difference export_hf --help names: BertTokenizer leaves Unicode symbols in the word,
        # as our FullTokenizer does with split_symbols=False
        bert_rule = FullTokenizer(str(src / "vocab.txt"), do_lower_case=not cased, split_symbols=False)
        assert theirs.tokenize("hello€world") == bert_rule.tokenize("hello€world") == ["[UNK]"]
        assert ours.tokenize("hello€world") == ["hello", "€", "world"]


# ---------------------------------------------------------------------------- without torch

def test_safetensors_round_trip_needs_no_torch(our_encoder, tmp_path, capsys, monkeypatch):
    """export_hf and reading model.safetensors back use safetensors' numpy API only; a
    pytorch_model.bin without torch is one clear error."""
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    model, src = our_encoder
    _export(src, tmp_path / "hf")
    _convert(tmp_path / "hf", tmp_path / "back")
    back, _ = _load_ours(ErnieModel, tmp_path / "back")
    _assert_same_weights(back, model)

    # a sharded checkpoint: model.safetensors.index.json naming two shard files
    from safetensors.numpy import load_file, save_file
    tensors = load_file(str(tmp_path / "hf" / "model.safetensors"))
    os.remove(tmp_path / "hf" / "model.safetensors")
    names = sorted(tensors)
    weight_map = {}
    for k, part in enumerate((names[::2], names[1::2])):
        shard = f"model-0000{k + 1}-of-00002.safetensors"
        save_file({n: tensors[n] for n in part}, str(tmp_path / "hf" / shard), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, shard))
    (tmp_path / "hf" / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    _convert(tmp_path / "hf", tmp_path / "from_shards")
    _assert_same_weights(_load_ours(ErnieModel, tmp_path / "from_shards")[0], model)

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "config.json").write_text((tmp_path / "hf" / "config.json").read_text())
    (bin_dir / "pytorch_model.bin").write_bytes(b"not read")
    _fails(["convert", "--src", str(bin_dir), "--dst", str(tmp_path / "x")], capsys,
           "pytorch_model.bin is a PyTorch pickle and reading it needs torch", "safe_serialization=True")


# ---------------------------------------------------------------------------- name rules

def test_name_rules_both_ways():
    names = {
        "bert.embeddings.LayerNorm.gamma": "ernie.embeddings.layer_norm.weight",
        "ernie.encoder.layer.3.attention.output.LayerNorm.bias": "ernie.encoder.layers.3.norm1.bias",
        "encoder.layer.0.output.dense.weight": "encoder.layers.0.linear2.weight",
        "cls.predictions.transform.dense.weight": "cls.predictions.transform.weight",
        "cls.predictions.bias": "cls.predictions.decoder_bias",
        "classifier.bias": "classifier.bias",
    }
    for hf, ours in names.items():
        assert ckpt.hf_to_ours(hf) == ours
    assert ckpt.ours_to_hf("ernie.encoder.layers.3.norm1.bias") == "ernie.encoder.layer.3.attention.output.LayerNorm.bias"
    for unknown in ("qa_outputs.weight", "bert.cls.predictions.bias", "encoder.layer.0.crossattention.self.query.weight",
                    "ernie.classifier.weight"):
        assert ckpt.hf_to_ours(unknown) is None
    # buffers are dropped and named; Linear weights transposed, embeddings not
    w = np.arange(6, dtype="float32").reshape(2, 3)
    dropped = []
    state, origins = ckpt.canonical_names({"bert.embeddings.position_ids": np.arange(4),
                                           "bert.embeddings.LayerNorm.weight": np.ones(3, "float32"),
                                           "bert.pooler.dense.weight": w,
                                           "bert.embeddings.word_embeddings.weight": w}, dropped)
    assert dropped == ["bert.embeddings.position_ids"]
    assert np.array_equal(state["ernie.pooler.dense.weight"], w.T)
    assert np.array_equal(state["ernie.embeddings.word_embeddings.weight"], w)


def test_paddlenlp_safetensors_keep_paddle_layout(our_encoder, tmp_path):
    """PaddleNLP writes model.safetensors too, in Paddle's names and [in, out] Linear weights:
    read as they are, nothing transposed."""
    from safetensors.numpy import save_file
    model, src = our_encoder
    d = tmp_path / "pnlp"
    d.mkdir()
    save_file({k: v.numpy() for k, v in model.state_dict().items()}, str(d / "model.safetensors"),
              metadata={"format": "np"})
    cfg = json.loads((src / "config.json").read_text())
    (d / "config.json").write_text(json.dumps(dict(cfg, model_type="ernie", paddlenlp_version="3.0.0b4")))
    state, config, kind = ckpt.load_state(d)
    assert kind == "paddlenlp" and config.hidden_size == HIDDEN
    want = {k: v.numpy() for k, v in model.state_dict().items()}
    assert set(state) == set(want) and all(np.array_equal(state[k], want[k]) for k in want)


# ---------------------------------------------------------------------------- bad input

def _hf_dir(our_encoder, tmp_path, name="hf"):
    _, src = our_encoder
    _export(src, tmp_path / name)
    return tmp_path / name


def _edit_config(path, **changes):
    cfg = json.loads((path / "config.json").read_text())
    cfg.update(changes)
    (path / "config.json").write_text(json.dumps(cfg))


def test_bad_input_is_one_message_and_exit_2(our_encoder, tmp_path, capsys):
    from safetensors.numpy import load_file, save_file
    dst = str(tmp_path / "never")
    _fails(["convert", "--src", str(tmp_path / "missing"), "--dst", dst], capsys, "checkpoint not found")

    no_weights = _hf_dir(our_encoder, tmp_path, "no_weights")
    os.remove(no_weights / "model.safetensors")
    _fails(["convert", "--src", str(no_weights), "--dst", dst], capsys,
           "a transformers config.json but no weights file", "model.safetensors", "pytorch_model.bin")

    for change, expected in (({"model_type": "roberta"}, "model_type 'roberta'"),
                             ({"architectures": ["ErnieForQuestionAnswering"]},
                              "architecture ErnieForQuestionAnswering is not supported"),
                             ({"hidden_act": "gelu_new"}, "gelu_new"),
                             ({"position_embedding_type": "relative_key"}, "absolute position embeddings only")):
        bad = _hf_dir(our_encoder, tmp_path, "bad_config")
        _edit_config(bad, **change)
        _fails(["convert", "--src", str(bad), "--dst", dst], capsys, str(bad / "config.json"), expected)

    shapes = _hf_dir(our_encoder, tmp_path, "shapes")
    _edit_config(shapes, vocab_size=VOCAB + 20)
    _fails(["convert", "--src", str(shapes), "--dst", dst], capsys,
           "embeddings.word_embeddings.weight: checkpoint [100, 32] vs model [120, 32]", str(shapes))

    extra = _hf_dir(our_encoder, tmp_path, "extra")
    tensors = load_file(str(extra / "model.safetensors"))
    tensors["qa_outputs.weight"] = np.zeros([2, HIDDEN], "float32")
    save_file(tensors, str(extra / "model.safetensors"), metadata={"format": "pt"})
    _fails(["convert", "--src", str(extra), "--dst", dst], capsys,
           str(extra / "model.safetensors"), "no counterpart", "qa_outputs.weight")

    corrupt = _hf_dir(our_encoder, tmp_path, "corrupt")
    (corrupt / "model.safetensors").write_bytes(b"\x00" * 10)
    _fails(["convert", "--src", str(corrupt), "--dst", dst], capsys, "cannot read as safetensors")

    model, src = our_encoder
    os.remove(src / "vocab.txt")
    _fails(["export_hf", "--src", str(src), "--dst", dst], capsys, "--vocab_file", "BertTokenizer")

    clf = tmp_path / "mean"
    ckpt.save_pretrained(ErnieForSequenceClassification(_our_config(), num_labels=2), clf)
    _write_vocab(clf / "vocab.txt")
    (clf / "task.json").write_text(json.dumps({"task": "classifier", "pooling": "mean"}))
    _fails(["export_hf", "--src", str(clf), "--dst", dst], capsys, "--pooling mean", "--encoder_only")
    _export(clf, tmp_path / "mean_encoder", "--encoder_only")  # the encoder alone is fine

    bigram = tmp_path / "bigram"
    ckpt.save_pretrained(ErnieModel(_our_config(bigram_buckets=17)), bigram)
    _write_vocab(bigram / "vocab.txt")
    _fails(["export_hf", "--src", str(bigram), "--dst", dst], capsys, "bigram_buckets 17", "does not have")


def test_command_line_exit_status(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ernie.checkpoint", "convert", "--src", str(tmp_path / "missing"),
                           "--dst", str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "checkpoint not found" in proc.stderr and "Traceback" not in proc.stderr
    helped = subprocess.run([sys.executable, "-m", "ernie.checkpoint", "export_hf", "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and "kept:" in helped.stdout and "dropped:" in helped.stdout
