"""Exporters run after each evaluation and keep the best model seen so far.

``cmp_fn(old, new)`` takes two eval-result dicts (of the first eval set) and returns True when
``new`` is better; ``old`` is None the first time. ``assets`` ({file name: source path, or a
dict written as JSON}) go into every export beside the model, e.g. the model config and the
vocabulary, so the export directory is complete on its own (for ``BestInferenceModelExporter``
that is ``<export_dir>/inference``, the directory a server or predictor is pointed at, and
``meta`` adds entries to its ``model_meta.json``, such as the tokenizer)."""
import json
import logging
import os
import shutil

import paddle

from propeller.fsutil import atomic_dir
from propeller.inference.export import export_inference_model
from propeller.train.saver import MODEL_FILE, unwrap

log = logging.getLogger("propeller")


def _default_cmp(old, new):
    return old is None or new["loss"] < old["loss"]


class _BestBase:
    assets_subdir = ""  # where, inside the export, the assets go (beside the model)

    def __init__(self, export_dir, cmp_fn=None, assets=None):
        self.export_dir, self.cmp_fn, self.best = export_dir, cmp_fn or _default_cmp, None
        self.assets = dict(assets or {})
        for name, src in self.assets.items():  # fail at start-up, not at the first new best
            if not isinstance(src, dict) and not os.path.isfile(src):
                raise FileNotFoundError(f"export asset {name!r}: no file {src}")
        meta = os.path.join(export_dir, "eval_result.json")
        if os.path.exists(meta):  # a resumed run must beat the best of the earlier run
            with open(meta, encoding="utf-8") as f:
                self.best = json.load(f)

    def export(self, learner, eval_result, state):
        if not self.cmp_fn(self.best, eval_result):
            return False
        self.best = dict(eval_result)
        with atomic_dir(self.export_dir) as tmp:
            self._write(learner, tmp)
            where = os.path.join(tmp, self.assets_subdir)
            for name, src in self.assets.items():
                if isinstance(src, dict):
                    with open(os.path.join(where, name), "w", encoding="utf-8") as f:
                        json.dump(src, f, indent=1, ensure_ascii=False)
                else:
                    shutil.copyfile(src, os.path.join(where, name))
            with open(os.path.join(tmp, "eval_result.json"), "w", encoding="utf-8") as f:
                json.dump(dict(eval_result, step=state.gstep), f, indent=1)
        log.info("new best at step %d exported to %s: %s", state.gstep, self.export_dir, eval_result)
        return True


class BestExporter(_BestBase):
    """Keeps the model state of the best evaluation in ``export_dir/model_state.pdparams``."""

    def _write(self, learner, tmp):
        paddle.save(unwrap(learner.model).state_dict(), os.path.join(tmp, MODEL_FILE))


class BestInferenceModelExporter(_BestBase):
    """Writes the best model as an inference model to ``<export_dir>/inference`` (paddle.jit.save;
    ``meta`` adds entries to its model_meta.json, the assets go beside it)."""

    assets_subdir = "inference"

    def __init__(self, export_dir, cmp_fn=None, assets=None, meta=None):
        super().__init__(export_dir, cmp_fn, assets)
        self.meta = dict(meta or {})

    def _write(self, learner, tmp):
        export_inference_model(unwrap(learner.model), os.path.join(tmp, "inference"), meta=self.meta)
