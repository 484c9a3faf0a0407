"""Propeller: the high-level trainer (``import propeller.paddle as propeller``)."""
from propeller import cpu_env as _cpu_env  # noqa: F401  (must run before paddle is imported)
