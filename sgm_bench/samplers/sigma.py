"""Samplers in the sigma-parameterization x = m(t) x_hat, sigma = s_t / m_t (Karras et al. 2022, sec. 4).

Any process enters through its sigma(t) and t(sigma); the denoiser is D(x_hat; sigma) = x_hat + sigma^2 grad log p.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from tqdm.auto import tqdm

from ..sde import bcast
from .base import sampler, vec


def denoiser(score_fn, sde):
    """D(x_hat; sigma) = x_hat + sigma^2 m s(m x_hat, t), m = m(t(sigma)), the score asked at sde.query_time(sigma)."""

    def D(xh, sigma: float):
        m = float(sde.mean_coeff(sde.t_of_sigma(torch.as_tensor(sigma, dtype=torch.float64))))
        return xh + sigma**2 * m * score_fn(m * xh, vec(sde.query_time(sigma), xh))

    return D


def model_sigmas(sde, sigmas: list[float]) -> list[float]:
    """EDM's round_sigma on a schedule (descending, ending in 0): a discrete model steps between its own levels only
    (repeated levels are dropped, so NFE counts only real steps); a continuous model keeps the schedule."""
    out = []
    for s in sigmas[:-1]:
        r = sde.round_sigma(s)
        if not out or r != out[-1]:
            out.append(r)
    return out + [0.0]


def _range(sde, eps, sigma_min, sigma_max):
    """The schedule's ends: [sigma(eps), sigma(T)] of the process, or the given ends clamped to the process's own
    [sigma(0), sigma(T)] as EDM's generate.py clamps its [0.002, 80] to the network's range."""
    def sigma(t):
        return float(sde.sigma(torch.tensor(float(t), dtype=torch.float64)))

    lo = sigma(eps) if sigma_min is None else max(sigma_min, sigma(0.0))
    hi = sigma(sde.T) if sigma_max is None else min(sigma_max, sigma(sde.T))
    return lo, hi


def karras_sigmas(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> list[float]:
    """sigma_i = (sigma_max^(1/rho) + i/(n-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho, then sigma_n = 0 (eq. 5)."""
    i = np.arange(n) / max(n - 1, 1)
    s = (sigma_max ** (1 / rho) + i * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return [float(v) for v in s] + [0.0]


@sampler("edm_heun", ("ncsn", "ddpm", "ve", "vp"), {"rho": 7.0, "S_churn": 0.0}, denoise=False)
def edm_heun(score_fn, sde, z, noise, *, steps=18, eps=1e-3, rho=7.0, S_churn=0.0, S_tmin=0.0, S_tmax=math.inf,
             S_noise=1.0, sigma_min=None, sigma_max=None, progress=False):
    """Karras et al. Alg. 2: 2nd-order Heun on dx/dsigma = (x - D(x; sigma)) / sigma, optional churn; 2 steps - 1 NFE."""
    lo, hi = _range(sde, eps, sigma_min, sigma_max)
    sig = model_sigmas(sde, karras_sigmas(steps, lo, hi, rho))
    D = denoiser(score_fn, sde)
    x = z * sig[0]
    for i in tqdm(range(len(sig) - 1), disable=not progress, desc="edm_heun"):
        s, s_next = sig[i], sig[i + 1]
        gamma = min(S_churn / (len(sig) - 1), math.sqrt(2) - 1) if S_tmin <= s <= S_tmax else 0.0
        s_hat = s * (1 + gamma)
        if S_churn > 0:  # a draw every step, as EDM and k-diffusion do, so churned runs share their noise
            x = x + math.sqrt(s_hat**2 - s**2) * S_noise * noise.randn()
        d = (x - D(x, s_hat)) / s_hat
        x_next = x + (s_next - s_hat) * d
        if s_next > 0:
            x_next = x + (s_next - s_hat) * 0.5 * (d + (x_next - D(x_next, s_next)) / s_next)
        x = x_next
    return x


@sampler("dpm_solver", ("ddpm", "vp"), denoise=False)
def dpm_solver(score_fn, sde, z, noise, *, steps=20, eps=1e-3, sigma_min=None, sigma_max=None, progress=False):
    """DPM-Solver++(2M) (Lu et al. 2022, Alg. 2) on a logSNR-uniform grid, lambda = -log sigma; `steps` NFE.

    As k-diffusion's `sample_dpmpp_2m` (which it is checked against), not Lu et al.'s own code: the grid runs from
    sigma_max to sigma_min and its last evaluation jumps from sigma_min to 0 (x = D(x, sigma_min), a denoising step),
    where Lu et al. solve to t = eps and take the second-order update there."""
    lo, hi = _range(sde, eps, sigma_min, sigma_max)
    sig = model_sigmas(sde, [float(v) for v in np.exp(np.linspace(math.log(hi), math.log(lo), steps))] + [0.0])
    D = denoiser(score_fn, sde)
    x, old = z * sig[0], None
    for i in tqdm(range(len(sig) - 1), disable=not progress, desc="dpm_solver"):
        d = D(x, sig[i])
        if sig[i + 1] == 0:
            x = d
            break
        h = math.log(sig[i]) - math.log(sig[i + 1])
        if old is not None:
            r = (math.log(sig[i - 1]) - math.log(sig[i])) / h
            d_use = (1 + 1 / (2 * r)) * d - (1 / (2 * r)) * old
        else:
            d_use = d
        x = (sig[i + 1] / sig[i]) * x - math.expm1(-h) * d_use
        old = d
    return x
