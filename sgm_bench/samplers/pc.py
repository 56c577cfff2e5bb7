"""Predictor-corrector sampling (Song et al. 2021, Alg. 1-3): predictors, the Langevin corrector, and their loops.

Every step function takes (chain, k, score_fn, x, t, noise): visit k of the chain (sgm_bench.chain) at time t.
"""
from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from ..chain import make_chain
from ..errors import ConfigError
from ..registry import Registry
from ..sde import bcast
from .ancestral import _STEPS
from .base import CONTINUOUS_TIME, DIFFUSION, sampler, vec

PREDICTORS = Registry("predictor")

# Score SDE Table 5: the best Langevin signal-to-noise ratio r per process and predictor ("none": C2000). Sub-VP takes
# VP's (the paper tuned VE and VP only); a predictor the table lacks (euler_maruyama) takes score_sde's default 0.16.
BEST_SNR = {"ve": {"ancestral": 0.17, "reverse_diffusion": 0.16, "probability_flow": 0.17, "none": 0.22},
            "vp": {"ancestral": 0.01, "reverse_diffusion": 0.01, "probability_flow": 0.04, "none": 0.27}}


def best_snr(kind: str, predictor: str) -> float:
    """Table 5's r for a process kind (ve, vp, subvp) and predictor."""
    return BEST_SNR["ve" if kind == "ve" else "vp"].get(predictor, 0.16)


@PREDICTORS.register("euler_maruyama")
def euler_maruyama_step(chain, k, score_fn, x, t, noise):
    """x <- x + [f - g^2 s] dt + g sqrt(|dt|) z with dt = -T/N (score_sde's EulerMaruyamaPredictor)."""
    dt = -chain.sde.T / len(chain)
    drift, g = chain.sde.reverse(score_fn).sde(x, t)
    mean = x + drift * dt
    return mean + bcast(g, x) * math.sqrt(-dt) * noise.randn(), mean


def _reverse_discretized(chain, k, score_fn, x, t, weight: float):
    """x - f_rev with f_rev = f - weight G^2 s, the reverse of the forward discretization (eq. 46-47)."""
    f, G = chain.discretize(x, k)
    return x - (f - weight * G**2 * score_fn(x, t)), G


def reverse_diffusion_denoise(score_fn, sde, x, eps: float):
    """score_sde's denoise: the reverse-diffusion step of the model's chain at t = eps without its noise, x - f + G^2 s
    (eq. 46); at the smallest SMLD level x + sigma_1^2 s, NCSNv2's final step of annealed Langevin."""
    rev_f, _ = sde.reverse(score_fn).discretize(x, vec(eps, x))
    return x - rev_f


@PREDICTORS.register("reverse_diffusion")
def reverse_diffusion_step(chain, k, score_fn, x, t, noise):
    """x <- x - f + G^2 s + G z, the reverse of the forward discretization (eq. 46)."""
    mean, G = _reverse_discretized(chain, k, score_fn, x, t, 1.0)
    return mean + G * noise.randn(), mean


@PREDICTORS.register("probability_flow")
def probability_flow_step(chain, k, score_fn, x, t, noise):
    """x <- x - f + G^2 s / 2, the probability-flow discretization (deterministic)."""
    mean, _ = _reverse_discretized(chain, k, score_fn, x, t, 0.5)
    return mean, mean


@PREDICTORS.register("ancestral")
def ancestral_step(chain, k, score_fn, x, t, noise):
    """The SMLD / DDPM ancestral update used as a predictor."""
    if chain.kind not in _STEPS:
        raise ConfigError(f"the ancestral predictor needs a VE or VP process, not {chain.kind!r}")
    mean, std = _STEPS[chain.kind](chain, k, score_fn, x, "beta")
    return mean + std * noise.randn(), mean


@PREDICTORS.register("none")
def no_predictor(chain, k, score_fn, x, t, noise):
    return x, x


def langevin_corrector(chain, k, score_fn, x, t, noise, snr: float, n_steps: int, norm: str = "batch"):
    """Alg. 4: step = 2 alpha (snr ||z|| / ||s||)^2; x <- x + step s + sqrt(2 step) z; alpha = 1 - beta_i (VP, sub-VP).

    norm 'per_sample' uses each example's norms (sample k depends only on its own stream); 'batch' averages the
    norms over the batch exactly as score_sde does.
    """
    alpha = 1 - chain["beta"][k] if "beta" in chain.coef else torch.ones((), device=x.device)
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


def predictor_only(predictor: str, respace_default: str = "respace"):
    """A sampler running one predictor alone (score_sde's P1000 rows); Euler-Maruyama walks the bare time grid."""

    def sampler(score_fn, sde, z, noise, *, steps=None, eps=1e-3, respace=respace_default, skip="linspace",
                constraint=None, progress=False):
        return pc(score_fn, sde, z, noise, steps=steps, eps=eps, predictor=predictor, corrector="none",
                  respace=respace, skip=skip, constraint=constraint, progress=progress)

    sampler.__doc__ = f"Predictor-only sampling with {predictor}: {PREDICTORS[predictor].__doc__}"
    return sampler


# score_sde's predictor-only rows (P1000): Euler-Maruyama on the bare time grid, reverse diffusion on the chain
euler_maruyama = sampler("euler_maruyama", CONTINUOUS_TIME, continuous_time=True)(
    predictor_only("euler_maruyama", "grid"))
reverse_diffusion = sampler("reverse_diffusion", DIFFUSION, walks_chain=True)(predictor_only("reverse_diffusion"))


@sampler("pc", DIFFUSION, {"predictor": "reverse_diffusion", "n_steps_each": 1}, walks_chain=True)
def pc(score_fn, sde, z, noise, *, steps=None, eps=1e-3, predictor="reverse_diffusion", corrector="langevin",
       snr=None, n_steps_each=1, norm="batch", respace="respace", skip="linspace", constraint=None, progress=False):
    """Alg. 1: for t_N > ... > t_1: corrector steps, then one predictor step; the last predictor mean is returned.
    snr: Table 5's best for the process and predictor unless given (best_snr).

    `constraint(x, t)` (inpainting, colorization: sgm_bench.guidance) re-imposes what is known after every step at the
    step's new time, and `constraint.finish(x)` at the end.
    """
    if corrector not in ("langevin", "none"):
        raise ConfigError(f"unknown corrector {corrector!r}; choose 'langevin' or 'none'")
    chain = make_chain(sde, steps, eps, respace=respace, skip=skip, device=z.device)
    step = PREDICTORS[predictor]
    snr = best_snr(sde.kind, predictor) if snr is None else snr
    x = z * sde.prior_std
    mean = x
    for k in tqdm(range(len(chain)), disable=not progress, desc=f"pc[{predictor}]"):
        t = vec(chain.t[k], x)
        if corrector == "langevin":
            x, mean = langevin_corrector(chain, k, score_fn, x, t, noise, snr, n_steps_each, norm)
        x, mean = step(chain, k, score_fn, x, t, noise)
        if constraint is not None and k < len(chain) - 1:
            x = constraint(x, vec(chain.t[k + 1], x))
    return mean if constraint is None else constraint.finish(mean)


@sampler("corrector_only", DIFFUSION, {"n_steps_each": 2}, walks_chain=True)
def corrector_only(score_fn, sde, z, noise, *, steps=None, eps=1e-3, snr=None, n_steps_each=2, norm="batch",
                   respace="respace", skip="linspace", progress=False):
    """C2000: Langevin corrector steps only at each noise level; snr defaults to Table 5's best (VE 0.22, VP 0.27)."""
    return pc(score_fn, sde, z, noise, steps=steps, eps=eps, predictor="none", snr=snr, n_steps_each=n_steps_each,
              norm=norm, respace=respace, skip=skip, progress=progress)
