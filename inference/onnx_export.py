"""Convert an export to ONNX with paddle2onnx and check it against onnxruntime.

    python -m inference.onnx_export --model_dir EXPORT --out model.onnx [--opset 17]
        [--optimize onnxoptimizer|polygraphy|none] [--no_check] [--batch 2 --seq 16] [--tol 1e-4]

The ONNX inputs keep the export's names and dynamic batch/sequence dims; the outputs are in
the export's order (``model_meta.json`` ``outputs`` names them). After converting, the same
random inputs (ids inside the vocabulary, a padded tail on one row for ERNIE exports) go through
``paddle.inference`` and onnxruntime and the largest absolute difference of each output is
printed; above ``--tol`` the command fails. Without onnxruntime installed the check is skipped
with a note (``pip install onnxruntime``). The code is :mod:`propeller.inference.onnx` and
``propeller.inference.predictor.check_onnx``.
"""
import argparse
import sys

from propeller import cpu_env  # noqa: F401  (MKL setting must precede paddle's import)
from propeller.inference.export import read_meta
from propeller.inference.onnx import OPTIMIZERS, export_onnx
from propeller.inference.predictor import Predictor, check_onnx, random_feed

from ernie.export import sample_feed
from ernie.service.text_predictor import ErnieFeeder


def _feed(model_dir, batch, seq):
    """ERNIE exports (their meta holds the config) get a padded row; others a generic feed."""
    meta = read_meta(model_dir) or {}
    pred = Predictor(model_dir)
    if "config" in meta:
        return sample_feed(ErnieFeeder(pred.input_specs, meta["config"]), batch, seq)
    return random_feed(pred, batch, seq)


def build_parser():
    ap = argparse.ArgumentParser(prog="python -m inference.onnx_export", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model_dir", required=True, help="export dir or prefix")
    ap.add_argument("--out", required=True, help="ONNX file to write")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--optimize", default="onnxoptimizer", choices=OPTIMIZERS)
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
        diffs = check_onnx(args.model_dir, out, _feed(args.model_dir, args.batch, args.seq))
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
    from propeller.cli import run_main  # user errors: one message, exit status 2
    sys.exit(run_main(main))
