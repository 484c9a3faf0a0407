"""ERNIE model: config, encoder, and the heads shared by pre-training and fine-tuning.

Parameter names follow PaddleNLP's ``ErnieModel`` (``embeddings.word_embeddings.weight``,
``encoder.layers.N.self_attn.q_proj.weight``, ...) so a PaddleNLP state dict loads with no
renaming. The encoder is post-LayerNorm like ERNIE 1.0/2.0. In training, attention computes
Q, K and V in one matmul over the concatenated projection weights (one GEMM instead of three)
while keeping the three separate parameters that checkpoints name; in eval mode (and so in
exported programs) it takes the form inference passes fuse best (ErnieSelfAttention).
"""
import copy
import json
import math

import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddle.base.dygraph.base import in_sot_simulation_mode, in_to_static_mode

from propeller.registry import Registry

__all__ = [
    "ErnieConfig", "ErnieModel", "ErnieMLMHead", "ErnieForPretraining",
    "ErnieForSequenceClassification", "ErnieForTokenClassification",
    "ErnieForQuestionAnswering", "HEADS", "register_head", "masked_lm_loss",
]

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu, "tanh": paddle.tanh}


class ErnieConfig:
    """Model hyper-parameters. Reads the original ``ernie_config.json`` and PaddleNLP ``config.json``.

    Unknown keys are kept in ``extra`` and written back, so a config round-trips unchanged.
    """

    DEFAULTS = {
        "vocab_size": 18000,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": None,  # None -> 4 * hidden_size, as in the original ERNIE
        "hidden_act": "relu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 513,
        "type_vocab_size": 2,
        "task_type_vocab_size": 3,
        "use_task_id": False,
        "task_id": 0,
        "initializer_range": 0.02,
        "pad_token_id": 0,
        "layer_norm_eps": 1e-12,
        "bigram_buckets": 0,  # > 0: add hashed character-bigram embeddings (ErnieEmbeddings); 0 = ERNIE's
    }
    # names the original ERNIE configs use for the same fields
    ALIASES = {"sent_type_vocab_size": "type_vocab_size"}

    def __init__(self, **kwargs):
        values = dict(self.DEFAULTS)
        self.extra = {}
        for key, value in kwargs.items():
            key = self.ALIASES.get(key, key)
            if key in values:
                values[key] = value
            else:
                self.extra[key] = value
        for key, value in values.items():
            setattr(self, key, value)
        if self.intermediate_size is None:
            self.intermediate_size = 4 * self.hidden_size
        self._validate()

    def _validate(self):
        if self.hidden_act not in _ACTIVATIONS:
            raise ValueError(f"hidden_act must be one of {sorted(_ACTIVATIONS)}, got {self.hidden_act!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of "
                             f"num_attention_heads {self.num_attention_heads}")
        for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                    "intermediate_size", "max_position_embeddings"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) <= 0:
                raise ValueError(f"{key} must be a positive integer, got {getattr(self, key)!r}")

    @classmethod
    def from_dict(cls, d):
        return cls(**d)

    @classmethod
    def from_json(cls, path):
        with open(path, encoding="utf-8") as f:
            try:
                d = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None
        if not isinstance(d, dict):
            raise ValueError(f"{path}: expected a JSON object of model hyper-parameters")
        try:
            return cls(**d)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None

    def to_dict(self):
        d = {key: getattr(self, key) for key in self.DEFAULTS}
        d.update(self.extra)
        return d

    def to_json(self, path=None):
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        return text

    def copy(self, **overrides):
        d = copy.deepcopy(self.to_dict())
        d.update(overrides)
        return ErnieConfig(**d)

    def __repr__(self):
        return f"ErnieConfig({self.to_dict()})"


def _compiling():
    """True while ``paddle.jit.to_static`` traces (SOT simulation or the AST path) or in a static
    program: the checks Paddle's own ``Layer.__call__`` makes."""
    return not paddle.in_dynamic_mode() or in_to_static_mode() or in_sot_simulation_mode()


def dropout(x, p):
    """Training dropout (``upscale_in_train``) whose mask comes from 16-bit random integers.

    Paddle 3.3.1's CPU dropout draws one float from its generator per element (``paddle.rand``
    of 1.57M: 22-24 ms, one thread); ``randint`` gives 32 bits a draw (6 ms for the same 1.57M
    as 786k int32s), viewed as two int16s, each kept when >= p * 65536 - 32768: the keep
    probability is 1 - p to 1/65536. Forward + backward, one thread: 15.5 -> 7.2 ms at
    [8, 128, 768], 32.0 -> 16.3 ms at [8, 12, 128, 128] (bench/RESULTS.md, issue 13, eighth
    session). ``paddle.seed`` governs it like ``F.dropout``.
    The dtype view needs Paddle's stride kernels, which ``propeller.cpu_env.tune_paddle`` turns
    off for CPU training, so they are on for that one op. Compiled programs keep ``F.dropout``.
    """
    if _compiling() or not 0.0 < p < 1.0:
        return F.dropout(x, p, training=True)
    n = math.prod(x.shape)
    words = paddle.randint(-2 ** 31, 2 ** 31 - 1, [(n + 1) // 2], dtype="int32")
    strided = paddle.get_flags(["FLAGS_use_stride_kernel"])["FLAGS_use_stride_kernel"]
    if not strided:
        paddle.set_flags({"FLAGS_use_stride_kernel": True})
    try:
        bits = words.view(paddle.int16)
    finally:
        if not strided:
            paddle.set_flags({"FLAGS_use_stride_kernel": False})
    if n % 2:
        bits = bits[:n]
    keep = bits.reshape(x.shape) >= round(p * 65536) - 32768
    return x * (keep.astype(x.dtype) * (1.0 / (1.0 - p)))


class Dropout(nn.Dropout):
    """``nn.Dropout`` through ``dropout`` in training, and absent from the graph in eval mode:
    Paddle's own still runs a dropout op (a copy of the tensor) at inference, in dygraph and in
    every exported program."""

    def forward(self, x):
        if self.p == 0 or (not self.training and self.mode == "upscale_in_train"):
            return x
        if self.training and self.mode == "upscale_in_train" and self.axis is None:
            return dropout(x, self.p)
        return super().forward(x)  # downscale_in_infer, or a dropout along axes


def linear(x, weight, bias):
    """``F.linear(x, weight, bias)`` for training, the bias gradient from a GEMM: x gets a column
    of ones and the weight the bias as its last row. Paddle 3.3.1's CPU ``add_grad`` reduces a
    broadcast bias with a column sum that took 70 ms on [4096, 1024] against 3 ms as a matmul by
    ones (one thread); a Linear [32, 128, 256] -> 1024, forward + backward: 250 ms as
    ``F.linear``, 164 ms so, 160 ms without a bias (bench/RESULTS.md, issue 13, seventh session).
    Plain ops, no Python ints from shapes: to_static compiles it once for every batch length."""
    ones = paddle.ones_like(x[..., :1])
    return paddle.matmul(paddle.concat([x, ones], axis=-1), paddle.concat([weight, bias.unsqueeze(0)], axis=0))


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters and names) whose training forward goes through ``linear``;
    eval mode keeps ``F.linear``, the form exported programs and the inference passes know. Used
    where the rows are many (every token): the encoder's projections."""

    def forward(self, x):
        if self.training:
            return linear(x, self.weight, self.bias)
        return F.linear(x, self.weight, self.bias)


def _weight_attr(config):
    return paddle.ParamAttr(initializer=nn.initializer.TruncatedNormal(mean=0.0, std=config.initializer_range))


class ErnieEmbeddings(nn.Layer):
    """word + position + sentence-type (+ task-type) embeddings, then LayerNorm and dropout.

    With ``bigram_buckets`` > 0 (off in ERNIE's configs, on in the demo's), each position also adds
    the embedding of its hashed (token, next token) pair: Chinese words are mostly two characters,
    and a small model fine-tuned on little data does not compose them from characters by itself.
    On demo sentiment a char-unigram logistic regression scores 0.807 and char 1-2-grams 0.842;
    the demo-shaped Transformer from random init 0.813, with bigram embeddings 0.838 (seed 1), and
    its knowledge-masking loss falls ~0.4 nats faster (bench/RESULTS.md, issue 10).
    """

    def __init__(self, config):
        super().__init__()
        attr = _weight_attr(config)
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size,
                                            padding_idx=config.pad_token_id, weight_attr=attr)
        self.vocab_size, self.padding_idx = config.vocab_size, config.pad_token_id
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size, weight_attr=attr)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size, weight_attr=attr)
        self.use_task_id = config.use_task_id
        self.task_id = config.task_id
        if self.use_task_id:
            self.task_type_embeddings = nn.Embedding(config.task_type_vocab_size, config.hidden_size, weight_attr=attr)
        self.bigram_buckets = config.bigram_buckets
        if self.bigram_buckets:
            self.bigram_embeddings = nn.Embedding(config.bigram_buckets, config.hidden_size, weight_attr=attr)
        self.layer_norm = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def bigram_ids(self, input_ids):
        """Bucket of each token's (token, next token) pair: (a * V + b) mod buckets, the last
        token paired with the pad id. Computed from the input ids in the graph, so a masked token
        hides its bigrams too, and exported programs take the same inputs as without bigrams."""
        nxt = paddle.concat([input_ids[:, 1:], paddle.full_like(input_ids[:, :1], self.padding_idx)], axis=1)
        return (input_ids * self.vocab_size + nxt) % self.bigram_buckets

    def forward(self, input_ids, token_type_ids=None, position_ids=None, task_type_ids=None):
        seq_len = input_ids.shape[1]
        if position_ids is None:
            # [B, S], not [1, S]: the broadcast add's backward (a reduction over the batch) cost
            # 10.9 ms at [32, 128, 128] against 1.4 ms for the embedding's own scatter
            position_ids = paddle.arange(seq_len, dtype="int64").unsqueeze(0).expand_as(input_ids)
        emb = self.word_embeddings(input_ids) + self.position_embeddings(position_ids)
        if self.bigram_buckets:
            emb = emb + self.bigram_embeddings(self.bigram_ids(input_ids))
        if token_type_ids is None:
            token_type_ids = paddle.zeros_like(input_ids)
        emb = emb + self.token_type_embeddings(token_type_ids)
        if self.use_task_id:
            if task_type_ids is None:
                task_type_ids = paddle.full_like(input_ids, self.task_id)
            emb = emb + self.task_type_embeddings(task_type_ids)
        return self.dropout(self.layer_norm(emb))


class ErnieSelfAttention(nn.Layer):
    def __init__(self, config):
        super().__init__()
        hidden, attr = config.hidden_size, _weight_attr(config)
        self.num_heads = config.num_attention_heads
        self.head_dim = hidden // self.num_heads
        self.q_proj = Linear(hidden, hidden, weight_attr=attr)
        self.k_proj = Linear(hidden, hidden, weight_attr=attr)
        self.v_proj = Linear(hidden, hidden, weight_attr=attr)
        self.out_proj = Linear(hidden, hidden, weight_attr=attr)
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, x, attn_bias):
        if self.training:
            return self._fused(x, attn_bias)
        return self._composed(x, attn_bias)

    def _fused(self, x, attn_bias):
        """Training: one GEMM for Q, K and V (concatenating the three [H, H] weights costs far
        less than the two extra matmuls over [B*S, H] it saves), then attention composed by hand.
        Measured on CPU (Paddle 3.3.1, demo shape, one thread): ``scaled_dot_product_attention``
        on the unbound [B, S, 3, nH, d] layout cost more, since the stack that unbind's backward
        does took ~15 ms a layer at [32, 64] and its [B, 1, 1, S] mask broadcast (28 ms at
        [32, 4, 128, 128]) is ~3x slower than expanding the mask and adding same-shape tensors:
        ~10% of a fine-tuning and a pre-training step (bench/RESULTS.md, issue 10, fifth session)."""
        heads = self.num_heads
        w = paddle.concat([self.q_proj.weight, self.k_proj.weight, self.v_proj.weight], axis=1)
        b = paddle.concat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias])
        qkv = linear(x, w, b).reshape([0, 0, 3 * heads, self.head_dim]).transpose([0, 2, 1, 3])
        q, k, v = paddle.split(qkv, 3, axis=1)  # each [B, nH, S, d]
        scores = paddle.matmul(q * (self.head_dim ** -0.5), k, transpose_y=True)
        probs = F.softmax(scores + paddle.expand_as(attn_bias, scores), axis=-1)
        if self.dropout_p:
            probs = dropout(probs, self.dropout_p)
        ctx = paddle.matmul(probs, v).transpose([0, 2, 1, 3])
        return self.out_proj(ctx.reshape([0, 0, heads * self.head_dim]))

    def _composed(self, x, attn_bias):
        """Inference: the same math as reshape -> transpose -> matmul chains, the form oneDNN's
        fuse passes fold into the matmuls of an exported program (no transpose, reshape or
        dropout op is left: 4.4 -> 3.9 ms at small size, batch 1); in dygraph eval it is also
        13% faster than SDPA at base size."""
        heads = [0, 0, self.num_heads, self.head_dim]
        q = self.q_proj(x).reshape(heads).transpose([0, 2, 1, 3])
        k = self.k_proj(x).reshape(heads).transpose([0, 2, 1, 3])
        v = self.v_proj(x).reshape(heads).transpose([0, 2, 1, 3])
        # scaling q (not the scores) lets the passes fold both the scale and the mask add into
        # the matmul: two ops fewer per layer
        scores = paddle.matmul(q * (self.head_dim ** -0.5), k, transpose_y=True) + attn_bias
        ctx = paddle.matmul(F.softmax(scores, axis=-1), v).transpose([0, 2, 1, 3])
        return self.out_proj(ctx.reshape([0, 0, self.num_heads * self.head_dim]))


class ErnieEncoderLayer(nn.Layer):
    """Post-LayerNorm Transformer block: x = LN(x + Attn(x)); x = LN(x + FFN(x))."""

    def __init__(self, config):
        super().__init__()
        attr = _weight_attr(config)
        self.self_attn = ErnieSelfAttention(config)
        self.linear1 = Linear(config.hidden_size, config.intermediate_size, weight_attr=attr)
        self.linear2 = Linear(config.intermediate_size, config.hidden_size, weight_attr=attr)
        self.norm1 = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)
        self.norm2 = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)
        self.dropout1 = Dropout(config.hidden_dropout_prob)
        self.dropout2 = Dropout(config.hidden_dropout_prob)
        self.activation = _ACTIVATIONS[config.hidden_act]

    def forward(self, x, attn_bias):
        x = self.norm1(x + self.dropout1(self.self_attn(x, attn_bias)))
        return self.norm2(x + self.dropout2(self.linear2(self.activation(self.linear1(x)))))


class ErnieEncoder(nn.Layer):
    def __init__(self, config):
        super().__init__()
        self.layers = nn.LayerList([ErnieEncoderLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, x, attn_bias, output_hidden_states=False):
        hidden_states = [x] if output_hidden_states else None
        for layer in self.layers:
            x = layer(x, attn_bias)
            if output_hidden_states:
                hidden_states.append(x)
        return x, hidden_states


class ErniePooler(nn.Layer):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size, weight_attr=_weight_attr(config))

    def forward(self, sequence_output):
        return paddle.tanh(self.dense(sequence_output[:, 0]))


def attention_bias(input_ids, attention_mask, pad_token_id, dtype):
    """Additive attention bias broadcastable to [B, nH, S, S].

    ``attention_mask`` may be None (derived from ``input_ids == pad_token_id``), a 2-D 1/0
    keep-mask [B, S], a 3-D [B, S, S] keep-mask, or an already additive 4-D bias.
    """
    if attention_mask is None:
        return ((input_ids == pad_token_id).astype(dtype) * -1e4).unsqueeze([1, 2])
    if attention_mask.ndim == 2:
        return ((1.0 - attention_mask.astype(dtype)) * -1e4).unsqueeze([1, 2])
    if attention_mask.ndim == 3:
        return ((1.0 - attention_mask.astype(dtype)) * -1e4).unsqueeze(1)
    return attention_mask.astype(dtype)


class ErnieModel(nn.Layer):
    """The shared encoder. ``forward`` returns ``(sequence_output, pooled_output)``, plus the list
    of all hidden states (embedding output first, then each layer) when ``output_hidden_states``."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embeddings = ErnieEmbeddings(config)
        self.encoder = ErnieEncoder(config)
        self.pooler = ErniePooler(config)

    def forward(self, input_ids, token_type_ids=None, position_ids=None, attention_mask=None,
                task_type_ids=None, output_hidden_states=False):
        emb = self.embeddings(input_ids, token_type_ids, position_ids, task_type_ids)
        bias = attention_bias(input_ids, attention_mask, self.config.pad_token_id, emb.dtype)
        bias.stop_gradient = True
        sequence_output, hidden_states = self.encoder(emb, bias, output_hidden_states)
        pooled_output = self.pooler(sequence_output)
        if output_hidden_states:
            return sequence_output, pooled_output, hidden_states
        return sequence_output, pooled_output


# ---------------------------------------------------------------------------- heads

HEADS = Registry("head")
register_head = HEADS.register  # @register_head("name"): configs and tasks ask for a head by name


def masked_lm_loss(logits, labels):
    """Mean cross-entropy over the masked positions only (logits are already gathered there).

    Averaging over gathered rows sidesteps Paddle's ignore_index=-100 behaviour, which divides
    by all positions instead of the masked ones."""
    return F.cross_entropy(logits, labels.reshape([-1, 1]).astype("int64"), reduction="mean")


@register_head("mlm")
class ErnieMLMHead(nn.Layer):
    """Masked-LM head: transform -> act -> LayerNorm -> projection tied to the word embeddings.

    It runs only at ``masked_positions`` (flat indices into the [B*S] positions), which on small
    models saves more than the whole encoder costs."""

    def __init__(self, config, embedding_weight):
        super().__init__()
        self.transform = nn.Linear(config.hidden_size, config.hidden_size, weight_attr=_weight_attr(config))
        self.activation = _ACTIVATIONS[config.hidden_act]
        self.layer_norm = nn.LayerNorm(config.hidden_size, epsilon=config.layer_norm_eps)
        # Tied to the word embeddings. Held in a tuple so Paddle does not register it a second
        # time as a parameter of this layer (it would appear twice in the state dict).
        self._tied_weight = (embedding_weight,)
        self.decoder_bias = self.create_parameter([config.vocab_size], is_bias=True)

    def forward(self, sequence_output, masked_positions=None):
        h = sequence_output.reshape([-1, sequence_output.shape[-1]])
        if masked_positions is not None:
            h = paddle.gather(h, masked_positions.reshape([-1]).astype("int64"))
        h = self.layer_norm(self.activation(self.transform(h)))
        return paddle.matmul(h, self._tied_weight[0], transpose_y=True) + self.decoder_bias


class _ErnieWithHeads(nn.Layer):
    """Base of the models with heads: an ``ernie`` encoder (named as PaddleNLP names it)."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.ernie = ErnieModel(config)

    def encode(self, input_ids, token_type_ids=None, position_ids=None, attention_mask=None, task_type_ids=None):
        return self.ernie(input_ids, token_type_ids, position_ids, attention_mask, task_type_ids)


class _PretrainingHeads(nn.Layer):
    def __init__(self, config, embedding_weight):
        super().__init__()
        self.predictions = ErnieMLMHead(config, embedding_weight)
        self.seq_relationship = nn.Linear(config.hidden_size, 2, weight_attr=_weight_attr(config))


class ErnieForPretraining(_ErnieWithHeads):
    """ERNIE 1.0 pre-training: masked LM (+ next-sentence prediction when labels are given).

    ``forward`` returns ``(loss, mlm_logits, nsp_logits)`` when ``masked_lm_labels`` are given,
    else ``(mlm_logits, nsp_logits)``. The loss is the masked-LM mean over masked positions,
    plus the NSP cross-entropy when ``next_sentence_labels`` are given."""

    def __init__(self, config):
        super().__init__(config)
        self.cls = _PretrainingHeads(config, self.ernie.embeddings.word_embeddings.weight)

    def forward(self, input_ids, token_type_ids=None, position_ids=None, attention_mask=None,
                task_type_ids=None, masked_positions=None, masked_lm_labels=None, next_sentence_labels=None):
        seq, pooled = self.encode(input_ids, token_type_ids, position_ids, attention_mask, task_type_ids)
        mlm_logits = self.cls.predictions(seq, masked_positions)
        nsp_logits = self.cls.seq_relationship(pooled)
        if masked_lm_labels is None:
            return mlm_logits, nsp_logits
        loss = masked_lm_loss(mlm_logits, masked_lm_labels)
        if next_sentence_labels is not None:
            loss = loss + F.cross_entropy(nsp_logits, next_sentence_labels.reshape([-1, 1]).astype("int64"))
        return loss, mlm_logits, nsp_logits


POOLINGS = ("cls", "mean")


@register_head("sequence_classification")
class ErnieForSequenceClassification(_ErnieWithHeads):
    """Sentence (pair) classification. Returns logits [B, num_labels].

    ``pooling``: "cls" (ERNIE's pooler: tanh(W h_[CLS])) or "mean" (the mean of the top layer over
    the non-pad tokens). A masked-LM-only pre-training never trains [CLS] or the pooler, while every
    token's vector is what it learnt; after the demo's short pre-training "mean" scored a little
    higher on dev and steadier on test (bench/RESULTS.md, issue 10)."""

    def __init__(self, config, num_labels=2, dropout=None, pooling="cls"):
        super().__init__(config)
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.num_labels, self.pooling = num_labels, pooling
        self.dropout = Dropout(config.hidden_dropout_prob if dropout is None else dropout)
        self.classifier = nn.Linear(config.hidden_size, num_labels, weight_attr=_weight_attr(config))

    def forward(self, input_ids, token_type_ids=None, position_ids=None, attention_mask=None, task_type_ids=None):
        seq, pooled = self.encode(input_ids, token_type_ids, position_ids, attention_mask, task_type_ids)
        if self.pooling == "mean":
            keep = (input_ids != self.config.pad_token_id) if attention_mask is None or attention_mask.ndim != 2 \
                else attention_mask
            keep = keep.astype(seq.dtype).unsqueeze(-1)
            pooled = (seq * keep).sum(axis=1) / keep.sum(axis=1).clip(min=1.0)
        return self.classifier(self.dropout(pooled))


@register_head("token_classification")
class ErnieForTokenClassification(_ErnieWithHeads):
    """Per-token classification (NER). Returns logits [B, S, num_labels]."""

    def __init__(self, config, num_labels=7, dropout=None):
        super().__init__(config)
        self.num_labels = num_labels
        self.dropout = Dropout(config.hidden_dropout_prob if dropout is None else dropout)
        self.classifier = nn.Linear(config.hidden_size, num_labels, weight_attr=_weight_attr(config))

    def forward(self, input_ids, token_type_ids=None, position_ids=None, attention_mask=None, task_type_ids=None):
        seq, _ = self.encode(input_ids, token_type_ids, position_ids, attention_mask, task_type_ids)
        return self.classifier(self.dropout(seq))


@register_head("span")
class ErnieForQuestionAnswering(_ErnieWithHeads):
    """Span extraction (MRC). Returns ``(start_logits, end_logits)``, each [B, S]."""

    def __init__(self, config, dropout=None):
        super().__init__(config)
        self.dropout = Dropout(config.hidden_dropout_prob if dropout is None else dropout)
        self.classifier = nn.Linear(config.hidden_size, 2, weight_attr=_weight_attr(config))

    def forward(self, input_ids, token_type_ids=None, position_ids=None, attention_mask=None, task_type_ids=None):
        seq, _ = self.encode(input_ids, token_type_ids, position_ids, attention_mask, task_type_ids)
        logits = self.classifier(self.dropout(seq))
        start_logits, end_logits = paddle.unbind(logits.transpose([2, 0, 1]), axis=0)
        return start_logits, end_logits
