"""Raw text (or token ids) in, model outputs out, over an exported ERNIE model.

    p = TextPredictor("export_dir")                      # tokenizer from model_meta.json
    logits, = p.predict(["这家店很好", "太差了"])          # one array per model output
    logits, = p.predict(["query a", "query b"], ["title a", "title b"])   # sentence pairs
    outs = p.predict_ids([[1, 52, 2], [1, 9, 33, 2]])     # token ids, ragged rows

Texts become ``[CLS] a [SEP] (b [SEP])`` with the export's tokenizer (``model_meta.json``
``tokenizer`` + ``vocab.txt``, as ``ernie.export`` writes them) or one given here; rows
are cut to ``max_seqlen``, grouped into batches of ``batch_size`` and each batch is padded to
its own longest row. Outputs with a sequence axis (``per_token_outputs`` in the meta, e.g. the
encoder's ``sequence``) come back as a list of per-example arrays cut to each example's
length; the others as one array with the examples along axis 0.

The model inputs are matched by name (see :data:`ROLE_ALIASES`): token ids, sentence-type
ids, position ids (0..len-1), input mask (1 token, 0 padding) and task ids are filled in as
the model asks, so the same code feeds our exports, Propeller exports (``src_ids``,
``sent_ids``) and older exports whose inputs are ``[batch, seq, 1]``.

Runs on ``paddle.inference``: oneDNN on CPU (``use_onednn``), a GPU when one is present
(``use_gpu=None`` picks), ``num_threads`` math threads.
"""
import os

import numpy as np

from propeller.inference.export import read_meta
from propeller.inference.predictor import Predictor, check_inputs

__all__ = ["ROLE_ALIASES", "ernie_role_limits", "role_of", "input_roles", "ErnieFeeder", "make_tokenizer", "TextPredictor"]

ROLE_ALIASES = {
    "src": ("src_ids", "input_ids", "token_ids", "sentence_id", "sentence_ids", "word_ids"),
    "sent": ("sent_ids", "token_type_ids", "segment_ids", "token_type_id", "type_ids"),
    "pos": ("pos_ids", "position_ids", "position_id"),
    "mask": ("input_mask", "attention_mask", "self_attn_mask"),
    "task": ("task_ids", "task_type_ids"),
}
_ROLE_OF = {alias: role for role, names in ROLE_ALIASES.items() for alias in names}


def ernie_role_limits(config):
    """What each role of an ERNIE [batch, seq] input (src, sent, pos, task, mask; see
    :data:`ROLE_ALIASES`) may hold, from a config (ErnieConfig or its
    dict): ids inside their embedding table, no longer than the position table, batch and
    sequence dims shared by all inputs. (Out of range, paddle.inference reads past the table
    or segfaults instead of failing.) Keys missing from a dict config are left unchecked."""
    get = config.get if isinstance(config, dict) else (lambda k, d=None: getattr(config, k, d))
    max_pos = get("max_position_embeddings")
    tables = {"src": get("vocab_size"), "sent": get("type_vocab_size", get("sent_type_vocab_size")),
              "pos": max_pos, "task": get("task_type_vocab_size"), "mask": None}
    out = {}
    for role, size in tables.items():
        lim = {"axes": ["batch", "seq"]}
        if max_pos:
            lim["max_shape"] = [-1, int(max_pos)]
        if size:
            lim["range"] = [0, int(size)]
        out[role] = lim
    return out


def role_of(name):
    """What an input named ``name`` holds: src, sent, pos, mask or task (ValueError if unknown)."""
    role = _ROLE_OF.get(name.lower())
    if role is None:
        raise ValueError(f"cannot tell what input {name!r} is; known names: "
                         + ", ".join(sorted(_ROLE_OF)))
    return role


def input_roles(names):
    """The role of each model input (see :func:`role_of`); the model must take token ids."""
    roles = [role_of(n) for n in names]
    if "src" not in roles:
        raise ValueError(f"the model takes no token ids (inputs {list(names)})")
    return roles


class ErnieFeeder:
    """Builds the feed of an exported ERNIE model from token id rows.

    ``specs`` are a Predictor's ``input_specs``; ``config`` the export's config dict (pad id, and
    the id ranges of older exports whose meta declares none). Every feed goes through
    :func:`propeller.inference.predictor.check_inputs` with those limits: ids outside the
    embedding tables, sequences past the position table, inputs whose batch or sequence dims
    disagree raise ValueError naming the input."""

    def __init__(self, specs, config=None):
        self.roles = input_roles([s.name for s in specs])
        config = config or {}
        by_role = ernie_role_limits(config)
        self.specs = []
        for s, role in zip(specs, self.roles):
            lim = by_role[role]
            rank = len(s.shape) if s.shape is not None else 2
            extra = [1] * (rank - 2)  # Paddle 1.x exports take [batch, seq, 1]
            self.specs.append(s._replace(
                range=s.range if s.range is not None else (tuple(lim["range"]) if "range" in lim else None),
                max_shape=s.max_shape if s.max_shape is not None else (
                    lim["max_shape"] + extra if "max_shape" in lim else None),
                axes=s.axes if s.axes is not None else lim["axes"] + [None] * (rank - 2)))
        self.pad_id = int(config.get("pad_token_id", 0) or 0)
        self.vocab_size = config.get("vocab_size")
        self.type_vocab_size = config.get("type_vocab_size")
        self.max_positions = config.get("max_position_embeddings")
        self.task_id = int(config.get("task_id", 0) or 0)

    def check(self, src, sent=None):
        """Raise ValueError when the feed built from these ids would not fit the model (see
        the class doc)."""
        self.feed(src, sent)

    def pad(self, rows, type_rows=None):
        """Ragged rows -> (src [B, S], sent [B, S], lengths [B]) padded with the pad id."""
        lens = np.array([len(r) for r in rows], dtype=np.int64)
        if len(rows) == 0 or lens.min() == 0:
            raise ValueError("empty batch or empty row")
        src = np.full((len(rows), int(lens.max())), self.pad_id, dtype=np.int64)
        sent = np.zeros_like(src)
        for i, r in enumerate(rows):
            src[i, :lens[i]] = r
            if type_rows is not None:
                if len(type_rows[i]) != lens[i]:
                    raise ValueError(f"row {i}: {lens[i]} token ids but {len(type_rows[i])} type ids")
                sent[i, :lens[i]] = type_rows[i]
        return src, sent, lens

    def feed(self, src, sent=None, pos=None, mask=None):
        """The model's inputs, in order, checked. Missing ones are derived: sentence types 0,
        positions 0..S-1, mask = token is not the pad id, task ids the config's task id.
        Given ones are passed as they are (a float id array is an error, not a silent cast)."""
        src = np.asarray(src)
        if src.ndim != 2:  # the derived inputs take their [batch, seq] from it
            raise ValueError(f"token ids (src_ids): expected a [batch, seq] array, got shape {list(src.shape)}")
        b, s = src.shape
        given = {"src": src, "sent": sent, "pos": pos, "mask": mask}
        derived = {
            "sent": lambda: np.zeros((b, s), np.int64),
            "pos": lambda: np.broadcast_to(np.arange(s, dtype=np.int64), (b, s)),
            "mask": lambda: (src != self.pad_id).astype(np.float32),
            "task": lambda: np.full((b, s), self.task_id, np.int64),
        }
        out = []
        for spec, role in zip(self.specs, self.roles):
            a = np.asarray(given[role]) if given.get(role) is not None else derived[role]()
            if role == "mask" and (a.dtype == bool or np.issubdtype(a.dtype, np.integer)):
                a = a.astype(np.float32)  # a 1/0 keep mask, whatever type the caller built it in
            if spec.shape is not None and len(spec.shape) == 3 and spec.shape[-1] == 1 and a.ndim == 2:
                a = a[..., None]  # Paddle 1.x exports take [batch, seq, 1]
            out.append(a)
        return check_inputs(self.specs, out)


def make_tokenizer(meta=None, vocab_file=None, do_lower_case=None, kind=None):
    """The tokenizer an export names (class, vocab, case), or one for ``vocab_file``.
    None when neither says where a vocabulary is."""
    from ernie.tokenizing import CharTokenizer, FullTokenizer
    info = (meta or {}).get("tokenizer") or {}
    if vocab_file is None and info.get("vocab_file"):
        vocab_file = os.path.join(meta["_dir"], info["vocab_file"])
    if vocab_file is None:
        return None
    kind = kind or info.get("class") or "FullTokenizer"
    lower = info.get("do_lower_case", True) if do_lower_case is None else do_lower_case
    classes = {"FullTokenizer": FullTokenizer, "CharTokenizer": CharTokenizer}
    if kind not in classes:
        raise ValueError(f"unknown tokenizer {kind!r} (known: {sorted(classes)})")
    return classes[kind](vocab_file, do_lower_case=lower)


def _gpu_present():
    try:
        import paddle
        return paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
    except Exception:  # noqa: BLE001  - no CUDA runtime: CPU
        return False


class TextPredictor:
    def __init__(self, model_dir, vocab_file=None, tokenizer=None, max_seqlen=None, batch_size=32,
                 num_threads=1, use_onednn=True, use_gpu=None, do_lower_case=None, precision="fp32",
                 backend="paddle"):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.meta = read_meta(model_dir) or {}
        if use_gpu is None:
            use_gpu = backend == "paddle" and _gpu_present()
        self.predictor = Predictor(model_dir, num_threads=num_threads, use_onednn=use_onednn,
                                   use_gpu=use_gpu, precision=precision, backend=backend)
        self.feeder = ErnieFeeder(self.predictor.input_specs, self.meta.get("config"))
        self.tokenizer = tokenizer if tokenizer is not None else \
            make_tokenizer(self.meta, vocab_file, do_lower_case)
        info = self.meta.get("tokenizer") or {}
        self.max_seqlen = int(max_seqlen or info.get("max_seqlen") or 128)
        if self.feeder.max_positions:
            self.max_seqlen = min(self.max_seqlen, int(self.feeder.max_positions))
        self.batch_size = int(batch_size)
        outs = self.meta.get("outputs")
        self.output_names = list(outs) if outs else list(self.predictor.output_names)
        self._per_token = set(self.meta.get("per_token_outputs") or [])
        self._known_layout = "per_token_outputs" in self.meta

    # -- text -> ids -----------------------------------------------------------------
    def encode(self, text_a, text_b=None):
        """Token ids and sentence-type ids, one ragged row per example."""
        if self.tokenizer is None:
            raise ValueError("no tokenizer: the export has no vocab (model_meta.json "
                             "'tokenizer'); pass vocab_file= or tokenizer=, or use predict_ids")
        text_a, text_b = _as_list(text_a), None if text_b is None else _as_list(text_b)
        if text_b is not None and len(text_b) != len(text_a):
            raise ValueError(f"{len(text_a)} first sentences but {len(text_b)} second ones")
        ids, types = [], []
        for i, a in enumerate(text_a):
            x, t = self.tokenizer.encode(a, None if text_b is None else text_b[i], self.max_seqlen)
            ids.append(x)
            types.append(t)
        return ids, types

    def predict(self, text_a, text_b=None):
        """Outputs for texts (a string or a list; ``text_b`` for pairs), in output order."""
        ids, types = self.encode(text_a, text_b)
        return self.predict_ids(ids, types)

    __call__ = predict

    # -- ids -> outputs --------------------------------------------------------------
    def predict_ids(self, ids, sent_ids=None):
        """Outputs for token id rows (ragged lists or a [batch, seq] array, whose rows are
        taken whole: padding inside them is masked as the model would mask it)."""
        ids = [list(np.asarray(r).reshape(-1)) for r in ids]
        types = None if sent_ids is None else [list(np.asarray(r).reshape(-1)) for r in sent_ids]
        if not ids:
            raise ValueError("no examples")
        if types is not None and len(types) != len(ids):
            raise ValueError(f"{len(ids)} token id rows but {len(types)} type id rows")
        parts = []
        for start in range(0, len(ids), self.batch_size):
            rows = ids[start:start + self.batch_size]
            src, sent, n = self.feeder.pad(rows, None if types is None else types[start:start + self.batch_size])
            outs = self.predictor.predict(self.feeder.feed(src, sent))
            parts.append([self._split(name, o, n, src.shape[1])
                          for name, o in zip(self.output_names, outs)])
        return [self._join(name, [p[k] for p in parts]) for k, name in enumerate(self.output_names)]

    def _is_per_token(self, name, out, seq):
        if self._known_layout:
            return name in self._per_token
        return out.ndim >= 3 and out.shape[1] == seq  # e.g. [B, S, H]; [B, S] is ambiguous

    def _split(self, name, out, lens, seq):
        if self._is_per_token(name, out, seq):
            return [out[i, :lens[i]].copy() for i in range(len(lens))]
        return out

    @staticmethod
    def _join(name, parts):
        if isinstance(parts[0], list):
            return [x for p in parts for x in p]
        return np.concatenate(parts, axis=0)

    def __repr__(self):
        return (f"TextPredictor({self.predictor.model_file!r}, inputs={self.predictor.input_names}, "
                f"outputs={self.output_names}, max_seqlen={self.max_seqlen})")


def _as_list(texts):
    if isinstance(texts, str):
        return [texts]
    texts = list(texts)
    bad = [type(t).__name__ for t in texts if not isinstance(t, str)]
    if bad:
        raise TypeError(f"texts must be strings, got {bad[0]}")
    return texts
