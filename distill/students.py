"""Students: small classifiers that take token ids ``[B, S]`` (0 = padding) and return logits.

Registered by name in ``STUDENTS``; add your own without editing the library::

    from distill.students import Student, register_student

    @register_student("my_gru")
    class MyGRU(Student):
        HPARAMS = {"emb_size": 128}          # its own hparams and their defaults
        def __init__(self, vocab_size, num_labels, hp):
            super().__init__(vocab_size, num_labels, hp)
            ...
        def forward(self, src_ids):
            ...                              # -> logits [B, num_labels]

then ``--hparam '{"student": "my_gru"}'`` (import your module first, e.g. from your own entry
script). A student's hparams are its ``HPARAMS`` keys; unknown keys are refused by the runner.
"""
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from propeller.registry import Registry

__all__ = ["STUDENTS", "register_student", "Student", "BOWStudent", "CNNStudent", "LSTMStudent", "ErnieTinyStudent"]

STUDENTS = Registry("student")
register_student = STUDENTS.register


def _mask(ids, pad_id=0):
    return (ids != pad_id).astype("float32")


def _max_over_real_positions(x, m):
    """Max over the sequence axis of ``x`` [B, S, C], pads (``m`` [B, S, 1] = 0) never winning.
    Through a max-pool, not ``Tensor.max(axis=1)``: Paddle 3.3.1's CPU backward of ``max`` took
    150 ms at [32, 40, 128] against 5 ms for the pool (bench/RESULTS.md, issue 11)."""
    x = x * m - (1.0 - m) * 1e4
    return F.adaptive_max_pool1d(x.transpose([0, 2, 1]), 1).squeeze(-1)


class Student(nn.Layer):
    """Base: ``HPARAMS`` declares the student's own hyper-parameters with their defaults.
    ``word_level`` students read the word vocabulary (distill.data.WordTokenizer); others
    declare their tokenizer themselves (ErnieTinyStudent: subwords)."""

    HPARAMS = {}
    word_level = True
    # compile the training forward with to_static (propeller.train.Model.to_static)? The small
    # students (BOW, CNN, BiLSTM) measure no faster compiled, BOW 10% slower (bench/RESULTS.md,
    # issue 13); ERNIE-tiny measures faster and says so
    to_static = False

    def __init__(self, vocab_size, num_labels, hp):
        super().__init__()
        self.vocab_size, self.num_labels = int(vocab_size), int(num_labels)
        self.hp = {k: hp.get(k, v) if hp is not None else v for k, v in self.HPARAMS.items()}

    def forward(self, src_ids):
        raise NotImplementedError


@register_student("bow")
class BOWStudent(Student):
    """The original ERNIE Slim student: embedding -> masked sum -> softsign -> tanh FC -> logits."""

    HPARAMS = {"emb_size": 128, "hidden_size": 128}

    def __init__(self, vocab_size, num_labels, hp):
        super().__init__(vocab_size, num_labels, hp)
        self.emb = nn.Embedding(self.vocab_size, self.hp["emb_size"], padding_idx=0)
        self.fc = nn.Linear(self.hp["emb_size"], self.hp["hidden_size"])
        self.out = nn.Linear(self.hp["hidden_size"], self.num_labels)

    def forward(self, src_ids):
        x = (self.emb(src_ids) * _mask(src_ids).unsqueeze(-1)).sum(axis=1)
        return self.out(paddle.tanh(self.fc(F.softsign(x))))


@register_student("cnn")
class CNNStudent(Student):
    """Embedding -> 1-D convolution (relu) -> max over the real positions -> tanh FC -> logits."""

    HPARAMS = {"emb_size": 128, "num_filters": 128, "kernel_size": 3, "hidden_size": 128}

    def __init__(self, vocab_size, num_labels, hp):
        super().__init__(vocab_size, num_labels, hp)
        h = self.hp
        self.emb = nn.Embedding(self.vocab_size, h["emb_size"], padding_idx=0)
        self.conv = nn.Conv1D(h["emb_size"], h["num_filters"], h["kernel_size"], padding="same")
        self.fc = nn.Linear(h["num_filters"], h["hidden_size"])
        self.out = nn.Linear(h["hidden_size"], self.num_labels)

    def forward(self, src_ids):
        m = _mask(src_ids).unsqueeze(-1)
        x = self.emb(src_ids).transpose([0, 2, 1])           # [B, E, S]
        c = F.relu(self.conv(x)).transpose([0, 2, 1])         # [B, S, F]
        return self.out(paddle.tanh(self.fc(_max_over_real_positions(c, m))))


@register_student("lstm", "bilstm")
class LSTMStudent(Student):
    """Embedding -> bidirectional LSTM (true lengths) -> max over the real positions -> tanh FC."""

    HPARAMS = {"emb_size": 128, "lstm_size": 128, "hidden_size": 128}

    def __init__(self, vocab_size, num_labels, hp):
        super().__init__(vocab_size, num_labels, hp)
        h = self.hp
        self.emb = nn.Embedding(self.vocab_size, h["emb_size"], padding_idx=0)
        self.lstm = nn.LSTM(h["emb_size"], h["lstm_size"], direction="bidirect")
        self.fc = nn.Linear(2 * h["lstm_size"], h["hidden_size"])
        self.out = nn.Linear(h["hidden_size"], self.num_labels)

    def forward(self, src_ids):
        m = _mask(src_ids)
        lengths = m.sum(axis=1).astype("int64")
        y, _ = self.lstm(self.emb(src_ids), sequence_length=lengths)
        return self.out(paddle.tanh(self.fc(_max_over_real_positions(y, m.unsqueeze(-1)))))


@register_student("ernie_tiny", "transformer")
class ErnieTinyStudent(Student):
    """An ERNIE-tiny-shaped Transformer (ernie.modeling.ErnieModel: few wide layers) on
    subword ids from the SentencePiece + word-dict tokenizer; ``ernie_config`` overrides the
    shape below. ``encode`` gives what layer distillation needs (every hidden state, the
    attention bias)."""

    HPARAMS = {"ernie_config": None}
    word_level = False
    to_static = True
    DEFAULT_CONFIG = dict(hidden_size=256, num_hidden_layers=2, num_attention_heads=4, intermediate_size=1024,
                          hidden_act="relu", max_position_embeddings=256, type_vocab_size=2,
                          hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)

    def __init__(self, vocab_size, num_labels, hp):
        super().__init__(vocab_size, num_labels, hp)
        from ernie.modeling import ErnieConfig, ErnieForSequenceClassification
        cfg = dict(self.DEFAULT_CONFIG)
        cfg.update(self.hp["ernie_config"] or {})
        cfg["vocab_size"] = self.vocab_size
        self.config = ErnieConfig(**cfg)
        self.net = ErnieForSequenceClassification(self.config, num_labels=self.num_labels)

    def forward(self, src_ids):
        return self.net(src_ids)

    def encode(self, src_ids):
        """(logits, hidden_states [embeddings, layer 1, ...], attention bias)."""
        from ernie.modeling import attention_bias
        ernie = self.net.ernie
        seq, pooled, hidden = ernie(src_ids, output_hidden_states=True)
        bias = attention_bias(src_ids, None, self.config.pad_token_id, seq.dtype)
        return self.net.classifier(self.net.dropout(pooled)), hidden, bias
