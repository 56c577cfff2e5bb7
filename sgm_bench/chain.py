"""The one owner of the discrete chains' time <-> step mapping and of the sub-sequences a shorter run walks.

Conventions (score_sde's `sde_lib` / `sampling`, which diffusers' integer timesteps agree with):
  - the N-step chain is walked on the time grid t_k = linspace(T, eps, N)[k], k = 0..N-1, noisiest first;
  - a time t means step i = floor(t (N - 1) / T) (score_sde's `(t * (N - 1) / T).long()`), so grid point k is
    step N - 1 - k: every step is visited once (rounding instead visits the middle step twice and step 0 never);
  - a run of S < N steps walks a sub-sequence of the model's own steps (improved DDPM's respacing: the chain's
    alpha-bar / sigma at the chosen steps, beta'_k = 1 - alpha-bar_k / alpha-bar_prev), queried at the full grid's
    time of each chosen step; `rebuild` is score_sde's `with_N(S)` chain, for continuous-time models only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .errors import ConfigError

SKIPS = ("linspace", "uniform", "quadratic")


def step_of_time(t: torch.Tensor, N: int, T: float = 1.0) -> torch.Tensor:
    """Step i = floor(t (N - 1) / T) of an N-step chain (score_sde's `timestep`), clamped to [0, N - 1]."""
    return (t * (N - 1) / T).long().clamp(0, N - 1)


def time_of_step(i: torch.Tensor, N: int, T: float = 1.0) -> torch.Tensor:
    """Step i's grid time i T / (N - 1) in float32, nudged up by an ulp where round-off would floor it to step i - 1
    (i / 231 does for i = 29, 31, 58, ...): every step is trained and queried at its own label, and a network fed
    score_sde's fractional label t (N - 1) sees i to float precision."""
    t = i.float() * (T / (N - 1)) if T != 1.0 else i.float() / (N - 1)
    for _ in range(8):
        low = step_of_time(t, N, T) < i
        if not bool(low.any()):
            return t
        t = torch.where(low, torch.nextafter(t, torch.full_like(t, 2.0 * T)), t)
    raise AssertionError(f"no float32 time means steps {i[low].tolist()} of {N}")


def step_time(i: int, N: int, T: float = 1.0) -> float:
    """time_of_step for one step, as a float."""
    return float(time_of_step(torch.tensor([int(i)]), N, T)[0])


def grid(N: int, eps: float, T: float = 1.0, device=None) -> torch.Tensor:
    """score_sde's time grid linspace(T, eps, N): grid point k is step N - 1 - k."""
    return torch.linspace(T, eps, N, device=device)


def sub_sequence(N: int, S: int, skip: str = "linspace") -> list[int]:
    """S steps of an N-step chain, ascending: 'linspace' (improved DDPM: both ends kept), 'uniform' (DDIM's and
    diffusers' 'leading' i * N // S) or 'quadratic' (DDIM's CIFAR-10 skip, int(linspace(0, sqrt(0.8 N), S)^2): it
    never passes step 0.8 N). A step the formula gives twice is walked once: DDIM's code spends an evaluation on each
    repeat, whose update is the identity (equal alpha-bar), so the samples agree and the NFE counts distinct steps
    (quadratic on N = 1000: S = 1000 gives 688 distinct steps up to 800, S = 100 gives 96)."""
    if S > N:
        raise ConfigError(f"{S} steps exceed the model's {N}-step chain: a discrete model has no steps in between; "
                          f"use at most {N} steps")
    if skip == "linspace":
        seq = np.round(np.linspace(0, N - 1, S))
    elif skip == "uniform":
        seq = np.arange(0, N, max(N // S, 1))[:S]
    elif skip == "quadratic":
        seq = np.linspace(0, np.sqrt(N * 0.8), S) ** 2
    else:
        raise ConfigError(f"unknown skip {skip!r}; choose one of {', '.join(SKIPS)}")
    return sorted({int(i) for i in seq})


@dataclass
class Chain:
    """The steps a chain-walking sampler visits, noisiest first, with the coefficients between consecutive visits.

    steps[k]: the model chain's step; t[k]: the time the score is queried at; for VE sigma[k] and sigma_next[k]
    (0 after the last); for VP alpha_bar[k], alpha_bar_next[k] (1 after the last) and beta[k] = 1 - ab / ab_next.
    """

    sde: object
    steps: list
    t: torch.Tensor
    coef: dict

    @property
    def kind(self) -> str:
        return self.sde.kind

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.coef[name]

    def discretize(self, x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward step (f, G) into visit k: SMLD G = sqrt(sigma_k^2 - sigma_next^2) (eq. 8), DDPM f = (sqrt(1 - beta')
        - 1) x, G = sqrt(beta') (eq. 10), otherwise Euler-Maruyama f dt, g sqrt(dt) with dt = T / S (score_sde)."""
        if self.kind == "ve":
            return torch.zeros_like(x), torch.sqrt(self["sigma"][k] ** 2 - self["sigma_next"][k] ** 2)
        if self.kind == "vp":
            beta = self["beta"][k]
            return (torch.sqrt(1 - beta) - 1) * x, torch.sqrt(beta)
        dt = self.sde.T / len(self)
        drift, g = self.sde.sde(x, self.t[k].expand(x.shape[0]))
        return drift * dt, g[0] * math.sqrt(dt)


def _coefficients(sde, steps: list, device) -> dict:
    """sigma / alpha-bar at the visited steps and at the next visited one, computed in float64, stored in float32."""
    idx = torch.tensor(steps)
    nxt = torch.tensor(steps[1:] + [-1])
    if sde.kind == "ve":
        sig = sde.discrete_sigmas.double()
        s, s_next = sig[idx], torch.where(nxt >= 0, sig[nxt.clamp(min=0)], torch.zeros(()).double())
        out = {"sigma": s, "sigma_next": s_next}
    elif sde.kind in ("vp", "subvp"):  # sub-VP: the VP chain of the same betas (the Langevin corrector's alpha)
        ab = sde.schedule.alphas_cumprod64
        a, a_next = ab[idx], torch.where(nxt >= 0, ab[nxt.clamp(min=0)], torch.ones(()).double())
        out = {"alpha_bar": a, "alpha_bar_next": a_next, "beta": 1 - a / a_next}
    else:
        out = {}
    return {k: v.float().to(device) for k, v in out.items()}


def make_chain(sde, steps: int | None, eps: float, *, respace: str = "respace", skip: str = "linspace",
               device=None) -> Chain:
    """The chain walked by `steps` steps: all N of the model's (None), a sub-sequence of them ('respace'), score_sde's
    rebuilt `with_N(steps)` chain ('rebuild', continuous-time models only), or the bare time grid linspace(T, eps,
    steps) with no chain coefficients ('grid', for Euler-Maruyama, which walks no chain)."""
    if respace not in ("respace", "rebuild", "grid"):
        raise ConfigError(f"unknown respace {respace!r}; choose 'respace' (a sub-sequence of the model's own steps), "
                          "'rebuild' (score_sde's with_N chain) or 'grid'")
    if respace == "grid":
        S = sde.N if steps is None else steps
        return Chain(sde, list(range(S - 1, -1, -1)), grid(S, eps, sde.T, device), {})
    if respace == "rebuild" and steps is not None:
        if sde.discrete:
            raise ConfigError("respace='rebuild' builds a new chain of noise levels the model was never trained on: "
                              "a discrete model (NCSN, DDPM) walks a sub-sequence of its own steps (respace='respace')")
        sde, steps = sde.with_N(steps), None
    N = sde.N
    seq = list(range(N)) if steps is None or steps == N else sub_sequence(N, steps, skip)
    visit = seq[::-1]
    t = grid(N, eps, sde.T, device)[[N - 1 - i for i in visit]]
    return Chain(sde, visit, t, _coefficients(sde, visit, device))
