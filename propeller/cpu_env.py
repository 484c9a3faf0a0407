"""Process-environment tuning that must happen before Paddle is imported.

Paddle's bundled MKL takes a slow generic code path on AMD CPUs unless
``MKL_DEBUG_CPU_TYPE=5`` is set before MKL initialises (about 3x on matmul here).
The variable is honoured only by older MKL builds, and on Intel CPUs it can select a
slower path, so it is set for AMD CPUs only and never overrides the user's choice.

Denormal floats: training with a loss on some positions only (padding, the [CLS] row of a
classifier, masked-LM targets) makes the backward pass produce denormal numbers (below 1.2e-38),
which x86 cores process about 100x slower; Paddle's dygraph CPU kernels do not flush them.
:func:`flush_denormals` sets the FTZ and DAZ bits of the SSE control register (MXCSR), so they
become 0: a step of the small model on a padded batch with a masked token loss went from 1.0 to
0.5 s (bench/RESULTS.md). The register is per thread and new threads copy it from their
creator, so it is set here, on import, before paddle starts its thread pools. Values that small
carry no information for training. ``PROPELLER_FLUSH_DENORMALS=0`` keeps IEEE denormals.
Threads: Paddle's import sets ``OMP_NUM_THREADS=1`` when it is unset (and warns when it is more),
so a training run left to the defaults computes on one core of N. :data:`USER_THREADS` keeps what
the user set, read here before paddle's import; the trainer then gives each process its share of
the cores (:func:`training_threads`) through ``paddle.base.core.set_num_threads``
(``propeller.train.trainer``; 2.09 -> 2.38 KM batches/s on 2 cores, bench/RESULTS.md). The
predictors and servers set their own (``num_threads``).
Paddle's import warns "No ccache found" on machines without ccache: that concerns compiling
custom C++ operators, which nothing here does, so the warning is filtered (it printed on every
command's start).
Stride kernels: in Paddle 3.x dygraph, ``transpose``, ``split`` and ``reshape`` return strided
views and the next op that needs contiguous memory copies them with a generic strided-copy kernel
that is slow on the CPU (110 ms for a [32, 128, 12, 64] transpose, against 13-18 ms for the
transpose kernel itself; one thread). :func:`tune_paddle` turns them off for CPU training (the
trainer calls it): the attention block's forward + backward at shape S went from 278 to 83 ms, a
pre-training step 5.3 -> 3.8-4.4 s (bench/RESULTS.md, issue 13, seventh session). A
``FLAGS_use_stride_kernel`` in the environment is left as the user set it.
Freed memory: Paddle's CPU tensors come from glibc malloc, which with Paddle's pattern of
allocations hands large freed blocks back to the kernel (``mmap``-ed chunks, trimmed heap tops),
so an op that writes a new 6 MB output page-faults all of it: a [8, 12, 128, 128] scale took
4.8 ms with 1,613 minor faults a call, 1.1 ms without them (one thread; numpy's arrays did not
fault). :func:`keep_freed_memory` (``tune_paddle`` calls it) raises both thresholds (mmap 32 MiB,
glibc's maximum; trim 1 GiB) so freed blocks are reused; a training process then keeps its peak
heap. ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_`` in the environment leave glibc as
the user set it.
This module must not import paddle when it is imported.
"""
import ctypes
import os
import platform
import warnings


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


USER_THREADS = os.environ.get("OMP_NUM_THREADS")  # None: left to us (paddle's import will set it to 1)


def training_threads():
    """Math threads for a training process: the user's OMP_NUM_THREADS if set, else the cores
    this process may run on divided among the processes the launcher started on this machine."""
    if USER_THREADS is not None:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    local = int(os.environ.get("PADDLE_LOCAL_SIZE") or os.environ.get("PADDLE_TRAINERS_NUM") or 1)
    return max(1, cores // max(1, local))


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (glibc malloc.h)
MMAP_THRESHOLD = 32 << 20  # glibc's upper limit for it on 64-bit
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory():
    """Make glibc malloc reuse freed blocks instead of handing them back to the kernel and
    page-faulting fresh ones (see the module docstring). Returns whether it was set."""
    if platform.libc_ver()[0] != "glibc" or {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"} & set(os.environ):
        return False
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    except (OSError, AttributeError):
        return False


def tune_paddle():
    """Paddle flags and the allocator for training on the CPU (see the module docstring); call
    after paddle's import. Returns the flags set."""
    import paddle
    if paddle.device.get_device() != "cpu":
        return {}
    keep_freed_memory()
    if "FLAGS_use_stride_kernel" in os.environ:
        return {}
    flags = {"FLAGS_use_stride_kernel": False}
    paddle.set_flags(flags)
    return flags


_FTZ, _DAZ = 1 << 15, 1 << 6
_MXCSR_OFFSET = 28  # of glibc's x86-64 fenv_t (32 bytes): the SSE control/status register


def flush_denormals(on=True):
    """Set (or clear) FTZ+DAZ in this thread's MXCSR through glibc's fegetenv/fesetenv.
    Returns the new MXCSR value, or None where that is not possible (not x86-64 glibc Linux)."""
    if platform.machine() not in ("x86_64", "AMD64") or not platform.libc_ver()[0] == "glibc":
        return None
    try:
        libc = ctypes.CDLL(None)
        env = (ctypes.c_uint8 * 32)()
        if libc.fegetenv(env) != 0:
            return None
        mxcsr = ctypes.c_uint32.from_buffer(env, _MXCSR_OFFSET)
        mxcsr.value = (mxcsr.value | _FTZ | _DAZ) if on else (mxcsr.value & ~(_FTZ | _DAZ))
        if libc.fesetenv(env) != 0:
            return None
        return mxcsr.value
    except (OSError, AttributeError, ValueError):
        return None


def _cache_numpy_limits():
    """numpy measures a float type's limits on first use; under DAZ its smallest subnormal reads
    as 0 and numpy warns "The value of the smallest subnormal ... is zero". Measured first, the
    cached (true) values are what every later np.finfo returns."""
    try:
        import numpy as np
    except ImportError:
        return
    for t in (np.float16, np.float32, np.float64):
        np.finfo(t)


tune()
warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)
if os.environ.get("PROPELLER_FLUSH_DENORMALS", "1") != "0":
    _cache_numpy_limits()
    flush_denormals()
