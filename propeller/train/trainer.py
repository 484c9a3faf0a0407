"""The one training loop: pre-training, fine-tuning and distillation all run through Learner.

One optimisation step = ``gradient_accumulation_steps`` micro-batches. Restarting the same
command resumes from the newest checkpoint in ``model_dir``: model, optimizer, LR scheduler,
loss scaler, global step, and the position in the (deterministic) training stream, so an
interrupted run ends with the same parameters as an uninterrupted one. Dropout is re-seeded
from (seed, step, rank) every step for the same reason. The training stream must replay
identically in a new process: give ``shuffle`` a seed (or seed ``random`` before building it).

Hyper-parameters the loop reads (``HParams`` / dict, all optional):

* ``gradient_accumulation_steps`` (1): micro-batches per optimisation step; the loss of each
  is divided by it, so k micro-batches of b rows give the gradient of one batch of k*b rows.
  A trailing group cut short by the end of the data is dropped.
* ``num_workers`` (0): prepare training batches in that many ``paddle.io.DataLoader`` worker
  processes (the train dataset must then be a propeller ``Dataset``).
* ``split_batches`` ("auto"): how ranks share the stream, see below and ``_RankFeed``.
* ``use_fp16`` / ``use_bf16`` (False): ``paddle.amp.auto_cast`` (level O1); fp16 also
  gets a ``GradScaler`` with dynamic loss scaling from ``init_loss_scaling``,
  ``incr_every_n_steps``, ``decr_every_n_nan_or_inf``, ``incr_ratio``, ``decr_ratio``
  (defaults: AMP_DEFAULTS). On CPU Paddle runs both as fp32 (no-ops).
* ``adversarial`` (None): FGM or PGD on the embeddings, e.g. ``{"method": "fgm", "epsilon": 1.0}``
  (``propeller/train/adversarial.py``): each micro-batch is run again on perturbed embeddings.

The training forward runs in dygraph by default; RunConfig ``to_static: true`` compiles it with
``paddle.jit.to_static`` (``_StaticForward``; env ``PROPELLER_TO_STATIC=0`` opts a whole process
out; a model may decline with ``Model.to_static = False``). Compiled was the default until the
dygraph CPU fixes (stride kernels off, bias gradients by GEMM) made dygraph as fast at shape S and
faster at base and end to end (no compile; bench/RESULTS.md, issue 13). Evaluation, prediction
and export always see the plain dygraph forward.

A step whose loss is not finite (on any rank) updates nothing: gradients are dropped, the
count ``RunState.nonfinite_skipped`` goes up and is logged, saved in checkpoints, and the LR
schedule moves on. With an active fp16 loss scaler (GPU), a step whose gradients overflow is
skipped by the scaler and counted the same way, and a non-finite loss backs the scale off.

Under ``paddle.distributed.launch`` every rank reads the whole training stream and keeps its
share (``split_batches``, hparam or Learner option): by default each global batch is split by
rows (rank r takes rows r, r+N, ...), so N processes compute the same update as one process on
the same batches; batches whose fields differ in their first dimension (flat masked-LM
positions) are instead dealt out whole, rank r taking batches r, r+N, ... Only rank 0 logs,
evaluates, exports and saves.
"""
import contextlib
import inspect
import logging
import math
import os
import random
import sys
import time

import numpy as np
import paddle
from paddle.base import unique_name  # UniqueNameGenerator is not re-exported by paddle.utils

from propeller import cpu_env
from propeller.log import setup_logging
from propeller.train import distribution as dist
from propeller.train import lr_find
from propeller.train.adversarial import Adversary
from propeller.train.hooks import (CheckpointSaverHook, EvalHook, LoggingHook, ProgressBarHook, RunState,
                                   StopAtStepHook)
from propeller.train.model import Model
from propeller.train.saver import Saver
from propeller.types import HParams, RunConfig, RunMode

log = logging.getLogger("propeller")

# The original ERNIE fp16 defaults.
AMP_DEFAULTS = dict(init_loss_scaling=102400.0, incr_every_n_steps=100, decr_every_n_nan_or_inf=2,
                    incr_ratio=2.0, decr_ratio=0.8)


def _to_tensor(x):
    if isinstance(x, paddle.Tensor):
        return x
    if isinstance(x, (tuple, list)):  # a field may be a tuple (e.g. several label arrays)
        return tuple(_to_tensor(y) for y in x)
    return paddle.to_tensor(np.asarray(x))


def _fields(batch):
    return tuple(batch) if isinstance(batch, (list, tuple)) else (batch,)


def _split(batch, mode):
    batch = tuple(_to_tensor(x) for x in _fields(batch))
    if mode == RunMode.PREDICT:
        return batch, None
    return batch[:-1], batch[-1]


def _leading_dims(x, out=None):
    """The set of first-dimension sizes over all (nested) fields of a batch; scalars are ignored."""
    out = set() if out is None else out
    if isinstance(x, (tuple, list)):
        for y in x:
            _leading_dims(y, out)
    else:
        shape = getattr(x, "shape", None)
        if shape is not None and len(shape):
            out.add(int(shape[0]))
    return out


def _rank_rows(x, world, rank):
    """Rows rank, rank+world, ... of every field (before tensor conversion: slicing numpy is cheaper).

    Strided rather than contiguous so length-sorted batches give each rank a similar mix."""
    if isinstance(x, (tuple, list)):
        return tuple(_rank_rows(y, world, rank) for y in x)
    if getattr(x, "shape", None) is None or len(x.shape) == 0:
        return x  # a per-batch scalar: every rank keeps it
    return x[rank::world]


SPLIT_MODES = ("auto", "rows", "batches", "none")


class _RankFeed:
    """This rank's share of the global training stream, which every rank reads in full.

    rows:    rank r of N keeps rows r, r+N, ... of every batch: N processes see the one-process batch.
    batches: rank r keeps whole batches r, r+N, ...: the global batch is N batches.
    none:    the stream is this rank's already (the user sharded it); taken as is.
    auto:    rows, unless the fields of the first batch differ in their first dimension
             (flat index/label fields, as in ERNIE pre-training batches): then batches.
    Reading the whole stream on every rank keeps the ranks in step: all of them see the end of
    the data at the same step, so none is left waiting in an all-reduce. ``state.consumed``
    counts global batches, so a resume may use another number of ranks.
    """

    def __init__(self, it, world, rank, mode):
        self.it, self.world, self.rank, self.mode = it, world, rank, mode if world > 1 else "none"
        self._warned_uneven = False

    def _choose(self, batch):
        dims = _leading_dims(batch)
        if len(dims) <= 1:
            log.info("each batch's rows are split over %d ranks", self.world)
            return "rows"
        log.info("batch fields have different first dimensions %s: each of %d ranks takes whole batches "
                 "(global batch = %d batches)", sorted(dims), self.world, self.world)
        return "batches"

    def next(self, state):
        """This rank's next batch (a tuple of fields), or None at the end of the data."""
        while True:
            batch = next(self.it, None)
            if batch is None:
                return None
            batch = _fields(batch)
            if self.mode == "none":
                state.consumed += 1
                return batch
            if self.mode == "auto":
                self.mode = self._choose(batch)
            if self.mode == "batches":
                group = [batch]
                while len(group) < self.world:
                    more = next(self.it, None)
                    if more is None:  # an incomplete last group: every rank drops it
                        return None
                    group.append(_fields(more))
                state.consumed += self.world
                return group[self.rank]
            state.consumed += 1
            dims = _leading_dims(batch)
            if len(dims) > 1:
                raise ValueError(f"cannot split a batch by rows over {self.world} ranks: its fields have first "
                                 f"dimensions {sorted(dims)}; use split_batches='batches' (whole batches per rank)")
            rows = dims.pop() if dims else 0
            if rows < self.world:  # every rank sees the same batch, so all skip it
                log.warning("batch of %d rows cannot be split over %d ranks: skipped", rows, self.world)
                continue
            if rows % self.world and not self._warned_uneven:
                self._warned_uneven = True
                log.warning("batch of %d rows is not divisible by %d ranks: the averaged gradient weights "
                            "the ranks' rows unequally", rows, self.world)
            return _rank_rows(batch, self.world, self.rank)


TO_STATIC_ENV = "PROPELLER_TO_STATIC"


def to_static_enabled(run_config, model):
    """Whether training compiles the forward: the model (``Model.to_static``), RunConfig
    ``to_static`` and the env var all allow it (the env var opts a whole process out, e.g. a
    benchmark's baseline, without editing configs)."""
    env = os.environ.get(TO_STATIC_ENV, "").strip().lower()
    return bool(getattr(model, "to_static", True)) and bool(run_config.to_static) and \
        env not in ("0", "false", "no", "off")


class _StaticForward:
    """The model's forward compiled by ``paddle.jit.to_static`` (SOT), for training steps only.

    SOT rather than the AST converter (full_graph): models that read tensors in Python (ERNIE 2.0's
    per-batch task list) get graph breaks instead of a failed conversion, and SOT marks a dimension
    dynamic after it changes once, so length-bucketed batches do not recompile per shape. Compiled
    forward + dygraph backward and optimizer step: measured +12-18% per ERNIE step on CPU
    (bench/RESULTS.md), and the loss, hooks and optimizer stay plain Python.

    The compiled forward is installed on the layer only for the duration of each call, so the
    eval hook, predict and export (which call the same layer) run the dygraph forward. If a call
    raises (a conversion error surfaces at the first call of a new graph), one warning names the
    reason and training continues in dygraph; a genuine model error then raises from there."""

    def __init__(self, layer):
        self.layer = layer
        self.fn = paddle.jit.to_static(layer.forward)  # a bound method: the layer itself is untouched
        self.failed = None  # the exception that turned it off, if one did

    def __call__(self, model, features):
        """``model(*features)`` (model: the layer or its DataParallel wrapper) with the compiled forward."""
        if self.failed is None:
            # a failing call may already have drawn dropout masks: the dygraph re-run of the same
            # batch starts from the same random state, so the run stays replayable
            rng = paddle.get_rng_state()
            self.layer.forward = self.fn
            try:
                return model(*features)
            except Exception as e:  # noqa: BLE001 - any failure of the compiled path falls back
                self.failed = e
                paddle.set_rng_state(rng)
                reason = (str(e).strip().splitlines() or [""])[0][:300]
                log.warning("to_static failed for %s.forward (%s: %s); training continues in dygraph "
                            "(set run_config to_static=false to skip the attempt)",
                            type(self.layer).__name__, type(e).__name__, reason)
            finally:
                del self.layer.forward
        return model(*features)


def _eager_forward(model, features):
    return model(*features)


def _close_stream(it):
    """Stop a DataLoader iterator's worker processes now. Its own reader thread keeps it alive,
    so dropping the reference never reaches its __del__ and the workers would live (and keep
    prefetching an endless stream) until the process exits."""
    shutdown = getattr(it, "_try_shutdown_all", None)  # paddle.io's multi-process iterator
    if shutdown is not None:
        shutdown()


# every hparam the Learner itself reads (the model and the optimiser declare theirs), and
# batch_size, which the data pipelines of nearly every run and propeller.tools.kfold read
TRAINER_HPARAMS = frozenset({"num_workers", "split_batches", "use_fp16", "use_bf16",
                             "gradient_accumulation_steps", "batch_size", "adversarial"}) | frozenset(AMP_DEFAULTS)


def known_hparams(model_class):
    """The hparam keys a run of ``model_class`` reads (trainer, optimiser, model)."""
    return TRAINER_HPARAMS | model_class.known_hparams()


def _hget(h, key, default):
    if h is None:
        return default
    return h.get(key, default) if hasattr(h, "get") else getattr(h, key, default)


def _step_seed(seed, gstep, rank):
    # one seed per (run seed, step, rank): replayable after a restart, different masks per rank
    return ((seed * 1000003 + gstep) * 1009 + rank) % (2 ** 63 - 1)


def _build_model(model_class_or_model_fn, hparams, mode, run_config):
    if inspect.isclass(model_class_or_model_fn) and issubclass(model_class_or_model_fn, paddle.nn.Layer):
        model = model_class_or_model_fn(hparams, mode, run_config)
    elif isinstance(model_class_or_model_fn, paddle.nn.Layer):
        model = model_class_or_model_fn
    else:  # a factory (hparams, mode, run_config) -> Model
        model = model_class_or_model_fn(hparams, mode, run_config)
    if not isinstance(model, Model):
        raise TypeError(f"expected a propeller.train.Model, got {type(model).__name__}")
    return model


class Learner:
    """Trains, evaluates and predicts with one Model.

    ``num_workers`` and ``split_batches`` override the hparams of the same names. split_batches
    says how ranks share the training stream under a launcher: "auto" (default), "rows",
    "batches" or "none" (see _RankFeed).
    """

    def __init__(self, model_class_or_model_fn, run_config, params=None, warm_start_setting=None, *,
                 num_workers=None, split_batches=None):
        # only rank 0 reports progress; the other ranks speak up for warnings only
        setup_logging("propeller", level=logging.INFO if dist.is_master() else logging.WARNING)
        self.run_config = run_config if isinstance(run_config, RunConfig) else RunConfig(**run_config)
        self.params = params if params is None or isinstance(params, HParams) else HParams(**params)
        if self.run_config.model_dir is None:
            raise ValueError("run_config.model_dir is required (checkpoints and logs go there)")
        seed = self.run_config.seed
        if seed is not None:
            paddle.seed(seed), np.random.seed(seed), random.seed(seed)
        dist.init()
        threads = cpu_env.training_threads()  # paddle's import left one core; None: the user chose
        if threads:
            paddle.base.core.set_num_threads(threads)
        cpu_env.tune_paddle()
        # Parameter and optimizer-accumulator names come from a process-global counter and the
        # optimizer state is keyed by them: a private namespace per Learner gives every Learner the
        # names a fresh process would, so a checkpoint restores into a second Learner in-process.
        self._name_gen = unique_name.UniqueNameGenerator()
        if self.params is not None and inspect.isclass(model_class_or_model_fn) and \
                issubclass(model_class_or_model_fn, Model):  # before the model reads the values
            self.params.check(known_hparams(model_class_or_model_fn))
        with self._names():
            self.model = _build_model(model_class_or_model_fn, self.params, RunMode.TRAIN, self.run_config)
        if self.params is not None:  # an unknown key is a typo until declared (Model.HPARAMS)
            self.params.check(known_hparams(type(self.model)))
        self.saver = Saver(self.run_config.model_dir, self.run_config.max_ckpt)
        self.warm_start_setting = warm_start_setting
        self.warm_start_result = None
        self.optimizer = self.lr_scheduler = self.scaler = None
        self.num_workers = int(num_workers if num_workers is not None else _hget(self.params, "num_workers", 0))
        self.split_batches = split_batches if split_batches is not None else _hget(self.params, "split_batches", "auto")
        if self.split_batches not in SPLIT_MODES:
            raise ValueError(f"split_batches must be one of {SPLIT_MODES}, got {self.split_batches!r}")
        self._static = None  # the compiled training forward, built at the first train()
        self.adversary = Adversary.from_hparams(self.model, _hget(self.params, "adversarial", None))
        self._amp_dtype = None
        if _hget(self.params, "use_fp16", False):
            self._amp_dtype = "float16"
        elif _hget(self.params, "use_bf16", False):
            self._amp_dtype = "bfloat16"

    # ------------------------------------------------------------------ helpers
    @contextlib.contextmanager
    def _names(self):
        with unique_name.guard(self._name_gen):
            yield

    def _vdl_dir(self):
        return self.run_config.log_dir or os.path.join(self.run_config.model_dir, "vdl")

    def _autocast(self):
        if self._amp_dtype is None:
            return contextlib.nullcontext()
        return paddle.amp.auto_cast(enable=True, dtype=self._amp_dtype, level="O1")

    def _micro_loss(self, model, forward, features, labels, accum):
        """(loss, the loss as backward takes it: divided over the accumulation group and scaled)."""
        with self._autocast():
            pred = forward(model, features)
            loss = self.model.loss(pred, labels)
        scaled = loss / accum if accum > 1 else loss
        if self.scaler is not None:
            scaled = self.scaler.scale(scaled)
        return loss, scaled

    def _make_scaler(self):
        # bf16 has fp32's exponent range, so it needs no loss scaling (Paddle disables it for bf16 too)
        if self._amp_dtype != "float16":
            return None
        kw = {k: type(v)(_hget(self.params, k, v)) for k, v in AMP_DEFAULTS.items()}
        return paddle.amp.GradScaler(enable=True, use_dynamic_loss_scaling=True, **kw)

    def save(self, state):
        if dist.is_master():
            return self.saver.save(state.gstep, self.model, self.optimizer,
                                   meta={"consumed": state.consumed, "nonfinite_skipped": state.nonfinite_skipped,
                                         "world_size": dist.world_size()},
                                   scaler=self.scaler)

    def _warm_start(self):
        ws = self.warm_start_setting
        if ws is None:
            return
        log.info("warm start from %s", ws.from_dir)
        self.warm_start_result = self.model.warm_start(ws.from_dir, ws.predicate_fn)

    def _train_stream(self, train_dataset, skip):
        """An iterator over training batches, starting after the ``skip`` already consumed."""
        ds = train_dataset
        is_dataset = hasattr(ds, "skip") and hasattr(ds, "to_paddle_dataloader")
        if is_dataset and skip:
            # skipping in the pipeline (before any DataLoader) never ships the skipped batches
            # through worker processes or converts them to tensors
            ds, skip = ds.skip(skip), 0
        if self.num_workers > 0:
            if not is_dataset:
                raise ValueError("num_workers > 0 needs the training data as a propeller Dataset "
                                 f"(got {type(train_dataset).__name__})")
            ds = ds.to_paddle_dataloader(num_workers=self.num_workers)
        it = iter(ds)
        for _ in range(skip):  # other iterables: replay the deterministic stream
            next(it, None)
        return it

    # ------------------------------------------------------------------ train
    def train(self, train_dataset, train_hooks=(), eval_datasets=None, exporters=()):
        """Train to run_config.max_steps (or run_steps, or the end of the data); returns the RunState.

        eval_datasets: {name: dataset} (or one dataset, named "eval"), evaluated every eval_steps
        and at the end on rank 0; exporters see the results of the first one."""
        if eval_datasets is not None and not isinstance(eval_datasets, dict):
            eval_datasets = {"eval": eval_datasets}
        with self._names():
            return self._train(train_dataset, train_hooks, eval_datasets, exporters)

    def _train(self, train_dataset, train_hooks, eval_datasets, exporters):
        rc = self.run_config
        max_steps = rc.max_steps
        accum = int(_hget(self.params, "gradient_accumulation_steps", 1))
        if accum < 1:
            raise ValueError(f"gradient_accumulation_steps must be >= 1, got {accum}")
        if self.optimizer is None:
            self.optimizer, self.lr_scheduler = self.model.optimizer(max_steps)
        if self.scaler is None:
            self.scaler = self._make_scaler()
        scaler_on = self.scaler is not None and self.scaler.is_enable()
        sweep = lr_find.from_env()  # propeller.tools.lr_find: a learning-rate range test instead of the run
        if sweep is not None:
            max_steps = sweep.steps
            self.lr_scheduler = sweep.install(self.optimizer)
        state = RunState()
        if dist.is_master():  # only rank 0 writes there, so nothing else can be mid-write
            self.saver.remove_stale_tmp()
        latest = self.saver.latest() if sweep is None else None
        if latest is not None:
            meta = Saver.restore(latest, self.model, self.optimizer, self.scaler)
            state.gstep, state.consumed = int(meta["step"]), int(meta.get("consumed", 0))
            state.nonfinite_skipped = int(meta.get("nonfinite_skipped", 0))
            log.info("resumed from %s (step %d)", latest, state.gstep)
        else:
            self._warm_start()
        world, rank = dist.world_size(), dist.rank()
        model = dist.wrap(self.model)
        dist.started()
        if to_static_enabled(rc, self.model):
            if self._static is None:  # kept across train() calls: compiled graphs are reused
                self._static = _StaticForward(self.model)
            forward = self._static
        else:
            forward = _eager_forward

        hooks = [StopAtStepHook(max_steps, rc.run_steps if sweep is None else None)]
        if dist.is_master():
            hooks += [ProgressBarHook(max_steps), LoggingHook(rc.log_steps, rc.skip_steps, self._vdl_dir())]
            if sweep is not None:  # no evaluation, export or checkpoint of a model trained at absurd rates
                hooks.append(sweep)
            elif eval_datasets:
                hooks.append(EvalHook(self, eval_datasets, rc.eval_steps, exporters, self._vdl_dir()))
            if sweep is None:
                hooks.append(CheckpointSaverHook(self, rc.save_steps))
        hooks += list(train_hooks)
        for h in hooks:
            h.before_train(state)

        it = self._train_stream(train_dataset, state.consumed)
        feed = _RankFeed(it, world, rank, self.split_batches)
        model.train()
        try:
            stop = any(h.should_stop(state) for h in hooks)
            while not stop:
                if rc.seed is not None:
                    paddle.seed(_step_seed(rc.seed, state.gstep, rank))
                loss_sum, n_micro, exhausted = None, 0, False
                while n_micro < accum:
                    batch = feed.next(state)
                    if batch is None:
                        exhausted = True
                        break
                    features, labels = _split(batch, RunMode.TRAIN)
                    # gradients are all-reduced only on the last micro-batch of a step
                    sync = model.no_sync() if (world > 1 and n_micro < accum - 1) else contextlib.nullcontext()
                    with sync:
                        loss, scaled = self._micro_loss(model, forward, features, labels, accum)
                        if self.adversary is not None:
                            self.adversary.before_backward()
                        self.model.backward(scaled)
                        if self.adversary is not None:  # the same batch again on perturbed embeddings
                            self.adversary.attack(lambda: self.model.backward(
                                self._micro_loss(model, forward, features, labels, accum)[1]))
                    d = loss.detach()
                    if d.dtype != paddle.float32:
                        d = d.astype("float32")
                    loss_sum = d if loss_sum is None else loss_sum + d
                    n_micro += 1
                if exhausted:
                    if n_micro:
                        log.info("training data ended inside an accumulation group: its %d micro-batches dropped",
                                 n_micro)
                        self.optimizer.clear_grad()
                    log.info("training data exhausted at step %d", state.gstep)
                    break
                # One host sync per step. The loss is summed over the ranks so that all of them
                # agree on skipping a non-finite step (a rank stepping alone would diverge).
                if world > 1:
                    loss_sum = dist.all_reduce_sum(loss_sum.reshape([1]))
                lv = float(loss_sum) / (n_micro * world)
                if not math.isfinite(lv):
                    self.optimizer.clear_grad()
                    state.nonfinite_skipped += 1
                    if scaler_on:  # back the loss scale off as for a gradient overflow
                        self.scaler._cache_found_inf = True
                        self.scaler.update()
                    log.warning("non-finite loss at step %d: update skipped (%d so far)",
                                state.gstep + 1, state.nonfinite_skipped)
                elif scaler_on:
                    self.scaler.step(self.optimizer)  # skips the update itself on overflowing gradients
                    if bool(getattr(self.scaler, "_cache_found_inf", False)):
                        state.nonfinite_skipped += 1
                    self.scaler.update()
                    self.optimizer.clear_grad()
                else:
                    self.optimizer.step()
                    self.optimizer.clear_grad()
                if self.lr_scheduler is not None:
                    self.lr_scheduler.step()
                state.gstep += 1
                state.step += 1
                state.loss = lv
                state.lr = self.optimizer.get_lr()
                scalars = getattr(self.model, "step_scalars", None)
                state.extra = dict(scalars) if scalars else {}
                for h in hooks:
                    h.after_step(state)
                stop = any(h.should_stop(state) for h in hooks)
        finally:
            _close_stream(it)
            del it, feed
        for h in hooks:
            h.after_train(state)
        dist.finished()
        if sweep is not None:
            sweep.finish()  # writes the sweep's results and ends the process
        return state

    # ------------------------------------------------------------------ eval / predict
    @paddle.no_grad()
    def evaluate(self, eval_dataset, name="eval", state=None, max_steps=None):
        """Mean loss and the model's metrics over eval_dataset; logs the original ERNIE line."""
        max_steps = max_steps if max_steps is not None else self.run_config.eval_max_steps
        was_training = self.model.training
        self.model.eval()
        t0, losses, n, metrics = time.time(), [], 0, None
        for i, batch in enumerate(eval_dataset):
            if max_steps is not None and i >= max_steps:
                break
            features, labels = _split(batch, RunMode.EVAL)
            with self._autocast():
                pred = self.model(*features)
                losses.append(float(self.model.loss(pred, labels)))
            n += int(features[0].shape[0])
            batch_metrics = self.model.metrics(pred, labels) or {}
            if metrics is None:
                metrics = batch_metrics
            else:
                for k, m in batch_metrics.items():
                    metrics[k].merge(m)
        if was_training:
            self.model.train()
        result = {"loss": float(np.mean(losses)) if losses else float("nan")}
        for k, m in (metrics or {}).items():
            result[k] = m.eval()
        result["data_num"] = n
        elapsed = time.time() - t0
        shown = ", ".join(f"{k}: {v:.5f}" if isinstance(v, float) else f"{k}: {v}"
                          for k, v in result.items() if k not in ("loss", "data_num"))
        log.info("[%s evaluation] ave loss: %.5f, %s%sdata_num: %d, elapsed time: %.3f s, steps: %d",
                 name, result["loss"], shown, ", " if shown else "", n, elapsed, state.gstep if state else 0)
        result["elapsed_time"] = elapsed
        return result

    @paddle.no_grad()
    def predict(self, predict_dataset, ckpt=None, split_batch=True):
        """Yield predictions (numpy) for each batch, or each example when split_batch.

        ckpt: a checkpoint dir to load first (None: the model as it is; -1: the newest)."""
        if ckpt == -1:
            ckpt = self.saver.latest()
        if ckpt:
            Saver.restore(ckpt, self.model)
        was_training = self.model.training
        self.model.eval()
        try:
            for batch in predict_dataset:
                features, _ = _split(batch, RunMode.PREDICT)
                with self._autocast():
                    pred = self.model(*features)
                outs = pred if isinstance(pred, (list, tuple)) else (pred,)
                outs = [o.numpy() for o in outs]
                if not split_batch:
                    yield outs if len(outs) > 1 else outs[0]
                    continue
                for row in zip(*outs):
                    yield row if len(row) > 1 else row[0]
        finally:
            if was_training:
                self.model.train()


def train_and_eval(model_class_or_model_fn, params, run_config, train_dataset, eval_dataset=None,
                   warm_start_setting=None, train_hooks=(), eval_hooks=(), exporters=()):
    """Train to run_config.max_steps, evaluating every eval_steps; returns the last eval results
    ({eval-set name: {metric: value}})."""
    learner = Learner(model_class_or_model_fn, run_config, params, warm_start_setting)
    if eval_dataset is not None and not isinstance(eval_dataset, dict):
        eval_dataset = {"eval": eval_dataset}
    state = learner.train(train_dataset, list(train_hooks) + list(eval_hooks), eval_dataset, exporters)
    return state.last_eval
