"""Toy distributions. Gaussian mixtures give exact log-densities and exact scores of every perturbed marginal."""
from __future__ import annotations

import math

import torch

from ..errors import ConfigError
from ..registry import Registry
from ..sde import SDE

TOYS = Registry("toy dataset")


class GaussianMixture:
    """sum_k w_k N(mu_k, Sigma_k); under an SDE, p_t = sum_k w_k N(m_t mu_k, m_t^2 Sigma_k + s_t^2 I) exactly."""

    has_density = True

    def __init__(self, weights, means, covs):
        self.weights = torch.as_tensor(weights, dtype=torch.float64)
        self.weights = self.weights / self.weights.sum()
        self.means = torch.as_tensor(means, dtype=torch.float64)
        K, D = self.means.shape
        covs = torch.as_tensor(covs, dtype=torch.float64)
        if covs.ndim == 1:  # one variance per component
            covs = covs[:, None].expand(K, D)
        if covs.ndim == 2:  # diagonal
            covs = torch.diag_embed(covs)
        self.lam, self.U = torch.linalg.eigh(covs)  # Sigma_k = U_k diag(lam_k) U_k^T
        self.dim, self.K = D, K

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        x = self.means[k] + torch.einsum("nde,ne->nd", self.U[k], z * self.lam[k].sqrt())
        return x.float()

    def _components(self, x, sde: SDE | None, t, noise_std: float):
        """Per-component log N(x; m mu_k, m^2 Sigma_k + s^2 I) [B, K] and the rotated z / var [B, K, D]."""
        x = x.double()
        B = x.shape[0]
        if sde is None:
            m, s = torch.ones(B, dtype=x.dtype), torch.full((B,), float(noise_std), dtype=x.dtype)
        else:
            t = torch.as_tensor(t, dtype=torch.float64).expand(B)
            m, s = sde.mean_coeff(t), sde.std(t)
        U, lam, mu = (v.to(x.device) for v in (self.U, self.lam, self.means))
        m, s = m.to(x.device), s.to(x.device)
        r = x[:, None, :] - m[:, None, None] * mu[None]
        z = torch.einsum("bkd,kde->bke", r, U)
        var = m[:, None, None] ** 2 * lam[None] + s[:, None, None] ** 2
        logn = -0.5 * (z**2 / var + torch.log(2 * math.pi * var)).sum(-1)
        return logn + torch.log(self.weights.to(x.device))[None], z / var

    def log_prob(self, x, sde: SDE | None = None, t=None, noise_std: float = 0.0) -> torch.Tensor:
        """log p_t(x) of the perturbed mixture (unperturbed when sde is None and noise_std = 0)."""
        logn, _ = self._components(x, sde, t, noise_std)
        return torch.logsumexp(logn, 1).to(x.dtype)

    def score(self, x, sde: SDE | None = None, t=None, noise_std: float = 0.0) -> torch.Tensor:
        """grad_x log p_t(x) = -sum_k post_k(x) (m^2 Sigma_k + s^2 I)^{-1} (x - m mu_k)."""
        logn, zv = self._components(x, sde, t, noise_std)
        post = torch.softmax(logn, 1)
        return -torch.einsum("bk,bke,kde->bd", post, zv, self.U.to(x.device)).to(x.dtype)

    def score_fn(self, sde: SDE | None = None, noise_std: float = 0.0):
        """The exact score as a sampler-ready score_fn(x, t)."""
        return lambda x, t: self.score(x, sde, t, noise_std)

    def mode_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Fraction of samples nearest each component mean."""
        from ..metrics.toy import mode_weights

        return mode_weights(self.means, x)


class Smile:
    """The course's smile: two eyes N((-+0.6, 0.8), 0.02^2 I) of 1/4 each and a mouth (x, -sqrt(1-x^2)), x ~ U[-1, 1]."""

    has_density = False
    dim = 2

    def __init__(self):
        self.eyes = GaussianMixture([1, 1], [[-0.6, 0.8], [0.6, 0.8]], [0.02**2, 0.02**2])

    def sample(self, n, generator=None):
        n_eyes = n // 2
        eyes = self.eyes.sample(n_eyes, generator)
        u = torch.rand(n - n_eyes, generator=generator) * 2 - 1
        mouth = torch.stack([u, -torch.sqrt(1 - u**2)], 1)
        return torch.cat([eyes, mouth])[torch.randperm(n, generator=generator)]

    def log_prob(self, x, *a, **k):
        raise ConfigError("the smile has no density: its mouth is a curve (a 1-D set in 2-D); use sample metrics (MMD, SW)")


class SwissRoll:
    """scikit-learn's swiss roll projected to 2-D and scaled by 1/5 (a curve plus noise: no closed-form density)."""

    has_density = False
    dim = 2

    def __init__(self, noise: float = 0.5):
        self.noise = noise

    def sample(self, n, generator=None):
        from sklearn.datasets import make_swiss_roll

        seed = int(torch.randint(0, 2**31 - 1, (), generator=generator))
        x, _ = make_swiss_roll(n, noise=self.noise, random_state=seed)
        return torch.as_tensor(x[:, [0, 2]] / 5, dtype=torch.float32)

    def log_prob(self, x, *a, **k):
        raise ConfigError("the swiss roll's density has no closed form; use sample metrics (MMD, SW)")


class Checkerboard:
    """Uniform on the 8 dark squares of a 4x4 board on [-4, 4]^2 (each square 2x2): p = 1/32 there, 0 elsewhere."""

    has_density = True
    dim = 2

    def sample(self, n, generator=None):
        x1 = torch.rand(n, generator=generator) * 4 - 2
        x2 = torch.rand(n, generator=generator) - torch.randint(0, 2, (n,), generator=generator) * 2
        x2 = x2 + torch.floor(x1) % 2
        return torch.stack([x1, x2], 1) * 2

    def log_prob(self, x, *a, **k):
        inside = (x.abs() <= 4).all(1) & ((torch.floor(x[:, 0] / 2) + torch.floor(x[:, 1] / 2)) % 2 == 0)
        return torch.where(inside, torch.full_like(x[:, 0], -math.log(32)), torch.full_like(x[:, 0], -math.inf))


def ring(K: int = 8, radius: float = 4.0, std: float = 0.25) -> GaussianMixture:
    """K equal Gaussians evenly spaced on a circle."""
    a = torch.arange(K, dtype=torch.float64) * 2 * math.pi / K
    return GaussianMixture(torch.ones(K), radius * torch.stack([a.cos(), a.sin()], 1), torch.full((K,), std**2))


TOYS.add("mixture1d", lambda: GaussianMixture([0.5, 0.5], [[-3.0], [3.0]], [0.25, 1.0]))
TOYS.add("mixture2d", lambda: GaussianMixture([0.2, 0.8], [[-5.0, -5.0], [5.0, 5.0]], [1.0, 1.0]))
TOYS.add("smile", Smile)
TOYS.add("ring", ring)
TOYS.add("swissroll", SwissRoll)
TOYS.add("checkerboard", Checkerboard)
