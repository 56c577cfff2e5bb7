"""Ancestral sampling of the discrete chains (SMLD, DDPM) and DDIM (Song, Meng & Ermon 2021)."""
from __future__ import annotations


import torch
from tqdm.auto import tqdm

from ..chain import make_chain
from ..errors import ConfigError
from .base import sampler, vec


def posterior_mean(x0, x, a, a_prev):
    """The mean of q(x_{t-1} | x_t, x0) over a step from alpha-bar a to a_prev (DDPM eq. 7, beta = 1 - a / a_prev)."""
    beta = 1 - a / a_prev
    return (torch.sqrt(a_prev) * beta * x0 + torch.sqrt(1 - beta) * (1 - a_prev) * x) / (1 - a)


def _smld_step(chain, k, score_fn, x, variance, clip=False):
    """x_{i-1} = x_i + (sigma_i^2 - sigma_{i-1}^2) s + sqrt(sigma_{i-1}^2 (sigma_i^2 - sigma_{i-1}^2) / sigma_i^2) z."""
    if clip:
        raise ConfigError("clip_denoised applies to the DDPM (VP) chain only: SMLD's step has no x0 to clip")
    s2, p2 = chain["sigma"][k] ** 2, chain["sigma_next"][k] ** 2
    mean = x + (s2 - p2) * score_fn(x, vec(chain.t[k], x))
    return mean, torch.sqrt(p2 * (s2 - p2) / s2)


def _ddpm_step(chain, k, score_fn, x, variance, clip=False):
    """x_{t-1} = (x_t + beta_t s) / sqrt(1 - beta_t) + sigma_t z, sigma_t^2 = beta_t or beta-tilde_t (Ho et al. Alg. 2).

    clip: Ho et al.'s code (clip_denoised=True): x0 = (x_t + (1 - a) s) / sqrt(a) clipped to [-1, 1], and the mean is
    the posterior mean of (x0, x_t), which equals the line above when nothing is clipped.
    """
    beta, a = chain["beta"][k], chain["alpha_bar"][k]
    s = score_fn(x, vec(chain.t[k], x))
    if clip:
        x0 = ((x + (1 - a) * s) / torch.sqrt(a)).clamp(-1, 1)
        mean = posterior_mean(x0, x, a, chain["alpha_bar_next"][k])
    else:
        mean = (x + beta * s) / torch.sqrt(1 - beta)
    if variance == "beta":
        return mean, torch.sqrt(beta)
    if variance == "beta_tilde":
        return mean, torch.sqrt((1 - chain["alpha_bar_next"][k]) / (1 - chain["alpha_bar"][k]) * beta)
    raise ConfigError(f"unknown DDPM variance {variance!r}; choose 'beta' or 'beta_tilde'")


_STEPS = {"ve": _smld_step, "vp": _ddpm_step}


@sampler("ancestral", ("ncsn", "ddpm", "ve", "vp"), {"variance": "beta"}, walks_chain=True)
def ancestral(score_fn, sde, z, noise, *, steps=None, eps=1e-3, variance="beta", respace="respace", skip="linspace",
              clip_denoised=False, progress=False):
    """Ancestral sampling of the model's own chain (SMLD for VE, DDPM for VP), noise-free last step; fewer steps walk
    a sub-sequence of the chain (sgm_bench.chain). clip_denoised: x0 clipped to [-1, 1] at every DDPM step, as Ho et
    al.'s code (off by default, as score_sde's ancestral predictor)."""
    if sde.kind not in _STEPS:
        raise ConfigError(f"ancestral sampling needs a VE or VP process, not {sde.kind!r}")
    chain = make_chain(sde, steps, eps, respace=respace, skip=skip, device=z.device)
    x = z * sde.prior_std
    for k in tqdm(range(len(chain)), disable=not progress, desc="ancestral"):
        mean, std = _STEPS[chain.kind](chain, k, score_fn, x, variance, clip_denoised)
        x = mean + std * noise.randn() if k < len(chain) - 1 else mean
    return x


def ddim_times(sde, chain, eps: float) -> torch.Tensor:
    """Where DDIM asks the score for step i: a discrete model at its own step; a continuous VP model at the time
    whose marginal has alpha-bar(t) = alpha-bar_i (int_0^t beta = -log alpha-bar_i), never below eps."""
    if sde.discrete:
        return chain.t
    t = sde.t_of_int_beta(-torch.log(chain["alpha_bar"].double()))
    return t.clamp(min=eps).to(chain.t)


@sampler("ddim", ("ddpm", "vp"), {"eta": 0.0, "skip": "uniform"}, denoise=False)
def ddim(score_fn, sde, z, noise, *, steps=50, eps=1e-3, eta=0.0, skip="uniform", clip_denoised=False,
         progress=False):
    """x_prev = sqrt(a_prev) x0_hat + sqrt(1 - a_prev - sigma^2) eps_hat + sigma z (DDIM eq. 12), sigma by eta (eq. 16).

    eta="sigma_hat" is the paper's large-variance row: DDPM's ancestral step on the same sub-sequence, with
    beta = 1 - a / a_prev, the posterior mean of (x0_hat, x_t) and variance sigma-hat^2 = beta. clip_denoised clips
    x0_hat to [-1, 1] (DDIM's code does for the sigma-hat row, its `ddpm_steps`, and not for the eta rows).
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
        if clip_denoised:
            x0 = x0.clamp(-1, 1)
        if eta == "sigma_hat":
            x, sigma = posterior_mean(x0, x, a, a_prev), torch.sqrt(1 - a / a_prev)
        else:
            sigma = float(eta) * torch.sqrt((1 - a_prev) / (1 - a) * (1 - a / a_prev))
            x = torch.sqrt(a_prev) * x0 + torch.sqrt(1 - a_prev - sigma**2) * e
        if k < len(chain) - 1:
            x = x + sigma * noise.randn()
    return x



