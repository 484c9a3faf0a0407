"""ERNIE exports for ``paddle.inference``: a checkpoint exported whole (the fine-tuned model
with its head: the logits) or as an encoder alone, with what a text predictor needs beside it.

``export_ernie(model_dir, out_dir, encode_layer=None, task=None, ...)``
    An ERNIE checkpoint (ours, PaddleNLP's, a Propeller ``model_<step>/``, a legacy ERNIE 1.0
    ``params/`` dir; anything :mod:`ernie.checkpoint` reads), either whole or as an encoder
    (see :class:`ErnieEncoderExport`). The vocabulary is copied next to the model so a text
    predictor can tokenize. The command line is ``python -m inference.export``.

The files are those of :mod:`propeller.inference.export` (``model.json``, ``model.pdiparams``,
``model_meta.json``); ERNIE exports add to the meta ``per_token_outputs`` (outputs with a
sequence axis 1), ``model`` (``{"kind": "encoder", "encode_layer": "pooler"}`` or the task
head), ``config`` (the ErnieConfig), ``tokenizer`` (``{"class": "FullTokenizer", "vocab_file":
"vocab.txt", "do_lower_case": true, "max_seqlen": 128}``) and, for every input, the ids it may
hold (:func:`ernie_input_limits`), which the predictor and the servers check.

Input names are ``src_ids``, ``sent_ids`` and optionally ``pos_ids`` (int64 [batch, seq])
and ``input_mask`` (float32 [batch, seq], 1 for tokens, 0 for padding). Without ``pos_ids``
positions are 0..seq-1; without ``input_mask`` padding is wherever ``src_ids`` is the pad id.
"""
import json
import logging
import os
import re
import shutil

import numpy as np
import paddle

from ernie.checkpoint import load_config, load_into, load_state
from ernie.modeling import HEADS, ErnieModel, attention_bias
from ernie.service.text_predictor import ernie_role_limits
from propeller.fsutil import atomic_dir
from propeller.inference.export import export_inference_model

VOCAB_FILE = "vocab.txt"

__all__ = ["TASK_OUTPUTS", "parse_encode_layer", "canonical_encode_layer", "ErnieEncoderExport",
           "ernie_input_spec", "ernie_input_limits", "ernie_role_limits", "load_ernie_checkpoint", "export_ernie", "find_vocab",
           "sample_feed"]

log = logging.getLogger("ernie.export")


# ---------------------------------------------------------------------------- ERNIE encoder

def parse_encode_layer(spec, num_layers):
    """``pooler`` | ``cls`` | ``layerN`` -> ``(kind, n)``; ``n`` = hidden state index.

    Hidden state 0 is the embedding output and ``num_layers`` the top layer; ``layer-1`` is
    the top layer too. ``pooler`` is the pooled fc output, ``cls`` the top layer's [CLS] row."""
    s = str(spec).strip().lower()
    if s == "pooler":
        return "pooler", num_layers
    if s in ("cls", "top"):
        return "layer", num_layers
    m = re.fullmatch(r"layer[_ ]?(-?\d+)", s)
    if m:
        n = int(m.group(1))
        if n < 0:
            n += num_layers + 1
        if not 0 <= n <= num_layers:
            raise ValueError(f"--encode_layer {spec}: the model has layers 0 (embeddings) .. "
                             f"{num_layers} (top); negative counts from the top")
        return "layer", n
    raise ValueError(f"--encode_layer must be pooler, cls or layerN (N in 0..{num_layers}), "
                     f"got {spec!r}")


def canonical_encode_layer(spec, num_layers):
    kind, n = parse_encode_layer(spec, num_layers)
    return "pooler" if kind == "pooler" else f"layer{n}"


class ErnieEncoderExport(paddle.nn.Layer):
    """An ``ErnieModel`` cut at the chosen layer, for export.

    ``forward(src_ids, sent_ids, pos_ids=None, input_mask=None)`` returns ``(embedding,)`` or
    ``(embedding, sequence)``: ``embedding`` [B, H] is the pooled output (``pooler``) or the
    [CLS] row of layer N; ``sequence`` [B, S, H] holds every token of that layer (the top layer
    for ``pooler``). Layers above N are not run."""

    def __init__(self, ernie, encode_layer="pooler", with_sequence=True):
        super().__init__()
        self.ernie = ernie
        self.kind, self.n = parse_encode_layer(encode_layer, ernie.config.num_hidden_layers)
        self.with_sequence = with_sequence

    def forward(self, src_ids, sent_ids, pos_ids=None, input_mask=None):
        m = self.ernie
        x = m.embeddings(src_ids, sent_ids, pos_ids)
        bias = attention_bias(src_ids, input_mask, m.config.pad_token_id, x.dtype)
        for layer in m.encoder.layers[:self.n]:
            x = layer(x, bias)
        emb = m.pooler(x) if self.kind == "pooler" else x[:, 0]
        return (emb, x) if self.with_sequence else (emb,)


def ernie_input_spec(with_pos_ids=False, with_input_mask=False):
    S = paddle.static.InputSpec
    spec = [S([None, None], "int64", "src_ids"), S([None, None], "int64", "sent_ids")]
    if with_pos_ids:
        spec.append(S([None, None], "int64", "pos_ids"))
    if with_input_mask:
        spec.append(S([None, None], "float32", "input_mask"))
    return spec


_NAME_ROLES = {"src_ids": "src", "sent_ids": "sent", "pos_ids": "pos", "input_mask": "mask"}


def ernie_input_limits(config, names=("src_ids", "sent_ids", "pos_ids", "input_mask")):
    """:func:`ernie_role_limits` for the inputs of our exports, by name (``input_limits`` of
    :func:`propeller.inference.export.export_inference_model`)."""
    by_role = ernie_role_limits(config)
    return {n: by_role[_NAME_ROLES[n]] for n in names}


class _HeadExport(paddle.nn.Layer):
    """A model with a head, fed by our input names (positional args of the heads' forward)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, src_ids, sent_ids, pos_ids=None, input_mask=None):
        return self.net(src_ids, sent_ids, pos_ids, input_mask)


def _beside_checkpoint(model_dir, name):
    """The file ``name`` in a checkpoint dir (or a checkpoint file's dir) or its parent, or None."""
    p = os.path.abspath(os.fspath(model_dir))
    d = p if os.path.isdir(p) else os.path.dirname(p)
    for cand in (d, os.path.dirname(d)):
        f = os.path.join(cand, name)
        if os.path.isfile(f):
            return f
    return None


def find_vocab(model_dir):
    """``vocab.txt`` in a checkpoint dir, its ``params/`` parent, or None."""
    return _beside_checkpoint(model_dir, VOCAB_FILE)


TASK_OUTPUTS = {"sequence_classification": (["logits"], []),
                 "token_classification": (["logits"], ["logits"]),
                 "span": (["start_logits", "end_logits"], ["start_logits", "end_logits"])}
def load_ernie_checkpoint(model_dir, ernie_config=None):
    """(state, config, kind) of any checkpoint ernie.checkpoint reads. ValueError when there
    is no config."""
    state, config, kind = load_state(model_dir)
    if ernie_config:
        config = load_config(model_dir, ernie_config)  # legacy dirs get their eps default
    if config is None:
        raise ValueError(f"{model_dir} has no config.json / ernie_config.json beside it; "
                         f"pass --ernie_config")
    return state, config, kind


def _head_of(state):
    return "classifier" if "classifier.weight" in state else None


def build_model(model_dir, encode_layer=None, task=None, ernie_config=None, with_sequence=True, head_args=None):
    """``(layer to export, output names, meta dict, config)`` for an ERNIE checkpoint;
    the weights are loaded strictly. ``head_args``: extra arguments of the task head (the
    classifier's ``pooling``, from the fine-tuning run's task.json)."""
    head_args = dict(head_args or {})
    state, config, kind = load_ernie_checkpoint(model_dir, ernie_config)
    if encode_layer is None and task is None:
        if _head_of(state):
            task = "sequence_classification"
            log.info("%s has a classifier head: exporting it as %s (pass --task or "
                     "--encode_layer to choose)", model_dir, task)
        else:
            encode_layer = "pooler"
    if encode_layer is not None:
        ernie = ErnieModel(config)
        load_into(ernie, state, strict=True)
        layer = ErnieEncoderExport(ernie, encode_layer, with_sequence=with_sequence)
        name = canonical_encode_layer(encode_layer, config.num_hidden_layers)
        outputs = ["embedding", "sequence"] if with_sequence else ["embedding"]
        meta = {"model": {"kind": "encoder", "encode_layer": name},
                "outputs_doc": {"embedding": "pooled output" if name == "pooler" else f"[CLS] row of {name}",
                                "sequence": f"all tokens of {'the top layer' if name == 'pooler' else name}"},
                "per_token_outputs": ["sequence"] if with_sequence else []}
    else:
        if task not in TASK_OUTPUTS:
            raise ValueError(f"--task must be one of {sorted(TASK_OUTPUTS)}, got {task!r}")
        bias = state.get("classifier.bias")
        if task == "span":
            net = HEADS[task](config)
        else:
            if bias is None:
                raise ValueError(f"{model_dir} has no classifier head for --task {task}")
            net = HEADS[task](config, num_labels=int(bias.shape[0]), **head_args)
        load_into(net, state, strict=True)
        layer = _HeadExport(net)
        outputs, per_token = TASK_OUTPUTS[task]
        meta = {"model": {"kind": task, **head_args}, "per_token_outputs": list(per_token)}
        if bias is not None and task != "span":
            meta["model"]["num_labels"] = int(bias.shape[0])
    meta["config"] = config.to_dict()
    meta["source"] = {"checkpoint": os.path.abspath(os.fspath(model_dir)), "kind": kind}
    return layer, outputs, meta, config


# a fine-tuning run's task (task.json "task") -> the head to export
_FINETUNE_HEADS = {"classifier": "sequence_classification", "ranker": "sequence_classification",
                   "ner": "token_classification", "mrc": "span"}


def finetune_meta(model_dir):
    """The ``task.json`` a fine-tuning run (ernie.finetune.runner) wrote beside the checkpoint
    (its ``best/`` dir or the model_dir above a checkpoint), or {}."""
    f = _beside_checkpoint(model_dir, "task.json")
    if f is None:
        return {}
    with open(f, encoding="utf-8") as fh:
        return json.load(fh)


def export_ernie(model_dir, out_dir, encode_layer=None, task=None, ernie_config=None,
                 vocab_file=None, tokenizer="FullTokenizer", do_lower_case=None, max_seqlen=None,
                 with_pos_ids=False, with_input_mask=False, with_sequence=True):
    """Export an ERNIE checkpoint to ``out_dir`` (replaced atomically). Returns ``out_dir``.

    ``encode_layer`` (pooler|cls|layerN) exports the encoder alone; else the model with its
    ``task`` head (default: the head of the fine-tuning run that wrote ``task.json`` beside
    the checkpoint, else a classifier head if the checkpoint has one, else the pooler).
    ``do_lower_case`` and ``max_seqlen`` default to that run's too (else True and 128)."""
    run = finetune_meta(model_dir)
    if encode_layer is None and task is None and run.get("task") in _FINETUNE_HEADS:
        task = _FINETUNE_HEADS[run["task"]]
        log.info("%s was fine-tuned as %s: exporting it with the %s head", model_dir, run["task"], task)
    if do_lower_case is None:
        do_lower_case = not run.get("cased", False)
    if max_seqlen is None:
        max_seqlen = int(run.get("max_seqlen") or 128)
    head_args = {"pooling": run["pooling"]} if task == "sequence_classification" and run.get("pooling") else {}
    layer, outputs, meta, config = build_model(model_dir, encode_layer, task, ernie_config,
                                               with_sequence, head_args)
    vocab_file = vocab_file or find_vocab(model_dir)
    with atomic_dir(out_dir) as tmp:
        if vocab_file:
            shutil.copyfile(vocab_file, os.path.join(tmp, VOCAB_FILE))
            meta["tokenizer"] = {"class": tokenizer, "vocab_file": VOCAB_FILE,
                                 "do_lower_case": bool(do_lower_case), "max_seqlen": int(max_seqlen)}
        else:
            log.warning("no vocab.txt found beside %s (pass --vocab_file): the export takes "
                        "token ids only", model_dir)
            meta["tokenizer"] = None
        spec = ernie_input_spec(with_pos_ids, with_input_mask)
        export_inference_model(layer, tmp, spec, output_names=outputs, meta=meta,
                               input_limits=ernie_input_limits(config, [s.name for s in spec]))
    return out_dir


def sample_feed(feeder, batch=2, seq=16, seed=0):
    """Valid random inputs for an ERNIE export (an ``ErnieFeeder`` of it): ids inside the
    tables, the second row padded, so masking is exercised too."""
    rng = np.random.default_rng(seed)
    vocab = int(feeder.vocab_size or 100)
    types = int(feeder.type_vocab_size or 2)
    src = rng.integers(1, vocab, size=(batch, seq), dtype=np.int64)
    sent = rng.integers(0, types, size=(batch, seq), dtype=np.int64)
    if batch > 1 and seq > 2:
        src[1, seq // 2:] = feeder.pad_id
        sent[1, seq // 2:] = 0
    return feeder.feed(src, sent)
