"""Serve an exported model over ZeroMQ.

    python -m propeller.tools.start_server -m DIR -p 8888 [--num_workers N] [--host 127.0.0.1]
        [--num_threads 1] [--precision fp32|bf16] [--backend paddle|onnxruntime] [--cpu_affinity auto|none]

DIR holds a ``paddle.jit.save`` export (``<prefix>.json`` or legacy ``<prefix>.pdmodel``,
plus ``<prefix>.pdiparams``); with several exports, ``DIR/model_meta.json`` names one:
``{"prefix": "inference"}``. ``-p 0`` picks a free port. Once every worker has loaded the
model the server prints ``ready tcp://HOST:PORT workers=N`` on stdout. SIGTERM or Ctrl-C
shut it down cleanly (exit status 0).
"""
import argparse
import logging
import sys

from propeller.inference.export import resolve_model
from propeller.log import setup_logging
from propeller.service.server import (add_server_arguments,
                                      PredictorFactory, predictor_options, serve)


def build_parser():
    ap = argparse.ArgumentParser(prog="python -m propeller.tools.start_server",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("-m", "--model_dir", required=True,
                    help="export dir or prefix (<prefix>.json/.pdmodel + .pdiparams)")
    add_server_arguments(ap)
    return ap


def main(argv=None):
    ap = build_parser()
    args = ap.parse_args(argv)
    setup_logging("propeller", level=logging.DEBUG if args.verbose else logging.INFO)
    # a wrong path or option fails here, before workers are spawned (run_main turns the
    # OSError/ValueError into one line and exit status 2)
    resolve_model(args.model_dir)
    factory = PredictorFactory(args.model_dir, **predictor_options(args))
    serve(factory, port=args.port, num_workers=args.num_workers, host=args.host,
          max_message_bytes=args.max_message_bytes, max_tokens=args.max_tokens,
          cpu_affinity=args.cpu_affinity)
    return 0


if __name__ == "__main__":
    from propeller.cli import run_main  # user errors: one message, exit status 2
    sys.exit(run_main(main))
