"""Convert an export to ONNX with paddle2onnx.

``convert_files`` / ``export_onnx`` write ``<out>.onnx`` whose inputs keep the export's names and
dynamic batch/sequence dims and whose outputs are in the export's order; ``onnx_model_for`` keeps
one converted copy beside an export (what ``Predictor(backend="onnxruntime")`` runs). The check
against paddle.inference is ``propeller.inference.predictor.check_onnx``; the command line is
``python -m inference.onnx_export``.

``optimize``: ``onnxoptimizer`` (default) runs onnxoptimizer's clean-up passes (dead ends,
unused/duplicate initializers, no-op casts) here: paddle2onnx 2.1's own call of it names a
pass that does not exist and silently falls back to the raw model. ``polygraphy`` folds
constants too, but only when ``onnx_graphsurgeon`` is already installed, because paddle2onnx
otherwise has polygraphy pip-install it at run time. ``none`` keeps paddle2onnx's output.
"""
import contextlib
import hashlib
import importlib.util
import json
import os
import sys
import tempfile

from propeller.inference.export import resolve_model

__all__ = ["export_onnx", "convert_files", "onnx_model_for", "OPTIMIZERS"]

OPTIMIZERS = ("onnxoptimizer", "polygraphy", "none")


_PASSES = ["eliminate_deadend", "extract_constant_to_initializer", "eliminate_unused_initializer",
           "eliminate_duplicate_initializer", "eliminate_nop_cast"]


def _optimize_tool(choice):
    if choice == "polygraphy" and importlib.util.find_spec("onnx_graphsurgeon") is None:
        print("note: onnx_graphsurgeon is not installed; using onnxoptimizer instead of "
              "polygraphy (which would pip-install it)", file=sys.stderr)
        return "onnxoptimizer"
    return choice


def _run_onnxoptimizer(path):
    try:
        import onnx
        import onnxoptimizer
    except ImportError:
        print("note: onnxoptimizer is not installed; the model is left as converted", file=sys.stderr)
        return
    model = onnxoptimizer.optimize(onnx.load(path), _PASSES)
    onnx.checker.check_model(model)
    onnx.save(model, path)


def export_onnx(model_dir, out, opset=17, optimize="onnxoptimizer"):
    """Convert the export at ``model_dir`` to ``out``; returns ``out``."""
    model_file, params_file = resolve_model(model_dir)
    if params_file is None:
        raise ValueError(f"{model_dir}: a one-file-per-parameter 1.x export cannot be converted; "
                         f"re-export it")
    return convert_files(model_file, params_file, out, opset, optimize)


@contextlib.contextmanager
def _stdout_to_stderr():
    """paddle2onnx logs to file descriptor 1 from C++; a server's stdout carries only its
    ``ready ...`` line, so the log goes to stderr instead."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def convert_files(model_file, params_file, out, opset=17, optimize="onnxoptimizer"):
    """paddle2onnx of one program file and its params file to ``out``; returns ``out``."""
    import paddle2onnx
    out = os.path.abspath(out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    if os.path.exists(out):
        os.remove(out)  # paddle2onnx logs failures instead of raising: a stale file would hide one
    tool = _optimize_tool(optimize)
    with _stdout_to_stderr():
        paddle2onnx.export(model_file, params_file, out, opset_version=int(opset),
                           optimize_tool="polygraphy" if tool == "polygraphy" else "none")
    if not os.path.isfile(out):
        raise RuntimeError(f"paddle2onnx wrote no {out} (its log above says why)")
    if tool == "onnxoptimizer":
        _run_onnxoptimizer(out)
    return out


def _source_key(*files):
    stats = [(os.path.abspath(f), os.stat(f)) for f in files]
    return [[path, st.st_size, st.st_mtime_ns] for path, st in stats]


def onnx_model_for(model_file, params_file):
    """``<prefix>.onnx`` beside the export, converted once with paddle2onnx. A sidecar
    ``<prefix>.onnx.source`` records the size and mtime of the files it came from, and any
    difference (a new export, an older one copied back) converts again. Written atomically, so
    workers starting together are safe. Where the export dir is read-only, the copy goes to a
    per-user cache in the temp dir, named by the same key."""
    if params_file is None:
        raise ValueError(f"{model_file}: a one-file-per-parameter 1.x export cannot be converted to "
                         f"ONNX; re-export it")
    key = _source_key(model_file, params_file)
    target = os.path.splitext(model_file)[0] + ".onnx"
    if not os.access(os.path.dirname(target), os.W_OK):
        cache = os.path.join(tempfile.gettempdir(), f"ernie-onnx-{os.getuid() if hasattr(os, 'getuid') else 0}")
        os.makedirs(cache, exist_ok=True)
        digest = hashlib.sha1(json.dumps(key).encode("utf-8")).hexdigest()[:16]
        target = os.path.join(cache, f"{digest}.onnx")
    source = target + ".source"
    try:
        with open(source, encoding="utf-8") as f:
            if json.load(f) == key and os.path.isfile(target):
                return target
    except (OSError, ValueError):
        pass
    tmp = os.path.join(os.path.dirname(target), f".{os.getpid()}.{os.path.basename(target)}")
    try:
        convert_files(model_file, params_file, tmp)
        os.replace(tmp, target)
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(key, f)
        os.replace(tmp, source)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return target
