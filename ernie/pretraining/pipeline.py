"""The multi-task input pipeline: per-task example streams over a (rank, worker) share of the
documents, batches laid out by the schedule, and the collation the multi-task model reads.

Batch layout (a tuple; labels last, as Propeller expects):

    (src_ids [B,S], sent_ids [B,S], pos_ids [B,S], task_ids [B,S], stage [1], present [T'],
     indices (T' arrays), labels (T' arrays))

``present`` lists the model's task indices that have examples in the batch; for each, ``indices``
holds flat positions into the B*S tokens (token and mlm tasks) or batch rows (sentence tasks)
and ``labels`` the targets there.

Determinism: a task stream visits its documents (or labelled-file rows) epoch by epoch in a
shuffled order, and each visit draws from its own random generator keyed by (seed, task, rank,
worker, epoch, offset in the epoch); so a task stream's whole state is its cursor (epoch,
offset), and the batch at position p is a function of (seed, p, rank, world, num_workers).
A stream starting at position s finds the cursors from a cursor log (``cursor_dir``: each
producer writes its task cursors every ``cursor_every`` of its positions) and replays only the
examples after the latest entry; without one it replays every example before s.
"""
import copy
import hashlib
import inspect
import json
import logging
import os
import zlib

import numpy as np

from ernie.pretraining.shards import partition

log = logging.getLogger("ernie")


def _key(*parts):
    return [int(p) & 0xFFFFFFFF for p in parts]


def block_shuffled(indices, rng, block=1024, start=0):
    """The indices in a random order that needs O(len/block + block) memory: the order of the
    blocks is shuffled, then each block's contents. ``start``: the same order from its
    ``start``-th item (a skipped block only draws its permutation, to keep ``rng`` in step)."""
    n, pos = len(indices), 0
    for b in rng.permutation((n + block - 1) // block):
        chunk = indices[b * block:(b + 1) * block]
        perm = rng.permutation(len(chunk))
        for j in perm[max(0, start - pos):]:
            yield chunk[j]
        pos += len(chunk)


class TaskStream:
    """Endless examples of one task from one (rank, worker) share of the corpus.

    Epoch e visits the share's documents in a shuffled order (seeded by seed, task, share, e)
    and asks the task for one example per document (documents that cannot give one are
    passed over), so within an epoch no document is used twice and the shares are disjoint.
    A task reading labelled files (``file_rows``) visits rows instead: every share reads the
    same shuffled order of all rows (seeded without the share) and keeps every parts-th.

    Each visit builds with its own generator, keyed by (seed, task, rank, worker) with the
    (epoch, offset) of the visit in its Philox counter, so the stream's whole state is the cursor
    (epoch, offset) of the next visit: ``cursor()`` and ``seek(epoch, offset)``."""

    def __init__(self, task, corpus, ctx, seed=0, rank=0, world=1, worker=0, num_workers=1):
        self.task, self.corpus, self.ctx = task, corpus, ctx
        tkey = zlib.crc32(task.name.encode("utf-8"))
        self.share = partition(len(corpus), rank, world, worker, num_workers) if corpus is not None else range(0)
        self._part = (rank * num_workers + worker, world * num_workers)
        self._order_key = (seed, tkey, rank, worker)
        k = _key(seed, tkey, rank, worker)
        self._rng = np.random.RandomState(np.random.Philox(key=k[0] | k[1] << 32 | k[2] << 64 | k[3] << 96))
        self._fresh = self._rng.get_state(legacy=False)  # each visit resets it with its own counter
        self.rows = None  # the labelled-file rows, once loaded
        self.epoch = self.offset = 0
        self._ready, self._it = False, None

    def cursor(self):
        """(epoch, offset) of the next visit."""
        return self.epoch, self.offset

    def seek(self, epoch, offset):
        self.epoch, self.offset, self._it = int(epoch), int(offset), None

    def _build_rng(self, epoch, offset):
        """The generator of one visit: Philox with the counter (0, 0, epoch, offset). Draws
        advance the low words only, so visits never share random numbers. (Resetting one
        generator costs a sixth of making a new one.)"""
        self._fresh["state"]["counter"] = np.array([0, 0, epoch, offset], dtype=np.uint64)
        self._rng.set_state(self._fresh)
        return self._rng

    def _visits(self, epoch, start):
        """The items (document or row indices) of an epoch from its ``start``-th visit on."""
        if self.rows is not None:
            k, parts = self._part
            order = np.random.RandomState(_key(*self._order_key[:2], epoch)).permutation(len(self.rows))
            return iter(order[k::parts][start:])
        return block_shuffled(self.share, np.random.RandomState(_key(*self._order_key, epoch)), start=start)

    def _example(self, item, epoch, offset):
        rng = self._build_rng(epoch, offset)
        if self.rows is not None:
            return self.task.row_example(self.rows[item], rng, self.ctx)
        return self.task.build(self.corpus[int(item)], rng, self.ctx)

    def _gen(self):
        while True:
            start, made = self.offset, 0
            for off, item in enumerate(self._visits(self.epoch, start), start):
                self.offset = off + 1
                ex = self._example(item, self.epoch, off)
                if ex is not None:
                    made += 1
                    yield ex
            if not made and not start:  # a whole epoch gave nothing
                raise ValueError(f"task {self.task.name}: no document of the corpus gives an example")
            self.epoch, self.offset = self.epoch + 1, 0

    def _setup(self):
        if callable(getattr(self.task, "file_examples", None)):
            raise TypeError(f"task {self.task.name}: file_examples() was replaced by file_rows(ctx) and "
                            f"row_example(row, rng, ctx) (see PretrainTask)")
        self.task.setup(self.ctx)
        self.rows = self.task.file_rows(self.ctx)
        if self.rows is not None and len(inspect.signature(self.task.row_example).parameters) != 3:
            raise TypeError(f"task {self.task.name}: row_example takes (row, rng, ctx) (see PretrainTask)")
        k, parts = self._part
        if self.rows is not None:
            if len(self.rows) <= k:
                raise ValueError(f"task {self.task.name}: its labelled files have {len(self.rows)} rows, too few "
                                 f"for {parts} ranks x workers")
        elif not len(self.share):
            raise ValueError(f"task {self.task.name}: this share of the corpus has no documents "
                             f"({len(self.corpus)} documents for {parts} ranks x workers)")
        self._ready = True

    def __next__(self):
        if not self._ready:
            self._setup()
        if self._it is None:
            self._it = self._gen()
        return next(self._it)

    def __iter__(self):
        return self

    def skip(self, n):
        """Replay: build and drop ``n`` examples."""
        for _ in range(int(n)):
            next(self)


def collate(examples, task_index, ctx, stage=0):
    """Pad and lay out a list of Examples (any mix of tasks) as the model's batch tuple.

    ``task_index`` maps a task name to (model task index, task object)."""
    b = len(examples)
    seqlen = max(len(e.token_ids) for e in examples)
    src = np.full((b, seqlen), ctx.pad_id, dtype="int64")
    sent = np.zeros((b, seqlen), dtype="int64")
    task_ids = np.zeros((b, seqlen), dtype="int64")
    groups = {}
    for i, ex in enumerate(examples):
        k, task = task_index[ex.task]
        n = len(ex.token_ids)
        src[i, :n] = ex.token_ids
        sent[i, :n] = ex.type_ids
        task_ids[i, :] = task.task_id
        idx, lab = groups.setdefault(k, ([], []))
        if task.level == "sentence":
            idx.append(np.array([i], "int64"))
        else:
            idx.append(np.asarray(ex.positions, "int64") + i * seqlen)
        lab.append(np.asarray(ex.labels, "int64"))
    present = sorted(groups)
    pos = np.broadcast_to(np.arange(seqlen, dtype="int64"), (b, seqlen)).copy()
    indices = tuple(np.concatenate(groups[k][0]) for k in present)
    labels = tuple(np.concatenate(groups[k][1]) for k in present)
    return (src, sent, pos, task_ids, np.array([stage], "int64"), np.array(present, "int64"), indices, labels)


class CursorLog:
    """Task cursors that one producer (the positions = ``worker`` mod ``num_workers``) had
    before some of its positions: JSON lines ``{"pos": p, "cursors": [[epoch, offset], ...]}``.

    The file name holds a fingerprint of everything the stream's content depends on, and the
    state before p is a function of those, so any entry is valid, whoever wrote it (a run that
    crashed later, a producer running ahead of the last checkpoint). Lines are appended whole
    (O_APPEND, one write each); a line cut by a crash is ignored."""

    def __init__(self, directory, fingerprint, worker, num_workers, num_tasks):
        self.dir = directory
        self.path = os.path.join(directory, f"cursors-{fingerprint}-{worker}of{num_workers}.jsonl")
        self.entries, self._cut, self._fd, self._broken = {}, False, None, False
        try:
            with open(self.path, "rb") as f:  # bytes: a damaged line is skipped, never fatal
                for line in f:
                    self._cut = not line.endswith(b"\n")
                    try:
                        e = json.loads(line.decode("utf-8"))
                        cursors = [(int(ep), int(off)) for ep, off in e["cursors"]]
                        if len(cursors) == num_tasks:
                            self.entries[int(e["pos"])] = cursors
                    except (ValueError, KeyError, TypeError):
                        continue
        except FileNotFoundError:
            pass
        except OSError as e:
            log.warning("cursor log %s unreadable (%s): resuming by replay", self.path, e)

    def latest(self, pos):
        """(p, cursors) of the entry with the largest p <= pos, or None."""
        p = max((q for q in self.entries if q <= pos), default=None)
        return None if p is None else (p, self.entries[p])

    def write(self, pos, cursors):
        if pos in self.entries or self._broken:
            return
        try:
            if self._fd is None:
                os.makedirs(self.dir, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                if self._cut:  # keep a line cut by a crash on its own line
                    os.write(self._fd, b"\n")
            os.write(self._fd, (json.dumps({"pos": int(pos), "cursors": [list(c) for c in cursors]}) + "\n").encode())
        except OSError as e:  # the log only speeds up a resume: never stop training for it
            log.warning("cannot write the cursor log %s (%s): a resume will replay the stream", self.path, e)
            self._broken = True
            return
        self.entries[pos] = cursors

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# Bump when the way examples are drawn changes: cursor logs of older code are then never read.
STREAM_VERSION = 1
# What identifies a preprocessed corpus (its shard index), besides its number of documents.
CORPUS_IDENTITY = ("num_tokens", "num_sentences", "vocab_sha1", "seed", "source_bytes", "chunk_bytes", "id_files")


def _settings(task):
    """A task's public attributes (its options), for the stream fingerprint."""
    return {k: v for k, v in vars(task).items() if not k.startswith("_")}


class MultiTaskStream:
    """The training stream: the batch at each schedule position, for this rank.

    It speaks the part of the propeller Dataset protocol the trainer uses: ``skip(n)`` (on
    resume: a stream starting at position n) and ``to_paddle_dataloader(num_workers)`` (K
    workers each make the positions of one residue mod K and the DataLoader reads them
    round-robin, so the positions come in order; the documents behind them depend on K, so
    resume with the same num_workers).

    ``cursor_dir``: where each producer logs its task cursors every ``cursor_every`` of its
    positions (``CursorLog``), so that a stream starting at position n seeks its task streams
    to the latest logged position <= n and replays only the examples after it, instead of
    every example before n."""

    def __init__(self, tasks, schedule, corpus, ctx, seed=0, rank=0, world=1, start=0, cursor_dir=None,
                 cursor_every=64):
        self.tasks, self.schedule, self.corpus, self.ctx = list(tasks), schedule, corpus, ctx
        self.seed, self.rank, self.world, self.start = seed, rank, world, int(start)
        self.cursor_dir, self.cursor_every = cursor_dir, max(1, int(cursor_every))
        self.task_index = {t.name: (k, t) for k, t in enumerate(self.tasks)}
        if [t.name for t in self.tasks] != list(schedule.task_names):
            raise ValueError("the schedule's task order differs from the model's")
        # taken now, before any task's setup can add attributes
        index = getattr(corpus, "index", None) or {}
        self._content = {
            "version": STREAM_VERSION, "seed": seed, "rank": rank, "world": world,
            "corpus": [len(corpus) if corpus is not None else 0] + [index.get(k) for k in CORPUS_IDENTITY],
            "tasks": [[type(t).__qualname__, t.name, _settings(t)] for t in self.tasks],
            "schedule": {"stages": schedule.stages, "mix": schedule.mix, "batch_size": schedule.batch_size,
                         "seed": schedule.seed},
            "ctx": {k: getattr(ctx, k, None) for k in ("vocab_size", "max_seqlen", "cls_id", "sep_id", "mask_id",
                                                       "pad_id", "type_vocab_size")}}

    def __len__(self):
        return max(0, self.schedule.total - self.start)

    def skip(self, n):
        other = copy.copy(self)
        other.start = self.start + int(n)
        return other

    def fingerprint(self, worker=0, num_workers=1):
        """What one producer's stream depends on (16 hex digits; names its cursor log)."""
        spec = json.dumps(dict(self._content, worker=worker, num_workers=num_workers), sort_keys=True, default=repr)
        return hashlib.sha1(spec.encode("utf-8")).hexdigest()[:16]

    def batches(self, worker=0, num_workers=1):
        """Batches from ``start`` at the positions of one of ``num_workers`` producers."""
        streams = [TaskStream(t, self.corpus, self.ctx, self.seed, self.rank, self.world, worker, num_workers)
                   for t in self.tasks]
        first = self.start + (worker - self.start) % num_workers
        cursors = CursorLog(self.cursor_dir, self.fingerprint(worker, num_workers), worker, num_workers,
                            len(streams)) if self.cursor_dir else None
        found = cursors.latest(first) if cursors else None
        since = 0
        if found:
            since, at = found
            for s, (epoch, offset) in zip(streams, at):
                s.seek(epoch, offset)
        counts = self.schedule.counts_before
        for s, n in zip(streams, counts(first, worker, num_workers) - counts(since, worker, num_workers)):
            s.skip(n)
        if first >= num_workers:
            log.info("stream from position %d (producer %d of %d): %s, %d batches replayed", first, worker,
                     num_workers, f"task cursors of position {since} restored from the cursor log" if found
                     else "no cursor log entry", (first - since) // num_workers)
        try:
            for pos in range(first, self.schedule.total, num_workers):
                if cursors and pos >= num_workers and pos // num_workers % self.cursor_every == 0:
                    cursors.write(pos, [s.cursor() for s in streams])  # the state before pos
                stage = self.schedule.stage_of(pos)
                exs = [next(streams[k]) for k in self.schedule.tasks_at(pos)]
                yield collate(exs, self.task_index, self.ctx, stage)
        finally:
            if cursors:
                cursors.close()

    def __iter__(self):
        return self.batches()

    def to_paddle_dataloader(self, num_workers=0, **loader_kwargs):
        import paddle
        stream = self

        class _Workers(paddle.io.IterableDataset):
            def __iter__(self):
                info = paddle.io.get_worker_info()
                if info is None:
                    return stream.batches()
                # The DataLoader reads worker 0 first, so worker k makes the positions of residue
                # (start + k) mod K; a residue keeps its documents and task streams whatever start is.
                k = info.num_workers
                return stream.batches((info.id + stream.start) % k, k)

        loader_kwargs.setdefault("batch_size", None)
        return paddle.io.DataLoader(_Workers(), num_workers=num_workers, **loader_kwargs)


def eval_batches(tasks, corpus, ctx, batch_size, batches_per_task=2, seed=0):
    """A fixed list of single-task batches per task (for evaluation): every eval pass sees the
    same examples."""
    index = {t.name: (k, t) for k, t in enumerate(tasks)}
    out = []
    for t in tasks:
        stream = TaskStream(t, corpus, ctx, seed=seed + 7919)
        for _ in range(batches_per_task):
            out.append(collate([next(stream) for _ in range(batch_size)], index, ctx))
    return out


try:  # the DataLoader-worker reader; optional so that preprocessing never imports paddle
    import paddle as _paddle

    class ShardDocumentDataset(_paddle.io.IterableDataset):
        """Documents of a ShardCorpus for ``paddle.io.DataLoader``: each Fleet rank
        (PADDLE_TRAINER_ID of PADDLE_TRAINERS_NUM) and each of its DataLoader workers reads its
        own disjoint share, streaming from the memory-mapped shards. Yields (doc index, token ids
        of the document) by default; pass ``fn(doc)`` to yield something else."""

        def __init__(self, corpus, fn=None, rank=None, world=None):
            super().__init__()
            import os
            self.corpus, self.fn = corpus, fn
            self.rank = int(os.environ.get("PADDLE_TRAINER_ID", "0")) if rank is None else rank
            self.world = int(os.environ.get("PADDLE_TRAINERS_NUM", "1")) if world is None else world

        def __iter__(self):
            info = _paddle.io.get_worker_info()
            worker, nworkers = (info.id, info.num_workers) if info is not None else (0, 1)
            for doc in self.corpus.documents(self.rank, self.world, worker, nworkers):
                if self.fn is not None:
                    yield self.fn(doc)
                else:
                    yield np.array([doc.index], "int64"), np.concatenate([np.asarray(s.ids, "int64") for s in doc])
except ImportError:  # pragma: no cover
    pass
