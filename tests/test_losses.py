"""Objectives checked against closed forms on Gaussian data: no training, no tolerance tuned to a result."""
import math

import pytest
import torch
from torch import nn

from sgm_bench.errors import ConfigError
from sgm_bench.losses import LOSSES, esm_terms, ssm_terms
from sgm_bench.models import ScoreModel, build_sde

S0, D = 0.7, 3  # data x ~ N(0, S0^2 I_D)


class ExactVE(nn.Module):
    """The exact score of N(0, S0^2) perturbed by N(0, sigma^2), fed log sigma (continuous VE) or sigma index."""

    def __init__(self, sigmas=None):
        super().__init__()
        self.sigmas = sigmas

    def forward(self, x, c, y=None):
        sigma = torch.exp(c) if self.sigmas is None else self.sigmas[c.long()]
        return -x / (S0**2 + sigma[:, None] ** 2)


def data(n=400000):
    return torch.randn(n, D, generator=torch.Generator().manual_seed(1234)) * S0  # not the global seed: v must be independent of x


def test_dsm_at_exact_score_equals_irreducible_value():
    """E_t E ||sigma_t s*(x_t) + z||^2 = D E_t[S0^2 / (S0^2 + sigma_t^2)] at the exact score s*."""
    sde = build_sde("ve")
    model = ScoreModel("ve", ExactVE(), sde, param="score")
    loss = LOSSES["dsm"](model, data())
    t = torch.linspace(1e-5, 1, 200001, dtype=torch.float64)
    analytic = D * (S0**2 / (S0**2 + sde.std(t) ** 2)).mean()
    assert abs(float(loss) - float(analytic)) < 0.01 * float(analytic)
    wrong = ScoreModel("ve", ExactVE(), sde, param="scaled_score")  # a planted parameterization bug
    assert abs(float(LOSSES["dsm"](wrong, data())) - float(analytic)) > 0.1


def test_smld_loss_at_exact_score_equals_irreducible_value():
    sde = build_sde("ncsn")
    model = ScoreModel("ncsn", ExactVE(sde.discrete_sigmas), sde, param="score")
    analytic = 0.5 * D * (S0**2 / (S0**2 + sde.discrete_sigmas.double() ** 2)).mean()
    assert abs(float(LOSSES["smld"](model, data())) - float(analytic)) < 0.01 * float(analytic)


class Linear(nn.Module):
    """s(x) = -A x: a Gaussian model's score."""

    def __init__(self, A):
        super().__init__()
        self.A = nn.Parameter(A)

    def forward(self, x, c=None, y=None):
        return -x @ self.A.T


@pytest.mark.parametrize("projection,vr", [("gaussian", False), ("gaussian", True), ("rademacher", False)])
def test_sliced_and_exact_score_matching_agree_with_closed_form(projection, vr):
    """E[tr(ds/dx) + |s|^2/2] = -tr A + tr(A Sigma A^T)/2 for s(x) = -A x, x ~ N(0, S0^2 I)."""
    A = torch.tensor([[1.0, 0.3, 0.0], [0.2, 2.0, -0.4], [0.0, 0.5, 0.8]])
    model = ScoreModel("score", Linear(A), None)
    x = data(200000)
    analytic = float(-torch.trace(A) + 0.5 * S0**2 * (A @ A.T).trace())
    esm = float(esm_terms(model, x).mean().detach())
    ssm = float(ssm_terms(model, x, projection=projection, variance_reduction=vr).mean().detach())
    assert abs(esm - analytic) < 0.02 * abs(analytic)
    assert abs(ssm - analytic) < 0.05 * abs(analytic)


def test_exact_score_matching_refuses_high_dimension():
    model = ScoreModel("score", Linear(torch.eye(200)), None)
    with pytest.raises(ConfigError, match="200 backward passes.*'ssm'.*'dsm'"):
        esm_terms(model, torch.randn(4, 200))
    assert esm_terms(model, torch.randn(4, 200), max_dim=256).shape == (4,)


def test_ddpm_objectives_and_parameterizations():
    """L_simple, L_vlb and the hybrid run for eps and mu parameterizations; unknown choices are refused."""
    from sgm_bench.models import build_model

    x = torch.rand(8, 1, 8, 8) * 2 - 1
    for param in ("eps", "mu"):
        m = build_model("ddpm", (1, 8, 8), {"name": "unet", "ch": 16}, param=param)
        for obj in ("simple", "vlb", "hybrid"):
            v = LOSSES["ddpm"](m, x, objective=obj, levels=17)
            assert torch.isfinite(v) and v.requires_grad
    with pytest.raises(ConfigError, match="simple, vlb, hybrid"):
        LOSSES["ddpm"](m, x, objective="l2")


def test_likelihood_weighting_is_g_squared():
    """With lambda = g^2 the continuous VE loss at the exact score is E_t g(t)^2 D / (S0^2 + sigma_t^2) ... S0^2/sigma^2."""
    sde = build_sde("ve")
    model = ScoreModel("ve", ExactVE(), sde, param="score")
    loss = LOSSES["dsm"](model, data(), weighting="likelihood")
    t = torch.linspace(1e-5, 1, 200001, dtype=torch.float64)
    s2 = sde.std(t) ** 2
    g2 = s2 * 2 * math.log(sde.sigma_max / sde.sigma_min)
    analytic = (g2 * D * S0**2 / (s2 * (S0**2 + s2))).mean()
    assert abs(float(loss) - float(analytic)) < 0.03 * float(analytic)


class ExactDDPM(nn.Module):
    """DDPM's network at the exact posterior of x ~ N(0, S0^2 I) (Tweedie's x0-hat), fed the step index, in the
    parameterization asked for: eps*(x_i) or mu*(x_i) = c1 x0-hat + c2 x_i (Ho et al. eq. 7, 11)."""

    def __init__(self, sched, param):
        super().__init__()
        self.s, self.param = sched, param

    def forward(self, x, c, y=None):
        i = c.long()
        s = self.s
        ab, c1, c2 = (v[i][:, None] for v in (s.alphas_cumprod, s.posterior_mean_coef1, s.posterior_mean_coef2))
        x0_hat = ab.sqrt() * S0**2 / (ab * S0**2 + 1 - ab) * x
        return (x - ab.sqrt() * x0_hat) / (1 - ab).sqrt() if self.param == "eps" else c1 * x0_hat + c2 * x


@pytest.mark.parametrize("step", [0, 1, 10, 300, 700])
def test_ddpm_bound_at_the_exact_model_equals_its_closed_form_for_eps_and_mu(step, monkeypatch):
    """The bound's step-i term (eq. 5) at the exact model, Gaussian data, sigma^2 = beta-tilde: for i > 0,
    E KL = c1^2 D Var(x0 | x_i) / (2 sigma_i^2), Var(x0 | x_i) = S0^2 (1 - ab_i) / (ab_i S0^2 + 1 - ab_i); at i = 0 the
    decoder's E -log N(x0; x0-hat, sigma_0^2) = D/2 log(2 pi sigma_0^2) + D Var(x0 | x_0) / (2 sigma_0^2). Both
    parameterizations (Table 2's eps and mu-tilde) must give it, per dimension in bits as Ho et al.'s code trains on it:
    the DDPM Table 2 cells train on this code."""
    import sgm_bench.losses as losses

    sde = build_sde("ddpm")
    s = sde.schedule
    ab, var = float(s.alphas_cumprod[step]), float(s.variance("beta_tilde")[step])
    post = D * S0**2 * (1 - ab) / (ab * S0**2 + 1 - ab)  # E ||x0 - x0-hat||^2
    if step == 0:
        analytic = D / 2 * math.log(2 * math.pi * var) + post / (2 * var)
    else:
        analytic = float(s.posterior_mean_coef1[step]) ** 2 * post / (2 * var)
    monkeypatch.setattr(losses, "level", lambda x, n: torch.full((len(x),), step))
    for param in ("eps", "mu"):
        model = ScoreModel("ddpm", ExactDDPM(s, param), sde, param=param)
        torch.manual_seed(0)
        loss = float(LOSSES["ddpm"](model, data(), objective="vlb", variance="beta_tilde"))
        bits = analytic / (D * math.log(2))  # Ho et al.'s code: the term's mean over dimensions, in bits
        assert abs(loss - bits) < 0.01 * abs(bits), (param, loss, bits)
