"""Keep freed CPU memory for reuse (config key ``keep_freed_memory``).

A training step on the CPU allocates and frees the same large tensors every step
(at ML-20M's shape the logits, their log-softmax and the weight gradients, 16-50 MB
each). glibc's malloc serves blocks above its mmap threshold (at most 32 MB by
default) with fresh pages from the kernel and returns them on ``free``, so each step
pays a page fault and a kernel zero-fill per 4 KiB of every such tensor
(``benchmarks/micro.py`` times a training step without and with this setting).
Raising the mmap and trim thresholds makes malloc keep freed memory in its heap and
hand it out again. Results do not change (only where memory comes from); the
process's resident memory stays near its peak instead of shrinking between steps.
"""
import ctypes
import ctypes.util
import sys

#: mallopt parameters (malloc.h) and the values set.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
THRESHOLD = 1 << 30  # 1 GiB: larger blocks still come straight from the kernel

_APPLIED = []


def keep_freed_memory():
    """Raise glibc malloc's mmap and trim thresholds to 1 GiB, once per process.
    Returns True where that took effect (Linux with glibc), False elsewhere."""
    if _APPLIED:
        return _APPLIED[0]
    ok = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            ok = bool(libc.mallopt(M_MMAP_THRESHOLD, THRESHOLD)) and bool(
                libc.mallopt(M_TRIM_THRESHOLD, THRESHOLD)
            )
        except (OSError, AttributeError):  # not glibc (musl has no mallopt)
            ok = False
    _APPLIED.append(ok)
    return ok


def apply_memory_settings(config):
    """``keep_freed_memory()`` unless ``config['keep_freed_memory']`` is False (the
    default is on: it changes where memory comes from, not any result)."""
    return False if config["keep_freed_memory"] is False else keep_freed_memory()
