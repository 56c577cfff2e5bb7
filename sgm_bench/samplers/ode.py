"""Probability-flow ODE dx/dt = f(x, t) - g(t)^2 s(x, t) / 2 (Song et al. 2021, eq. 13), solved four ways."""
from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError
from ..registry import Registry
from .base import CONTINUOUS_TIME, sampler, vec

ODE_SOLVERS = Registry("ODE solver")


class NonFiniteDrift(Exception):
    """The drift is NaN or infinite: an adaptive solver would shrink its step forever (a NaN model never returns)."""


def _finite(d):
    if not torch.isfinite(d).all():
        raise NonFiniteDrift
    return d


def pf_drift(score_fn, sde):
    """The probability-flow drift as a function of (t, x)."""
    rev = sde.reverse(score_fn, probability_flow=True)
    return lambda t, x: rev.sde(x, vec(t, x))[0]


@ODE_SOLVERS.register("rk45")
def solve_rk45(drift, x, t0, t1, *, rtol=1e-5, atol=1e-5, steps=None):
    """scipy's RK45 (Dormand-Prince, on the host) with rtol = atol = 1e-5: parity with score_sde."""
    shape, device, dtype = x.shape, x.device, x.dtype

    count = [0]

    def f(t, y):
        count[0] += 1
        xt = torch.as_tensor(y, dtype=dtype, device=device).reshape(shape)
        return _finite(drift(t, xt)).detach().cpu().numpy().reshape(-1).astype(np.float64)

    from scipy.integrate import solve_ivp  # lazily: most jobs never integrate

    try:
        sol = solve_ivp(f, (t0, t1), x.detach().cpu().numpy().reshape(-1), rtol=rtol, atol=atol, method="RK45")
    except NonFiniteDrift:  # the batch's samples are reported non-finite (status "diverged"), not waited for
        return torch.full_like(x, float("nan")), {"solver_nfe": count[0], "stopped": "non-finite drift"}
    if not sol.success:
        raise RuntimeError(f"RK45 failed: {sol.message}")
    return torch.as_tensor(sol.y[:, -1], dtype=dtype, device=device).reshape(shape), {"solver_nfe": int(sol.nfev)}


@ODE_SOLVERS.register("dopri5")
def solve_dopri5(drift, x, t0, t1, *, rtol=1e-5, atol=1e-5, steps=None):
    """torchdiffeq's adaptive Dormand-Prince on the model's device, no copies to NumPy; like scipy it keeps the
    state in float64 (float32 round-off stalls the step control at rtol = 1e-5), the network sees x's dtype."""
    count = [0]

    def f(t, y):
        count[0] += 1
        return _finite(drift(t.to(x.dtype), y.to(x.dtype))).double()

    ts = torch.tensor([t0, t1], dtype=torch.float64, device=x.device)
    # keep every evaluation inside [t1, t0]: torchdiffeq's first-step probe and its steps past the end otherwise
    # evaluate the process at negative times
    from torchdiffeq import odeint  # lazily, as scipy: most jobs never integrate

    try:
        out = odeint(f, x.double(), ts, rtol=rtol, atol=atol, method="dopri5",
                     options={"first_step": 1e-3 * abs(t1 - t0), "step_t": ts})[-1]
    except NonFiniteDrift:
        return torch.full_like(x, float("nan")), {"solver_nfe": count[0], "stopped": "non-finite drift"}
    return out.to(x.dtype), {"solver_nfe": count[0]}


def _fixed(update):
    def solve(drift, x, t0, t1, *, rtol=None, atol=None, steps=100):
        ts = torch.linspace(t0, t1, steps + 1).tolist()
        for a, b in zip(ts[:-1], ts[1:]):
            x = update(drift, x, a, b)
        return x, {}

    solve.__doc__ = update.__doc__
    return solve


def _euler(drift, x, a, b):
    """Fixed-step Euler: x <- x + (b - a) F(a, x)."""
    return x + (b - a) * drift(a, x)


def _heun(drift, x, a, b):
    """Fixed-step Heun (explicit trapezoid): two drift evaluations a step."""
    d1 = drift(a, x)
    d2 = drift(b, x + (b - a) * d1)
    return x + (b - a) * 0.5 * (d1 + d2)


ODE_SOLVERS.add("euler", _fixed(_euler))
ODE_SOLVERS.add("heun", _fixed(_heun))


def ode_flow(score_fn, sde, x, t0: float, t1: float, method: str = "rk45", **opts):
    """Integrate the probability-flow ODE from t0 to t1 (t0 > t1 samples; t0 < t1 encodes data to the prior)."""
    return ODE_SOLVERS[method](pf_drift(score_fn, sde), x, t0, t1, **opts)


@sampler("ode", CONTINUOUS_TIME, {"method": "rk45", "rtol": 1e-5, "atol": 1e-5}, continuous_time=True)
def ode(score_fn, sde, z, noise, *, steps=None, eps=1e-3, method="rk45", rtol=1e-5, atol=1e-5, progress=False):
    """Probability-flow ODE sampling from the prior at T down to eps."""
    if method in ("euler", "heun") and steps is None:
        raise ConfigError(f"the fixed-step ODE solver {method!r} needs `steps`")
    return ode_flow(score_fn, sde, z * sde.prior_std, sde.T, eps, method, rtol=rtol, atol=atol, steps=steps)
