"""Load and save ERNIE checkpoints: ours, PaddleNLP's, Propeller's, and legacy ERNIE 1.0 ``params/`` dirs.

Our format is PaddleNLP's ``save_pretrained`` layout, a directory holding
``model_state.pdparams`` (``paddle.save`` of the state dict) and ``config.json``; our
parameter names are PaddleNLP's, so either side reads the other's directories.

:func:`load_state` reads any supported source into one canonical state dict (our names,
numpy arrays). :func:`load_into` loads it into a model. Every rule about parameter names lives
here, in two functions: :func:`canonical_names` (what a source calls a tensor -> our name:
legacy variable names, the ``net.`` of Propeller task models, PaddleNLP's tied decoder copy) and
:func:`match_name` (our name -> the model's: the ``ernie.`` prefix that models with heads put in
front of the encoder, and the renames a model declares in ``checkpoint_aliases()``, e.g. an
ERNIE 1.0 masked-LM head ``cls.predictions.`` -> a multi-task model's ``heads.0.mlm.``).

Command line::

    python -m ernie.checkpoint convert --src ERNIE_1.0/params --dst ernie-1.0 [--config ernie_config.json]
    python -m ernie.checkpoint inspect PATH
"""
import argparse
import dataclasses
import json
import logging
import os
import re
import sys
import warnings

import numpy as np
import paddle

from ernie.legacy_tensor import read_tensor
from ernie.modeling import ErnieConfig, ErnieForPretraining, ErnieForSequenceClassification, ErnieModel
from propeller.fsutil import atomic_dir, atomic_file, atomic_write_text

__all__ = [
    "PARAMS_FILE", "CONFIG_FILE", "LEGACY_CONFIG_FILES", "LEGACY_LAYER_NORM_EPS", "LoadReport",
    "save_pretrained", "load_state", "load_config", "load_into",
    "legacy_to_ours", "ours_to_legacy", "main",
]

log = logging.getLogger(__name__)

PARAMS_FILE = "model_state.pdparams"
CONFIG_FILE = "config.json"
LEGACY_CONFIG_FILES = ("ernie_config.json", "config.json")
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


def canonical_names(raw, dropped):
    """A source's tensors under our names: a Propeller task model's ``net.`` dropped, legacy
    names mapped to ours, PaddleNLP's tied copies dropped (named in ``dropped``).
    Returns (state, origins: our name -> the source's)."""
    if raw and all(k.startswith(WRAPPER_PREFIX) for k in raw):
        raw = {k[len(WRAPPER_PREFIX):]: v for k, v in raw.items()}
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
        key = ours or name
        if key in state:
            raise ValueError(f"checkpoint holds two tensors for {key}: {origins[key]!r} and {name!r}")
        state[key], origins[key] = arr, name
    # Legacy encoder names map to bare-encoder names; when heads are present the canonical
    # dict is that of a model with heads, whose encoder sits under "ernie.".
    if legacy_mapped and any(_head_group(k) for k in state):
        for key in [k for k in legacy_mapped if k.startswith(_ENCODER_ROOTS)]:
            state[ENCODER_PREFIX + key] = state.pop(key)
            origins[ENCODER_PREFIX + key] = origins.pop(key)
    _drop_tied_decoder(state, origins, dropped)
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
        emb = next((v for k, v in state.items() if k.endswith("embeddings.word_embeddings.weight")), None)
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
    tensors: str       # the .pdparams file, or the legacy params dir
    config_file: str   # or None


def _locate(source):
    """Work out what kind of checkpoint ``source`` is, without reading tensors."""
    path = os.path.abspath(os.fspath(source))
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if os.path.isfile(path) and os.path.basename(path) == PARAMS_FILE:
        path = os.path.dirname(path)  # model_state.pdparams given: use its dir, config included
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
        raise ValueError(
            f"{path}: no checkpoint found. Expected {PARAMS_FILE} (ours, PaddleNLP, Propeller "
            f"model_<step>/), a legacy ERNIE 1.0 params dir (files such as word_embedding) or its "
            f"parent holding params/, or a model_dir with model_<step>/ checkpoints"
            + (f"; found several .pdparams files: {others}" if others else ""))
    return _Location("pdparams", path, os.path.join(path, others[0]), own_config)


# fluid.layers.layer_norm's default epsilon, which every ERNIE 1.0/2.0 static-graph layer used;
# PaddleNLP (and ErnieConfig's default) use 1e-12.
LEGACY_LAYER_NORM_EPS = 1e-5


def _config_for(kind, config_file):
    if config_file is None:
        return None
    config = ErnieConfig.from_json(config_file)
    if kind == "legacy":
        with open(config_file, encoding="utf-8") as f:
            if "layer_norm_eps" not in json.load(f):
                config = config.copy(layer_norm_eps=LEGACY_LAYER_NORM_EPS)
    return config


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
        raw = _load_pdparams(loc.tensors)
    state, origins = canonical_names(raw, dropped)
    return _Loaded(state, _config_for(loc.kind, loc.config_file), loc.kind, loc.path, origins, dropped)


def _looks_paddlenlp(config_path):
    try:
        with open(config_path, encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(d, dict) and any(k in d for k in ("paddlenlp_version", "architectures", "model_type"))


def load_state(path):
    """Read a checkpoint into ``(state, config, kind)``.

    ``state`` maps our parameter names to numpy arrays (legacy names translated, PaddleNLP's
    tied decoder copies dropped); ``config`` is an ErnieConfig when the checkpoint carries one
    (``config.json``, or ``ernie_config.json`` beside a legacy ``params/``; see
    :func:`load_config` for the legacy layer-norm epsilon), else None;
    ``kind`` is one of ``ernie``, ``paddlenlp``, ``propeller``, ``pdparams``, ``legacy``.
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
    heads when fine-tuning) is unused; a head present on both sides must match exactly.
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


def _check_strict(report, loaded, assign, targets, model_name):
    ckpt_heads = {_head_group(n) for n in loaded.state} - {None}
    model_heads = {_head_group(t) for t in targets} - {None}
    mismatched = {n for n, _, _ in report.mismatched}

    def described(name, source):
        # also name the tensor as the checkpoint calls it (legacy file names)
        return f"{name} ({source})" if source and source != name else name

    missing = [described(t, ours_to_legacy(t) if loaded.kind == "legacy" else None) for t in report.not_loaded
               if t not in mismatched and (_head_group(t) is None or _head_group(t) in ckpt_heads)]
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

def _write_checkpoint(save_dir, state, config):
    ours = {PARAMS_FILE, CONFIG_FILE}
    if os.path.isdir(save_dir) and set(os.listdir(save_dir)) - ours:
        # The dir holds other files (vocab, tokenizer config): keep them and replace ours one
        # by one, each atomically.
        with atomic_file(os.path.join(save_dir, PARAMS_FILE)) as tmp:
            paddle.save(state, tmp)
        atomic_write_text(os.path.join(save_dir, CONFIG_FILE), config.to_json() + "\n")
    else:
        with atomic_dir(save_dir) as tmp:
            paddle.save(state, os.path.join(tmp, PARAMS_FILE))
            atomic_write_text(os.path.join(tmp, CONFIG_FILE), config.to_json() + "\n")
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


def _convert(args):
    loaded = _load(args.src)
    config = _config_for(loaded.kind, args.config) if args.config else loaded.config
    if config is None:
        raise ValueError(f"no model config found for {loaded.path} (looked for {' / '.join(LEGACY_CONFIG_FILES)} "
                         f"beside it): pass --config path/to/ernie_config.json")
    task_emb = next((v for k, v in loaded.state.items() if k.endswith("embeddings.task_type_embeddings.weight")), None)
    if task_emb is not None and not config.use_task_id:
        # ERNIE 2.0 configs do not always say use_task_id; the tensor itself does.
        config = config.copy(use_task_id=True, task_type_vocab_size=int(task_emb.shape[0]))
        print(f"note: checkpoint has task embeddings; set use_task_id=true, task_type_vocab_size={task_emb.shape[0]}")
    model = _model_for(loaded.state, config)
    report = load_into(model, loaded, strict=True)
    if report.unused:  # heads we have no model class for: carried over as they are
        print(f"note: carried over without a matching model class: {', '.join(report.unused)}")
    targets = model.state_dict()
    out, rows = {}, []
    for name, arr in loaded.state.items():
        out_name = match_name(name, targets) or name  # the prefix the validating model uses
        out[out_name] = paddle.to_tensor(arr)
        rows.append((out_name, list(arr.shape), loaded.origins.get(name, name)))
    _write_checkpoint(args.dst, out, config)
    print(f"converted {loaded.kind} checkpoint {loaded.path} -> {os.path.abspath(args.dst)}")
    print(f"  model: {type(model).__name__}, vocab_size {config.vocab_size}, hidden_size {config.hidden_size}, "
          f"{config.num_hidden_layers} layers, {config.num_attention_heads} heads, {config.hidden_act}")
    print(f"  tensors ({len(rows)}):")
    for out_name, shape, source in sorted(rows):
        print(f"    {out_name} {shape}" + (f"  <- {source}" if source != out_name else ""))
    if loaded.dropped:
        print(f"  dropped ({len(loaded.dropped)}): {', '.join(loaded.dropped)}")
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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m ernie.checkpoint", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="convert a legacy params dir or a PaddleNLP/pdparams checkpoint to ours")
    conv.add_argument("--src", required=True, help="legacy params/ dir (or its parent), checkpoint dir or .pdparams")
    conv.add_argument("--dst", required=True, help="output directory (model_state.pdparams + config.json)")
    conv.add_argument("--config", help="ernie_config.json / config.json (default: the one beside --src)")
    insp = sub.add_parser("inspect", help="print what a checkpoint holds, in our names")
    insp.add_argument("path")
    args = parser.parse_args(argv)
    try:
        return {"convert": _convert, "inspect": _inspect}[args.command](args)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    from propeller.cli import run_main  # user errors: one message, exit status 2
    sys.exit(run_main(main))
