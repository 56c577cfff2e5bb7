"""Likelihoods against closed forms: Gaussian data, uniform data, and DDPM's bound on an analytic model."""
import math

import pytest
import torch

from sgm_bench.data import GaussianMixture
from sgm_bench.errors import ConfigError
from sgm_bench.likelihood import bits_per_dim, ddpm_vlb, ode_nll
from sgm_bench.models import build_sde
from sgm_bench.plan import Likelihood

MU = torch.tensor([1.0, -0.5, 0.3])
COV = torch.tensor([[1.0, 0.4, 0.0], [0.4, 0.8, -0.2], [0.0, -0.2, 0.5]])


@pytest.fixture
def gauss():
    return GaussianMixture([1.0], MU[None], COV[None])


@pytest.mark.parametrize("family", ["vp", "subvp", "ve"])
@pytest.mark.parametrize("solver", ["rk45", "dopri5"])
def test_ode_nll_exact_divergence_equals_analytic_nll(gauss, family, solver):
    sde = build_sde(family)
    x = gauss.sample(16, torch.Generator().manual_seed(0))
    res = ode_nll(gauss.score_fn(sde), sde, x, exact=True, solver=solver)
    # the model is the prior pushed through the exact flow: -log p_eps(x) + log p_T(x_T) - log prior(x_T)
    truth = -gauss.log_prob(x, sde, torch.tensor(1e-5)).double() + gauss.log_prob(res.z, sde, torch.tensor(1.0)) \
        - sde.prior_logp(res.z).double()
    assert (res.nll - truth).abs().max() / 3 < 0.01, (res.nll - truth)
    assert res.nfe > 10


@pytest.mark.parametrize("probe", ["rademacher", "gaussian"])
def test_hutchinson_nll_within_its_spread(gauss, probe):
    sde = build_sde("vp")
    x = gauss.sample(1, torch.Generator().manual_seed(0)).expand(64, 3).contiguous()
    res = ode_nll(gauss.score_fn(sde), sde, x, probe=probe, seed=1)
    truth = float(-gauss.log_prob(x[:1], sde, torch.tensor(1e-5)))
    spread = float(res.nll.std()) / math.sqrt(len(x))  # one probe per copy: the standard error of the mean
    assert abs(float(res.nll.mean()) - truth) < 4 * spread + 1e-3
    assert float(res.nll.std()) > 0  # the probes really differ per example


def test_ode_nll_catches_a_wrong_score(gauss):
    sde = build_sde("vp")
    x = gauss.sample(8, torch.Generator().manual_seed(0))
    f = gauss.score_fn(sde)
    res = ode_nll(lambda x, t: 0.8 * f(x, t), sde, x, exact=True)
    truth = -gauss.log_prob(x, sde, torch.tensor(1e-5)).double() + gauss.log_prob(res.z, sde, torch.tensor(1.0)) \
        - sde.prior_logp(res.z).double()
    assert (res.nll - truth).abs().mean() / 3 > 0.01


def test_bits_per_dim_reproduces_score_sde_offsets():
    assert bits_per_dim(0.0, 3072, 256, 2.0) == pytest.approx(7.0)
    assert bits_per_dim(0.0, 3072, 256, 1.0) == pytest.approx(8.0)
    assert bits_per_dim(3072 * math.log(2), 3072, 256, 2.0) == pytest.approx(8.0)


def test_bits_per_dim_of_uniform_model_on_uniform_data_is_log2_K():
    """Uniform data over K levels, dequantized, under the uniform density on [c, c + s]^D: bpd = log2 K exactly."""
    D, K, s = 64, 17, 2.0
    nll = torch.full((10,), D * math.log(s))  # -log p(y) = D log s
    assert torch.allclose(bits_per_dim(nll, D, K, s), torch.full((10,), math.log2(K)))


def _analytic_reverse_chain_nll(sde, m0, v0, x0):
    """-log p_theta(x0) of DDPM's reverse chain with the exact score of N(m0, v0) data: a Gaussian, propagated."""
    s = sde.schedule
    a, v = 0.0, 1.0  # x_T ~ N(0, 1)
    for i in reversed(range(sde.N)):
        ab, b, al = (float(t[i]) for t in (s.alphas_cumprod, s.betas, s.alphas))
        mi, vi = math.sqrt(ab) * m0, ab * v0 + 1 - ab
        c, d = (1 - b / vi) / math.sqrt(al), b * mi / (vi * math.sqrt(al))
        var = float(s.variance("beta")[i])
        a, v = c * a + d, c * c * v + var
    return 0.5 * (math.log(2 * math.pi * v) + (x0 - a) ** 2 / v)


def test_ddpm_vlb_is_never_below_the_true_nll():
    sde = build_sde("ddpm")
    m0, v0 = 0.5, 0.3
    data = GaussianMixture([1.0], [[m0]], [v0])
    s = sde.schedule

    def exact_discrete_score(x, t):  # the exact score of the discrete chain's marginal q(x_i)
        ab = s.alphas_cumprod[sde.index(t)][:, None]
        return -(x - ab.sqrt() * m0) / (ab * v0 + 1 - ab)

    x0 = data.sample(4000, torch.Generator().manual_seed(0))
    vlb = ddpm_vlb(exact_discrete_score, sde, x0)
    nll = _analytic_reverse_chain_nll(sde, m0, v0, x0[:, 0].double())
    assert float(vlb.mean()) >= float(nll.mean()) - 0.01
    broken = ddpm_vlb(lambda x, t: 0.8 * exact_discrete_score(x, t), sde, x0)
    assert float(broken.mean()) > float(vlb.mean()) + 0.05  # the bound sees a wrong model
    with pytest.raises(ConfigError, match="VP"):
        ddpm_vlb(exact_discrete_score, build_sde("ve"), x0)


def test_an_ode_that_cannot_be_integrated_is_a_labelled_cell_not_a_crash(monkeypatch):
    """The protocol run's mu-parameterized DDPM: RK45's step size underflowed and the job died, taking the report
    with it. The solve raises SolverError; the likelihood job records `diverged` with the reason, and the table says so."""
    import pandas as pd

    from sgm_bench import evaluation
    from sgm_bench.errors import SolverError
    from sgm_bench.spec import load_dataset
    from sgm_bench.models import build_model
    from sgm_bench.report.tables import likelihood_table

    sde = build_sde("vp")
    with pytest.raises(SolverError, match="RK45 failed|not finite"):
        ode_nll(lambda x, t: 1e300 * x ** 3, sde, torch.randn(4, 2, dtype=torch.float64))
    data = load_dataset({"name": "mixture2d", "n_train": 100, "n_test": 20})
    model = build_model("vp", (2,), {"name": "mlp", "hidden": 8, "depth": 1})
    monkeypatch.setattr(model, "score_fn", lambda y=None, continuous=False: (lambda x, t: 1e30 * x ** 3))
    out = evaluation.evaluate_likelihood(model, data, Likelihood(n_examples=4), torch.device("cpu"))
    assert out["status"] == "diverged" and "could not be integrated" in out["note"] and "nll" not in out
    table = likelihood_table(pd.DataFrame([{"model": "m", **out}]))
    assert table.iloc[0, 0] == "diverged (a)"  # the reason is the table's note (a)
    assert table.attrs["notes"].startswith("(a) the probability-flow ODE could not be integrated")


def test_every_dequantization_repeat_runs_on_the_model_device(monkeypatch):
    """The device was popped from the options inside the loop: repeats after the first went to the CPU (a GPU run
    with repeats: 5 would fail on its second repeat)."""
    from types import SimpleNamespace

    from sgm_bench import likelihood
    from sgm_bench.data.images import load_synthetic

    seen = []
    monkeypatch.setattr(likelihood, "ode_nll", lambda score_fn, sde, y, **kw: seen.append(y.device.type)
                        or SimpleNamespace(nll=torch.zeros(len(y)), nfe=1))
    images = load_synthetic(n=20)
    likelihood.dequantized_bpd(None, None, images, images.test[:2], repeats=3, device="meta")
    assert seen == ["meta"] * 3
