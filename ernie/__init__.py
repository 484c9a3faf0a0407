"""ERNIE: continual multi-task pre-training and fine-tuning on PaddlePaddle 3."""
from propeller import cpu_env as _cpu_env  # noqa: F401  (must run before paddle is imported)

__version__ = "0.1.0"
