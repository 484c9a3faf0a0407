"""Hooks around the one training loop: progress bar, logging (console + VisualDL), stop at
step, periodic evaluation and checkpointing. Users subclass RunHook for their own."""
import logging
import math
import os
import time

log = logging.getLogger("propeller")


class RunState:
    """What hooks see after each optimisation step."""

    def __init__(self):
        self.gstep = 0            # global optimisation steps done (survives restarts)
        self.step = 0             # steps done by this invocation
        self.consumed = 0         # micro-batches consumed from the training stream
        self.loss = None
        self.lr = None
        self.nonfinite_skipped = 0
        self.start_time = time.time()
        self.last_eval = {}       # eval-set name -> result dict of the last evaluation
        self.extra = {}           # per-step scalars a model reports (e.g. per-task losses)


class RunHook:
    def before_train(self, state):
        pass

    def after_step(self, state):
        pass

    def should_stop(self, state):
        return False

    def after_train(self, state):
        pass


class StepTimerHook(RunHook):
    """Wall seconds of each training step (``times``; the first includes the loop's start-up), for
    benchmarks that time the trainer as users run it."""

    def __init__(self):
        self.t, self.times = None, []

    def before_train(self, state):
        self.t = time.perf_counter()

    def after_step(self, state):
        now = time.perf_counter()
        self.times.append(now - self.t)
        self.t = now


class StopAtStepHook(RunHook):
    """Stop at global step ``max_steps`` and/or after ``run_steps`` steps of this invocation."""

    def __init__(self, max_steps=None, run_steps=None):
        self.max_steps, self.run_steps = max_steps, run_steps

    def should_stop(self, state):
        return ((self.max_steps is not None and state.gstep >= self.max_steps)
                or (self.run_steps is not None and state.step >= self.run_steps))


class ProgressBarHook(RunHook):
    def __init__(self, total=None, desc="train"):
        self.total, self.desc, self.bar = total, desc, None

    def before_train(self, state):
        from tqdm import tqdm
        self.bar = tqdm(total=self.total, initial=state.gstep, desc=self.desc, dynamic_ncols=True, leave=False,
                        disable=None)  # no bar when output is not a terminal (logs, CI)

    def after_step(self, state):
        if self.bar.disable:  # not a terminal: skip tqdm's per-step bookkeeping
            return
        self.bar.update(1)
        if state.loss is not None:
            self.bar.set_postfix(loss=f"{state.loss:.4f}", refresh=False)

    def after_train(self, state):
        self.bar.close()


class LoggingHook(RunHook):
    """Every ``log_steps``: a console line and VisualDL scalars (loss, lr, speed, extras)."""

    def __init__(self, log_steps=10, skip_steps=0, vdl_dir=None):
        self.log_steps, self.skip_steps, self.vdl_dir = log_steps, skip_steps, vdl_dir
        self.writer, self._t, self._s = None, None, None

    def before_train(self, state):
        if self.vdl_dir:
            from visualdl import LogWriter
            self.writer = LogWriter(logdir=self.vdl_dir)
        self._t, self._s = time.time(), state.gstep

    def after_step(self, state):
        if not self.log_steps or state.gstep % self.log_steps or state.step <= self.skip_steps:
            return
        now = time.time()
        speed = (state.gstep - self._s) / max(now - self._t, 1e-9)
        self._t, self._s = now, state.gstep
        extras = "".join(f", {k}: {v:.5f}" for k, v in state.extra.items())
        log.info("step: %d, loss: %.5f, lr: %.3e, speed: %.2f steps/s%s%s", state.gstep,
                 state.loss if state.loss is not None else float("nan"), state.lr or 0.0, speed, extras,
                 f", non-finite skipped: {state.nonfinite_skipped}" if state.nonfinite_skipped else "")
        if self.writer is not None:
            scalars = {"train/loss": state.loss, "train/lr": state.lr, "train/speed": speed,
                       "train/nonfinite_skipped": state.nonfinite_skipped}
            scalars.update({f"train/{k}": v for k, v in state.extra.items()})
            for tag, value in scalars.items():
                if value is not None and math.isfinite(value):  # a skipped step's inf/nan loss is in the console line
                    self.writer.add_scalar(tag=tag, step=state.gstep, value=float(value))

    def after_train(self, state):
        if self.writer is not None:
            self.writer.close()


class CheckpointSaverHook(RunHook):
    def __init__(self, learner, save_steps):
        self.learner, self.save_steps = learner, save_steps

    def after_step(self, state):
        if self.save_steps and state.gstep % self.save_steps == 0:
            self.learner.save(state)

    def after_train(self, state):
        names = self.learner.saver.list()
        if not names or names[-1] != f"model_{state.gstep}":
            self.learner.save(state)


class EvalHook(RunHook):
    """Every ``eval_steps`` (and at the end): evaluate each eval set, log, then run exporters."""

    def __init__(self, learner, datasets, eval_steps, exporters=(), vdl_dir=None):
        self.learner, self.datasets, self.eval_steps = learner, datasets, eval_steps
        self.exporters, self.vdl_dir, self.writer, self._done = list(exporters), vdl_dir, None, -1

    def before_train(self, state):
        if self.vdl_dir:
            from visualdl import LogWriter
            self.writer = LogWriter(logdir=os.path.join(self.vdl_dir, "eval"))

    def _run(self, state):
        if self._done == state.gstep:
            return
        self._done = state.gstep
        for name, ds in self.datasets.items():
            result = self.learner.evaluate(ds, name=name, state=state)
            state.last_eval[name] = result
            if self.writer is not None:
                for k, v in result.items():
                    if isinstance(v, (int, float)):
                        self.writer.add_scalar(tag=f"{name}/{k}", step=state.gstep, value=float(v))
        first = next(iter(self.datasets), None)
        if first is not None:
            for exporter in self.exporters:
                exporter.export(self.learner, state.last_eval[first], state)

    def after_step(self, state):
        if self.eval_steps and state.gstep % self.eval_steps == 0:
            self._run(state)

    def after_train(self, state):
        self._run(state)
        if self.writer is not None:
            self.writer.close()
