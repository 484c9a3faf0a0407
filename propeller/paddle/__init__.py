"""Propeller's public API: ``import propeller.paddle as propeller``.

    parser = propeller.ArgumentParser('my task')
    args = parser.parse_args()
    run_config = propeller.parse_runconfig(args)
    hparams = propeller.parse_hparam(args)
    train_ds = propeller.data.FeatureColumns([...]).build_dataset('train', data_dir=...)
    acc = propeller.metrics.Acc(label, pred)
"""
import logging as _logging

from propeller import cpu_env as _cpu_env  # noqa: F401  (before anything imports paddle)
from propeller import data, metrics, types, util
from propeller.data import (
    BadLineError,
    Dataset,
    FeatureColumns,
    LabelColumn,
    TextColumn,
    TextIDColumn,
)
from propeller.types import HParams, InferenceSpec, ModelSpec, RunConfig, RunMode, WarmStartSetting
from propeller.util import ArgumentParser, parse_hparam, parse_runconfig

log = _logging.getLogger("propeller")

__all__ = [
    "data", "metrics", "types", "util", "log",
    "Dataset", "FeatureColumns", "TextColumn", "TextIDColumn", "LabelColumn", "BadLineError",
    "RunMode", "RunConfig", "HParams", "ModelSpec", "InferenceSpec", "WarmStartSetting",
    "ArgumentParser", "parse_runconfig", "parse_hparam",
]  # the trainer section below extends this

# Trainer API
from propeller import train  # noqa: E402
from propeller.train import (BestExporter, BestInferenceModelExporter, Learner, Model, RunHook,  # noqa: E402
                             train_and_eval)

__all__ += ["train", "train_and_eval", "Learner", "Model", "RunHook", "BestExporter", "BestInferenceModelExporter"]
