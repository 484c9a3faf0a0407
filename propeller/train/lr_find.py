"""The learning-rate range test (Smith, 2017; fastai's and AiSpace's LR finder) inside the Learner.

``python -m propeller.tools.lr_find -- COMMAND`` runs a training command with the environment
variable ``PROPELLER_LR_FIND`` set (JSON: ``out`` and the sweep's settings); every Learner of that
process then trains ``steps`` steps with the learning rate rising exponentially from ``min_lr``
to ``max_lr`` instead of the run's schedule, with no evaluation, no checkpoint and no export,
records the loss of every step, stops early when the smoothed loss diverges (above ``diverge``
times its minimum, or not finite), writes ``out/lr_find.json`` and ``out/lr_find.png`` and ends
the process (exit status 0), so the command's own after-training work never runs on a model
trained at absurd rates.

Defaults: min_lr 1e-7, max_lr 10, steps 200, beta 0.98 (the smoothing: an exponential moving
average with bias correction, as fastai's), diverge 4.0.

Suggestion: the learning rate at the smoothed loss's minimum divided by 10 (fastai's first
rule; steady from run to run); the steepest descent of the smoothed loss against log(lr) is
reported beside it (often a little higher, and noisier on short sweeps).
"""
import json
import logging
import math
import os

import numpy as np

from propeller.fsutil import atomic_write_text
from propeller.train.hooks import RunHook

__all__ = ["ENV", "DEFAULTS", "LRSweep", "from_env", "suggest"]

log = logging.getLogger("propeller")

ENV = "PROPELLER_LR_FIND"
DEFAULTS = {"min_lr": 1e-7, "max_lr": 10.0, "steps": 200, "beta": 0.98, "diverge": 4.0}
MIN_STEPS_BEFORE_STOP = 10  # the first smoothed values rest on a handful of batches
MIN_DIP = 0.02  # a smoothed-loss dip smaller than this (relative) is read as "no dip"


def from_env():
    """The sweep the environment asks for, or None (the normal case)."""
    value = os.environ.get(ENV)
    if not value:
        return None
    try:
        cfg = json.loads(value)
    except ValueError as e:
        raise ValueError(f"${ENV} is not JSON: {e}") from None
    unknown = set(cfg) - set(DEFAULTS) - {"out"}
    if unknown or "out" not in cfg:
        raise ValueError(f"${ENV} needs \"out\" and takes {', '.join(DEFAULTS)}; got {sorted(cfg)}")
    return LRSweep(**dict(DEFAULTS, **cfg))


def suggest(lrs, smoothed):
    """{"min_loss_div10", "steepest", "suggested", "dip", "warning"} from a sweep's LRs and smoothed losses.

    The minimum is looked for after the first MIN_STEPS_BEFORE_STOP points (fastai skips them too):
    a bias-corrected average of one or two batches is noise, and a lucky first batch made the
    "minimum" the sweep's first LR on a real fine-tuning run (suggesting 1e-8). ``dip`` is how far
    the minimum lies below the smoothed loss where the search starts; under MIN_DIP the curve has no
    dip to read and ``warning`` says so (too few steps for the task, or a range that misses it).
    """
    lrs, smoothed = np.asarray(lrs, float), np.asarray(smoothed, float)
    finite = np.isfinite(smoothed)
    if finite.sum() < 3:
        return {"min_loss_div10": None, "steepest": None, "suggested": None, "dip": None,
                "warning": "fewer than 3 finite losses: nothing to suggest"}
    lrs, smoothed = lrs[finite], smoothed[finite]
    skip = min(MIN_STEPS_BEFORE_STOP, len(smoothed) // 4)
    best = skip + int(np.argmin(smoothed[skip:]))
    steep = None
    if best - skip >= 2:
        slope = np.gradient(smoothed[skip:best + 1], np.log(lrs[skip:best + 1]))
        steep = float(lrs[skip + int(np.argmin(slope))])
    min10 = float(lrs[best] / 10)
    dip = float(1 - smoothed[best] / smoothed[skip]) if smoothed[skip] > 0 else None
    warning = None
    if dip is not None and dip < MIN_DIP:
        warning = (f"the smoothed loss fell only {100 * dip:.1f}% below its starting level: no clear dip, so the "
                   "suggestion is weak; sweep more steps (--steps) or a narrower range")
    return {"min_loss_div10": min10, "steepest": steep, "suggested": min10, "dip": dip, "warning": warning}


class LRSweep(RunHook):
    def __init__(self, out, min_lr, max_lr, steps, beta, diverge):
        if not (0 < min_lr < max_lr) or int(steps) < 2 or not (0 <= beta < 1) or diverge <= 1:
            raise ValueError(f"LR finder: need 0 < min_lr < max_lr, steps >= 2, 0 <= beta < 1, diverge > 1; got "
                             f"min_lr={min_lr}, max_lr={max_lr}, steps={steps}, beta={beta}, diverge={diverge}")
        self.out, self.min_lr, self.max_lr, self.steps = out, float(min_lr), float(max_lr), int(steps)
        self.beta, self.diverge = float(beta), float(diverge)
        self.lrs, self.losses, self.smoothed = [], [], []
        self._avg, self._best, self.stopped_early = 0.0, math.inf, False

    def lr_at(self, i):
        """The learning rate of step i (0-based)."""
        return self.min_lr * (self.max_lr / self.min_lr) ** (min(i, self.steps - 1) / (self.steps - 1))

    def install(self, optimizer):
        """Replace the optimizer's schedule with the sweep; returns the new scheduler."""
        import paddle  # here: the lr_find command itself never needs paddle
        sched = paddle.optimizer.lr.LambdaDecay(self.min_lr, lambda s: self.lr_at(s) / self.min_lr)
        optimizer.set_lr_scheduler(sched)
        return sched

    def after_step(self, state):
        i = len(self.losses)
        loss = float(state.loss) if state.loss is not None else math.nan
        self.lrs.append(self.lr_at(i))
        self.losses.append(loss)
        if math.isfinite(loss):
            self._avg = self.beta * self._avg + (1 - self.beta) * loss
            smooth = self._avg / (1 - self.beta ** (i + 1))
        else:
            smooth = math.nan
        self.smoothed.append(smooth)
        if math.isfinite(smooth):
            self._best = min(self._best, smooth)
        if not math.isfinite(smooth) or (i >= MIN_STEPS_BEFORE_STOP and smooth > self.diverge * self._best):
            self.stopped_early = True

    def should_stop(self, state):
        return self.stopped_early

    def finish(self):
        """Write lr_find.json / lr_find.png, log the suggestion, end the process."""
        os.makedirs(self.out, exist_ok=True)
        sug = suggest(self.lrs, self.smoothed)
        result = {"settings": {"min_lr": self.min_lr, "max_lr": self.max_lr, "steps": self.steps, "beta": self.beta,
                               "diverge": self.diverge},
                  "steps_run": len(self.losses), "stopped_early": self.stopped_early,
                  "suggestion": dict(sug, rule="suggested = the LR at the smoothed loss's minimum / 10"),
                  "lr": self.lrs, "loss": self.losses,
                  "smoothed_loss": [s if math.isfinite(s) else None for s in self.smoothed]}
        atomic_write_text(os.path.join(self.out, "lr_find.json"), json.dumps(result, indent=1) + "\n")
        self._plot(sug)
        log.info("LR finder: %d steps%s; suggested learning rate %s (min-loss / 10), steepest descent at %s; "
                 "written to %s", len(self.losses), " (stopped: loss diverged)" if self.stopped_early else "",
                 _fmt(sug["suggested"]), _fmt(sug["steepest"]), self.out)
        if sug["warning"]:
            log.warning("LR finder: %s", sug["warning"])
        raise SystemExit(0)

    def _plot(self, sug):
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(self.lrs, self.losses, alpha=0.3, label="loss")
        ax.plot(self.lrs, self.smoothed, label="smoothed loss")
        for key, style in (("suggested", "r--"), ("steepest", "g:")):
            if sug[key]:
                ax.axvline(sug[key], color=style[0], linestyle=style[1:], label=f"{key} {sug[key]:.2e}")
        finite = [s for s in self.smoothed if math.isfinite(s)]
        if finite and max(finite) > min(finite):  # the diverging tail would squash the useful part
            top = min(max(finite), self.diverge * min(finite)) if min(finite) > 0 else max(finite)
            ax.set_ylim(min(finite) - 0.05 * abs(min(finite)), top * 1.05)
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(self.out, "lr_find.png"), dpi=100)
        plt.close(fig)


def _fmt(x):
    return "n/a" if x is None else f"{x:.2e}"
