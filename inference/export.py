"""Export a model for ``paddle.inference``: ``DIR/model.json`` + ``DIR/model.pdiparams``
(``paddle.jit.save``) and ``DIR/model_meta.json`` naming the inputs and outputs.

Python API
----------
``export_inference_model(layer, out_dir, input_spec=None, output_names=None, meta=None)``
    Any layer. It says what it takes through ``inference_spec()`` (a list of
    ``paddle.static.InputSpec``; the Propeller Models define it); ``input_spec`` overrides it.
    The layer is exported in eval mode (no dropout). A layer may add entries to the meta file
    through an ``export_meta()`` method returning a dict (a tokenizer description, say).
    ``BestInferenceModelExporter`` calls this.

``export_ernie(model_dir, out_dir, encode_layer=None, ...)``
    An ERNIE checkpoint (ours, PaddleNLP's, a Propeller ``model_<step>/``, a legacy ERNIE 1.0
    ``params/`` dir; anything :mod:`ernie.checkpoint` reads), either whole (a fine-tuned model
    with its head: the logits) or as an encoder alone (see :class:`ErnieEncoderExport`). The
    vocabulary is copied next to the model so a text predictor can tokenize.

Command line::

    python -m inference.export --model_dir CKPT --out DIR [--encode_layer pooler|cls|layerN]
        [--task sequence_classification|token_classification|span] [--vocab_file vocab.txt]
        [--ernie_config ernie_config.json] [--with_pos_ids] [--with_input_mask]

model_meta.json
---------------
``prefix`` (the file stem, read by ``Predictor``), ``inputs`` (name/shape/dtype, in feed
order), ``outputs`` (names in fetch order; paddle itself calls them ``fetch_name_N``) and, for
ERNIE exports, ``per_token_outputs`` (outputs with a sequence axis 1), ``model``
(``{"kind": "encoder", "encode_layer": "pooler"}`` or the task head), ``config`` (the
ErnieConfig: id ranges for input checks) and ``tokenizer`` (``{"class": "FullTokenizer",
"vocab_file": "vocab.txt", "do_lower_case": true, "max_seqlen": 128}``).

Input names are ``src_ids``, ``sent_ids`` and optionally ``pos_ids`` (int64 [batch, seq])
and ``input_mask`` (float32 [batch, seq], 1 for tokens, 0 for padding). Without ``pos_ids``
positions are 0..seq-1; without ``input_mask`` padding is wherever ``src_ids`` is the pad id.
"""
import argparse
import json
import logging
import os
import re
import shutil
import sys

from propeller import cpu_env  # noqa: F401  (MKL setting must precede paddle's import)

import paddle  # noqa: E402

from ernie.modeling import HEADS, ErnieModel, attention_bias  # noqa: E402

PREFIX = "model"
META_FILE = "model_meta.json"
VOCAB_FILE = "vocab.txt"
META_VERSION = 1

__all__ = ["PREFIX", "META_FILE", "export_inference_model", "read_meta", "parse_encode_layer",
           "ErnieEncoderExport", "ernie_input_spec", "load_ernie_checkpoint", "export_ernie", "find_vocab", "main"]

log = logging.getLogger("inference.export")

# entries export_inference_model owns; export_meta()/meta= may not replace them
_CORE_KEYS = ("prefix", "inputs", "outputs")


def export_inference_model(layer, out_dir, input_spec=None, output_names=None, meta=None):
    spec = input_spec if input_spec is not None else layer.inference_spec()
    if not spec:
        raise ValueError(f"{type(layer).__name__} has no inference_spec(); pass input_spec=[InputSpec(...), ...]")
    # Restore each sublayer's own mode afterwards: a wrapper built around a model in eval()
    # is itself in train mode, and layer.train() would switch dropout on inside the model.
    modes = [(sub, sub.training) for sub in layer.sublayers(include_self=True)]
    layer.eval()
    os.makedirs(out_dir, exist_ok=True)
    try:
        paddle.jit.save(layer, os.path.join(out_dir, PREFIX), input_spec=list(spec))
    finally:
        for sub, training in modes:
            sub.training = training
    info = {
        "prefix": PREFIX,
        "inputs": [{"name": s.name, "shape": list(s.shape), "dtype": str(s.dtype).replace("paddle.", "")}
                   for s in spec],
        "outputs": list(output_names) if output_names else None,
    }
    extra = {}
    if callable(getattr(layer, "export_meta", None)):
        extra.update(layer.export_meta() or {})
    extra.update(meta or {})
    clash = [k for k in extra if k in _CORE_KEYS]
    if clash:
        raise ValueError(f"meta may not set {clash}: export_inference_model writes them")
    if extra:
        info["meta_version"] = META_VERSION
        info.update(extra)
    with open(os.path.join(out_dir, META_FILE), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1, ensure_ascii=False)
    return out_dir


def read_meta(model_dir_or_prefix):
    """The ``model_meta.json`` of an export dir (or of a prefix's dir), or None."""
    p = os.fspath(model_dir_or_prefix)
    d = p if os.path.isdir(p) else os.path.dirname(p)
    path = os.path.join(d, META_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        try:
            meta = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: expected a JSON object")
    meta["_dir"] = d
    return meta


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


_TASK_OUTPUTS = {"sequence_classification": (["logits"], []),
                 "token_classification": (["logits"], ["logits"]),
                 "span": (["start_logits", "end_logits"], ["start_logits", "end_logits"])}
_OWN_PREFIX = "net."  # Propeller task models keep their ERNIE net under net.


def load_ernie_checkpoint(model_dir, ernie_config=None):
    """(state, config, kind) of any checkpoint ernie.checkpoint reads; a Propeller task
    model's ``net.`` prefix is dropped. ValueError when there is no config."""
    from ernie.checkpoint import load_config, load_state
    state, config, kind = load_state(model_dir)
    if ernie_config:
        config = load_config(model_dir, ernie_config)  # legacy dirs get their eps default
    if config is None:
        raise ValueError(f"{model_dir} has no config.json / ernie_config.json beside it; "
                         f"pass --ernie_config")
    if state and all(k.startswith(_OWN_PREFIX) for k in state):
        state = {k[len(_OWN_PREFIX):]: v for k, v in state.items()}
    return state, config, kind


def _head_of(state):
    return "classifier" if "classifier.weight" in state else None


def build_model(model_dir, encode_layer=None, task=None, ernie_config=None, with_sequence=True):
    """``(layer to export, output names, meta dict, config)`` for an ERNIE checkpoint;
    the weights are loaded strictly."""
    from ernie.checkpoint import load_into
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
        if task not in _TASK_OUTPUTS:
            raise ValueError(f"--task must be one of {sorted(_TASK_OUTPUTS)}, got {task!r}")
        bias = state.get("classifier.bias")
        if task == "span":
            net = HEADS[task](config)
        else:
            if bias is None:
                raise ValueError(f"{model_dir} has no classifier head for --task {task}")
            net = HEADS[task](config, num_labels=int(bias.shape[0]))
        load_into(net, state, strict=True)
        layer = _HeadExport(net)
        outputs, per_token = _TASK_OUTPUTS[task]
        meta = {"model": {"kind": task}, "per_token_outputs": list(per_token)}
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
    from propeller.fsutil import atomic_dir
    run = finetune_meta(model_dir)
    if encode_layer is None and task is None and run.get("task") in _FINETUNE_HEADS:
        task = _FINETUNE_HEADS[run["task"]]
        log.info("%s was fine-tuned as %s: exporting it with the %s head", model_dir, run["task"], task)
    if do_lower_case is None:
        do_lower_case = not run.get("cased", False)
    if max_seqlen is None:
        max_seqlen = int(run.get("max_seqlen") or 128)
    layer, outputs, meta, config = build_model(model_dir, encode_layer, task, ernie_config,
                                               with_sequence)
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
        export_inference_model(layer, tmp, ernie_input_spec(with_pos_ids, with_input_mask),
                               output_names=outputs, meta=meta)
    return out_dir


def build_parser():
    ap = argparse.ArgumentParser(prog="python -m inference.export",
                                 description="Export an ERNIE checkpoint (whole, or the encoder "
                                             "alone) for paddle.inference.")
    ap.add_argument("--model_dir", required=True,
                    help="checkpoint: ours/PaddleNLP (model_state.pdparams + config.json), a "
                         "Propeller model_dir or model_<step>/, or a legacy params/ dir")
    ap.add_argument("--out", required=True, help="export directory (replaced)")
    ap.add_argument("--encode_layer", default=None,
                    help="export the encoder alone: pooler | cls | layerN (N=0 embeddings .. top)")
    ap.add_argument("--task", default=None, choices=sorted(_TASK_OUTPUTS),
                    help="export the model with this head (default: sequence_classification "
                         "when the checkpoint has a classifier)")
    ap.add_argument("--ernie_config", default=None, help="config json (default: the checkpoint's)")
    ap.add_argument("--vocab_file", default=None, help="vocab to copy (default: vocab.txt beside "
                                                       "the checkpoint)")
    ap.add_argument("--tokenizer", default="FullTokenizer", choices=["FullTokenizer", "CharTokenizer"])
    ap.add_argument("--no_lower_case", action="store_true",
                    help="cased tokenizer (default: the fine-tuning run's task.json, else lower case)")
    ap.add_argument("--max_seqlen", type=int, default=None,
                    help="recorded for text predictors (default: the fine-tuning run's, else 128)")
    ap.add_argument("--with_pos_ids", action="store_true", help="add a pos_ids input")
    ap.add_argument("--with_input_mask", action="store_true", help="add an input_mask input")
    ap.add_argument("--no_sequence_output", action="store_true",
                    help="encoder: output only the [B, H] embedding")
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        export_ernie(args.model_dir, args.out, args.encode_layer, args.task, args.ernie_config,
                     args.vocab_file, args.tokenizer, False if args.no_lower_case else None, args.max_seqlen,
                     args.with_pos_ids, args.with_input_mask, not args.no_sequence_output)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    meta = read_meta(args.out)
    print(f"exported {args.out}: inputs {[i['name'] for i in meta['inputs']]} "
          f"outputs {meta['outputs']} ({meta['model']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
