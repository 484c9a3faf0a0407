"""Client of the ERNIE embedding server (``ernie/service/encoder_server.py``).

    from ernie.service.client import ErnieClient
    client = ErnieClient('./config/vocab.txt', host='localhost', port=8888)
    client(['谁有狂三这张高清的', '英雄联盟什么英雄最好'])          # -> float32 [2, hidden]
    client(['谁有狂三这张高清的', '这张高清图，谁有'],
           ['英雄联盟什么英雄最好', '英雄联盟最好英雄是什么'])      # sentence pairs

Each text becomes ``[CLS] a [SEP] (b [SEP])`` (cut to ``max_seqlen``) with the vocab's
tokenizer; the examples go out in chunks of ``batch_size``, each padded to its own longest
row, up to ``num_coroutine`` chunks in flight at once; the answer is one vector per input
in input order (the pooled output or the [CLS] row, whichever the server was started
with). Errors: ``ServerError`` (the server refused the request, with its reason) and
``ServiceTimeout`` (no answer within ``timeout`` seconds; the message names the address).

Command line (TSV in, .npy out)::

    python -m ernie.service.client --vocab_file vocab.txt --data texts.tsv --out emb.npy \\
        [--host localhost] [--port 8888] [--batch_size 32] [--num_coroutine 1]

Paddle is not imported.
"""
import argparse
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from propeller.service.client import InferenceClient, ServerError, ServiceTimeout

__all__ = ["ErnieClient", "ServerError", "ServiceTimeout", "main"]


class ErnieClient:
    def __init__(self, vocab_file, host="localhost", port=8888, batch_size=32, num_coroutine=1,
                 timeout=10., max_seqlen=128, tokenizer=None, do_lower_case=True):
        if batch_size < 1 or num_coroutine < 1:
            raise ValueError("batch_size and num_coroutine must be >= 1")
        if tokenizer is None:
            from ernie.tokenizing import FullTokenizer
            tokenizer = FullTokenizer(vocab_file, do_lower_case=do_lower_case)
        self.tokenizer = tokenizer
        self.pad_id = tokenizer.pad_id if tokenizer.pad_id is not None else 0
        self.address = f"tcp://{host}:{int(port)}"
        self.batch_size, self.num_coroutine = int(batch_size), int(num_coroutine)
        self.max_seqlen = int(max_seqlen)
        # one request per chunk: the chunking (and per-chunk padding) is done here
        self._client = InferenceClient(self.address, batch_size=self.batch_size,
                                       num_coroutine=1, timeout=timeout)
        self._pool = None
        self._lock = threading.Lock()

    def encode(self, text_a, text_b=None):
        """Padded ``(src_ids, sent_ids)`` int64 chunks of at most ``batch_size`` rows."""
        text_a = [text_a] if isinstance(text_a, str) else list(text_a)
        if text_b is not None:
            text_b = [text_b] if isinstance(text_b, str) else list(text_b)
            if len(text_b) != len(text_a):
                raise ValueError(f"{len(text_a)} first sentences but {len(text_b)} second ones")
        for t in text_a + (text_b or []):
            if not isinstance(t, str):
                raise TypeError(f"texts must be strings, got {type(t).__name__}")
        rows = [self.tokenizer.encode(a, None if text_b is None else text_b[i], self.max_seqlen)
                for i, a in enumerate(text_a)]
        chunks = []
        for start in range(0, len(rows), self.batch_size):
            part = rows[start:start + self.batch_size]
            s = max(len(ids) for ids, _ in part)
            src = np.full((len(part), s), self.pad_id, dtype=np.int64)
            sent = np.zeros_like(src)
            for i, (ids, types) in enumerate(part):
                src[i, :len(ids)], sent[i, :len(ids)] = ids, types
            chunks.append((src, sent))
        return chunks

    def __call__(self, text_a, text_b=None):
        chunks = self.encode(text_a, text_b)
        if not chunks:
            raise ValueError("no texts given")
        if len(chunks) == 1 or self.num_coroutine == 1:
            parts = [self._client(src, sent)[0] for src, sent in chunks]
        else:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.num_coroutine,
                                                    thread_name_prefix="ernie-client")
            futures = [self._pool.submit(self._client, src, sent) for src, sent in chunks]
            errors = [f.exception() for f in futures]  # let every chunk finish first
            for e in errors:
                if e is not None:
                    raise e
            parts = [f.result()[0] for f in futures]
        return np.concatenate(parts, axis=0)

    def close(self):
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        self._client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def build_parser():
    ap = argparse.ArgumentParser(prog="python -m ernie.service.client",
                                 description="Embed a TSV of text_a[<TAB>text_b] lines with an "
                                             "ERNIE embedding server; writes a [N, hidden] .npy")
    ap.add_argument("--vocab_file", required=True)
    ap.add_argument("--data", required=True, help="TSV: text_a[<TAB>text_b] (header optional)")
    ap.add_argument("--out", required=True, help=".npy file to write")
    ap.add_argument("--host", default="localhost")
    ap.add_argument("--port", type=int, default=8888)
    ap.add_argument("--batch_size", type=int, default=32)
    ap.add_argument("--num_coroutine", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=10.)
    ap.add_argument("--max_seqlen", type=int, default=128)
    ap.add_argument("--no_lower_case", action="store_true")
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    from ernie.data.corpus import read_texts
    try:
        pairs = read_texts(args.data)
        if not pairs:
            raise ValueError(f"{args.data}: no lines")
        a = [p[0] for p in pairs]
        b = [p[1] for p in pairs] if all(p[1] is not None for p in pairs) else None
        if b is None and any(p[1] is not None for p in pairs):
            raise ValueError(f"{args.data}: some lines have text_b and some do not")
        with ErnieClient(args.vocab_file, args.host, args.port, args.batch_size,
                         args.num_coroutine, args.timeout, args.max_seqlen,
                         do_lower_case=not args.no_lower_case) as client:
            emb = client(a, b)
        with open(args.out, "wb") as f:
            np.save(f, emb)
    except (OSError, ValueError, ServerError, TimeoutError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {list(emb.shape)} to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    from propeller.cli import run_main  # user errors: one message, exit status 2
    sys.exit(run_main(main))
