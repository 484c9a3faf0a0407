"""A thin numpy-in/numpy-out wrapper around ``paddle.inference`` (or, as an option, ONNX
Runtime) for any exported model (the exports ``propeller.inference.export.resolve_model`` finds).

Inputs are checked (:func:`check_inputs`, the one place for these rules) against the
program's declared inputs (count, rank, fixed dims, dtype; safe casts such as int32 -> int64
are done), against each other (a batch or sequence dim shared by several inputs must agree:
paddle would broadcast a [1, S] input against a [B, S] one) and against the limits the export's
``model_meta.json`` declares (value ``range`` of id inputs, ``max_shape``, ``axes``) before they
reach the C++ side, because some bad inputs abort the process or read out of bounds instead
of raising (a zero-sized dim gives SIGFPE in oneDNN; an id past its embedding table reads
garbage or segfaults).
"""
import json
import os
import threading
from collections import namedtuple

import numpy as np

from propeller.inference.export import read_meta, resolve_model
from propeller.inference.onnx import onnx_model_for

__all__ = ["Predictor", "InputSpec", "check_inputs", "PRECISIONS", "BACKENDS", "cpu_has_bf16", "check_options", "random_feed",
           "check_onnx"]

PRECISIONS = ("fp32", "bf16")
BACKENDS = ("paddle", "onnxruntime")

# shape/dtype None when unknown; range [lo, hi), max_shape (-1: unbounded) and axes (a name per
# dim, inputs sharing a name must agree on its size) None when undeclared
InputSpec = namedtuple("InputSpec", "name shape dtype range max_shape axes", defaults=(None, None, None))


def cpu_has_bf16():
    """Whether the CPU computes bf16 natively (AVX512-BF16 or AMX-BF16), read from
    /proc/cpuinfo; None where that file does not exist (not Linux: unknown)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        return None
    return False


def _np_dtype(name):
    try:
        return np.dtype(name)
    except TypeError:  # e.g. bfloat16: leave the dtype unchecked
        return None


def _specs_from_pir_json(path):
    """Declared inputs of a PIR program: its ``data`` ops (name, shape, dtype attributes)."""
    with open(path, encoding="utf-8") as f:
        prog = json.load(f)
    specs = {}

    def walk(node):
        if isinstance(node, dict):
            if str(node.get("#", "")).endswith(".data") and isinstance(node.get("A"), list):
                attrs = {a.get("N"): a.get("AT", {}).get("D") for a in node["A"]
                         if isinstance(a, dict)}
                if isinstance(attrs.get("name"), str):
                    shape = attrs.get("shape")
                    specs[attrs["name"]] = (list(shape) if isinstance(shape, list) else None,
                                            _np_dtype(attrs.get("dtype")))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(prog)
    return specs


def _specs_from_program_desc(path):
    """Declared inputs of a legacy ProgramDesc: the variables written by its feed ops."""
    from paddle.base.proto import framework_pb2
    with open(path, "rb") as f:
        prog = framework_pb2.ProgramDesc.FromString(f.read())
    block = prog.blocks[0]
    # in feed order (each feed op's "col"), the order the program takes its inputs in;
    # block.vars is sorted by name
    fed = {}
    for op in block.ops:
        if op.type == "feed":
            col = next((a.i for a in op.attrs if a.name == "col"), len(fed))
            for o in op.outputs:
                for a in o.arguments:
                    fed[a] = col
    names = {v: k for k, v in framework_pb2.VarType.Type.items()}
    specs = {}
    for v in block.vars:
        if v.name in fed:
            t = v.type.dense_tensor.tensor
            dt = {"BOOL": "bool", "INT16": "int16", "INT32": "int32", "INT64": "int64",
                  "FP16": "float16", "FP32": "float32", "FP64": "float64", "UINT8": "uint8",
                  "INT8": "int8"}.get(names.get(t.data_type))
            specs[v.name] = (list(t.dims), np.dtype(dt) if dt else None)
    return dict(sorted(specs.items(), key=lambda kv: fed[kv[0]]))


def _limits(entry, name):
    """(range, max_shape, axes) an export's meta declares for one input, each None when absent."""
    entry = entry or {}
    rng, top, axes = entry.get("range"), entry.get("max_shape"), entry.get("axes")
    if rng is not None and not (isinstance(rng, list) and len(rng) == 2 and rng[0] < rng[1]):
        raise ValueError(f"model_meta.json: input {name!r} range must be [lo, hi) with lo < hi, got {rng!r}")
    if axes is not None and not (isinstance(axes, list) and all(a is None or isinstance(a, str) for a in axes)):
        raise ValueError(f"model_meta.json: input {name!r} axes must be a list of names (or null), got {axes!r}")
    return (tuple(int(x) for x in rng) if rng is not None else None,
            [int(x) for x in top] if top is not None else None,
            list(axes) if axes is not None else None)


def _axes_of(spec, ndim):
    """Names of an input's dims for the cross-input check: the declared ``axes``, else "batch"
    for a leading dim the program leaves open (every input of a batch shares it: clients split
    and join requests along axis 0)."""
    if spec.axes is not None:
        return list(spec.axes)[:ndim]
    if ndim and (spec.shape is None or (len(spec.shape) > 0 and spec.shape[0] < 0)):
        return ["batch"]
    return []


def _where(i, spec):
    return f"slot {i} ({spec.name!r})"


def check_inputs(specs, inputs):
    """The one place where model inputs are checked before the C++ side sees them (a bad id
    reads out of bounds or aborts the process there instead of raising). Returns the inputs as
    contiguous arrays, safely cast to the declared dtypes; raises ValueError naming the slot
    (input position and name) and what it expected: input count, dtype, rank, declared dims,
    empty or scalar shapes, non-finite floats, dims shared with other inputs (``axes``: batch,
    seq), values outside ``range`` and dims past ``max_shape``."""
    if isinstance(inputs, np.ndarray) or not isinstance(inputs, (list, tuple)):
        raise TypeError(f"predict() takes a list of arrays, one per input {[s.name for s in specs]}")
    if len(inputs) != len(specs):
        raise ValueError(f"the model takes {len(specs)} inputs {[s.name for s in specs]}, got {len(inputs)}")
    out, seen = [], {}  # axis name -> (size, where it was first seen)
    for i, (spec, a) in enumerate(zip(specs, inputs)):
        where = _where(i, spec)
        a = np.asarray(a)
        if a.dtype == object:
            raise ValueError(f"{where}: expected a numeric array, got objects")
        if spec.dtype is not None and a.dtype != spec.dtype:
            if not np.can_cast(a.dtype, spec.dtype, "safe"):
                raise ValueError(f"{where}: dtype {a.dtype} cannot be safely cast to the declared {spec.dtype}")
            a = a.astype(spec.dtype)
        if spec.shape is not None:
            if a.ndim != len(spec.shape):
                raise ValueError(f"{where}: rank {a.ndim} {list(a.shape)}, expected rank "
                                 f"{len(spec.shape)} {spec.shape} (-1: any size)")
            for got, want in zip(a.shape, spec.shape):
                if want >= 0 and got != want:
                    raise ValueError(f"{where}: shape {list(a.shape)} does not match the declared {spec.shape}")
        if a.ndim == 0 or 0 in a.shape:
            raise ValueError(f"{where}: empty or scalar shape {list(a.shape)}, expected at least one "
                             f"row and column")
        if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
            raise ValueError(f"{where}: expected finite values, got NaN or infinity")
        for axis, name in enumerate(_axes_of(spec, a.ndim)):
            if name is None:
                continue
            if name in seen and seen[name][0] != a.shape[axis]:
                size, first = seen[name]
                raise ValueError(f"{where}: {name} dim (axis {axis}) is {a.shape[axis]} {list(a.shape)}, "
                                 f"expected {size} as in {first}")
            seen.setdefault(name, (a.shape[axis], where))
        _check_limits(spec, a, where)
        out.append(np.ascontiguousarray(a))
    return out


def _check_limits(spec, a, where):
    if spec.max_shape is not None:
        if len(spec.max_shape) != a.ndim:
            raise ValueError(f"{where}: rank {a.ndim} {list(a.shape)}, expected rank "
                             f"{len(spec.max_shape)} (max shape {spec.max_shape})")
        for got, most in zip(a.shape, spec.max_shape):
            if 0 <= most < got:
                raise ValueError(f"{where}: shape {list(a.shape)} exceeds the model's largest "
                                 f"{spec.max_shape} (-1: any)")
    if spec.range is not None:
        lo, hi = spec.range
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{where}: expected integer ids in [{lo}, {hi}), got dtype {a.dtype}")
        if a.min() < lo or a.max() >= hi:
            raise ValueError(f"{where}: values must lie in [{lo}, {hi}), got {a.min()}..{a.max()}")


def _short_error(e):
    """Paddle errors carry C++ tracebacks; keep the lines that say what went wrong."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    key = [ln for ln in lines if "Error" in ln and not ln.startswith(("File ", "In user code"))]
    text = " | ".join(key[:3] or lines[:3])
    return f"{type(e).__name__}: {text[:1500]}"


def check_options(precision="fp32", backend="paddle", use_gpu=False, use_onednn=True):
    """ValueError for a combination the Predictor cannot run (servers check before spawning)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "onnxruntime" and (use_gpu or precision != "fp32"):
        raise ValueError("backend='onnxruntime' runs fp32 on the CPU (use_gpu=False, precision='fp32')")
    if precision == "bf16" and (use_gpu or not use_onednn):
        raise ValueError("precision='bf16' is for the CPU with oneDNN (use_gpu=False, use_onednn=True)")
    if precision == "bf16" and cpu_has_bf16() is False:
        raise ValueError("precision='bf16' needs a CPU with avx512_bf16 or amx_bf16 "
                         "(not in /proc/cpuinfo flags here); use fp32")


class _Runner:
    """One paddle predictor with its tensor handles; used by a single thread only."""

    def __init__(self, predictor, input_names, output_names):
        self.predictor = predictor
        self.inputs = [predictor.get_input_handle(n) for n in input_names]
        self.outputs = [predictor.get_output_handle(n) for n in output_names]


class Predictor:
    """numpy in, numpy out over ``paddle.inference``.

    ``predict(list_of_ndarrays)`` feeds the arrays to the inputs in ``input_names`` order
    and returns the outputs in ``output_names`` order. Batch and sequence length may vary
    from call to call. Raises ``ValueError`` for inputs that do not fit the program.

    Thread-safe: the creating thread uses the predictor itself, any other thread gets its
    own ``clone()`` (weights shared). A paddle predictor must stay on one thread: oneDNN
    keys its caches by thread id, and predictors that migrate between threads while
    others run fail with ``std::exception`` once input shapes vary (seen with 8 threads
    over 2 predictors, batch 1 then 32).

    ``precision="bf16"`` runs oneDNN's bf16 kernels on the CPU (AMX or AVX512-BF16): 3-7x
    faster than fp32 for the base model here, outputs up to ~7e-2 off fp32 on LayerNorm-scale
    values (bf16 keeps 8 bits of mantissa). Opt-in, as it changes the numbers; refused on CPUs without native bf16,
    where oneDNN would emulate it slower than fp32.

    ``backend="onnxruntime"`` runs the same export on ONNX Runtime (CPU, fp32), converted once
    with paddle2onnx to ``<prefix>.onnx`` beside it (:func:`onnx_model_for`). Its per-op cost
    is a fraction of paddle.inference's, which matters for small models at small batches
    (small config, batch 1: 4.3 -> 1.4 ms); large GEMM-bound models run at about the same speed.
    """

    def __init__(self, model_dir_or_prefix, num_threads=1, use_onednn=True, use_gpu=False,
                 gpu_mem_mb=256, gpu_id=0, precision="fp32", backend="paddle"):
        check_options(precision, backend, use_gpu, use_onednn)
        self.precision, self.backend = precision, backend
        self.model_file, self.params_file = resolve_model(model_dir_or_prefix)
        try:
            if self.model_file.endswith(".json"):
                declared = _specs_from_pir_json(self.model_file)
            else:
                declared = _specs_from_program_desc(self.model_file)
        except Exception:  # an unknown program layout only costs us the early checks
            declared = {}
        self._session = None
        if backend == "onnxruntime":
            self._init_onnxruntime(num_threads, declared)
        else:
            self._init_paddle(num_threads, use_onednn, use_gpu, gpu_mem_mb, gpu_id)
        limits = {e.get("name"): e for e in (read_meta(model_dir_or_prefix) or {}).get("inputs") or []
                  if isinstance(e, dict)}
        self.input_specs = [InputSpec(n, *declared.get(n, (None, None)), *_limits(limits.get(n), n))
                            for n in self.input_names]

    def _init_onnxruntime(self, num_threads, declared):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ImportError("backend='onnxruntime' needs the onnxruntime package "
                              "(pip install onnxruntime)") from None
        self.onnx_file = onnx_model_for(self.model_file, self.params_file)
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = int(num_threads), 1
        so.log_severity_level = 3  # errors only
        self._session = ort.InferenceSession(self.onnx_file, so, providers=["CPUExecutionProvider"])
        names = [i.name for i in self._session.get_inputs()]
        # the program's feed order (what the paddle backend takes), when ONNX kept the names
        self.input_names = list(declared) if sorted(declared) == sorted(names) else names
        self.output_names = [o.name for o in self._session.get_outputs()]

    def _init_paddle(self, num_threads, use_onednn, use_gpu, gpu_mem_mb, gpu_id):
        import paddle.inference as pi
        precision = self.precision
        if self.params_file is None:  # 1.x dir with one file per parameter
            cfg = pi.Config(os.path.dirname(self.model_file))
        else:
            cfg = pi.Config(self.model_file, self.params_file)
        if use_gpu:
            cfg.enable_use_gpu(gpu_mem_mb, gpu_id)
        else:
            cfg.disable_gpu()
            cfg.set_cpu_math_library_num_threads(int(num_threads))
            if use_onednn:
                cfg.enable_onednn()
                if precision == "bf16":
                    cfg.enable_onednn_bfloat16()
            else:
                cfg.disable_onednn()
        cfg.disable_glog_info()  # otherwise every pass logs a line per predictor
        self._predictor = pi.create_predictor(cfg)
        self.input_names = list(self._predictor.get_input_names())
        self.output_names = list(self._predictor.get_output_names())
        self._tls = threading.local()
        self._tls.runner = _Runner(self._predictor, self.input_names, self.output_names)

    def _check(self, inputs):
        return check_inputs(self.input_specs, inputs)

    def predict(self, inputs):
        inputs = self._check(inputs)
        if self._session is not None:  # ONNX Runtime sessions are thread-safe
            try:
                return self._session.run(None, dict(zip(self.input_names, inputs)))
            except Exception as e:  # noqa: BLE001  - re-raised with a readable message
                raise RuntimeError("inference failed: " + _short_error(e)) from None
        r = getattr(self._tls, "runner", None)
        if r is None:
            r = self._tls.runner = _Runner(self._predictor.clone(), self.input_names,
                                           self.output_names)
        for h, a in zip(r.inputs, inputs):
            h.reshape(a.shape)
            h.copy_from_cpu(a)
        try:
            r.predictor.run()
        except Exception as e:  # noqa: BLE001  - re-raised with a readable message
            raise RuntimeError("inference failed: " + _short_error(e)) from None
        return [h.copy_to_cpu() for h in r.outputs]

    __call__ = predict

    def __repr__(self):
        return (f"Predictor({self.model_file!r}, inputs={self.input_names}, "
                f"outputs={self.output_names})")


def random_feed(predictor, batch=2, seq=16, seed=0):
    """Valid random inputs for any export: unknown dims become ``batch`` then ``seq``; integer
    inputs lie in their declared ``range`` (else [0, 100)), float inputs are ones."""
    rng = np.random.default_rng(seed)
    feed = []
    for spec in predictor.input_specs:
        shape = list(spec.shape) if spec.shape is not None else [-1, -1]
        shape = [d if d >= 0 else (batch if k == 0 else seq) for k, d in enumerate(shape)]
        dtype = spec.dtype if spec.dtype is not None else np.dtype("int64")
        if np.issubdtype(dtype, np.integer):
            lo, hi = spec.range or (0, 100)
            feed.append(rng.integers(lo, hi, size=shape).astype(dtype))
        else:
            feed.append(np.ones(shape, dtype))
    return feed


def check_onnx(model_dir, onnx_file, feed=None):
    """``{output name: max abs diff}`` between paddle.inference and onnxruntime on ``feed``
    (default: :func:`random_feed`), or None when onnxruntime is not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    meta = read_meta(model_dir) or {}
    pred = Predictor(model_dir)
    feed = random_feed(pred) if feed is None else feed
    ref = pred.predict(feed)
    sess = ort.InferenceSession(onnx_file, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    if sorted(names) != sorted(pred.input_names):
        raise ValueError(f"ONNX inputs {names} differ from the export's {pred.input_names}")
    got = sess.run(None, dict(zip(pred.input_names, feed)))
    if len(got) != len(ref):
        raise ValueError(f"ONNX gives {len(got)} outputs, the export {len(ref)}")
    labels = meta.get("outputs") or pred.output_names
    diffs = {}
    for name, a, b in zip(labels, ref, got):
        if a.shape != b.shape:
            raise ValueError(f"output {name}: shape {list(b.shape)} in ONNX vs {list(a.shape)}")
        diffs[name] = float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())
    return diffs
