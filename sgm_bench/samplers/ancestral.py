"""Ancestral sampling of the discrete chains (SMLD, DDPM) and DDIM (Song, Meng & Ermon 2021)."""
from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import ConfigError
from ..sde import bcast
from .base import sde_grid, vec


def _smld_step(sde, score_fn, x, t, variance):
    """x_{i-1} = x_i + (sigma_i^2 - sigma_{i-1}^2) s + sqrt(sigma_{i-1}^2 (sigma_i^2 - sigma_{i-1}^2) / sigma_i^2) z."""
    i = sde.index(t)
    sig = sde.discrete_sigmas.to(x.device)
    s2, p2 = sig[i] ** 2, torch.where(i == 0, torch.zeros_like(t), sig[(i - 1).clamp(min=0)] ** 2)
    mean = x + bcast(s2 - p2, x) * score_fn(x, t)
    return mean, bcast(torch.sqrt(p2 * (s2 - p2) / s2), x)


def _ddpm_step(sde, score_fn, x, t, variance):
    """x_{t-1} = (x_t + beta_t s) / sqrt(1 - beta_t) + sigma_t z, sigma_t^2 = beta_t or beta-tilde_t (Ho et al. Alg. 2)."""
    i = sde.index(t)
    beta = bcast(sde.schedule.betas.to(x.device)[i], x)
    mean = (x + beta * score_fn(x, t)) / torch.sqrt(1 - beta)
    return mean, bcast(sde.schedule.variance(variance).to(x.device)[i].sqrt(), x)


_STEPS = {"ve": _smld_step, "vp": _ddpm_step}


def ancestral(score_fn, sde, z, noise, *, steps=None, eps=1e-3, variance="beta", progress=False):
    """Ancestral sampling of the model's own chain (SMLD for VE, DDPM for VP), noise-free last step."""
    if sde.kind not in _STEPS:
        raise ConfigError(f"ancestral sampling needs a VE or VP process, not {sde.kind!r}")
    chain = sde if steps is None else sde.with_N(steps)
    x = z * chain.prior_std
    grid = sde_grid(chain, chain.N, eps, x.device)
    for k in tqdm(range(chain.N), disable=not progress, desc="ancestral"):
        mean, std = _STEPS[chain.kind](chain, score_fn, x, vec(grid[k], x), variance)
        x = mean + std * noise.randn() if k < chain.N - 1 else mean
    return x


def ddim_timesteps(N: int, steps: int, skip: str = "uniform") -> list[int]:
    """DDIM's sub-sequence tau of the N steps: uniform (i * N / S) or quadratic (CIFAR-10 in the paper)."""
    if skip == "uniform":
        seq = np.arange(0, N, max(N // steps, 1))[:steps]
    elif skip == "quadratic":
        seq = (np.linspace(0, np.sqrt(N * 0.8), steps) ** 2).astype(int)
    else:
        raise ConfigError(f"unknown DDIM skip {skip!r}; choose 'uniform' or 'quadratic'")
    return sorted(set(int(i) for i in seq))


def ddim(score_fn, sde, z, noise, *, steps=50, eps=None, eta=0.0, skip="uniform", progress=False):
    """x_prev = sqrt(a_prev) x0_hat + sqrt(1 - a_prev - sigma^2) eps_hat + sigma z (DDIM eq. 12), sigma by eta (eq. 16).

    eta="sigma_hat" is the paper's large-variance row: DDPM's ancestral step on the same sub-sequence, with
    beta = 1 - a / a_prev, the posterior mean of (x0_hat, x_t) and variance sigma-hat^2 = beta.
    """
    if sde.kind != "vp":
        raise ConfigError(f"DDIM needs the VP (DDPM) process, not {sde.kind!r}")
    a_bar = sde.schedule.alphas_cumprod.to(z.device)
    seq = ddim_timesteps(sde.N, steps, skip)
    x = z
    for k in tqdm(reversed(range(len(seq))), total=len(seq), disable=not progress, desc="ddim"):
        i = seq[k]
        a, a_prev = a_bar[i], (a_bar[seq[k - 1]] if k > 0 else torch.ones((), device=z.device))
        e = -torch.sqrt(1 - a) * score_fn(x, vec(i / (sde.N - 1) * sde.T, x))
        x0 = (x - torch.sqrt(1 - a) * e) / torch.sqrt(a)
        if eta == "sigma_hat":
            beta = 1 - a / a_prev
            x = (torch.sqrt(a_prev) * beta * x0 + torch.sqrt(1 - beta) * (1 - a_prev) * x) / (1 - a)
            sigma = torch.sqrt(beta)
        else:
            sigma = float(eta) * torch.sqrt((1 - a_prev) / (1 - a) * (1 - a / a_prev))
            x = torch.sqrt(a_prev) * x0 + torch.sqrt(1 - a_prev - sigma**2) * e
        if k > 0:
            x = x + sigma * noise.randn()
    return x
