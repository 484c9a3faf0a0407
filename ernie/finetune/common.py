"""Pieces every fine-tuning task shares: the model config, the tokenizer, loading weights, and
the base Propeller model around an ERNIE net."""
import json
import logging
import os


import propeller.paddle as propeller
from ernie.checkpoint import load_config, load_into
from ernie.export import TASK_OUTPUTS, ernie_input_limits, ernie_input_spec
from ernie.modeling import ErnieConfig

log = logging.getLogger("ernie.finetune")

__all__ = ["MODEL_FIELDS", "config_from_hparams", "resolve_ernie_config", "build_tokenizer", "load_weights",
           "check_vocab", "ErnieTaskModel"]

# hparams keys that describe the network rather than the training (``--hparam
# config/ernie_config.json`` puts them there, as the original examples did)
MODEL_FIELDS = frozenset(ErnieConfig.DEFAULTS) | frozenset(ErnieConfig.ALIASES)
_MODEL_MARKERS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")


def config_from_hparams(hparams):
    """The ErnieConfig a task model is built with: ``hparams.ernie_config`` (a dict, set by the
    runner) or the model fields found directly in the hparams."""
    cfg = hparams.get("ernie_config") if hasattr(hparams, "get") else None
    if isinstance(cfg, ErnieConfig):
        return cfg
    if isinstance(cfg, dict):
        return ErnieConfig.from_dict(cfg)
    if isinstance(cfg, str):
        return ErnieConfig.from_json(cfg)
    if hparams is not None and any(k in hparams for k in _MODEL_MARKERS):
        return ErnieConfig(**{k: hparams[k] for k in hparams if k in MODEL_FIELDS})
    raise ValueError("no model config in the hparams: give ernie_config or the model fields (hidden_size, ...)")


def resolve_ernie_config(ernie_config=None, hparams=None, checkpoints=()):
    """Where the network shape comes from, first found wins: ``--ernie_config FILE``; the
    hparams (an ``ernie_config`` entry, or the model fields as in ``--hparam
    config/ernie_config.json``); the config stored with one of ``checkpoints`` (the warm-start
    checkpoint, or a fine-tuned model_dir's ``task.json``)."""
    if ernie_config:
        return ErnieConfig.from_json(ernie_config)
    try:
        return config_from_hparams(hparams)
    except ValueError:
        pass
    for path in checkpoints:
        if not path or not os.path.exists(path):
            continue
        if os.path.isfile(path) and path.endswith(".json"):
            with open(path, encoding="utf-8") as f:
                return ErnieConfig.from_dict(json.load(f)["ernie_config"])
        cfg = load_config(path)
        if cfg is not None:
            log.info("model config taken from the checkpoint %s", path)
            return cfg
    raise SystemExit("no model config: give --ernie_config FILE, or --hparam with the model fields "
                     "(e.g. --hparam config/ernie_config.json), or --warm_start_from a checkpoint that "
                     "has its config (config.json / ernie_config.json beside it)")


def build_tokenizer(vocab_file, sentence_piece_model=None, word_dict=None, do_lower_case=True):
    """FullTokenizer (basic + WordPiece) for ERNIE 1.0/2.0 vocabularies; the ERNIE-tiny
    SentencePiece tokenizer (optionally with word-dict segmentation) when a model is given."""
    from ernie.tokenizing import FullTokenizer, SentencepieceTokenizer
    if not vocab_file:
        raise SystemExit("--vocab_file is required")
    if not os.path.isfile(vocab_file):
        raise SystemExit(f"--vocab_file {vocab_file}: no such file")
    if sentence_piece_model:
        return SentencepieceTokenizer(vocab_file, sentence_piece_model, word_dict=word_dict, lower=do_lower_case)
    if word_dict:
        raise SystemExit("--word_dict only applies with --sentence_piece_model")
    return FullTokenizer(vocab_file, do_lower_case=do_lower_case)


def check_vocab(config, tokenizer, max_seqlen):
    top = max(tokenizer.vocab.values())
    if top >= config.vocab_size:
        raise SystemExit(f"the vocabulary has ids up to {top} but the model's vocab_size is "
                         f"{config.vocab_size}: vocab file and model config do not belong together")
    if max_seqlen > config.max_position_embeddings:
        raise SystemExit(f"--max_seqlen {max_seqlen} exceeds the model's max_position_embeddings "
                         f"{config.max_position_embeddings}")
    if tokenizer.pad_id is not None and tokenizer.pad_id != config.pad_token_id:
        raise SystemExit(f"[PAD] is id {tokenizer.pad_id} in the vocab but the model pads with "
                         f"{config.pad_token_id}")


def load_weights(net, path, predicate=None, strict=True):
    """Load a checkpoint into an ERNIE net (a model with heads): a pre-trained model (ours,
    PaddleNLP, a legacy ``params/`` dir), a pre-training or fine-tuning Propeller checkpoint, or
    our best-model export. ``strict`` is :func:`ernie.checkpoint.load_into`'s: every encoder
    tensor must match, while a head the checkpoint lacks (a new classifier on a pre-trained
    encoder) is left as initialised."""
    report = load_into(net, path, strict=strict, predicate=predicate)
    log.info("loaded %d tensors from %s (%s)%s", len(report.loaded), path, report.kind,
             f"; left as initialised: {', '.join(report.not_loaded)}" if report.not_loaded else "")
    return report


class ErnieTaskModel(propeller.train.Model):
    """A Propeller model around one ERNIE net with a task head.

    Batches: ``(src_ids, sent_ids, labels)`` in training/evaluation, ``(src_ids, sent_ids)``
    for prediction; the exported inference model takes the same two inputs."""

    def __init__(self, hparams, mode=propeller.RunMode.TRAIN, run_config=None):
        super().__init__(hparams, mode, run_config)
        self.config = config_from_hparams(hparams)
        self.net = self.build_net(self.config, hparams)

    def build_net(self, config, hparams):
        raise NotImplementedError

    def forward(self, src_ids, sent_ids):
        return self.net(src_ids, token_type_ids=sent_ids)

    # the ernie.export head kind of the exported model (its output names and per-token outputs)
    EXPORT_KIND = "sequence_classification"
    # the hparams of every fine-tuning run: the network (set by the runner) and the runner's
    # batching (ernie.finetune.runner reads them from the same HParams)
    HPARAMS = frozenset({"ernie_config", "batch_size", "eval_batch_size", "epoch", "in_tokens"})

    def inference_spec(self):
        return ernie_input_spec()

    def output_names(self):
        return list(TASK_OUTPUTS[self.EXPORT_KIND][0])

    def export_meta(self):
        """What ``inference.export`` writes for a checkpoint, so best_inference/ is served and
        read the same way (the tokenizer entry comes from the runner, which knows the vocab)."""
        model = {"kind": self.EXPORT_KIND}
        num_labels = getattr(self, "num_labels", None)
        if num_labels is not None and self.EXPORT_KIND != "span":
            model["num_labels"] = int(num_labels)
        return {"model": model, "per_token_outputs": list(TASK_OUTPUTS[self.EXPORT_KIND][1]),
                "config": self.config.to_dict()}

    def input_limits(self):
        return ernie_input_limits(self.config, [s.name for s in ernie_input_spec()])

    def warm_start(self, from_dir, predicate=None):
        return load_weights(self.net, from_dir, predicate=predicate)
