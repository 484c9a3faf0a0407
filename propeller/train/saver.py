"""Checkpoints: ``model_dir/model_<step>/`` holding ``model_state.pdparams`` (the model),
``optimizer.pdopt`` (optimizer with its LR scheduler), ``scaler.pdstate`` (the AMP loss scaler,
only when one is active) and ``meta.json`` (step, time, data position), listed oldest-first in
``model_dir/ckpt_info``; the newest ``max_ckpt`` are kept.

Each checkpoint is written to a temporary directory and renamed into place, and
``ckpt_info`` is replaced atomically after it, so a crash at any moment leaves the previous
checkpoints intact and listed."""
import json
import logging
import os
import shutil
import time

import paddle

from propeller.fsutil import atomic_dir, atomic_write_text, remove_stale_tmp

log = logging.getLogger("propeller")
MODEL_FILE, OPT_FILE, META_FILE, INFO_FILE = "model_state.pdparams", "optimizer.pdopt", "meta.json", "ckpt_info"
SCALER_FILE = "scaler.pdstate"


def unwrap(model):
    return getattr(model, "_layers", model)  # paddle.DataParallel keeps the user's layer here


class Saver:
    def __init__(self, model_dir, max_ckpt=5):
        self.model_dir, self.max_ckpt = model_dir, max_ckpt

    @property
    def info_path(self):
        return os.path.join(self.model_dir, INFO_FILE)

    def list(self):
        """Checkpoint dir names, oldest first (from ckpt_info; a lost ckpt_info is rebuilt by scanning)."""
        names = []
        if os.path.exists(self.info_path):
            with open(self.info_path, encoding="utf-8") as f:
                names = [l.strip() for l in f if l.strip()]
        else:
            found = [d for d in os.listdir(self.model_dir) if d.startswith("model_")] if os.path.isdir(self.model_dir) else []
            names = sorted((d for d in found if d[6:].isdigit()), key=lambda d: int(d[6:]))
        return [n for n in names if os.path.exists(os.path.join(self.model_dir, n, META_FILE))]

    def remove_stale_tmp(self):
        """Remove what a kill during a checkpoint or export write left in model_dir (the hidden
        ``.model_<step>.tmp-*`` dirs, ``.ckpt_info.tmp-*``, exporters' ``.best*.tmp-*``): they
        are never read, only take space. Called once at the start of training."""
        removed = remove_stale_tmp(self.model_dir)
        if removed:
            log.info("removed %d stale temporary checkpoint dir(s)/file(s) in %s: %s", len(removed),
                     self.model_dir, ", ".join(os.path.basename(p) for p in removed))
        return removed

    def latest(self):
        names = self.list()
        return os.path.join(self.model_dir, names[-1]) if names else None

    def save(self, step, model, optimizer=None, meta=None, scaler=None):
        os.makedirs(self.model_dir, exist_ok=True)
        name = f"model_{step}"
        with atomic_dir(os.path.join(self.model_dir, name)) as tmp:
            paddle.save(unwrap(model).state_dict(), os.path.join(tmp, MODEL_FILE))
            if optimizer is not None:
                paddle.save(optimizer.state_dict(), os.path.join(tmp, OPT_FILE))
            scaler_state = scaler.state_dict() if scaler is not None else {}
            if scaler_state:  # empty when the scaler is disabled (CPU, bf16)
                paddle.save(scaler_state, os.path.join(tmp, SCALER_FILE))
            with open(os.path.join(tmp, META_FILE), "w", encoding="utf-8") as f:
                json.dump(dict(meta or {}, step=step, time=time.time()), f)
        names = [n for n in self.list() if n != name] + [name]
        keep = names[-self.max_ckpt:] if self.max_ckpt else names
        atomic_write_text(self.info_path, "\n".join(keep) + "\n")
        for old in names[:len(names) - len(keep)]:
            shutil.rmtree(os.path.join(self.model_dir, old), ignore_errors=True)
        log.info("saved checkpoint %s", os.path.join(self.model_dir, name))
        return os.path.join(self.model_dir, name)

    @staticmethod
    def restore(path, model, optimizer=None, scaler=None):
        """Load a checkpoint dir into model (and optimizer, scaler); returns its meta dict."""
        unwrap(model).set_state_dict(paddle.load(os.path.join(path, MODEL_FILE)))
        opt_file = os.path.join(path, OPT_FILE)
        if optimizer is not None and os.path.exists(opt_file):
            optimizer.set_state_dict(paddle.load(opt_file))
        scaler_file = os.path.join(path, SCALER_FILE)
        if scaler is not None and scaler.is_enable() and os.path.exists(scaler_file):
            scaler.load_state_dict(paddle.load(scaler_file, return_numpy=True))
        with open(os.path.join(path, META_FILE), encoding="utf-8") as f:
            return json.load(f)


def resolve_model_state(path):
    """The .pdparams file behind ``path``: the file itself, ``path/model_state.pdparams``, or the
    newest checkpoint of a model_dir (one with ckpt_info)."""
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, MODEL_FILE)):
            return os.path.join(path, MODEL_FILE)
        latest = Saver(path).latest()
        if latest is not None:
            return os.path.join(latest, MODEL_FILE)
        return os.path.join(path, MODEL_FILE)
    return path


def load_model_state(model, path, predicate=None, strict=True):
    """Load ``path`` (a .pdparams file, a dir with model_state.pdparams, or a model_dir whose
    newest checkpoint is taken) into model.

    ``predicate(name)`` picks the parameters to load (structured names, e.g. ``fc.weight``).
    Returns (loaded_names, not_loaded_names). strict: any model parameter missing from the
    file, or a shape mismatch, is an error naming it."""
    file = resolve_model_state(path)
    if not os.path.exists(file):
        raise FileNotFoundError(f"no model state at {path} (expected {MODEL_FILE} or a .pdparams file)")
    state = paddle.load(file)
    own = unwrap(model).state_dict()
    loaded, excluded, missing, bad = {}, [], [], []
    for name, param in own.items():
        if predicate is not None and not predicate(name):
            excluded.append(name)
        elif name not in state:
            missing.append(name)
        elif list(state[name].shape) != list(param.shape):
            bad.append(f"{name}: checkpoint {list(state[name].shape)} vs model {list(param.shape)}")
        else:
            loaded[name] = state[name]
    if bad or (strict and missing):  # what the predicate leaves out is never an error
        raise ValueError(f"cannot load {file}: " + "; ".join(bad + [f"missing {n}" for n in missing]))
    unwrap(model).set_state_dict(loaded)
    skipped = excluded + missing
    if skipped:
        log.warning("warm start from %s: %d of %d parameters not loaded: %s", file, len(skipped), len(own), skipped)
    return sorted(loaded), skipped
