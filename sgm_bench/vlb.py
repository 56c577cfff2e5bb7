"""DDPM's variational bound terms (Ho et al. 2020, eq. 5): L_T prior KL, L_{t-1} Gaussian KLs, L_0 decoder."""
from __future__ import annotations

import math

import torch

from .sde import DDPMSchedule, bcast


def gaussian_kl(mu1, var1, mu2, var2) -> torch.Tensor:
    """KL(N(mu1, var1) || N(mu2, var2)) elementwise, in nats."""
    return 0.5 * (torch.log(var2 / var1) + (var1 + (mu1 - mu2) ** 2) / var2 - 1)


def _std_normal_cdf(x):
    return 0.5 * (1 + torch.erf(x / math.sqrt(2)))


def decoder_loglik(x0, mu, var, levels: int | None, scale: float = 2.0, offset: float = -1.0) -> torch.Tensor:
    """log p(x_0 | x_1): DDPM's discretized Gaussian (eq. 13) over the K dequantization cells of width scale / K of the
    fixed data range [offset, offset + scale] (sgm_bench.data.images), the outer cells open to +-inf; or the density
    if K is None."""
    if levels is None:
        return -0.5 * (torch.log(2 * math.pi * var) + (x0 - mu) ** 2 / var)
    k = torch.floor((x0 - offset) / scale * levels).clamp(0, levels - 1)  # the cell x_0 lies in
    lo, hi = offset + scale * k / levels, offset + scale * (k + 1) / levels
    std = var.sqrt()
    cdf_hi = torch.where(k == levels - 1, torch.ones_like(x0), _std_normal_cdf((hi - mu) / std))
    cdf_lo = torch.where(k == 0, torch.zeros_like(x0), _std_normal_cdf((lo - mu) / std))
    return torch.log((cdf_hi - cdf_lo).clamp(min=1e-12))


def mu_from_eps(sched: DDPMSchedule, xt, eps, i):
    """mu_theta(x_t, t) = (x_t - beta_t / sqrt(1 - alpha-bar_t) eps) / sqrt(alpha_t) (eq. 11)."""
    b, a, ab = (bcast(v.to(xt.device)[i], xt) for v in (sched.betas, sched.alphas, sched.alphas_cumprod))
    return (xt - b / torch.sqrt(1 - ab) * eps) / torch.sqrt(a)


def vlb_terms(sched: DDPMSchedule, x0, xt, i, mu_theta, variance: str, levels: int | None, scale: float = 2.0):
    """Per-example L_{i} in nats: KL(q(x_{i-1}|x_i,x_0) || p(x_{i-1}|x_i)) for i > 0, -log p(x_0|x_1) for i = 0."""
    var = bcast(sched.variance(variance).to(x0.device)[i], x0).expand_as(x0)
    mu_q = sched.q_posterior_mean(x0, xt, i)
    var_q = bcast(sched.posterior_variance.to(x0.device)[i].clamp(min=1e-20), x0).expand_as(x0)
    kl = gaussian_kl(mu_q, var_q, mu_theta, var).flatten(1).sum(1)
    nll0 = -decoder_loglik(x0, mu_theta, var, levels, scale).flatten(1).sum(1)
    return torch.where(i == 0, nll0, kl)


def prior_kl(sched: DDPMSchedule, x0) -> torch.Tensor:
    """L_T = KL(q(x_T | x_0) || N(0, I)) per example, in nats."""
    ab = sched.alphas_cumprod[-1].to(x0.device)
    mu, var = ab.sqrt() * x0, (1 - ab).expand_as(x0)
    return gaussian_kl(mu, var, torch.zeros_like(x0), torch.ones_like(x0)).flatten(1).sum(1)
