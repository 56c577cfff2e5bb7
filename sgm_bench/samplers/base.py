"""What every sampler shares: its registration (SAMPLERS, at the definition), per-sample noise streams, NFE counting,
the result record, the timer."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ..registry import Registry

DIFFUSION = ("ncsn", "ddpm", "ve", "vp", "subvp")
CONTINUOUS_TIME = ("ddpm", "ve", "vp", "subvp")  # NCSN's index-labelled network has no score between its levels


@dataclass(frozen=True)
class SamplerSpec:
    """A sampler function, the families it applies to, its paper defaults, and whether `denoise` makes sense."""

    fn: Callable
    families: tuple[str, ...]
    defaults: dict = field(default_factory=dict)
    denoise: bool = True
    walks_chain: bool = False  # uses the N-step discrete chain (VP: needs N > beta_max)
    continuous_time: bool = False  # integrates in continuous t: a discrete DDPM is asked at t (N - 1), not its step

    @property
    def kinds(self) -> set:
        from ..models import FAMILIES

        return {FAMILIES[f].sde for f in self.families}


SAMPLERS = Registry("sampler")


def sampler(name: str, families: tuple, defaults: dict | None = None, **flags) -> Callable:
    """Register the decorated `fn(score_fn, sde, z, noise, *, steps, eps, ..., progress)` as sampler `name` for these
    model families, with its paper defaults (SamplerSpec's flags: denoise, walks_chain, continuous_time)."""

    def deco(fn: Callable) -> Callable:
        SAMPLERS.add(name, SamplerSpec(fn, tuple(families), dict(defaults or {}), **flags))
        return fn

    return deco


class NoiseSource:
    """Per-sample random streams: sample k's noise depends only on (seed, k), whatever the batch (NVlabs/edm).

    Draws are made `chunk` steps at a time per sample, so the per-step cost stays small on CPU and GPU. On CPU the chunk
    is a speed setting only: torch draws float normals 16 at a time, so any chunk whose draw is a multiple of 16 numbers
    gives the same stream; small samples (toys) draw 512 steps at once, 3x cheaper per step than 32. The first draw is
    always 32 steps, so a uniform draw made right after it (Langevin's initial points) stays where it was.
    """

    FIRST = 32

    def __init__(self, seed: int, indices, shape, device="cpu", chunk: int | None = None):
        self.shape, self.device = tuple(shape), torch.device(device)
        small = self.device.type == "cpu" and math.prod(self.shape) <= 16
        self.chunk = chunk or (512 if small else self.FIRST)
        self.gens = []
        for k in indices:
            g = torch.Generator(self.device)
            g.manual_seed(int(np.random.SeedSequence([int(seed), int(k)]).generate_state(1, np.uint64)[0] >> 1))
            self.gens.append(g)
        self._buf, self._pos = None, 0

    def randn(self) -> torch.Tensor:
        """The next N(0, I) draw of shape [B, *shape]."""
        if self._buf is None or self._pos == len(self._buf):
            n = self.FIRST if self._buf is None else self.chunk
            draws = [torch.randn((n, *self.shape), generator=g, device=self.device) for g in self.gens]
            self._buf = torch.stack(draws, 1)
            self._pos = 0
        self._pos += 1
        return self._buf[self._pos - 1]

    def rand(self) -> torch.Tensor:
        """A U[0, 1) draw of shape [B, *shape] (for initial points)."""
        return torch.stack([torch.rand(self.shape, generator=g, device=self.device) for g in self.gens])


class CountingScore:
    """Wraps score_fn and counts network evaluations: NFE is measured, never computed by formula. A score function
    that runs the network more than once a call (classifier-free guidance: twice) says so in `nfe_per_call`."""

    def __init__(self, score_fn):
        self.score_fn, self.nfe = score_fn, 0
        self.per_call = int(getattr(score_fn, "nfe_per_call", 1))

    def __call__(self, x, t):
        self.nfe += self.per_call
        return self.score_fn(x, t)


@dataclass
class SampleResult:
    """Final samples, the network evaluations actually made, synchronized wall-clock and solver extras."""

    x: torch.Tensor
    nfe: int
    seconds: float
    info: dict = field(default_factory=dict)


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


class Timer:
    """Wall-clock around a block, synchronized on CUDA."""

    def __init__(self, device):
        self.device = device

    def __enter__(self):
        sync(self.device)
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        sync(self.device)
        self.seconds = time.perf_counter() - self.start


def vec(t, x: torch.Tensor) -> torch.Tensor:
    """A scalar time as the per-example tensor [B] the score interface takes."""
    return torch.as_tensor(t, dtype=x.dtype, device=x.device).expand(x.shape[0])

