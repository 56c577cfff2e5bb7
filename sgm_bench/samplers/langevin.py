"""Langevin dynamics (Roberts & Tweedie 1996) and NCSN's annealed Langevin dynamics (Song & Ermon 2019, Alg. 1)."""
from __future__ import annotations

import math

from tqdm.auto import tqdm

from ..chain import make_chain
from ..errors import ConfigError
from .base import sampler, vec


def _init(z, noise, init: str, init_range: float, scale: float):
    """Initial points: uniform on [-init_range, init_range]^D, or the Gaussian N(0, scale^2 I)."""
    return (noise.rand() * 2 - 1) * init_range if init == "uniform" else z * scale


@sampler("langevin", ("score",), denoise=False)
def langevin(score_fn, sde, z, noise, *, steps=1000, eps=None, step_size=0.1, init="uniform", init_range=8.0,
             progress=False):
    """x_{k+1} = x_k + eps s(x_k) + sqrt(2 eps) z_k (unadjusted Langevin; the course's form)."""
    x = _init(z, noise, init, init_range, 1.0)
    for _ in tqdm(range(steps), disable=not progress, desc="langevin"):
        x = x + step_size * score_fn(x, vec(0.0, x)) + math.sqrt(2 * step_size) * noise.randn()
    return x


@sampler("annealed_langevin", ("ncsn", "ve"), {"n_steps_each": 100, "step_lr": 2e-5})
def annealed_langevin(score_fn, sde, z, noise, *, steps=None, eps=1e-5, n_steps_each=100, step_lr=2e-5,
                      init="uniform", init_range=1.0, respace="respace", skip="linspace", progress=False):
    """For sigma_1 > ... > sigma_L: alpha_i = step_lr sigma_i^2 / sigma_L^2; T times x += alpha_i s + sqrt(2 alpha_i) z.

    That is NCSNv2's Alg. 1 and the update of both papers' image code (ermongroup/ncsn's anneal_Langevin_dynamics,
    which produced NCSN's Table 1 with step_lr = 2e-5, and ncsnv2's). NCSN's Alg. 1 writes alpha_i/2 s + sqrt(alpha_i) z,
    as does its toy runner: its eps is 2 step_lr (the mixture of its Fig. 3, eps = 0.1, is step_lr = 0.05 here).
    `steps` is the number of noise levels L (default: the model's own N; fewer walk a sub-sequence of its levels).
    """
    if sde.kind != "ve":
        raise ConfigError(f"annealed Langevin dynamics needs the SMLD (VE) noise levels, not {sde.kind!r}")
    chain = make_chain(sde, steps, eps, respace=respace, skip=skip, device=z.device)
    sigmas = chain["sigma"].tolist()
    x = _init(z, noise, init, init_range, sigmas[0])
    for k in tqdm(range(len(chain)), disable=not progress, desc="annealed langevin"):
        alpha = step_lr * (sigmas[k] / sigmas[-1]) ** 2
        t = vec(chain.t[k], x)
        for _ in range(n_steps_each):
            x = x + alpha * score_fn(x, t) + math.sqrt(2 * alpha) * noise.randn()
    return x
