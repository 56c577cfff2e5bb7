"""Predictor-corrector sampling (Song et al. 2021, Alg. 1-3): predictors, the Langevin corrector, and their loops."""
from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from ..errors import ConfigError
from ..registry import Registry
from ..sde import bcast
from .ancestral import _STEPS
from .base import sde_grid, vec

PREDICTORS = Registry("predictor")


@PREDICTORS.register("euler_maruyama")
def euler_maruyama_step(sde, score_fn, x, t, noise):
    """x <- x + [f - g^2 s] dt + g sqrt(|dt|) z with dt = -T/N."""
    dt = -sde.T / sde.N
    drift, g = sde.reverse(score_fn).sde(x, t)
    mean = x + drift * dt
    return mean + bcast(g, x) * math.sqrt(-dt) * noise.randn(), mean


@PREDICTORS.register("reverse_diffusion")
def reverse_diffusion_step(sde, score_fn, x, t, noise):
    """x <- x - f_rev + G z, the reverse of the forward discretization (eq. 46)."""
    f, G = sde.reverse(score_fn).discretize(x, t)
    mean = x - f
    return mean + bcast(G, x) * noise.randn(), mean


@PREDICTORS.register("probability_flow")
def probability_flow_step(sde, score_fn, x, t, noise):
    """x <- x - f_rev of the probability-flow discretization (deterministic)."""
    f, _ = sde.reverse(score_fn, probability_flow=True).discretize(x, t)
    mean = x - f
    return mean, mean


@PREDICTORS.register("ancestral")
def ancestral_step(sde, score_fn, x, t, noise):
    """The SMLD / DDPM ancestral update used as a predictor."""
    if sde.kind not in _STEPS:
        raise ConfigError(f"the ancestral predictor needs a VE or VP process, not {sde.kind!r}")
    mean, std = _STEPS[sde.kind](sde, score_fn, x, t, "beta")
    return mean + std * noise.randn(), mean


@PREDICTORS.register("none")
def no_predictor(sde, score_fn, x, t, noise):
    return x, x


def langevin_corrector(sde, score_fn, x, t, noise, snr: float, n_steps: int, norm: str = "batch"):
    """Alg. 4: step = 2 alpha (snr ||z|| / ||s||)^2; x <- x + step s + sqrt(2 step) z.

    norm 'per_sample' uses each example's norms (sample k depends only on its own stream); 'batch' averages the
    norms over the batch exactly as score_sde does.
    """
    alpha = torch.ones_like(t)
    if sde.kind in ("vp", "subvp"):
        alpha = sde.schedule.alphas.to(x.device)[sde.index(t)]
    mean = x
    for _ in range(n_steps):
        grad, z = score_fn(x, t), noise.randn()
        g_norm, z_norm = grad.flatten(1).norm(dim=1), z.flatten(1).norm(dim=1)
        if norm == "batch":
            g_norm, z_norm = g_norm.mean().expand_as(g_norm), z_norm.mean().expand_as(z_norm)
        step = bcast(2 * alpha * (snr * z_norm / g_norm) ** 2, x)
        mean = x + step * grad
        x = mean + torch.sqrt(2 * step) * z
    return x, mean


def pc(score_fn, sde, z, noise, *, steps=None, eps=1e-3, predictor="reverse_diffusion", corrector="langevin",
       snr=0.16, n_steps_each=1, norm="batch", constraint=None, progress=False):
    """Alg. 1: for t_N > ... > t_1: corrector steps, then one predictor step; the last predictor mean is returned.

    `constraint(x, t)` (inpainting, colorization: sgm_bench.guidance) re-imposes what is known after every step at the
    step's new time, and `constraint.finish(x)` at the end.
    """
    if corrector not in ("langevin", "none"):
        raise ConfigError(f"unknown corrector {corrector!r}; choose 'langevin' or 'none'")
    chain = sde if steps is None else sde.with_N(steps)
    step = PREDICTORS[predictor]
    x = z * chain.prior_std
    grid = sde_grid(chain, chain.N, eps, x.device)
    mean = x
    for k in tqdm(range(chain.N), disable=not progress, desc=f"pc[{predictor}]"):
        t = vec(grid[k], x)
        if corrector == "langevin":
            x, mean = langevin_corrector(chain, score_fn, x, t, noise, snr, n_steps_each, norm)
        x, mean = step(chain, score_fn, x, t, noise)
        if constraint is not None and k < chain.N - 1:
            x = constraint(x, vec(grid[k + 1], x))
    return mean if constraint is None else constraint.finish(mean)


def predictor_only(predictor: str):
    """A sampler running one predictor alone (score_sde's P1000 rows)."""

    def sampler(score_fn, sde, z, noise, *, steps=None, eps=1e-3, constraint=None, progress=False):
        return pc(score_fn, sde, z, noise, steps=steps, eps=eps, predictor=predictor, corrector="none",
                  constraint=constraint, progress=progress)

    sampler.__doc__ = f"Predictor-only sampling with {predictor}: {PREDICTORS[predictor].__doc__}"
    return sampler


def corrector_only(score_fn, sde, z, noise, *, steps=None, eps=1e-3, snr=None, n_steps_each=2, norm="batch",
                   progress=False):
    """C2000: Langevin corrector steps only at each noise level; snr defaults to Table 5's best (VE 0.22, VP 0.27)."""
    snr = {"ve": 0.22}.get(sde.kind, 0.27) if snr is None else snr
    return pc(score_fn, sde, z, noise, steps=steps, eps=eps, predictor="none", snr=snr, n_steps_each=n_steps_each,
              norm=norm, progress=progress)
