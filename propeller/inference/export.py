"""The on-disk layout of an exported model: write it for any Layer, read its meta, find it.

``export_inference_model(layer, out_dir, input_spec=None, output_names=None, meta=None,
input_limits=None)`` writes ``out_dir/model.json`` + ``model.pdiparams`` (``paddle.jit.save``,
in eval mode: no dropout) and ``out_dir/model_meta.json``. The layer says what it takes through
``inference_spec()`` (a list of ``paddle.static.InputSpec``; Propeller Models define it);
``input_spec`` overrides it. A layer may add meta entries through ``export_meta()`` and declare
the values its inputs may hold through ``input_limits()``; ``meta=`` / ``input_limits=`` add or
override. ``BestInferenceModelExporter`` calls this.

model_meta.json
---------------
``prefix`` (the file stem), ``inputs`` (name, shape, dtype in feed order; optionally ``range``
``[lo, hi)`` for integer inputs such as ids that index a table, ``max_shape`` with -1 for an
unbounded dim, and ``axes``, a name per dim such as ``["batch", "seq"]``: inputs whose dims share
a name must agree on their size), ``outputs`` (names in fetch order: the caller's
``output_names``, else the layer's ``output_names()``, else ``output_0``, ``output_1``, ...;
paddle itself calls them ``fetch_name_N``), and whatever the layer or caller adds. The
predictor checks every request against ``inputs`` before paddle sees it: an id outside its
table would read out of bounds instead of failing.

Accepted exports (``resolve_model``): a prefix ``P`` with ``P.json`` (PIR program) or
``P.pdmodel`` (legacy program) next to ``P.pdiparams``; a directory holding exactly one such
pair, or several plus a ``model_meta.json`` naming the one to serve (``{"prefix": "inference"}``);
a Paddle 1.x ``save_inference_model`` directory (``__model__`` with ``__params__`` or ``params``,
or one file per parameter).
"""
import json
import os

from propeller import cpu_env  # noqa: F401  (MKL setting must precede paddle's import)

__all__ = ["PREFIX", "META_FILE", "META_VERSION", "export_inference_model", "read_meta", "resolve_model"]

PREFIX = "model"
META_FILE = "model_meta.json"
META_VERSION = 1

# entries export_inference_model owns; export_meta()/meta= may not replace them
_CORE_KEYS = ("prefix", "inputs", "outputs")
_LIMIT_KEYS = ("range", "max_shape", "axes")


def _input_entries(spec, limits):
    unknown = sorted(set(limits) - {s.name for s in spec})
    if unknown:
        raise ValueError(f"input_limits name inputs the model does not take: {unknown}")
    entries = []
    for s in spec:
        e = {"name": s.name, "shape": list(s.shape), "dtype": str(s.dtype).replace("paddle.", "")}
        lim = limits.get(s.name) or {}
        bad = sorted(set(lim) - set(_LIMIT_KEYS))
        if bad:
            raise ValueError(f"input_limits[{s.name!r}]: unknown keys {bad} (known: {list(_LIMIT_KEYS)})")
        e.update({k: [x if x is None or k == "axes" else int(x) for x in v] for k, v in lim.items()})
        if "axes" in e and not all(a is None or isinstance(a, str) for a in e["axes"]):
            raise ValueError(f"input_limits[{s.name!r}]['axes']: a name (or None) per dim, got {e['axes']}")
        entries.append(e)
    return entries


def export_inference_model(layer, out_dir, input_spec=None, output_names=None, meta=None, input_limits=None):
    import paddle
    spec = input_spec if input_spec is not None else layer.inference_spec()
    if not spec:
        raise ValueError(f"{type(layer).__name__} has no inference_spec(); pass input_spec=[InputSpec(...), ...]")
    limits = dict(layer.input_limits() or {}) if callable(getattr(layer, "input_limits", None)) else {}
    limits.update(input_limits or {})
    if output_names is None and callable(getattr(layer, "output_names", None)):
        output_names = layer.output_names()
    info = {"prefix": PREFIX, "inputs": _input_entries(spec, limits),
            "outputs": list(output_names) if output_names else None}
    extra = dict(layer.export_meta() or {}) if callable(getattr(layer, "export_meta", None)) else {}
    extra.update(meta or {})
    clash = [k for k in extra if k in _CORE_KEYS]
    if clash:
        raise ValueError(f"meta may not set {clash}: export_inference_model writes them")
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
    if info["outputs"] is None:  # users and the servers' clients read outputs by name: never leave it empty
        n = _count_fetches(os.path.join(out_dir, PREFIX))
        info["outputs"] = [f"output_{i}" for i in range(n)] if n else None
    if extra:
        info["meta_version"] = META_VERSION
        info.update(extra)
    with open(os.path.join(out_dir, META_FILE), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1, ensure_ascii=False)
    return out_dir


def _count_fetches(prefix):
    """How many outputs a saved program fetches (0 when it cannot tell)."""
    if os.path.isfile(prefix + ".json"):
        n = 0
        with open(prefix + ".json", encoding="utf-8") as f:
            stack = [json.load(f)]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                n += str(node.get("#", "")).endswith(".fetch")
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
        return n
    if os.path.isfile(prefix + ".pdmodel"):
        from paddle.base.proto import framework_pb2
        with open(prefix + ".pdmodel", "rb") as f:
            prog = framework_pb2.ProgramDesc.FromString(f.read())
        return sum(op.type == "fetch" for op in prog.blocks[0].ops)
    return 0


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


def _pairs_in(d):
    """Prefixes in ``d`` with a program file (.json/.pdmodel) and a .pdiparams."""
    found = []
    for f in sorted(os.listdir(d)):
        stem, ext = os.path.splitext(f)
        if ext in (".json", ".pdmodel") and f != META_FILE and \
                os.path.isfile(os.path.join(d, stem + ".pdiparams")):
            found.append(os.path.join(d, stem))
    return found


def _from_prefix(prefix):
    params = prefix + ".pdiparams"
    for ext in (".json", ".pdmodel"):  # prefer the PIR program when both exist
        if os.path.isfile(prefix + ext) and os.path.isfile(params):
            return prefix + ext, params
    return None


def resolve_model(model_dir_or_prefix):
    """Return ``(model_file, params_file)``; ``params_file`` is None for a per-file 1.x dir."""
    p = os.fspath(model_dir_or_prefix)
    if os.path.isdir(p):
        meta = os.path.join(p, META_FILE)
        if os.path.isfile(meta):
            with open(meta, encoding="utf-8") as f:
                prefix = json.load(f).get("prefix")
            if not isinstance(prefix, str) or not prefix:
                raise ValueError(f'{meta} must look like {{"prefix": "<name>"}}')
            got = _from_prefix(os.path.join(p, prefix))
            if got is None:
                raise FileNotFoundError(f"{meta} names prefix {prefix!r} but "
                                        f"{prefix}.json/.pdmodel + {prefix}.pdiparams are missing")
            return got
        prefixes = _pairs_in(p)
        if len(prefixes) == 1:
            return _from_prefix(prefixes[0])
        if len(prefixes) > 1:
            names = [os.path.basename(x) for x in prefixes]
            raise ValueError(f"{p} holds several models {names}; write {meta} "
                             f'like {{"prefix": "{names[0]}"}} to pick one')
        legacy = os.path.join(p, "__model__")
        if os.path.isfile(legacy):
            for name in ("__params__", "params"):
                if os.path.isfile(os.path.join(p, name)):
                    return legacy, os.path.join(p, name)
            return legacy, None
        raise FileNotFoundError(f"no exported model in {p} (expected <prefix>.json or "
                                f"<prefix>.pdmodel with <prefix>.pdiparams)")
    got = _from_prefix(p)
    if got is None:
        raise FileNotFoundError(f"no exported model at prefix {p} "
                                f"(expected {p}.json or {p}.pdmodel with {p}.pdiparams)")
    return got
