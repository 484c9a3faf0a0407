"""The multi-task input pipeline: per-task example streams over a (rank, worker) share of the
documents, batches laid out by the schedule, and the collation the multi-task model reads.

Batch layout (a tuple; labels last, as Propeller expects):

    (src_ids [B,S], sent_ids [B,S], pos_ids [B,S], task_ids [B,S], stage [1], present [T'],
     indices (T' arrays), labels (T' arrays))

``present`` lists the model's task indices that have examples in the batch; for each, ``indices``
holds flat positions into the B*S tokens (token and mlm tasks) or batch rows (sentence tasks)
and ``labels`` the targets there.

Determinism: a task's examples on a (rank, worker) share depend only on (seed, task, rank,
worker); the schedule says which task fills which batch; so the batch at position p is a
function of (seed, p), and a stream can start at any position by skipping the examples each
task had produced before it.
"""
import logging
import zlib

import numpy as np

from ernie.pretraining.shards import partition

log = logging.getLogger("ernie")


def _key(*parts):
    return [int(p) & 0xFFFFFFFF for p in parts]


def block_shuffled(indices, rng, block=1024):
    """The indices in a random order that needs O(len/block + block) memory: the order of the
    blocks is shuffled, then each block's contents."""
    n = len(indices)
    for b in rng.permutation((n + block - 1) // block):
        chunk = indices[b * block:(b + 1) * block]
        for j in rng.permutation(len(chunk)):
            yield chunk[j]


class TaskStream:
    """Endless examples of one task from one (rank, worker) share of the corpus.

    Epoch e visits the share's documents in a shuffled order (seeded by seed, task, share, e)
    and asks the task for one example per document (documents that cannot give one are
    passed over), so within an epoch no document is used twice and the shares are disjoint."""

    def __init__(self, task, corpus, ctx, seed=0, rank=0, world=1, worker=0, num_workers=1):
        self.task, self.corpus, self.ctx = task, corpus, ctx
        tkey = zlib.crc32(task.name.encode("utf-8"))
        self.share = partition(len(corpus), rank, world, worker, num_workers) if corpus is not None else range(0)
        self._part = (rank * num_workers + worker, world * num_workers)
        self.rng = np.random.RandomState(_key(seed, tkey, rank, worker))
        self._order_key = (seed, tkey, rank, worker)
        self._it = None

    def _gen(self):
        # a file is read in the same shuffled order by every share (the seed without rank or
        # worker), each keeping every parts-th example: disjoint shares
        files = self.task.file_examples(self.ctx, np.random.RandomState(_key(*self._order_key[:2])))
        if files is not None:
            k, parts = self._part
            for i, ex in enumerate(files):
                if i % parts == k:
                    yield ex
            return
        if not len(self.share):
            raise ValueError(f"task {self.task.name}: this share of the corpus has no documents "
                             f"({len(self.corpus)} documents for {self._part[1]} ranks x workers)")
        epoch = 0
        while True:
            order_rng = np.random.RandomState(_key(*self._order_key, epoch))
            made = 0
            for i in block_shuffled(self.share, order_rng):
                ex = self.task.build(self.corpus[int(i)], self.rng, self.ctx)
                if ex is not None:
                    made += 1
                    yield ex
            if not made:
                raise ValueError(f"task {self.task.name}: no document of the corpus gives an example")
            epoch += 1

    def __next__(self):
        if self._it is None:
            self.task.setup(self.ctx)
            self._it = self._gen()
        return next(self._it)

    def __iter__(self):
        return self

    def skip(self, n):
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


class MultiTaskStream:
    """The training stream: the batch at each schedule position, for this rank.

    It speaks the part of the propeller Dataset protocol the trainer uses: ``skip(n)`` (on
    resume: a stream starting at position n, at no cost for the skipped batches) and
    ``to_paddle_dataloader(num_workers)`` (K workers each make the positions of one residue
    mod K and the DataLoader reads them round-robin, so the positions come in order; the
    documents behind them depend on K, so resume with the same num_workers)."""

    def __init__(self, tasks, schedule, corpus, ctx, seed=0, rank=0, world=1, start=0):
        self.tasks, self.schedule, self.corpus, self.ctx = list(tasks), schedule, corpus, ctx
        self.seed, self.rank, self.world, self.start = seed, rank, world, int(start)
        self.task_index = {t.name: (k, t) for k, t in enumerate(self.tasks)}
        if [t.name for t in self.tasks] != list(schedule.task_names):
            raise ValueError("the schedule's task order differs from the model's")

    def __len__(self):
        return max(0, self.schedule.total - self.start)

    def skip(self, n):
        return MultiTaskStream(self.tasks, self.schedule, self.corpus, self.ctx, self.seed, self.rank, self.world,
                               self.start + int(n))

    def batches(self, worker=0, num_workers=1):
        """Batches from ``start`` at the positions of one of ``num_workers`` producers."""
        streams = [TaskStream(t, self.corpus, self.ctx, self.seed, self.rank, self.world, worker, num_workers)
                   for t in self.tasks]
        for s, n in zip(streams, self.schedule.counts_before(self.start, worker, num_workers)):
            s.skip(n)
        first = self.start + (worker - self.start) % num_workers
        for pos in range(first, self.schedule.total, num_workers):
            stage = self.schedule.stage_of(pos)
            exs = [next(streams[k]) for k in self.schedule.tasks_at(pos)]
            yield collate(exs, self.task_index, self.ctx, stage)

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
