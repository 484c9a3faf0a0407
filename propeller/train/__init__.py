"""Propeller's training loop, hooks, checkpoints and exporters."""
from propeller.train import distribution
from propeller.train.exporter import BestExporter, BestInferenceModelExporter
from propeller.train.hooks import (CheckpointSaverHook, EvalHook, LoggingHook, ProgressBarHook, RunHook,
                                   RunState, StepTimerHook, StopAtStepHook)
from propeller.train.model import Model
from propeller.train.optim import build_optimizer, linear_warmup_decay
from propeller.train.saver import Saver, load_model_state
from propeller.train.trainer import Learner, train_and_eval
