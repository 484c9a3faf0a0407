"""Task heads of the multi-task model. Every head has the same call:
``head(sequence_output [B, S, H], pooled_output [B, H], index) -> logits [k, C]`` where ``index``
holds flat positions into the B*S tokens (token and mlm heads) or batch rows (sentence heads),
so a head runs only where its task has targets, whatever else the batch holds."""
import paddle
import paddle.nn as nn

from ernie.modeling import Dropout, ErnieMLMHead, _weight_attr, register_head


@register_head("pretrain_mlm")
class MLMTaskHead(nn.Layer):
    """The masked-LM head (projection tied to the word embeddings) at the given flat positions."""

    def __init__(self, config, word_embedding):
        super().__init__()
        self.mlm = ErnieMLMHead(config, word_embedding)

    def forward(self, sequence_output, pooled_output, index):
        return self.mlm(sequence_output, index)


@register_head("pretrain_token")
class TokenTaskHead(nn.Layer):
    """Per-token classification at the given flat positions."""

    def __init__(self, config, num_classes):
        super().__init__()
        self.dropout = Dropout(config.hidden_dropout_prob)
        self.fc = nn.Linear(config.hidden_size, num_classes, weight_attr=_weight_attr(config))

    def forward(self, sequence_output, pooled_output, index):
        h = sequence_output.reshape([-1, sequence_output.shape[-1]])
        return self.fc(self.dropout(paddle.gather(h, index.reshape([-1]).astype("int64"))))


@register_head("pretrain_sentence")
class SentenceTaskHead(nn.Layer):
    """Sentence (pair) classification on the pooled [CLS] of the given rows."""

    def __init__(self, config, num_classes):
        super().__init__()
        self.dropout = Dropout(config.hidden_dropout_prob)
        self.fc = nn.Linear(config.hidden_size, num_classes, weight_attr=_weight_attr(config))

    def forward(self, sequence_output, pooled_output, index):
        return self.fc(self.dropout(paddle.gather(pooled_output, index.reshape([-1]).astype("int64"))))
