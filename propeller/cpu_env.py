"""Process-environment tuning that must happen before Paddle is imported.

Paddle's bundled MKL takes a slow generic code path on AMD CPUs unless
``MKL_DEBUG_CPU_TYPE=5`` is set before MKL initialises (about 3x on matmul here).
The variable is honoured only by older MKL builds, and on Intel CPUs it can select a
slower path, so it is set for AMD CPUs only and never overrides the user's choice.
This module must not import paddle.
"""
import os


def _cpu_vendor():
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def tune():
    """Set MKL_DEBUG_CPU_TYPE=5 on AMD CPUs unless the user set it. Returns the value in force."""
    if "MKL_DEBUG_CPU_TYPE" not in os.environ and _cpu_vendor() == "AuthenticAMD":
        os.environ["MKL_DEBUG_CPU_TYPE"] = "5"
    return os.environ.get("MKL_DEBUG_CPU_TYPE")


tune()
