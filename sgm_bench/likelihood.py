"""Exact likelihood through the probability-flow ODE (Song et al. 2021, App. D.2), bits/dim, and DDPM's bound.

log p_0(x(0)) = log p_T(x(T)) + int_0^T div f~(x(t), t) dt, with f~ = f - g^2 s / 2 (eq. 39).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .chain import step_time
from .errors import ConfigError, SolverError
from .registry import Registry
from .samplers.base import NoiseSource, vec
from .samplers.ode import pf_drift
from .sde import SDE
from .vlb import prior_kl, vlb_terms


@dataclass
class NLLResult:
    nll: torch.Tensor  # nats per example [B]
    nfe: int
    prior_logp: torch.Tensor
    delta_logp: torch.Tensor
    z: torch.Tensor  # x(T), the latent code of x


DIVERGENCES = Registry("divergence estimator")


@DIVERGENCES.register("exact")
def exact_divergence(drift, t, x, probe=None):
    """(f, tr df/dx) by D backward passes: the exact trace, for low-dimensional data."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        f = drift(t, x)
        flat = f.flatten(1)
        div = sum(torch.autograd.grad(flat[:, d].sum(), x, retain_graph=True)[0].flatten(1)[:, d]
                  for d in range(flat.shape[1]))
    return f.detach(), div.detach()


@DIVERGENCES.register("vjp")
def hutchinson_vjp(drift, t, x, probe):
    """(f, eps^T (df/dx) eps) by one reverse-mode pass (score_sde's Hutchinson-Skilling estimator, eq. 40)."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        f = drift(t, x)
        g = torch.autograd.grad(f, x, grad_outputs=probe)[0]  # eps^T df/dx: the probe seeds the reverse pass
    return f.detach(), (g * probe).flatten(1).sum(1)


def _augmented(drift, divergence: str, probe, counter):
    """[x, logp] dynamics: dx/dt = f~(x, t), d(delta logp)/dt = div f~(x, t)."""
    estimate = DIVERGENCES[divergence]

    def fn(t, x):
        counter[0] += 1
        dx, div = estimate(drift, t, x, probe)
        if not (torch.isfinite(dx).all() and torch.isfinite(div).all()):  # an adaptive solver would never return
            raise SolverError(f"the probability-flow drift is not finite at t = {float(t.flatten()[0]):.4g}: the "
                              "model's weights or outputs hold NaN or infinity (a diverged model)")
        return dx, div

    return fn


NLL_SOLVERS = Registry("likelihood ODE solver")


@NLL_SOLVERS.register("rk45")
def _solve_rk45(fn, x, t0, t1, rtol, atol):
    shape, B, dtype, device = x.shape, x.shape[0], x.dtype, x.device

    def f(t, y):
        xt = torch.as_tensor(y[:-B], dtype=dtype, device=device).reshape(shape)
        dx, div = fn(vec(t, xt), xt)
        return np.concatenate([dx.cpu().numpy().reshape(-1), div.cpu().numpy()]).astype(np.float64)

    y0 = np.concatenate([x.detach().cpu().numpy().reshape(-1), np.zeros(B)])
    from scipy.integrate import solve_ivp  # lazily: most jobs never integrate

    sol = solve_ivp(f, (t0, t1), y0, rtol=rtol, atol=atol, method="RK45")
    if not sol.success:
        raise SolverError(f"RK45 failed at t = {sol.t[-1]:.4g}: {sol.message}")
    y = torch.as_tensor(sol.y[:, -1], device=device)
    return y[:-B].to(dtype).reshape(shape), y[-B:]


@NLL_SOLVERS.register("dopri5")
def _solve_dopri5(fn, x, t0, t1, rtol, atol):
    def f(t, state):
        xt, _ = state
        dx, div = fn(t.to(x.dtype), xt.to(x.dtype))
        return dx.double(), div.double()

    ts = torch.tensor([t0, t1], dtype=torch.float64, device=x.device)
    state = (x.double(), torch.zeros(len(x), dtype=torch.float64, device=x.device))
    from torchdiffeq import odeint  # lazily, as scipy: most jobs never integrate

    xT, delta = odeint(f, state, ts, rtol=rtol, atol=atol, method="dopri5",
                       options={"first_step": 1e-3 * abs(t1 - t0), "step_t": ts})
    return xT[-1].to(x.dtype), delta[-1]


def _probe(probe, x: torch.Tensor, seed: int) -> torch.Tensor:
    """The Hutchinson probe: given, or Rademacher / Gaussian from the per-example streams of `seed`."""
    if isinstance(probe, torch.Tensor):
        if probe.shape != x.shape:
            raise ConfigError(f"a Hutchinson probe must be shaped like the data {tuple(x.shape)}, "
                              f"not {tuple(probe.shape)}")
        return probe.to(x)
    if probe not in ("rademacher", "gaussian"):
        raise ConfigError(f"unknown probe {probe!r}; choose 'rademacher', 'gaussian' or pass the probe tensor")
    z = NoiseSource(seed, range(len(x)), x.shape[1:], x.device).randn()
    return z.sign() if probe == "rademacher" else z


def ode_nll(score_fn, sde: SDE, x: torch.Tensor, *, exact: bool = False, probe="rademacher",
            solver: str = "rk45", eps: float = 1e-5, seed: int = 0, rtol: float = 1e-5, atol: float = 1e-5,
            divergence: str = "vjp") -> NLLResult:
    """-log p_eps(x) in nats per example by the probability-flow ODE; one Hutchinson probe per example, held fixed
    (exact=True: the trace by D backward passes). One network call per evaluation gives the drift and, by one
    reverse pass, the divergence (score_sde calls the network twice). `probe`: 'rademacher' or 'gaussian' (drawn
    from the per-example streams of `seed`), or the probe itself, a tensor shaped like x."""
    z = None if exact else _probe(probe, x, seed)
    counter = [0]
    fn = _augmented(pf_drift(score_fn, sde), "exact" if exact else divergence, z, counter)
    xT, delta = NLL_SOLVERS[solver](fn, x, eps, sde.T, rtol, atol)
    prior = sde.prior_logp(xT).double()
    return NLLResult(-(prior + delta), counter[0], prior, delta, xT)


def bits_per_dim(nll, dim: int, levels: int, scale: float = 2.0):
    """bpd = nll / (D ln 2) + log2 K - log2 s for data y = s (x + u) / K + c, x in {0..K-1}^D (DESIGN.md).

    With K = 256 this is score_sde's offset: 7 for data in [-1, 1] (s = 2), 8 for [0, 1] (s = 1).
    """
    return nll / (dim * math.log(2)) + math.log2(levels) - math.log2(scale)


def dequantized_bpd(score_fn, sde, images, x_int: torch.Tensor, *, repeats: int = 5, seed: int = 0, **kw):
    """ODE bpd of integer images, each averaged over `repeats` uniform dequantizations: (mean over the images, its
    standard error over the images (ddof 1), NFE of one solve averaged over the repeats)."""
    per, nfe, device = [], 0, kw.pop("device", "cpu")  # every repeat on the model's device
    for r in range(repeats):
        y = images.dequantize(x_int, torch.Generator().manual_seed(seed * 1000 + r)).to(device)
        res = ode_nll(score_fn, sde, y, seed=seed * 1000 + r, **kw)
        per.append(bits_per_dim(res.nll, y[0].numel(), images.levels, images.scale).double().cpu())
        nfe += res.nfe
    per_image = torch.stack(per).mean(0).numpy()
    se = float(per_image.std(ddof=1) / np.sqrt(len(per_image))) if len(per_image) > 1 else float("nan")
    return float(per_image.mean()), se, nfe / repeats


def ddpm_vlb(score_fn, sde, x0: torch.Tensor, *, variance: str = "beta", levels: int | None = None, scale: float = 2.0,
             seed: int = 0) -> torch.Tensor:
    """DDPM's bound L = L_T + sum_{t>1} L_{t-1} + L_0 in nats per example [B] (Ho et al. eq. 5); all T terms.

    The model enters through its score: mu_theta(x_t) = (x_t + beta_t s(x_t, t)) / sqrt(alpha_t) (eq. 11).
    levels=None uses a continuous Gaussian decoder (toy data); K levels the discretized decoder (eq. 13).
    """
    if sde.kind != "vp":
        raise ConfigError(f"the DDPM bound needs the VP (DDPM) chain, not {sde.kind!r}")
    s = sde.schedule
    noise = NoiseSource(seed, range(len(x0)), x0.shape[1:], x0.device)
    total = prior_kl(s, x0).double()
    with torch.no_grad():
        for i in range(sde.N):
            iv = torch.full((len(x0),), i, device=x0.device, dtype=torch.long)
            ab, b, a = (v.to(x0.device)[i] for v in (s.alphas_cumprod, s.betas, s.alphas))
            xt = ab.sqrt() * x0 + (1 - ab).sqrt() * noise.randn()
            mu = (xt + b * score_fn(xt, vec(step_time(i, sde.N, sde.T), xt))) / a.sqrt()
            total = total + vlb_terms(s, x0, xt, iv, mu, variance, levels, scale).double()
    return total
