"""Optional: convert an export to ONNX with paddle2onnx and check it against onnxruntime.

    python -m inference.onnx_export --model_dir EXPORT --out model.onnx [--opset 17]
        [--optimize onnxoptimizer|none] [--no_check] [--batch 2 --seq 16]

The ONNX inputs keep the export's names and dynamic batch/sequence dims; the outputs are in
the export's order (``model_meta.json`` ``outputs`` names them). After converting, the same
random inputs (ids inside the vocabulary, a padded tail on one row) go through
``paddle.inference`` and onnxruntime and the largest absolute difference of each output is
printed; above ``--tol`` (default 1e-4) the command fails. Without onnxruntime installed the
check is skipped with a note (``pip install onnxruntime``).

``--optimize``: ``onnxoptimizer`` (default) runs onnxoptimizer's clean-up passes (dead ends,
unused/duplicate initializers, no-op casts) here: paddle2onnx 2.1's own call of it names a
pass that does not exist and silently falls back to the raw model. ``polygraphy`` folds
constants too, but only when ``onnx_graphsurgeon`` is already installed, because paddle2onnx
otherwise has polygraphy pip-install it at run time. ``none`` keeps paddle2onnx's output.
"""
import argparse
import contextlib
import importlib.util
import os
import sys

import numpy as np

__all__ = ["export_onnx", "convert_files", "sample_inputs", "check_onnx", "main"]


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
    from inference.predictor import resolve_model
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


def sample_inputs(predictor, config=None, batch=2, seq=16, seed=0):
    """Valid random inputs for an (ERNIE) export: ids inside the tables, the second row padded."""
    from inference.text_predictor import ErnieFeeder
    rng = np.random.default_rng(seed)
    feeder = ErnieFeeder(predictor.input_specs, config)
    vocab = int(feeder.vocab_size or 100)
    types = int(feeder.type_vocab_size or 2)
    src = rng.integers(1, vocab, size=(batch, seq), dtype=np.int64)
    sent = rng.integers(0, types, size=(batch, seq), dtype=np.int64)
    if batch > 1 and seq > 2:
        src[1, seq // 2:] = feeder.pad_id
        sent[1, seq // 2:] = 0
    return feeder.feed(src, sent)


def check_onnx(model_dir, onnx_file, batch=2, seq=16):
    """``{output name: max abs diff}`` between paddle.inference and onnxruntime, or None
    when onnxruntime is not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    from inference.export import read_meta
    from inference.predictor import Predictor
    meta = read_meta(model_dir) or {}
    pred = Predictor(model_dir)
    feed = sample_inputs(pred, meta.get("config"), batch, seq)
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


def build_parser():
    ap = argparse.ArgumentParser(prog="python -m inference.onnx_export", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model_dir", required=True, help="export dir or prefix")
    ap.add_argument("--out", required=True, help="ONNX file to write")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--optimize", default="onnxoptimizer", choices=["onnxoptimizer", "polygraphy", "none"])
    ap.add_argument("--no_check", action="store_true", help="skip the onnxruntime comparison")
    ap.add_argument("--batch", type=int, default=2, help="check batch size")
    ap.add_argument("--seq", type=int, default=16, help="check sequence length")
    ap.add_argument("--tol", type=float, default=1e-4, help="largest accepted abs diff")
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        out = export_onnx(args.model_dir, args.out, args.opset, args.optimize)
        print(f"wrote {out} (opset {args.opset})")
        if args.no_check:
            return 0
        diffs = check_onnx(args.model_dir, out, args.batch, args.seq)
    except (OSError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if diffs is None:
        print("onnxruntime is not installed: check skipped (pip install onnxruntime)")
        return 0
    for name, d in diffs.items():
        print(f"max abs diff {name}: {d:.3g} (paddle.inference vs onnxruntime, "
              f"batch {args.batch}, seq {args.seq})")
    worst = max(diffs.values())
    if worst > args.tol:
        print(f"error: difference {worst:.3g} exceeds --tol {args.tol}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
