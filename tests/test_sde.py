"""Processes: marginals against Monte-Carlo of the forward chain, DDPM's closed form, SMLD's geometric sigmas."""
import math

import pytest
import torch

from sgm_bench.errors import ConfigError
from sgm_bench.models import build_model, build_sde
from sgm_bench.sde import SDE, SDES, DDPMSchedule, SubVPSDE, VESDE, VPSDE, ncsnv2_schedule, smld_sigmas


@pytest.mark.parametrize("name", ["ve", "vp", "subvp"])
def test_marginal_prob_matches_forward_monte_carlo(name):
    """Run the forward Euler-Maruyama discretization from x0 and compare mean/std at several t to marginal_prob."""
    sde = SDES[name](N=2000) if name != "ve" else VESDE(0.01, 50, N=2000)
    x0 = torch.full((20000, 1), 1.5)
    x, g = x0.clone(), torch.Generator().manual_seed(0)
    checks = {500: None, 1000: None, 2000: None}
    for i in range(2000):
        t = torch.full((len(x),), i / sde.N)
        f, G = SDE.discretize(sde, x, t)  # the generic Euler-Maruyama step of sde(), not the SMLD/DDPM chains
        x = x + f + G[:, None] * torch.randn(x.shape, generator=g)
        if i + 1 in checks:
            mean, std = sde.marginal_prob(x0[:1], torch.tensor([(i + 1) / sde.N]))
            assert abs(x.mean() - mean.item()) < 0.03 * max(1.0, std.item()), (name, i)
            assert abs(x.std() / std.item() - 1) < 0.03, (name, i, x.std(), std)


def test_ddpm_chain_matches_closed_form_alpha_bar():
    """x_T of the DDPM chain x_t = sqrt(1-b) x + sqrt(b) z has mean sqrt(a_bar) x0 and var 1 - a_bar at every t."""
    sched = DDPMSchedule()
    x0, g = torch.full((50000,), 2.0), torch.Generator().manual_seed(1)
    x = x0.clone()
    for i in range(sched.T):
        x = torch.sqrt(1 - sched.betas[i]) * x + torch.sqrt(sched.betas[i]) * torch.randn(x.shape, generator=g)
        if i in (9, 99, 499, 999):
            ab = sched.alphas_cumprod[i]
            assert abs(x.mean() - ab.sqrt() * 2.0) < 0.02
            assert abs(x.var() - (1 - ab)) < 0.02
    assert torch.allclose(sched.alphas_cumprod, torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0).float())


def test_vpsde_discrete_betas_are_ddpm_schedule():
    assert torch.allclose(VPSDE().schedule.betas, torch.linspace(1e-4, 0.02, 1000))


def test_posterior_variance_and_mean_coefficients():
    s = DDPMSchedule()
    i = 500
    ab, abp, b = s.alphas_cumprod[i].double(), s.alphas_cumprod[i - 1].double(), s.betas[i].double()
    assert math.isclose(s.posterior_variance[i], b * (1 - abp) / (1 - ab), rel_tol=1e-4)
    assert math.isclose(s.posterior_mean_coef1[i], b * abp.sqrt() / (1 - ab), rel_tol=1e-4)
    assert math.isclose(s.posterior_mean_coef2[i], (1 - abp) * (1 - b).sqrt() / (1 - ab), rel_tol=1e-4)
    assert torch.equal(s.variance("beta")[1:], s.betas[1:])
    with pytest.raises(ValueError, match="beta_tilde"):
        s.variance("learned")


def test_smld_sigmas_geometric_with_paper_endpoints():
    s = smld_sigmas()
    assert len(s) == 10 and math.isclose(s[0], 1.0, rel_tol=1e-6) and math.isclose(s[-1], 0.01, rel_tol=1e-6)
    ratios = s[:-1] / s[1:]
    assert torch.allclose(ratios, ratios[0].expand_as(ratios), rtol=1e-4)
    assert torch.allclose(build_sde("ncsn").discrete_sigmas, s.flip(0))


def test_ncsnv2_schedule_follows_techniques_1_and_2():
    data = torch.rand(50, 64)
    data[0], data[1] = 0.0, 1.0  # the farthest pair: distance sqrt(64) = 8
    sigma_max, gamma, L = ncsnv2_schedule(data)
    assert math.isclose(sigma_max, 8.0, rel_tol=1e-9)
    from scipy.stats import norm
    c = math.sqrt(2 * 64)
    assert abs(norm.cdf(c * (gamma - 1) + 3 * gamma) - norm.cdf(c * (gamma - 1) - 3 * gamma) - 0.5) < 1e-6
    assert sigma_max / gamma ** (L - 1) <= 0.01 * gamma
    with pytest.raises(ValueError, match="no solution"):
        ncsnv2_schedule(torch.rand(5, 2))


@pytest.mark.parametrize("sde", [VESDE(), VPSDE(), SubVPSDE()], ids=["ve", "vp", "subvp"])
def test_t_of_sigma_inverts_sigma(sde):
    t = torch.linspace(1e-3, 1, 50, dtype=torch.float64)
    assert torch.allclose(sde.t_of_sigma(sde.sigma(t)), t, atol=1e-6)


def test_prior_logp_is_the_gaussian_density():
    sde = VESDE()
    z = torch.randn(4, 3) * 50
    ref = torch.distributions.Normal(0, 50.0).log_prob(z).sum(1)
    assert torch.allclose(sde.prior_logp(z), ref, atol=1e-4)


def test_bad_process_parameters_fail_clearly():
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        VESDE(1.0, 0.5)
    with pytest.raises(ConfigError, match="valid choices: subvp, ve, vp"):
        SDES["vpp"]


@pytest.mark.parametrize("N", [10, 232, 1000, 2000])
def test_every_discrete_level_is_trained_at_its_own_label(N):
    """The losses draw step i and ask the model at time_of_step(i): floor(t (N - 1)) must give i back (i / 231 in
    float32 floors to i - 1 for seven levels of NCSNv2's 232), and score_sde's fractional label t (N - 1) is i."""
    from sgm_bench import losses
    from sgm_bench.chain import step_of_time, time_of_step

    i = torch.arange(N)
    t = time_of_step(i, N)
    assert torch.equal(step_of_time(t, N), i)
    assert float((t * (N - 1) - i).abs().max()) < 1e-3
    if N > 232:
        return
    seen = []  # the loss itself: every level's label is seen (with i / (N - 1), levels 29, 31, ... never are)
    model = build_model("ddpm", (2,), sde={"N": N, "beta_max": 5.0}, net={"name": "mlp"})
    model.forward = lambda x, t, y=None: seen.append(model.sde.index(t)) or torch.zeros_like(x)
    for _ in range(40):
        losses.ddpm_loss(model, torch.zeros(256, 2))
    assert torch.equal(torch.cat(seen).unique(), i)
