"""Ancestral sampling of the discrete chains (SMLD, DDPM) and DDIM (Song, Meng & Ermon 2021)."""
from __future__ import annotations


import torch
from tqdm.auto import tqdm

from ..chain import make_chain
from ..errors import ConfigError
from .base import vec


def _smld_step(chain, k, score_fn, x, variance):
    """x_{i-1} = x_i + (sigma_i^2 - sigma_{i-1}^2) s + sqrt(sigma_{i-1}^2 (sigma_i^2 - sigma_{i-1}^2) / sigma_i^2) z."""
    s2, p2 = chain["sigma"][k] ** 2, chain["sigma_next"][k] ** 2
    mean = x + (s2 - p2) * score_fn(x, vec(chain.t[k], x))
    return mean, torch.sqrt(p2 * (s2 - p2) / s2)


def _ddpm_step(chain, k, score_fn, x, variance):
    """x_{t-1} = (x_t + beta_t s) / sqrt(1 - beta_t) + sigma_t z, sigma_t^2 = beta_t or beta-tilde_t (Ho et al. Alg. 2)."""
    beta = chain["beta"][k]
    mean = (x + beta * score_fn(x, vec(chain.t[k], x))) / torch.sqrt(1 - beta)
    if variance == "beta":
        return mean, torch.sqrt(beta)
    if variance == "beta_tilde":
        return mean, torch.sqrt((1 - chain["alpha_bar_next"][k]) / (1 - chain["alpha_bar"][k]) * beta)
    raise ConfigError(f"unknown DDPM variance {variance!r}; choose 'beta' or 'beta_tilde'")


_STEPS = {"ve": _smld_step, "vp": _ddpm_step}


def ancestral(score_fn, sde, z, noise, *, steps=None, eps=1e-3, variance="beta", respace="respace", skip="linspace",
              progress=False):
    """Ancestral sampling of the model's own chain (SMLD for VE, DDPM for VP), noise-free last step; fewer steps walk
    a sub-sequence of the chain (sgm_bench.chain)."""
    if sde.kind not in _STEPS:
        raise ConfigError(f"ancestral sampling needs a VE or VP process, not {sde.kind!r}")
    chain = make_chain(sde, steps, eps, respace=respace, skip=skip, device=z.device)
    x = z * sde.prior_std
    for k in tqdm(range(len(chain)), disable=not progress, desc="ancestral"):
        mean, std = _STEPS[chain.kind](chain, k, score_fn, x, variance)
        x = mean + std * noise.randn() if k < len(chain) - 1 else mean
    return x


def ddim_times(sde, chain, eps: float) -> torch.Tensor:
    """Where DDIM asks the score for step i: a discrete model at its own step; a continuous VP model at the time
    whose marginal has alpha-bar(t) = alpha-bar_i (int_0^t beta = -log alpha-bar_i), never below eps."""
    if sde.discrete:
        return chain.t
    t = sde.t_of_int_beta(-torch.log(chain["alpha_bar"].double()))
    return t.clamp(min=eps).to(chain.t)


def ddim(score_fn, sde, z, noise, *, steps=50, eps=1e-3, eta=0.0, skip="uniform", progress=False):
    """x_prev = sqrt(a_prev) x0_hat + sqrt(1 - a_prev - sigma^2) eps_hat + sigma z (DDIM eq. 12), sigma by eta (eq. 16).

    eta="sigma_hat" is the paper's large-variance row: DDPM's ancestral step on the same sub-sequence, with
    beta = 1 - a / a_prev, the posterior mean of (x0_hat, x_t) and variance sigma-hat^2 = beta.
    """
    if sde.kind != "vp":
        raise ConfigError(f"DDIM needs the VP (DDPM) process, not {sde.kind!r}")
    chain = make_chain(sde, steps, eps, skip=skip, device=z.device)
    times = ddim_times(sde, chain, eps)
    x = z
    for k in tqdm(range(len(chain)), disable=not progress, desc="ddim"):
        a, a_prev = chain["alpha_bar"][k], chain["alpha_bar_next"][k]
        e = -torch.sqrt(1 - a) * score_fn(x, vec(times[k], x))
        x0 = (x - torch.sqrt(1 - a) * e) / torch.sqrt(a)
        if eta == "sigma_hat":
            beta = 1 - a / a_prev
            x = (torch.sqrt(a_prev) * beta * x0 + torch.sqrt(1 - beta) * (1 - a_prev) * x) / (1 - a)
            sigma = torch.sqrt(beta)
        else:
            sigma = float(eta) * torch.sqrt((1 - a_prev) / (1 - a) * (1 - a / a_prev))
            x = torch.sqrt(a_prev) * x0 + torch.sqrt(1 - a_prev - sigma**2) * e
        if k < len(chain) - 1:
            x = x + sigma * noise.randn()
    return x



