"""Multi-process data parallelism through Paddle's own launcher (Fleet collective).

``python -m paddle.distributed.launch --nproc_per_node N script.py ...`` sets the PADDLE_*
environment; gloo is chosen on CPU, NCCL on GPU. Nothing here is home-made cluster code."""
import atexit
import logging
import os
import time

import paddle

_initialised = False
_finished = False  # the last training run ended on every rank (see _shutdown)


def world_size():
    return int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))


def rank():
    return int(os.environ.get("PADDLE_TRAINER_ID", "0"))


def is_master():
    return rank() == 0


def init():
    """Initialise the collective environment once (no-op in a single process)."""
    global _initialised
    if world_size() > 1 and not _initialised:
        from paddle.distributed import fleet
        fleet.init(is_collective=True)
        _initialised = True
        atexit.register(_shutdown)
    return world_size()


def _shutdown():
    """Leave together and take the process group down while the interpreter is still whole.
    Left to interpreter teardown, the gloo context goes down in arbitrary order, maybe with the
    peer already gone: a rank of tests/test_propeller_distributed.py ended with SIGSEGV (in CI)
    or SIGABRT (1 of ~100 runs here) after all its work was done and saved, which the launcher
    reports as a failed job. Only after a training run that every rank finished (``finished``):
    a rank leaving on an error must not wait at a barrier its peers never reach."""
    if not _finished:
        return
    try:
        paddle.distributed.barrier()
        paddle.distributed.destroy_process_group()
    except Exception as e:  # the peer died first: nothing left to shut down in order
        logging.getLogger("propeller").warning("rank %d: orderly distributed shutdown failed: %s", rank(), e)


def started():
    """A training run begins: until every rank has finished it, exit without waiting for peers."""
    global _finished
    _finished = False


def finished():
    """Every rank calls this at the end of a training run; they wait for each other here."""
    global _finished
    barrier()
    _finished = True


def wrap(model):
    """DataParallel under the launcher; the model itself otherwise."""
    if world_size() > 1:
        init()
        return paddle.DataParallel(model)
    return model


def all_reduce_sum(tensor):
    """Sum ``tensor`` over the ranks, in place (no-op in a single process)."""
    if world_size() > 1:
        paddle.distributed.all_reduce(tensor)
    return tensor


def barrier():
    if world_size() > 1:
        paddle.distributed.barrier()


def build_once(ready, build, what, timeout=3600, poll=0.5):
    """Make a shared file once under the launcher: rank 0 calls ``build()``; the other ranks wait
    until ``ready()`` (the file as rank 0 leaves it, on a shared file system) or ``timeout`` s.
    ``ready`` must stay False while rank 0 is still writing (build into a temp name, then rename)."""
    if is_master():
        build()
        return
    t0 = time.time()
    while not ready():
        if time.time() - t0 > timeout:
            raise TimeoutError(f"rank {rank()}: rank 0 did not build {what} in {timeout} s")
        time.sleep(poll)
