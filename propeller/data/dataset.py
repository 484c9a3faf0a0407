"""A small lazy, re-iterable, chainable dataset (the tf.data subset Propeller users rely on).

A ``Dataset`` is a recipe: every ``iter(ds)`` starts a fresh pass from the source, so
``repeat`` and multi-epoch training need no special support from the sources. Each op returns
a new Dataset and leaves its input unchanged.

Determinism: a pass yields the same sequence every time it is started the same way, which
``shard`` and the DataLoader workers rely on (each worker replays the pipeline and keeps its
share). A shuffle's order depends only on its seed, the epoch given to ``set_epoch`` and the
indices of the enclosing ``repeat`` passes, so ``shuffle().repeat()`` reshuffles each epoch
yet replays identically in another process. With ``seed=None`` the seed is drawn from
Python's global ``random`` when ``shuffle`` is called, so ``random.seed(s)`` before building
the pipeline makes it reproducible too.

Internally every node iterates its inputs with ``_iter(ctx)``; ``ctx`` is the tuple of
enclosing repeat-pass indices.

Nothing here imports paddle; ``to_paddle_dataloader`` does, lazily.
"""
import gzip
import queue
import random
import re
import sys
import threading

import numpy as np

from propeller.data.worker import current as current_worker

__all__ = ["Dataset", "has_undecodable"]


def _open_text(path, use_gz, encoding):
    if use_gz is None:  # sniff the gzip magic rather than trusting the suffix
        with open(path, "rb") as f:
            use_gz = f.read(2) == b"\x1f\x8b"
    # newline="\n": split on \n only, so a stray \r inside a TSV field cannot split a line.
    # surrogateescape: an undecodable byte must cost its line only (the parser reports that line,
    # see has_undecodable), not end the whole file with a UnicodeDecodeError
    if use_gz:
        return gzip.open(path, "rt", encoding=encoding, newline="\n", errors="surrogateescape")
    return open(path, encoding=encoding, newline="\n", errors="surrogateescape")


_UNDECODABLE = re.compile("[\udc80-\udcff]")


def has_undecodable(text):
    """Whether a line read by from_file/from_stdin held bytes its encoding could not decode."""
    return _UNDECODABLE.search(text) is not None


def _strip_eol(line):
    if line.endswith("\n"):
        line = line[:-1]
    if line.endswith("\r"):
        line = line[:-1]
    return line


class Dataset:
    """A lazy stream of examples; build with ``from_list``/``from_file``/``from_generator_func``."""

    def __init__(self, make_iter, parents=(), kind="source", name=None):
        self._make_iter = make_iter  # ctx -> iterator; called once per pass
        self._parents = tuple(parents)
        self._kind = kind
        self._epoch = 0
        self.name = name if name is not None else (parents[0].name if parents else None)

    def __iter__(self):
        return self._iter(())

    def _iter(self, ctx):
        return iter(self._make_iter(ctx))

    @staticmethod
    def _source(fn):
        """Adapt a ctx-free ``() -> iterable`` to the node signature."""
        return lambda ctx: fn()

    def __repr__(self):
        return "Dataset(%s%s)" % (self._kind, ", name=%r" % self.name if self.name else "")

    def _derive(self, make_iter, kind, parents=None):
        return Dataset(make_iter, parents if parents is not None else (self,), kind)

    def _nodes(self):
        seen, stack = [], [self]
        while stack:
            node = stack.pop()
            if not any(node is s for s in seen):
                seen.append(node)
                stack.extend(node._parents)
        return seen

    # ------------------------------------------------------------------ sources
    @classmethod
    def from_generator_func(cls, gen_fn, data_shapes=None, data_types=None, name=None):
        """Examples from ``gen_fn()``, called anew for each pass (so it must be re-startable).

        ``data_shapes``/``data_types`` are kept as attributes for callers that want them.
        """
        if not callable(gen_fn):
            raise TypeError("from_generator_func expects a callable returning an iterator, got %r" % (gen_fn,))
        ds = cls(cls._source(gen_fn), kind="generator", name=name)
        ds.data_shapes, ds.data_types = data_shapes, data_types
        return ds

    @classmethod
    def from_list(cls, items, name=None):
        items = list(items)  # a snapshot: later edits of the caller's list do not leak in
        return cls(lambda ctx: iter(items), kind="list", name=name)

    @classmethod
    def from_file(cls, path, use_gz=None, encoding="utf-8", name=None):
        """The lines of a text file (end-of-line removed). gzip is detected unless ``use_gz`` is given."""

        def lines():
            with _open_text(path, use_gz, encoding) as f:
                for line in f:
                    yield _strip_eol(line)

        return cls(cls._source(lines), kind="file", name=name)

    @classmethod
    def from_stdin(cls, name=None):
        """Lines of stdin. One pass only; cannot run in DataLoader worker processes."""

        def lines():
            src = sys.stdin  # looked up per pass, so a replaced sys.stdin is honoured
            raw = getattr(src, "buffer", None)
            if raw is None:
                for line in src:
                    yield _strip_eol(line)
                return
            enc = getattr(src, "encoding", None) or "utf-8"
            for line in raw:  # bytes: a bad byte costs its line only (see _open_text)
                yield _strip_eol(line.decode(enc, "surrogateescape"))

        return cls(cls._source(lines), kind="stdin", name=name)

    # ------------------------------------------------------------------ element-wise
    def map(self, fn):
        """``fn(example)``; a tuple example is passed as one argument (unpack in ``fn`` if you like)."""
        return self._derive(lambda ctx: (fn(x) for x in self._iter(ctx)), "map")

    def filter(self, fn):
        return self._derive(lambda ctx: (x for x in self._iter(ctx) if fn(x)), "filter")

    def flat_map(self, fn):
        """Each example becomes the elements of the iterable ``fn(example)``, in order."""

        def gen(ctx):
            for x in self._iter(ctx):
                yield from _iter_any(fn(x), ctx)

        return self._derive(gen, "flat_map")

    # ------------------------------------------------------------------ selection
    def take(self, n):
        def gen(ctx):
            if n <= 0:
                return
            for i, x in enumerate(self._iter(ctx)):
                yield x
                if i + 1 >= n:
                    return

        return self._derive(gen, "take")

    def skip(self, n):
        """Drop the first ``n`` examples (e.g. batches already consumed before a resume)."""

        def gen(ctx):
            it = self._iter(ctx)
            for _ in range(n):
                if next(it, _END) is _END:
                    return
            yield from it

        return self._derive(gen, "skip")

    def shard(self, num_shards, index):
        """Every ``num_shards``-th example starting at ``index`` (e.g. per distributed rank).

        The shards for index 0..num_shards-1 are disjoint and together give every example once,
        provided each pass yields the same sequence (use a seeded shuffle before sharding).
        """
        if not (isinstance(num_shards, int) and num_shards >= 1 and 0 <= index < num_shards):
            raise ValueError(
                "shard: need num_shards >= 1 and 0 <= index < num_shards, got %r, %r" % (num_shards, index)
            )

        def gen(ctx):
            for i, x in enumerate(self._iter(ctx)):
                if i % num_shards == index:
                    yield x

        return self._derive(gen, "shard")

    def worker_shard(self):
        """Shard here among DataLoader worker processes (a no-op outside them).

        Put it before expensive work (tokenisation) so each worker only does its share. Without
        it, ``to_paddle_dataloader`` shards the final stream instead: each worker then runs the
        whole pipeline, but the batch order equals the single-process order.
        """

        def gen(ctx):
            worker = current_worker()
            if worker is None or worker[1] <= 1:
                yield from self._iter(ctx)
                return
            wid, num = worker
            for i, x in enumerate(self._iter(ctx)):
                if i % num == wid:
                    yield x

        return self._derive(gen, "worker_shard")

    # ------------------------------------------------------------------ order
    def shuffle(self, buffer_size, seed=None):
        """Shuffle with a buffer of ``buffer_size`` examples (>= the dataset size: a full shuffle)."""
        if buffer_size < 1:
            raise ValueError("shuffle: buffer_size must be >= 1, got %r" % buffer_size)
        if seed is None:
            seed = random.getrandbits(63)  # drawn now, so DataLoader workers share it

        def gen(ctx):
            # A str seed is hashed with sha512: the same order in every process, and a new one
            # for each epoch / enclosing repeat pass.
            rng = random.Random("%d/%d/%s" % (seed, node._epoch, ctx))
            buf = []
            for x in self._iter(ctx):
                if len(buf) < buffer_size:
                    buf.append(x)
                    continue
                j = rng.randrange(buffer_size)
                yield buf[j]
                buf[j] = x
            rng.shuffle(buf)
            yield from buf

        node = self._derive(gen, "shuffle")
        return node

    def bucket_by_length(self, batch_size, key=len, pool_batches=32, seed=None):
        """Reorder so that a following ``padded_batch(batch_size)`` pads little: take
        ``pool_batches * batch_size`` examples at a time, sort them by ``key`` (a length), cut them
        into groups of ``batch_size`` and emit the groups in a shuffled order (seeded like
        ``shuffle``). Every example still comes once per pass, in batches of similar length: on
        the demo fine-tuning sets a random batch holds 2.1x (reviews) to 2.7x (NER sentences) the
        tokens of its longest-first packing. Put it after ``shuffle().repeat()`` so that every pool
        is full and the groups stay aligned with the batches."""
        if batch_size < 1 or pool_batches < 1:
            raise ValueError("bucket_by_length: batch_size and pool_batches must be >= 1")
        if seed is None:
            seed = random.getrandbits(63)
        pool_size = batch_size * pool_batches

        def gen(ctx):
            rng = random.Random("%d/%d/%s/bucket" % (seed, node._epoch, ctx))

            def groups(pool):
                pool.sort(key=key)
                out = [pool[i:i + batch_size] for i in range(0, len(pool), batch_size)]
                rng.shuffle(out)
                for g in out:
                    yield from g

            pool = []
            for x in self._iter(ctx):
                pool.append(x)
                if len(pool) == pool_size:
                    yield from groups(pool)
                    pool = []
            if pool:
                yield from groups(pool)

        node = self._derive(gen, "bucket_by_length")
        return node

    def set_epoch(self, epoch):
        """Mix ``epoch`` into every shuffle seed upstream (like DistributedSampler.set_epoch).

        Without it, each new ``iter()`` of the pipeline replays the same order; a ``repeat()``
        inside the pipeline already reshuffles each of its passes.
        """
        for node in self._nodes():
            node._epoch = int(epoch)
        return self

    def repeat(self, n=-1):
        """Repeat ``n`` times (-1: forever). An empty pass ends the repetition instead of spinning."""

        def gen(ctx):
            i = 0
            while n < 0 or i < n:
                i += 1
                empty = True
                for x in self._iter(ctx + (i,)):
                    empty = False
                    yield x
                if empty:
                    return

        return self._derive(gen, "repeat")

    def interleave(self, map_fn, cycle_length, block_length):
        """Like tf.data: open ``map_fn(x)`` for ``cycle_length`` examples at a time and take
        ``block_length`` elements from each in turn; an exhausted one is replaced by the next."""
        if cycle_length < 1 or block_length < 1:
            raise ValueError("interleave: cycle_length and block_length must be >= 1")

        def gen(ctx):
            src = self._iter(ctx)

            def open_next():
                x = next(src, _END)
                return None if x is _END else _iter_any(map_fn(x), ctx)

            slots = []
            while len(slots) < cycle_length:
                it = open_next()
                if it is None:
                    break
                slots.append(it)
            idx = 0
            while slots:
                idx %= len(slots)
                it = slots[idx]
                for _ in range(block_length):
                    x = next(it, _END)
                    if x is _END:
                        new = open_next()
                        if new is None:
                            del slots[idx]
                            idx -= 1  # the next slot slid into this index
                        else:
                            slots[idx] = new
                        break
                    yield x
                idx += 1

        return self._derive(gen, "interleave")

    def chain(self, *others):
        """This dataset followed by ``others``."""
        parts = (self,) + others

        def gen(ctx):
            for part in parts:
                yield from part._iter(ctx)

        return self._derive(gen, "chain", parents=parts)

    def zip(self, *others):
        """Tuples ``(a, b, ...)`` of corresponding examples; stops at the shortest."""
        parts = (self,) + others
        return self._derive(lambda ctx: zip(*(p._iter(ctx) for p in parts)), "zip", parents=parts)

    # ------------------------------------------------------------------ batching
    def padded_batch(self, batch_size, pad_value=0, drop_last=False):
        """Group ``batch_size`` examples and pad each field to the longest in the batch.

        An example may be a tuple/list of fields, a dict of fields or a single field; a field
        is a scalar or an (optionally ragged) array. The batch has the same structure with one
        numpy array per field, shape ``[batch, *max_shape]``. ``pad_value`` is one value or one
        per field. Python floats become float32 and Python ints int64; numpy dtypes are kept.
        """
        if batch_size < 1:
            raise ValueError("padded_batch: batch_size must be >= 1, got %r" % batch_size)

        def gen(ctx):
            buf = []
            for x in self._iter(ctx):
                buf.append(x)
                if len(buf) == batch_size:
                    yield _collate(buf, pad_value)
                    buf = []
            if buf and not drop_last:
                yield _collate(buf, pad_value)

        return self._derive(gen, "padded_batch")

    def buffered(self, size):
        """Prefetch up to ``size`` elements in a background thread."""
        if size < 1:
            raise ValueError("buffered: size must be >= 1, got %r" % size)

        def gen(ctx):
            q = queue.Queue(maxsize=size)
            stop = threading.Event()

            def put(item):
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        return True
                    except queue.Full:
                        pass
                return False

            def produce():
                try:
                    for x in self._iter(ctx):
                        if not put((0, x)):
                            return  # the consumer went away
                    put((1, None))
                except BaseException as e:  # re-raised in the consumer
                    put((2, e))

            thread = threading.Thread(target=produce, name="propeller-buffered", daemon=True)
            thread.start()
            try:
                while True:
                    tag, x = q.get()
                    if tag == 0:
                        yield x
                    elif tag == 1:
                        return
                    else:
                        raise x
            finally:
                stop.set()

        return self._derive(gen, "buffered")

    # ------------------------------------------------------------------ paddle
    def to_paddle_dataloader(self, num_workers=0, **loader_kwargs):
        """A ``paddle.io.DataLoader`` that runs this pipeline in ``num_workers`` processes.

        Elements are passed through unbatched (``batch_size=None``), so batch with
        ``padded_batch`` first; numpy fields arrive as paddle Tensors. Every element comes out
        exactly once: sharded at the ``worker_shard()`` point if the pipeline has one, else
        on the final stream (then the order equals ``num_workers=0``).
        """
        from propeller.data.paddle_loader import make_dataloader

        if num_workers > 0 and any(n._kind == "stdin" for n in self._nodes()):
            raise ValueError("a stdin dataset cannot run in DataLoader worker processes; use num_workers=0")
        return make_dataloader(self, num_workers=num_workers, **loader_kwargs)


_END = object()


def _iter_any(x, ctx):
    # Datasets returned by interleave/flat_map functions inherit the repeat context.
    return x._iter(ctx) if isinstance(x, Dataset) else iter(x)


def _collate(examples, pad_value):
    first = examples[0]
    if isinstance(first, (tuple, list)):
        n = len(first)
        for e in examples:
            if not isinstance(e, (tuple, list)) or len(e) != n:
                raise ValueError("padded_batch: examples have different numbers of fields (%d and %r)" % (n, e))
        pads = _per_field(pad_value, n)
        return tuple(_pad_field([e[i] for e in examples], pads[i], i) for i in range(n))
    if isinstance(first, dict):
        pads = pad_value if isinstance(pad_value, dict) else {k: pad_value for k in first}
        return {k: _pad_field([e[k] for e in examples], pads.get(k, 0), k) for k in first}
    return _pad_field(examples, pad_value, 0)


def _per_field(pad_value, n):
    if isinstance(pad_value, (tuple, list)):
        if len(pad_value) != n:
            raise ValueError("padded_batch: %d pad values for %d fields" % (len(pad_value), n))
        return list(pad_value)
    return [pad_value] * n


def _as_array(v):
    if isinstance(v, (np.ndarray, np.generic)):
        return np.asarray(v)
    a = np.asarray(v)
    if a.dtype == np.float64:  # Python floats: paddle wants float32
        a = a.astype(np.float32)
    return a


def _pad_field(values, pad, field):
    arrays = [_as_array(v) for v in values]
    ndim = arrays[0].ndim
    if any(a.ndim != ndim for a in arrays):
        raise ValueError("padded_batch: field %r has examples of different ranks" % (field,))
    dtype = np.result_type(*arrays)
    if ndim == 0:
        return np.array(arrays, dtype=dtype)
    shape = tuple(max(a.shape[d] for a in arrays) for d in range(ndim))
    out = np.full((len(arrays),) + shape, pad, dtype=dtype)
    for i, a in enumerate(arrays):
        out[(i,) + tuple(slice(0, s) for s in a.shape)] = a
    return out
