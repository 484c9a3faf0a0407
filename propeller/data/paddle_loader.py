"""Run a propeller Dataset inside ``paddle.io.DataLoader`` worker processes.

Kept apart from dataset.py so that building pipelines never pays for importing paddle.
"""
import paddle

from propeller.data.worker import set_current

__all__ = ["PaddleIterableDataset", "make_dataloader"]


class PaddleIterableDataset(paddle.io.IterableDataset):
    """Wraps a propeller Dataset; in worker ``k`` of ``n`` it yields only that worker's share.

    Each worker holds a copy of the whole pipeline (DataLoader forks it). If the pipeline has
    a ``worker_shard()`` node, sharding happens there; otherwise every worker runs the full
    pipeline and keeps elements ``k, k+n, ...`` of the output, which the DataLoader reads
    round-robin, reproducing the single-process order.
    """

    def __init__(self, ds):
        super().__init__()
        self.ds = ds
        self._shards_inside = any(node._kind == "worker_shard" for node in ds._nodes())

    def set_epoch(self, epoch):
        self.ds.set_epoch(epoch)

    def __iter__(self):
        info = paddle.io.get_worker_info()
        if info is None or info.num_workers <= 1:
            set_current(None)
            yield from self.ds
            return
        set_current((info.id, info.num_workers))
        if self._shards_inside:
            yield from self.ds
            return
        for i, x in enumerate(self.ds):
            if i % info.num_workers == info.id:
                yield x


def make_dataloader(ds, num_workers=0, **loader_kwargs):
    if "batch_size" in loader_kwargs and loader_kwargs["batch_size"] is not None:
        raise ValueError("batch in the Dataset (padded_batch); the DataLoader passes elements through")
    loader_kwargs["batch_size"] = None
    # Workers hand batches over as pickled numpy, not through Paddle's shared-memory tensors: with
    # those, a worker's queue feeder thread now and then never returned from
    # LoDTensor._share_filename (Paddle 3.3.1, CPU), so the loader waited forever for a batch (the
    # loader test hung in 4 of 12 runs, and in CI); our batches are small id arrays.
    loader_kwargs.setdefault("use_shared_memory", False)
    return paddle.io.DataLoader(PaddleIterableDataset(ds), num_workers=num_workers, **loader_kwargs)
