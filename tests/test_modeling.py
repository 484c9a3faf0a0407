"""ErnieModel against the real peer (PaddleNLP's ErnieModel), and the heads and config."""
import json
import os

import numpy as np
import paddle
import pytest

from ernie.modeling import (HEADS, ErnieConfig, ErnieForPretraining, ErnieForQuestionAnswering,
                            ErnieForSequenceClassification, ErnieForTokenClassification, ErnieModel,
                            masked_lm_loss, register_head)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            max_position_embeddings=64, type_vocab_size=2, task_type_vocab_size=3)


def _batch(task):
    rng = np.random.RandomState(0)
    ids = rng.randint(4, 120, size=(3, 11))
    ids[0, 7:] = 0  # padding
    ids[1, 9:] = 0
    types = np.zeros_like(ids)
    types[:, 5:] = 1
    tasks = np.stack([np.full(11, t) for t in (0, 1, 2)]) if task else None
    return ids, types, tasks


@pytest.mark.parametrize("act", ["relu", "gelu"])
@pytest.mark.parametrize("task", [False, True])
def test_matches_paddlenlp_ernie(act, task):
    from paddlenlp.transformers import ErnieConfig as PConfig, ErnieModel as PModel
    kw = dict(TINY, hidden_act=act, use_task_id=task)
    paddle.seed(7)
    peer = PModel(PConfig(**kw))
    peer.eval()
    ours = ErnieModel(ErnieConfig(**kw))
    ours.eval()
    state = peer.state_dict()
    assert set(state) == set(ours.state_dict()), "parameter names differ from PaddleNLP's"
    ours.set_state_dict(state)  # no renaming
    ids, types, tasks = _batch(task)
    t = lambda x: None if x is None else paddle.to_tensor(x)
    p_seq, p_pool = peer(t(ids), token_type_ids=t(types), task_type_ids=t(tasks))
    o_seq, o_pool = ours(t(ids), t(types), task_type_ids=t(tasks))
    np.testing.assert_allclose(o_seq.numpy(), p_seq.numpy(), atol=1e-5)
    np.testing.assert_allclose(o_pool.numpy(), p_pool.numpy(), atol=1e-5)
    # with an explicit 2-D keep-mask the result is the same as the padding-derived one
    keep = paddle.to_tensor((ids != 0).astype("int64"))
    o_seq2, _ = ours(t(ids), t(types), attention_mask=keep, task_type_ids=t(tasks))
    np.testing.assert_allclose(o_seq2.numpy(), o_seq.numpy(), atol=1e-6)


def test_training_attention_path_equals_eval_path():
    """Training (fused QKV, attention composed with an expanded mask) and eval (composed, what exports hold) compute the same
    function; with dropout off the outputs and the gradients agree, and eval mode has no
    dropout left to run. (test_matches_paddlenlp_ernie checks the eval path against the peer.)"""
    kw = dict(TINY, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    paddle.seed(3)
    ours = ErnieModel(ErnieConfig(**kw))
    ids, types, _ = _batch(False)
    outs, grads = {}, {}
    for mode in ("train", "eval"):
        getattr(ours, mode)()
        ours.clear_gradients()
        seq, pooled = ours(paddle.to_tensor(ids), paddle.to_tensor(types))
        (seq.square().mean() + pooled.sum()).backward()
        outs[mode] = seq.numpy()
        layer = ours.encoder.layers[0]  # training's Linear takes its bias gradient from a GEMM
        grads[mode] = [p.grad.numpy() for p in (layer.self_attn.q_proj.weight, layer.self_attn.q_proj.bias,
                                                layer.self_attn.out_proj.bias, layer.linear1.bias, layer.linear2.bias)]
    np.testing.assert_allclose(outs["train"], outs["eval"], atol=1e-5)
    for train_grad, eval_grad in zip(grads["train"], grads["eval"]):
        np.testing.assert_allclose(train_grad, eval_grad, atol=1e-5)
    drop = ErnieModel(ErnieConfig(**TINY))  # dropout 0.1: random in train mode, a no-op in eval
    drop.eval()
    a = drop(paddle.to_tensor(ids))[0].numpy()
    np.testing.assert_array_equal(a, drop(paddle.to_tensor(ids))[0].numpy())
    drop.train()
    assert np.abs(drop(paddle.to_tensor(ids))[0].numpy() - a).max() > 1e-3
    from ernie.modeling import Dropout
    x = paddle.ones([4, 8])
    infer = Dropout(0.25, mode="downscale_in_infer")
    infer.eval()  # that mode scales at inference, so it keeps its op
    np.testing.assert_allclose(infer(x).numpy(), 0.75)


@pytest.mark.parametrize("stride_kernels", [False, True])
def test_dropout_keeps_1_minus_p_scales_and_follows_the_seed(stride_kernels):
    """The encoder's training dropout (masks from 16-bit random integers): the kept share is
    1 - p, kept values are scaled by 1 / (1 - p), the gradient is the same mask, paddle.seed
    repeats it, an odd element count works, and Paddle's stride-kernel flag is left as found."""
    from ernie.modeling import dropout
    flag = "FLAGS_use_stride_kernel"
    before = paddle.get_flags([flag])[flag]
    paddle.set_flags({flag: stride_kernels})
    try:
        for p in (0.1, 0.5, 0.9):
            x = paddle.ones([7, 13, 101])  # 9,191 elements: odd
            x.stop_gradient = False
            paddle.seed(11)
            y = dropout(x, p)
            y.sum().backward()
            out = y.numpy()
            kept = out != 0
            n = kept.size
            assert abs(kept.mean() - (1 - p)) < 4 * np.sqrt(p * (1 - p) / n), (p, kept.mean())
            np.testing.assert_allclose(out[kept], 1 / (1 - p), rtol=1e-6)
            np.testing.assert_array_equal(x.grad.numpy(), out)  # d(sum)/dx is the scaled mask
            paddle.seed(11)
            np.testing.assert_array_equal(dropout(paddle.ones([7, 13, 101]), p).numpy(), out)
            assert (dropout(paddle.ones([7, 13, 101]), p).numpy() != out).any()  # a new draw
            assert paddle.get_flags([flag])[flag] == stride_kernels
    finally:
        paddle.set_flags({flag: before})


def test_task_ids_reach_the_embedding():
    model = ErnieModel(ErnieConfig(**dict(TINY, use_task_id=True)))
    model.eval()
    ids, types, _ = _batch(False)
    a, _ = model(paddle.to_tensor(ids), task_type_ids=paddle.zeros([3, 11], "int64"))
    b, _ = model(paddle.to_tensor(ids), task_type_ids=paddle.full([3, 11], 2, "int64"))
    assert float((a - b).abs().max()) > 1e-3


def test_hidden_states_and_padding_invariance():
    model = ErnieModel(ErnieConfig(**TINY))
    model.eval()
    ids, _, _ = _batch(False)
    seq, pooled, hidden = model(paddle.to_tensor(ids), output_hidden_states=True)
    assert len(hidden) == TINY["num_hidden_layers"] + 1
    np.testing.assert_allclose(hidden[-1].numpy(), seq.numpy())
    # extra padding must not change the outputs at real positions
    padded = np.concatenate([ids, np.zeros((3, 5), ids.dtype)], axis=1)
    seq2, pooled2 = model(paddle.to_tensor(padded))
    np.testing.assert_allclose(seq2.numpy()[:, :11], seq.numpy(), atol=1e-5)
    np.testing.assert_allclose(pooled2.numpy(), pooled.numpy(), atol=1e-5)


def test_bigram_embeddings():
    """bigram_buckets > 0 adds the embedding of each token's (token, next token) bucket:
    ids as numpy computes them, zero bigram weights give the plain model, a token changes the
    vectors of its left neighbour (only through its bigram), and padding stays invariant."""
    buckets = 97
    paddle.seed(5)
    model = ErnieModel(ErnieConfig(**dict(TINY, bigram_buckets=buckets)))
    model.eval()
    ids, _, _ = _batch(False)
    nxt = np.concatenate([ids[:, 1:], np.zeros((3, 1), ids.dtype)], axis=1)
    np.testing.assert_array_equal(model.embeddings.bigram_ids(paddle.to_tensor(ids)).numpy(),
                                  (ids * TINY["vocab_size"] + nxt) % buckets)
    plain = ErnieModel(ErnieConfig(**TINY))
    plain.eval()
    plain.set_state_dict({k: v for k, v in model.state_dict().items() if "bigram" not in k})
    seq, _ = model(paddle.to_tensor(ids))
    with paddle.no_grad():
        model.embeddings.bigram_embeddings.weight.set_value(paddle.zeros([buckets, TINY["hidden_size"]]))
    np.testing.assert_allclose(model(paddle.to_tensor(ids))[0].numpy(), plain(paddle.to_tensor(ids))[0].numpy(),
                               atol=1e-6)
    assert np.abs(seq.numpy() - plain(paddle.to_tensor(ids))[0].numpy()).max() > 1e-3

    def embedded(m, x):
        return m.embeddings(paddle.to_tensor(x)).numpy()
    fresh = ErnieModel(ErnieConfig(**dict(TINY, bigram_buckets=buckets)))
    fresh.eval()
    changed = ids.copy()
    changed[0, 4] = 5 if ids[0, 4] != 5 else 6
    for m, left_moves in ((fresh, True), (plain, False)):
        a, b = embedded(m, ids), embedded(m, changed)
        assert (np.abs(a[0, 3] - b[0, 3]).max() > 1e-4) == left_moves  # the left neighbour, via its bigram
        np.testing.assert_allclose(a[0, 5:], b[0, 5:], atol=1e-6)  # the right side never sees it
    padded = np.concatenate([ids, np.zeros((3, 5), ids.dtype)], axis=1)
    np.testing.assert_allclose(fresh(paddle.to_tensor(padded))[0].numpy()[:, :11],
                               fresh(paddle.to_tensor(ids))[0].numpy(), atol=1e-5)


def test_mlm_head_at_masked_positions_equals_full_projection():
    model = ErnieForPretraining(ErnieConfig(**TINY))
    model.eval()
    ids, types, _ = _batch(False)
    pos = np.array([1, 3, 11 + 2, 22 + 8], "int64")  # flat indices into [B*S]
    masked, _ = model(paddle.to_tensor(ids), paddle.to_tensor(types), masked_positions=paddle.to_tensor(pos))
    full, _ = model(paddle.to_tensor(ids), paddle.to_tensor(types))
    np.testing.assert_allclose(masked.numpy(), full.numpy()[pos], atol=1e-5)
    # the decoder is tied to the word embeddings: not a separate parameter
    names = list(model.state_dict())
    assert not any("decoder.weight" in n for n in names)
    emb = model.ernie.embeddings.word_embeddings.weight
    assert model.cls.predictions._tied_weight[0] is emb


def test_masked_lm_loss_is_mean_over_masked_positions():
    rng = np.random.RandomState(1)
    logits = rng.randn(5, 9).astype("float32")
    labels = rng.randint(0, 9, size=5)
    expected = np.mean([np.log(np.exp(l).sum()) - l[y] for l, y in zip(logits, labels)])
    got = float(masked_lm_loss(paddle.to_tensor(logits), paddle.to_tensor(labels)))
    assert abs(got - expected) < 1e-5


def test_pretraining_loss_falls_on_a_fixed_batch():
    paddle.seed(3)
    model = ErnieForPretraining(ErnieConfig(**dict(TINY, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)))
    opt = paddle.optimizer.AdamW(5e-3, parameters=model.parameters())
    ids, types, _ = _batch(False)
    pos = paddle.to_tensor(np.array([2, 5, 14, 25], "int64"))
    labels = paddle.to_tensor(ids.reshape(-1)[[2, 5, 14, 25]])
    nsp = paddle.to_tensor(np.array([0, 1, 1]))
    losses = []
    for _ in range(40):
        loss = model(paddle.to_tensor(ids), paddle.to_tensor(types), masked_positions=pos,
                     masked_lm_labels=labels, next_sentence_labels=nsp)[0]
        loss.backward()
        opt.step()
        opt.clear_grad()
        losses.append(float(loss))
    assert losses[-1] < 0.3 * losses[0]


def test_heads_shapes_and_names_match_paddlenlp():
    from paddlenlp.transformers import (ErnieConfig as PConfig, ErnieForQuestionAnswering as PQA,
                                        ErnieForSequenceClassification as PSeq,
                                        ErnieForTokenClassification as PTok)
    cfg = ErnieConfig(**TINY)
    ids = paddle.to_tensor(_batch(False)[0])
    seq = ErnieForSequenceClassification(cfg, num_labels=3)
    tok = ErnieForTokenClassification(cfg, num_labels=7)
    qa = ErnieForQuestionAnswering(cfg)
    assert seq(ids).shape == [3, 3]
    assert tok(ids).shape == [3, 11, 7]
    start, end = qa(ids)
    assert start.shape == [3, 11] and end.shape == [3, 11]
    pcfg = PConfig(**TINY)
    pcfg.num_labels = 3
    assert set(seq.state_dict()) == set(PSeq(pcfg).state_dict())
    pcfg.num_labels = 7
    assert set(tok.state_dict()) == set(PTok(pcfg).state_dict())
    assert set(qa.state_dict()) == set(PQA(pcfg).state_dict())


def test_mean_pooling_is_the_masked_mean_of_the_top_layer():
    """pooling="mean": the classifier sees the mean of the non-pad token vectors (checked against
    numpy on the encoder's own output), so extra padding changes nothing; same weights as "cls"."""
    paddle.seed(3)
    cfg = ErnieConfig(**TINY)
    net = ErnieForSequenceClassification(cfg, num_labels=3, pooling="mean")
    net.eval()
    ids = _batch(False)[0]
    seq, _ = net.ernie(paddle.to_tensor(ids))
    keep = (ids != 0)[..., None]
    want = (seq.numpy() * keep).sum(1) / keep.sum(1)
    w, b = net.classifier.weight.numpy(), net.classifier.bias.numpy()
    np.testing.assert_allclose(net(paddle.to_tensor(ids)).numpy(), want @ w + b, atol=1e-5)
    padded = np.concatenate([ids, np.zeros((3, 4), ids.dtype)], axis=1)
    np.testing.assert_allclose(net(paddle.to_tensor(padded)).numpy(), want @ w + b, atol=1e-5)
    # an explicit 2-D keep-mask gives the same as the one derived from the pad id
    np.testing.assert_allclose(net(paddle.to_tensor(ids), attention_mask=paddle.to_tensor(keep[..., 0].astype("int64")))
                               .numpy(), want @ w + b, atol=1e-5)
    cls = ErnieForSequenceClassification(cfg, num_labels=3)
    assert set(cls.state_dict()) == set(net.state_dict())
    with pytest.raises(ValueError, match="pooling must be one of"):
        ErnieForSequenceClassification(cfg, pooling="max")


def test_head_registry():
    assert HEADS["mlm"].__name__ == "ErnieMLMHead"
    assert HEADS["sequence_classification"] is ErnieForSequenceClassification

    @register_head("my_head_for_test")
    class MyHead(paddle.nn.Layer):
        pass
    assert HEADS["my_head_for_test"] is MyHead
    with pytest.raises(ValueError, match="already registered"):
        register_head("mlm")(MyHead)


def test_config_reads_original_and_paddlenlp_formats(tmp_path):
    cfg = ErnieConfig.from_json(os.path.join(ROOT, "config", "ernie_config.json"))
    assert (cfg.hidden_act, cfg.max_position_embeddings, cfg.vocab_size) == ("relu", 513, 18000)
    assert cfg.intermediate_size == 4 * 768 and cfg.use_task_id is False
    tiny = ErnieConfig.from_json(os.path.join(ROOT, "config", "ernie_tiny_config.json"))
    assert tiny.type_vocab_size == 4  # from sent_type_vocab_size
    assert (tiny.num_hidden_layers, tiny.hidden_size, tiny.intermediate_size) == (3, 1024, 4096)
    # PaddleNLP's config.json, as its save_pretrained writes it
    from paddlenlp.transformers import ErnieConfig as PConfig, ErnieModel as PModel
    PModel(PConfig(**dict(TINY, use_task_id=True, hidden_act="gelu"))).save_pretrained(str(tmp_path / "pnlp"))
    got = ErnieConfig.from_json(str(tmp_path / "pnlp" / "config.json"))
    assert (got.hidden_size, got.task_type_vocab_size, got.use_task_id, got.hidden_act) == (32, 3, True, "gelu")
    # and writes JSON back that reads the same
    got.to_json(str(tmp_path / "back.json"))
    again = ErnieConfig.from_json(str(tmp_path / "back.json"))
    assert again.to_dict() == got.to_dict()
    assert json.load(open(tmp_path / "back.json"))["model_type"] == "ernie"  # unknown keys kept


def test_config_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"hidden_size": 30, "num_attention_heads": 4}')
    with pytest.raises(ValueError, match="bad.json.*multiple of"):
        ErnieConfig.from_json(str(bad))
    bad.write_text('{"hidden_act": "swish"}')
    with pytest.raises(ValueError, match="hidden_act"):
        ErnieConfig.from_json(str(bad))
    bad.write_text('{"hidden_size": 32,\n oops}')
    with pytest.raises(ValueError, match="line 2"):
        ErnieConfig.from_json(str(bad))
