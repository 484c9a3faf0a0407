"""The original ERNIE C++ inference demo, in Python: its data files, read and written, and a
run of one through an exported model. The command is ``python -m inference.demo``.

Data format (the C++ demo's ``data/sample``): one batch a line, fields separated by ``;``::

    src_ids;pos_ids;sent_ids;self_attn_mask

Each field is ``shape:data``; shape and data are space-separated, e.g.
``1 128 1:1 1034 79 ... 0 0``. ``self_attn_mask`` is float32, the others int64. A line with
two fields is ``src_ids;sent_ids`` (what Propeller exports take). ``--fields`` names the
fields of other layouts.

The fields are fed by name: ids ``[batch, seq, 1]`` become ``[batch, seq]`` when the model
takes rank 2. The mask may be a keep mask (1 token / 0 padding) or an additive one
(0 / -10000), shaped ``[batch, seq(, 1)]``, ``[batch, seq, seq]`` or
``[batch, heads, seq, seq]``; a square mask must be the outer product of a padding mask
(that is all an encoder of this kind can take). When the model has no position or mask
input (Propeller exports: positions are 0..seq-1 and padding is wherever ``src_ids`` is
the pad id) the file's values are checked to agree with that instead of being silently
dropped.

``run`` prints one line of probabilities per example (softmax over the last axis of the
first output, unless it already holds probabilities) on stdout, and like the C++ demo
``Run N samples, average latency: X ms per sample.`` on stderr.

``make_data`` writes such a file from a TSV of ``text_a[<TAB>text_b]`` lines, padded to
``--max_seqlen`` as the original demo data was.
"""
import sys
import time

import numpy as np

from ernie.data.corpus import read_texts
from ernie.service.text_predictor import ErnieFeeder, make_tokenizer, role_of
from propeller.inference.export import read_meta
from propeller.inference.predictor import Predictor

__all__ = ["parse_line", "read_batches", "to_feed", "probabilities", "format_line", "run", "make_data"]

FIELDS = {2: ("src_ids", "sent_ids"), 4: ("src_ids", "pos_ids", "sent_ids", "self_attn_mask")}
_FLOAT_ROLES = ("mask",)


def _parse_numbers(text, dtype, what):
    try:
        return np.array(text.split(), dtype=dtype)
    except ValueError:
        raise ValueError(f"{what}: not a list of {np.dtype(dtype).name} numbers") from None


def parse_line(line, names=None):
    """``shape:data;shape:data;...`` -> ``{field name: array}``."""
    fields = line.strip().split(";")
    if fields and not fields[-1].strip():
        fields.pop()  # a trailing ';'
    if names is None:
        if len(fields) not in FIELDS:
            raise ValueError(f"{len(fields)} fields; expected 4 (src_ids;pos_ids;sent_ids;"
                             f"self_attn_mask) or 2 (src_ids;sent_ids), or pass --fields")
        names = FIELDS[len(fields)]
    elif len(fields) != len(names):
        raise ValueError(f"{len(fields)} fields but --fields names {len(names)}")
    out = {}
    for name, role, field in zip(names, map(role_of, names), fields):
        if field.count(":") != 1:
            raise ValueError(f"field {name}: expected 'shape:data'")
        shape_s, data_s = field.split(":")
        shape = _parse_numbers(shape_s, np.int64, f"field {name} shape")
        dtype = np.float32 if role in _FLOAT_ROLES else np.int64
        data = _parse_numbers(data_s, dtype, f"field {name} data")
        if shape.size == 0 or (shape <= 0).any():
            raise ValueError(f"field {name}: bad shape {shape.tolist()}")
        if int(np.prod(shape)) != data.size:
            raise ValueError(f"field {name}: shape {shape.tolist()} needs {int(np.prod(shape))} "
                             f"values, got {data.size}")
        out[name] = data.reshape(shape.tolist())
    return out


def read_batches(path, names=None):
    """Yield ``(line number, {name: array})`` for each non-empty line of a demo data file."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                yield n, parse_line(line, names)
            except ValueError as e:
                raise ValueError(f"{path}:{n}: {e}") from None


def _ids2d(a, name):
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim != 2:
        raise ValueError(f"{name}: expected [batch, seq] or [batch, seq, 1], got {list(a.shape)}")
    return a


def _keep_mask(mask, b, s):
    """A padding keep-mask [b, s] (1 token, 0 pad) from any of the mask layouts."""
    m = np.asarray(mask, dtype=np.float32)
    values = np.unique(m)
    if np.isin(values, (0.0, 1.0)).all() and values.max() == 1.0:
        keep = m
    else:  # additive (0 keep, large negative masked); all zeros means nothing is masked
        keep = (m > -1.0).astype(np.float32)
    if keep.ndim == 4:  # [b, heads, s, s]
        if not (keep == keep[:, :1]).all():
            raise ValueError("self_attn_mask differs between heads; the model takes one padding mask")
        keep = keep[:, 0]
    if keep.ndim == 3 and keep.shape[-1] == 1:
        keep = keep[..., 0]
    if keep.ndim == 3:
        if keep.shape != (b, s, s):
            raise ValueError(f"self_attn_mask shape {list(m.shape)} does not fit ids [{b}, {s}]")
        vec = np.diagonal(keep, axis1=1, axis2=2)
        if not (keep == vec[:, :, None] * vec[:, None, :]).all():
            raise ValueError("self_attn_mask is not a padding mask (the outer product of one); "
                             "the model cannot take a general attention pattern")
        keep = vec
    if keep.shape != (b, s):
        raise ValueError(f"self_attn_mask shape {list(m.shape)} does not fit ids [{b}, {s}]")
    return keep


def to_feed(fields, feeder):
    """The model feed for one parsed line (see the module doc for the rules)."""
    by_role = {}
    for name, a in fields.items():
        role = role_of(name)
        by_role[role] = a if role in _FLOAT_ROLES else _ids2d(a, name)
    if "src" not in by_role:
        raise ValueError("no src_ids field")
    src = by_role["src"]
    b, s = src.shape
    for role, a in by_role.items():
        if role not in _FLOAT_ROLES and a.shape != src.shape:
            raise ValueError(f"{role} ids shape {list(a.shape)} differs from src_ids {list(src.shape)}")
    keep = _keep_mask(by_role["mask"], b, s) if "mask" in by_role else None
    pos = by_role.get("pos")
    model = set(feeder.roles)
    if keep is not None and "mask" not in model:
        if not (keep.astype(bool) == (src != feeder.pad_id)).all():
            raise ValueError(f"the model takes no mask: it masks src_ids == {feeder.pad_id}, "
                             f"and the mask in the file disagrees")
    if pos is not None and "pos" not in model:
        live = src != feeder.pad_id if keep is None else keep.astype(bool)
        if not (pos == np.arange(s))[live].all():
            raise ValueError("the model takes no pos_ids (it uses 0..seq-1) and the file's differ")
    if "sent" in by_role and "sent" not in model and by_role["sent"].any():
        raise ValueError("the model takes no sent_ids and the file's are not all 0")
    return feeder.feed(src, by_role.get("sent"), pos, keep)


def probabilities(out):
    """Rows over the last axis: softmax of logits, or the values as they are if they already
    are probabilities (non-negative rows summing to 1)."""
    x = np.asarray(out, dtype=np.float64)
    x = x.reshape(-1, x.shape[-1]) if x.ndim > 1 else x.reshape(-1, 1)
    if (x >= 0).all() and np.allclose(x.sum(-1), 1.0, atol=1e-4):
        return x
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def format_line(row):
    return "\t".join(f"{v:.6f}" for v in row)


def run(args):
    names = args.fields.split(",") if args.fields else None
    batches = list(read_batches(args.data, names))
    if not batches:
        raise ValueError(f"{args.data}: no data lines")
    pred = Predictor(args.model_dir, num_threads=args.num_threads,
                     use_onednn=not args.no_onednn, use_gpu=args.use_gpu, precision=args.precision,
                     backend=args.backend)
    feeder = ErnieFeeder(pred.input_specs, (read_meta(args.model_dir) or {}).get("config"))
    feeds = []
    for n, fields in batches:
        try:
            feeds.append(to_feed(fields, feeder))
        except ValueError as e:
            raise ValueError(f"{args.data}:{n}: {e}") from None
    pred.predict(feeds[0])  # warm-up: the first run builds oneDNN kernels
    total, samples = 0.0, 0
    for rep in range(args.repeat):
        for feed in feeds:
            t = time.perf_counter()
            outs = pred.predict(feed)
            total += time.perf_counter() - t
            samples += len(feed[0])
            if rep == 0 and not args.quiet:
                for row in probabilities(outs[0]):
                    print(format_line(row))
    sys.stdout.flush()
    print(f"Run {samples} samples, average latency: {1000 * total / samples:.3f} ms per sample.",
          file=sys.stderr)
    return 0


def _field(a):
    return " ".join(map(str, a.shape)) + ":" + " ".join(
        (f"{v:g}" for v in a.reshape(-1)) if a.dtype.kind == "f" else map(str, a.reshape(-1).tolist()))


def make_data(args):
    tok = make_tokenizer(vocab_file=args.vocab_file, kind=args.tokenizer)
    pairs = read_texts(args.data)
    lines = []
    for start in range(0, len(pairs), args.batch_size):
        chunk = pairs[start:start + args.batch_size]
        enc = [tok.encode(a, b, args.max_seqlen) for a, b in chunk]
        s = args.max_seqlen if not args.pad_to_longest else max(len(i) for i, _ in enc)
        src = np.zeros((len(enc), s, 1), np.int64)
        sent = np.zeros_like(src)
        pos = np.zeros_like(src)
        mask = np.zeros((len(enc), s, 1), np.float32)
        for i, (ids, types) in enumerate(enc):
            src[i, :len(ids), 0], sent[i, :len(ids), 0] = ids, types
            pos[i, :len(ids), 0] = np.arange(len(ids))
            mask[i, :len(ids), 0] = 1
        parts = [src, sent] if args.two_fields else [src, pos, sent, mask]
        lines.append(";".join(_field(a) for a in parts))
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} batches of up to {args.batch_size} to {args.out}", file=sys.stderr)
    return 0
