"""Which ``paddle.io.DataLoader`` worker this process is: set by the loader wrapper in each
worker (paddle_loader), read by ``Dataset.worker_shard``. A process-global is enough: workers are
processes. Kept in a module of its own so that neither side imports the other for it."""

_CURRENT = None  # (worker_id, num_workers) inside a DataLoader worker process, else None


def current():
    return _CURRENT


def set_current(worker):
    global _CURRENT
    _CURRENT = worker
