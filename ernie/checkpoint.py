"""Load and save ERNIE checkpoints: ours, PaddleNLP's, Propeller's, legacy ERNIE 1.0 ``params/``
dirs, and Hugging Face transformers' ``ErnieModel`` / ``BertModel`` directories (both ways).

Our format is PaddleNLP's ``save_pretrained`` layout, a directory holding
``model_state.pdparams`` (``paddle.save`` of the state dict) and ``config.json``; our
parameter names are PaddleNLP's, so either side reads the other's directories.

:func:`load_state` reads any supported source into one canonical state dict (our names,
numpy arrays). :func:`load_into` loads it into a model. Every rule about parameter names lives
here, in two functions: :func:`canonical_names` (what a source calls a tensor -> our name:
legacy variable names, transformers' names (:func:`hf_to_ours`, Linear weights transposed),
the ``net.`` of Propeller task models, PaddleNLP's tied decoder copy) and :func:`match_name`
(our name -> the model's: the ``ernie.`` prefix that models with heads put in front of the
encoder, and the renames a model declares in ``checkpoint_aliases()``, e.g. an ERNIE 1.0
masked-LM head ``cls.predictions.`` -> a multi-task model's ``heads.0.mlm.``).
:func:`ours_to_legacy` and :func:`ours_to_hf` are the way back, for writing those formats.

A transformers directory is ``config.json`` (model_type ``ernie`` or ``bert``) with
``model.safetensors`` (read with the ``safetensors`` package's numpy API, no torch needed) or
``pytorch_model.bin`` (needs torch), or a sharded ``*.index.json`` of either.

Command line::

    python -m ernie.checkpoint convert --src ERNIE_1.0/params --dst ernie-1.0 [--config ernie_config.json]
    python -m ernie.checkpoint convert --src HF_DIR --dst ernie-from-hf        # transformers Ernie/Bert dir
    python -m ernie.checkpoint export_hf --src OUR_CKPT --dst HF_DIR [--vocab_file vocab.txt] [--cased]
                                         [--encoder_only]                     # -> AutoModel.from_pretrained
    python -m ernie.checkpoint inspect PATH

Errors in what was given (missing or unreadable files, unknown tensors or architectures,
shapes that do not fit the config) are one message on stderr and exit status 2.
"""
import argparse
import dataclasses
import json
import logging
import os
import re
import shutil
import sys
import warnings

import numpy as np
import paddle

from ernie.legacy_tensor import read_tensor
from ernie.modeling import ErnieConfig, ErnieForPretraining, ErnieForSequenceClassification, ErnieModel
from propeller.cli import EXIT_USER_ERROR, USER_ERRORS, UserError
from propeller.fsutil import atomic_dir, atomic_file, atomic_write_text

__all__ = [
    "PARAMS_FILE", "CONFIG_FILE", "LEGACY_CONFIG_FILES", "HF_WEIGHT_FILES", "LEGACY_LAYER_NORM_EPS", "LoadReport",
    "save_pretrained", "load_state", "load_config", "load_into",
    "legacy_to_ours", "ours_to_legacy", "hf_to_ours", "ours_to_hf", "main",
]

log = logging.getLogger(__name__)

PARAMS_FILE = "model_state.pdparams"
CONFIG_FILE = "config.json"
LEGACY_CONFIG_FILES = ("ernie_config.json", "config.json")
# transformers' weights files, preferred first (a sharded model has the .index.json instead)
HF_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                   "pytorch_model.bin.index.json")
HF_TOKENIZER_CONFIG = "tokenizer_config.json"
VOCAB_FILE = "vocab.txt"
ENCODER_PREFIX = "ernie."
WRAPPER_PREFIX = "net."  # Propeller task models (fine-tuning) keep their ERNIE net under net.
_ENCODER_ROOTS = ("embeddings.", "encoder.", "pooler.")

# ---------------------------------------------------------------------------- legacy names

_LEGACY_FIXED = {
    "word_embedding": "embeddings.word_embeddings.weight",
    "pos_embedding": "embeddings.position_embeddings.weight",
    "sent_embedding": "embeddings.token_type_embeddings.weight",
    "task_embedding": "embeddings.task_type_embeddings.weight",
    "pre_encoder_layer_norm_scale": "embeddings.layer_norm.weight",
    "pre_encoder_layer_norm_bias": "embeddings.layer_norm.bias",
    "pooled_fc.w_0": "pooler.dense.weight",
    "pooled_fc.b_0": "pooler.dense.bias",
    "mask_lm_trans_fc.w_0": "cls.predictions.transform.weight",
    "mask_lm_trans_fc.b_0": "cls.predictions.transform.bias",
    "mask_lm_trans_layer_norm_scale": "cls.predictions.layer_norm.weight",
    "mask_lm_trans_layer_norm_bias": "cls.predictions.layer_norm.bias",
    "mask_lm_out_fc.b_0": "cls.predictions.decoder_bias",
    "next_sent_fc.w_0": "cls.seq_relationship.weight",
    "next_sent_fc.b_0": "cls.seq_relationship.bias",
    # heads of the original fine-tuning scripts (classifier, sequence labeling, MRC)
    "cls_out_w": "classifier.weight",
    "cls_out_b": "classifier.bias",
    "cls_seq_label_out_w": "classifier.weight",
    "cls_seq_label_out_b": "classifier.bias",
    "cls_squad_out_w": "classifier.weight",
    "cls_squad_out_b": "classifier.bias",
}
_LEGACY_LAYER_PARTS = {
    "multi_head_att_query_fc.w_0": "self_attn.q_proj.weight",
    "multi_head_att_query_fc.b_0": "self_attn.q_proj.bias",
    "multi_head_att_key_fc.w_0": "self_attn.k_proj.weight",
    "multi_head_att_key_fc.b_0": "self_attn.k_proj.bias",
    "multi_head_att_value_fc.w_0": "self_attn.v_proj.weight",
    "multi_head_att_value_fc.b_0": "self_attn.v_proj.bias",
    "multi_head_att_output_fc.w_0": "self_attn.out_proj.weight",
    "multi_head_att_output_fc.b_0": "self_attn.out_proj.bias",
    "ffn_fc_0.w_0": "linear1.weight",
    "ffn_fc_0.b_0": "linear1.bias",
    "ffn_fc_1.w_0": "linear2.weight",
    "ffn_fc_1.b_0": "linear2.bias",
    "post_att_layer_norm_scale": "norm1.weight",
    "post_att_layer_norm_bias": "norm1.bias",
    "post_ffn_layer_norm_scale": "norm2.weight",
    "post_ffn_layer_norm_bias": "norm2.bias",
}
_LEGACY_LAYER_RE = re.compile(r"encoder_layer_(\d+)_(.+)$")
_OURS_LAYER_RE = re.compile(r"encoder\.layers\.(\d+)\.(.+)$")
# An untied MLM output projection (weight_sharing=False in the original code), [hidden, vocab].
_LEGACY_UNTIED_DECODER = "mask_lm_out_fc.w_0"
_TIED_DECODER_WEIGHT = "cls.predictions.decoder.weight"
_TIED_DECODER_BIAS = "cls.predictions.decoder.bias"
_DECODER_BIAS = "cls.predictions.decoder_bias"
_WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"
# Optimizer and training-loop state saved next to parameters by Paddle 1.x save_persistables.
_OPTIMIZER_STATE_RE = re.compile(
    r"_moment\d*_\d+$|_beta\d_pow_acc_\d+$|_velocity_\d+$|^learning_rate_\d+$|@|^loss_scaling_\d+$"
    r"|^num_(good|bad)_steps_\d+$|\.master$")
# File names that mark a directory as a legacy params dir.
_LEGACY_MARKERS = ("word_embedding", "pre_encoder_layer_norm_scale")


def legacy_to_ours(name):
    """Our (bare-encoder / head) name for a legacy ERNIE 1.0 variable name, or None."""
    if name in _LEGACY_FIXED:
        return _LEGACY_FIXED[name]
    m = _LEGACY_LAYER_RE.match(name)
    if m and m.group(2) in _LEGACY_LAYER_PARTS:
        return f"encoder.layers.{int(m.group(1))}.{_LEGACY_LAYER_PARTS[m.group(2)]}"
    return None


_FIXED_REVERSE = {}
for _legacy, _ours in _LEGACY_FIXED.items():
    _FIXED_REVERSE.setdefault(_ours, _legacy)  # classifier.* -> cls_out_*, the first listed
_PARTS_REVERSE = {ours: legacy for legacy, ours in _LEGACY_LAYER_PARTS.items()}


def ours_to_legacy(name):
    """The legacy variable name for one of our names (``ernie.`` prefix optional), or None."""
    if name.startswith(ENCODER_PREFIX):
        name = name[len(ENCODER_PREFIX):]
    if name in _FIXED_REVERSE:
        return _FIXED_REVERSE[name]
    m = _OURS_LAYER_RE.match(name)
    if m and m.group(2) in _PARTS_REVERSE:
        return f"encoder_layer_{m.group(1)}_{_PARTS_REVERSE[m.group(2)]}"
    return None


# ---------------------------------------------------------------------------- Hugging Face names

# transformers' ErnieModel / BertModel module paths -> ours; the .weight/.bias suffix carries over
# and Linear weights are transposed (_is_linear_weight).
_HF_LAYER_PARTS = {  # inside encoder.layer.N (ours: encoder.layers.N)
    "attention.self.query": "self_attn.q_proj",
    "attention.self.key": "self_attn.k_proj",
    "attention.self.value": "self_attn.v_proj",
    "attention.output.dense": "self_attn.out_proj",
    "attention.output.LayerNorm": "norm1",
    "intermediate.dense": "linear1",
    "output.dense": "linear2",
    "output.LayerNorm": "norm2",
}
_HF_MODULES = {
    "embeddings.LayerNorm": "embeddings.layer_norm",
    "cls.predictions.transform.dense": "cls.predictions.transform",
    "cls.predictions.transform.LayerNorm": "cls.predictions.layer_norm",
    **{same: same for same in (
        "embeddings.word_embeddings", "embeddings.position_embeddings", "embeddings.token_type_embeddings",
        "embeddings.task_type_embeddings", "pooler.dense", "cls.seq_relationship", "classifier",
        "cls.predictions.decoder")},  # the decoder is a tied copy of the word embeddings, dropped on reading
}
_HF_FIXED = {"cls.predictions.bias": _DECODER_BIAS}  # the MLM output bias; decoder.bias is its tied copy
_HF_LAYER_RE = re.compile(r"encoder\.layer\.(\d+)\.(.+)")
# Buffers, not parameters: transformers versions before 4.31 saved them with the weights.
_HF_BUFFER_RE = re.compile(r"(^|\.)embeddings\.(position_ids|token_type_ids)$")


@dataclasses.dataclass(frozen=True)
class _Renaming:
    """One direction of the transformers <-> ours renaming, table-driven."""
    prefixes: tuple       # the encoder prefixes read...
    prefix: str           # ...and the one written
    fixed: dict           # whole names
    layer_re: object      # an encoder layer's module path -> (index, part)
    layer_format: str     # index, part -> the other side's module path
    layer_parts: dict
    modules: dict         # the other module paths
    layer_norm_params: dict = dataclasses.field(default_factory=dict)  # parameter aliases

    def __call__(self, name):
        prefix = ""
        for p in self.prefixes:
            if name.startswith(p):
                prefix, name = self.prefix, name[len(p):]
                break
        if name in self.fixed:
            out = self.fixed[name]
        else:
            module, _, param = name.rpartition(".")
            if module.endswith("LayerNorm"):
                param = self.layer_norm_params.get(param, param)
            m = self.layer_re.fullmatch(module)
            if m:
                part = self.layer_parts.get(m.group(2))
                module = part and self.layer_format.format(int(m.group(1)), part)
            else:
                module = self.modules.get(module)
            if module is None or param not in ("weight", "bias"):
                return None
            out = f"{module}.{param}"
        if prefix and not out.startswith(_ENCODER_ROOTS):
            return None  # heads never sit under the encoder's prefix
        return prefix + out


# models with heads keep the encoder under their model type (base_model_prefix); BERT's is read
# as ours, and written as ERNIE's. TensorFlow-converted BERT names LayerNorm parameters gamma/beta.
_FROM_HF = _Renaming(("ernie.", "bert."), ENCODER_PREFIX, _HF_FIXED, _HF_LAYER_RE, "encoder.layers.{}.{}",
                     _HF_LAYER_PARTS, _HF_MODULES, {"gamma": "weight", "beta": "bias"})
_TO_HF = _Renaming((ENCODER_PREFIX,), "ernie.", {v: k for k, v in _HF_FIXED.items()}, _OURS_LAYER_RE,
                   "encoder.layer.{}.{}", {v: k for k, v in _HF_LAYER_PARTS.items()},
                   {v: k for k, v in _HF_MODULES.items()})


def hf_to_ours(name):
    """Our name for a transformers ErnieModel/BertModel (or head) parameter name, or None."""
    return _FROM_HF(name)


def ours_to_hf(name):
    """The transformers ``Ernie*`` name for one of our names (``ernie.`` prefix kept), or None."""
    return _TO_HF(name)


def _is_linear_weight(name, arr):
    """Whether a tensor (our name) is a Linear weight: [in, out] in Paddle, [out, in] in torch.
    The other 2-D weights are embedding tables (the MLM decoder is a copy of one), alike on both."""
    return arr.ndim == 2 and name.endswith(".weight") and not name.endswith(("_embeddings.weight",
                                                                             _TIED_DECODER_WEIGHT))


def _has_hf_names(raw):
    # transformers keeps TensorFlow's CamelCase "LayerNorm" (every Ernie/Bert model has
    # embeddings.LayerNorm); Paddle models, ours and PaddleNLP's, say layer_norm/norm1/norm2.
    return any("LayerNorm" in name.split(".") for name in raw)


def _is_encoder_name(name):
    return name.startswith(ENCODER_PREFIX) or name.startswith(_ENCODER_ROOTS)


def _head_group(name):
    """The top-level head module of a parameter (``cls``, ``classifier``), or None for the encoder
    and for flat names that are no module path (unknown legacy variables)."""
    if _is_encoder_name(name) or "." not in name:
        return None
    return name.split(".", 1)[0]


# ---------------------------------------------------------------------------- reading sources

@dataclasses.dataclass
class _Loaded:
    state: dict      # canonical name -> ndarray
    config: object   # ErnieConfig or None
    kind: str        # ernie | paddlenlp | propeller | pdparams | legacy | state_dict
    path: str
    origins: dict    # canonical name -> name in the source (legacy file name, PaddleNLP name)
    dropped: list    # source tensors dropped on purpose (tied copies, optimizer state)


def _is_legacy_dir(d):
    try:
        names = os.listdir(d)
    except OSError:
        return False
    return any(m in names for m in _LEGACY_MARKERS) or any(_LEGACY_LAYER_RE.match(n) for n in names)


def _newest_step_dir(d):
    """The newest Propeller checkpoint ``model_<step>/`` under a model_dir, or None."""
    best = None
    for name in os.listdir(d):
        m = re.fullmatch(r"model_(\d+)", name)
        if m and os.path.isfile(os.path.join(d, name, PARAMS_FILE)):
            if best is None or int(m.group(1)) > best[0]:
                best = (int(m.group(1)), os.path.join(d, name))
    return best and best[1]


def _load_pdparams(path):
    try:
        obj = paddle.load(path, return_numpy=True)
    except Exception as e:  # paddle raises a variety of types for a non-pickle file
        raise ValueError(f"{path}: cannot read as a Paddle state dict ({type(e).__name__}: {e})") from None
    if isinstance(obj, np.ndarray):
        raise ValueError(f"{path}: a single tensor, not a state dict (one variable of a legacy params dir? "
                         f"pass the directory)")
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a state dict (name -> tensor), got {type(obj).__name__}")
    state = {}
    for key, value in obj.items():
        if isinstance(value, np.ndarray):
            state[key] = value
        elif hasattr(value, "numpy"):
            state[key] = value.numpy()
        elif str(key).endswith("@@"):
            continue  # Paddle's structured-name table stored by older paddle.save
        else:
            raise ValueError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor; this is not a "
                             f"model state dict (an optimizer state or a trainer checkpoint?)")
    return state


def _read_legacy_dir(params_dir):
    raw, dropped = {}, []
    for fname in sorted(os.listdir(params_dir)):
        path = os.path.join(params_dir, fname)
        if fname.startswith(".") or not os.path.isfile(path):
            continue
        if _OPTIMIZER_STATE_RE.search(fname):
            dropped.append(fname)  # not read: moments are twice the model's size
            continue
        raw[fname] = read_tensor(path)
    return raw, dropped


def _read_weights(path):
    """name -> ndarray from a weights file: .safetensors, a PyTorch .bin, a sharded
    ``*.index.json`` of either, or else a Paddle state dict."""
    if path.endswith(".index.json"):
        index = _read_json(path, "a sharded checkpoint index")
        shards = sorted(set((index.get("weight_map") or {}).values()))
        if not shards:
            raise ValueError(f"{path}: expected a \"weight_map\" of tensor name -> shard file")
        raw = {}
        for shard in shards:
            raw.update(_read_weights(os.path.join(os.path.dirname(path), shard)))
        return raw
    if path.endswith(".safetensors"):
        return _read_safetensors(path)
    if path.endswith(".bin"):
        return _read_torch_bin(path)
    return _load_pdparams(path)


def _read_safetensors(path):
    try:
        from safetensors.numpy import load_file  # numpy API: no torch needed
    except ImportError:
        raise UserError(f"{path}: reading safetensors needs the safetensors package (pip install safetensors)") from None
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: weights file not found")
    try:
        return load_file(path)
    except Exception as e:  # SafetensorError for a truncated or corrupt file, TypeError for bfloat16
        raise ValueError(f"{path}: cannot read as safetensors ({type(e).__name__}: {e})") from None


def _read_torch_bin(path):
    try:
        import torch  # only for pytorch_model.bin: a pickle of torch tensors
    except ImportError:
        raise UserError(f"{path} is a PyTorch pickle and reading it needs torch, which is not installed "
                        f"(pip install torch, the CPU wheel); or save the model with save_pretrained(..., "
                        f"safe_serialization=True), whose model.safetensors is read without torch") from None
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: weights file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)  # weights_only: no code runs
    except Exception as e:  # pickle, zip and torch's own errors for a file that is not a state dict
        raise ValueError(f"{path}: cannot read as a PyTorch state dict ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
        raise ValueError(f"{path}: expected a state dict (name -> tensor), got {type(obj).__name__}")
    # numpy has no bfloat16
    return {k: (v.float() if v.dtype == torch.bfloat16 else v).numpy() for k, v in obj.items()}


def _read_json(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{path}: expected a JSON object ({what})")
    return d


def canonical_names(raw, dropped, hf=None):
    """A source's tensors under our names: a Propeller task model's ``net.`` dropped, legacy
    names mapped to ours, transformers' names mapped and their Linear weights transposed,
    PaddleNLP's tied copies dropped (named in ``dropped``). ``hf``: whether ``raw`` has
    transformers' names (None: tell from the names). Returns (state, origins: our name -> the
    source's). A transformers tensor with no counterpart here is an error naming it."""
    if raw and all(k.startswith(WRAPPER_PREFIX) for k in raw):
        raw = {k[len(WRAPPER_PREFIX):]: v for k, v in raw.items()}
    if hf is None:
        hf = _has_hf_names(raw)
    state, origins = (_hf_canonical if hf else _legacy_canonical)(raw, dropped)
    _drop_tied_decoder(state, origins, dropped)
    return state, origins


def _put(state, origins, key, arr, name):
    if key in state:
        raise ValueError(f"checkpoint holds two tensors for {key}: {origins[key]!r} and {name!r}")
    state[key], origins[key] = arr, name


def _legacy_canonical(raw, dropped):
    """Ours, PaddleNLP's and legacy ERNIE 1.0 names (the three can mix in one dict)."""
    state, origins = {}, {}
    legacy_mapped = []
    for name, arr in raw.items():
        if _OPTIMIZER_STATE_RE.search(name) and legacy_to_ours(name) is None:
            dropped.append(name)
            continue
        ours = legacy_to_ours(name)
        if name == _LEGACY_UNTIED_DECODER:
            ours, arr = _TIED_DECODER_WEIGHT, np.ascontiguousarray(arr.T)  # fluid fc is [in, out]
        if ours is not None:
            legacy_mapped.append(ours)
        _put(state, origins, ours or name, arr, name)
    # Legacy encoder names map to bare-encoder names; when heads are present the canonical
    # dict is that of a model with heads, whose encoder sits under "ernie.".
    if legacy_mapped and any(_head_group(k) for k in state):
        for key in [k for k in legacy_mapped if k.startswith(_ENCODER_ROOTS)]:
            state[ENCODER_PREFIX + key] = state.pop(key)
            origins[ENCODER_PREFIX + key] = origins.pop(key)
    return state, origins


def _hf_canonical(raw, dropped):
    """transformers' Ernie/Bert names (``bert.`` becomes ``ernie.``); unknown names are errors."""
    state, origins, unknown = {}, {}, []
    for name, arr in raw.items():
        if _HF_BUFFER_RE.search(name):
            dropped.append(name)
            continue
        ours = hf_to_ours(name)
        if ours is None:
            unknown.append(name)
            continue
        if _is_linear_weight(ours, arr):
            arr = np.ascontiguousarray(arr.T)
        _put(state, origins, ours, arr, name)
    if unknown:
        raise ValueError(
            f"{len(unknown)} tensors have no counterpart in ErnieModel and its heads (a transformers "
            f"Ernie/Bert model, its pre-training, masked-LM, sequence or token classification head "
            f"was expected): {', '.join(sorted(unknown))}")
    return state, origins


def _drop_tied_decoder(state, origins, dropped):
    """PaddleNLP's pretraining heads store the output projection (a tied copy of the word
    embeddings) and its bias twice; our head keeps only ``decoder_bias``."""
    if _TIED_DECODER_BIAS in state:
        bias = state.pop(_TIED_DECODER_BIAS)
        if _DECODER_BIAS not in state:
            state[_DECODER_BIAS], origins[_DECODER_BIAS] = bias, origins.pop(_TIED_DECODER_BIAS)
        else:
            origins.pop(_TIED_DECODER_BIAS)
            dropped.append(_TIED_DECODER_BIAS)
            if not np.array_equal(bias, state[_DECODER_BIAS]):
                _warn(f"{_TIED_DECODER_BIAS} differs from {_DECODER_BIAS}; keeping {_DECODER_BIAS}")
    if _TIED_DECODER_WEIGHT in state:
        weight = state.pop(_TIED_DECODER_WEIGHT)
        source = origins.pop(_TIED_DECODER_WEIGHT)
        dropped.append(source)
        emb = next((v for k, v in state.items() if k.endswith(_WORD_EMBEDDINGS)), None)
        if emb is None or emb.shape != weight.shape or not np.array_equal(emb, weight):
            _warn(f"{source} is not equal to the word embeddings; our MLM head ties its output "
                  f"projection to them, so this untied projection is dropped")


def _warn(msg):
    log.warning(msg)
    warnings.warn(msg, stacklevel=3)


@dataclasses.dataclass
class _Location:
    kind: str
    path: str          # the checkpoint as given (resolved)
    tensors: str       # the weights file (.pdparams, .safetensors, .bin, .index.json), or the legacy params dir
    config_file: str   # or None


def _locate(source):
    """Work out what kind of checkpoint ``source`` is, without reading tensors."""
    path = os.path.abspath(os.fspath(source))
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if os.path.isfile(path) and os.path.basename(path) in (PARAMS_FILE,) + HF_WEIGHT_FILES:
        path = os.path.dirname(path)  # the weights file of a checkpoint dir given: use the dir, config included
    if os.path.isfile(path):
        return _Location("pdparams", path, path, None)
    own_config = os.path.join(path, CONFIG_FILE)
    own_config = own_config if os.path.isfile(own_config) else None
    if os.path.isfile(os.path.join(path, PARAMS_FILE)):
        if re.fullmatch(r"model_\d+", os.path.basename(path)):
            kind = "propeller"
        elif own_config and _looks_paddlenlp(own_config):
            kind = "paddlenlp"
        else:
            kind = "ernie"
        return _Location(kind, path, os.path.join(path, PARAMS_FILE), own_config)
    hf_weights = next((os.path.join(path, f) for f in HF_WEIGHT_FILES if os.path.isfile(os.path.join(path, f))), None)
    if hf_weights:
        # PaddleNLP writes model.safetensors too, in Paddle's names and layout
        kind = "paddlenlp" if own_config and not _is_transformers_config(own_config) else "hf"
        return _Location(kind, path, hf_weights, own_config)
    for params_dir in (os.path.join(path, "params"), path):
        if _is_legacy_dir(params_dir):
            candidates = [os.path.join(d, f) for d in (params_dir, os.path.dirname(params_dir))
                          for f in LEGACY_CONFIG_FILES]
            return _Location("legacy", path, params_dir, next((c for c in candidates if os.path.isfile(c)), None))
    newest = _newest_step_dir(path)
    if newest:
        return _locate(newest)
    others = sorted(f for f in os.listdir(path) if f.endswith(".pdparams"))
    if len(others) != 1:
        if own_config and _is_transformers_config(own_config):
            raise ValueError(f"{path}: a transformers config.json but no weights file beside it: expected "
                             f"one of {', '.join(HF_WEIGHT_FILES)}")
        raise ValueError(
            f"{path}: no checkpoint found. Expected {PARAMS_FILE} (ours, PaddleNLP, Propeller "
            f"model_<step>/), a transformers dir (config.json with {' or '.join(HF_WEIGHT_FILES[::2])}), "
            f"a legacy ERNIE 1.0 params dir (files such as word_embedding) or its "
            f"parent holding params/, or a model_dir with model_<step>/ checkpoints"
            + (f"; found several .pdparams files: {others}" if others else ""))
    return _Location("pdparams", path, os.path.join(path, others[0]), own_config)


# fluid.layers.layer_norm's default epsilon, which every ERNIE 1.0/2.0 static-graph layer used;
# PaddleNLP (and ErnieConfig's default) use 1e-12.
LEGACY_LAYER_NORM_EPS = 1e-5


def _config_for(kind, config_file):
    if config_file is None:
        return None
    if kind == "hf":
        return _hf_config(config_file)
    config = ErnieConfig.from_json(config_file)
    if kind == "legacy":
        with open(config_file, encoding="utf-8") as f:
            if "layer_norm_eps" not in json.load(f):
                config = config.copy(layer_norm_eps=LEGACY_LAYER_NORM_EPS)
    return config


# transformers' ErnieConfig defaults (BertConfig's are the same, less the task fields), for the
# fields a config.json leaves out. The names are the same on both sides, ours and theirs.
_HF_CONFIG_DEFAULTS = {
    "vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
    "intermediate_size": 3072, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 512, "type_vocab_size": 2,
    "task_type_vocab_size": 3, "use_task_id": False, "initializer_range": 0.02, "pad_token_id": 0,
    "layer_norm_eps": 1e-12,
}
_HF_MODEL_TYPES = ("ernie", "bert")
# transformers class (less the Ernie/Bert prefix) -> the head modules it holds, in our names.
# Reading accepts these; export_hf picks one by the heads a checkpoint has.
_HF_CLASSES = {
    "Model": (),
    "ForPreTraining": ("cls.predictions", "cls.seq_relationship"),
    "ForMaskedLM": ("cls.predictions",),
    "ForNextSentencePrediction": ("cls.seq_relationship",),
    "ForSequenceClassification": ("classifier",),
    "ForTokenClassification": ("classifier",),
}


def _hf_config(path):
    """Our ErnieConfig for a transformers Ernie/Bert ``config.json``; what our model cannot
    represent (another model type or architecture, relative positions, a decoder, an
    activation we do not have) is an error naming the file."""
    d = _read_json(path, "a transformers model config")
    model_type = d.get("model_type")
    if model_type not in _HF_MODEL_TYPES:
        raise ValueError(f"{path}: model_type {model_type!r}: expected a transformers ERNIE or BERT model "
                         f"(model_type {' or '.join(map(repr, _HF_MODEL_TYPES))})")
    known = [p + c for p in ("Ernie", "Bert") for c in _HF_CLASSES]
    unknown = [a for a in d.get("architectures") or [] if a not in known]
    if unknown:
        raise ValueError(f"{path}: architecture {', '.join(unknown)} is not supported; expected one of "
                         f"{', '.join(known)}")
    if d.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"{path}: position_embedding_type {d['position_embedding_type']!r}: ErnieModel has "
                         f"absolute position embeddings only")
    if d.get("is_decoder") or d.get("add_cross_attention"):
        raise ValueError(f"{path}: a decoder (is_decoder / add_cross_attention): ErnieModel is an encoder")
    fields = {k: d.get(k, default) for k, default in _HF_CONFIG_DEFAULTS.items()}
    labels = d.get("id2label") or {}
    if any(label != f"LABEL_{i}" for i, label in labels.items()):
        fields["id2label"] = labels  # named classes: kept (in ErnieConfig.extra) for the way back
    try:
        return ErnieConfig(**fields)
    except ValueError as e:
        tip = (" (transformers' 'gelu' is the exact erf GELU, which ErnieModel's 'gelu' is; the tanh "
               "approximations gelu_new / gelu_pytorch_tanh have no counterpart)"
               if "hidden_act" in str(e) else "")
        raise ValueError(f"{path}: {e}{tip}") from None


def load_config(source, config_file=None):
    """The ErnieConfig for a checkpoint (``config_file`` overrides the one found beside it), or None.

    For a legacy params dir whose ``ernie_config.json`` does not set ``layer_norm_eps``, it is
    1e-5, the epsilon the original static-graph ERNIE used."""
    loc = _locate(source)
    return _config_for(loc.kind, os.fspath(config_file) if config_file else loc.config_file)


def _load(source):
    """Read ``source`` (a path, a state dict, or an already-read _Loaded) into a _Loaded."""
    if isinstance(source, _Loaded):
        return source
    dropped = []
    if isinstance(source, dict):
        raw = {k: (v if isinstance(v, np.ndarray) else np.asarray(v.numpy() if hasattr(v, "numpy") else v))
               for k, v in source.items()}
        state, origins = canonical_names(raw, dropped)
        return _Loaded(state, None, "state_dict", "<state dict>", origins, dropped)
    loc = _locate(source)
    if loc.kind == "legacy":
        raw, dropped = _read_legacy_dir(loc.tensors)
    else:
        raw = _read_weights(loc.tensors)
    try:
        state, origins = canonical_names(raw, dropped, hf=True if loc.kind == "hf" else None)
    except ValueError as e:
        raise ValueError(f"{loc.tensors}: {e}") from None
    return _Loaded(state, _config_for(loc.kind, loc.config_file), loc.kind, loc.path, origins, dropped)


def _config_dict(config_path):
    """A config.json's keys and values for telling checkpoint kinds apart; {} if unreadable
    (reading the config for the model says what is wrong with it)."""
    try:
        with open(config_path, encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, TypeError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def _is_transformers_config(config_path):
    d = _config_dict(config_path)
    return "transformers_version" in d or ("model_type" in d and "paddlenlp_version" not in d)


def _looks_paddlenlp(config_path):
    return any(k in _config_dict(config_path) for k in ("paddlenlp_version", "architectures", "model_type"))


def load_state(path):
    """Read a checkpoint into ``(state, config, kind)``.

    ``state`` maps our parameter names to numpy arrays (legacy names translated, PaddleNLP's
    tied decoder copies dropped); ``config`` is an ErnieConfig when the checkpoint carries one
    (``config.json``, or ``ernie_config.json`` beside a legacy ``params/``; see
    :func:`load_config` for the legacy layer-norm epsilon), else None;
    ``kind`` is one of ``ernie``, ``paddlenlp``, ``propeller``, ``pdparams``, ``legacy``, ``hf``
    (a transformers directory; its config.json mapped by :func:`load_config`).
    """
    loaded = _load(path)
    return loaded.state, loaded.config, loaded.kind


# ---------------------------------------------------------------------------- loading into a model

@dataclasses.dataclass
class LoadReport:
    """What :func:`load_into` did. Names are the model's state-dict names unless noted."""
    path: str
    kind: str
    config: object = None
    loaded: list = dataclasses.field(default_factory=list)
    not_loaded: list = dataclasses.field(default_factory=list)   # left as initialized
    unused: list = dataclasses.field(default_factory=list)       # checkpoint names
    mismatched: list = dataclasses.field(default_factory=list)   # (name, checkpoint shape, model shape)
    skipped: list = dataclasses.field(default_factory=list)      # excluded by the predicate
    dropped: list = dataclasses.field(default_factory=list)      # source names dropped on purpose

    def __str__(self):
        lines = [f"loaded {len(self.loaded)} tensors from {self.path} ({self.kind})"]
        for label, items in (("not loaded (left as initialized)", self.not_loaded),
                             ("unused checkpoint tensors", self.unused),
                             ("shape mismatch", [f"{n}: checkpoint {c} vs model {m}" for n, c, m in self.mismatched]),
                             ("skipped by predicate", self.skipped),
                             ("dropped (redundant or optimizer state)", self.dropped)):
            if items:
                lines.append(f"{label} ({len(items)}): {', '.join(map(str, items))}")
        return "\n".join(lines)


def match_name(name, targets, aliases=None):
    """The model's name (in ``targets``) for the canonical checkpoint name ``name``, or None:
    the name itself; with the encoder prefix added (a bare encoder checkpoint into a model with
    heads) or stripped (the other way round); or renamed by the first matching prefix of the
    model's ``aliases`` ({checkpoint prefix: model prefix}), encoder prefix handled the same way."""
    cands = [name]
    if name.startswith(ENCODER_PREFIX):
        cands.append(name[len(ENCODER_PREFIX):])
    else:
        cands.append(ENCODER_PREFIX + name)
    for src, dst in (aliases or {}).items():
        if name.startswith(src):
            cands.append(dst + name[len(src):])
    return next((c for c in cands if c in targets), None)


_NP_DTYPES = {paddle.float32: np.float32, paddle.float16: np.float16, paddle.float64: np.float64}


def load_into(model, source, strict=True, predicate=None):
    """Load a checkpoint (any path :func:`load_state` reads, or a state dict) into ``model``.

    Returns a :class:`LoadReport`.

    Names are matched by :func:`match_name`, so a bare encoder loads into a model with heads,
    a pretraining checkpoint into ``ErnieModel``, and a model's declared aliases apply.

    ``strict`` (the default) raises ValueError, loading nothing, naming every encoder tensor
    that is missing, extra or mis-shaped (with both shapes). Task heads are compared as whole
    modules: a head of the model that the checkpoint lacks entirely (a new classifier) is left
    as initialized, and a head of the checkpoint that the model lacks entirely (the pretraining
    heads when fine-tuning) is unused; a head present on both sides must match exactly. The
    pooler is optional the same way: a checkpoint without any pooler tensor (transformers'
    masked-LM and token-classification models have none) leaves it as initialized.
    ``strict=False`` (partial warm start) loads whatever matches by name and shape and reports
    the rest. ``predicate(name) -> bool`` (model names) selects the parameters to load at all.
    """
    loaded = _load(source)
    targets = model.state_dict()
    aliases = model.checkpoint_aliases() if callable(getattr(model, "checkpoint_aliases", None)) else None
    report = LoadReport(path=loaded.path, kind=loaded.kind, config=loaded.config, dropped=list(loaded.dropped))

    assign = {}  # model name -> checkpoint name
    for name in loaded.state:
        target = match_name(name, targets, aliases)
        if target is None or target in assign:
            report.unused.append(name)
        else:
            assign[target] = name
    selected = [t for t in targets if predicate is None or predicate(t)]
    report.skipped = [t for t in targets if predicate is not None and not predicate(t)]
    selected_set = set(selected)
    for target, name in assign.items():
        if target not in selected_set:
            continue
        ckpt_shape, model_shape = list(loaded.state[name].shape), list(targets[target].shape)
        if ckpt_shape != model_shape:
            report.mismatched.append((target, ckpt_shape, model_shape))
        else:
            report.loaded.append(target)
    loaded_set = set(report.loaded)
    report.not_loaded = [t for t in selected if t not in loaded_set]

    if strict:
        _check_strict(report, loaded, assign, targets, type(model).__name__)

    for target in report.loaded:
        arr = loaded.state[assign[target]]
        dtype = _NP_DTYPES.get(targets[target].dtype)
        targets[target].set_value(arr.astype(dtype, copy=False) if dtype is not None else arr)

    log.info("loaded %d tensors into %s from %s (%s)", len(report.loaded), type(model).__name__,
             loaded.path, loaded.kind)
    if report.not_loaded:
        log.warning("not loaded, left as initialized: %s", ", ".join(report.not_loaded))
    if report.unused:
        log.warning("unused checkpoint tensors: %s", ", ".join(report.unused))
    if report.mismatched:
        log.warning("not loaded, shape mismatch: %s",
                    ", ".join(f"{n} checkpoint {c} vs model {m}" for n, c, m in report.mismatched))
    return report


def _is_pooler(name):
    return name.startswith(("pooler.", ENCODER_PREFIX + "pooler."))


def _check_strict(report, loaded, assign, targets, model_name):
    ckpt_heads = {_head_group(n) for n in loaded.state} - {None}
    model_heads = {_head_group(t) for t in targets} - {None}
    mismatched = {n for n, _, _ in report.mismatched}

    def described(name, source):
        # also name the tensor as the checkpoint calls it (legacy file names)
        return f"{name} ({source})" if source and source != name else name

    # transformers builds masked-LM and token-classification models without a pooler: a
    # checkpoint with no pooler tensor at all leaves it as initialized, like a new head
    ckpt_pooler = any(_is_pooler(n) for n in loaded.state)
    missing = [described(t, ours_to_legacy(t) if loaded.kind == "legacy" else None) for t in report.not_loaded
               if t not in mismatched and (_head_group(t) is None or _head_group(t) in ckpt_heads)
               and (ckpt_pooler or not _is_pooler(t))]
    extra = [described(n, loaded.origins.get(n)) for n in report.unused
             if _head_group(n) is None or _head_group(n) in model_heads]
    shapes = []
    for target, ckpt_shape, model_shape in report.mismatched:
        name = described(target, loaded.origins.get(assign[target]))
        line = f"{name}: checkpoint {ckpt_shape} vs model {model_shape}"
        if target.endswith("word_embeddings.weight"):
            line += f" (vocab_size {ckpt_shape[0]} in the checkpoint, {model_shape[0]} in the model)"
        shapes.append(line)
    if missing or extra or shapes:
        parts = [f"cannot load {loaded.path} ({loaded.kind}) into {model_name} strictly:"]
        if missing:
            parts.append(f"missing from the checkpoint ({len(missing)}): " + ", ".join(missing))
        if extra:
            parts.append(f"not in the model ({len(extra)}): " + ", ".join(extra))
        if shapes:
            parts.append(f"shape mismatch ({len(shapes)}): " + "; ".join(shapes))
        parts.append("(pass strict=False for a partial warm start)")
        raise ValueError("\n  ".join(parts))


# ---------------------------------------------------------------------------- saving

def _write_checkpoint(save_dir, state, config, files=None):
    """``files``: {name: source path} copied in beside our two (a vocabulary)."""
    files = files or {}
    ours = {PARAMS_FILE, CONFIG_FILE, *files}
    if os.path.isdir(save_dir) and set(os.listdir(save_dir)) - ours:
        # The dir holds other files (vocab, tokenizer config): keep them and replace ours one
        # by one, each atomically.
        with atomic_file(os.path.join(save_dir, PARAMS_FILE)) as tmp:
            paddle.save(state, tmp)
        atomic_write_text(os.path.join(save_dir, CONFIG_FILE), config.to_json() + "\n")
        for name, src in files.items():
            with atomic_file(os.path.join(save_dir, name)) as tmp:
                shutil.copyfile(src, tmp)
    else:
        with atomic_dir(save_dir) as tmp:
            paddle.save(state, os.path.join(tmp, PARAMS_FILE))
            atomic_write_text(os.path.join(tmp, CONFIG_FILE), config.to_json() + "\n")
            for name, src in files.items():
                shutil.copyfile(src, os.path.join(tmp, name))
    return save_dir


def _as_config(config):
    if config is None or isinstance(config, ErnieConfig):
        return config
    if isinstance(config, dict):
        return ErnieConfig(**config)
    return ErnieConfig.from_json(os.fspath(config))


def save_pretrained(model, save_dir, config=None):
    """Write ``model`` as ``save_dir/{model_state.pdparams, config.json}`` (PaddleNLP's layout).

    The directory appears complete or not at all (built beside it, then renamed); when it
    already holds other files (a vocabulary), those are kept and our two files are replaced
    atomically one at a time. ``config`` defaults to ``model.config``."""
    config = _as_config(config if config is not None else getattr(model, "config", None))
    if config is None:
        raise ValueError(f"{type(model).__name__} has no .config; pass config=")
    return _write_checkpoint(os.fspath(save_dir), model.state_dict(), config)


# ---------------------------------------------------------------------------- command line

def _model_for(state, config):
    """The model class that holds exactly these tensors, to validate a conversion."""
    heads = {_head_group(k) for k in state} - {None}
    if heads == {"cls"}:
        return ErnieForPretraining(config)
    if heads == {"classifier"} and "classifier.bias" in state:
        return ErnieForSequenceClassification(config, num_labels=int(state["classifier.bias"].shape[0]))
    return ErnieModel(config)


def _submodule(name):
    return ".".join(name.split(".")[:2])  # cls.predictions, cls.seq_relationship, classifier.weight


def _checked(loaded, config_file=None):
    """``(config, model)``: ``loaded``'s tensors loaded strictly into the model class that holds
    them, so that a conversion fails before writing anything on a missing, extra or mis-shaped
    tensor. ``config_file`` overrides the config found with the checkpoint."""
    config = _config_for(loaded.kind, config_file) if config_file else loaded.config
    if config is None:
        raise ValueError(f"no model config found for {loaded.path} (looked for {' / '.join(LEGACY_CONFIG_FILES)} "
                         f"beside it): pass --config path/to/ernie_config.json")
    task_emb = next((v for k, v in loaded.state.items() if k.endswith("embeddings.task_type_embeddings.weight")), None)
    if task_emb is not None and not config.use_task_id:
        # ERNIE 2.0 configs do not always say use_task_id; the tensor itself does.
        config = config.copy(use_task_id=True, task_type_vocab_size=int(task_emb.shape[0]))
        print(f"note: checkpoint has task embeddings; set use_task_id=true, task_type_vocab_size={task_emb.shape[0]}")
    model = _model_for(loaded.state, config)
    # transformers' ForMaskedLM and ForNextSentencePrediction hold one of the two pre-training heads
    present = {_submodule(k) for k in loaded.state}
    report = load_into(model, loaded, strict=True,
                       predicate=lambda t: not t.startswith("cls.") or _submodule(t) in present)
    if report.unused:  # heads we have no model class for: carried over as they are
        print(f"note: carried over without a matching model class: {', '.join(report.unused)}")
    words = next((v for k, v in loaded.state.items() if k.endswith(_WORD_EMBEDDINGS)), None)
    if loaded.kind == "hf" and words is not None and config.pad_token_id < len(words) \
            and np.any(words[config.pad_token_id]):
        print(f"note: row {config.pad_token_id} ([PAD]) of the word embeddings is not zero; ErnieModel reads "
              f"[PAD] as zeros (Paddle's Embedding padding_idx), so outputs at [PAD] positions differ from the "
              f"source's (other positions do not, when an attention mask hides the padding)")
    if not any(_is_pooler(k) for k in loaded.state):
        print(f"note: {loaded.path} has no pooler (transformers' masked-LM and token-classification "
              f"models have none): a model loading this checkpoint initializes it")
    return config, model


def _print_tensors(rows, dropped):
    print(f"  tensors ({len(rows)}):")
    for out_name, shape, source in sorted(rows):
        print(f"    {out_name} {shape}" + (f"  <- {source}" if source != out_name else ""))
    if dropped:
        print(f"  dropped ({len(dropped)}): {', '.join(dropped)}")


def _describe(config):
    return (f"vocab_size {config.vocab_size}, hidden_size {config.hidden_size}, {config.num_hidden_layers} layers, "
            f"{config.num_attention_heads} heads, {config.hidden_act}"
            + (f", {config.task_type_vocab_size} task types" if config.use_task_id else ""))


def _convert(args):
    loaded = _load(args.src)
    config, model = _checked(loaded, args.config)
    targets = model.state_dict()
    out, rows = {}, []
    for name, arr in loaded.state.items():
        out_name = match_name(name, targets) or name  # the prefix the validating model uses
        out[out_name] = paddle.to_tensor(arr)
        rows.append((out_name, list(arr.shape), loaded.origins.get(name, name)))
    files = {}
    if loaded.kind == "hf":  # the vocabulary goes along: our tools look for vocab.txt beside a checkpoint
        vocab = os.path.join(loaded.path, VOCAB_FILE)
        files = {VOCAB_FILE: vocab} if os.path.isfile(vocab) else {}
        if _config_dict(os.path.join(loaded.path, HF_TOKENIZER_CONFIG)).get("do_lower_case") is False:
            print("note: the tokenizer is cased (do_lower_case false): fine-tune with --cased")
    _write_checkpoint(args.dst, out, config, files)
    print(f"converted {loaded.kind} checkpoint {loaded.path} -> {os.path.abspath(args.dst)}")
    print(f"  model: {type(model).__name__}, {_describe(config)}")
    if files:
        print(f"  with {', '.join(files)}")
    _print_tensors(rows, loaded.dropped)
    return 0


# ---------------------------------------------------------------------------- transformers export

def _beside(ckpt_path, name):
    """The file ``name`` in a checkpoint's dir or the one above it (a fine-tuning run's
    model_dir, a legacy params/ parent), or None."""
    d = ckpt_path if os.path.isdir(ckpt_path) else os.path.dirname(ckpt_path)
    return next((f for f in (os.path.join(d, name), os.path.join(os.path.dirname(d), name)) if os.path.isfile(f)),
                None)


def _hf_class(state, run, where):
    """The transformers class for a checkpoint's heads (``run``: the fine-tuning run's task.json)."""
    present = {m for heads in _HF_CLASSES.values() for m in heads if any(n.startswith(m + ".") for n in state)}
    others = [n for n in state if not _is_encoder_name(n) and _submodule(n) not in present
              and n.split(".")[0] not in present]
    classes = [c for c, heads in _HF_CLASSES.items() if set(heads) == present]
    if others or not classes:
        raise ValueError(f"{where}: transformers has no ERNIE class holding "
                         f"{', '.join(sorted(others) or sorted(present))}: pass --encoder_only to export the "
                         f"encoder alone")
    task = run.get("task")
    if "classifier" in present:
        if task == "mrc":
            raise ValueError(f"{where}: an MRC span head (our classifier, transformers' qa_outputs) is not "
                             f"exported: pass --encoder_only")
        if run.get("pooling", "cls") != "cls":
            raise ValueError(f"{where}: the classifier was fine-tuned with --pooling {run['pooling']}; "
                             f"transformers' ErnieForSequenceClassification classifies the pooler output "
                             f"(--pooling cls) and would give other logits: pass --encoder_only")
        return "ErnieForTokenClassification" if task == "ner" else "ErnieForSequenceClassification"
    return "Ernie" + classes[0]


def _hf_labels(num_labels, run, config):
    """id -> label name: the fine-tuning run's labels, else those read from transformers, else LABEL_i."""
    if run.get("task") == "ner" and run.get("labels"):
        names = dict(enumerate(run["labels"]))
    elif run.get("label_map"):
        names = {int(i): label for label, i in run["label_map"].items()}
    else:
        names = {int(i): label for i, label in (config.extra.get("id2label") or {}).items()}
    if sorted(names) != list(range(num_labels)):
        names = {i: f"LABEL_{i}" for i in range(num_labels)}  # transformers' own default names
    return names


def _hf_config_dict(config, architecture, id2label=None):
    d = {"architectures": [architecture], "model_type": "ernie"}
    d.update({k: getattr(config, k) for k in _HF_CONFIG_DEFAULTS})
    d["position_embedding_type"] = "absolute"
    if id2label is not None:
        d["id2label"] = {str(i): label for i, label in sorted(id2label.items())}
        d["label2id"] = {label: i for i, label in sorted(id2label.items())}
    return d


_BERT_SPECIAL_TOKENS = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
                        "mask_token": "[MASK]"}


def _hf_vocab(vocab_file, ckpt_path, config):
    from ernie.tokenizing import load_vocab  # only the export needs it
    vocab_file = vocab_file or _beside(ckpt_path, VOCAB_FILE)
    if vocab_file is None:
        raise ValueError(f"no {VOCAB_FILE} beside {ckpt_path} (nor in the dir above it) and no --vocab_file: "
                         f"transformers' BertTokenizer needs the vocabulary")
    vocab = load_vocab(vocab_file)
    top = max(vocab.values())
    if top >= config.vocab_size:
        raise ValueError(f"{vocab_file}: ids go up to {top} but the model's vocab_size is {config.vocab_size}: "
                         f"vocabulary and checkpoint do not belong together")
    if sorted(vocab.values()) != list(range(len(vocab))):
        raise ValueError(f"{vocab_file}: ids are not 0..{len(vocab) - 1} without gaps, which a one-token-a-line "
                         f"vocab.txt (BertTokenizer's) cannot express")
    missing = [t for t in _BERT_SPECIAL_TOKENS.values() if t not in vocab]
    if missing:
        print(f"note: {vocab_file} lacks {', '.join(missing)}: BertTokenizer maps them to [UNK]")
    return vocab_file, vocab


def _export_hf(args):
    try:
        from safetensors.numpy import save_file
    except ImportError:
        raise UserError("export_hf writes model.safetensors and needs the safetensors package "
                        "(pip install safetensors)") from None
    from ernie.tokenizing import save_vocab
    loaded = _load(args.src)
    if os.path.abspath(args.dst) == loaded.path:
        raise ValueError(f"--dst {args.dst} is the checkpoint itself; choose another directory")
    config, model = _checked(loaded, args.config)
    if config.bigram_buckets:
        raise ValueError(f"{loaded.path}: the model has character-bigram embeddings (bigram_buckets "
                         f"{config.bigram_buckets}), which transformers' ErnieModel does not have: it would "
                         f"give other outputs")
    run_file = _beside(loaded.path, "task.json")  # a fine-tuning run's: its head, labels, casing
    run = _read_json(run_file, "a fine-tuning run's task.json") if run_file else {}
    targets = model.state_dict()
    state = {match_name(n, targets) or n: arr for n, arr in loaded.state.items()}
    dropped = [n for n in state if args.encoder_only and not _is_encoder_name(n)]
    state = {n: arr for n, arr in state.items() if n not in dropped}
    architecture = _hf_class(state, run, loaded.path)
    heads = _HF_CLASSES[architecture[len("Ernie"):]]
    if not heads:  # transformers' ErnieModel names its tensors without the prefix
        state = {n[len(ENCODER_PREFIX):] if n.startswith(ENCODER_PREFIX) else n: arr for n, arr in state.items()}
    tensors, rows = {}, []
    for name, arr in state.items():
        hf = ours_to_hf(name)
        if hf is None:  # every name the validating model accepted has one; anything else is a bug
            raise ValueError(f"{loaded.path}: no transformers name for {name}")
        tensors[hf] = np.array(arr.T if _is_linear_weight(name, arr) else arr, order="C")  # a copy
        rows.append((hf, list(tensors[hf].shape), name))
        if name.endswith(_WORD_EMBEDDINGS) and config.pad_token_id < len(arr):
            # what our model computes: Paddle's Embedding(padding_idx) outputs zeros for [PAD],
            # whatever the row holds; torch's returns the row
            tensors[hf][config.pad_token_id] = 0
    id2label = _hf_labels(int(state["classifier.bias"].shape[0]), run, config) if "classifier" in heads else None
    vocab_file, vocab = _hf_vocab(args.vocab_file, loaded.path, config)
    lower = not (args.cased or run.get("cased", False))
    tokenizer_config = {"tokenizer_class": "BertTokenizer", "do_lower_case": lower, "tokenize_chinese_chars": True,
                        "model_max_length": config.max_position_embeddings, **_BERT_SPECIAL_TOKENS}
    if run.get("sentence_piece_model"):
        _warn(f"{loaded.path} was fine-tuned with a SentencePiece tokenizer; the BertTokenizer files written "
              f"do not reproduce it")
    with atomic_dir(args.dst) as tmp:
        # "format": "pt" is what transformers' from_pretrained asks of a safetensors file
        save_file(tensors, os.path.join(tmp, HF_WEIGHT_FILES[0]), metadata={"format": "pt"})
        for name, d in ((CONFIG_FILE, _hf_config_dict(config, architecture, id2label)),
                        (HF_TOKENIZER_CONFIG, tokenizer_config)):
            atomic_write_text(os.path.join(tmp, name), json.dumps(d, indent=2, ensure_ascii=False) + "\n")
        save_vocab(vocab, os.path.join(tmp, VOCAB_FILE), format="plain")
    print(f"exported {loaded.kind} checkpoint {loaded.path} -> {os.path.abspath(args.dst)} (transformers)")
    print(f"  model: {architecture}, {_describe(config)}"
          + (f", labels {list(id2label.values())}" if id2label else ""))
    print(f"  tokenizer: BertTokenizer, do_lower_case {lower}, {len(vocab)} tokens from {vocab_file}")
    _print_tensors(rows, loaded.dropped + dropped)
    if config.task_id:
        print(f"note: the model's default task_id is {config.task_id}; transformers uses task 0 when "
              f"task_type_ids are not given")
    return 0


def _inspect(args):
    loaded = _load(args.path)
    print(f"{loaded.path}: {loaded.kind}, {len(loaded.state)} tensors")
    if loaded.config is not None:
        print(f"  config: {loaded.config.to_dict()}")
    for name, arr in loaded.state.items():
        src = loaded.origins.get(name)
        print(f"  {name} {list(arr.shape)} {arr.dtype}" + (f"  <- {src}" if src and src != name else ""))
    if loaded.dropped:
        print(f"  dropped ({len(loaded.dropped)}): {', '.join(loaded.dropped)}")
    return 0


_EXPORT_HF_DOC = """\
Write a checkpoint as a transformers directory that AutoModel.from_pretrained(DIR) and
BertTokenizer.from_pretrained(DIR) read: config.json (model_type "ernie"), model.safetensors,
vocab.txt (one token a line) and tokenizer_config.json (BertTokenizer, do_lower_case).

kept:    the encoder, its task-type embeddings (use_task_id, task_type_vocab_size) and pooler;
         a classifier head as ErnieForSequenceClassification (ErnieForTokenClassification when
         the fine-tuning run's task.json says ner), with num_labels and the label names of
         task.json or of the transformers config it came from; the masked-LM (+ next-sentence)
         head as ErnieForMaskedLM (ErnieForPreTraining).
dropped: every head with --encoder_only. Refused unless --encoder_only: MRC span heads,
         classifiers fine-tuned with --pooling mean, heads transformers has no class for.
not carried: our default task_id (transformers uses task 0 without task_type_ids), the
         attention mask derived from [PAD] ids (give transformers an attention_mask), and the
         [PAD] row of the word embeddings, written as the zeros our embedding lookup reads (a
         masked-LM head's logit for [PAD], which reads the row, may differ). Unlike
         our FullTokenizer, BertTokenizer does not split Unicode symbols (such as the euro
         sign or emoji) off the words around them."""


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m ernie.checkpoint", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="convert a legacy params dir, a PaddleNLP/pdparams checkpoint or a "
                                          "transformers Ernie/Bert dir to ours")
    conv.add_argument("--src", required=True,
                      help="legacy params/ dir (or its parent), checkpoint dir or .pdparams, or a transformers dir "
                           "(config.json + model.safetensors or pytorch_model.bin; its vocab.txt is copied along)")
    conv.add_argument("--dst", required=True, help="output directory (model_state.pdparams + config.json)")
    conv.add_argument("--config", help="ernie_config.json / config.json (default: the one beside --src)")
    exp = sub.add_parser("export_hf", help="write a checkpoint as a transformers ErnieModel directory",
                         description=_EXPORT_HF_DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    exp.add_argument("--src", required=True, help="any checkpoint `convert` reads")
    exp.add_argument("--dst", required=True, help="output directory (replaced as a whole)")
    exp.add_argument("--vocab_file", help="vocab.txt (either format; default: the one beside --src or in the dir above)")
    exp.add_argument("--cased", action="store_true",
                     help="do_lower_case false (default: the fine-tuning run's task.json, else lower-cased)")
    exp.add_argument("--encoder_only", action="store_true", help="drop the heads: a plain ErnieModel")
    exp.add_argument("--config", help="ernie_config.json / config.json (default: the one beside --src)")
    insp = sub.add_parser("inspect", help="print what a checkpoint holds, in our names")
    insp.add_argument("path")
    args = parser.parse_args(argv)
    try:
        return {"convert": _convert, "export_hf": _export_hf, "inspect": _inspect}[args.command](args)
    except USER_ERRORS as e:  # what was given is wrong: one message, no traceback
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    from propeller.cli import run_main  # user errors: one message, exit status 2
    sys.exit(run_main(main))
