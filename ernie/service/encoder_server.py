"""ERNIE embedding server: sentence vectors over ZeroMQ (the original ``encoder_server.py``).

    python ernie/service/encoder_server.py -m DIR -p 8888 [--encode_layer pooler|cls|layerN]
        [--num_workers N] [--num_threads 1] [--host 127.0.0.1] [--precision fp32|bf16] [--backend paddle|onnxruntime]

``DIR`` is either an encoder export (``python -m inference.export --encode_layer ...``) or
an ERNIE checkpoint (ours, PaddleNLP's, Propeller's, a legacy ``params/`` dir), which is
exported to a temporary directory at start-up and removed at exit. ``--encode_layer``
picks the vector: ``pooler`` (the pooled fc output, the default), ``cls`` (the top layer's
[CLS] row) or ``layerN`` (the [CLS] row of layer N; 0 is the embedding layer). For an export
it must agree with the layer the export was made for.

Request (the propeller wire format, ``propeller.service.wire``): ``src_ids`` and optionally
``sent_ids``, int [batch, seq], padded with the pad id (0), as
:class:`ernie.service.client.ErnieClient` sends them. Reply: one float32 [batch, hidden]
array. Ids out of the vocabulary, sequences longer than the model's positions and
malformed messages get an error reply (see ``propeller.service.server``); the server goes
on serving. Binds 127.0.0.1 unless ``--host`` says otherwise; prints ``ready tcp://HOST:PORT
workers=N`` once the workers are up; SIGTERM/Ctrl-C shut it down cleanly.
"""
import argparse
import logging
import os
import shutil
import signal
import sys
import tempfile

if __package__ in (None, ""):  # run as a script path: make the repo root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import numpy as np  # noqa: E402

from ernie.export import canonical_encode_layer, export_ernie  # noqa: E402
from ernie.service.text_predictor import ErnieFeeder  # noqa: E402
from propeller.inference.export import read_meta, resolve_model  # noqa: E402
from propeller.inference.predictor import Predictor  # noqa: E402
from propeller.log import setup_logging  # noqa: E402
from propeller.service.server import (PredictorFactory, add_server_arguments,  # noqa: E402
                                      predictor_options, serve)

__all__ = ["EncoderPredictFactory", "EncoderPredict", "prepare_model", "main"]

log = logging.getLogger("ernie.service")


class EncoderPredict:
    """``fn([src_ids(, sent_ids)]) -> [embedding]`` over an encoder export (one per worker)."""

    def __init__(self, export_dir, **predictor_options):
        meta = read_meta(export_dir) or {}
        outputs = meta.get("outputs") or []
        if (meta.get("model") or {}).get("kind") != "encoder" or "embedding" not in outputs:
            raise ValueError(f"{export_dir} is not an encoder export (export it with "
                             f"python -m inference.export --encode_layer ...)")
        self.predictor = Predictor(export_dir, **predictor_options)
        self.feeder = ErnieFeeder(self.predictor.input_specs, meta.get("config"))
        self.index = outputs.index("embedding")

    def __call__(self, arrays):
        if not 1 <= len(arrays) <= 2:
            raise ValueError(f"expected [src_ids] or [src_ids, sent_ids], got {len(arrays)} tensors")
        src = arrays[0]
        sent = arrays[1] if len(arrays) > 1 else None
        if sent is not None and "sent" not in self.feeder.roles:
            raise ValueError("slot 1: this model takes no sent_ids; send [src_ids] only")
        # feed() checks ids, dtypes and dims (naming the slot) before anything reaches paddle
        outs = self.predictor.predict(self.feeder.feed(src, sent))
        return [np.asarray(outs[self.index], dtype=np.float32)]


class EncoderPredictFactory(PredictorFactory):
    """Picklable: each worker process calls it once and gets an :class:`EncoderPredict`."""

    def __call__(self):
        return EncoderPredict(self.model_dir, **self.options)


def prepare_model(model_dir, encode_layer=None, ernie_config=None):
    """``(export_dir, tmp_dir or None)``: ``model_dir`` itself when it is an encoder export
    made for ``encode_layer``, else a fresh export of the checkpoint in a temporary dir."""
    try:
        resolve_model(model_dir)
        is_export = True
    except (OSError, ValueError):
        is_export = False
    if is_export:
        meta = read_meta(model_dir) or {}
        model = meta.get("model") or {}
        if model.get("kind") != "encoder":
            raise ValueError(f"{model_dir} is an export but not of an encoder ({model or 'no meta'}); "
                             f"serve it with propeller.tools.start_server, or export the encoder "
                             f"with python -m inference.export --encode_layer ...")
        if encode_layer is not None:
            layers = (meta.get("config") or {}).get("num_hidden_layers")
            want = canonical_encode_layer(encode_layer, layers)
            if want != model.get("encode_layer"):
                raise ValueError(f"{model_dir} was exported for --encode_layer "
                                 f"{model.get('encode_layer')}, not {want}; re-export it or "
                                 f"serve the checkpoint")
        return model_dir, None
    tmp = tempfile.mkdtemp(prefix="ernie-encoder-")
    try:
        out = os.path.join(tmp, "export")
        export_ernie(model_dir, out, encode_layer=encode_layer or "pooler",
                     ernie_config=ernie_config, with_sequence=False)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out, tmp


def build_parser():
    ap = argparse.ArgumentParser(prog="encoder_server.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("-m", "--model_dir", required=True, help="encoder export or ERNIE checkpoint")
    ap.add_argument("--encode_layer", default=None,
                    help="pooler | cls | layerN (default: pooler, or the export's)")
    ap.add_argument("--ernie_config", default=None, help="config json for a checkpoint without one")
    add_server_arguments(ap)
    return ap


def main(argv=None):
    ap = build_parser()
    args = ap.parse_args(argv)
    setup_logging("propeller", "ernie", level=logging.DEBUG if args.verbose else logging.INFO)
    # until serve() takes over the signals, SIGTERM must still run the temp-dir cleanup below
    old = signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    tmp = None
    try:
        # OSError/ValueError (a wrong path, a bad checkpoint or option): one line and exit
        # status 2 through propeller.cli.run_main
        export_dir, tmp = prepare_model(args.model_dir, args.encode_layer, args.ernie_config)
        if tmp:
            log.info("serving %s through a temporary export in %s", args.model_dir, export_dir)
        factory = EncoderPredictFactory(export_dir, **predictor_options(args))
        serve(factory, port=args.port, num_workers=args.num_workers, host=args.host,
              max_message_bytes=args.max_message_bytes, max_tokens=args.max_tokens,
              cpu_affinity=args.cpu_affinity)
    finally:
        signal.signal(signal.SIGTERM, old)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    # Workers unpickle the factory by its module name: run main from the importable module
    # (script path or -m alike), so the factory is ernie.service.encoder_server's, not __main__'s.
    from ernie.service.encoder_server import main as _main
    from propeller.cli import run_main  # user errors: one message, exit status 2
    sys.exit(run_main(_main))
