"""A web page to try a model: type text, see what the model makes of it.

    python -m ernie.service.web -m output/demo/sentiment/best_inference/inference --port 8080
    python -m ernie.service.web -m output/demo/ner/best                  # a fine-tuned checkpoint
    python -m ernie.service.web -m output/ernie2_encoder --index_file sentences.txt

``-m`` is an export (``python -m inference.export``, a fine-tuning run's ``best_inference/``)
or a checkpoint (a run's ``best/``, a pre-trained model), exported to a temporary directory at
start-up and removed at exit. What the page shows depends on the model:

- a classifier (``sequence_classification``): the label probabilities as bars; a second text
  box for sentence pairs. One output column: the regression score.
- an NER model (``token_classification``): the text with its entities highlighted, decoded from
  the BIO tags by the chunk rule of the fine-tuning metric (``propeller.metrics``); each
  non-space character is one token, as in NER fine-tuning.
- an encoder (``encoder``; a checkpoint without a head): the ``--top_k`` sentences of
  ``--index_file`` (one a line, embedded at start-up) nearest to the text by cosine.

Label names come from the export's meta, else from the ``task.json`` of the fine-tuning run it
came from (beside the checkpoint, or above ``best_inference/inference``), else ``0, 1, ...``.
Each answer says how long the model took; the page adds the round trip.

HTTP (starlette on uvicorn): ``GET /`` the page, ``GET /api/info`` the model, ``POST
/api/predict`` with ``{"text": "...", "text_b": "..."}`` (``text_b`` optional) answering the
result as JSON, or a 4xx ``{"error": "..."}``: 400 not JSON, 413 a body or a text over the
limits (``--max_chars``; the body is refused on its size before it is parsed), 415 not
``application/json``, 422 missing, empty or mistyped fields. Binds 127.0.0.1 unless ``--host``
says otherwise, and then answers only requests addressed to localhost (DNS rebinding). Prints
``ready http://HOST:PORT/`` once it listens; Ctrl-C / SIGTERM stop it.

The model side (:class:`WebPredictor`, :func:`parse_request`, :func:`tag_spans`) is plain
Python; :func:`create_app` wraps a predictor in the ASGI app.
"""
import argparse
import asyncio
import contextlib
import errno
import json
import logging
import os
import secrets
import signal
import socket
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ernie.service.web_page import PAGE
from propeller.cli import add_debug_argument, run_main
from propeller.log import setup_logging

__all__ = ["KINDS", "BadRequest", "WebPredictor", "find_run", "label_names", "tag_spans", "parse_request",
           "model_export", "create_app", "main"]

log = logging.getLogger("ernie.service")

# the export's meta ``model.kind`` -> what the page shows
KINDS = {"sequence_classification": "classification", "token_classification": "ner", "encoder": "encoder"}
# the fine-tuning tasks (task.json ``task``) whose labels name each kind's outputs
_RUN_TASKS = {"classification": ("classifier", "ranker"), "ner": ("ner",)}
_KIND_DOC = {"classification": "text classification", "regression": "regression",
             "ner": "named entities (token classification)", "encoder": "nearest sentences (encoder)"}


class BadRequest(ValueError):
    """A request the page's API refuses: ``status`` (4xx) and a message for the user."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# --------------------------------------------------------------------------- labels

def _labels_in(d, kind):
    """Label names, by id, that a meta or task.json dict holds for ``kind``, or None."""
    labels = d.get("labels")
    if isinstance(labels, list) and labels:
        return [str(x) for x in labels]
    m = d.get("label_map") if kind == "classification" else None
    if isinstance(m, dict) and m and sorted(m.values()) == list(range(len(m))):
        return [k for k, _ in sorted(m.items(), key=lambda kv: kv[1])]
    return None


def find_run(meta, kind, export_dir=None):
    """The task.json (a dict; {} if none) of the fine-tuning run an export of ``kind`` came
    from: beside its source checkpoint (the meta's ``source``), beside the export, or above a
    ``best_inference/inference`` dir, whichever first holds one of a matching task."""
    from ernie.export import finetune_meta  # looks in the dir given and its parent
    source = (meta.get("source") or {}).get("checkpoint")
    for cand in (source, export_dir, export_dir and os.path.dirname(os.path.abspath(export_dir))):
        run = finetune_meta(cand) if cand and os.path.exists(cand) else {}
        if run.get("task") in _RUN_TASKS.get(kind, ()):
            return run
    return {}


def label_names(meta, kind, num_labels, run=None):
    """The names of a classifier's or NER model's ``num_labels`` outputs: the meta's, else those
    of the fine-tuning run's task.json (``run``, see :func:`find_run`), else ``"0", "1", ...``;
    an NER model without names must have the 7 MSRA tags fine-tuning defaults to (ValueError
    otherwise: spans need BIO tags)."""
    from ernie.finetune.ner import MSRA_LABELS
    names = _labels_in(meta, kind)
    if names is None and run:
        names = _labels_in(run, kind)
    if names is not None and len(names) != num_labels:
        log.warning("the model has %d outputs but its labels are %s: ignoring the labels", num_labels, names)
        names = None
    if names is not None:
        return names
    if kind == "ner":
        if num_labels != len(MSRA_LABELS):
            raise ValueError(f"the NER model has {num_labels} tags but no tag names: keep the fine-tuning "
                             f"run's task.json ('labels') beside the checkpoint or the export")
        log.warning("no tag names found: assuming the MSRA tags %s (fine-tuning's default)", MSRA_LABELS)
        return list(MSRA_LABELS)
    return [str(i) for i in range(num_labels)]


# --------------------------------------------------------------------------- NER spans

def tag_spans(text, tags, scores=None):
    """Entities of ``text`` from one BIO tag per non-space character (``scores``: the
    probability of each tag). Returns ``(entities, segments)``: entities as ``{"type",
    "start", "end", "text", "score"}`` with character offsets into ``text`` (code points);
    segments cut the whole text into plain runs (``type`` None) and entities, in order, so a
    page can show it without offset arithmetic."""
    from propeller.metrics import _chunks  # the chunk rule ChunkF1 scores fine-tuning with
    units = [i for i, c in enumerate(text) if not c.isspace()]
    if len(tags) != len(units):
        raise ValueError(f"{len(units)} characters but {len(tags)} tags")
    entities = []
    for typ, s, e in sorted(_chunks(tags), key=lambda c: c[1]):
        start, end = units[s], units[e - 1] + 1
        score = float(np.mean(scores[s:e])) if scores is not None else None
        entities.append({"type": typ, "start": start, "end": end, "text": text[start:end], "score": score})
    segments, at = [], 0
    for ent in entities:
        if ent["start"] > at:
            segments.append({"text": text[at:ent["start"]], "type": None})
        segments.append({"text": ent["text"], "type": ent["type"], "score": ent["score"]})
        at = ent["end"]
    if at < len(text):
        segments.append({"text": text[at:], "type": None})
    return entities, segments


# --------------------------------------------------------------------------- requests

_JSON_TYPES = {dict: "an object", list: "an array", bool: "true/false", int: "a number", float: "a number",
               type(None): "null"}


def _text_field(data, name, max_chars, required):
    if name not in data or (data[name] is None and not required):
        if required:
            raise BadRequest(422, f'"{name}" is missing: send {{"{name}": "some text"}}')
        return None
    v = data[name]
    if not isinstance(v, str):
        raise BadRequest(422, f'"{name}" must be a string, got {_JSON_TYPES.get(type(v), type(v).__name__)}')
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:  # a lone \ud800 escape: no text can hold it, and no reply could echo it
        raise BadRequest(400, f'"{name}" is not valid Unicode (an unpaired surrogate)') from None
    if len(v) > max_chars:
        raise BadRequest(413, f'"{name}" has {len(v)} characters; the limit is {max_chars}')
    if not v.strip():
        if required:
            raise BadRequest(422, f'"{name}" is empty: type some text')
        return None
    return v


def parse_request(body, max_chars, pairs=True):
    """``(text, text_b or None)`` from a predict request's body (bytes); :class:`BadRequest`
    saying what is wrong otherwise. ``pairs``: whether the model takes a second text."""
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest(400, "the request body is not UTF-8") from None
    except json.JSONDecodeError as e:
        raise BadRequest(400, f"the request body is not JSON ({e.msg}, line {e.lineno} column {e.colno})") from None
    except (ValueError, RecursionError):  # an integer of 5,000 digits, arrays nested 10,000 deep
        raise BadRequest(400, "the request body is not JSON this server reads") from None
    if not isinstance(data, dict):
        raise BadRequest(422, 'expected a JSON object: {"text": "...", "text_b": "..."}')
    unknown = sorted(set(data) - {"text", "text_b"})
    if unknown:
        raise BadRequest(422, f"unknown field(s) {', '.join(map(repr, unknown))}: send text (and text_b)")
    text = _text_field(data, "text", max_chars, required=True)
    text_b = _text_field(data, "text_b", max_chars, required=False)
    if text_b is not None and not pairs:
        raise BadRequest(422, "this model takes one text: leave text_b out")
    return text, text_b


# --------------------------------------------------------------------------- the model side

class WebPredictor:
    """What the page asks of a model: ``predict(text, text_b=None) -> dict`` (JSON-ready) and
    ``info()``. ``predictor`` is a :class:`~ernie.service.text_predictor.TextPredictor`;
    ``kind`` one of :data:`KINDS`' values; ``labels`` the output names (classification, NER);
    ``index`` the sentences an encoder searches (embedded here)."""

    def __init__(self, predictor, kind, labels=None, index=None, top_k=5, name="model", ner_meta=None):
        if kind not in KINDS.values():
            raise ValueError(f"unknown kind {kind!r} (known: {sorted(KINDS.values())})")
        if predictor.tokenizer is None:
            raise ValueError("the export has no vocab.txt (model_meta.json 'tokenizer'): the page needs "
                             "text in; re-export it with --vocab_file")
        self.predictor, self.kind, self.name, self.top_k = predictor, kind, name, int(top_k)
        self.labels = list(labels) if labels is not None else None
        self.pairs = kind == "classification"
        if kind == "classification" and self.labels is not None and len(self.labels) == 1:
            self.kind = "regression"
        self.index, self._index_vecs = None, None
        if kind == "encoder":
            outs = predictor.output_names
            if "embedding" not in outs:
                raise ValueError(f"an encoder export has an 'embedding' output; this one has {outs}")
            self._emb = outs.index("embedding")
            if not index:
                raise ValueError("an encoder shows the nearest sentences of an index: give --index_file "
                                 "(one sentence a line)")
            self.index = list(index)
            self._index_vecs = self._embed(self.index)
        if kind == "ner":
            from ernie.finetune.ner import NerTask
            from ernie.finetune.runner import TaskOptions
            # NER fine-tuning's own character lookup (casing, SentencePiece '\u2581c' pieces)
            lower = getattr(predictor.tokenizer, "do_lower_case", True)
            self._ner = NerTask(TaskOptions(max_seqlen=predictor.max_seqlen, cased=not lower),
                                predictor.tokenizer, dict(ner_meta or {}, labels=self.labels))

    @classmethod
    def from_export(cls, export_dir, index_file=None, top_k=5, num_threads=1, name=None):
        """A predictor over an export: its kind from the meta, labels (:func:`label_names`),
        the index file read and embedded; one prediction run first, so that the first user
        does not wait for paddle's warm-up."""
        from ernie.service.text_predictor import TextPredictor
        tp = TextPredictor(export_dir, batch_size=32, num_threads=num_threads)
        meta = tp.meta
        model_kind = (meta.get("model") or {}).get("kind")
        if model_kind is None:  # an export without our meta: its outputs tell
            model_kind = "encoder" if "embedding" in tp.output_names else "sequence_classification"
        if model_kind not in KINDS:
            raise ValueError(f"{export_dir}: the page shows classifiers, NER models and encoders, not "
                             f"{model_kind} models")
        kind = KINDS[model_kind]
        name = name or os.path.basename(os.path.normpath(export_dir))
        if kind == "encoder":
            index = None
            if index_file is not None:
                with open(index_file, encoding="utf-8") as f:
                    index = [line.strip() for line in f if line.strip()]
                if not index:
                    raise ValueError(f"{index_file}: no sentences (one a line)")
            t0 = time.perf_counter()
            p = cls(tp, kind, index=index, top_k=top_k, name=name)
            log.info("indexed %d sentences of %s in %.1f s", len(index), index_file, time.perf_counter() - t0)
            return p
        if index_file is not None:
            log.warning("--index_file is for encoders: ignored for this %s model", kind)
        probe, = tp.predict("warm up")
        run = find_run(meta, kind, export_dir)
        labels = label_names(meta, kind, int(probe[0].shape[-1]), run)
        ner_meta = {"use_sentence_piece_vocab": bool(run.get("use_sentence_piece_vocab"))}
        p = cls(tp, kind, labels=labels, top_k=top_k, name=name, ner_meta=ner_meta)
        p.predict("warm up")
        return p

    def info(self):
        return {"kind": self.kind, "model": self.name, "labels": self.labels, "pairs": self.pairs,
                "max_seqlen": self.predictor.max_seqlen, "index_size": len(self.index) if self.index else 0}

    def _embed(self, texts):
        vecs = np.asarray(self.predictor.predict(texts)[self._emb], dtype=np.float32)
        return vecs / np.maximum(np.linalg.norm(vecs, axis=-1, keepdims=True), 1e-12)

    def predict(self, text, text_b=None):
        """The page's answer for one text (ValueError for what the model cannot take)."""
        if self.kind == "ner":
            return self._predict_ner(text)
        tp = self.predictor
        ids, types = tp.encode(text, text_b)
        full, _ = tp.tokenizer.encode(text, text_b, None)
        out = {"kind": self.kind, "tokens": len(ids[0]), "truncated": len(full) > len(ids[0]),
               "max_seqlen": tp.max_seqlen}
        if self.kind == "encoder":
            q = self._index_vecs @ self._embed([text])[0]
            top = np.argsort(-q, kind="stable")[:self.top_k]
            out["neighbours"] = [{"text": self.index[i], "score": float(q[i])} for i in top]
            return out
        logits = np.asarray(tp.predict_ids(ids, types)[0][0], dtype=np.float64)
        if self.kind == "regression":
            out["score"] = float(logits[0])
            return out
        probs = _softmax(logits)
        names = self.labels or [str(i) for i in range(len(probs))]
        out["labels"] = [{"label": name, "prob": float(p)} for name, p in zip(names, probs)]
        out["top"] = names[int(probs.argmax())]
        return out

    def _predict_ner(self, text):
        task, tp = self._ner, self.predictor
        chars = [c for c in text if not c.isspace()]
        keep = chars[:tp.max_seqlen - 2]  # as in fine-tuning: the rest is tagged O
        t = tp.tokenizer
        ids = [t.cls_id] + [task.char_id(c) for c in keep] + [t.sep_id]
        logits = np.asarray(tp.predict_ids([ids])[0][0], dtype=np.float64)[1:len(ids) - 1]
        probs = _softmax(logits)
        best = probs.argmax(-1)
        tags = [self.labels[k] for k in best] + ["O"] * (len(chars) - len(keep))
        scores = np.concatenate([probs[np.arange(len(best)), best], np.ones(len(chars) - len(keep))])
        entities, segments = tag_spans(text, tags, scores)
        return {"kind": "ner", "tokens": len(ids), "truncated": len(keep) < len(chars),
                "max_seqlen": tp.max_seqlen, "tags": tags, "entities": entities, "segments": segments}


# --------------------------------------------------------------------------- the ASGI app

def _csp(nonce):
    # the page needs its own inline script and style, and fetch() to this server: nothing else
    return (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
            "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


def create_app(predictor, max_chars=1000, title="ERNIE web demo", allowed_hosts=None):
    """The Starlette app serving the page over ``predictor`` (a :class:`WebPredictor`, or anything
    with its ``predict``, ``info``, ``kind``, ``labels``, ``pairs``, ``name``). Texts are limited
    to ``max_chars`` characters and request bodies to what two such texts take in JSON;
    ``allowed_hosts``: the Host headers answered (None: any). Predictions run one at a time on
    one worker thread (the paddle predictor is not thread-safe), off the event loop."""
    import jinja2
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    # a character takes at most 6 bytes in JSON (\uXXXX); two texts and the keys around them
    max_body = 12 * max_chars + 1024
    page = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(PAGE)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ernie-web-predict")
    info = dict(predictor.info(), max_chars=max_chars)

    def error(status, message):
        return JSONResponse({"error": message}, status_code=status, headers=_HEADERS)

    async def index(request):
        nonce = secrets.token_urlsafe(16)
        html = page.render(
            title=title, nonce=nonce, kind=predictor.kind, kind_doc=_KIND_DOC[predictor.kind],
            model_name=predictor.name, labels=predictor.labels if predictor.kind != "regression" else None,
            index_size=info.get("index_size") or 0, max_chars=max_chars, pairs=predictor.pairs,
            text_label="Query" if predictor.kind == "encoder" else "Text",
            placeholder="Type a sentence, then Predict (Ctrl+Enter)",
            button="Search" if predictor.kind == "encoder" else "Predict")
        return HTMLResponse(html, headers=dict(_HEADERS, **{"Content-Security-Policy": _csp(nonce)}))

    async def api_info(request):
        return JSONResponse(info, headers=_HEADERS)

    async def read_body(request):
        size = request.headers.get("content-length")
        if size is not None:
            if not size.isdigit():
                raise BadRequest(400, "bad Content-Length header")
            if int(size) > max_body:  # refused unread
                raise BadRequest(413, f"the request body has {size} bytes; the limit is {max_body} "
                                      f"(texts of up to {max_chars} characters)")
        chunks, n = [], 0
        async for chunk in request.stream():  # a chunked body has no Content-Length: count as it comes
            n += len(chunk)
            if n > max_body:
                raise BadRequest(413, f"the request body is over the limit of {max_body} bytes "
                                      f"(texts of up to {max_chars} characters)")
            chunks.append(chunk)
        return b"".join(chunks)

    def timed_predict(text, text_b):
        t0 = time.perf_counter()
        out = predictor.predict(text, text_b)
        out["latency_ms"] = (time.perf_counter() - t0) * 1000.0
        return out

    async def api_predict(request):
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if ctype != "application/json":  # also keeps plain cross-site form posts out
                raise BadRequest(415, "send the request as application/json")
            text, text_b = parse_request(await read_body(request), max_chars, predictor.pairs)
        except BadRequest as e:
            return error(e.status, str(e))
        try:
            out = await asyncio.get_running_loop().run_in_executor(executor, timed_predict, text, text_b)
        except ValueError as e:  # what the model cannot take (ids out of range, ...): the user's to fix
            return error(422, str(e))
        except Exception:  # noqa: BLE001  - a bug: logged here in full, the page gets one line
            log.exception("prediction failed for a text of %d characters", len(text))
            return error(500, "the prediction failed (see the server log)")
        return JSONResponse(out, headers=_HEADERS)

    async def favicon(request):
        return Response(status_code=204)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            executor.shutdown(wait=False, cancel_futures=True)

    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))] if allowed_hosts else []
    routes = [Route("/", index), Route("/api/info", api_info), Route("/api/predict", api_predict, methods=["POST"]),
              Route("/favicon.ico", favicon)]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


# --------------------------------------------------------------------------- command line

def _is_export(path):
    from propeller.inference.export import resolve_model
    try:
        resolve_model(path)
    except (OSError, ValueError):
        return False
    return True


@contextlib.contextmanager
def model_export(model_dir, encode_layer=None, ernie_config=None):
    """Context manager giving the export to serve: ``model_dir`` itself when it is one, else a
    fresh export of the checkpoint (its fine-tuned head, or the encoder) in a temporary dir
    that is removed on leaving the block."""
    from ernie.export import export_ernie
    if not os.path.exists(model_dir):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), model_dir)
    if _is_export(model_dir):
        if encode_layer is not None:
            raise ValueError(f"{model_dir} is already an export: --encode_layer applies to checkpoints")
        yield model_dir
        return
    with tempfile.TemporaryDirectory(prefix="ernie-web-") as tmp:
        out = os.path.join(tmp, "export")
        export_ernie(model_dir, out, encode_layer=encode_layer, ernie_config=ernie_config, with_sequence=False)
        log.info("serving %s through a temporary export in %s", model_dir, out)
        yield out


_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]"]  # as Host headers name them


def listen(host, port):
    """A listening socket (``port`` 0: a free one); OSError naming the address if it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=128)
    except OSError as e:
        reason = os.strerror(e.errno) if e.errno else str(e)
        raise OSError(f"cannot listen on {host}:{port}: {reason}") from None


def run_server(app, sock, verbose=False):
    """Serve ``app`` with uvicorn on ``sock`` until Ctrl-C / SIGTERM; prints ``ready URL`` once up."""
    import uvicorn

    host, port = sock.getsockname()[:2]
    url = f"http://{'[%s]' % host if ':' in host else host}:{port}/"

    class Server(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets)
            if self.started:  # launchers and tests wait for this line (propeller.service.server.wait_ready)
                print(f"ready {url}", flush=True)

    # limit_concurrency: past 64 open requests answer 503 at once rather than queue without bound
    config = uvicorn.Config(app, log_level="info" if verbose else "warning", access_log=verbose,
                            limit_concurrency=64, timeout_graceful_shutdown=5)
    Server(config).run(sockets=[sock])


def build_parser():
    ap = argparse.ArgumentParser(prog="python -m ernie.service.web", description=__doc__.split("\n\n")[0])
    ap.add_argument("-m", "--model_dir", required=True,
                    help="an export (classifier, NER, encoder) or an ERNIE checkpoint (a fine-tuning run's best/)")
    ap.add_argument("-p", "--port", type=int, default=8080, help="tcp port (0: pick a free one)")
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 for all)")
    ap.add_argument("--index_file", help="encoders: the sentences to search, one a line (embedded at start-up)")
    ap.add_argument("--top_k", type=int, default=5, help="encoders: how many nearest sentences to show")
    ap.add_argument("--max_chars", type=int, default=1000, help="longest text accepted (characters)")
    ap.add_argument("--encode_layer",
                    help="checkpoints: export the encoder (pooler | cls | layerN) instead of the head")
    ap.add_argument("--ernie_config", help="checkpoints: config json when none is beside it")
    ap.add_argument("--num_threads", type=int, default=1, help="CPU math threads")
    ap.add_argument("--title", default="ERNIE web demo", help="the page's title")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every request")
    add_debug_argument(ap)
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    setup_logging("propeller", "ernie", level=logging.DEBUG if args.verbose else logging.INFO)
    for flag in ("max_chars", "top_k", "num_threads"):
        if getattr(args, flag) < 1:
            raise ValueError(f"--{flag} must be >= 1")
    if not 0 <= args.port < 65536:
        raise ValueError(f"--port must be in 0..65535, got {args.port}")
    sock = listen(args.host, args.port)  # first: a taken port fails before the model loads
    # SIGTERM exits through the cleanup below (uvicorn re-raises the signal it shut down on,
    # under the handler found at start: without this one the temporary export would be left)
    old = signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        with model_export(args.model_dir, args.encode_layer, args.ernie_config) as export_dir:
            predictor = WebPredictor.from_export(export_dir, index_file=args.index_file, top_k=args.top_k,
                                                 num_threads=args.num_threads, name=args.model_dir)
            # bound to loopback, only requests addressed to it: a page elsewhere cannot rebind a DNS name to us
            app = create_app(predictor, max_chars=args.max_chars, title=args.title,
                             allowed_hosts=_LOOPBACK_HOSTS if args.host in _LOOPBACK else None)
            log.info("%s model %s: %r", predictor.kind, args.model_dir, predictor.predictor)
            run_server(app, sock, args.verbose)
    finally:
        signal.signal(signal.SIGTERM, old)
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
