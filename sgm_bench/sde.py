"""Forward processes (Song et al. 2021, score_sde's sde_lib) and the discrete SMLD / DDPM schedules."""
from __future__ import annotations

import abc
import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from .chain import step_of_time, step_time
from .errors import ConfigError
from .registry import Registry

SDES = Registry("sde")


def bcast(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape a per-example vector [B] so it broadcasts against x [B, ...]."""
    return v.reshape(-1, *([1] * (x.ndim - 1)))


class SDE(abc.ABC):
    """dx = f(x, t) dt + g(t) dw on t in [0, T]; marginals x_t | x_0 ~ N(m_t x_0, s_t^2 I)."""

    kind: str = ""
    T: float = 1.0
    discrete: bool = False  # set by build_sde for a discrete model (NCSN, DDPM): it exists at its N steps only

    def __init__(self, N: int):
        self.N = int(N)

    @abc.abstractmethod
    def sde(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Drift f(x, t) and diffusion g(t)."""

    @abc.abstractmethod
    def mean_coeff(self, t: torch.Tensor) -> torch.Tensor:
        """m_t in x_t = m_t x_0 + s_t z."""

    @abc.abstractmethod
    def std(self, t: torch.Tensor) -> torch.Tensor:
        """s_t in x_t = m_t x_0 + s_t z."""

    @abc.abstractmethod
    def t_of_sigma(self, sigma: torch.Tensor) -> torch.Tensor:
        """Inverse of sigma(t) = s_t / m_t (the EDM noise level)."""

    @property
    @abc.abstractmethod
    def prior_std(self) -> float:
        """Standard deviation of the prior N(0, prior_std^2 I) at t = T."""

    def marginal_prob(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std of p_0t(x_t | x_0)."""
        return bcast(self.mean_coeff(t), x) * x, self.std(t)

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        """EDM noise level sigma(t) = s_t / m_t: x_t / m_t = x_0 + sigma(t) z (Karras et al. 2022, eq. 4)."""
        return self.std(t) / self.mean_coeff(t)

    def prior_sampling(self, shape, generator: torch.Generator | None = None, device="cpu") -> torch.Tensor:
        """z ~ N(0, prior_std^2 I)."""
        return torch.randn(shape, generator=generator, device=device) * self.prior_std

    def prior_logp(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; 0, prior_std^2 I), summed over all but the batch dimension."""
        D = z[0].numel()
        s2 = self.prior_std**2
        return -0.5 * D * math.log(2 * math.pi * s2) - z.flatten(1).pow(2).sum(1) / (2 * s2)

    def index(self, t: torch.Tensor) -> torch.Tensor:
        """Discrete step i = floor(t (N - 1) / T) of the N-step chain (sgm_bench.chain owns the convention)."""
        return step_of_time(t, self.N, self.T)

    def level_sigmas(self) -> torch.Tensor:
        """The chain's EDM noise levels sigma_i (ascending with the step i); only a discrete chain has them."""
        raise ConfigError(f"the {type(self).__name__} has no discrete chain of noise levels")

    def round_sigma(self, sigma: float) -> float:
        """EDM's round_sigma: a discrete model's nearest own level; a continuous model's sigma as it is."""
        if not self.discrete:
            return float(sigma)
        levels = self.level_sigmas().double()
        return float(levels[(levels - float(sigma)).abs().argmin()])

    def query_time(self, sigma: float) -> float:
        """The time at which to ask the score for noise level sigma: t(sigma), or the middle of a discrete level's
        step (chain.time_of_step: floor(t (N - 1) / T) is that level whatever the float round-off)."""
        if not self.discrete:
            return float(self.t_of_sigma(torch.as_tensor(sigma, dtype=torch.float64)))
        return step_time(int((self.level_sigmas().double() - float(sigma)).abs().argmin()), self.N, self.T)

    def discretize(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Euler-Maruyama discretization x_{i+1} = x_i + f dt + g sqrt(dt) z over N steps."""
        dt = self.T / self.N
        drift, diffusion = self.sde(x, t)
        return drift * dt, diffusion * math.sqrt(dt)

    def with_N(self, N: int) -> "SDE":
        """The same process discretized into N steps (score_sde's P2000: noise scales interpolated)."""
        return type(self)(**{**self.args, "N": int(N)})

    def reverse(self, score_fn, probability_flow: bool = False) -> "ReverseSDE":
        """Reverse-time SDE dx = [f - g^2 score] dt + g dw (eq. 6), or its probability-flow ODE (eq. 13)."""
        return ReverseSDE(self, score_fn, probability_flow)


class ReverseSDE:
    """The reverse of `fwd` driven by `score_fn`; its `discretize` gives the reverse-diffusion predictor."""

    def __init__(self, fwd: SDE, score_fn, probability_flow: bool):
        self.fwd, self.score_fn, self.probability_flow = fwd, score_fn, probability_flow
        self.N, self.T = fwd.N, fwd.T

    def _combine(self, x, t, f, G):
        c = 0.5 if self.probability_flow else 1.0
        score = self.score_fn(x, t)
        drift = f - bcast(G, x) ** 2 * score * c
        return drift, torch.zeros_like(G) if self.probability_flow else G

    def sde(self, x, t):
        """Drift f - g^2 s (or f - g^2 s / 2) and diffusion g (or 0)."""
        return self._combine(x, t, *self.fwd.sde(x, t))

    def discretize(self, x, t):
        """Reverse of the forward discretization: f_rev = f - G^2 s, G_rev = G (eq. 46-47)."""
        return self._combine(x, t, *self.fwd.discretize(x, t))


@SDES.register("ve")
class VESDE(SDE):
    """Variance exploding: dx = sqrt(d sigma^2/dt) dw, sigma(t) = sigma_min (sigma_max/sigma_min)^t (eq. 30)."""

    kind = "ve"

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0, N: int = 1000):
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f"VESDE needs 0 < sigma_min < sigma_max, got sigma_min={sigma_min}, sigma_max={sigma_max}")
        super().__init__(N)
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)
        self.args = dict(sigma_min=sigma_min, sigma_max=sigma_max)
        self.discrete_sigmas = torch.exp(torch.linspace(math.log(sigma_min), math.log(sigma_max), N))

    @property
    def prior_std(self):
        return self.sigma_max

    def std(self, t):
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def mean_coeff(self, t):
        return torch.ones_like(t)

    def t_of_sigma(self, sigma):
        return torch.log(sigma / self.sigma_min) / math.log(self.sigma_max / self.sigma_min)

    def level_sigmas(self):
        return self.discrete_sigmas

    def sde(self, x, t):
        g = self.std(t) * math.sqrt(2 * math.log(self.sigma_max / self.sigma_min))
        return torch.zeros_like(x), g

    def discretize(self, x, t):
        """SMLD chain x_i = x_{i-1} + sqrt(sigma_i^2 - sigma_{i-1}^2) z (eq. 8)."""
        i = self.index(t)
        sig = self.discrete_sigmas.to(t.device)
        prev = torch.where(i == 0, torch.zeros_like(t), sig[(i - 1).clamp(min=0)])
        return torch.zeros_like(x), torch.sqrt(sig[i] ** 2 - prev**2)


class _VPFamily(SDE):
    """Shared by VP and sub-VP: beta(t) linear, drift -beta(t) x / 2, mean exp(-int beta / 2)."""

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, N: int = 1000):
        if not 0 < beta_min < beta_max:
            raise ValueError(f"{type(self).__name__} needs 0 < beta_min < beta_max, got {beta_min}, {beta_max}")
        super().__init__(N)
        self.beta_0, self.beta_1 = float(beta_min), float(beta_max)
        self.args = dict(beta_min=beta_min, beta_max=beta_max)

    @functools.cached_property
    def schedule(self) -> "DDPMSchedule":
        """The N-step DDPM chain, betas linspace(beta_min / N, beta_max / N) as score_sde; built when first walked."""
        if self.beta_1 / self.N >= 1:
            raise ConfigError(
                f"the {self.N}-step chain of {type(self).__name__} has beta_N = beta_max / N = {self.beta_1 / self.N:g} "
                f">= 1 (score_sde's linear betas): use more than {self.beta_1:g} steps, or a sampler that does not walk "
                "the chain (euler_maruyama, ode, ddim, edm_heun, dpm_solver)")
        return DDPMSchedule(self.beta_0 / self.N, self.beta_1 / self.N, self.N)

    @property
    def prior_std(self):
        return 1.0

    def level_sigmas(self):
        """sigma_i = sqrt((1 - alpha-bar_i) / alpha-bar_i) (the VP chain seen as x / sqrt(alpha-bar) = x_0 + sigma z)."""
        ab = self.schedule.alphas_cumprod64
        return ((1 - ab) / ab).sqrt().float()

    def beta(self, t):
        return self.beta_0 + t * (self.beta_1 - self.beta_0)

    def int_beta(self, t):
        """int_0^t beta(s) ds."""
        return self.beta_0 * t + 0.5 * t**2 * (self.beta_1 - self.beta_0)

    def t_of_int_beta(self, B):
        """Solve int_0^t beta = B for t (a quadratic)."""
        d = self.beta_1 - self.beta_0
        return (-self.beta_0 + torch.sqrt(self.beta_0**2 + 2 * d * B)) / d

    def mean_coeff(self, t):
        return torch.exp(-0.5 * self.int_beta(t))


@SDES.register("vp")
class VPSDE(_VPFamily):
    """Variance preserving: dx = -beta(t) x / 2 dt + sqrt(beta(t)) dw (eq. 32)."""

    kind = "vp"

    def std(self, t):
        return torch.sqrt(-torch.expm1(-self.int_beta(t)))

    def t_of_sigma(self, sigma):
        return self.t_of_int_beta(torch.log1p(sigma**2))

    def sde(self, x, t):
        b = self.beta(t)
        return -0.5 * bcast(b, x) * x, torch.sqrt(b)

    def discretize(self, x, t):
        """DDPM chain x_i = sqrt(1 - beta_i) x_{i-1} + sqrt(beta_i) z (eq. 10)."""
        beta = self.schedule.betas.to(t.device)[self.index(t)]
        return (torch.sqrt(1 - bcast(beta, x)) - 1) * x, torch.sqrt(beta)


@SDES.register("subvp")
class SubVPSDE(_VPFamily):
    """Sub-VP: dx = -beta x / 2 dt + sqrt(beta(t) (1 - exp(-2 int beta))) dw (eq. 34)."""

    kind = "subvp"

    def std(self, t):
        return -torch.expm1(-self.int_beta(t))

    def t_of_sigma(self, sigma):
        u = 0.5 * (-sigma + torch.sqrt(sigma**2 + 4))  # u = exp(-int beta / 2) solves u^2 + sigma u - 1 = 0
        return self.t_of_int_beta(-2 * torch.log(u))

    def sde(self, x, t):
        b = self.beta(t)
        g = torch.sqrt(b * -torch.expm1(-2 * self.int_beta(t)))
        return -0.5 * bcast(b, x) * x, g


@dataclass
class DDPMSchedule:
    """DDPM's linear beta schedule with q(x_t | x_0) and the posterior q(x_{t-1} | x_t, x_0) (Ho et al. eq. 4, 6-7)."""

    beta_start: float = 1e-4
    beta_end: float = 0.02
    T: int = 1000

    def __post_init__(self):
        b = torch.linspace(self.beta_start, self.beta_end, self.T, dtype=torch.float64)
        a_bar = torch.cumprod(1 - b, 0)
        a_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), a_bar[:-1]])
        post_var = b * (1 - a_bar_prev) / (1 - a_bar)
        f = lambda v: v.float()  # noqa: E731 - computed in float64, stored in float32
        self.alphas_cumprod64 = a_bar  # for the respaced chains' beta' = 1 - a_bar_k / a_bar_prev
        self.betas, self.alphas, self.alphas_cumprod = f(b), f(1 - b), f(a_bar)
        self.alphas_cumprod_prev = f(a_bar_prev)
        self.posterior_variance = f(post_var)  # beta-tilde_t
        self.posterior_log_variance_clipped = f(torch.log(torch.cat([post_var[1:2], post_var[1:]])))
        self.posterior_mean_coef1 = f(b * torch.sqrt(a_bar_prev) / (1 - a_bar))
        self.posterior_mean_coef2 = f((1 - a_bar_prev) * torch.sqrt(1 - b) / (1 - a_bar))

    def variance(self, kind: str) -> torch.Tensor:
        """Fixed reverse variance sigma_t^2: 'beta' (beta_t, 'fixedlarge') or 'beta_tilde' (posterior, 'fixedsmall')."""
        clipped = torch.cat([self.posterior_variance[1:2], self.posterior_variance[1:]])  # Ho et al.'s clip at t = 1
        table = {"beta": torch.cat([self.posterior_variance[1:2], self.betas[1:]]), "beta_tilde": clipped}
        if kind not in table:
            raise ValueError(f"unknown DDPM variance {kind!r}; choose one of {sorted(table)}")
        return table[kind]

    def q_posterior_mean(self, x0, xt, i):
        """mu-tilde_t(x_t, x_0) = c1 x_0 + c2 x_t (eq. 7)."""
        c1 = bcast(self.posterior_mean_coef1.to(xt.device)[i], xt)
        c2 = bcast(self.posterior_mean_coef2.to(xt.device)[i], xt)
        return c1 * x0 + c2 * xt


def smld_sigmas(sigma_max: float = 1.0, sigma_min: float = 0.01, L: int = 10) -> torch.Tensor:
    """NCSN's geometric noise levels sigma_1 = sigma_max > ... > sigma_L = sigma_min (Song & Ermon 2019, sec. 4.2)."""
    return VESDE(sigma_min, sigma_max, L).discrete_sigmas.flip(0)


def ncsnv2_schedule(data: torch.Tensor, sigma_min: float = 0.01) -> tuple[float, float, int]:
    """NCSNv2 Techniques 1-2: sigma_1 = max pairwise distance; gamma with Phi(sqrt(2D)(g-1)+3g) - Phi(sqrt(2D)(g-1)-3g) = 0.5.

    Returns (sigma_max, gamma, L), the geometric schedule sigma_i = sigma_max / gamma^(i-1) down to sigma_min.
    """
    from scipy import optimize, stats  # scipy.stats costs half a second at import: only here

    x = data.flatten(1).double()
    sigma_max = float(torch.cdist(x, x).max())
    D = x.shape[1]
    c = math.sqrt(2 * D)
    phi = lambda g: stats.norm.cdf(c * (g - 1) + 3 * g) - stats.norm.cdf(c * (g - 1) - 3 * g) - 0.5  # noqa: E731
    if phi(1e3) > 0:
        raise ValueError(f"NCSNv2's Technique 2 has no solution for D = {D} (it needs sqrt(2D) > 3); choose L directly")
    gamma = float(optimize.brentq(phi, 1.0 + 1e-9, 1e3))
    L = int(np.ceil(np.log(sigma_max / sigma_min) / np.log(gamma))) + 1
    return sigma_max, gamma, L
