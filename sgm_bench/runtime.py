"""A compute process's settings, made once at its start: torch threads = its cores, and an allocator that keeps memory
(a U-Net step allocates and frees the same few-MiB tensors every call; glibc would give them back to the kernel and
fault their pages in again at every step; results/benchmarks/speed.md has the measurement); and the device helpers.
"""
from __future__ import annotations

import ctypes
import resource

import torch

from .errors import ConfigError

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 << 20  # blocks up to 32 MiB (glibc's largest setting) come from the heap, not fresh mappings
TRIM_THRESHOLD = 1 << 30  # the heap's free top goes back to the kernel only past 1 GiB


def keep_freed_memory() -> bool:
    """Set glibc's allocator to keep freed memory for the next allocation; False where the C library is not glibc."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)  # the running process's C library
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def configure(threads: int) -> None:
    """The settings of a process that computes: `threads` torch threads (its cores) and the allocator above."""
    torch.set_num_threads(max(int(threads), 1))
    keep_freed_memory()


def pick_device(name: str) -> torch.device:
    """'auto' (CUDA when present), 'cpu', 'cuda[:k]'; a GPU asked for and absent is one clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ConfigError(f"unknown device {name!r}; use 'cpu', 'cuda', 'cuda:K' or 'auto'") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but no CUDA GPU is visible; use 'cpu' or 'auto'")
    return device


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory: torch.cuda.max_memory_allocated on GPU, the process's max RSS on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's architecture: recorded with every timing."""
    import platform

    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.processor() or platform.machine()})"
