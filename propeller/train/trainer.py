"""The one training loop: pre-training, fine-tuning and distillation all run through Learner.

One optimisation step = ``gradient_accumulation_steps`` micro-batches. Restarting the same
command resumes from the newest checkpoint in ``model_dir``: model, optimizer, LR scheduler,
global step, and the position in the (deterministic) training stream, so an interrupted run
ends with the same parameters as an uninterrupted one. Dropout is re-seeded from
(seed, step) every step for the same reason.
"""
import inspect
import logging
import math
import os
import random
import sys
import time

import numpy as np
import paddle

from propeller.train import distribution as dist
from propeller.train.hooks import (CheckpointSaverHook, EvalHook, LoggingHook, ProgressBarHook, RunState,
                                   StopAtStepHook)
from propeller.train.model import Model
from propeller.train.saver import Saver, unwrap
from propeller.types import HParams, RunConfig, RunMode

log = logging.getLogger("propeller")

# The original ERNIE fp16 defaults.
AMP_DEFAULTS = dict(init_loss_scaling=102400.0, incr_every_n_steps=100, decr_every_n_nan_or_inf=2,
                    incr_ratio=2.0, decr_ratio=0.8)


def _setup_logging():
    if not log.handlers:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("[%(levelname)s %(asctime)s %(name)s] %(message)s", "%H:%M:%S"))
        log.addHandler(h)
        log.setLevel(logging.INFO)
        log.propagate = False


def _to_tensor(x):
    if isinstance(x, paddle.Tensor):
        return x
    if isinstance(x, (tuple, list)):  # a field may be a tuple (e.g. several label arrays)
        return tuple(_to_tensor(y) for y in x)
    return paddle.to_tensor(np.asarray(x))


def _split(batch, mode):
    batch = tuple(batch) if isinstance(batch, (list, tuple)) else (batch,)
    batch = tuple(_to_tensor(x) for x in batch)
    if mode == RunMode.PREDICT:
        return batch, None
    return batch[:-1], batch[-1]


def _hget(h, key, default):
    if h is None:
        return default
    return h.get(key, default) if hasattr(h, "get") else getattr(h, key, default)


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
    def __init__(self, model_class_or_model_fn, run_config, params=None, warm_start_setting=None):
        _setup_logging()
        self.run_config = run_config if isinstance(run_config, RunConfig) else RunConfig(**run_config)
        self.params = params if params is None or isinstance(params, HParams) else HParams(**params)
        if self.run_config.model_dir is None:
            raise ValueError("run_config.model_dir is required (checkpoints and logs go there)")
        seed = self.run_config.seed
        if seed is not None:
            paddle.seed(seed), np.random.seed(seed), random.seed(seed)
        dist.init()
        self.model = _build_model(model_class_or_model_fn, self.params, RunMode.TRAIN, self.run_config)
        self.saver = Saver(self.run_config.model_dir, self.run_config.max_ckpt)
        self.warm_start_setting = warm_start_setting
        self.optimizer = self.lr_scheduler = self.scaler = None
        self._amp_dtype = None
        if _hget(self.params, "use_fp16", False):
            self._amp_dtype = "float16"
        elif _hget(self.params, "use_bf16", False):
            self._amp_dtype = "bfloat16"

    # ------------------------------------------------------------------ helpers
    def _vdl_dir(self):
        return self.run_config.log_dir or os.path.join(self.run_config.model_dir, "vdl")

    def _autocast(self):
        if self._amp_dtype is None:
            return paddle.amp.auto_cast(enable=False)
        return paddle.amp.auto_cast(enable=True, dtype=self._amp_dtype, level="O1")

    def save(self, state):
        if dist.is_master():
            return self.saver.save(state.gstep, self.model, self.optimizer,
                                   meta={"consumed": state.consumed, "nonfinite_skipped": state.nonfinite_skipped})

    def _warm_start(self):
        ws = self.warm_start_setting
        if ws is None:
            return
        log.info("warm start from %s", ws.from_dir)
        self.model.warm_start(ws.from_dir, ws.predicate_fn)

    # ------------------------------------------------------------------ train
    def train(self, train_dataset, train_hooks=(), eval_datasets=None, exporters=()):
        rc = self.run_config
        max_steps = rc.max_steps
        accum = int(_hget(self.params, "gradient_accumulation_steps", 1))
        if self.optimizer is None:
            self.optimizer, self.lr_scheduler = self.model.optimizer(max_steps)
        if self._amp_dtype is not None and self.scaler is None:
            kw = {k: _hget(self.params, k, v) for k, v in AMP_DEFAULTS.items()}
            self.scaler = paddle.amp.GradScaler(use_dynamic_loss_scaling=True, **kw)
        state = RunState()
        latest = self.saver.latest()
        if latest is not None:
            meta = Saver.restore(latest, self.model, self.optimizer)
            state.gstep, state.consumed = int(meta["step"]), int(meta.get("consumed", 0))
            state.nonfinite_skipped = int(meta.get("nonfinite_skipped", 0))
            log.info("resumed from %s (step %d)", latest, state.gstep)
        else:
            self._warm_start()
        model = dist.wrap(self.model)
        if dist.world_size() > 1 and hasattr(train_dataset, "shard"):
            train_dataset = train_dataset.shard(dist.world_size(), dist.rank())

        hooks = [StopAtStepHook(max_steps, rc.run_steps)]
        if dist.is_master():
            hooks += [ProgressBarHook(max_steps), LoggingHook(rc.log_steps, rc.skip_steps, self._vdl_dir())]
            if eval_datasets:
                hooks.append(EvalHook(self, eval_datasets, rc.eval_steps, exporters, self._vdl_dir()))
            hooks.append(CheckpointSaverHook(self, rc.save_steps))
        hooks += list(train_hooks)
        for h in hooks:
            h.before_train(state)

        it = iter(train_dataset)
        for _ in range(state.consumed):  # fast-forward the deterministic stream on resume
            next(it, None)
        model.train()
        stop = any(h.should_stop(state) for h in hooks)
        while not stop:
            if rc.seed is not None:
                paddle.seed(rc.seed * 1000003 + state.gstep)
            loss_sum, n_micro = 0.0, 0
            finite = True
            for micro in range(accum):
                batch = next(it, None)
                if batch is None:
                    break
                state.consumed += 1
                features, labels = _split(batch, RunMode.TRAIN)
                sync_ctx = model.no_sync() if (dist.world_size() > 1 and micro < accum - 1) else _null()
                with sync_ctx:
                    with self._autocast():
                        pred = model(*features)
                        loss = self.model.loss(pred, labels)
                    lv = float(loss)
                    if not math.isfinite(lv):
                        finite = False
                        continue
                    scaled = loss / accum if accum > 1 else loss
                    if self.scaler is not None:
                        scaled = self.scaler.scale(scaled)
                    self.model.backward(scaled)
                loss_sum += lv
                n_micro += 1
            if n_micro == 0 and finite:
                log.info("training data exhausted at step %d", state.gstep)
                break
            if not finite:  # a non-finite loss: skip this update entirely and count it
                self.optimizer.clear_grad()
                state.nonfinite_skipped += 1
                log.warning("non-finite loss at step %d: update skipped (%d so far)",
                            state.gstep + 1, state.nonfinite_skipped)
            else:
                if self.scaler is not None:
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                else:
                    self.optimizer.step()
                self.optimizer.clear_grad()
            if self.lr_scheduler is not None:
                self.lr_scheduler.step()
            state.gstep += 1
            state.step += 1
            state.loss = loss_sum / max(n_micro, 1) if n_micro else float("nan")
            state.lr = self.optimizer.get_lr()
            state.extra = dict(getattr(self.model, "step_scalars", None) or {})
            for h in hooks:
                h.after_step(state)
            stop = any(h.should_stop(state) for h in hooks)
        for h in hooks:
            h.after_train(state)
        dist.barrier()
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
        self.model.eval()
        for batch in predict_dataset:
            features, _ = _split(batch, RunMode.PREDICT)
            pred = self.model(*features)
            outs = pred if isinstance(pred, (list, tuple)) else (pred,)
            outs = [o.numpy() for o in outs]
            if not split_batch:
                yield outs if len(outs) > 1 else outs[0]
                continue
            for row in zip(*outs):
                yield row if len(row) > 1 else row[0]


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def train_and_eval(model_class_or_model_fn, params, run_config, train_dataset, eval_dataset=None,
                   warm_start_setting=None, train_hooks=(), eval_hooks=(), exporters=()):
    """Train to run_config.max_steps, evaluating every eval_steps; returns the last eval results
    ({eval-set name: {metric: value}})."""
    learner = Learner(model_class_or_model_fn, run_config, params, warm_start_setting)
    if eval_dataset is not None and not isinstance(eval_dataset, dict):
        eval_dataset = {"eval": eval_dataset}
    state = learner.train(train_dataset, list(train_hooks) + list(eval_hooks), eval_dataset, exporters)
    return state.last_eval
