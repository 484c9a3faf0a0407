"""Teachers: a fine-tuned ERNIE classifier, asked for logits online (served by
``propeller.tools.start_server``, through ``propeller.service.client.InferenceClient``) or
loaded in this process (layer distillation needs its hidden states).

Online labelling happens in the data pipeline, not in a loop of its own: ``TeacherLabelled``
is a Propeller ``Dataset`` node that sends ``window`` student batches at a time to the server
(the client splits them into ``server_batch_size`` chunks over ``num_coroutine`` sockets) and
prefetches the next window while the student trains. Its ``skip`` happens below the teacher,
so a resumed run does not ask the teacher again for the batches it already trained on.
"""
import logging
import os

import numpy as np

from propeller.data import Dataset

__all__ = ["OnlineTeacher", "TeacherLabelled", "LocalTeacher", "softmax"]

log = logging.getLogger("distill")


def softmax(x, axis=-1):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)


def teacher_tokenizer(vocab_file, sentence_piece_model=None, word_dict=None):
    from ernie.finetune.common import build_tokenizer
    return build_tokenizer(vocab_file, sentence_piece_model, word_dict)


def encode_for_teacher(tokenizer, text, max_seqlen):
    """(src_ids, sent_ids) as finetune_classifier.py encodes the same text (so online and
    offline labels agree)."""
    from ernie.finetune.classifier import encode_text
    try:
        return encode_text(tokenizer, text, None, max_seqlen)
    except ValueError:  # an augmented text can be all noise: give the teacher [CLS] [UNK] [SEP]
        ids = [tokenizer.cls_id, tokenizer.unk_id, tokenizer.sep_id]
        return np.asarray(ids, np.int64), np.zeros(3, np.int64)


class OnlineTeacher:
    """Logits of a served teacher for (src_ids, sent_ids) batches. ``check(num_labels)`` probes
    it once at start: an unreachable server or a teacher of another label space stops the run
    with a message naming the address."""

    def __init__(self, host, vocab_file, max_seqlen=128, server_batch_size=64, num_coroutine=10, timeout=10.,
                 retries=3):
        from propeller.service.client import InferenceClient
        self.host, self.max_seqlen = host, int(max_seqlen)
        self.tokenizer = teacher_tokenizer(vocab_file)
        self.client = InferenceClient(host, batch_size=server_batch_size, num_coroutine=num_coroutine,
                                      timeout=timeout, retries=retries)
        self.pad_id = self.tokenizer.pad_id or 0

    def encode(self, text):
        return encode_for_teacher(self.tokenizer, text, self.max_seqlen)

    def logits(self, src_ids, sent_ids):
        outs = self.client(np.asarray(src_ids, np.int64), np.asarray(sent_ids, np.int64))
        return np.asarray(outs[0], np.float32)

    def check(self, num_labels, probe_text="check"):
        from propeller.service.client import ServerError, ServiceTimeout
        ids, sent = self.encode(probe_text)
        try:
            outs = self.client(ids[None], sent[None])
        except ServiceTimeout as e:
            raise SystemExit(f"teacher server {self.host} is not answering: {e}") from None
        except ServerError as e:
            raise SystemExit(f"teacher server {self.host} refused a (src_ids, sent_ids) request: {e}. Is it "
                             f"an exported ERNIE classifier for --teacher_vocab_file?") from None
        if len(outs) != 1 or outs[0].ndim != 2 or outs[0].shape[0] != 1:
            raise SystemExit(f"teacher server {self.host} returns {len(outs)} output(s) of shapes "
                             f"{[list(o.shape) for o in outs]}, not one [batch, num_labels] logits array: not a "
                             f"classifier")
        if outs[0].shape[1] != num_labels:
            raise SystemExit(f"teacher server {self.host} gives {outs[0].shape[1]} classes but the student has "
                             f"{num_labels} labels: this teacher does not match the task's label space")
        log.info("teacher %s answers with %d-class logits", self.host, num_labels)

    def close(self):
        self.client.close()


class TeacherLabelled(Dataset):
    """Batches ``(features..., teacher_src, teacher_sent, labels)`` -> ``(features..., labels')``
    where the teacher's logits fill the soft-label slot of ``labels = (gold, soft, has_soft)``
    for the rows without a gold label (gold -1), as the offline label files do: a gold row keeps
    its gold label alone, so online and offline distillation train on the same targets.

    ``window``: student batches per server call; ``prefetch``: windows labelled ahead in a
    background thread (0: none)."""

    def __init__(self, batches, teacher, window=1, prefetch=2):
        self.base, self.teacher, self.window, self.prefetch = batches, teacher, max(1, int(window)), int(prefetch)
        inner = Dataset(self._labelled, parents=(batches,), kind="teacher_labelled")
        node = inner.buffered(self.prefetch) if self.prefetch > 0 else inner
        super().__init__(node._iter, parents=(node,), kind="teacher_labelled")

    def _label(self, group):
        # one call for the window: its rows are padded to a common length for the server
        n = max(b[-3].shape[1] for b in group)
        src = np.concatenate([np.pad(b[-3], ((0, 0), (0, n - b[-3].shape[1])), constant_values=self.teacher.pad_id)
                              for b in group])
        sent = np.concatenate([np.pad(b[-2], ((0, 0), (0, n - b[-2].shape[1]))) for b in group])
        logits = self.teacher.logits(src, sent)
        out, i = [], 0
        for b in group:
            rows = b[-3].shape[0]
            gold, _, _ = b[-1]
            has_teacher = (np.asarray(gold).reshape(-1) < 0).astype(np.float32)
            out.append(tuple(b[:-3]) + ((gold, logits[i:i + rows], has_teacher),))
            i += rows
        return out

    def _labelled(self, ctx):
        group = []
        for b in self.base._iter(ctx):
            group.append(b)
            if len(group) == self.window:
                yield from self._label(group)
                group = []
        if group:
            yield from self._label(group)

    def skip(self, n):
        return TeacherLabelled(self.base.skip(n), self.teacher, self.window, self.prefetch)


class LocalTeacher:
    """A fine-tuned ERNIE classifier (a ``finetune_classifier.py`` run's ``best/``, or any dir
    with config.json and model weights, num_labels from task.json) loaded here, frozen, in eval
    mode. ``encode(src, sent)`` -> (logits, hidden states, attention bias)."""

    def __init__(self, model_dir, num_labels=None):
        import json

        from ernie.checkpoint import load_config
        from ernie.finetune.common import load_weights
        from ernie.modeling import ErnieForSequenceClassification
        config = load_config(model_dir)
        if config is None:
            raise SystemExit(f"--teacher_model_dir {model_dir}: no config.json / ernie_config.json there")
        task_json = os.path.join(model_dir, "task.json")
        meta = {}
        if os.path.isfile(task_json):
            with open(task_json, encoding="utf-8") as f:
                meta = json.load(f)
        n = int(meta.get("num_labels") or num_labels or 2)
        if num_labels is not None and n != num_labels:
            raise SystemExit(f"teacher {model_dir} has {n} classes but the student has {num_labels} labels: "
                             f"this teacher does not match the task's label space")
        self.config, self.num_labels, self.meta = config, n, meta
        self.net = ErnieForSequenceClassification(config, num_labels=n)
        load_weights(self.net, model_dir)
        self.net.eval()
        for p in self.net.parameters():
            p.stop_gradient = True

    def encode(self, src_ids, sent_ids):
        import paddle

        from ernie.modeling import attention_bias
        with paddle.no_grad():
            seq, pooled, hidden = self.net.ernie(src_ids, token_type_ids=sent_ids, output_hidden_states=True)
            bias = attention_bias(src_ids, None, self.config.pad_token_id, seq.dtype)
            return self.net.classifier(pooled), hidden, bias
