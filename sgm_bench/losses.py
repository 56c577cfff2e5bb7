"""Training objectives: denoising score matching (continuous, SMLD), DDPM's L_simple / L_vlb, sliced and exact SM."""
from __future__ import annotations

import math

from contextlib import contextmanager

import torch

from .chain import time_of_step
from .errors import ConfigError
from .models import ScoreModel
from .registry import Registry
from .sde import bcast
from .vlb import mu_from_eps, vlb_terms

LOSSES = Registry("loss")


_ROWS: tuple[int, int] | None = None  # (first row, global batch size) while a process trains its rows of a batch


@contextmanager
def global_batch(rows: slice, total: int):
    """Inside, x holds rows `rows` of a global batch of `total`: every random draw below is made for the whole batch
    and cut to these rows, so processes that share the RNG state draw exactly what one process with the whole batch
    draws (data-parallel training equal to the one-process run)."""
    global _ROWS
    before, _ROWS = _ROWS, (rows.start, total)
    try:
        yield
    finally:
        _ROWS = before


def _draw(make, x):
    """make(n) for n = the global batch size, this process's rows of it."""
    if _ROWS is None:
        return make(len(x))
    first, total = _ROWS
    return make(total)[first: first + len(x)]


def uniform(x):
    """U[0, 1) per row."""
    return _draw(lambda n: torch.rand(n, device=x.device), x)


def normal_like(x):
    """N(0, I) of x's shape."""
    return _draw(lambda n: torch.randn((n, *x.shape[1:]), device=x.device, dtype=x.dtype), x)


def level(x, n_levels: int):
    """A uniform noise-level index per row."""
    return _draw(lambda n: torch.randint(0, n_levels, (n,), device=x.device), x)


def _reduce(v: torch.Tensor, reduce_mean: bool) -> torch.Tensor:
    v = v.flatten(1)
    return v.mean(1) if reduce_mean else v.sum(1)


@LOSSES.register("dsm")
def dsm_loss(model: ScoreModel, x, y=None, eps: float = 1e-5, weighting: str = "sigma2", reduce_mean: bool = False):
    """E_t lambda(t) E ||s(x_t, t) - grad log p_0t(x_t | x_0)||^2, t ~ U(eps, 1) (Song et al. 2021, eq. 7).

    weighting 'sigma2': lambda = s_t^2 (default); 'likelihood': lambda = g(t)^2 (Song et al. 2021b, eq. 11).
    """
    sde = model.sde
    t = uniform(x) * (sde.T - eps) + eps
    z = normal_like(x)
    mean, std = sde.marginal_prob(x, t)
    xt = mean + bcast(std, x) * z
    score = model.score(xt, t, y)
    if weighting == "sigma2":
        per = _reduce((score * bcast(std, x) + z) ** 2, reduce_mean)
    elif weighting == "likelihood":
        g2 = sde.sde(torch.zeros_like(x), t)[1] ** 2
        per = _reduce((score + z / bcast(std, x)) ** 2, reduce_mean) * g2
    else:
        raise ConfigError(f"unknown DSM weighting {weighting!r}; choose 'sigma2' or 'likelihood'")
    return per.mean()


@LOSSES.register("smld")
def smld_loss(model: ScoreModel, x, y=None, reduce_mean: bool = False):
    """NCSN: 1/2 E_i sigma_i^2 E ||s(x~, sigma_i) + (x~ - x) / sigma_i^2||^2, i ~ U{1..L} (Song & Ermon 2019, eq. 6)."""
    sde = model.sde
    i = level(x, sde.N)
    t = time_of_step(i, sde.N, sde.T)
    sigma = sde.discrete_sigmas.to(x.device)[i]
    z = normal_like(x)
    score = model.score(x + bcast(sigma, x) * z, t, y)
    return 0.5 * _reduce((score * bcast(sigma, x) + z) ** 2, reduce_mean).mean()


@LOSSES.register("ddpm")
def ddpm_loss(model: ScoreModel, x, y=None, objective: str = "simple", variance: str = "beta", levels: int | None = None,
              scale: float = 2.0, hybrid_lambda: float = 1e-3):
    """L_simple = E ||eps - eps_theta(x_t, t)||^2 (Ho et al. eq. 14), the bound L (eq. 5; one term, in bits per
    dimension), or improved DDPM's hybrid L_simple + lambda L_vlb.

    With param 'mu' the network predicts mu-tilde directly and L_simple becomes ||mu-tilde - mu_theta||^2 (Table 2).
    """
    sched, N = model.sde.schedule, model.sde.N
    i = level(x, N)
    t = time_of_step(i, N, model.sde.T)
    ab = bcast(sched.alphas_cumprod.to(x.device)[i], x)
    eps = normal_like(x)
    xt = ab.sqrt() * x + (1 - ab).sqrt() * eps
    out = model(xt, t, y)
    if model.param == "eps":
        simple, mu = ((eps - out) ** 2).flatten(1).mean(1), mu_from_eps(sched, xt, out, i)
    elif model.param == "mu":
        mu = out
        simple = ((sched.q_posterior_mean(x, xt, i) - mu) ** 2).flatten(1).mean(1)
    else:
        raise ConfigError(f"the ddpm loss needs param 'eps' or 'mu' (DDPM Table 2), got {model.param!r}")
    if objective == "simple":
        return simple.mean()
    # the sampled term of the bound as Ho et al.'s code trains on it: mean over dimensions, in bits (meanflat / log 2);
    # the hybrid weighs it as improved DDPM does, rescaled to a 1 000-step chain
    vlb = vlb_terms(sched, x, xt, i, mu, variance, levels, scale) / (x[0].numel() * math.log(2))
    table = {"vlb": vlb, "hybrid": simple + hybrid_lambda * vlb * N / 1000}
    if objective not in table:
        raise ConfigError(f"unknown DDPM objective {objective!r}; choose one of simple, vlb, hybrid")
    return table[objective].mean()


def _score_and_input(model: ScoreModel, x, y, noise_std: float):
    x = (x + noise_std * normal_like(x)) if noise_std > 0 else x
    x = x.detach().requires_grad_(True)
    return x, model.score(x, torch.zeros(len(x), device=x.device), y)


def ssm_terms(model: ScoreModel, x, y=None, noise_std: float = 0.0, projection: str = "gaussian",
              n_particles: int = 1, variance_reduction: bool = False) -> torch.Tensor:
    """Sliced SM: E_v [v^T grad(v^T s) + (v^T s)^2 / 2], or with VR: + ||s||^2 / 2 (Song et al. 2019, eq. 7-8)."""
    x, s = _score_and_input(model, x, y, noise_std)
    total = 0.0
    for _ in range(n_particles):
        v = normal_like(x)
        if projection == "rademacher":
            v = v.sign()
        elif projection != "gaussian":
            raise ConfigError(f"unknown projection {projection!r}; choose 'gaussian' or 'rademacher'")
        vs = (v * s).flatten(1).sum(1)
        grad = torch.autograd.grad(vs.sum(), x, create_graph=True)[0]
        second = 0.5 * s.flatten(1).pow(2).sum(1) if variance_reduction else 0.5 * vs**2
        total = total + (v * grad).flatten(1).sum(1) + second
    return total / n_particles


def esm_terms(model: ScoreModel, x, y=None, noise_std: float = 0.0, max_dim: int = 100) -> torch.Tensor:
    """Exact SM: E [tr(grad_x s(x)) + ||s(x)||^2 / 2] (Hyvarinen 2005, eq. 4); D backward passes for the trace."""
    D = x[0].numel()
    if D > max_dim:
        raise ConfigError(
            f"exact score matching needs {D} backward passes per step for the Jacobian trace (data dimension {D} > "
            f"max_dim {max_dim}); its cost grows with D. Use objective 'ssm' (sliced) or 'dsm' (denoising), "
            "or raise loss.max_dim if you really want it"
        )
    x, s = _score_and_input(model, x, y, noise_std)
    sf = s.flatten(1)
    trace = sum(torch.autograd.grad(sf[:, d].sum(), x, create_graph=True)[0].flatten(1)[:, d] for d in range(D))
    return trace + 0.5 * sf.pow(2).sum(1)


def dsm_single_terms(model: ScoreModel, x, y=None, noise_std: float = 0.1) -> torch.Tensor:
    """DSM at one noise level: 1/2 E ||s(x~) + (x~ - x) / sigma^2||^2 (Vincent 2011)."""
    if noise_std <= 0:
        raise ConfigError("denoising score matching needs loss.noise_std > 0; use 'esm' or 'ssm' for noise-free data")
    z = normal_like(x)
    s = model.score(x + noise_std * z, torch.zeros(len(x), device=x.device), y)
    return 0.5 * (s + z / noise_std).flatten(1).pow(2).sum(1)


SCORE_OBJECTIVES = Registry("score-matching objective")
SCORE_OBJECTIVES.add("esm", esm_terms)
SCORE_OBJECTIVES.add("ssm", ssm_terms)
SCORE_OBJECTIVES.add("dsm", dsm_single_terms)


@LOSSES.register("score_matching")
def score_matching_loss(model: ScoreModel, x, y=None, objective: str = "dsm", **options):
    """The `score` family's objective: exact ('esm'), sliced ('ssm') or denoising ('dsm') score matching."""
    return SCORE_OBJECTIVES[objective](model, x, y, **options).mean()


def option_names(loss: str, options: dict) -> list[str]:
    """The options a loss accepts (the score family's are its objective's), for checking a configuration's keys."""
    from .checks import parameters

    if loss == "score_matching":
        return ["objective", *parameters(SCORE_OBJECTIVES[options.get("objective", "dsm")], 3)]
    return parameters(LOSSES[loss], 3)
